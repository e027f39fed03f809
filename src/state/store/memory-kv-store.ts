import { WeirError } from '../../errors.js';
import { compareKeys } from './key-codec.js';
import { DEFAULT_CHUNK, type KvEntry, type KvOp, type KvRange, type KvStore, type KvWriteBatch, type KvWriteOptions } from './kv-store.js';

/** The data of one in-memory store: a sorted key array and a map, replaced (never mutated) per batch. */
interface MemoryData {
  keys: string[];
  values: Map<string, string>;
  open: boolean;
}

/** Named in-memory stores of this process, so that close-and-reopen finds the data again. */
const registry = new Map<string, MemoryData>();

/**
 * An in-memory {@link KvStore} with the same order and semantics as the LSM stores (atomic batches,
 * snapshot iterators, code point key order). For tests: the contract suite runs against it beside
 * the real stores. `name` identifies the store within this process: opening it again after `close`
 * finds the data; opening it while open gives WEIR_STATE_LOCKED, as the LSM stores do.
 */
export function openMemoryKvStore(name: string): KvStore {
  let data = registry.get(name);
  if (data === undefined) {
    data = { keys: [], values: new Map(), open: false };
    registry.set(name, data);
  }
  if (data.open) throw new WeirError('WEIR_STATE_LOCKED', `state store memory:${name} is in use by another job`);
  data.open = true;
  return new MemoryKvStore(data, name);
}

/** Forgets a named in-memory store (tests clean up with it). */
export function dropMemoryKvStore(name: string): void {
  registry.delete(name);
}

function lowerBound(keys: readonly string[], key: string, strict: boolean): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const c = compareKeys(keys[mid], key);
    if (c < 0 || (strict && c === 0)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The index range `[from, to)` of `range` in sorted `keys`. */
function bounds(keys: readonly string[], range: KvRange): [number, number] {
  let from = 0;
  let to = keys.length;
  if (range.gte !== undefined) from = Math.max(from, lowerBound(keys, range.gte, false));
  if (range.gt !== undefined) from = Math.max(from, lowerBound(keys, range.gt, true));
  if (range.lt !== undefined) to = Math.min(to, lowerBound(keys, range.lt, false));
  if (range.lte !== undefined) to = Math.min(to, lowerBound(keys, range.lte, true));
  return [from, Math.max(from, to)];
}

class MemoryKvStore implements KvStore {
  readonly kind = 'memory' as const;
  readonly location: string;
  private closed = false;

  constructor(
    private readonly data: MemoryData,
    name: string,
  ) {
    this.location = `memory:${name}`;
  }

  private check(): void {
    if (this.closed) throw new WeirError('WEIR_STATE_IO', `state store ${this.location} is closed`);
  }

  writeBatch(): KvWriteBatch {
    const ops: KvOp[] = [];
    let done = false;
    return {
      put: (key, value) => void ops.push({ type: 'put', key, value }),
      putBytes: (key, value) => void ops.push({ type: 'put', key, value: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('utf8') }),
      del: (key) => void ops.push({ type: 'del', key }),
      get length() {
        return ops.length;
      },
      write: async (options?: KvWriteOptions) => {
        if (done) throw new WeirError('WEIR_INTERNAL', 'a write batch was written or aborted twice');
        done = true;
        await this.batch(ops, options);
      },
      abort: () => {
        done = true;
      },
    };
  }

  async batch(ops: readonly KvOp[], _options?: KvWriteOptions): Promise<void> {
    this.check();
    if (ops.length === 0) return;
    const values = new Map(this.data.values);
    let removed = false;
    for (const op of ops) {
      if (op.type === 'put') values.set(op.key, op.value);
      else if (values.delete(op.key)) removed = true;
    }
    const old = this.data.keys;
    const kept = removed ? old.filter((k) => values.has(k)) : old;
    const added = [...new Set(ops.filter((o) => o.type === 'put' && !this.data.values.has(o.key)).map((o) => o.key))].filter((k) => values.has(k));
    added.sort(compareKeys);
    const keys: string[] = [];
    let i = 0;
    let j = 0;
    while (i < kept.length || j < added.length) {
      if (j >= added.length || (i < kept.length && compareKeys(kept[i], added[j]) < 0)) keys.push(kept[i++]);
      else keys.push(added[j++]);
    }
    this.data.keys = keys;
    this.data.values = values;
  }

  async getMany(keys: readonly string[]): Promise<(string | undefined)[]> {
    this.check();
    return keys.map((k) => this.data.values.get(k));
  }

  async *chunks(range: KvRange = {}, chunkSize = DEFAULT_CHUNK): AsyncGenerator<KvEntry[], void, undefined> {
    this.check();
    const { keys, values } = this.data; // the snapshot: batches replace both
    const [from, to] = bounds(keys, range);
    let left = range.limit ?? Infinity;
    if (range.reverse) {
      for (let i = to; i > from && left > 0; ) {
        const n = Math.min(chunkSize, i - from, left);
        const chunk: KvEntry[] = [];
        for (let k = 0; k < n; k++, i--) chunk.push([keys[i - 1], values.get(keys[i - 1])!]);
        left -= n;
        yield chunk;
      }
    } else {
      for (let i = from; i < to && left > 0; ) {
        const n = Math.min(chunkSize, to - i, left);
        const chunk: KvEntry[] = [];
        for (let k = 0; k < n; k++, i++) chunk.push([keys[i], values.get(keys[i])!]);
        left -= n;
        yield chunk;
      }
    }
  }

  async clear(range: KvRange = {}): Promise<void> {
    this.check();
    const [from, to] = bounds(this.data.keys, range);
    await this.batch(this.data.keys.slice(from, to).map((key) => ({ type: 'del', key })));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.data.open = false;
  }
}

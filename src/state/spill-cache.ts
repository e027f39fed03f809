import { rm } from 'node:fs/promises';
import type { Logger } from 'pino';
import { WeirError } from '../errors.js';
import { encodePart, encodeTuple, type KeyPart } from './store/key-codec.js';
import { openKvStore, type KvStore, type KvStoreKind } from './store/kv-store.js';
import { decodeValue, encodeValue } from './store/value-codec.js';

/** Where and how much keyed state an operator keeps in memory (`state: { cacheBytes }`). */
export interface SpillConfig {
  /** About how many bytes of keyed state stay in memory; colder keys go to the spill store. */
  readonly cacheBytes: number;
  /** The spill store's directory (one per operator and thread; emptied when opened, removed when closed). */
  readonly dir: string;
  readonly kind: KvStoreKind;
}

/** One spillable state table of an operator: its in-memory map and its changed keys. */
export interface SpillTable {
  /** The table name, as in checkpoints. */
  readonly table: string;
  readonly map: Map<unknown, unknown>;
  /** Keys changed since the last snapshot (null without checkpoints). */
  readonly dirty: Set<unknown> | null;
}

/** Counters of a spill cache: `weir_state_evicted_total{step}`, `weir_state_loaded_total{step}` (keys). */
export interface SpillCounters {
  readonly evicted: { value: number };
  readonly loaded: { value: number };
}

/** A changed key evicted before the next snapshot: its encoded value, or undefined for a delete. */
export type EvictedChange = string | undefined;

/** Estimated heap bytes per resident key beyond its encoded values (the key, its LRU entry). */
const KEY_OVERHEAD = 160;
/** Estimated heap bytes per table a key has a value in (map entry, object headers; Maps and Sets weigh more than their encoding). */
const TABLE_OVERHEAD = 100;
/** Heap bytes per encoded char (JS objects take more room than their JSON). */
const HEAP_PER_CHAR = 2;
/** Evict down to this share of the budget, so that eviction runs in batches. */
const LOW_WATER = 0.8;
/** Bits of the filter of spilled keys (1 MiB; ~3% false positives at 1M spilled keys). */
const FILTER_BITS = 1 << 23;

/**
 * A write-back cache in front of a spill store for the keyed state of one operator: the keys used
 * most recently stay in memory (about `cacheBytes` of them, estimated from their encoded size); when
 * the estimate goes over the budget after a batch, the least recently used keys are written to the
 * spill store (one write batch) and dropped from memory. Before a batch is processed,
 * {@link prefetch} reads the batch's non-resident keys back with ONE `getMany` — never an await per
 * record — and only for keys a filter says may have been spilled (new keys cost nothing).
 *
 * The spill store is a cache, not the durable state: checkpoints still hold every key's value (a
 * changed key evicted before the next checkpoint keeps its encoded value for it, see
 * {@link takeEvicted}), and the spill store is emptied when the job starts. Keys that `pinned` says
 * must stay (pending timers) are never evicted.
 */
export class SpillCache {
  /** Resident keys, least recently used first. */
  private readonly lru = new Map<unknown, true>();
  private readonly filter = new Uint32Array(FILTER_BITS >>> 5);
  private readonly evicted: Map<unknown, EvictedChange>[];
  private writing: Promise<void> | null = null;
  private bytesPerKey = 0;
  private warned = false;
  /** Figures for tests and logs. */
  readonly stats = { evictions: 0, loads: 0, reads: 0, filterSkips: 0 };

  private constructor(
    private readonly store: KvStore,
    private readonly config: SpillConfig,
    private readonly tables: readonly SpillTable[],
    private readonly pinned: (key: unknown) => boolean,
    private readonly logger: Logger,
    private readonly counters: SpillCounters,
  ) {
    this.evicted = tables.map(() => new Map());
    this.overhead = KEY_OVERHEAD + TABLE_OVERHEAD * tables.length;
  }

  /** Heap bytes per key besides its encoded values. */
  private readonly overhead: number;

  /** Opens an empty spill store in `config.dir`. */
  static async open(config: SpillConfig, tables: readonly SpillTable[], pinned: (key: unknown) => boolean, logger: Logger, counters: SpillCounters): Promise<SpillCache> {
    if (!(Number.isFinite(config.cacheBytes) && config.cacheBytes > 0)) {
      throw new WeirError('WEIR_INVALID_ARGUMENT', `state.cacheBytes must be a positive number of bytes, got ${config.cacheBytes}`);
    }
    await rm(config.dir, { recursive: true, force: true });
    const store = await openKvStore(config.dir, config.kind);
    return new SpillCache(store, config, tables, pinned, logger, counters);
  }

  /** Keys in memory. */
  get residentKeys(): number {
    return this.lru.size;
  }

  /** The estimate of the resident state's heap bytes. */
  get residentBytes(): number {
    return this.lru.size * this.bytesPerKey;
  }

  /**
   * Marks the keys of a batch as used and reads back those that were spilled: null when they are all
   * in memory (or new), else a promise that resolves once they are.
   */
  prefetch(keys: readonly unknown[]): Promise<void> | null {
    const lru = this.lru;
    let missing: unknown[] | null = null;
    let seen: Set<unknown> | null = null;
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i];
      if (lru.has(k)) {
        lru.delete(k);
        lru.set(k, true);
        continue;
      }
      if (seen !== null && seen.has(k)) continue;
      if (!this.mayBeSpilled(k)) {
        this.stats.filterSkips++;
        lru.set(k, true);
        continue;
      }
      (seen ??= new Set()).add(k);
      (missing ??= []).push(k);
    }
    if (missing === null) return null;
    return this.load(missing);
  }

  /** After a batch: evicts least recently used keys while the estimate is over the budget. */
  evictIfOver(): void {
    const budget = this.config.cacheBytes;
    if (this.bytesPerKey === 0) {
      if (this.lru.size * this.overhead <= budget) return;
      this.bytesPerKey = this.sampleBytesPerKey();
    }
    if (this.lru.size * this.bytesPerKey <= budget) return;
    const target = Math.floor((budget * LOW_WATER) / this.bytesPerKey);
    const batch = this.store.writeBatch();
    let encodedChars = 0;
    let evicted = 0;
    let skipped = 0;
    for (const k of this.lru.keys()) {
      if (this.lru.size <= target) break;
      if (this.pinned(k)) {
        // Keys with pending timers stay; move them to the back so the scan goes on past them.
        if (++skipped > this.lru.size) break;
        this.lru.delete(k);
        this.lru.set(k, true);
        continue;
      }
      encodedChars += this.evict(k, batch);
      evicted++;
    }
    if (evicted > 0) {
      this.stats.evictions += evicted;
      this.counters.evicted.value += evicted;
      // Re-estimate from what was just encoded (values change shape as a job runs).
      const measured = (encodedChars / evicted) * HEAP_PER_CHAR + this.overhead;
      this.bytesPerKey = this.bytesPerKey * 0.5 + measured * 0.5;
      const previous = this.writing;
      const write = batch.write();
      this.writing = previous === null ? write : previous.then(() => write);
    } else {
      batch.abort();
    }
    if (this.lru.size > target && !this.warned) {
      this.warned = true;
      this.logger.warn({ resident: this.lru.size, cacheBytes: budget }, 'state cache over budget: the keys left in memory all have pending timers');
    }
  }

  /** The changed keys evicted since the last call, per table (for the snapshot); forgets them. */
  takeEvicted(): Map<unknown, EvictedChange>[] {
    const out = this.evicted.map((m) => new Map(m));
    for (const m of this.evicted) m.clear();
    return out;
  }

  /** Forgets every key (a restore fills the tables again). */
  reset(): void {
    this.lru.clear();
    this.filter.fill(0);
    for (const m of this.evicted) m.clear();
  }

  /** Takes a key the operator put into its tables directly (restore) as resident. */
  adopt(key: unknown): void {
    this.lru.set(key, true);
  }

  async close(): Promise<void> {
    try {
      await this.writing;
    } finally {
      await this.store.close();
      await rm(this.config.dir, { recursive: true, force: true });
    }
  }

  /** Writes key `k`'s values (all tables in one entry) to the batch and drops it from memory. */
  private evict(k: unknown, batch: ReturnType<KvStore['writeBatch']>): number {
    let id: string;
    try {
      id = spillKey(k);
    } catch (e) {
      throw new WeirError('WEIR_INVALID_ARGUMENT', `state.cacheBytes: key ${JSON.stringify(String(k)).slice(0, 60)} cannot be spilled: spilled keys must be strings, numbers, bigints, booleans or arrays of them`, { cause: e });
    }
    let entry = '';
    let any = false;
    for (let t = 0; t < this.tables.length; t++) {
      const { map, dirty } = this.tables[t];
      const v = map.get(k);
      let encoded: string | undefined;
      if (v === undefined) entry += '-';
      else {
        encoded = encodeValue(v);
        entry += `${encoded.length}:${encoded}`;
        map.delete(k);
        any = true;
      }
      if (dirty !== null && dirty.delete(k)) this.evicted[t].set(k, encoded);
    }
    if (any) batch.put(id, entry);
    else batch.del(id);
    this.lru.delete(k);
    this.remember(k);
    return entry.length;
  }

  /** Reads spilled keys back into the tables (after the evictions written so far). */
  private async load(keys: unknown[]): Promise<void> {
    if (this.writing !== null) {
      const w = this.writing;
      await w;
      if (this.writing === w) this.writing = null;
    }
    const ids = keys.map(spillKey);
    this.stats.reads++;
    const values = await this.store.getMany(ids);
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i];
      // A key may have become resident meanwhile (another batch's read): memory is newer then.
      if (this.lru.has(k)) continue;
      const parts = splitEntry(values[i], this.tables.length);
      for (let t = 0; t < this.tables.length; t++) {
        const { map, dirty } = this.tables[t];
        const s = parts[t];
        if (s !== undefined) map.set(k, decodeValue(s));
        // A changed key evicted and now back: it is a changed key in memory again (a delete when absent).
        const ev = this.evicted[t];
        if (ev.has(k)) {
          ev.delete(k);
          dirty?.add(k);
        }
      }
      this.lru.set(k, true);
      this.stats.loads++;
      this.counters.loaded.value++;
    }
  }

  private sampleBytesPerKey(): number {
    let chars = 0;
    let n = 0;
    for (const k of this.lru.keys()) {
      for (const { map } of this.tables) {
        const v = map.get(k);
        if (v !== undefined) chars += encodeValue(v).length;
      }
      if (++n === 64) break;
    }
    return n === 0 ? this.overhead : (chars / n) * HEAP_PER_CHAR + this.overhead;
  }

  private remember(k: unknown): void {
    const h = hashKey(k);
    const h2 = (Math.imul(h, 0x9e3779b1) >>> 0) | 1;
    for (let i = 0; i < 3; i++) {
      const bit = (h + i * h2) & (FILTER_BITS - 1);
      this.filter[bit >>> 5] |= 1 << (bit & 31);
    }
  }

  private mayBeSpilled(k: unknown): boolean {
    const h = hashKey(k);
    const h2 = (Math.imul(h, 0x9e3779b1) >>> 0) | 1;
    for (let i = 0; i < 3; i++) {
      const bit = (h + i * h2) & (FILTER_BITS - 1);
      if ((this.filter[bit >>> 5] & (1 << (bit & 31))) === 0) return false;
    }
    return true;
  }
}

/** The spill store's key of a key (one entry holds all its tables). */
function spillKey(key: unknown): string {
  return encodeTuple([key as KeyPart]);
}

/**
 * The values of one spill entry, per table: the entry is `-` (absent) or `<length>:<encoded value>`
 * per table, in order; undefined (no entry) means absent everywhere.
 */
function splitEntry(entry: string | undefined, tables: number): (string | undefined)[] {
  const parts = new Array<string | undefined>(tables);
  if (entry === undefined) return parts;
  let at = 0;
  for (let t = 0; t < tables; t++) {
    if (entry.charCodeAt(at) === 0x2d /* - */) {
      at++;
      continue;
    }
    const colon = entry.indexOf(':', at);
    const len = Number(entry.slice(at, colon));
    if (colon < 0 || !Number.isInteger(len)) throw new WeirError('WEIR_STATE_CORRUPT', 'a spilled state entry cannot be decoded');
    parts[t] = entry.slice(colon + 1, colon + 1 + len);
    at = colon + 1 + len;
  }
  return parts;
}

/** FNV-1a of a key's encoding (strings and numbers without encoding them first). */
function hashKey(k: unknown): number {
  let h = 2166136261;
  if (typeof k === 'string') {
    for (let i = 0; i < k.length; i++) h = Math.imul(h ^ k.charCodeAt(i), 16777619);
  } else if (typeof k === 'number') {
    h = Math.imul(h ^ (k | 0), 16777619);
    h = Math.imul(h ^ Math.floor(k / 4294967296), 16777619);
    h = Math.imul(h ^ Math.round((k % 1) * 1e9), 16777619);
  } else {
    const e = encodePart(k as KeyPart);
    for (let i = 0; i < e.length; i++) h = Math.imul(h ^ e.charCodeAt(i), 16777619);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}

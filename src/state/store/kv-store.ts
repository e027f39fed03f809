import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { WeirError, messageOf } from '../../errors.js';

/**
 * The ordered key-value store under durable state: one LSM database (LevelDB through classic-level,
 * or RocksDB through @nxtedition/rocksdb, both abstract-level) with string keys and values, compared
 * by code point (the UTF-8 byte order the LSM keeps). Built for batches: writes go in one atomic
 * batch, reads in chunks — never one await per entry.
 *
 * Keys and values are strings because reading them back is ~3x faster than Buffers through
 * abstract-level; writes go through a scratch Buffer (passing Buffers in is ~3x faster than strings).
 */
export type KvStoreKind = 'classic-level' | 'rocksdb';

/** A range of keys; bounds are encoded keys. */
export interface KvRange {
  readonly gt?: string;
  readonly gte?: string;
  readonly lt?: string;
  readonly lte?: string;
  readonly reverse?: boolean;
  /** At most this many entries. */
  readonly limit?: number;
}

/** One entry as the stores return them: `[key, value]`. */
export type KvEntry = [key: string, value: string];

/** One operation of a batch. */
export type KvOp = { readonly type: 'put'; readonly key: string; readonly value: string } | { readonly type: 'del'; readonly key: string };

/** Options of a write. */
export interface KvWriteOptions {
  /** Wait until the write is on disk (fsync of the log), not only in the OS. Default false. */
  readonly sync?: boolean;
}

/** A batch being built: applied atomically (all or nothing) by `write`. */
export interface KvWriteBatch {
  put(key: string, value: string): void;
  /** A put of a value given as its UTF-8 bytes (valid UTF-8: it reads back as a string); the batch copies them at once. */
  putBytes(key: string, value: Uint8Array): void;
  del(key: string): void;
  /** Operations added so far. */
  readonly length: number;
  write(options?: KvWriteOptions): Promise<void>;
  /** Drops the batch without writing it. */
  abort(): void;
}

/** An open store. Calls may overlap; a batch is atomic; an iterator reads a snapshot. */
export interface KvStore {
  readonly kind: KvStoreKind | 'memory';
  /** The directory (absolute), or `memory:` for the in-memory store. */
  readonly location: string;
  writeBatch(): KvWriteBatch;
  /** One atomic batch of puts and deletes. */
  batch(ops: readonly KvOp[], options?: KvWriteOptions): Promise<void>;
  /** Values of `keys` (undefined where absent), in one round trip. */
  getMany(keys: readonly string[]): Promise<(string | undefined)[]>;
  /**
   * The entries of `range` in key order (reverse order with `reverse`), `chunkSize` at a time, from a
   * snapshot taken at the first read. Breaking out of the loop closes the iterator.
   */
  chunks(range?: KvRange, chunkSize?: number): AsyncGenerator<KvEntry[], void, undefined>;
  /** Deletes every entry of `range`. */
  clear(range?: KvRange): Promise<void>;
  close(): Promise<void>;
}

/** Options of {@link openKvStore}. */
export interface KvStoreOptions {
  /** Create the directory and the database when missing (default true). */
  readonly createIfMissing?: boolean;
  /** LevelDB/RocksDB block cache in bytes (default: the library's). */
  readonly cacheBytes?: number;
  /** LevelDB write buffer (memtable) size in bytes (default 64 MiB: checkpoints are large batches). */
  readonly writeBufferBytes?: number;
}

/** The default number of entries per chunk read. */
export const DEFAULT_CHUNK = 1000;

/** The part of abstract-level weir uses (both classic-level and @nxtedition/rocksdb have it). */
interface LevelIterator {
  nextv(size: number): Promise<KvEntry[]>;
  close(): Promise<void>;
}
interface LevelChainedBatch {
  put(key: Uint8Array, value: Uint8Array): unknown;
  del(key: Uint8Array): unknown;
  write(options?: object): Promise<void>;
  close(): Promise<void>;
  readonly length: number;
}
interface LevelDb {
  open(): Promise<void>;
  close(): Promise<void>;
  batch(): LevelChainedBatch;
  getMany(keys: string[], options?: object): Promise<(string | undefined | null)[]>;
  iterator(options?: object): LevelIterator;
  clear(options?: object): Promise<void>;
}
type LevelCtor = new (location: string, options?: object) => LevelDb;

const UTF8 = { keyEncoding: 'utf8', valueEncoding: 'utf8' } as const;
const BUFFERS = { keyEncoding: 'buffer', valueEncoding: 'buffer' } as const;

async function loadLevel(kind: KvStoreKind): Promise<LevelCtor> {
  // Both are loaded on demand: a job without durable state never loads a native addon, and
  // @nxtedition/rocksdb is an optional dependency. A variable specifier keeps TypeScript from
  // requiring type declarations the rocksdb package does not ship.
  const spec = kind === 'rocksdb' ? '@nxtedition/rocksdb' : 'classic-level';
  let mod: Record<string, unknown>;
  try {
    mod = (await import(spec)) as Record<string, unknown>;
  } catch (e) {
    const hint = kind === 'rocksdb' ? `install it (npm install @nxtedition/rocksdb: an optional dependency with prebuilt binaries for linux-x64 and darwin-arm64) or use state: 'classic-level'` : 'reinstall weir (classic-level is a dependency)';
    throw new WeirError('WEIR_STATE_BACKEND_MISSING', `state backend ${kind} cannot be loaded (${spec}: ${messageOf(e)}): ${hint}`, { cause: e });
  }
  const ctor = (kind === 'rocksdb' ? mod.RocksLevel : mod.ClassicLevel) ?? (mod.default as Record<string, unknown> | undefined)?.[kind === 'rocksdb' ? 'RocksLevel' : 'ClassicLevel'];
  if (typeof ctor !== 'function') throw new WeirError('WEIR_STATE_BACKEND_MISSING', `state backend ${kind}: ${spec} does not export ${kind === 'rocksdb' ? 'RocksLevel' : 'ClassicLevel'}`);
  return ctor as LevelCtor;
}

/** The code of an abstract-level error, looking through its cause (open errors wrap the real one). */
function levelCode(e: unknown): string | undefined {
  for (let x: unknown = e, i = 0; x && i < 4; x = (x as { cause?: unknown }).cause, i++) {
    const code = (x as { code?: unknown }).code;
    if (typeof code === 'string' && code !== 'LEVEL_DATABASE_NOT_OPEN') return code;
  }
  return undefined;
}

function deepestMessage(e: unknown): string {
  let x: unknown = e;
  while (x && (x as { cause?: unknown }).cause) x = (x as { cause?: unknown }).cause;
  return messageOf(x);
}

/**
 * Opens (creating it if missing) the store in `dir`. A database another process (or another open
 * store in this one) holds gives WEIR_STATE_LOCKED; unreadable files give WEIR_STATE_CORRUPT; a
 * backend that cannot be loaded gives WEIR_STATE_BACKEND_MISSING. Every message names the directory.
 */
export async function openKvStore(dir: string, kind: KvStoreKind, options: KvStoreOptions = {}): Promise<KvStore> {
  if (kind !== 'classic-level' && kind !== 'rocksdb') throw new WeirError('WEIR_INVALID_ARGUMENT', `unknown state store ${JSON.stringify(kind)} (use 'classic-level' or 'rocksdb')`);
  const Level = await loadLevel(kind);
  const location = resolve(dir);
  const createIfMissing = options.createIfMissing ?? true;
  try {
    if (createIfMissing) mkdirSync(location, { recursive: true });
  } catch (e) {
    throw new WeirError('WEIR_STATE_IO', `state directory ${location} cannot be created: ${messageOf(e)}`, { cause: e });
  }
  const dbOptions: Record<string, unknown> = { ...BUFFERS, createIfMissing, errorIfExists: false };
  if (kind === 'classic-level') {
    dbOptions.writeBufferSize = options.writeBufferBytes ?? 64 * 1024 * 1024;
    if (options.cacheBytes !== undefined) dbOptions.cacheSize = options.cacheBytes;
  } else {
    // @nxtedition/rocksdb compresses its write-ahead log with zstd by default, inside `batch.write`,
    // which it runs synchronously on the main thread: ~170 ms of a stalled event loop for the 27 MB one
    // checkpoint of 1M keys writes, against ~25 ms uncompressed (measured). Tables are still compressed
    // (zstd) when the memtable is flushed, on RocksDB's own threads.
    dbOptions.walCompression = false;
    if (options.cacheBytes !== undefined) dbOptions.cacheSize = options.cacheBytes;
  }
  let db: LevelDb;
  try {
    db = new Level(location, dbOptions);
    await db.open();
  } catch (e) {
    const code = levelCode(e);
    if (code === 'LEVEL_LOCKED') {
      throw new WeirError('WEIR_STATE_LOCKED', `state store ${location} (${kind}) is in use by another job or process: ${deepestMessage(e)}`, { cause: e });
    }
    if (code === 'LEVEL_CORRUPTION') {
      throw new WeirError('WEIR_STATE_CORRUPT', `state store ${location} (${kind}) is corrupt and cannot be opened: ${deepestMessage(e)}`, { cause: e });
    }
    throw new WeirError('WEIR_STATE_IO', `state store ${location} (${kind}) cannot be opened: ${deepestMessage(e)}`, { cause: e });
  }
  return new LevelKvStore(db, kind, location);
}

class LevelKvStore implements KvStore {
  private closed = false;

  constructor(
    private readonly db: LevelDb,
    readonly kind: KvStoreKind,
    readonly location: string,
  ) {}

  private wrap(what: string, e: unknown): WeirError {
    if (e instanceof WeirError) return e;
    const code = levelCode(e);
    if (code === 'LEVEL_CORRUPTION') return new WeirError('WEIR_STATE_CORRUPT', `state store ${this.location}: ${what} failed: ${deepestMessage(e)}`, { cause: e });
    return new WeirError('WEIR_STATE_IO', `state store ${this.location}: ${what} failed: ${deepestMessage(e)}`, { cause: e });
  }

  writeBatch(): KvWriteBatch {
    return new LevelWriteBatch(this, this.db.batch());
  }

  /** @internal */
  async commit(batch: LevelChainedBatch, options: KvWriteOptions | undefined): Promise<void> {
    try {
      await batch.write({ sync: options?.sync ?? false });
    } catch (e) {
      throw this.wrap('a batch write', e);
    }
  }

  async batch(ops: readonly KvOp[], options?: KvWriteOptions): Promise<void> {
    const b = this.writeBatch();
    for (const op of ops) {
      if (op.type === 'put') b.put(op.key, op.value);
      else b.del(op.key);
    }
    await b.write(options);
  }

  async getMany(keys: readonly string[]): Promise<(string | undefined)[]> {
    if (keys.length === 0) return [];
    let got: (string | undefined | null)[];
    try {
      got = await this.db.getMany(keys as string[], UTF8);
    } catch (e) {
      throw this.wrap('getMany', e);
    }
    for (let i = 0; i < got.length; i++) if (got[i] === null) got[i] = undefined;
    return got as (string | undefined)[];
  }

  async *chunks(range: KvRange = {}, chunkSize = DEFAULT_CHUNK): AsyncGenerator<KvEntry[], void, undefined> {
    let it: LevelIterator;
    try {
      it = this.db.iterator({ ...rangeOptions(range), ...UTF8 });
    } catch (e) {
      throw this.wrap('an iterator', e);
    }
    try {
      for (;;) {
        let chunk: KvEntry[];
        try {
          chunk = await it.nextv(chunkSize);
        } catch (e) {
          throw this.wrap('a range read', e);
        }
        if (chunk.length === 0) return;
        yield chunk;
      }
    } finally {
      await it.close().catch(() => undefined);
    }
  }

  async clear(range: KvRange = {}): Promise<void> {
    try {
      await this.db.clear({ ...rangeOptions(range), ...UTF8 });
    } catch (e) {
      throw this.wrap('clear', e);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.db.close();
    } catch (e) {
      throw this.wrap('close', e);
    }
  }
}

function rangeOptions(r: KvRange): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  if (r.gt !== undefined) o.gt = r.gt;
  if (r.gte !== undefined) o.gte = r.gte;
  if (r.lt !== undefined) o.lt = r.lt;
  if (r.lte !== undefined) o.lte = r.lte;
  if (r.reverse) o.reverse = true;
  if (r.limit !== undefined) o.limit = r.limit;
  return o;
}

class LevelWriteBatch implements KvWriteBatch {
  private static scratch: Buffer = Buffer.allocUnsafe(64 * 1024);
  private done = false;

  constructor(
    private readonly store: LevelKvStore,
    private readonly batch: LevelChainedBatch,
  ) {}

  get length(): number {
    return this.batch.length;
  }

  put(key: string, value: string): void {
    // Through a reused scratch Buffer: the native batch copies the bytes at once, and N-API takes
    // Buffers ~3x faster than strings. Each UTF-16 unit is at most 3 UTF-8 bytes.
    const need = (key.length + value.length) * 3;
    let s = LevelWriteBatch.scratch;
    if (need > s.length) s = LevelWriteBatch.scratch = Buffer.allocUnsafe(Math.max(need, s.length * 2));
    const n = s.write(key, 0);
    const m = s.write(value, n);
    this.batch.put(s.subarray(0, n), s.subarray(n, n + m));
  }

  putBytes(key: string, value: Uint8Array): void {
    const need = key.length * 3;
    let s = LevelWriteBatch.scratch;
    if (need > s.length) s = LevelWriteBatch.scratch = Buffer.allocUnsafe(Math.max(need, s.length * 2));
    const n = s.write(key, 0);
    this.batch.put(s.subarray(0, n), value);
  }

  del(key: string): void {
    const need = key.length * 3;
    let s = LevelWriteBatch.scratch;
    if (need > s.length) s = LevelWriteBatch.scratch = Buffer.allocUnsafe(Math.max(need, s.length * 2));
    const n = s.write(key, 0);
    this.batch.del(s.subarray(0, n));
  }

  async write(options?: KvWriteOptions): Promise<void> {
    if (this.done) throw new WeirError('WEIR_INTERNAL', 'a write batch was written or aborted twice');
    this.done = true;
    if (this.batch.length === 0) {
      await this.batch.close();
      return;
    }
    await this.store.commit(this.batch, options);
  }

  abort(): void {
    if (this.done) return;
    this.done = true;
    void this.batch.close().catch(() => undefined);
  }
}

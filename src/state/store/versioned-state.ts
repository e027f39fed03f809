import { createHash } from 'node:crypto';
import { WeirError, messageOf } from '../../errors.js';
import { KeyReader, encodeNumber, encodePart, encodeTuple, prefixEnd, trailingNumber, NUMBER_WIDTH, type KeyPart } from './key-codec.js';
import type { KvEntry, KvRange, KvStore, KvWriteBatch } from './kv-store.js';
import { decodeValue, encodeValue } from './value-codec.js';

/**
 * Versioned (MVCC) keyed state with checkpoint manifests, on one {@link KvStore}
 * (docs/design/durable-state.md). Key spaces (encoded tuples):
 *
 * - `s | operator | table | keyGroup | namespace | key | checkpointId` → a value, or `''` (tombstone);
 * - `m | checkpointId` → the manifest of a checkpoint;
 * - `x | 'meta'` → the store's own bookkeeping (highest id used, abandoned ids, GC cursor).
 *
 * A checkpoint writes only its dirty entries, as new versions, together with its manifest in ONE
 * atomic batch; reading as of checkpoint C takes, per logical key, the newest version <= C. Other
 * prefixes are free for the caller (e.g. an unversioned spill area).
 *
 * One writer at a time: `writeCheckpoint`, `resumeFrom` and `retain` must not overlap (they throw
 * WEIR_INTERNAL if they do). Reads may run beside them: they read a snapshot.
 */

/** The manifest format this version of weir writes and reads. */
export const MANIFEST_FORMAT = 1;

/** What the caller puts in a checkpoint's manifest. */
export interface ManifestInput {
  /** Wall-clock time of the checkpoint, epoch ms. */
  readonly time: number;
  /** Per source: its position (offsets, ...) and watermark state. */
  readonly sources: Readonly<Record<string, unknown>>;
  /** Per sink: its pre-commit handle. */
  readonly sinks: Readonly<Record<string, unknown>>;
  /** Per operator: its metadata (watermarks, timers' bookkeeping, ...). */
  readonly operators: Readonly<Record<string, unknown>>;
}

/** A checkpoint's manifest as stored and read back. */
export interface Manifest extends ManifestInput {
  readonly format: typeof MANIFEST_FORMAT;
  readonly id: number;
  /** sha256 (hex) of the stored format and payload. */
  readonly checksum: string;
}

/** A manifest as listed: intact, or why it cannot be used. */
export type ManifestInfo =
  | { readonly id: number; readonly status: 'valid'; readonly manifest: Manifest }
  | { readonly id: number; readonly status: 'corrupt' | 'unknown-format'; readonly error: WeirError };

/** A manifest {@link VersionedState.latestValidManifest} passed over, and why. */
export interface SkippedManifest {
  readonly id: number;
  readonly reason: 'corrupt' | 'unknown-format';
  /** A WEIR_CHECKPOINT_INVALID error that says what is wrong (for the log). */
  readonly error: WeirError;
}

/** Where one state entry lives. */
export interface StateAddress {
  readonly operator: string;
  readonly table: string;
  readonly keyGroup: number;
  readonly namespace: KeyPart;
  readonly key: KeyPart;
}

/**
 * One dirty entry of a checkpoint: `deleted: true` writes a tombstone; otherwise the new value is
 * `encoded` ({@link encodeValue}'s output, when the caller encoded it already, e.g. to capture a
 * mutable accumulator as it was) or else `value`.
 */
export interface StateWrite extends StateAddress {
  readonly value?: unknown;
  readonly encoded?: string;
  readonly deleted?: boolean;
}

/** A live entry as read back. */
export interface StateEntry extends StateAddress {
  readonly value: unknown;
}

/** Which part of the state to read: an operator, a table of it, key groups `[from, to)` of the table. */
export interface StateRange {
  readonly operator?: string;
  readonly table?: string;
  readonly keyGroups?: { readonly from: number; readonly to: number };
}

/** What {@link VersionedState.writeCheckpoint} did. */
export interface CheckpointWriteStats {
  readonly id: number;
  /** State versions written (puts and tombstones). */
  readonly entries: number;
  /** Bytes of keys and values written (UTF-8), manifest included. */
  readonly bytes: number;
}

/** What {@link VersionedState.retain} did. */
export interface RetainStats {
  /** Ids of the manifests dropped. */
  readonly dropped: readonly number[];
  /** State versions the GC step looked at. */
  readonly scanned: number;
  /** State versions it deleted. */
  readonly deleted: number;
  /** True when this step reached the end of the state: the next one starts over. */
  readonly cycleComplete: boolean;
}

/** Options of {@link VersionedState.retain}. */
export interface RetainOptions {
  /** At most about this many state versions are read per call (default 50 000). */
  readonly budget?: number;
}

/** Checkpoint ids `from..to` (inclusive) given up by a `resumeFrom`, and the GC cycle it happened in. */
interface AbandonedRange {
  readonly from: number;
  readonly to: number;
  readonly cycle: number;
}

/** The store's bookkeeping, at `x | 'meta'`. */
interface Meta {
  /** The highest checkpoint id ever written (ids are never reused). */
  maxId: number;
  /** Ids whose versions no checkpoint can see (a fallback skipped them); GC deletes them. */
  abandoned: AbandonedRange[];
  /** Where the next GC step starts (a logical state key), or null: at the beginning. */
  gcCursor: string | null;
  /** Completed GC passes over the whole state. */
  gcCycle: number;
}

const S = encodePart('s');
const M = encodePart('m');
const META_KEY = encodeTuple(['x', 'meta']);
const TOMBSTONE = '';
const CHUNK = 1000;

function manifestKey(id: number): string {
  return M + encodeNumber(id);
}

function isCheckpointId(id: unknown): id is number {
  return typeof id === 'number' && Number.isSafeInteger(id) && id > 0;
}

/** sha256 over what a manifest's checksum covers: its format and its payload. */
function checksumOf(format: string, payload: string): string {
  return createHash('sha256').update(format).update('\n').update(payload).digest('hex');
}

/** The stored form: `format \n checksum \n payload`, payload = encodeValue({ id, time, sources, sinks, operators }). */
function encodeManifest(id: number, input: ManifestInput): { text: string; manifest: Manifest } {
  const body = { id, time: input.time, sources: input.sources, sinks: input.sinks, operators: input.operators };
  const payload = encodeValue(body);
  const format = String(MANIFEST_FORMAT);
  const checksum = checksumOf(format, payload);
  return { text: `${format}\n${checksum}\n${payload}`, manifest: { format: MANIFEST_FORMAT, ...body, checksum } };
}

function invalid(id: number, reason: string, cause?: unknown): WeirError {
  return new WeirError('WEIR_CHECKPOINT_INVALID', `checkpoint ${id}: ${reason}`, { cause });
}

function decodeManifest(id: number, text: string): ManifestInfo {
  const nl = text.indexOf('\n');
  const format = nl === -1 ? text : text.slice(0, nl);
  if (!/^[0-9]+$/.test(format)) return { id, status: 'corrupt', error: invalid(id, 'manifest is corrupt (no format version)') };
  if (Number(format) !== MANIFEST_FORMAT) {
    return { id, status: 'unknown-format', error: invalid(id, `manifest has format ${format}, this weir reads format ${MANIFEST_FORMAT} (written by a newer weir?)`) };
  }
  const nl2 = text.indexOf('\n', nl + 1);
  if (nl2 === -1) return { id, status: 'corrupt', error: invalid(id, 'manifest is truncated') };
  const checksum = text.slice(nl + 1, nl2);
  const payload = text.slice(nl2 + 1);
  if (checksumOf(format, payload) !== checksum) return { id, status: 'corrupt', error: invalid(id, 'manifest fails its checksum (corrupt or truncated)') };
  let body: Record<string, unknown>;
  try {
    body = decodeValue(payload) as Record<string, unknown>;
  } catch (e) {
    return { id, status: 'corrupt', error: invalid(id, `manifest cannot be decoded: ${messageOf(e)}`, e) };
  }
  if (typeof body !== 'object' || body === null || body.id !== id || typeof body.time !== 'number') {
    return { id, status: 'corrupt', error: invalid(id, 'manifest does not describe this checkpoint') };
  }
  const manifest = {
    format: MANIFEST_FORMAT,
    id,
    time: body.time,
    sources: (body.sources ?? {}) as Record<string, unknown>,
    sinks: (body.sinks ?? {}) as Record<string, unknown>,
    operators: (body.operators ?? {}) as Record<string, unknown>,
    checksum,
  } satisfies Manifest;
  return { id, status: 'valid', manifest };
}

/** The key range of a {@link StateRange}. */
function stateBounds(range: StateRange): KvRange {
  if (range.table !== undefined && range.operator === undefined) throw new WeirError('WEIR_INTERNAL', 'a state range with a table needs its operator');
  if (range.keyGroups !== undefined && range.table === undefined) throw new WeirError('WEIR_INTERNAL', 'a state range of key groups needs its operator and table');
  let prefix = S;
  if (range.operator !== undefined) prefix += encodePart(range.operator);
  if (range.table !== undefined) prefix += encodePart(range.table);
  if (range.keyGroups !== undefined) {
    const { from, to } = range.keyGroups;
    return { gte: prefix + encodeNumber(from), lt: prefix + encodeNumber(to) };
  }
  return { gte: prefix, lt: prefixEnd(prefix) };
}

/** Versioned keyed state and checkpoint manifests on a {@link KvStore}. */
export class VersionedState {
  private meta: Meta;
  /** Ids of the manifests present, ascending (valid or not). */
  private manifestIds: number[];
  /** The checkpoint the live state derives from: undefined until `resumeFrom` or a write. */
  private head: number | null | undefined;
  private busy = false;

  private constructor(
    readonly store: KvStore,
    meta: Meta,
    manifestIds: number[],
  ) {
    this.meta = meta;
    this.manifestIds = manifestIds;
    this.head = manifestIds.length === 0 && meta.maxId === 0 ? null : undefined;
  }

  /** Opens the versioned state kept in `store` (an empty store is a fresh one). */
  static async open(store: KvStore): Promise<VersionedState> {
    const [metaText] = await store.getMany([META_KEY]);
    let meta: Meta = { maxId: 0, abandoned: [], gcCursor: null, gcCycle: 0 };
    if (metaText !== undefined) {
      try {
        meta = decodeValue(metaText) as Meta;
      } catch (e) {
        throw new WeirError('WEIR_STATE_CORRUPT', `state store ${store.location}: its bookkeeping record cannot be decoded: ${messageOf(e)}`, { cause: e });
      }
    }
    const ids: number[] = [];
    for await (const chunk of store.chunks({ gte: M, lt: prefixEnd(M) }, CHUNK)) {
      for (const [k] of chunk) {
        const id = trailingNumber(k);
        if (isCheckpointId(id)) ids.push(id);
      }
    }
    return new VersionedState(store, meta, ids);
  }

  /** The id the next checkpoint should have (ids only grow, also past abandoned ones). */
  get nextCheckpointId(): number {
    return Math.max(this.meta.maxId, this.manifestIds.at(-1) ?? 0) + 1;
  }

  /** The checkpoint the live state derives from (null: a fresh start; undefined: not decided yet). */
  get headCheckpoint(): number | null | undefined {
    return this.head;
  }

  private enter(what: string): void {
    if (this.busy) throw new WeirError('WEIR_INTERNAL', `versioned state: ${what} overlaps another write (one writer at a time)`);
    this.busy = true;
  }

  /**
   * Writes checkpoint `id`: the dirty entries as versions `id` (tombstones for deletes) and its
   * manifest, in ONE atomic batch written with `sync`. `id` must exceed every id used before.
   * Entries go into the batch in the order given (LevelDB/RocksDB insert keys in key order into their
   * memtable several times faster than random ones, but sorting 1M keys in JS costs more than it saves).
   */
  async writeCheckpoint(id: number, entries: Iterable<StateWrite>, input: ManifestInput): Promise<CheckpointWriteStats> {
    if (!isCheckpointId(id)) throw new WeirError('WEIR_INTERNAL', `checkpoint id ${String(id)} is not a positive safe integer`);
    if (id < this.nextCheckpointId) throw new WeirError('WEIR_INTERNAL', `checkpoint id ${id} is not above the ids used so far (next is ${this.nextCheckpointId})`);
    if (this.head === undefined) {
      throw new WeirError('WEIR_INTERNAL', `state store ${this.store.location} holds checkpoints: call resumeFrom(id) (or resumeFrom(null) to start over) before writing one`);
    }
    this.enter('writeCheckpoint');
    try {
      const suffix = encodeNumber(id);
      const batch = this.store.writeBatch();
      let count = 0;
      let bytes = 0;
      // Keys are built from cached prefixes: consecutive entries usually share operator, table, key group and namespace.
      let lastOp: string | undefined;
      let lastTable: string | undefined;
      let lastGroup = NaN;
      let lastNs: KeyPart | undefined;
      let pOpTable = '';
      let pGroup = '';
      let pNs = '';
      for (const e of entries) {
        if (e.operator !== lastOp || e.table !== lastTable) {
          lastOp = e.operator;
          lastTable = e.table;
          pOpTable = S + encodePart(e.operator) + encodePart(e.table);
          lastGroup = NaN;
        }
        if (e.keyGroup !== lastGroup) {
          if (!Number.isInteger(e.keyGroup) || e.keyGroup < 0) throw new WeirError('WEIR_INTERNAL', `key group ${String(e.keyGroup)} is not a non-negative integer`);
          lastGroup = e.keyGroup;
          pGroup = pOpTable + encodeNumber(e.keyGroup);
          lastNs = undefined;
          pNs = '';
        }
        if (pNs === '' || e.namespace !== lastNs || typeof e.namespace === 'object') {
          lastNs = e.namespace;
          pNs = pGroup + encodePart(e.namespace);
        }
        const key = pNs + encodePart(e.key) + suffix;
        const value = e.deleted === true ? TOMBSTONE : e.encoded !== undefined ? e.encoded : encodeValue(e.value);
        batch.put(key, value);
        bytes += key.length + value.length;
        count++;
      }
      const { text } = encodeManifest(id, input);
      const mk = manifestKey(id);
      batch.put(mk, text);
      const meta: Meta = { ...this.meta, maxId: Math.max(this.meta.maxId, id) };
      const metaText = encodeValue(meta);
      batch.put(META_KEY, metaText);
      bytes += mk.length + text.length + META_KEY.length + metaText.length;
      await batch.write({ sync: true });
      this.meta = meta;
      this.manifestIds.push(id);
      this.head = id;
      return { id, entries: count, bytes };
    } finally {
      this.busy = false;
    }
  }

  /** Every manifest present, newest first, each checked (checksum, format). */
  async manifests(): Promise<ManifestInfo[]> {
    const out: ManifestInfo[] = [];
    for await (const chunk of this.store.chunks({ gte: M, lt: prefixEnd(M), reverse: true }, CHUNK)) {
      for (const [k, v] of chunk) {
        const id = trailingNumber(k);
        if (isCheckpointId(id)) out.push(decodeManifest(id, v));
      }
    }
    return out;
  }

  /**
   * The newest intact manifest of a known format, or undefined when the store holds none at all (a
   * fresh store). Each newer manifest passed over is reported to `onSkip` first. When manifests
   * exist but none is usable, it throws WEIR_NO_VALID_CHECKPOINT: never a silent fresh start.
   */
  async latestValidManifest(onSkip: (skipped: SkippedManifest) => void): Promise<Manifest | undefined> {
    const all = await this.manifests();
    const skipped: SkippedManifest[] = [];
    for (const info of all) {
      if (info.status === 'valid') return info.manifest;
      const s: SkippedManifest = { id: info.id, reason: info.status, error: info.error };
      skipped.push(s);
      onSkip(s);
    }
    if (all.length === 0) return undefined;
    throw new WeirError(
      'WEIR_NO_VALID_CHECKPOINT',
      `state store ${this.store.location} holds ${all.length} checkpoint(s) and none can be used: ${skipped.map((s) => `${s.id} (${s.reason})`).join(', ')}; ` +
        'restore the directory from a backup, start from a savepoint, or move it away to start over',
      { cause: skipped[0]?.error },
    );
  }

  /**
   * Declares that the live state continues from checkpoint `id` (after restoring it), or from
   * nothing (`null`: a deliberate fresh start). Every later checkpoint — a corrupt one recovery
   * skipped, or any other — is given up atomically: its manifest is deleted and its versions become
   * invisible (GC deletes them). Required before the first write on a store that holds checkpoints.
   */
  async resumeFrom(id: number | null): Promise<void> {
    if (id !== null && !this.manifestIds.includes(id)) throw new WeirError('WEIR_INTERNAL', `cannot resume from checkpoint ${id}: the store does not hold it`);
    this.enter('resumeFrom');
    try {
      const base = id ?? 0;
      const top = Math.max(this.meta.maxId, this.manifestIds.at(-1) ?? 0);
      const drop = this.manifestIds.filter((m) => m > base);
      if (top > base) {
        const meta: Meta = { ...this.meta, maxId: top, abandoned: [...this.meta.abandoned, { from: base + 1, to: top, cycle: this.meta.gcCycle }] };
        const batch = this.store.writeBatch();
        for (const m of drop) batch.del(manifestKey(m));
        batch.put(META_KEY, encodeValue(meta));
        await batch.write({ sync: true });
        this.meta = meta;
        this.manifestIds = this.manifestIds.filter((m) => m <= base);
      }
      this.head = id;
    } finally {
      this.busy = false;
    }
  }

  private abandonedTest(): ((id: number) => boolean) | undefined {
    const ranges = this.meta.abandoned;
    if (ranges.length === 0) return undefined;
    return (id) => {
      for (const r of ranges) if (id >= r.from && id <= r.to) return true;
      return false;
    };
  }

  /**
   * The live entries as of checkpoint `id` (per logical key the newest version <= id; deleted keys
   * hidden), in key order, a chunk at a time. `id` must be a checkpoint the store holds.
   */
  async *readAsOf(id: number, range: StateRange = {}): AsyncGenerator<StateEntry[], void, undefined> {
    if (!this.manifestIds.includes(id)) throw new WeirError('WEIR_INTERNAL', `cannot read as of checkpoint ${id}: the store does not hold it`);
    const abandoned = this.abandonedTest();
    const decoder = new EntryDecoder();
    let prevLogical: string | undefined;
    let prevKey = '';
    let best: string | undefined; // the value of the newest visible version of prevLogical
    for await (const chunk of this.store.chunks(stateBounds(range), CHUNK)) {
      const out: StateEntry[] = [];
      for (let i = 0; i < chunk.length; i++) {
        const k = chunk[i][0];
        const logical = k.slice(0, k.length - NUMBER_WIDTH);
        if (logical !== prevLogical) {
          if (best !== undefined && best !== TOMBSTONE) out.push(decoder.decode(prevKey, best));
          prevLogical = logical;
          best = undefined;
        }
        const v = trailingNumber(k);
        if (v <= id && (abandoned === undefined || !abandoned(v))) {
          best = chunk[i][1];
          prevKey = k;
        }
      }
      if (out.length > 0) yield out;
    }
    if (best !== undefined && best !== TOMBSTONE) yield [decoder.decode(prevKey, best)];
  }

  /**
   * Keeps the newest `n` manifests and drops the older ones, then runs one bounded step of garbage
   * collection: it goes on from where the last step stopped, reads about `budget` state versions, and
   * deletes those no retained checkpoint can see (superseded versions, tombstones with nothing under
   * them, versions of abandoned checkpoints). Repeated calls sweep the whole state, then start over.
   */
  async retain(n: number, options: RetainOptions = {}): Promise<RetainStats> {
    if (!Number.isInteger(n) || n < 1) throw new WeirError('WEIR_INVALID_ARGUMENT', `checkpoints to retain must be an integer >= 1 (got ${String(n)})`);
    const budget = options.budget ?? 50_000;
    this.enter('retain');
    try {
      const dropped = this.manifestIds.slice(0, Math.max(0, this.manifestIds.length - n));
      const retained = this.manifestIds.slice(dropped.length);
      const abandoned = this.abandonedTest();
      const batch = this.store.writeBatch();
      for (const id of dropped) batch.del(manifestKey(id));

      let scanned = 0;
      let deleted = 0;
      let cursor: string | null = null;
      let complete = true;
      const range: KvRange = { gte: this.meta.gcCursor ?? S, lt: prefixEnd(S) };
      let group: KvEntry[] = [];
      let groupLogical: string | undefined;
      const flush = (): void => {
        deleted += collectGarbage(group, retained, abandoned, batch);
        group = [];
      };
      outer: for await (const chunk of this.store.chunks(range, CHUNK)) {
        for (const entry of chunk) {
          const k = entry[0];
          const logical = k.slice(0, k.length - NUMBER_WIDTH);
          if (logical !== groupLogical) {
            if (group.length > 0) flush();
            if (scanned >= budget) {
              cursor = logical;
              complete = false;
              break outer;
            }
            groupLogical = logical;
          }
          group.push(entry);
          scanned++;
        }
      }
      if (group.length > 0) flush();

      const meta: Meta = { ...this.meta, gcCursor: cursor };
      if (complete) {
        meta.gcCycle = this.meta.gcCycle + 1;
        // An abandoned range is gone once a whole pass that started after it has finished.
        meta.abandoned = this.meta.abandoned.filter((r) => meta.gcCycle < r.cycle + 2);
      }
      batch.put(META_KEY, encodeValue(meta));
      await batch.write({ sync: true });
      this.meta = meta;
      this.manifestIds = retained;
      return { dropped, scanned, deleted, cycleComplete: complete };
    } finally {
      this.busy = false;
    }
  }

  /** Closes the store. */
  async close(): Promise<void> {
    await this.store.close();
  }
}

/**
 * Deletes (into `batch`) the versions of one logical key that no retained checkpoint sees. Version
 * v_i (ascending) is seen by checkpoint r when v_i <= r < v_{i+1}; versions above every retained
 * checkpoint are kept (defensive: a writer's batch is atomic, so there are none); then tombstones
 * at the bottom of what is kept hide nothing and go too.
 */
function collectGarbage(versions: readonly KvEntry[], retained: readonly number[], abandoned: ((id: number) => boolean) | undefined, batch: KvWriteBatch): number {
  let deleted = 0;
  const live: KvEntry[] = [];
  const ids: number[] = [];
  for (const e of versions) {
    const v = trailingNumber(e[0]);
    if (abandoned !== undefined && abandoned(v)) {
      batch.del(e[0]);
      deleted++;
    } else {
      live.push(e);
      ids.push(v);
    }
  }
  const top = retained.length === 0 ? -Infinity : retained[retained.length - 1];
  let bottom = true; // nothing is kept below this version yet
  let r = 0; // index of the first retained checkpoint >= ids[i]
  for (let i = 0; i < live.length; i++) {
    const v = ids[i];
    while (r < retained.length && retained[r] < v) r++;
    const next = i + 1 < live.length ? ids[i + 1] : Infinity;
    const seen = v > top || (r < retained.length && retained[r] < next);
    if (!seen || (bottom && live[i][1] === TOMBSTONE)) {
      batch.del(live[i][0]);
      deleted++;
    } else {
      bottom = false;
    }
  }
  return deleted;
}

/**
 * Decodes state keys, reusing the parts a key shares with the previous one: keys come in order, so
 * runs of them share operator, table, key group and namespace (encodings are prefix-free, so a
 * shared encoded prefix is shared parts).
 */
class EntryDecoder {
  private prefix = '\uFFFF';
  private operator = '';
  private table = '';
  private keyGroup = 0;
  private namespace: KeyPart = 0;

  decode(k: string, v: string): StateEntry {
    let r: KeyReader;
    if (k.startsWith(this.prefix)) {
      r = new KeyReader(k, this.prefix.length);
    } else {
      r = new KeyReader(k, S.length);
      this.operator = r.part() as string;
      this.table = r.part() as string;
      this.keyGroup = r.part() as number;
      this.namespace = r.part();
      this.prefix = k.slice(0, r.pos);
    }
    const key = r.part();
    return { operator: this.operator, table: this.table, keyGroup: this.keyGroup, namespace: this.namespace, key, value: decodeValue(v) };
  }
}

import { createHash } from 'node:crypto';
import { WeirError, messageOf } from '../../errors.js';
import { KeyReader, compareKeys, encodeNumber, encodePart, encodeTuple, prefixEnd, trailingNumber, NUMBER_WIDTH, type KeyPart } from './key-codec.js';
import type { KvRange, KvStore, KvWriteBatch } from './kv-store.js';
import { BlobCorruptError, GroupChanges, GroupTable, HEADROOM, blobInvalid, decodeBlobPart, encodeBlobPart, frameBlobPart, fromBlobPart, type BlobBody, type BlobKind, type PartSink } from './state-blob.js';
import { decodeValue, encodeValue } from './value-codec.js';

/**
 * Checkpointed keyed state on one {@link KvStore}, stored as blobs per key group
 * (docs/design/durable-state.md). Key spaces (encoded tuples):
 *
 * - `c | operator | table | keyGroup | checkpointId | part` → one part of a blob: the changes one
 *   checkpoint made to that key group (a delta), or its whole contents (a full blob); see state-blob.ts;
 * - `i | operator | table | keyGroup | checkpointId` → that blob's record: `kind parts entries chars`
 *   (small: all of them are read when the store opens, to know every group's chain of blobs; chars:
 *   the size of its JSON, UTF-8 bytes or UTF-16 units);
 * - `m | checkpointId` → the manifest of a checkpoint;
 * - `x | 'meta'` → the store's own bookkeeping (highest id used, abandoned ids).
 *
 * A checkpoint writes, for each key group it changed, ONE blob (in parts of about 60 KiB) together
 * with its manifest in ONE atomic batch. Reading as of checkpoint C applies, per group, the newest
 * full blob <= C and the deltas after it up to C. When a group's chain of deltas grows long
 * (`maxDeltas`) or large (more chars than its full blob), the next checkpoint that changes the group
 * reads the chain back and writes a full blob instead of a delta (a compaction); `retain` then
 * deletes the blobs no retained checkpoint reads. Other prefixes are free for the caller.
 *
 * One writer at a time: a checkpoint being written (`beginCheckpoint` to `commit`), `resumeFrom` and
 * `retain` must not overlap (they throw WEIR_INTERNAL if they do). Reads may run beside them: a read
 * keeps the blobs it needs from `retain`.
 */

/** The manifest format this version of weir writes and reads (1: one store entry per key and version). */
export const MANIFEST_FORMAT = 2;

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

/** A checkpoint recovery passed over, and why. */
export interface SkippedManifest {
  readonly id: number;
  /** `corrupt` / `unknown-format`: its manifest; `corrupt-state`: a blob of its state (bad checksum, missing, ...). */
  readonly reason: 'corrupt' | 'unknown-format' | 'corrupt-state';
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
 * One dirty entry of a checkpoint: `deleted: true` deletes it; otherwise the new value is `encoded`
 * ({@link encodeValue}'s output, when the caller encoded it already, e.g. to capture a mutable
 * accumulator as it was) or else `value`.
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

/**
 * Which part of the state to read: an operator, a table of it, and/or key groups `[from, to)` (of
 * every operator and table in range: what a task restored at another parallelism owns).
 */
export interface StateRange {
  readonly operator?: string;
  readonly table?: string;
  readonly keyGroups?: { readonly from: number; readonly to: number };
}

/** One key group's live entries as of a checkpoint, as {@link VersionedState.readGroups} yields them. */
export interface GroupState {
  readonly operator: string;
  readonly table: string;
  readonly keyGroup: number;
  /** Number of live entries. */
  readonly size: number;
  /**
   * Calls `fn` for each live entry with its namespace, key and encoded value (decode it with
   * `decodeValue`); in no particular order within the group.
   */
  forEach(fn: (namespace: KeyPart, key: KeyPart, encoded: string) => void): void;
}

/** What {@link VersionedState.writeCheckpoint} did. */
export interface CheckpointWriteStats {
  readonly id: number;
  /** State changes written (puts and deletes). */
  readonly entries: number;
  /** Chars of keys and values written (blobs, their records, the manifest). */
  readonly bytes: number;
  /** Key groups written. */
  readonly groups: number;
  /** Of those, groups written whole because their chain of deltas had grown (compactions). */
  readonly compacted: number;
}

/** What {@link VersionedState.retain} did. */
export interface RetainStats {
  /** Ids of the manifests dropped. */
  readonly dropped: readonly number[];
  /** Key groups looked at. */
  readonly scanned: number;
  /** Store entries (blob parts and records) deleted. */
  readonly deleted: number;
  /** True when nothing is left to collect: no retained checkpoint reaches any blob still stored. */
  readonly cycleComplete: boolean;
}

/** Options of {@link VersionedState.retain}. */
export interface RetainOptions {
  /** At most about this many store entries are deleted per call (default 50 000); the rest on the next calls. */
  readonly budget?: number;
}

/** Tuning of {@link VersionedState} (the defaults suit production; tests make them small). */
export interface VersionedStateOptions {
  /** A group whose chain holds this many deltas is compacted the next time it changes (default 8). */
  readonly maxDeltas?: number;
  /**
   * Blobs are cut into parts of about this many bytes (default 60 KiB: a part and one entry fit the
   * pooled 64 KiB buffers a checkpoint streams its blobs through).
   */
  readonly partChars?: number;
  /**
   * A group is also compacted when its chain holds more chars of deltas than its full blob, and more
   * than this (default 64 Ki: small groups compact on the count of deltas only).
   */
  readonly minCompactChars?: number;
  /**
   * Chars of chains one checkpoint reads back to compact groups (default 32 Mi), first come first
   * served; the other groups due wait for a later checkpoint, except a chain twice over either limit,
   * which is compacted regardless. Groups created together come due together: this spreads them out.
   */
  readonly compactBudgetChars?: number;
  /** Reads fetch blobs of about this many chars per store round trip (default 8 Mi). */
  readonly readBatchChars?: number;
}

/** Checkpoint ids `from..to` (inclusive) given up by a `resumeFrom`. */
interface AbandonedRange {
  readonly from: number;
  readonly to: number;
}

/** The store's bookkeeping, at `x | 'meta'`. */
interface Meta {
  /** The highest checkpoint id ever written (ids are never reused). */
  maxId: number;
  /** Ids whose blobs no checkpoint can see (a fallback skipped them); GC deletes the blobs. */
  abandoned: AbandonedRange[];
}

/** A stored blob, as its record says. `x`: the record cannot be read (the chains through it are broken). */
interface BlobRef {
  readonly id: number;
  readonly kind: BlobKind | 'x';
  readonly parts: number;
  readonly entries: number;
  readonly chars: number;
}

/** A key group of a table of an operator and its blobs (ascending ids). */
interface GroupRecord {
  readonly operator: string;
  readonly table: string;
  readonly keyGroup: number;
  /** `encodePart(operator) + encodePart(table) + encodeNumber(keyGroup)`. */
  readonly id: string;
  blobs: BlobRef[];
}

/** The blobs of a group that make up its state as of a checkpoint: a full one, then deltas. */
interface Chain {
  readonly blobs: readonly BlobRef[];
  /** Why the chain cannot be read (a broken record, no full blob under the deltas), or null. */
  readonly broken: string | null;
}

const C = encodePart('c');
const I = encodePart('i');
const M = encodePart('m');
const META_KEY = encodeTuple(['x', 'meta']);
const CHUNK = 1000;
const EMPTY_CHAIN: Chain = { blobs: [], broken: null };

const DEFAULTS: Required<VersionedStateOptions> = {
  maxDeltas: 8,
  partChars: 60 << 10,
  minCompactChars: 64 << 10,
  compactBudgetChars: 32 << 20,
  readBatchChars: 8 << 20,
};

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
function encodeManifest(id: number, input: ManifestInput): string {
  const body = { id, time: input.time, sources: input.sources, sinks: input.sinks, operators: input.operators };
  const payload = encodeValue(body);
  const format = String(MANIFEST_FORMAT);
  return `${format}\n${checksumOf(format, payload)}\n${payload}`;
}

function invalid(id: number, reason: string, cause?: unknown): WeirError {
  return new WeirError('WEIR_CHECKPOINT_INVALID', `checkpoint ${id}: ${reason}`, { cause });
}

function decodeManifest(id: number, text: string): ManifestInfo {
  const nl = text.indexOf('\n');
  const format = nl === -1 ? text : text.slice(0, nl);
  if (!/^[0-9]+$/.test(format)) return { id, status: 'corrupt', error: invalid(id, 'manifest is corrupt (no format version)') };
  if (Number(format) !== MANIFEST_FORMAT) {
    const who = Number(format) < MANIFEST_FORMAT ? 'written by an older weir: restore the directory with that version, or move it away to start over' : 'written by a newer weir?';
    return { id, status: 'unknown-format', error: invalid(id, `manifest has format ${format}, this weir reads format ${MANIFEST_FORMAT} (${who})`) };
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

/** A blob record's stored form, `kind parts entries chars`; `x` when it does not parse. */
function decodeBlobRef(id: number, text: string): BlobRef {
  const f = text.split(' ');
  const [parts, entries, chars] = [Number(f[1]), Number(f[2]), Number(f[3])];
  if (f.length !== 4 || (f[0] !== 'f' && f[0] !== 'n' && f[0] !== 'd') || !(parts >= 1) || !Number.isSafeInteger(parts) || !(entries >= 0) || !(chars >= 0)) {
    return { id, kind: 'x', parts: 0, entries: 0, chars: 0 };
  }
  return { id, kind: f[0], parts, entries, chars };
}

function where(g: { operator: string; table: string; keyGroup: number }): string {
  return `${g.operator}/${g.table} key group ${g.keyGroup}`;
}

function checkRange(range: StateRange): void {
  if (range.table !== undefined && range.operator === undefined) throw new WeirError('WEIR_INTERNAL', 'a state range with a table needs its operator');
  const kg = range.keyGroups;
  if (kg !== undefined && !(Number.isInteger(kg.from) && Number.isInteger(kg.to) && kg.from >= 0 && kg.to >= kg.from)) {
    throw new WeirError('WEIR_INTERNAL', `key group range [${String(kg.from)}, ${String(kg.to)}) is not a range of non-negative integers`);
  }
}

function inRange(g: GroupRecord, range: StateRange): boolean {
  if (range.operator !== undefined && g.operator !== range.operator) return false;
  if (range.table !== undefined && g.table !== range.table) return false;
  const kg = range.keyGroups;
  return kg === undefined || (g.keyGroup >= kg.from && g.keyGroup < kg.to);
}

/** What a {@link CheckpointWriter} needs of its {@link VersionedState}. */
interface WriterHost {
  readonly store: KvStore;
  readonly opts: Required<VersionedStateOptions>;
  /** The group's chain as of the checkpoint this one builds on. */
  chainOf(groupId: string): Chain;
  /** Reads back the chains of groups to compact, as of the checkpoint this one builds on. */
  readChains(groups: readonly { rec: GroupChanges; chain: Chain }[]): Promise<GroupTable[]>;
  /** After the batch is durable: the blobs it wrote, its new bookkeeping. */
  written(blobs: readonly { g: GroupChanges; ref: BlobRef }[], meta: Meta): void;
  /** The bookkeeping the checkpoint writes. */
  meta(): Meta;
  /** Leaves the one-writer section. */
  leave(): void;
}

/** A group being written, and how. */
interface GroupWrite {
  readonly g: GroupChanges;
  readonly chain: Chain;
  /** First changes of the group (`n`), a delta (`d`), or a compaction: the chain is read back and the group written whole (`f`). */
  readonly kind: BlobKind;
}

/**
 * One checkpoint being written ({@link VersionedState.beginCheckpoint}): add its changes — with
 * `add`, or faster, `group(...)` once per key group and `put` / `delete` on it — then `commit`
 * (or `abort`). Changes to one key apply in the order given. The blobs of groups that are not
 * compacted go into the store's write batch part by part as they fill up (so a checkpoint's state
 * never sits in JavaScript memory whole); nothing is visible until `commit` writes the batch.
 */
export class CheckpointWriter {
  private readonly groups = new Map<string, GroupWrite>();
  private readonly batch: KvWriteBatch;
  private readonly suffix: string;
  private last: GroupChanges | undefined;
  private compactChars = 0;
  private bytes = 0;
  private done = false;

  /** @internal */
  constructor(
    private readonly host: WriterHost,
    /** The checkpoint's id. */
    readonly id: number,
  ) {
    this.batch = host.store.writeBatch();
    this.suffix = encodeNumber(id);
  }

  /** The changes of one key group of one table of one operator. */
  group(operator: string, table: string, keyGroup: number): GroupChanges {
    if (this.done) throw new WeirError('WEIR_INTERNAL', `checkpoint ${this.id} was committed or aborted already`);
    if (!Number.isInteger(keyGroup) || keyGroup < 0) throw new WeirError('WEIR_INTERNAL', `key group ${String(keyGroup)} is not a non-negative integer`);
    const gid = encodePart(operator) + encodePart(table) + encodeNumber(keyGroup);
    const known = this.groups.get(gid);
    if (known !== undefined) return known.g;
    const chain = this.host.chainOf(gid);
    const kind = chain.blobs.length === 0 ? 'n' : this.compacts(chain) ? 'f' : 'd';
    let sink: PartSink | null = null;
    if (kind !== 'f') {
      const base = C + gid + this.suffix;
      sink = (buf, part) => {
        const key = base + encodeNumber(part);
        const value = frameBlobPart(kind, this.id, part, buf);
        this.batch.putBytes(key, value);
        this.bytes += key.length + value.length;
      };
    }
    const g = new GroupChanges(operator, table, keyGroup, gid, this.host.opts.partChars, sink);
    this.groups.set(gid, { g, chain, kind });
    return g;
  }

  /**
   * Whether a group that changes now has its chain compacted: when the chain holds `maxDeltas`
   * deltas, or more chars of deltas than its full blob, within a budget of chars read back per
   * checkpoint (first come, first served); a chain twice over either limit is compacted regardless.
   */
  private compacts(chain: Chain): boolean {
    if (chain.broken !== null) return false;
    const { maxDeltas, minCompactChars, compactBudgetChars } = this.host.opts;
    const blobs = chain.blobs;
    const deltas = blobs.length - 1;
    let deltaChars = 0;
    for (let i = 1; i < blobs.length; i++) deltaChars += blobs[i].chars;
    const base = Math.max(blobs[0].chars, minCompactChars);
    if (deltas < maxDeltas && deltaChars <= base) return false;
    const cost = blobs[0].chars + deltaChars;
    const must = deltas >= 2 * maxDeltas || deltaChars > 2 * base;
    if (!must && this.compactChars > 0 && this.compactChars + cost > compactBudgetChars) return false;
    this.compactChars += cost;
    return true;
  }

  /** Adds one change. */
  add(w: StateWrite): void {
    let g = this.last;
    if (g === undefined || g.keyGroup !== w.keyGroup || g.table !== w.table || g.operator !== w.operator) g = this.last = this.group(w.operator, w.table, w.keyGroup);
    if (w.deleted === true) g.delete(w.namespace, w.key);
    else {
      const encoded = w.encoded !== undefined ? w.encoded : encodeValue(w.value);
      if (encoded === '') g.delete(w.namespace, w.key);
      else g.put(w.namespace, w.key, encoded);
    }
  }

  /**
   * Writes the checkpoint: the groups being compacted (their chains read back, these changes applied,
   * the whole written), every blob's record, the manifest and the bookkeeping, in ONE atomic batch
   * written with `sync`.
   */
  async commit(input: ManifestInput): Promise<CheckpointWriteStats> {
    if (this.done) throw new WeirError('WEIR_INTERNAL', `checkpoint ${this.id} was committed or aborted already`);
    this.done = true;
    try {
      const writes = [...this.groups.values()].filter((w) => w.g.count > 0);
      const compact = writes.filter((w) => w.kind === 'f');
      const read = await this.host.readChains(compact.map((w) => ({ rec: w.g, chain: w.chain })));
      const tables = new Map(compact.map((w, i) => [w, read[i]]));
      const written: { g: GroupChanges; ref: BlobRef }[] = [];
      let count = 0;
      for (const w of writes) {
        count += w.g.count;
        let ref: BlobRef;
        const table = tables.get(w);
        if (table !== undefined) {
          for (const part of w.g.finish()) table.apply(JSON.parse(part.toString('utf8', HEADROOM)) as BlobBody);
          const bodies = table.toParts(this.host.opts.partChars);
          const base = C + w.g.id + this.suffix;
          let chars = 0;
          for (let p = 0; p < bodies.length; p++) {
            const key = base + encodeNumber(p);
            const value = encodeBlobPart('f', this.id, p, bodies[p]);
            this.batch.put(key, value);
            chars += bodies[p].length;
            this.bytes += key.length + value.length;
          }
          ref = { id: this.id, kind: 'f', parts: bodies.length, entries: table.size, chars };
        } else {
          w.g.finish();
          ref = { id: this.id, kind: w.kind, parts: w.g.partCount, entries: w.g.count, chars: w.g.chars };
        }
        const infoKey = I + w.g.id + this.suffix;
        const infoText = `${ref.kind} ${ref.parts} ${ref.entries} ${ref.chars}`;
        this.batch.put(infoKey, infoText);
        this.bytes += infoKey.length + infoText.length;
        written.push({ g: w.g, ref });
      }
      const text = encodeManifest(this.id, input);
      const mk = manifestKey(this.id);
      this.batch.put(mk, text);
      const meta = this.host.meta();
      const metaText = encodeValue(meta);
      this.batch.put(META_KEY, metaText);
      this.bytes += mk.length + text.length + META_KEY.length + metaText.length;
      await this.batch.write({ sync: true });
      this.host.written(written, meta);
      return { id: this.id, entries: count, bytes: this.bytes, groups: writes.length, compacted: compact.length };
    } catch (e) {
      this.batch.abort();
      throw e;
    } finally {
      for (const w of this.groups.values()) w.g.release();
      this.host.leave();
    }
  }

  /** Drops the checkpoint: nothing of it is written. */
  abort(): void {
    if (this.done) return;
    this.done = true;
    this.batch.abort();
    for (const w of this.groups.values()) w.g.release();
    this.host.leave();
  }
}

/** Checkpointed keyed state and checkpoint manifests on a {@link KvStore}. */
export class VersionedState {
  private meta: Meta;
  /** Ids of the manifests present, ascending (valid or not). */
  private manifestIds: number[];
  /** The checkpoint the live state derives from: undefined until `resumeFrom` or a write. */
  private head: number | null | undefined;
  private busy = false;
  /** Every key group with blobs in the store, by id. */
  private readonly catalog: Map<string, GroupRecord>;
  private sorted: GroupRecord[] | null = null;
  /** Checkpoints being read (id → readers): `retain` keeps their blobs. */
  private readonly pins = new Map<number, number>();
  /** Where the next GC step starts in the sorted groups. */
  private gcNext = 0;
  private readonly opts: Required<VersionedStateOptions>;

  private constructor(
    readonly store: KvStore,
    meta: Meta,
    manifestIds: number[],
    catalog: Map<string, GroupRecord>,
    options: VersionedStateOptions,
  ) {
    this.meta = meta;
    this.manifestIds = manifestIds;
    this.catalog = catalog;
    this.opts = { ...DEFAULTS, ...options };
    this.head = manifestIds.length === 0 && meta.maxId === 0 ? null : undefined;
  }

  /** Opens the state kept in `store` (an empty store is a fresh one). */
  static async open(store: KvStore, options: VersionedStateOptions = {}): Promise<VersionedState> {
    const [metaText] = await store.getMany([META_KEY]);
    const meta: Meta = { maxId: 0, abandoned: [] };
    if (metaText !== undefined) {
      let m: Partial<Meta>;
      try {
        m = decodeValue(metaText) as Partial<Meta>;
      } catch (e) {
        throw new WeirError('WEIR_STATE_CORRUPT', `state store ${store.location}: its bookkeeping record cannot be decoded: ${messageOf(e)}`, { cause: e });
      }
      if (typeof m !== 'object' || m === null || typeof m.maxId !== 'number' || !Array.isArray(m.abandoned)) {
        throw new WeirError('WEIR_STATE_CORRUPT', `state store ${store.location}: its bookkeeping record is not what weir writes`);
      }
      meta.maxId = m.maxId;
      meta.abandoned = m.abandoned.map((r) => ({ from: r.from, to: r.to }));
    }
    const ids: number[] = [];
    for await (const chunk of store.chunks({ gte: M, lt: prefixEnd(M) }, CHUNK)) {
      for (const [k] of chunk) {
        const id = trailingNumber(k);
        if (isCheckpointId(id)) ids.push(id);
      }
    }
    const catalog = new Map<string, GroupRecord>();
    let rec: GroupRecord | undefined;
    for await (const chunk of store.chunks({ gte: I, lt: prefixEnd(I) }, CHUNK)) {
      for (const [k, v] of chunk) {
        const id = trailingNumber(k);
        if (!isCheckpointId(id)) continue;
        const gid = k.slice(I.length, k.length - NUMBER_WIDTH);
        if (rec === undefined || rec.id !== gid) {
          rec = catalog.get(gid);
          if (rec === undefined) {
            let parts: KeyPart[];
            try {
              const r = new KeyReader(gid);
              parts = [r.part(), r.part(), r.part()];
              if (!r.done) continue;
            } catch {
              continue; // not a key weir writes: leave it alone
            }
            const [operator, table, keyGroup] = parts;
            if (typeof operator !== 'string' || typeof table !== 'string' || typeof keyGroup !== 'number') continue;
            rec = { operator, table, keyGroup, id: gid, blobs: [] };
            catalog.set(gid, rec);
          }
        }
        rec.blobs.push(decodeBlobRef(id, v));
      }
    }
    return new VersionedState(store, meta, ids, catalog, options);
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

  private sortedGroups(): GroupRecord[] {
    if (this.sorted === null) this.sorted = [...this.catalog.values()].sort((a, b) => compareKeys(a.id, b.id));
    return this.sorted;
  }

  private abandonedTest(): ((id: number) => boolean) | undefined {
    const ranges = this.meta.abandoned;
    if (ranges.length === 0) return undefined;
    return (id) => {
      for (const r of ranges) if (id >= r.from && id <= r.to) return true;
      return false;
    };
  }

  /** The blobs of `g` that make up its state as of checkpoint `id`. */
  private chainAsOf(g: GroupRecord, id: number, abandoned: ((id: number) => boolean) | undefined): Chain {
    const down: BlobRef[] = [];
    for (let i = g.blobs.length - 1; i >= 0; i--) {
      const b = g.blobs[i];
      if (b.id > id || (abandoned !== undefined && abandoned(b.id))) continue;
      down.push(b);
      if (b.kind === 'x') return { blobs: down.reverse(), broken: `the record of its blob of checkpoint ${b.id} cannot be read` };
      if (b.kind !== 'd') return { blobs: down.reverse(), broken: null };
    }
    if (down.length === 0) return EMPTY_CHAIN;
    return { blobs: down.reverse(), broken: `there is no full blob under its delta of checkpoint ${down[down.length - 1].id}` };
  }

  /**
   * Starts writing checkpoint `id` (see {@link CheckpointWriter}); `id` must exceed every id used
   * before. Until it is committed or aborted, no other write may start.
   */
  beginCheckpoint(id: number): CheckpointWriter {
    if (!isCheckpointId(id)) throw new WeirError('WEIR_INTERNAL', `checkpoint id ${String(id)} is not a positive safe integer`);
    if (id < this.nextCheckpointId) throw new WeirError('WEIR_INTERNAL', `checkpoint id ${id} is not above the ids used so far (next is ${this.nextCheckpointId})`);
    const head = this.head;
    if (head === undefined) {
      throw new WeirError('WEIR_INTERNAL', `state store ${this.store.location} holds checkpoints: call resumeFrom(id) (or resumeFrom(null) to start over) before writing one`);
    }
    this.enter('writeCheckpoint');
    const abandoned = this.abandonedTest();
    return new CheckpointWriter(
      {
        store: this.store,
        opts: this.opts,
        chainOf: (gid) => {
          const rec = this.catalog.get(gid);
          return rec === undefined || head === null ? EMPTY_CHAIN : this.chainAsOf(rec, head, abandoned);
        },
        readChains: (groups) => this.readChains(groups, head ?? 0),
        meta: () => ({ ...this.meta, maxId: Math.max(this.meta.maxId, id) }),
        written: (blobs, meta) => {
          for (const { g, ref } of blobs) {
            let rec = this.catalog.get(g.id);
            if (rec === undefined) {
              this.catalog.set(g.id, (rec = { operator: g.operator, table: g.table, keyGroup: g.keyGroup, id: g.id, blobs: [] }));
              this.sorted = null;
            }
            rec.blobs.push(ref);
          }
          this.meta = meta;
          this.manifestIds.push(id);
          this.head = id;
        },
        leave: () => {
          this.busy = false;
        },
      },
      id,
    );
  }

  /**
   * Writes checkpoint `id` from a list of changes (applied in the order given): see
   * {@link beginCheckpoint}, which is faster for many changes.
   */
  async writeCheckpoint(id: number, entries: Iterable<StateWrite>, input: ManifestInput): Promise<CheckpointWriteStats> {
    const w = this.beginCheckpoint(id);
    try {
      for (const e of entries) w.add(e);
    } catch (e) {
      w.abort();
      throw e;
    }
    return w.commit(input);
  }

  /** Reads back (as of `head`) the chains of groups to compact, one table each. */
  private async readChains(groups: readonly { rec: GroupChanges; chain: Chain }[], head: number): Promise<GroupTable[]> {
    const out: GroupTable[] = [];
    for (const batch of this.batches(groups)) {
      const values = await this.store.getMany(batch.keys);
      let v = 0;
      for (const i of batch.items) {
        const { rec, chain } = groups[i];
        const t = new GroupTable();
        for (const blob of chain.blobs) for (let part = 0; part < blob.parts; part++) this.decodeInto(t, head, rec, blob, part, values[v++]);
        out.push(t);
      }
    }
    return out;
  }

  private decodeInto(t: GroupTable, checkpoint: number, g: { operator: string; table: string; keyGroup: number }, blob: BlobRef, part: number, text: string | undefined): void {
    try {
      t.apply(this.decode(checkpoint, g, blob, part, text));
    } catch (e) {
      if (e instanceof BlobCorruptError) throw blobInvalid(checkpoint, where(g), `its blob of checkpoint ${blob.id}: ${e.message}`, e);
      throw e;
    }
  }

  private decode(checkpoint: number, g: { operator: string; table: string; keyGroup: number }, blob: BlobRef, part: number, text: string | undefined): BlobBody {
    if (text === undefined) throw blobInvalid(checkpoint, where(g), `part ${part + 1}/${blob.parts} of its blob of checkpoint ${blob.id} is missing`);
    try {
      return decodeBlobPart(text, blob.kind as BlobKind, blob.id, part);
    } catch (e) {
      if (e instanceof BlobCorruptError) throw blobInvalid(checkpoint, where(g), `part ${part + 1}/${blob.parts} of its blob of checkpoint ${blob.id}: ${e.message}`, e);
      throw e;
    }
  }

  /** Cuts a list of chains into store round trips of about `readBatchChars`: the keys of their parts, in order. */
  private *batches(chains: readonly { rec: { id: string }; chain: Chain }[]): Generator<{ items: number[]; keys: string[] }> {
    let items: number[] = [];
    let keys: string[] = [];
    let chars = 0;
    for (let i = 0; i < chains.length; i++) {
      const { rec, chain } = chains[i];
      for (const blob of chain.blobs) {
        const base = C + rec.id + encodeNumber(blob.id);
        for (let part = 0; part < blob.parts; part++) keys.push(base + encodeNumber(part));
        chars += blob.chars;
      }
      items.push(i);
      if (chars >= this.opts.readBatchChars) {
        yield { items, keys };
        items = [];
        keys = [];
        chars = 0;
      }
    }
    if (items.length > 0) yield { items, keys };
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

  private noValid(count: number, skipped: readonly SkippedManifest[]): WeirError {
    return new WeirError(
      'WEIR_NO_VALID_CHECKPOINT',
      `state store ${this.store.location} holds ${count} checkpoint(s) and none can be used: ${skipped.map((s) => `${s.id} (${s.reason})`).join(', ')}; ` +
        'restore the directory from a backup, start from a savepoint, or move it away to start over',
      { cause: skipped[0]?.error },
    );
  }

  /**
   * The newest intact manifest of a known format, or undefined when the store holds none at all (a
   * fresh store). Each newer manifest passed over is reported to `onSkip` first. When manifests
   * exist but none is usable, it throws WEIR_NO_VALID_CHECKPOINT: never a silent fresh start.
   * It does not read the state: {@link latestReadable} does.
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
    throw this.noValid(all.length, skipped);
  }

  /**
   * Like {@link latestValidManifest}, and also reads the checkpoint with `read` (e.g. its whole state
   * through {@link readGroups}): a checkpoint whose state turns out corrupt (`read` throws
   * WEIR_CHECKPOINT_INVALID) is reported and passed over like a corrupt manifest, for the next older one.
   */
  async latestReadable<T>(onSkip: (skipped: SkippedManifest) => void, read: (manifest: Manifest) => Promise<T>): Promise<{ manifest: Manifest; value: T } | undefined> {
    const all = await this.manifests();
    const skipped: SkippedManifest[] = [];
    for (const info of all) {
      let s: SkippedManifest;
      if (info.status === 'valid') {
        try {
          return { manifest: info.manifest, value: await read(info.manifest) };
        } catch (e) {
          if (!(e instanceof WeirError) || e.code !== 'WEIR_CHECKPOINT_INVALID') throw e;
          s = { id: info.id, reason: 'corrupt-state', error: e };
        }
      } else {
        s = { id: info.id, reason: info.status, error: info.error };
      }
      skipped.push(s);
      onSkip(s);
    }
    if (all.length === 0) return undefined;
    throw this.noValid(all.length, skipped);
  }

  /**
   * Declares that the live state continues from checkpoint `id` (after restoring it), or from
   * nothing (`null`: a deliberate fresh start). Every later checkpoint — a corrupt one recovery
   * skipped, or any other — is given up atomically: its manifest is deleted and its blobs become
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
        const meta: Meta = { maxId: top, abandoned: [...this.meta.abandoned, { from: base + 1, to: top }] };
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

  /**
   * The live state as of checkpoint `id`, one key group at a time (groups in key order: operator,
   * table, key group), without holding more than a few groups' blobs at once. `id` must be a
   * checkpoint the store holds. A blob that is missing, fails its checksum or does not parse is
   * WEIR_CHECKPOINT_INVALID naming the checkpoint and the group.
   */
  async *readGroups(id: number, range: StateRange = {}): AsyncGenerator<GroupState, void, undefined> {
    if (!this.manifestIds.includes(id)) throw new WeirError('WEIR_INTERNAL', `cannot read as of checkpoint ${id}: the store does not hold it`);
    checkRange(range);
    const abandoned = this.abandonedTest();
    const plan: { rec: GroupRecord; chain: Chain }[] = [];
    for (const rec of this.sortedGroups()) {
      if (!inRange(rec, range)) continue;
      const chain = this.chainAsOf(rec, id, abandoned);
      if (chain.blobs.length === 0) continue;
      if (chain.broken !== null) throw blobInvalid(id, where(rec), chain.broken);
      plan.push({ rec, chain });
    }
    this.pins.set(id, (this.pins.get(id) ?? 0) + 1);
    try {
      const batches = [...this.batches(plan)];
      const fetch = (k: number): Promise<(string | undefined)[]> | undefined => {
        if (k >= batches.length) return undefined;
        const p = this.store.getMany(batches[k].keys);
        p.catch(() => undefined); // awaited below, or dropped when the reader stops early
        return p;
      };
      let next = fetch(0);
      for (let k = 0; k < batches.length; k++) {
        const values = await next!;
        next = fetch(k + 1); // the next round trip runs while this one is decoded
        let v = 0;
        for (const i of batches[k].items) {
          const { rec, chain } = plan[i];
          const bodies: BlobBody[][] = [];
          for (const blob of chain.blobs) {
            const parts: BlobBody[] = [];
            let n = 0;
            for (let part = 0; part < blob.parts; part++) {
              const body = this.decode(id, rec, blob, part, values[v++]);
              n += body.length / 3;
              parts.push(body);
            }
            if (n !== blob.entries) throw blobInvalid(id, where(rec), `its blob of checkpoint ${blob.id} holds ${n} entries, its record says ${blob.entries}`);
            bodies.push(parts);
          }
          yield groupState(id, rec, chain, bodies);
        }
      }
    } finally {
      const n = this.pins.get(id)! - 1;
      if (n === 0) this.pins.delete(id);
      else this.pins.set(id, n);
    }
  }

  /**
   * The live entries as of checkpoint `id`, decoded, a key group at a time (see {@link readGroups}:
   * groups in key order, entries within a group in no particular order).
   */
  async *readAsOf(id: number, range: StateRange = {}): AsyncGenerator<StateEntry[], void, undefined> {
    for await (const g of this.readGroups(id, range)) {
      const out: StateEntry[] = [];
      const { operator, table, keyGroup } = g;
      g.forEach((namespace, key, v) => out.push({ operator, table, keyGroup, namespace, key, value: decodeValue(v) }));
      if (out.length > 0) yield out;
    }
  }

  /**
   * Keeps the newest `n` manifests and drops the older ones, then runs one bounded step of garbage
   * collection: per key group, the blobs that no retained checkpoint reads (each reads the newest
   * full blob <= it and the deltas after it) and those of abandoned checkpoints are deleted, about
   * `budget` store entries per call; the next call goes on with the next groups. Reads in progress
   * keep theirs.
   */
  async retain(n: number, options: RetainOptions = {}): Promise<RetainStats> {
    if (!Number.isInteger(n) || n < 1) throw new WeirError('WEIR_INVALID_ARGUMENT', `checkpoints to retain must be an integer >= 1 (got ${String(n)})`);
    const budget = options.budget ?? 50_000;
    this.enter('retain');
    try {
      const dropped = this.manifestIds.slice(0, Math.max(0, this.manifestIds.length - n));
      const retained = this.manifestIds.slice(dropped.length);
      const batch = this.store.writeBatch();
      for (const id of dropped) batch.del(manifestKey(id));

      const needed = [...new Set([...retained, ...this.pins.keys()])].sort((a, b) => a - b);
      const abandoned = this.abandonedTest();
      const groups = this.sortedGroups();
      const removals: { rec: GroupRecord; gone: Set<number> }[] = [];
      const clears: KvRange[] = [];
      let scanned = 0;
      let deleted = 0;
      let complete = true;
      const start = groups.length === 0 ? 0 : this.gcNext % groups.length;
      for (let j = 0; j < groups.length; j++) {
        const rec = groups[(start + j) % groups.length];
        const garbage = needed.length === 0 ? rec.blobs : garbageOf(rec, needed, abandoned);
        if (garbage.length > 0) {
          let cost = 0;
          for (const b of garbage) cost += b.parts + 1;
          if (deleted > 0 && deleted + cost > budget) {
            complete = false;
            this.gcNext = (start + j) % groups.length;
            break;
          }
          for (const b of garbage) {
            const base = C + rec.id + encodeNumber(b.id);
            if (b.kind === 'x') clears.push({ gte: base, lt: prefixEnd(base) }); // its parts are not known
            for (let part = 0; part < b.parts; part++) batch.del(base + encodeNumber(part));
            batch.del(I + rec.id + encodeNumber(b.id));
          }
          deleted += cost;
          removals.push({ rec, gone: new Set(garbage.map((b) => b.id)) });
        }
        scanned++;
      }
      if (complete) this.gcNext = 0;

      // An abandoned range is forgotten once no blob of it is left.
      const left = new Set<number>();
      if (abandoned !== undefined) {
        const goneOf = new Map(removals.map((r) => [r.rec, r.gone]));
        for (const rec of groups) for (const b of rec.blobs) if (abandoned(b.id) && !goneOf.get(rec)?.has(b.id)) left.add(b.id);
      }
      const meta: Meta = { ...this.meta, abandoned: this.meta.abandoned.filter((r) => [...left].some((id) => id >= r.from && id <= r.to)) };
      for (const r of clears) await this.store.clear(r);
      batch.put(META_KEY, encodeValue(meta));
      await batch.write({ sync: true });

      for (const { rec, gone } of removals) {
        rec.blobs = rec.blobs.filter((b) => !gone.has(b.id));
        if (rec.blobs.length === 0) {
          this.catalog.delete(rec.id);
          this.sorted = null;
        }
      }
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
 * The blobs of `g` that no checkpoint of `needed` (ascending) reads: each reads its chain (the newest
 * full blob <= it and the deltas after it, up to it); blobs of abandoned checkpoints are garbage
 * too, and so is an empty full blob that is all the needed checkpoints read (the group is empty for
 * all of them). Blobs above every needed checkpoint stay (there are none: a checkpoint's batch is
 * atomic). A broken record keeps what is under it (its chains cannot be read anyway).
 */
function garbageOf(g: GroupRecord, needed: readonly number[], abandoned: ((id: number) => boolean) | undefined): BlobRef[] {
  const blobs = g.blobs;
  const keep = new Set<BlobRef>();
  for (const r of needed) {
    for (let i = blobs.length - 1; i >= 0; i--) {
      const b = blobs[i];
      if (b.id > r || (abandoned !== undefined && abandoned(b.id))) continue;
      keep.add(b);
      if (b.kind === 'x') {
        for (let j = 0; j < i; j++) keep.add(blobs[j]);
        break;
      }
      if (b.kind !== 'd') break;
    }
  }
  const top = needed[needed.length - 1];
  const out: BlobRef[] = [];
  let above = false;
  for (const b of blobs) {
    if (abandoned !== undefined && abandoned(b.id)) out.push(b);
    else if (b.id > top) above = true;
    else if (!keep.has(b)) out.push(b);
  }
  if (!above && keep.size === 1) {
    const [only] = keep;
    if (only.kind === 'f' && only.entries === 0) out.push(only);
  }
  return out;
}

/** A group's state from the parsed parts of its chain's blobs. */
function groupState(checkpoint: number, rec: GroupRecord, chain: Chain, bodies: BlobBody[][]): GroupState {
  const { operator, table, keyGroup } = rec;
  const fail = (e: unknown): never => {
    if (e instanceof BlobCorruptError) throw blobInvalid(checkpoint, where(rec), e.message, e);
    throw e;
  };
  if (chain.blobs.length === 1 && chain.blobs[0].kind === 'f') {
    // A compacted blob: unique keys, puts only — no need to apply it.
    const parts = bodies[0];
    return {
      operator,
      table,
      keyGroup,
      size: chain.blobs[0].entries,
      forEach(fn) {
        try {
          for (const body of parts) {
            for (let i = 0; i < body.length; i += 3) {
              const v = body[i + 2];
              if (typeof v !== 'string' || v === '') throw new BlobCorruptError('a full blob holds a delete');
              fn(fromBlobPart(body[i]), fromBlobPart(body[i + 1]), v);
            }
          }
        } catch (e) {
          fail(e);
        }
      },
    };
  }
  const t = new GroupTable();
  try {
    for (const parts of bodies) for (const body of parts) t.apply(body);
  } catch (e) {
    fail(e);
  }
  return {
    operator,
    table,
    keyGroup,
    size: t.size,
    forEach(fn) {
      try {
        t.forEach((ns, key, v) => fn(fromBlobPart(ns), fromBlobPart(key), v));
      } catch (e) {
        fail(e);
      }
    },
  };
}

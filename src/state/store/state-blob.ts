import zlib from 'node:zlib';
import { WeirError } from '../../errors.js';
import { KeyReader, encodePart, type KeyPart } from './key-codec.js';

/**
 * The blob codec of durable keyed state (docs/design/durable-state.md): the changes or the full
 * contents of one key group of one table of one operator, as ONE string.
 *
 * A blob is a flat JSON array `[ns, key, value, ns, key, value, ...]`: `value` is the entry's encoded
 * value (`encodeValue`'s output: the checkpoint already has it) or `0` for a delete; a namespace or
 * key is itself when JSON holds it exactly (a string — any string, lone surrogates and NULs included —
 * a finite number, a boolean) and `[encodePart(part)]` otherwise (bigint, ±Infinity, tuples). One
 * `JSON.stringify` / `JSON.parse` per blob: V8 does these natively at ~50–150 ns per entry, where
 * building or parsing a custom format in JavaScript costs several times that.
 *
 * Stored, a blob is one or more parts (each a JSON array of whole entries, about 60 KiB), each
 * `kind id part crc32 \n body`: the CRC-32 covers the header fields and the body, so a flipped digit in
 * a value is caught, not restored; the blob's record (versioned-state.ts) says how many parts and
 * entries it has, so a missing part is caught too.
 */

/** A key part as a blob holds it. */
export type BlobPart = string | number | boolean | readonly [string];

/** A blob's body as parsed: `[ns, key, value | 0, ...]`. */
export type BlobBody = unknown[];

/**
 * What a blob holds:
 * - `f`: the full contents of the group (written by a compaction): unique keys, puts only;
 * - `n`: the group's first changes (nothing before it): a full blob whose entries are applied in order
 *   (it may repeat a key or delete one);
 * - `d`: a delta on top of the group's previous blob.
 */
export type BlobKind = 'f' | 'n' | 'd';

/** Something wrong with a stored blob; the caller names the checkpoint and group. */
export class BlobCorruptError extends Error {}

/** The form of `p` in a blob (`-0` is `0`, as in the key codec). Throws WEIR_KEY_INVALID for what the key codec refuses. */
export function toBlobPart(p: KeyPart): BlobPart {
  switch (typeof p) {
    case 'string':
    case 'boolean':
      return p;
    case 'number':
      if (p - p === 0) return p === 0 ? 0 : p;
      break;
  }
  return [encodePart(p)];
}

/** The key part a blob holds as `p`. */
export function fromBlobPart(p: unknown): KeyPart {
  switch (typeof p) {
    case 'string':
    case 'number':
    case 'boolean':
      return p;
  }
  if (Array.isArray(p) && p.length === 1 && typeof p[0] === 'string') {
    const r = new KeyReader(p[0]);
    let v: KeyPart;
    try {
      v = r.part();
    } catch {
      throw new BlobCorruptError('a key part cannot be decoded');
    }
    if (!r.done) throw new BlobCorruptError('a key part has trailing bytes');
    return v;
  }
  throw new BlobCorruptError('a key part has an unexpected form');
}

/** About the chars an entry takes in a blob's JSON, without measuring it (to cut a compacted blob into parts). */
export function entryChars(ns: BlobPart, key: BlobPart, value: string | number): number {
  return (typeof ns === 'number' ? 8 : typeof ns === 'string' ? ns.length + 3 : 16) + (typeof key === 'string' ? key.length + 3 : 16) + (typeof value === 'string' ? value.length + 3 : 2);
}

/** Bytes kept free at the start of each part a {@link GroupChanges} builds, for the stored header. */
export const HEADROOM = 64;

/** Buffer methods Node has had since v0.x (undocumented, but what `buf.write` calls; faster without its argument parsing). */
interface RawWrites {
  utf8Write(s: string, offset: number): number;
  latin1Write(s: string, offset: number): number;
}

/** What JSON must escape in a string, and surrogates (a lone one has no UTF-8 form; pairs take the slow path too). */
const NEEDS_JSON = /["\\\x00-\x1f\ud800-\udfff]/;
/** Strings up to this long are copied into the buffer in JavaScript when they are plain ASCII. */
const SHORT = 48;

/**
 * Buffers for blob parts, reused from one checkpoint to the next (per thread). Fresh memory costs a
 * page fault per 4 KiB on its first write — measured here at 50–200 ms for the 27 MB one checkpoint of
 * 1M keys writes — and a job's checkpoints write about the same volume each time. Power-of-two sizes
 * from 1 KiB; at most {@link POOL_BYTES} are kept. The stores copy a value when it is put in a batch,
 * so a part's buffer is free again once the batch is built.
 */
const POOL_BYTES = 64 << 20;
const pool = new Map<number, Buffer[]>();
let pooled = 0;

function takeBuffer(min: number): Buffer {
  let size = 1024;
  while (size < min) size *= 2;
  const b = pool.get(size)?.pop();
  if (b !== undefined) {
    pooled -= size;
    return b;
  }
  return Buffer.allocUnsafeSlow(size);
}

function giveBuffer(b: Buffer): void {
  const size = b.length;
  if (pooled + size > POOL_BYTES || (size & (size - 1)) !== 0) return;
  let list = pool.get(size);
  if (list === undefined) pool.set(size, (list = []));
  list.push(b);
  pooled += size;
}

/** A buffer of HEADROOM + 1 bytes: a finished {@link GroupChanges} takes no more changes (a write into it throws). */
const EMPTY = Buffer.alloc(HEADROOM + 1);

/** Takes a finished part (the body from {@link HEADROOM} on) and copies it before returning. */
export type PartSink = (buf: Buffer, part: number) => void;

/**
 * The changes of one key group of one table of one operator in one checkpoint, in the order they
 * happened, written at once as the bytes of a blob body (a JSON array, see above), cut into parts of
 * about `partBytes` bytes. With a `sink`, each part goes there as soon as it is full and its buffer
 * is reused (so a checkpoint's blobs never sit in JavaScript memory whole); without, they are kept.
 *
 * Why bytes and not an array for `JSON.stringify`: the changes come in the operator's order, and a
 * group's keys and values are scattered over the heap; serializing a group at a time reads them in
 * another order than they were touched, a cache (and TLB) miss for most (~0.3 µs per entry measured at
 * 1M keys). Written here, each entry is serialized while its key is in cache (the key group was just
 * computed from it), into one of a few open buffers.
 */
export class GroupChanges {
  /** The finished parts: bytes `[HEADROOM, end)` of each are a blob body. */
  readonly parts: Buffer[] = [];
  /** The buffers under the parts, to give back to the pool. */
  private readonly owned: Buffer[] = [];
  private buf: Buffer;
  private n = HEADROOM;
  /** The last namespace written and its JSON, reused (a group's entries usually share one). */
  private lastNs: KeyPart | undefined = undefined;
  private lastNsJson: Buffer = Buffer.alloc(0);
  /** Bytes of all bodies. */
  chars = 0;
  /** Changes (puts and deletes). */
  count = 0;
  /** Parts finished. */
  partCount = 0;

  constructor(
    readonly operator: string,
    readonly table: string,
    readonly keyGroup: number,
    /** `encodePart(operator) + encodePart(table) + encodeNumber(keyGroup)`: the group's identity in the store. */
    readonly id: string,
    private readonly partBytes: number,
    private readonly sink: PartSink | null = null,
  ) {
    this.buf = takeBuffer(1024);
    this.buf[this.n++] = 0x5b; // [
  }

  /** A put of an encoded value (`encodeValue`'s output). */
  put(namespace: KeyPart, key: KeyPart, encoded: string): void {
    this.add(namespace, key, encoded);
  }

  /** A delete. */
  delete(namespace: KeyPart, key: KeyPart): void {
    this.add(namespace, key, undefined);
  }

  private room(bytes: number): void {
    if (this.n + bytes <= this.buf.length) return;
    if (this.buf === EMPTY) throw new WeirError('WEIR_INTERNAL', `changes of ${this.operator}/${this.table} key group ${this.keyGroup} were added after they were written`);
    const b = takeBuffer(Math.max(this.buf.length * 2, this.n + bytes));
    this.buf.copy(b, 0, 0, this.n);
    giveBuffer(this.buf);
    this.buf = b;
  }

  /**
   * Writes a short string of printable ASCII that JSON keeps as is (the common key or number value)
   * byte by byte, cheaper than a call into the Buffer binding; false, writing nothing, for any other.
   */
  private ascii(s: string): boolean {
    const len = s.length;
    if (len > SHORT) return false;
    this.room(len + 2);
    const b = this.buf;
    let n = this.n;
    b[n++] = 0x22;
    for (let i = 0; i < len; i++) {
      const c = s.charCodeAt(i);
      if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return false;
      b[n++] = c;
    }
    b[n++] = 0x22;
    this.n = n;
    return true;
  }

  /** Writes a string as a JSON string. */
  private string(s: string): void {
    if (this.ascii(s)) return;
    if (NEEDS_JSON.test(s)) {
      const j = JSON.stringify(s);
      this.room(j.length * 3);
      this.n += (this.buf as unknown as RawWrites).utf8Write(j, this.n);
    } else {
      this.room(s.length * 3 + 2);
      const b = this.buf;
      b[this.n++] = 0x22;
      this.n += (b as unknown as RawWrites).utf8Write(s, this.n);
      b[this.n++] = 0x22;
    }
  }

  /** Writes a key part as the blob holds it ({@link toBlobPart}). */
  private part(p: KeyPart): void {
    if (typeof p === 'string') return this.string(p);
    const j = JSON.stringify(toBlobPart(p));
    this.room(j.length * 3);
    this.n += (this.buf as unknown as RawWrites).utf8Write(j, this.n);
  }

  private add(ns: KeyPart, key: KeyPart, value: string | undefined): void {
    const start = this.n;
    if (ns !== this.lastNs || typeof ns === 'object') {
      this.lastNsJson = Buffer.from(typeof ns === 'number' && ns - ns === 0 ? String(ns === 0 ? 0 : ns) : JSON.stringify(toBlobPart(ns)), 'utf8');
      this.lastNs = ns;
    }
    if (!this.short(key, value)) {
      const nsJson = this.lastNsJson;
      this.room(nsJson.length + 1);
      const b = this.buf;
      let n = this.n;
      for (let i = 0; i < nsJson.length; i++) b[n++] = nsJson[i];
      b[n++] = 0x2c; // ,
      this.n = n;
      this.part(key);
      this.room(1);
      this.buf[this.n++] = 0x2c;
      if (value === undefined) {
        this.room(1);
        this.buf[this.n++] = 0x30; // 0: a delete
      } else this.string(value);
      this.room(1);
      this.buf[this.n++] = 0x2c;
    }
    this.count++;
    this.chars += this.n - start;
    if (this.n - HEADROOM >= this.partBytes) this.cut();
  }

  /**
   * The common entry in one go: a short printable-ASCII string key and value (or a delete), copied
   * byte by byte with one bounds check; false, writing nothing, for any other.
   */
  private short(key: KeyPart, value: string | undefined): boolean {
    if (typeof key !== 'string' || key.length > SHORT || (value !== undefined && value.length > SHORT)) return false;
    const nsJson = this.lastNsJson;
    const need = nsJson.length + key.length + (value === undefined ? 0 : value.length) + 8;
    if (this.n + need > this.buf.length) this.room(need);
    const b = this.buf;
    let n = this.n;
    for (let i = 0; i < nsJson.length; i++) b[n++] = nsJson[i];
    b[n++] = 0x2c;
    b[n++] = 0x22;
    for (let i = 0; i < key.length; i++) {
      const c = key.charCodeAt(i);
      if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return false;
      b[n++] = c;
    }
    b[n++] = 0x22;
    b[n++] = 0x2c;
    if (value === undefined) b[n++] = 0x30;
    else {
      b[n++] = 0x22;
      for (let i = 0; i < value.length; i++) {
        const c = value.charCodeAt(i);
        if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return false;
        b[n++] = c;
      }
      b[n++] = 0x22;
    }
    b[n++] = 0x2c;
    this.n = n;
    return true;
  }

  /** Closes the part being written (`,` → `]`) and, unless the changes are all in, starts the next. */
  private cut(last = false): void {
    const buf = this.buf;
    let kept = false;
    if (this.n > HEADROOM + 1) {
      buf[this.n - 1] = 0x5d; // ]
      if (this.sink !== null) this.sink(buf.subarray(0, this.n), this.partCount);
      else {
        this.parts.push(buf.subarray(0, this.n));
        this.owned.push(buf);
        kept = true;
      }
      this.partCount++;
    } else if (!last) return; // nothing in it
    if (last) {
      if (!kept) giveBuffer(buf);
      this.buf = EMPTY;
    } else if (kept) this.buf = takeBuffer(Math.min(buf.length, this.partBytes + 1024));
    this.n = HEADROOM;
    this.buf[this.n++] = 0x5b;
  }

  /** Finishes the last part; the kept parts' bodies (bytes from {@link HEADROOM} on): none with a sink. */
  finish(): Buffer[] {
    if (this.buf !== EMPTY) this.cut(true);
    return this.parts;
  }

  /** Gives the buffers back for the next checkpoint: the parts must no longer be used, nor this. */
  release(): void {
    this.finish();
    for (const b of this.owned) giveBuffer(b);
    this.owned.length = 0;
    this.parts.length = 0;
  }
}

/**
 * The live entries of one group, built by applying blobs in order (later wins, deletes remove).
 * Keys are compared as the store would: `1`, `'1'` and `[encodePart(1n)]` are different keys.
 */
export class GroupTable {
  private readonly byNamespace = new Map<BlobPart, Map<BlobPart, string>>();
  /** One object per wrapped part, so that a Map can key on it. */
  private readonly wrapped = new Map<string, BlobPart>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  private canonical(p: unknown): BlobPart {
    switch (typeof p) {
      case 'string':
      case 'number':
      case 'boolean':
        return p;
    }
    if (!Array.isArray(p) || p.length !== 1 || typeof p[0] !== 'string') throw new BlobCorruptError('a key part has an unexpected form');
    const text = p[0] as string;
    let c = this.wrapped.get(text);
    if (c === undefined) this.wrapped.set(text, (c = [text]));
    return c;
  }

  /** Applies one blob body's entries in order. */
  apply(body: BlobBody): void {
    if (body.length % 3 !== 0) throw new BlobCorruptError('its entries are incomplete');
    let lastNs: unknown = undefined;
    let keys: Map<BlobPart, string> | undefined;
    for (let i = 0; i < body.length; i += 3) {
      const nsRaw = body[i];
      if (keys === undefined || nsRaw !== lastNs) {
        const ns = this.canonical(nsRaw);
        keys = this.byNamespace.get(ns);
        if (keys === undefined) this.byNamespace.set(ns, (keys = new Map()));
        lastNs = nsRaw;
      }
      const key = this.canonical(body[i + 1]);
      const value = body[i + 2];
      if (typeof value === 'string' && value !== '') {
        const before = keys.size;
        keys.set(key, value);
        this.count += keys.size - before;
      } else if (value === 0 || value === '') {
        if (keys.delete(key)) this.count--;
      } else {
        throw new BlobCorruptError('an entry has a value of an unexpected form');
      }
    }
  }

  /** Calls `fn` for every live entry, in blob form. */
  forEach(fn: (ns: BlobPart, key: BlobPart, value: string) => void): void {
    for (const [ns, keys] of this.byNamespace) for (const [key, value] of keys) fn(ns, key, value);
  }

  /** The contents as full-blob bodies (JSON text) of about `partChars` chars each: at least one, maybe `[]`. */
  toParts(partChars: number): string[] {
    const parts: string[] = [];
    let current: BlobBody = [];
    let currentChars = 0;
    this.forEach((ns, key, value) => {
      const c = entryChars(ns, key, value);
      if (currentChars + c > partChars && current.length > 0) {
        parts.push(JSON.stringify(current));
        current = [];
        currentChars = 0;
      }
      current.push(ns, key, value);
      currentChars += c;
    });
    parts.push(JSON.stringify(current));
    return parts;
  }
}

function header(kind: BlobKind, id: number, part: number): string {
  return `${kind} ${id} ${part}`;
}

/** The stored form of part `part` of a blob whose body is `body` (JSON text). */
export function encodeBlobPart(kind: BlobKind, id: number, part: number, body: string): string {
  const head = header(kind, id, part);
  return `${head} ${crc32(body, crc32(head)).toString(16)}\n${body}`;
}

/**
 * The stored form of one part of a blob whose body is `buf` from {@link HEADROOM} on (as
 * {@link GroupChanges} builds it): the header goes into the headroom, no copy.
 */
export function frameBlobPart(kind: BlobKind, id: number, part: number, buf: Buffer): Buffer {
  const head = header(kind, id, part);
  const line = `${head} ${crc32(buf.subarray(HEADROOM), crc32(head)).toString(16)}\n`;
  if (line.length > HEADROOM) throw new WeirError('WEIR_INTERNAL', `a blob header is longer than ${HEADROOM} bytes`);
  (buf as unknown as RawWrites).latin1Write(line, HEADROOM - line.length);
  return buf.subarray(HEADROOM - line.length);
}

/**
 * Checks and parses a stored part: its header must say what the caller expects (kind, written by
 * checkpoint `id`, part `part`) and its CRC must match. Throws {@link BlobCorruptError}.
 */
export function decodeBlobPart(text: string, kind: BlobKind, id: number, part: number): BlobBody {
  const nl = text.indexOf('\n');
  if (nl === -1) throw new BlobCorruptError('it is truncated (no header)');
  const line = text.slice(0, nl);
  const sp = line.lastIndexOf(' ');
  const head = line.slice(0, sp);
  if (head !== header(kind, id, part)) throw new BlobCorruptError(`its header (${JSON.stringify(line.slice(0, 60))}) is not that of part ${part + 1} of a ${kind} blob of checkpoint ${id}`);
  const body = text.slice(nl + 1);
  if (line.slice(sp + 1) !== crc32(body, crc32(head)).toString(16)) throw new BlobCorruptError('it fails its checksum (corrupt or truncated)');
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (e) {
    throw new BlobCorruptError(`it cannot be parsed: ${(e as Error).message}`);
  }
  if (!Array.isArray(parsed) || parsed.length % 3 !== 0) throw new BlobCorruptError('it is not a list of entries');
  return parsed;
}

const nativeCrc32 = (zlib as { crc32?: (data: string | Uint8Array, value?: number) => number }).crc32;
let table: Int32Array | undefined;

/** CRC-32 (zlib's) of `data` (a string: its UTF-8 bytes), continuing from `value`: JavaScript, for where zlib.crc32 is missing (Node < 20.15). */
export function crc32Js(data: string | Uint8Array, value = 0): number {
  if (table === undefined) {
    table = new Int32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c;
    }
  }
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  let c = ~value;
  for (let i = 0; i < bytes.length; i++) c = table[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

/** CRC-32 of `data` (a string: its UTF-8 bytes), continuing from `value` (~4 GB/s through zlib). */
export function crc32(data: string | Uint8Array, value = 0): number {
  return nativeCrc32 ? nativeCrc32(data, value) : crc32Js(data, value);
}

/** A corrupt-blob error as the store reports it: WEIR_CHECKPOINT_INVALID naming the checkpoint and the group. */
export function blobInvalid(checkpoint: number, where: string, reason: string, cause?: unknown): WeirError {
  return new WeirError('WEIR_CHECKPOINT_INVALID', `checkpoint ${checkpoint}: the state of ${where} is corrupt: ${reason}`, { cause });
}

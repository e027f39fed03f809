import { basename } from 'node:path';
import type { Codec } from '../codecs/codec.js';
import { WeirError, messageOf } from '../errors.js';
import { InputFile } from './input-file.js';
import type { Source, SourceContext } from './source.js';

/**
 * How records are laid out in a file: `'lines'`, one record per line (`\n` or `\r\n`; for text codecs);
 * `'length-prefixed'`, each record's bytes preceded by their length as a 4-byte big-endian unsigned
 * integer (any codec).
 * @example sources.file<User>('users.bin', { codec: codecs.avro<User>(schema), framing: 'length-prefixed' })
 */
export type FileFraming = 'lines' | 'length-prefixed';

/**
 * Options of {@link fileSource}.
 * @example { codec: codecs.protobuf<Order>({ files: 'shop.proto', type: 'shop.Order' }), highWaterMark: 1 << 20 }
 */
export interface FileSourceOptions<T> {
  /** Decodes each record's bytes: `codecs.json()`, `codecs.avro(schema)`, `codecs.protobuf(...)`, ... */
  codec: Codec<T>;
  /** Default: `'lines'` for a text codec (json, string), `'length-prefixed'` otherwise. */
  framing?: FileFraming;
  /** Source name in logs and errors (default `file(<file name>)`). */
  name?: string;
  /** Bytes read from the file at a time (default 64 KiB). */
  highWaterMark?: number;
  /**
   * Length-prefixed framing: the largest record accepted (default 64 MiB). A larger length prefix
   * means the framing itself is corrupt: the job fails with `WEIR_DECODE_FAILED`, since no later
   * record can be found.
   */
  maxRecordBytes?: number;
}

/**
 * What a record the source could not decode looks like to `ctx.reject` and a dead-letter sink: where
 * it is, and its content (`text` with line framing, `bytes` with length-prefixed framing).
 * @example
 * for (const d of deadLetters) { const raw = d.record as FileRawRecord; console.log(raw.offset, raw.line ?? raw.index, d.reason); }
 */
export interface FileRawRecord {
  /** Byte offset of the record in the file (of its length prefix, with length-prefixed framing). */
  readonly offset: number;
  /** Line framing: the 1-based line number. */
  readonly line?: number;
  /** Length-prefixed framing: the 1-based record number. */
  readonly index?: number;
  /** Line framing: the line, without its line ending (invalid UTF-8 shows as U+FFFD). */
  readonly text?: string;
  /** Length-prefixed framing: the record's bytes (a copy), without the length prefix. */
  readonly bytes?: Uint8Array;
}

/**
 * Where a file source is: the byte offset after the last record handed out, and how many lines /
 * records that is (what checkpoints store; `seek` takes it back).
 * @example const at = src.savePosition(); // { offset: 18342, index: 120 }
 */
export interface FilePosition {
  readonly offset: number;
  readonly index: number;
}

/**
 * A file source ({@link fileSource}) with read-only progress counters.
 * @example
 * const src = sources.file<Txn>('txns.bin', { codec: codecs.avro<Txn>(schema) });
 * setInterval(() => console.log(`at byte ${src.position}, record ${src.records}`), 1000);
 */
export interface FileSource<T> extends Source<T> {
  /** The file read. */
  readonly path: string;
  readonly codec: Codec<T>;
  readonly framing: FileFraming;
  /** Bytes read from the file so far (may run ahead of the records returned). */
  readonly bytesRead: number;
  /** The offset just after the last record returned or rejected: where a resumed read starts. */
  readonly position: number;
  /** Lines (line framing, blank ones included) or records (length-prefixed) consumed so far. */
  readonly records: number;
  /** Where the source is: `{ offset, index }` just after the last record handed out. */
  savePosition(): FilePosition;
  /** After `open`, before the first `poll`: resume at a position `savePosition` returned. */
  seek(position: unknown): void;
}

const DEFAULT_HIGH_WATER_MARK = 64 * 1024;
const DEFAULT_MAX_RECORD_BYTES = 64 * 1024 * 1024;
const LF = 0x0a;
const CR = 0x0d;
const PREFIX = 4;
const EMPTY = Buffer.alloc(0);

/**
 * Reads records from a file through a codec, streamed in chunks (the file is never read whole), with
 * line framing (text codecs; empty lines are skipped, a UTF-8 BOM at the start is dropped) or
 * length-prefixed framing (4-byte big-endian length + bytes). Before each batch the codec's `prepare`
 * runs on the batch's bytes (an Avro codec fetches unknown writer schemas there).
 *
 * A record the codec cannot decode goes to the source's error policy as a {@link FileRawRecord} with
 * its line number or byte offset, and reading goes on: by default the job fails with
 * `WEIR_DECODE_FAILED`; with `onError: { deadLetter }` the record is dead-lettered and skipped. A
 * truncated last record (the file ends inside it) is rejected the same way. It is resumable: a
 * checkpoint stores `{ offset, index }` and a restored job seeks there.
 *
 * @example
 * p.source(sources.file<Txn>('txns.jsonl', { codec: codecs.json<Txn>({ fields: { id: 'integer' } }) }), {
 *   timestamp: (t) => t.ts, onError: { deadLetter: sinks.jsonl('bad.jsonl') } })
 * @example
 * sources.file<User>('users.bin', { codec: codecs.avro<User>(userSchema), framing: 'length-prefixed' })
 */
export function fileSource<T>(path: string, opts: FileSourceOptions<T>): FileSource<T> {
  if (typeof path !== 'string' || path === '') throw new WeirError('WEIR_INVALID_ARGUMENT', `sources.file: expected a file path, got ${String(path)}`);
  const codec = opts?.codec;
  if (codec === undefined || typeof codec.decode !== 'function') {
    throw new WeirError('WEIR_INVALID_ARGUMENT', `sources.file(${path}): a codec is required, e.g. { codec: codecs.json() }`);
  }
  const framing = opts.framing ?? (codec.text === true ? 'lines' : 'length-prefixed');
  if (framing !== 'lines' && framing !== 'length-prefixed') {
    throw new WeirError('WEIR_INVALID_ARGUMENT', `sources.file(${path}): framing must be 'lines' or 'length-prefixed', got ${String(framing)}`);
  }
  if (framing === 'lines' && codec.text !== true) {
    throw new WeirError('WEIR_INVALID_ARGUMENT', `sources.file(${path}): codec ${codec.name} writes binary data, which cannot be split into lines: use framing 'length-prefixed'`);
  }
  const hwm = opts.highWaterMark ?? DEFAULT_HIGH_WATER_MARK;
  if (!(Number.isInteger(hwm) && hwm > 0)) {
    throw new WeirError('WEIR_INVALID_ARGUMENT', `sources.file(${path}): highWaterMark must be a positive integer, got ${String(opts.highWaterMark)}`);
  }
  const maxRecord = opts.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES;
  if (!(Number.isInteger(maxRecord) && maxRecord > 0)) {
    throw new WeirError('WEIR_INVALID_ARGUMENT', `sources.file(${path}): maxRecordBytes must be a positive integer, got ${String(opts.maxRecordBytes)}`);
  }
  return new CodecFileSource<T>(opts.name ?? `file(${basename(path)})`, path, codec, framing, hwm, maxRecord);
}

/** Records found in the buffer, not decoded yet (parallel arrays). */
interface Frames {
  readonly bytes: Buffer[];
  readonly offsets: number[];
  readonly indexes: number[];
  /** Set for a frame that is bad in itself (truncated), instead of bytes to decode. */
  readonly errors: (string | undefined)[];
  /** A framing error after the frames: the rest of the file cannot be read. */
  fatal?: { offset: number; index: number; reason: string };
}

class CodecFileSource<T> implements FileSource<T> {
  private readonly file: InputFile;
  private ctx: Pick<SourceContext, 'reject'> | null = null;
  /** Bytes read and not consumed yet start at `start` in `buf`; `buf` ends where the read ended. */
  private buf: Buffer = EMPTY;
  private start = 0;
  /** Line framing: where the search for the next line feed resumes. */
  private scan = 0;
  /** Length-prefixed framing: bytes from `start` the next record needs. */
  private need = 0;
  private eof = false;
  private ended = false;
  private failure: { error: unknown } | null = null;
  private closed = false;
  private read = 0;
  private consumed = 0;
  private index = 0;

  constructor(
    readonly name: string,
    readonly path: string,
    readonly codec: Codec<T>,
    readonly framing: FileFraming,
    private readonly highWaterMark: number,
    private readonly maxRecordBytes: number,
  ) {
    this.file = new InputFile('file source', path);
  }

  get bytesRead(): number {
    return this.read;
  }

  get position(): number {
    return this.consumed;
  }

  get records(): number {
    return this.index;
  }

  /** Byte offset and line / record count just after the last record handed out. */
  savePosition(): FilePosition {
    return { offset: this.consumed, index: this.index };
  }

  /** Resumes reading at a position `savePosition` returned. */
  seek(position: unknown): void {
    const p = position as { offset?: unknown; index?: unknown } | null;
    if (typeof p?.offset !== 'number' || typeof p.index !== 'number' || !(p.offset >= 0) || !Number.isInteger(p.offset)) {
      throw new WeirError('WEIR_INVALID_ARGUMENT', `file source ${this.path}: cannot resume from ${JSON.stringify(position)}`);
    }
    this.read = this.consumed = p.offset;
    this.index = p.index;
    this.buf = EMPTY;
    this.start = this.scan = this.need = 0;
    this.eof = this.ended = false;
  }

  async open(ctx: SourceContext): Promise<void> {
    this.ctx = ctx;
    if (this.codec.open !== undefined) {
      try {
        await this.codec.open();
      } catch (e) {
        throw new Error(`file source ${this.path}: codec ${this.codec.name} failed to open: ${messageOf(e)}`, { cause: e });
      }
    }
    return this.ensureOpen();
  }

  poll(max: number): readonly T[] | null | Promise<readonly T[] | null> {
    if (this.failure !== null) throw this.takeFailure();
    if (this.ended) return null;
    // Fast path: a whole batch already buffered and a codec that needs nothing fetched: no promise.
    if (this.file.isOpen) {
      const frames = newFrames();
      if (this.collect(frames, max)) {
        const ready = this.prepare(frames);
        if (ready === null) {
          const batch = this.decode(frames);
          if (batch.length > 0 || this.failure !== null) return batch;
        } else {
          return ready.then(() => this.decode(frames)).then((batch) => (batch.length > 0 || this.failure !== null ? batch : this.fill(max)));
        }
      } else if (frames.bytes.length > 0) {
        return this.fill(max, frames);
      }
    }
    return this.fill(max);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.ended = true;
    this.buf = EMPTY;
    this.start = this.scan = 0;
    await this.file.close();
  }

  private ensureOpen(): Promise<void> {
    return this.file.open();
  }

  /**
   * Reads until `max` records are framed or the file ends, decodes them, and repeats while every one
   * of them was rejected (a batch of only bad records returns nothing: read on).
   */
  private async fill(max: number, pending?: Frames): Promise<readonly T[] | null> {
    await this.ensureOpen();
    for (;;) {
      const frames = pending ?? newFrames();
      pending = undefined;
      try {
        while (!this.collect(frames, max)) {
          if (this.eof) {
            this.collectLast(frames);
            this.ended = true;
            break;
          }
          await this.readMore();
          if (this.closed) return null;
        }
      } catch (e) {
        // A read failed: what was framed before it still goes out, then the error.
        if (frames.bytes.length === 0) throw e;
        const batch = await this.decodeAfterPrepare(frames);
        this.failure ??= { error: e };
        return batch;
      }
      const batch = await this.decodeAfterPrepare(frames);
      if (batch.length > 0 || this.failure !== null) return batch;
      if (this.ended) return null;
    }
  }

  private async decodeAfterPrepare(frames: Frames): Promise<readonly T[]> {
    const ready = this.prepare(frames);
    if (ready !== null) await ready;
    return this.decode(frames);
  }

  /** The codec's `prepare` for the frames' bytes; its failure is the source's (a registry that is down). */
  private prepare(frames: Frames): Promise<void> | null {
    if (this.codec.prepare === undefined || frames.bytes.length === 0) return null;
    let r: Promise<void> | null;
    try {
      r = this.codec.prepare(frames.bytes);
    } catch (e) {
      return Promise.reject(this.prepareFailed(e));
    }
    return r === null || r === undefined ? null : r.catch((e: unknown) => Promise.reject(this.prepareFailed(e)));
  }

  private prepareFailed(e: unknown): Error {
    return new Error(`file source ${this.path}: codec ${this.codec.name} failed to prepare a batch: ${messageOf(e)}`, { cause: e });
  }

  /**
   * Decodes the frames in order; a bad one goes to `ctx.reject`. When that throws (the fail policy),
   * the records before it still go out and the error comes with the next poll.
   */
  private decode(frames: Frames): T[] {
    const batch: T[] = [];
    const codec = this.codec;
    const { bytes, errors } = frames;
    for (let i = 0; i < bytes.length; i++) {
      try {
        const error = errors[i];
        if (error !== undefined) {
          this.reject(frames, i, error, undefined);
          continue;
        }
        let value: T;
        try {
          value = codec.decode(bytes[i]);
        } catch (e) {
          this.reject(frames, i, undefined, e);
          continue;
        }
        batch.push(value);
      } catch (e) {
        // The job fails: its position is just after the record that failed it, not after the batch.
        if (i + 1 < bytes.length) {
          this.consumed = frames.offsets[i + 1];
          this.index = frames.indexes[i + 1] - 1;
        }
        return this.deliverThenFail(batch, e);
      }
    }
    const fatal = frames.fatal;
    if (fatal !== undefined) {
      this.ended = true;
      const raw: FileRawRecord = { offset: fatal.offset, index: fatal.index };
      return this.deliverThenFail(batch, new WeirError('WEIR_DECODE_FAILED', `${this.path} record ${fatal.index} (byte ${fatal.offset}): ${fatal.reason}`, { step: this.name, record: raw }));
    }
    return batch;
  }

  private deliverThenFail(batch: T[], e: unknown): T[] {
    if (batch.length === 0) {
      this.ended = true;
      throw e;
    }
    this.failure = { error: e };
    return batch;
  }

  private takeFailure(): unknown {
    const f = this.failure as { error: unknown };
    this.failure = null;
    this.ended = true;
    return f.error;
  }

  private reject(frames: Frames, i: number, problem: string | undefined, cause: unknown): void {
    const offset = frames.offsets[i];
    const n = frames.indexes[i];
    const lines = this.framing === 'lines';
    const raw: FileRawRecord = lines
      ? { offset, line: n, text: frames.bytes[i].toString('utf8') }
      : { offset, index: n, bytes: Buffer.from(frames.bytes[i]) };
    const where = `${this.path} ${lines ? 'line' : 'record'} ${n} (byte ${offset})`;
    // The job's handlers append the cause's message (the CodecError) to the reason.
    const reason = problem === undefined ? where : `${where}: ${problem}`;
    if (this.ctx) {
      this.ctx.reject(raw, reason, cause);
    } else {
      throw new WeirError('WEIR_DECODE_FAILED', cause === undefined ? reason : `${reason}: ${messageOf(cause)}`, { step: this.name, record: raw, cause });
    }
  }

  /** Frames buffered records into `frames`; true once it holds `max`, or a framing error stops it. */
  private collect(frames: Frames, max: number): boolean {
    return this.framing === 'lines' ? this.collectLines(frames, max) : this.collectPrefixed(frames, max);
  }

  private collectLines(frames: Frames, max: number): boolean {
    const buf = this.buf;
    while (frames.bytes.length < max) {
      const nl = buf.indexOf(LF, this.scan);
      if (nl === -1) {
        this.scan = buf.length;
        return false;
      }
      const from = this.start;
      this.start = this.scan = nl + 1;
      this.pushLine(frames, buf, from, nl, nl + 1 - from);
    }
    return true;
  }

  private pushLine(frames: Frames, buf: Buffer, from: number, to: number, size: number): void {
    const offset = this.consumed;
    this.consumed += size;
    const line = ++this.index;
    let end = to;
    if (end > from && buf[end - 1] === CR) end--;
    let begin = from;
    if (offset === 0 && end - begin >= 3 && buf[begin] === 0xef && buf[begin + 1] === 0xbb && buf[begin + 2] === 0xbf) begin += 3;
    if (end === begin) return;
    frames.bytes.push(buf.subarray(begin, end));
    frames.offsets.push(offset);
    frames.indexes.push(line);
    frames.errors.push(undefined);
  }

  private collectPrefixed(frames: Frames, max: number): boolean {
    const buf = this.buf;
    while (frames.bytes.length < max) {
      const at = this.start;
      const avail = buf.length - at;
      if (avail < PREFIX) {
        this.need = PREFIX;
        return false;
      }
      const len = buf.readUInt32BE(at);
      if (len > this.maxRecordBytes) {
        frames.fatal = {
          offset: this.consumed,
          index: this.index + 1,
          reason: `length prefix ${len} is larger than maxRecordBytes (${this.maxRecordBytes}): the framing is corrupt and no later record can be found`,
        };
        return true;
      }
      if (avail < PREFIX + len) {
        this.need = PREFIX + len;
        return false;
      }
      frames.bytes.push(buf.subarray(at + PREFIX, at + PREFIX + len));
      frames.offsets.push(this.consumed);
      frames.indexes.push(++this.index);
      frames.errors.push(undefined);
      this.start = at + PREFIX + len;
      this.consumed += PREFIX + len;
      this.need = 0;
    }
    return true;
  }

  /** At the end of the file: the last line without a line ending, or a truncated record. */
  private collectLast(frames: Frames): void {
    const buf = this.buf;
    const from = this.start;
    const rest = buf.length - from;
    this.buf = EMPTY;
    this.start = this.scan = 0;
    if (rest === 0) return;
    if (this.framing === 'lines') {
      this.pushLine(frames, buf, from, buf.length, rest);
      return;
    }
    const reason = rest < PREFIX
      ? `truncated: the file ends ${rest} byte${rest === 1 ? '' : 's'} into a 4-byte length prefix`
      : `truncated: the length prefix says ${buf.readUInt32BE(from)} bytes, the file ends after ${rest - PREFIX}`;
    frames.bytes.push(buf.subarray(from + Math.min(PREFIX, rest)));
    frames.offsets.push(this.consumed);
    frames.indexes.push(++this.index);
    frames.errors.push(reason);
    this.consumed += rest;
  }

  /**
   * Reads the next chunk into a new buffer that starts with the unconsumed bytes (records already
   * handed out may be views of the old one, so it is never written again).
   */
  private async readMore(): Promise<void> {
    if (!this.file.isOpen) {
      this.eof = true;
      return;
    }
    const pending = this.buf.length - this.start;
    const size = Math.max(pending + this.highWaterMark, this.need, pending * 2);
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, this.start);
    const n = await this.file.read(next, pending, size - pending, this.read);
    this.read += n;
    this.scan = Math.max(0, this.scan - this.start);
    this.buf = next.subarray(0, pending + n);
    this.start = 0;
    if (n === 0) this.eof = true;
  }
}

function newFrames(): Frames {
  return { bytes: [], offsets: [], indexes: [], errors: [] };
}

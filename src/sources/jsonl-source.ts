import { basename } from 'node:path';
import type { Codec } from '../codecs/codec.js';
import { WeirError, messageOf } from '../errors.js';
import { InputFile } from './input-file.js';
import type { Source, SourceContext } from './source.js';

/** Options of {@link jsonlSource}. */
export interface JsonlSourceOptions<T> {
  /** Source name in logs and errors (default `jsonl(<file name>)`). */
  name?: string;
  /**
   * Validates or maps each decoded line (`line` is 1-based). A throw counts as a decode failure: the
   * line goes to the source's error policy like a line that is not JSON.
   * @example parse: (v, line) => { if (typeof (v as Txn).ts !== 'number') throw new Error('no ts'); return v as Txn; }
   */
  parse?: (value: unknown, line: number) => T;
  /**
   * Decodes each line instead of `JSON.parse`: a text codec with no `open`/`prepare`, typically a
   * validating `codecs.json(...)`. A `CodecError` counts as a decode failure (its field in the reason).
   * `parse`, when given too, runs on what the codec returns.
   * @example codec: codecs.json<Txn>({ fields: { id: 'integer', amount: 'number' } })
   */
  codec?: Codec<unknown>;
  /** Bytes read from the file at a time (default 64 KiB). */
  highWaterMark?: number;
}

/** What a line the source could not decode looks like to `ctx.reject` and a dead-letter sink. */
export interface JsonlRawLine {
  /** 1-based line number in the file. */
  readonly line: number;
  /** The line as read, without its line ending. */
  readonly text: string;
}

/**
 * A JSON-lines file source ({@link jsonlSource}), with read-only progress counters.
 * @example
 * const src = sources.jsonl('events.jsonl');
 * p.source(src);
 * setInterval(() => console.log(`at byte ${src.position}, line ${src.lines}`), 1000);
 */
export interface JsonlSource<T> extends Source<T> {
  /** The file read. */
  readonly path: string;
  /** Bytes read from the file so far (whole chunks: may run ahead of the records returned). */
  readonly bytesRead: number;
  /**
   * Bytes consumed so far: the offset just after the last line returned or skipped, i.e. where a
   * resumed read would start.
   */
  readonly position: number;
  /** Lines consumed so far (blank and rejected lines included). */
  readonly lines: number;
}

const DEFAULT_HIGH_WATER_MARK = 64 * 1024;
const LF = 0x0a;
const CR = 0x0d;

/**
 * Reads a JSON-lines file, one record per line, streamed in chunks of `highWaterMark` bytes (the file
 * is never read whole). `\n` and `\r\n` endings both work; blank lines are skipped. A line that is not
 * JSON, or that `parse` rejects, goes to the source's error policy as `{ line, text }`: by default the
 * job fails with `WEIR_DECODE_FAILED`; with `onError: { deadLetter }` it is dead-lettered and skipped.
 * A missing file fails the job at open (`WEIR_SOURCE_FAILED`, naming the path).
 *
 * @example
 * p.source(sources.jsonl<Txn>('txns.jsonl'), { timestamp: t => t.ts, onError: { deadLetter: sinks.jsonl('bad.jsonl') } })
 */
export function jsonlSource<T = unknown>(path: string, opts: JsonlSourceOptions<T> = {}): JsonlSource<T> {
  if (typeof path !== 'string' || path === '') throw new WeirError('WEIR_INVALID_ARGUMENT', `sources.jsonl: expected a file path, got ${String(path)}`);
  const hwm = opts.highWaterMark ?? DEFAULT_HIGH_WATER_MARK;
  if (!(Number.isInteger(hwm) && hwm > 0)) {
    throw new WeirError('WEIR_INVALID_ARGUMENT', `sources.jsonl: highWaterMark must be a positive integer, got ${String(opts.highWaterMark)}`);
  }
  const codec = opts.codec;
  if (codec !== undefined && (typeof codec?.decode !== 'function' || codec.text !== true || codec.open !== undefined || codec.prepare !== undefined)) {
    throw new WeirError('WEIR_INVALID_ARGUMENT', `sources.jsonl(${path}): codec must be a text codec without open/prepare (codecs.json, codecs.string); for others use sources.file`);
  }
  return new JsonlFileSource<T>(opts.name ?? `jsonl(${basename(path)})`, path, hwm, opts.parse, codec);
}

class JsonlFileSource<T> implements JsonlSource<T> {
  private readonly file: InputFile;
  private ctx: Pick<SourceContext, 'reject'> | null = null;
  /** The current chunk and the offset of its first unconsumed byte. */
  private chunk: Buffer = Buffer.alloc(0);
  private start = 0;
  /** Pieces of a line that spans chunks, oldest first, and their total length. */
  private carry: Buffer[] = [];
  private carried = 0;
  private eof = false;
  private ended = false;
  /** An error to throw at the next poll, once the records read before it have been returned. */
  private failure: { error: unknown } | null = null;
  private closed = false;
  private read = 0;
  private consumed = 0;
  private lineNo = 0;

  constructor(
    readonly name: string,
    readonly path: string,
    private readonly highWaterMark: number,
    private readonly parse: ((value: unknown, line: number) => T) | undefined,
    private readonly codec: Codec<unknown> | undefined = undefined,
  ) {
    this.file = new InputFile('jsonl source', path);
  }

  get bytesRead(): number {
    return this.read;
  }

  get position(): number {
    return this.consumed;
  }

  get lines(): number {
    return this.lineNo;
  }

  /** Byte offset and line number just after the last line handed out. */
  savePosition(): { offset: number; line: number } {
    return { offset: this.consumed, line: this.lineNo };
  }

  /** Resumes reading at a position `savePosition` returned. */
  seek(position: unknown): void {
    const p = position as { offset?: unknown; line?: unknown } | null;
    if (typeof p?.offset !== 'number' || typeof p.line !== 'number' || !(p.offset >= 0)) {
      throw new WeirError('WEIR_INVALID_ARGUMENT', `jsonl source ${this.path}: cannot resume from ${JSON.stringify(position)}`);
    }
    this.read = this.consumed = p.offset;
    this.lineNo = p.line;
    this.chunk = Buffer.alloc(0);
    this.start = 0;
    this.carry = [];
    this.carried = 0;
    this.eof = false;
    this.ended = false;
  }

  open(ctx: SourceContext): Promise<void> {
    this.ctx = ctx;
    return this.ensureOpen();
  }

  poll(max: number): readonly T[] | null | Promise<readonly T[] | null> {
    if (this.failure !== null) throw this.takeFailure();
    if (this.ended) return null;
    const batch: T[] = [];
    // Fast path: enough complete lines already buffered, no promise for this batch.
    if (this.file.isOpen) {
      try {
        if (this.take(batch, max)) return batch;
      } catch (e) {
        return this.deliverThenFail(batch, e);
      }
    }
    return this.fill(batch, max);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.ended = true;
    this.chunk = Buffer.alloc(0);
    this.carry = [];
    this.carried = 0;
    await this.file.close();
  }

  private ensureOpen(): Promise<void> {
    return this.file.open();
  }

  /** Reads chunks until `batch` holds `max` records or the file ends. */
  private async fill(batch: T[], max: number): Promise<readonly T[] | null> {
    await this.ensureOpen();
    try {
      while (!this.take(batch, max)) {
        if (this.eof) {
          this.ended = true;
          this.finishLastLine(batch);
          return batch.length === 0 ? null : batch;
        }
        await this.readChunk();
        if (this.closed) return null;
      }
    } catch (e) {
      return this.deliverThenFail(batch, e);
    }
    return batch;
  }

  /**
   * A rejected line threw (the fail policy) or a read failed: the records before it still go out, in
   * order, and the error comes with the next poll.
   */
  private deliverThenFail(batch: T[], e: unknown): readonly T[] {
    if (batch.length === 0) throw e;
    this.failure = { error: e };
    return batch;
  }

  private takeFailure(): unknown {
    const f = this.failure as { error: unknown };
    this.failure = null;
    this.ended = true;
    return f.error;
  }

  /** Moves complete buffered lines into `batch`; true once it holds `max` records. */
  private take(batch: T[], max: number): boolean {
    const chunk = this.chunk;
    let start = this.start;
    while (batch.length < max) {
      const nl = chunk.indexOf(LF, start);
      if (nl === -1) break;
      // Moved past the line before decoding it: a rejected line that throws is skipped all the same.
      this.start = nl + 1;
      if (this.carry.length === 0) {
        this.consumeLine(batch, chunk, start, nl, nl + 1 - start);
      } else {
        this.carry.push(chunk.subarray(start, nl));
        const joined = Buffer.concat(this.carry);
        const advance = this.carried + nl + 1 - start;
        this.carry = [];
        this.carried = 0;
        this.consumeLine(batch, joined, 0, joined.length, advance);
      }
      start = nl + 1;
    }
    return batch.length >= max;
  }

  private finishLastLine(batch: T[]): void {
    if (this.start < this.chunk.length) this.carry.push(this.chunk.subarray(this.start));
    this.chunk = Buffer.alloc(0);
    this.start = 0;
    if (this.carry.length === 0) return;
    const joined = this.carry.length === 1 ? this.carry[0] : Buffer.concat(this.carry);
    this.carry = [];
    this.carried = 0;
    this.consumeLine(batch, joined, 0, joined.length, joined.length);
  }

  /** Decodes the line `buf[from, to)` (its `\n` excluded); `advance` is its size in the file, `\n` included. */
  private consumeLine(batch: T[], buf: Buffer, from: number, to: number, advance: number): void {
    this.consumed += advance;
    const line = ++this.lineNo;
    let end = to;
    if (end > from && buf[end - 1] === CR) end--;
    if (end === from) return;
    if (this.codec !== undefined) {
      this.consumeWithCodec(batch, this.codec, buf, line === 1 && end - from >= 3 && buf[from] === 0xef && buf[from + 1] === 0xbb && buf[from + 2] === 0xbf ? from + 3 : from, end, line);
      return;
    }
    let text = buf.toString('utf8', from, end);
    if (line === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (e) {
      if (text.trim() === '') return;
      this.reject(line, text, 'invalid JSON', e);
      return;
    }
    if (this.parse === undefined) {
      batch.push(value as T);
      return;
    }
    let parsed: T;
    try {
      parsed = this.parse(value, line);
    } catch (e) {
      this.reject(line, text, 'rejected by parse', e);
      return;
    }
    batch.push(parsed);
  }

  /** `consumeLine` with a codec instead of `JSON.parse`. */
  private consumeWithCodec(batch: T[], codec: Codec<unknown>, buf: Buffer, from: number, to: number, line: number): void {
    let value: unknown;
    try {
      value = codec.decode(buf.subarray(from, to));
    } catch (e) {
      const text = buf.toString('utf8', from, to);
      if (text.trim() === '') return;
      this.reject(line, text, 'rejected by codec', e);
      return;
    }
    if (this.parse === undefined) {
      batch.push(value as T);
      return;
    }
    try {
      batch.push(this.parse(value, line));
    } catch (e) {
      this.reject(line, buf.toString('utf8', from, to), 'rejected by parse', e);
    }
  }

  private reject(line: number, text: string, what: string, cause: unknown): void {
    const raw: JsonlRawLine = { line, text };
    // The job's handlers append the cause's message (the JSON error) to the reason.
    const reason = `${this.path} line ${line}: ${what}`;
    if (this.ctx) {
      this.ctx.reject(raw, reason, cause);
    } else {
      throw new WeirError('WEIR_DECODE_FAILED', `${reason}: ${messageOf(cause)}`, { step: this.name, record: raw, cause });
    }
  }

  private async readChunk(): Promise<void> {
    if (!this.file.isOpen) {
      this.eof = true;
      return;
    }
    // The unconsumed tail of the chunk is the start of a line that continues in the next one.
    if (this.start < this.chunk.length) {
      this.carry.push(this.chunk.subarray(this.start));
      this.carried += this.chunk.length - this.start;
    }
    const buf = Buffer.allocUnsafe(this.highWaterMark);
    const n = await this.file.read(buf, 0, buf.length, this.read);
    this.read += n;
    this.chunk = n === buf.length ? buf : buf.subarray(0, n);
    this.start = 0;
    if (n === 0) this.eof = true;
  }
}

import { basename } from 'node:path';
import { asBuffer, type Codec } from '../codecs/codec.js';
import { WeirError, messageOf } from '../errors.js';
import type { FileFraming } from '../sources/file-source.js';
import { OutputFile } from './output-file.js';
import type { Sink } from './sink.js';

/**
 * Options of {@link fileSink}.
 * @example { codec: codecs.avro<User>(userSchema), framing: 'length-prefixed', append: true }
 */
export interface FileSinkOptions<T> {
  /** Encodes each record: `codecs.json()`, `codecs.avro(schema)`, `codecs.protobuf(...)`, ... */
  codec: Codec<T>;
  /** Default: `'lines'` for a text codec (json, string), `'length-prefixed'` otherwise. */
  framing?: FileFraming;
  /** Append to the file instead of truncating it when the job opens the sink (default false). */
  append?: boolean;
  /** Sink name in logs and errors (default `file(<file name>)`). */
  name?: string;
}

const LF = 0x0a;
const PREFIX = 4;
const MAX_LENGTH = 0xffffffff;

/**
 * Writes each record through a codec, in order, framed as lines (`bytes\n`, text codecs only) or
 * length-prefixed (4-byte big-endian length + bytes): what {@link fileSource} reads back. The codec
 * is opened first (an Avro codec registers its schema), then the file (truncated, or appended to with
 * `append: true`; its directory must exist). A batch is encoded into one buffer and written with one
 * call; when the file stream's buffer is full the write returns a promise that resolves on `drain`
 * (backpressure). `close()` flushes, fsyncs and closes the file.
 *
 * A record the codec cannot encode fails the job with `WEIR_ENCODE_FAILED` (the record and the
 * `CodecError` with its field attached); nothing of that batch is written.
 *
 * @example
 * p.source(sources.array(users)).sink(sinks.file('users.avro', { codec: codecs.avro<User>(userSchema) }))
 * @example
 * stream.sink(sinks.file<Alert>('alerts.jsonl', { codec: codecs.json<Alert>(), framing: 'lines' }))
 */
export function fileSink<T>(path: string, opts: FileSinkOptions<T>): Sink<T> {
  if (typeof path !== 'string' || path === '') throw new WeirError('WEIR_INVALID_ARGUMENT', `sinks.file: expected a file path, got ${String(path)}`);
  const codec = opts?.codec;
  if (codec === undefined || typeof codec.encode !== 'function') {
    throw new WeirError('WEIR_INVALID_ARGUMENT', `sinks.file(${path}): a codec is required, e.g. { codec: codecs.json() }`);
  }
  const framing = opts.framing ?? (codec.text === true ? 'lines' : 'length-prefixed');
  if (framing !== 'lines' && framing !== 'length-prefixed') {
    throw new WeirError('WEIR_INVALID_ARGUMENT', `sinks.file(${path}): framing must be 'lines' or 'length-prefixed', got ${String(framing)}`);
  }
  if (framing === 'lines' && codec.text !== true) {
    throw new WeirError('WEIR_INVALID_ARGUMENT', `sinks.file(${path}): codec ${codec.name} writes binary data, which cannot be split into lines: use framing 'length-prefixed'`);
  }
  return new CodecFileSink<T>(opts.name ?? `file(${basename(path)})`, path, codec, framing === 'lines', opts.append === true);
}

class CodecFileSink<T> implements Sink<T> {
  private readonly file: OutputFile;
  /** Encoded records of the batch being written (reused between batches). */
  private parts: Uint8Array[] = [];

  constructor(
    readonly name: string,
    private readonly path: string,
    private readonly codec: Codec<T>,
    private readonly lines: boolean,
    append: boolean,
  ) {
    this.file = new OutputFile('file sink', path, append, () => this.openCodec());
  }

  open(): Promise<void> {
    return this.file.open();
  }

  write(items: readonly T[]): void | Promise<void> {
    if (items.length === 0) return;
    return this.file.write(this.encode(items));
  }

  close(): Promise<void> {
    return this.file.close();
  }

  /** The whole batch, framed, in one buffer. */
  private encode(items: readonly T[]): Buffer {
    const codec = this.codec;
    const parts = this.parts;
    const overhead = this.lines ? 1 : PREFIX;
    let total = 0;
    try {
      for (let i = 0; i < items.length; i++) {
        let bytes: Uint8Array;
        try {
          bytes = codec.encode(items[i]);
        } catch (e) {
          throw new WeirError('WEIR_ENCODE_FAILED', `${this.path}: ${messageOf(e)}`, { step: this.name, record: items[i], cause: e });
        }
        if (!(bytes instanceof Uint8Array)) {
          throw new WeirError('WEIR_ENCODE_FAILED', `${this.path}: codec ${codec.name} returned ${typeof bytes}, not bytes`, { step: this.name, record: items[i] });
        }
        if (this.lines) {
          if (asBuffer(bytes).indexOf(LF) !== -1) {
            throw new WeirError('WEIR_ENCODE_FAILED', `${this.path}: ${codec.name} encoded the record with a line feed inside, which line framing cannot hold (use framing 'length-prefixed')`, { step: this.name, record: items[i] });
          }
        } else if (bytes.length > MAX_LENGTH) {
          throw new WeirError('WEIR_ENCODE_FAILED', `${this.path}: the record is ${bytes.length} bytes, more than a 4-byte length prefix can say`, { step: this.name, record: items[i] });
        }
        parts[i] = bytes;
        total += bytes.length + overhead;
      }
      const buf = Buffer.allocUnsafe(total);
      let pos = 0;
      for (let i = 0; i < items.length; i++) {
        const bytes = parts[i];
        if (this.lines) {
          buf.set(bytes, pos);
          pos += bytes.length;
          buf[pos++] = LF;
        } else {
          buf.writeUInt32BE(bytes.length, pos);
          buf.set(bytes, pos + PREFIX);
          pos += PREFIX + bytes.length;
        }
      }
      return buf;
    } finally {
      parts.length = 0;
    }
  }

  private async openCodec(): Promise<void> {
    if (this.codec.open === undefined) return;
    try {
      await this.codec.open();
    } catch (e) {
      throw new Error(`file sink ${this.path}: codec ${this.codec.name} failed to open: ${messageOf(e)}`, { cause: e });
    }
  }
}

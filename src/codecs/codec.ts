/**
 * The codec contract: bytes ↔ records, for sources and sinks that move bytes (Kafka, files).
 */

/**
 * Turns records into bytes and back. `decode` and `encode` are synchronous: sources and sinks call them
 * once per record inside a batch loop, so there is no promise per record. What needs I/O (registering
 * or fetching a schema) happens once per codec in `open`, or once per batch in `prepare`.
 *
 * A source that uses a codec calls `open()` once, then for each batch `prepare(batch)` (awaiting it when
 * it returns a promise), then `decode` per record; a `CodecError` from `decode` is a bad record (it goes
 * to the job's error policy: fail or dead-letter). A sink calls `open()` once, then `encode` per record.
 *
 * @example
 * // A hand-written codec: comma-separated pairs.
 * const pair: Codec<[string, number]> = {
 *   name: 'pair',
 *   text: true,
 *   decode(bytes) {
 *     const [k, v] = Buffer.from(bytes).toString('utf8').split(',');
 *     if (v === undefined) throw new CodecError('pair', 'decode', 'expected "key,value"');
 *     return [k, Number(v)];
 *   },
 *   encode: ([k, v]) => Buffer.from(`${k},${v}`),
 * };
 */
export interface Codec<T> {
  /** A short name for errors and logs, e.g. `json`, `avro(com.acme.User)`, `protobuf(shop.Order)`. */
  readonly name: string;
  /**
   * True when the bytes are UTF-8 text (JSON, plain strings): such a codec can be used with line
   * framing (`sources.file(path, { framing: 'lines' })`). A line-framed sink still refuses a record
   * whose bytes hold a line feed.
   */
  readonly text?: boolean;
  /** Before first use (both ways): e.g. register the writer schema with the schema registry. */
  open?(): Promise<void>;
  /**
   * Before decoding a batch: fetch what `decode` will need for these bytes (e.g. writer schemas of
   * unknown ids), with one await for the whole batch. Returns `null` when nothing is missing, so a
   * source pays for no promise in the common case. It rejects only when the lookup itself failed (a
   * registry that is down); bytes it cannot make sense of fail later, in `decode`, record by record.
   */
  prepare?(batch: readonly Uint8Array[]): Promise<void> | null;
  /**
   * One record from its bytes. Throws a {@link CodecError} (naming the field or path when there is one)
   * for bytes it cannot decode. The bytes may be a view into a larger buffer; a codec that keeps them
   * (`codecs.bytes`) keeps that view.
   */
  decode(bytes: Uint8Array): T;
  /** One record to bytes. Throws a {@link CodecError} for a record it cannot encode. */
  encode(value: T): Uint8Array;
}

/**
 * Which way a codec failed.
 * @example if (e instanceof CodecError && e.direction === 'decode') deadLetter(bytes, e.reason);
 */
export type CodecDirection = 'decode' | 'encode';

/**
 * Bytes a codec cannot decode, or a record it cannot encode. `reason` says what is wrong, `field` the
 * path of the offending field when there is one (`items[2].qty`, `address.zip`). The message reads
 * `<codec>: cannot decode: <field>: <reason>`.
 *
 * Sources and sinks turn it into a coded `WeirError`: `WEIR_DECODE_FAILED` (a bad input record: the
 * job's error policy decides, fail or dead-letter) or `WEIR_ENCODE_FAILED` (a record the sink's codec
 * cannot write: the job fails).
 *
 * @example
 * try { codec.decode(bytes); } catch (e) {
 *   if (e instanceof CodecError) console.error(e.codec, e.field, e.reason);
 * }
 */
export class CodecError extends Error {
  /** The codec's name, e.g. `avro(com.acme.User)`. */
  readonly codec: string;
  /** `'decode'` or `'encode'`. */
  readonly direction: CodecDirection;
  /** What is wrong, without the codec name and field. */
  readonly reason: string;
  /** The path of the offending field, when there is one: `address.zip`, `items[2].qty`. */
  readonly field: string | undefined;

  constructor(codec: string, direction: CodecDirection, reason: string, options: { field?: string; cause?: unknown } = {}) {
    const at = options.field === undefined || options.field === '' ? '' : `field ${options.field}: `;
    super(`${codec}: cannot ${direction}: ${at}${reason}`, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CodecError';
    this.codec = codec;
    this.direction = direction;
    this.reason = reason;
    this.field = options.field === '' ? undefined : options.field;
  }
}

/** A Buffer view of `bytes`, without copying. */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** `bytes` as a Uint8Array, or a CodecError naming what it is instead. */
export function checkBytes(codec: string, bytes: unknown): Uint8Array {
  if (bytes instanceof Uint8Array) return bytes;
  throw new CodecError(codec, 'decode', `expected bytes (a Uint8Array), got ${describe(bytes)}`);
}

/** `typeof`, with null, arrays and class names told apart, for error reasons. */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (v instanceof Uint8Array) return 'bytes';
  const t = typeof v;
  if (t === 'object') {
    const c = (v as { constructor?: { name?: unknown } }).constructor?.name;
    return typeof c === 'string' && c !== 'Object' ? `a ${c}` : 'an object';
  }
  if (t === 'string') return `a string (${JSON.stringify((v as string).length > 40 ? `${(v as string).slice(0, 40)}…` : v)})`;
  if (t === 'number' || t === 'boolean' || t === 'bigint') return `${t} ${String(v)}`;
  return t;
}

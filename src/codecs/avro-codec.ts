import avro from 'avsc';
import { WeirError, messageOf } from '../errors.js';
import { CodecError, asBuffer, checkBytes, describe, type Codec } from './codec.js';
import { memorySchemaRegistry, type SchemaDefinition, type SchemaRegistry } from './schema-registry.js';

/**
 * An avsc type, as `avro.Type.forSchema` returns it; a codec accepts one in place of a schema.
 * @example import avro from 'avsc'; codecs.avro<User>(avro.Type.forSchema(userSchema))
 */
export type AvroType = avro.Type;

/**
 * An Avro schema: its JSON (object, or text), a primitive type name (`'string'`), or an avsc `Type`.
 * @example const userSchema: AvroSchema = readFileSync('user.avsc', 'utf8');
 */
export type AvroSchema = object | string | AvroType;

/**
 * Options of {@link avroCodec}.
 * @example
 * codecs.avro<UserV2>({ schema: userV2, registry: confluent, subject: 'users-value', longs: 'bigint' })
 */
export interface AvroCodecOptions {
  /**
   * The writer schema: what `encode` writes (and registers). It is also the reader schema, what
   * `decode` returns, unless `readerSchema` is given.
   */
  schema: AvroSchema;
  /**
   * The schema `decode` returns records in (default: `schema`). Records written with another schema
   * (an older or newer version, found by the schema id in their header) are resolved into it by Avro's
   * rules: fields the reader lacks are dropped, fields the writer lacks take their default, renamed
   * fields match through `aliases`, ints widen to longs, ...
   */
  readerSchema?: AvroSchema;
  /** Where writer schemas are registered and looked up (default: the process-wide in-memory registry). */
  registry?: SchemaRegistry;
  /**
   * The subject the writer schema is registered under (default: the schema's full name, Confluent's
   * RecordNameStrategy). With Kafka, Confluent's default TopicNameStrategy is `<topic>-value`.
   */
  subject?: string;
  /**
   * `'confluent'` (default): magic byte 0, the writer schema's id (4 bytes, big-endian), then the Avro
   * binary datum. `'raw'`: the Avro binary datum alone, always written with `schema` (no registry).
   */
  wireFormat?: 'confluent' | 'raw';
  /** Name in errors (default `avro(<full name>)`). */
  name?: string;
  /**
   * How Avro `long`s are represented: `'number'` (default; exact up to ±(2^53 − 1): a larger value on
   * the wire fails to decode with a `CodecError` rather than come out rounded) or `'bigint'` (every
   * 64-bit value). Encoding accepts numbers (safe integers) and bigints either way.
   */
  longs?: 'number' | 'bigint';
  /** Options for avsc's `Type.forSchema` (logical types, `wrapUnions`, ...), for every schema. */
  typeOptions?: Parameters<typeof avro.Type.forSchema>[1];
}

/** How records written under one schema id are read. */
interface WriterEntry {
  /** Resolves the writer's datum into the reader type; null: the writer schema is the reader's. */
  readonly resolver: ReturnType<AvroType['createResolver']> | null;
  /** Why records of this id cannot be read, instead. */
  readonly error?: string;
}

const HEADER = 5;
const MAGIC = 0;

/**
 * Avro via avsc, by default in the Confluent wire format (magic byte 0 + 4-byte big-endian schema id +
 * Avro binary), with writer schemas in a {@link SchemaRegistry} and schema evolution: a record written
 * with another version of the schema decodes into the reader schema.
 *
 * - `open()` registers the writer schema (with the in-memory registry, `encode` works without it).
 * - `prepare(batch)` fetches the writer schemas of ids it has not seen, one await per batch.
 * - `decode` fails with a `CodecError` on a bad magic byte, an unknown schema id, a truncated or
 *   over-long payload, a writer schema that cannot be resolved into the reader's, or bad Avro data.
 * - `encode` fails with a `CodecError` naming the field path (`address.zip`) of a value that does not
 *   match the schema.
 *
 * Values are as avsc reads them: records are instances of a generated class per record type (plain
 * own fields; spread them for a plain object), `long` is a number (a value beyond 2^53 fails to decode
 * unless `typeOptions` registers a long type), `bytes`/`fixed` are Buffers, unions of `null` and one
 * type are the value or null.
 *
 * @example
 * interface User { id: number; name: string; email: string | null }
 * const users = codecs.avro<User>({
 *   type: 'record', name: 'User', namespace: 'com.acme',
 *   fields: [{ name: 'id', type: 'long' }, { name: 'name', type: 'string' },
 *            { name: 'email', type: ['null', 'string'], default: null }],
 * });
 * const bytes = users.encode({ id: 1, name: 'ada', email: null }); // 00 <id> 02 06 61 64 61 00
 * @example
 * // Read v1 and v2 records as v2.
 * codecs.avro<UserV2>({ schema: userV2, registry, subject: 'users-value' })
 */
export function avroCodec<T = unknown>(schemaOrOptions: AvroSchema | AvroCodecOptions): Codec<T> {
  const opts = isOptions(schemaOrOptions) ? schemaOrOptions : { schema: schemaOrOptions };
  return new AvroCodec<T>(opts);
}

function isOptions(v: AvroSchema | AvroCodecOptions): v is AvroCodecOptions {
  return typeof v === 'object' && v !== null && !(v instanceof avro.Type) && 'schema' in v && !('type' in v);
}

class AvroCodec<T> implements Codec<T> {
  readonly name: string;
  private readonly writerType: AvroType;
  private readonly readerType: AvroType;
  /** The writer schema as registered: as given, or for a Type its schema with defaults, docs and aliases. */
  private readonly writerSchema: object | string;
  private readonly registry: SchemaRegistry;
  private readonly subject: string;
  private readonly confluent: boolean;
  private readonly typeOptions: TypeOptions;
  /** How `decode` reads a record written with `schema` itself. */
  private readonly ownEntry: WriterEntry;
  private writerId: number | undefined;
  /** Writer schema ids seen so far. */
  private readonly byId = new Map<number, WriterEntry>();
  /** Ids the last `prepare` found missing from the registry (asked again at the next batch). */
  private missing = new Set<number>();
  /** Encoding happens here, then is copied out at its exact size. */
  private scratch = Buffer.allocUnsafe(1024);

  constructor(opts: AvroCodecOptions) {
    if (opts === null || typeof opts !== 'object') throw new WeirError('WEIR_INVALID_ARGUMENT', `codecs.avro: expected a schema or options, got ${String(opts)}`);
    const wire = opts.wireFormat ?? 'confluent';
    if (wire !== 'confluent' && wire !== 'raw') throw new WeirError('WEIR_INVALID_ARGUMENT', `codecs.avro: wireFormat must be 'confluent' or 'raw', got ${String(wire)}`);
    this.confluent = wire === 'confluent';
    const longs = opts.longs ?? 'number';
    if (longs !== 'number' && longs !== 'bigint') throw new WeirError('WEIR_INVALID_ARGUMENT', `codecs.avro: longs must be 'number' or 'bigint', got ${String(longs)}`);
    this.typeOptions = withLongs(opts.typeOptions, longs === 'bigint' ? BIGINT_LONG : NUMBER_LONG);
    this.writerType = toType(opts.schema, 'schema', this.typeOptions);
    this.readerType = opts.readerSchema === undefined ? this.writerType : toType(opts.readerSchema, 'readerSchema', this.typeOptions);
    // Registered as given (so the same .avsc registered elsewhere has the same id); a Type as avsc exports it.
    this.writerSchema = opts.schema instanceof avro.Type ? (this.writerType.schema({ exportAttrs: true }) as object | string) : (parseSchema(opts.schema) as object | string);
    const full = this.writerType.name ?? this.writerType.typeName.replace(/^abstract:/, '');
    this.name = opts.name ?? `avro(${full})`;
    this.subject = opts.subject ?? full;
    if (typeof this.subject !== 'string' || this.subject === '') throw new WeirError('WEIR_INVALID_ARGUMENT', `${this.name}: subject must be a non-empty string`);
    this.registry = opts.registry ?? memorySchemaRegistry();
    if (typeof this.registry?.register !== 'function' || typeof this.registry.lookup !== 'function') {
      throw new WeirError('WEIR_INVALID_ARGUMENT', `${this.name}: registry must have register(subject, schema) and lookup(id)`);
    }
    const own = this.entryFor(this.writerType, 'its own schema');
    if (own.error !== undefined) throw new WeirError('WEIR_INVALID_ARGUMENT', `${this.name}: readerSchema cannot read records written with schema: ${own.error}`);
    this.ownEntry = own;
  }

  readonly text = false;

  async open(): Promise<void> {
    if (!this.confluent || this.writerId !== undefined) return;
    let id: number;
    try {
      id = await this.registry.register(this.subject, this.writerSchema);
    } catch (e) {
      throw new Error(`${this.name}: registering the schema under subject ${this.subject} failed: ${messageOf(e)}`, { cause: e });
    }
    this.setWriterId(id);
  }

  prepare(batch: readonly Uint8Array[]): Promise<void> | null {
    if (!this.confluent) return null;
    if (this.missing.size > 0) this.missing = new Set();
    let wanted: Set<number> | undefined;
    for (let i = 0; i < batch.length; i++) {
      const b = batch[i];
      if (b.length < HEADER || b[0] !== MAGIC) continue;
      const id = ((b[1] << 24) | (b[2] << 16) | (b[3] << 8) | b[4]) >>> 0;
      if (this.byId.has(id) || wanted?.has(id)) continue;
      if (this.registry.lookupSync !== undefined) {
        this.fetchSync(id);
        continue;
      }
      (wanted ??= new Set()).add(id);
    }
    if (wanted === undefined) return null;
    return this.fetch([...wanted]);
  }

  decode(bytes: Uint8Array): T {
    const buf = asBuffer(checkBytes(this.name, bytes));
    if (!this.confluent) return this.read(buf, 0, this.ownEntry, undefined);
    if (buf.length < HEADER) {
      throw new CodecError(this.name, 'decode', `truncated: ${buf.length} byte${buf.length === 1 ? '' : 's'}, shorter than the 5-byte header (magic byte 0 + schema id)`);
    }
    if (buf[0] !== MAGIC) {
      throw new CodecError(this.name, 'decode', `bad magic byte 0x${buf[0].toString(16).padStart(2, '0')} (the Confluent wire format starts with 0x00)`);
    }
    const id = buf.readUInt32BE(1);
    const entry = this.byId.get(id) ?? this.fetchSync(id);
    if (entry.error !== undefined) throw new CodecError(this.name, 'decode', entry.error);
    return this.read(buf, HEADER, entry, id);
  }

  encode(value: T): Uint8Array {
    let start = 0;
    if (this.confluent) {
      const id = this.writerId ?? this.registerSync();
      this.scratch[0] = MAGIC;
      this.scratch.writeUInt32BE(id, 1);
      start = HEADER;
    }
    let end: number;
    try {
      end = this.writerType.encode(value, this.scratch, start);
      if (end < 0) {
        // Too small: avsc says by how much. Grow (at least double) and write again.
        const size = Math.max(this.scratch.length * 2, this.scratch.length - end);
        const bigger = Buffer.allocUnsafe(size);
        this.scratch.copy(bigger, 0, 0, start);
        this.scratch = bigger;
        end = this.writerType.encode(value, this.scratch, start);
      }
    } catch (e) {
      throw this.encodeError(value, e);
    }
    const out = Buffer.allocUnsafe(end);
    this.scratch.copy(out, 0, 0, end);
    return out;
  }

  private read(buf: Buffer, pos: number, entry: WriterEntry, id: number | undefined): T {
    let r: { value: unknown; offset: number };
    try {
      r = entry.resolver === null ? this.readerType.decode(buf, pos) : this.readerType.decode(buf, pos, entry.resolver);
    } catch (e) {
      throw new CodecError(this.name, 'decode', `bad Avro data${schemaNote(id)}: ${messageOf(e)}`, { cause: e });
    }
    if (r.offset < 0) throw new CodecError(this.name, 'decode', `truncated Avro payload${schemaNote(id)}: ${buf.length - pos} bytes end inside the record`);
    if (r.offset !== buf.length) {
      const extra = buf.length - r.offset;
      throw new CodecError(this.name, 'decode', `${extra} unexpected byte${extra === 1 ? '' : 's'} after the record${schemaNote(id)}`);
    }
    return r.value as T;
  }

  private setWriterId(id: number): void {
    if (!(Number.isInteger(id) && id >= 0 && id <= 0xffffffff)) {
      throw new Error(`${this.name}: the registry returned ${String(id)} as the schema id, not a 32-bit unsigned integer`);
    }
    this.writerId = id;
    this.byId.set(id, this.ownEntry);
  }

  private registerSync(): number {
    if (this.registry.registerSync === undefined) {
      throw new WeirError('WEIR_JOB_STATE', `${this.name}: encode before open(): the writer schema has no id yet (the registry is asynchronous)`);
    }
    this.setWriterId(this.registry.registerSync(this.subject, this.writerSchema));
    return this.writerId as number;
  }

  /** Looks `id` up in a synchronous registry; without one, an id `prepare` did not fetch. */
  private fetchSync(id: number): WriterEntry {
    if (this.registry.lookupSync === undefined || this.missing.has(id)) {
      return {
        resolver: null,
        error: this.missing.has(id) ? `unknown schema id ${id}: the registry has no such schema` : `schema id ${id} was not fetched: call prepare(batch) before decode`,
      };
    }
    const schema = this.registry.lookupSync(id);
    if (schema === undefined) return { resolver: null, error: `unknown schema id ${id}: the registry has no such schema` };
    const entry = this.entryForSchema(id, schema);
    this.byId.set(id, entry);
    return entry;
  }

  private async fetch(ids: number[]): Promise<void> {
    const found = await Promise.all(
      ids.map((id) =>
        this.registry.lookup(id).catch((e: unknown) => {
          throw new Error(`${this.name}: looking up schema id ${id} failed: ${messageOf(e)}`, { cause: e });
        }),
      ),
    );
    for (let i = 0; i < ids.length; i++) {
      const schema = found[i];
      if (schema === undefined || schema === null) this.missing.add(ids[i]);
      else this.byId.set(ids[i], this.entryForSchema(ids[i], schema));
    }
  }

  private entryForSchema(id: number, schema: SchemaDefinition): WriterEntry {
    let writer: AvroType;
    try {
      writer = avro.Type.forSchema(parseSchema(schema) as Parameters<typeof avro.Type.forSchema>[0], this.typeOptions());
    } catch (e) {
      return { resolver: null, error: `schema id ${id} in the registry is not a valid Avro schema: ${messageOf(e)}` };
    }
    return this.entryFor(writer, `schema id ${id}`);
  }

  private entryFor(writer: AvroType, what: string): WriterEntry {
    if (writer === this.readerType || writer.equals(this.readerType)) return { resolver: null };
    try {
      return { resolver: this.readerType.createResolver(writer) };
    } catch (e) {
      return { resolver: null, error: `${what} cannot be read as ${this.readerType.name ?? this.readerType.typeName}: ${messageOf(e)}` };
    }
  }

  private encodeError(value: T, e: unknown): CodecError {
    let field: string | undefined;
    let reason: string | undefined;
    try {
      this.writerType.isValid(value, {
        errorHook: (path: string[], v: unknown, type: AvroType) => {
          if (reason !== undefined) return;
          field = path.map((p, i) => (/^\d+$/.test(p) ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
          reason = v === undefined ? `missing (expected ${typeLabel(type)})` : `expected ${typeLabel(type)}, got ${describe(v)}`;
        },
      });
    } catch {
      // isValid itself failed on a strange value: keep avsc's message.
    }
    return new CodecError(this.name, 'encode', reason ?? messageOf(e), { ...(field ? { field } : {}), cause: e });
  }
}

/** ` (schema id N)` for error messages, or nothing for the raw wire format. */
function schemaNote(id: number | undefined): string {
  return id === undefined ? '' : ` (schema id ${id})`;
}

function typeLabel(type: AvroType): string {
  const typeName = type.typeName.replace(/^abstract:/, '');
  const n = type.name;
  if (n !== undefined) return `${typeName} ${n}`;
  if (typeName.startsWith('union')) {
    const types = (type as unknown as { types?: AvroType[] }).types;
    if (Array.isArray(types)) return types.map((t) => t.name ?? t.typeName.replace(/^abstract:/, '')).join(' | ');
  }
  return typeName;
}

function parseSchema(schema: SchemaDefinition): unknown {
  if (typeof schema !== 'string') return schema;
  const s = schema.trim();
  if (s.startsWith('{') || s.startsWith('[') || s.startsWith('"')) return JSON.parse(s);
  return s;
}

function toType(schema: AvroSchema, what: string, typeOptions: TypeOptions): AvroType {
  if (schema instanceof avro.Type) return schema;
  if (schema === undefined || schema === null) throw new WeirError('WEIR_INVALID_ARGUMENT', `codecs.avro: ${what} is missing`);
  try {
    return avro.Type.forSchema(parseSchema(schema) as Parameters<typeof avro.Type.forSchema>[0], typeOptions());
  } catch (e) {
    throw new WeirError('WEIR_INVALID_ARGUMENT', `codecs.avro: ${what} is not a valid Avro schema: ${messageOf(e)}`, { cause: e });
  }
}

type ForSchemaOptions = NonNullable<Parameters<typeof avro.Type.forSchema>[1]>;
/** Fresh `forSchema` options per call: avsc fills `registry` with the named types it defines. */
type TypeOptions = () => ForSchemaOptions;

function withLongs(user: AvroCodecOptions['typeOptions'], long: AvroType): TypeOptions {
  return () => ({ ...user, registry: { long, ...user?.registry } });
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
/** Varints up to this many bytes hold at most 49 bits of zigzag: exact in a double. */
const FAST_BYTES = 7;
const FAST_LIMIT = 2 ** 51;

/** avsc's read/write cursor (internal, stable across avsc 5): the buffer and the position in it. */
interface Tap {
  buf: Buffer;
  pos: number;
}

/**
 * avsc's own long type rounds values beyond ±2^52 without a word (its zigzag arithmetic is done in
 * doubles). This one reads and writes the zigzag varint exactly: with doubles while at most 7 bytes
 * (the common case, as fast as avsc's), with BigInt beyond. It is avsc's documented custom long
 * (`LongType.__with`) with `_read`/`_write` working on the tap directly, which avoids a Buffer per
 * value.
 */
function exactLong(asBigInt: boolean): AvroType {
  const isValid = (v: unknown): boolean => (typeof v === 'number' ? Number.isSafeInteger(v) : typeof v === 'bigint' && v >= INT64_MIN && v <= INT64_MAX);
  const fromZigzag = (z: bigint): number | bigint => {
    const n = (z >> 1n) ^ -(z & 1n);
    if (asBigInt) return n;
    if (n > MAX_SAFE || n < -MAX_SAFE) throw new Error(`long ${n} is beyond ±(2^53 - 1), where numbers lose precision: use longs: 'bigint'`);
    return Number(n);
  };
  const toZigzag = (v: number | bigint): bigint => {
    const n = BigInt(v);
    return n >= 0n ? n << 1n : ((-n) << 1n) - 1n;
  };
  const base = avro.types.LongType.__with(
    {
      // Used by avsc outside the hot path only (`_read`/`_write` below do the work): the varint bytes.
      fromBuffer(b: Buffer): number | bigint {
        let z = 0n;
        for (let i = b.length - 1; i >= 0; i--) z = (z << 7n) | BigInt(b[i] & 0x7f);
        return fromZigzag(z & 0xffffffffffffffffn);
      },
      toBuffer(v: number | bigint): Buffer {
        const out: number[] = [];
        let z = toZigzag(v);
        while (z >= 128n) {
          out.push(Number(z & 0x7fn) | 0x80);
          z >>= 7n;
        }
        out.push(Number(z));
        return Buffer.from(out);
      },
      fromJSON: (v: unknown): number | bigint => (asBigInt ? BigInt(v as number | string) : Number(v)),
      toJSON: (v: number | bigint): number | string => (typeof v === 'number' ? v : v >= -MAX_SAFE && v <= MAX_SAFE ? Number(v) : v.toString()),
      isValid,
      compare: (a: number | bigint, b: number | bigint): number => (a < b ? -1 : a > b ? 1 : 0),
    },
    true,
  );
  const fast = Object.create(base) as object;
  Object.defineProperty(fast, '_read', {
    value(tap: Tap): number | bigint {
      const buf = tap.buf;
      const start = tap.pos;
      let pos = start;
      let z = 0;
      let mul = 1;
      for (let i = 0; i < FAST_BYTES; i++) {
        const b = buf[pos++];
        if (b === undefined) {
          tap.pos = pos; // past the end: avsc sees an invalid tap (a truncated datum)
          return 0;
        }
        z += (b & 0x7f) * mul;
        if (b < 0x80) {
          tap.pos = pos;
          const n = z % 2 === 0 ? z / 2 : -(z + 1) / 2;
          return asBigInt ? BigInt(n) : n;
        }
        mul *= 128;
      }
      // Longer: up to 10 bytes, exactly.
      let big = BigInt(z);
      let shift = 49n;
      for (;;) {
        const b = buf[pos++];
        if (b === undefined) {
          tap.pos = pos;
          return 0;
        }
        big |= BigInt(b & 0x7f) << shift;
        if (b < 0x80) break;
        shift += 7n;
        if (shift > 63n) throw new Error('invalid long: a varint longer than 10 bytes');
      }
      tap.pos = pos;
      return fromZigzag(big & 0xffffffffffffffffn);
    },
  });
  Object.defineProperty(fast, '_write', {
    value(tap: Tap, v: number | bigint): void {
      const buf = tap.buf;
      let pos = tap.pos;
      // Bytes past the end of the buffer are dropped (typed array): avsc then sees the tap overflowed,
      // grows the buffer and writes again, as with its own types.
      if (typeof v === 'number' && v < FAST_LIMIT && v > -FAST_LIMIT && Number.isInteger(v)) {
        let z = v >= 0 ? v * 2 : -v * 2 - 1;
        while (z >= 128) {
          buf[pos++] = (z % 128) | 0x80;
          z = Math.floor(z / 128);
        }
        buf[pos++] = z;
        tap.pos = pos;
        return;
      }
      if (!isValid(v)) throw new Error(`invalid "long": ${String(v)}`);
      let z = toZigzag(v);
      while (z >= 128n) {
        buf[pos++] = Number(z & 0x7fn) | 0x80;
        z >>= 7n;
      }
      buf[pos++] = Number(z);
      tap.pos = pos;
    },
  });
  return Object.freeze(fast) as unknown as AvroType;
}

const NUMBER_LONG = exactLong(false);
const BIGINT_LONG = exactLong(true);

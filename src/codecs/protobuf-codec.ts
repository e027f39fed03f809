import protobuf from 'protobufjs';
import { WeirError, messageOf } from '../errors.js';
import { CodecError, asBuffer, checkBytes, describe, type Codec } from './codec.js';

/**
 * A protobufjs message type (`root.lookupType('pkg.Message')`).
 * @example const Order: ProtobufType = protobuf.loadSync('shop.proto').lookupType('shop.Order');
 */
export type ProtobufType = protobuf.Type;
/**
 * A protobufjs root: the loaded `.proto` definitions.
 * @example const root: ProtobufRoot = protobuf.loadSync(['shop.proto', 'common.proto']);
 */
export type ProtobufRoot = protobuf.Root;

/**
 * Options of {@link protobufCodec}: the message `type` and exactly one of `root`, `files`, `descriptor`, `proto`.
 * @example { type: 'shop.Order', descriptor: JSON.parse(readFileSync('shop.json', 'utf8')), longs: 'bigint' }
 */
export interface ProtobufCodecOptions {
  /** The message type, fully qualified: `'shop.Order'`. */
  type: string;
  /** Definitions already loaded with protobufjs. */
  root?: ProtobufRoot;
  /** `.proto` file(s) to load (`protobuf.loadSync`; imports are resolved relative to each file). */
  files?: string | readonly string[];
  /** A JSON descriptor (`Root.fromJSON`), as `pbjs -t json` or `root.toJSON()` writes it. */
  descriptor?: protobuf.INamespace;
  /** `.proto` source text (`protobuf.parse`). */
  proto?: string;
  /**
   * How 64-bit integers (int64, uint64, sint64, fixed64, sfixed64) decode: `'string'` (default: exact,
   * as in the proto3 JSON mapping), `'number'` (loses precision beyond 2^53) or `'bigint'`. Encoding
   * accepts any of the three (and protobufjs `Long`s).
   */
  longs?: 'string' | 'number' | 'bigint';
  /** How enums decode: `'string'` (default: the value's name) or `'number'`. Encoding accepts both. */
  enums?: 'string' | 'number';
  /**
   * Decode fields that are not on the wire as their defaults (`0`, `''`, `false`, the first enum value,
   * empty bytes) — proto3 semantics, the default — or leave them out (`false`). Repeated and map fields
   * are `[]` and `{}` either way; unset message and `optional` fields stay absent.
   */
  defaults?: boolean;
  /**
   * Check each record before encoding and fail with a reason naming the field (default true). Without
   * it protobufjs coerces what it is given (a string for an int32 becomes 0) and drops unknown fields.
   */
  verify?: boolean;
  /** With `verify`, whether a property the message type does not have is an error (default true). */
  rejectUnknownFields?: boolean;
  /** Name in errors (default `protobuf(<type>)`). */
  name?: string;
}

/**
 * Protocol Buffers via protobufjs: plain binary messages (no framing, no schema id). Records are plain
 * objects, as protobufjs's `toObject` makes them: field names as in the `.proto` file (camelCase, as
 * protobufjs converts them by default), 64-bit integers as decimal strings, enums as their names, bytes
 * as Buffers, nested messages as objects, repeated fields as arrays, maps as objects (see `longs`,
 * `enums`, `defaults`).
 *
 * `encode` verifies the record first (types, ranges, enum names, oneofs, unknown fields) and fails with
 * a `CodecError` naming the path (`items[1].qty: expected int32, got a string ("2")`); `decode` fails
 * with a `CodecError` on bytes that are not a message of the type (a truncated message, a bad wire type,
 * a missing proto2 `required` field).
 *
 * @example
 * const orders = codecs.protobuf<Order>({ files: 'protos/shop.proto', type: 'shop.Order' });
 * @example
 * codecs.protobuf<Order>({ type: 'shop.Order', proto: `
 *   syntax = "proto3"; package shop;
 *   message Order { int64 id = 1; string customer = 2; repeated string skus = 3; }` })
 */
export function protobufCodec<T = Record<string, unknown>>(opts: ProtobufCodecOptions): Codec<T> {
  if (opts === null || typeof opts !== 'object') throw new WeirError('WEIR_INVALID_ARGUMENT', `codecs.protobuf: expected options { type, root | files | descriptor | proto }, got ${String(opts)}`);
  if (typeof opts.type !== 'string' || opts.type === '') throw new WeirError('WEIR_INVALID_ARGUMENT', `codecs.protobuf: type must name a message type, e.g. 'shop.Order'`);
  const root = loadRoot(opts);
  let type: ProtobufType;
  try {
    type = root.lookupType(opts.type);
  } catch {
    const known = messageTypes(root);
    throw new WeirError('WEIR_INVALID_ARGUMENT', `codecs.protobuf: no message type ${opts.type} in the definitions (they have ${known.length === 0 ? 'none' : known.join(', ')})`);
  }
  try {
    root.resolveAll();
  } catch (e) {
    throw new WeirError('WEIR_INVALID_ARGUMENT', `codecs.protobuf(${opts.type}): the definitions do not resolve: ${messageOf(e)}`, { cause: e });
  }
  const longs = opts.longs ?? 'string';
  if (longs !== 'string' && longs !== 'number' && longs !== 'bigint') throw new WeirError('WEIR_INVALID_ARGUMENT', `codecs.protobuf: longs must be 'string', 'number' or 'bigint', got ${String(longs)}`);
  const enums = opts.enums ?? 'string';
  if (enums !== 'string' && enums !== 'number') throw new WeirError('WEIR_INVALID_ARGUMENT', `codecs.protobuf: enums must be 'string' or 'number', got ${String(enums)}`);
  return new ProtobufCodec<T>(opts.name ?? `protobuf(${type.fullName.replace(/^\./, '')})`, type, {
    // Strings: protobufjs's own Long → string is slow; longs are left as Longs and `longsToStrings` does it.
    longs: longs === 'string' ? undefined : longs === 'number' ? Number : BigInt,
    enums: enums === 'string' ? String : undefined,
    defaults: opts.defaults ?? true,
    arrays: true,
    objects: true,
  }, opts.verify ?? true, opts.rejectUnknownFields ?? true, longs === 'string' ? longsToStrings(type, new Map()) : null);
}

class ProtobufCodec<T> implements Codec<T> {
  readonly text = false;

  constructor(
    readonly name: string,
    private readonly type: ProtobufType,
    private readonly conversion: protobuf.IConversionOptions,
    private readonly verify: boolean,
    private readonly rejectUnknown: boolean,
    private readonly fixLongs: LongFix | null,
  ) {
    type.setup();
  }

  decode(bytes: Uint8Array): T {
    const buf = asBuffer(checkBytes(this.name, bytes));
    let message: protobuf.Message;
    try {
      message = this.type.decode(buf);
    } catch (e) {
      const missing = /missing required '([^']+)'/.exec(messageOf(e));
      if (missing) throw new CodecError(this.name, 'decode', 'required field missing', { field: missing[1], cause: e });
      throw new CodecError(this.name, 'decode', `not a ${this.type.name} message: ${messageOf(e)}`, { cause: e });
    }
    const obj = this.type.toObject(message, this.conversion);
    if (this.fixLongs !== null) this.fixLongs(obj);
    return obj as T;
  }

  encode(value: T): Uint8Array {
    if (this.verify) {
      const problem = verifyMessage(this.type, value, this.rejectUnknown, 0);
      if (problem !== null) throw new CodecError(this.name, 'encode', problem.reason, problem.field === '' ? {} : { field: problem.field });
    }
    try {
      return this.type.encode(this.type.fromObject(value as Record<string, unknown>)).finish();
    } catch (e) {
      throw new CodecError(this.name, 'encode', messageOf(e), { cause: e });
    }
  }
}

function loadRoot(opts: ProtobufCodecOptions): ProtobufRoot {
  const given = (['root', 'files', 'descriptor', 'proto'] as const).filter((k) => opts[k] !== undefined);
  if (given.length !== 1) {
    throw new WeirError('WEIR_INVALID_ARGUMENT', `codecs.protobuf(${opts.type}): give exactly one of root, files, descriptor, proto (got ${given.length === 0 ? 'none' : given.join(', ')})`);
  }
  try {
    if (opts.root !== undefined) {
      if (!(opts.root instanceof protobuf.Root)) throw new Error('root is not a protobufjs Root');
      return opts.root;
    }
    if (opts.files !== undefined) return protobuf.loadSync(typeof opts.files === 'string' ? opts.files : [...opts.files]);
    if (opts.descriptor !== undefined) return protobuf.Root.fromJSON(opts.descriptor);
    return protobuf.parse(opts.proto as string, { keepCase: false }).root;
  } catch (e) {
    const from = given[0] === 'files' ? `files ${[opts.files].flat().join(', ')}` : given[0];
    throw new WeirError('WEIR_INVALID_ARGUMENT', `codecs.protobuf(${opts.type}): cannot load the definitions from ${from}: ${messageOf(e)}`, { cause: e });
  }
}

/** Every message type under `ns`, fully qualified. */
function messageTypes(ns: protobuf.NamespaceBase): string[] {
  const out: string[] = [];
  for (const child of ns.nestedArray) {
    if (child instanceof protobuf.Type) out.push(child.fullName.replace(/^\./, ''));
    if (child instanceof protobuf.Namespace || child instanceof protobuf.Type) out.push(...messageTypes(child));
  }
  return out;
}

/** Replaces the Longs of a decoded message (and of its nested messages) by decimal strings, in place. */
type LongFix = (obj: Record<string, unknown>) => void;

/** A {@link LongFix} for `type`, or null when it holds no 64-bit integer at any depth. */
function longsToStrings(type: ProtobufType, seen: Map<ProtobufType, LongFix | null>): LongFix | null {
  if (seen.has(type)) return seen.get(type) as LongFix | null;
  // Recursive types: a placeholder that calls the finished fix.
  let done: LongFix | null = null;
  seen.set(type, (o) => done?.(o));
  const steps: LongFix[] = [];
  for (const f of type.fieldsArray) {
    const name = f.name;
    let one: ((v: unknown) => unknown) | null = null;
    if (f.resolvedType instanceof protobuf.Type) {
      const sub = longsToStrings(f.resolvedType, seen);
      if (sub !== null) one = (v) => (sub(v as Record<string, unknown>), v);
    } else if (f.long) {
      one = longToString;
    }
    if (one === null) continue;
    const convert = one;
    if (f.map) {
      steps.push((o) => {
        const m = o[name] as Record<string, unknown> | undefined;
        if (m) for (const k of Object.keys(m)) m[k] = convert(m[k]);
      });
    } else if (f.repeated) {
      steps.push((o) => {
        const a = o[name] as unknown[] | undefined;
        if (a) for (let i = 0; i < a.length; i++) a[i] = convert(a[i]);
      });
    } else {
      steps.push((o) => {
        const v = o[name];
        if (v !== undefined && v !== null) o[name] = convert(v);
      });
    }
  }
  done = steps.length === 0 ? null : (o) => {
    for (let i = 0; i < steps.length; i++) steps[i](o);
  };
  if (done === null) seen.set(type, null);
  return done === null ? null : (seen.get(type) as LongFix);
}

/** A protobufjs Long (or a number) as a decimal string: with doubles while exact, BigInt beyond. */
function longToString(v: unknown): unknown {
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  if (typeof v !== 'object' || v === null) return v;
  const { low, high, unsigned } = v as { low: number; high: number; unsigned?: boolean };
  const lo = low >>> 0;
  if (unsigned) {
    const hi = high >>> 0;
    return hi < 0x200000 ? String(hi * 4294967296 + lo) : ((BigInt(hi) << 32n) + BigInt(lo)).toString();
  }
  const hi = high | 0;
  return hi >= -0x200000 && hi < 0x200000 ? String(hi * 4294967296 + lo) : (BigInt(hi) * 4294967296n + BigInt(lo)).toString();
}

interface Problem {
  readonly field: string;
  readonly reason: string;
}

const MAX_DEPTH = 100;
const INT32_MIN = -0x80000000;
const INT32_MAX = 0x7fffffff;
const UINT32_MAX = 0xffffffff;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

/**
 * Checks a plain object against a message type, as `fromObject` will read it; null when it is fine.
 * A problem's `field` is relative to `value` (paths are only built on the way out of a failure).
 */
function verifyMessage(type: ProtobufType, value: unknown, rejectUnknown: boolean, depth: number): Problem | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array) {
    return { field: '', reason: `expected a ${type.name} message (an object), got ${describe(value)}` };
  }
  if (depth > MAX_DEPTH) return { field: '', reason: `nested more than ${MAX_DEPTH} deep` };
  const obj = value as Record<string, unknown>;
  const byName = type.fields;
  if (rejectUnknown) {
    for (const key in obj) {
      if (byName[key] === undefined && obj[key] !== undefined && !Object.prototype.hasOwnProperty.call(type.oneofs ?? {}, key)) {
        return { field: key, reason: `unknown field: ${type.name} has ${type.fieldsArray.map((f) => f.name).join(', ')}` };
      }
    }
  }
  const fields = type.fieldsArray;
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i];
    const v = obj[f.name];
    if (v === undefined || v === null) {
      if (f.required) return { field: f.name, reason: 'required field missing' };
      continue;
    }
    if (f.map) {
      if (typeof v !== 'object' || Array.isArray(v) || v instanceof Uint8Array) return { field: f.name, reason: `expected a map (an object), got ${describe(v)}` };
      const keyType = (f as unknown as protobuf.MapField).keyType;
      for (const k of Object.keys(v)) {
        const at = `${f.name}[${JSON.stringify(k)}]`;
        if (keyType !== 'string' && keyType !== 'bool' && !/^-?\d+$/.test(k)) return { field: at, reason: `map key ${JSON.stringify(k)} is not a ${keyType}` };
        const p = verifyValue(f, (v as Record<string, unknown>)[k], rejectUnknown, depth);
        if (p !== null) return within(at, p);
      }
    } else if (f.repeated) {
      if (!Array.isArray(v)) return { field: f.name, reason: `expected an array (repeated ${f.type}), got ${describe(v)}` };
      for (let j = 0; j < v.length; j++) {
        const p = verifyValue(f, v[j], rejectUnknown, depth);
        if (p !== null) return within(`${f.name}[${j}]`, p);
      }
    } else {
      const p = verifyValue(f, v, rejectUnknown, depth);
      if (p !== null) return within(f.name, p);
    }
  }
  const oneofs = type.oneofsArray;
  for (let i = 0; i < oneofs.length; i++) {
    const members = oneofs[i].oneof;
    let set = 0;
    for (let j = 0; j < members.length; j++) if (obj[members[j]] !== undefined && obj[members[j]] !== null) set++;
    if (set > 1) {
      const names = members.filter((n) => obj[n] !== undefined && obj[n] !== null);
      return { field: oneofs[i].name, reason: `oneof ${oneofs[i].name} has more than one field set (${names.join(', ')})` };
    }
  }
  return null;
}

/** `p`, found inside the value at `at`. */
function within(at: string, p: Problem): Problem {
  return { field: p.field === '' ? at : p.field.startsWith('[') ? `${at}${p.field}` : `${at}.${p.field}`, reason: p.reason };
}

function verifyValue(f: protobuf.Field | protobuf.MapField, v: unknown, rejectUnknown: boolean, depth: number): Problem | null {
  const rt = f.resolvedType;
  if (rt instanceof protobuf.Type) return verifyMessage(rt, v, rejectUnknown, depth + 1);
  if (rt instanceof protobuf.Enum) {
    if (typeof v === 'string') {
      if (Object.prototype.hasOwnProperty.call(rt.values, v)) return null;
    } else if (Number.isInteger(v) && (v as number) >= INT32_MIN && (v as number) <= INT32_MAX) {
      if (rt.valuesById[v as number] !== undefined || !isClosed(rt)) return null;
    }
    return { field: '', reason: `expected ${rt.name} (one of ${Object.keys(rt.values).join(', ')}), got ${describe(v)}` };
  }
  const t = f.type;
  switch (t) {
    case 'int32': case 'sint32': case 'sfixed32':
      return Number.isInteger(v) && (v as number) >= INT32_MIN && (v as number) <= INT32_MAX ? null : bad(t, v);
    case 'uint32': case 'fixed32':
      return Number.isInteger(v) && (v as number) >= 0 && (v as number) <= UINT32_MAX ? null : bad(t, v);
    case 'int64': case 'sint64': case 'sfixed64':
      return inRange(v, INT64_MIN, INT64_MAX) ? null : bad(t, v, ' (a safe integer, a decimal string or a bigint)');
    case 'uint64': case 'fixed64':
      return inRange(v, 0n, UINT64_MAX) ? null : bad(t, v, ' (a safe integer, a decimal string or a bigint, not negative)');
    case 'float': case 'double':
      return typeof v === 'number' ? null : bad(t, v);
    case 'bool':
      return typeof v === 'boolean' ? null : bad(t, v);
    case 'string':
      return typeof v === 'string' ? null : bad(t, v);
    case 'bytes':
      return v instanceof Uint8Array || (typeof v === 'string' && /^[A-Za-z0-9+/_-]*={0,2}$/.test(v)) ? null : bad(t, v, ' (a Uint8Array or a base64 string)');
    default:
      return null;
  }
}

function isClosed(e: protobuf.Enum): boolean {
  return (e as unknown as { _features?: { enum_type?: string } })._features?.enum_type === 'CLOSED';
}

function bad(type: string, v: unknown, hint = ''): Problem {
  return { field: '', reason: `expected ${type}${hint}, got ${describe(v)}` };
}

/** Whether `v` is a 64-bit integer in [min, max], given as a safe number, a decimal string, a bigint or a Long. */
function inRange(v: unknown, min: bigint, max: bigint): boolean {
  let n: bigint;
  if (typeof v === 'number') {
    // Every safe integer is a valid int64; only the sign matters for the unsigned types.
    return Number.isSafeInteger(v) && (min < 0n || v >= 0);
  } else if (typeof v === 'bigint') {
    n = v;
  } else if (typeof v === 'string') {
    if (!/^-?\d+$/.test(v)) return false;
    n = BigInt(v);
  } else if (typeof v === 'object' && v !== null && Number.isInteger((v as { low?: unknown }).low) && Number.isInteger((v as { high?: unknown }).high)) {
    return true; // a Long: its bits are its range
  } else {
    return false;
  }
  return n >= min && n <= max;
}

import { deserialize, serialize } from 'node:v8';
import { WeirError, messageOf } from '../../errors.js';

/**
 * State values as stored: a one-char tag and a payload, kept as a string (the stores read strings
 * ~3x faster than Buffers). Any value `v8.serialize` accepts can be stored; the common shapes take a
 * fast path, because `v8.serialize` + `deserialize` cost ~5 µs per value here (5 s for 1M values):
 *
 * - `n` + `String(n)` for numbers (exact: JS prints the shortest string that reads back the same);
 * - `s` + the string, for well-formed strings;
 * - `t`, `f`, `z`, `u` for true, false, null, undefined;
 * - `j` + JSON for plain data: plain objects and dense arrays of finite numbers (not -0), strings,
 *   booleans, null and such objects and arrays (JSON holds these exactly);
 * - `v` + the bytes of `v8.serialize(value)` as latin1 chars, for everything else (Map, Set, Date,
 *   typed arrays, bigint, -0 inside objects, class instances as plain data, ...).
 *
 * The empty string is never an encoded value (the versioned state takes a write of it as a delete).
 */
export function encodeValue(value: unknown): string {
  switch (typeof value) {
    case 'number':
      return Object.is(value, -0) ? 'n-0' : 'n' + value;
    case 'string':
      return isWellFormed(value) ? 's' + value : viaV8(value);
    case 'boolean':
      return value ? 't' : 'f';
    case 'undefined':
      return 'u';
    case 'object':
      if (value === null) return 'z';
      if (isPlainData(value, 0)) return 'j' + JSON.stringify(value);
      return viaV8(value);
    default:
      return viaV8(value);
  }
}

/** Decodes what {@link encodeValue} made. */
export function decodeValue(s: string): unknown {
  switch (s.charCodeAt(0)) {
    case 0x6e /* n */:
      return Number(s.slice(1));
    case 0x73 /* s */:
      return s.slice(1);
    case 0x74 /* t */:
      return true;
    case 0x66 /* f */:
      return false;
    case 0x7a /* z */:
      return null;
    case 0x75 /* u */:
      return undefined;
    case 0x6a /* j */:
      return JSON.parse(s.slice(1));
    case 0x76 /* v */:
      return deserialize(Buffer.from(s.slice(1), 'latin1'));
    default:
      throw new WeirError('WEIR_STATE_CORRUPT', `a stored state value cannot be decoded (tag ${JSON.stringify(s.slice(0, 1))})`);
  }
}

function viaV8(value: unknown): string {
  let bytes: Buffer;
  try {
    bytes = serialize(value);
  } catch (e) {
    throw new WeirError('WEIR_INVALID_ARGUMENT', `a state value cannot be stored (v8.serialize: ${messageOf(e)}): use plain data, Maps, Sets, Dates, typed arrays`, { cause: e });
  }
  return 'v' + bytes.toString('latin1');
}

const isWellFormedImpl: ((s: string) => boolean) | undefined =
  typeof (String.prototype as { isWellFormed?: unknown }).isWellFormed === 'function' ? (s) => (s as unknown as { isWellFormed(): boolean }).isWellFormed() : undefined;

function isWellFormed(s: string): boolean {
  if (isWellFormedImpl) return isWellFormedImpl(s);
  return !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);
}

const MAX_JSON_DEPTH = 16;

/** True when JSON round-trips `v` exactly. */
function isPlainData(v: object, depth: number): boolean {
  if (depth > MAX_JSON_DEPTH) return false;
  if (Array.isArray(v)) {
    if (Object.getPrototypeOf(v) !== Array.prototype) return false;
    for (let i = 0; i < v.length; i++) {
      if (!(i in v) || !isPlainField(v[i], depth)) return false;
    }
    return Object.keys(v).length === v.length;
  }
  if (Object.getPrototypeOf(v) !== Object.prototype) return false;
  for (const k in v) {
    if (!Object.prototype.hasOwnProperty.call(v, k)) return false; // an enumerable inherited key: not plain
    if (!isPlainField((v as Record<string, unknown>)[k], depth)) return false;
  }
  return true;
}

function isPlainField(f: unknown, depth: number): boolean {
  switch (typeof f) {
    case 'number':
      return Number.isFinite(f) && !Object.is(f, -0);
    case 'string':
    case 'boolean':
      return true;
    case 'object':
      return f === null || isPlainData(f, depth + 1);
    default:
      return false;
  }
}

import { WeirError } from '../../errors.js';

/**
 * Order-preserving encoding of tuples into strings: `compareKeys(encodeTuple(a), encodeTuple(b))`
 * equals `compareTuples(a, b)`. The stores keep keys as the UTF-8 bytes of these strings, and UTF-8
 * byte order is code point order, so the LSM's order is tuple order: a prefix of a tuple is a range.
 *
 * Why strings and not Buffers: reading back through abstract-level, a string costs ~1.3 µs per entry
 * and a Buffer ~4.5 µs (N-API's buffer creation dominates), measured on 1M entries.
 *
 * Layout (one tag char, then the payload; every payload is prefix-free):
 * - `false` `\x02`, `true` `\x03`;
 * - number `\x04` + 10 chars of 7 bits: the IEEE-754 bits, sign-flipped so that they sort as numbers
 *   (-0 is stored as 0; NaN is refused; ±Infinity are allowed). Fixed width: 11 chars;
 * - bigint `\x05` + a length char + base-128 digits (negative numbers: shorter length char, inverted
 *   digits), |n| < 2^441;
 * - string `\x06` + the string + `\x00`; a NUL inside is `\x00\xFF`, a lone surrogate (which UTF-8
 *   cannot hold) `\x00\xFE` + a char in U+0100..U+08FF;
 * - nested tuple `\x07` + its elements + `\x00`.
 * Across types: booleans < numbers < bigints < strings < tuples (`1` and `1n` are different keys).
 * Strings compare by code point; for strings with lone surrogates the order is deterministic but
 * not specified.
 */
export type KeyPart = string | number | bigint | boolean | readonly KeyPart[];
/** A tuple of key parts. */
export type Tuple = readonly KeyPart[];

const T_END = 0x00;
const T_FALSE = 0x02;
const T_TRUE = 0x03;
const T_NUMBER = 0x04;
const T_BIGINT = 0x05;
const T_STRING = 0x06;
const T_TUPLE = 0x07;

/** Chars taken by one encoded number (tag included): a tuple ending with a number ends with these. */
export const NUMBER_WIDTH = 11;

const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);
// The Uint32 halves of a Float64 depend on the platform's endianness.
const LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const HI = LITTLE ? 1 : 0;
const LO = LITTLE ? 0 : 1;

/** The encoding of one number (tag included). */
export function encodeNumber(n: number): string {
  if (n !== n) throw new WeirError('WEIR_KEY_INVALID', 'NaN cannot be part of a state key');
  f64[0] = n === 0 ? 0 : n; // -0 → 0
  let hi = u32[HI];
  let lo = u32[LO];
  if (hi & 0x80000000) {
    hi = ~hi >>> 0;
    lo = ~lo >>> 0;
  } else {
    hi = (hi | 0x80000000) >>> 0;
  }
  return String.fromCharCode(
    T_NUMBER,
    hi >>> 25,
    (hi >>> 18) & 127,
    (hi >>> 11) & 127,
    (hi >>> 4) & 127,
    ((hi & 15) << 3) | (lo >>> 29),
    (lo >>> 22) & 127,
    (lo >>> 15) & 127,
    (lo >>> 8) & 127,
    (lo >>> 1) & 127,
    (lo & 1) << 6,
  );
}

function decodeNumberAt(s: string, p: number): number {
  const c = (i: number): number => s.charCodeAt(p + i);
  let hi = ((c(0) << 25) | (c(1) << 18) | (c(2) << 11) | (c(3) << 4) | (c(4) >>> 3)) >>> 0;
  let lo = (((c(4) & 7) << 29) | (c(5) << 22) | (c(6) << 15) | (c(7) << 8) | (c(8) << 1) | (c(9) >>> 6)) >>> 0;
  if (hi & 0x80000000) {
    hi = (hi & 0x7fffffff) >>> 0;
  } else {
    hi = ~hi >>> 0;
    lo = ~lo >>> 0;
  }
  u32[HI] = hi;
  u32[LO] = lo;
  return f64[0];
}

const MAX_BIGINT_DIGITS = 63;

function encodeBigint(n: bigint): string {
  const neg = n < 0n;
  let m = neg ? -n : n;
  const digits: number[] = [];
  while (m > 0n) {
    digits.push(Number(m & 127n));
    m >>= 7n;
  }
  if (digits.length > MAX_BIGINT_DIGITS) throw new WeirError('WEIR_KEY_INVALID', 'a bigint in a state key must be smaller than 2^441 in magnitude');
  digits.reverse();
  let out = String.fromCharCode(T_BIGINT, neg ? 0x3f - digits.length : 0x40 + digits.length);
  for (const d of digits) out += String.fromCharCode(neg ? 127 - d : d);
  return out;
}

const isWellFormed: (s: string) => boolean =
  typeof (String.prototype as { isWellFormed?: unknown }).isWellFormed === 'function'
    ? (s) => (s as unknown as { isWellFormed(): boolean }).isWellFormed()
    : (s) => !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);

function encodeString(s: string): string {
  if (s.indexOf('\0') === -1 && isWellFormed(s)) return '\x06' + s + '\0';
  let out = '\x06';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0) out += '\0\xFF';
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      out += s[i] + s[i + 1];
      i++;
    } else if (c >= 0xd800 && c <= 0xdfff) out += '\0\xFE' + String.fromCharCode(0x100 + (c - 0xd800));
    else out += s[i];
  }
  return out + '\0';
}

/** The encoding of one key part. */
export function encodePart(v: KeyPart): string {
  switch (typeof v) {
    case 'string':
      return encodeString(v);
    case 'number':
      return encodeNumber(v);
    case 'boolean':
      return v ? '\x03' : '\x02';
    case 'bigint':
      return encodeBigint(v);
    default:
      if (Array.isArray(v)) return '\x07' + encodeTuple(v) + '\0';
      throw new WeirError('WEIR_KEY_INVALID', `a state key part must be a string, number, bigint, boolean or an array of them (got ${v === null ? 'null' : typeof v})`);
  }
}

/** The encoding of a tuple: its parts' encodings, one after the other. */
export function encodeTuple(parts: Tuple): string {
  let out = '';
  for (let i = 0; i < parts.length; i++) out += encodePart(parts[i]);
  return out;
}

/** A decoding cursor (exported for the versioned state's key parser). */
export class KeyReader {
  pos: number;
  constructor(
    readonly s: string,
    pos = 0,
  ) {
    this.pos = pos;
  }

  get done(): boolean {
    return this.pos >= this.s.length;
  }

  /** Reads one part. */
  part(): KeyPart {
    const s = this.s;
    const tag = s.charCodeAt(this.pos++);
    switch (tag) {
      case T_FALSE:
        return false;
      case T_TRUE:
        return true;
      case T_NUMBER: {
        const n = decodeNumberAt(s, this.pos);
        this.pos += NUMBER_WIDTH - 1;
        return n;
      }
      case T_BIGINT: {
        const lc = s.charCodeAt(this.pos++);
        const neg = lc < 0x40;
        const len = neg ? 0x3f - lc : lc - 0x40;
        let m = 0n;
        for (let i = 0; i < len; i++) {
          const d = s.charCodeAt(this.pos++);
          m = (m << 7n) | BigInt(neg ? 127 - d : d);
        }
        return neg ? -m : m;
      }
      case T_STRING:
        return this.string();
      case T_TUPLE: {
        const out: KeyPart[] = [];
        while (s.charCodeAt(this.pos) !== T_END) {
          if (this.pos >= s.length) throw corrupt(s);
          out.push(this.part());
        }
        this.pos++;
        return out;
      }
      default:
        throw corrupt(s);
    }
  }

  private string(): string {
    const s = this.s;
    const start = this.pos;
    let end = s.indexOf('\0', start);
    if (end === -1) throw corrupt(s);
    let next = s.charCodeAt(end + 1);
    if (next !== 0xff && next !== 0xfe) {
      this.pos = end + 1;
      return s.slice(start, end);
    }
    let out = '';
    let from = start;
    for (;;) {
      out += s.slice(from, end);
      if (next === 0xff) {
        out += '\0';
        from = end + 2;
      } else if (next === 0xfe) {
        out += String.fromCharCode(0xd800 + s.charCodeAt(end + 2) - 0x100);
        from = end + 3;
      } else {
        this.pos = end + 1;
        return out;
      }
      end = s.indexOf('\0', from);
      if (end === -1) throw corrupt(s);
      next = s.charCodeAt(end + 1);
    }
  }
}

function corrupt(s: string): WeirError {
  return new WeirError('WEIR_STATE_CORRUPT', `a stored key cannot be decoded: ${JSON.stringify(s.slice(0, 80))}`);
}

/** Decodes a whole tuple. */
export function decodeTuple(s: string): KeyPart[] {
  const r = new KeyReader(s);
  const out: KeyPart[] = [];
  while (!r.done) out.push(r.part());
  return out;
}

/**
 * Compares two encoded keys in store order (code point order, which is the UTF-8 byte order the LSM
 * uses). JS's `<` compares UTF-16 code units, which differs for astral characters vs U+E000..U+FFFF.
 */
export function compareKeys(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  if (i === n) return a.length - b.length < 0 ? -1 : 1;
  let x = a.charCodeAt(i);
  let y = b.charCodeAt(i);
  if (x >= 0xd800 && y >= 0xd800) {
    // Surrogates (astral code points) sort above U+E000..U+FFFF in code point order.
    x = x < 0xe000 ? x + 0x2000 : x - 0x800;
    y = y < 0xe000 ? y + 0x2000 : y - 0x800;
  }
  return x < y ? -1 : 1;
}

function rank(v: KeyPart): number {
  switch (typeof v) {
    case 'boolean':
      return v ? T_TRUE : T_FALSE;
    case 'number':
      return T_NUMBER;
    case 'bigint':
      return T_BIGINT;
    case 'string':
      return T_STRING;
    default:
      return T_TUPLE;
  }
}

function compareStrings(a: string, b: string): number {
  // Code point order, as the encoding keeps it (for well-formed strings).
  return compareKeys(a, b);
}

/** Compares two key parts in the order the encoding keeps. */
export function compareParts(a: KeyPart, b: KeyPart): number {
  const ra = rank(a);
  const rb = rank(b);
  if (ra !== rb) return ra < rb ? -1 : 1;
  switch (ra) {
    case T_NUMBER:
    case T_BIGINT:
      return (a as number) < (b as number) ? -1 : (a as number) > (b as number) ? 1 : 0;
    case T_STRING:
      return compareStrings(a as string, b as string);
    case T_TUPLE:
      return compareTuples(a as Tuple, b as Tuple);
    default:
      return 0;
  }
}

/** Compares two tuples part by part; a proper prefix sorts first. */
export function compareTuples(a: Tuple, b: Tuple): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const c = compareParts(a[i], b[i]);
    if (c !== 0) return c;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

/**
 * The end of the range of keys that extend the tuple encoded as `prefix` (for an `lt` bound): what
 * follows a whole tuple is a tag, at most `\x07`, while a string continuing past the prefix's last
 * terminator would go on with `\xFE` or `\xFF`, which this excludes.
 */
export function prefixEnd(prefix: string): string {
  return prefix + '\x08';
}

/**
 * The key group of a key: `fmix32(fnv1a32(encodePart(key))) mod maxParallelism`, where fnv1a32 runs
 * over the UTF-16 code units of the key's encoding (offset basis 2166136261, prime 16777619) and
 * fmix32 is MurmurHash3's finalizer. Pure integer arithmetic on the encoding, so it is the same in
 * every process, on every machine and in every Node version: a job restored elsewhere, or at another
 * parallelism, finds its state in the same key groups. `1`, `1n` and `'1'` are different keys.
 */
export function keyGroupOf(key: KeyPart, maxParallelism: number): number {
  let h = 2166136261;
  if (typeof key === 'string' && key.indexOf('\0') === -1 && isWellFormed(key)) {
    h = Math.imul(h ^ T_STRING, 16777619);
    for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 16777619);
    h = Math.imul(h ^ T_END, 16777619);
  } else {
    const e = encodePart(key);
    for (let i = 0; i < e.length; i++) h = Math.imul(h ^ e.charCodeAt(i), 16777619);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) % maxParallelism;
}

/**
 * The number a key ends with (the last {@link NUMBER_WIDTH} chars), e.g. the checkpoint id of a
 * state version, without decoding the rest; NaN when the key does not end with a number.
 */
export function trailingNumber(s: string): number {
  const p = s.length - NUMBER_WIDTH;
  if (p < 0 || s.charCodeAt(p) !== T_NUMBER) return NaN;
  return decodeNumberAt(s, p + 1);
}

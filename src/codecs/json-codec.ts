import { isUtf8 } from 'node:buffer';
import { WeirError } from '../errors.js';
import { CodecError, asBuffer, checkBytes, describe, type Codec } from './codec.js';

/**
 * What a JSON validator returns: `true`, `undefined` or `null` when the value is fine; `false` (rejected,
 * no reason given), a string (the reason), or `{ field, reason }` (the reason and the offending field's
 * path) when it is not. A type guard `(v: unknown) => v is T` is a validator.
 * @example
 * const positive = (v: unknown): JsonValidation =>
 *   (v as Txn).amount > 0 || { field: 'amount', reason: `must be positive, got ${(v as Txn).amount}` };
 */
export type JsonValidation = boolean | string | { readonly field?: string; readonly reason: string } | null | undefined | void;

/**
 * The expected JSON type of one top-level field for `codecs.json({ fields })`; a trailing `?` lets the
 * field be missing or null. `integer` is a number without a fraction; `any` only requires presence.
 * @example const fields: Record<string, JsonFieldType> = { id: 'integer', tags: 'array', note: 'string?' };
 */
export type JsonFieldType =
  | 'string' | 'number' | 'integer' | 'boolean' | 'object' | 'array' | 'null' | 'any'
  | 'string?' | 'number?' | 'integer?' | 'boolean?' | 'object?' | 'array?' | 'any?';

/**
 * Options of {@link jsonCodec}.
 * @example codecs.json<Txn>({ name: 'txn-json', fields: { id: 'integer' }, validate: isTxn, validateOn: 'decode' })
 */
export interface JsonCodecOptions<T> {
  /** Name in errors (default `json`). */
  name?: string;
  /**
   * A quick shape check: the value must be an object whose listed fields have these JSON types.
   * Runs before `validate`; a mismatch names the field (`field amount: expected number, got a string ("12")`).
   * @example fields: { id: 'integer', card: 'string', amount: 'number', note: 'string?' }
   */
  fields?: Readonly<Record<string, JsonFieldType>>;
  /**
   * Checks each value (see {@link JsonValidation} for what it returns); a throw counts as a rejection
   * with the error's message as the reason (a thrown `CodecError` keeps its field).
   * @example validate: (v): v is Txn => typeof (v as Txn)?.amount === 'number'
   * @example validate: v => (v as Txn).amount >= 0 || { field: 'amount', reason: 'must not be negative' }
   */
  validate?: ((value: unknown) => value is T) | ((value: unknown) => JsonValidation);
  /** Which way `fields` and `validate` are checked (default `'both'`: bad input and bad output alike). */
  validateOn?: 'decode' | 'encode' | 'both';
}

const BOM = 0xfeff;

/**
 * UTF-8 JSON, one value per record, optionally checked by `fields` and `validate` with a reason that
 * names the field. Decoding fails (a `CodecError`) on bytes that are not UTF-8 or not JSON; encoding
 * fails on values `JSON.stringify` cannot render (`undefined`, a function, a BigInt, a cycle). A text
 * codec: usable with line framing.
 *
 * @example
 * interface Txn { id: number; card: string; amount: number }
 * const txns = codecs.json<Txn>({ fields: { id: 'integer', card: 'string', amount: 'number' } });
 * txns.decode(Buffer.from('{"id":1,"card":"c1","amount":"12"}'));
 * // CodecError: json: cannot decode: field amount: expected number, got a string ("12")
 */
export function jsonCodec<T = unknown>(opts: JsonCodecOptions<T> = {}): Codec<T> {
  const name = opts.name ?? 'json';
  const fields = opts.fields === undefined ? undefined : compileFields(name, opts.fields);
  const validate = opts.validate as ((value: unknown) => JsonValidation) | undefined;
  if (validate !== undefined && typeof validate !== 'function') {
    throw new WeirError('WEIR_INVALID_ARGUMENT', `codecs.json: validate must be a function, got ${typeof validate}`);
  }
  const on = opts.validateOn ?? 'both';
  if (on !== 'decode' && on !== 'encode' && on !== 'both') {
    throw new WeirError('WEIR_INVALID_ARGUMENT', `codecs.json: validateOn must be 'decode', 'encode' or 'both', got ${String(on)}`);
  }
  const check = fields === undefined && validate === undefined ? undefined : makeCheck(name, fields, validate);
  const checkDecode = on === 'encode' ? undefined : check;
  const checkEncode = on === 'decode' ? undefined : check;
  return {
    name,
    text: true,
    decode(bytes: Uint8Array): T {
      const buf = asBuffer(checkBytes(name, bytes));
      if (!isUtf8(buf)) throw new CodecError(name, 'decode', 'not valid UTF-8');
      let text = buf.toString('utf8');
      if (text.charCodeAt(0) === BOM) text = text.slice(1);
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (e) {
        throw new CodecError(name, 'decode', `invalid JSON: ${(e as Error).message}`, { cause: e });
      }
      checkDecode?.(value, 'decode');
      return value as T;
    },
    encode(value: T): Uint8Array {
      checkEncode?.(value, 'encode');
      let text: string | undefined;
      try {
        text = JSON.stringify(value);
      } catch (e) {
        throw new CodecError(name, 'encode', `JSON.stringify failed: ${(e as Error).message}`, { cause: e });
      }
      if (typeof text !== 'string') throw new CodecError(name, 'encode', `${describe(value)} has no JSON form`);
      return Buffer.from(text, 'utf8');
    },
  };
}

/**
 * UTF-8 strings, as they are (keys, plain-text payloads). Decoding fails on bytes that are not UTF-8;
 * encoding on anything but a string. A text codec.
 * @example sinks.file('names.txt', { codec: codecs.string(), framing: 'lines' })
 */
export function stringCodec(opts: { name?: string } = {}): Codec<string> {
  const name = opts.name ?? 'string';
  return {
    name,
    text: true,
    decode(bytes: Uint8Array): string {
      const buf = asBuffer(checkBytes(name, bytes));
      if (!isUtf8(buf)) throw new CodecError(name, 'decode', 'not valid UTF-8');
      return buf.toString('utf8');
    },
    encode(value: string): Uint8Array {
      if (typeof value !== 'string') throw new CodecError(name, 'encode', `expected a string, got ${describe(value)}`);
      return Buffer.from(value, 'utf8');
    },
  };
}

/**
 * The identity: records are the bytes themselves (keys, opaque payloads). `decode` returns the bytes it
 * was given (a view, not a copy); `encode` accepts any Uint8Array (a Buffer too).
 * @example sources.file<Uint8Array>('blobs.bin', { codec: codecs.bytes(), framing: 'length-prefixed' })
 */
export function bytesCodec(opts: { name?: string } = {}): Codec<Uint8Array> {
  const name = opts.name ?? 'bytes';
  return {
    name,
    decode: (bytes: Uint8Array): Uint8Array => checkBytes(name, bytes),
    encode(value: Uint8Array): Uint8Array {
      if (!(value instanceof Uint8Array)) throw new CodecError(name, 'encode', `expected bytes (a Uint8Array), got ${describe(value)}`);
      return value;
    },
  };
}

type FieldCheck = (value: unknown) => boolean;

interface CompiledField {
  readonly key: string;
  readonly optional: boolean;
  readonly type: string;
  readonly test: FieldCheck;
}

const FIELD_TESTS: Record<string, FieldCheck> = {
  string: (v) => typeof v === 'string',
  number: (v) => typeof v === 'number',
  integer: (v) => Number.isInteger(v),
  boolean: (v) => typeof v === 'boolean',
  object: (v) => typeof v === 'object' && v !== null && !Array.isArray(v),
  array: (v) => Array.isArray(v),
  null: (v) => v === null,
  any: () => true,
};

function compileFields(codec: string, fields: Readonly<Record<string, JsonFieldType>>): CompiledField[] {
  if (typeof fields !== 'object' || fields === null) throw new WeirError('WEIR_INVALID_ARGUMENT', `codecs.json (${codec}): fields must be an object of field → type`);
  return Object.entries(fields).map(([key, spec]) => {
    const optional = typeof spec === 'string' && spec.endsWith('?');
    const type = optional ? spec.slice(0, -1) : spec;
    const test = FIELD_TESTS[type];
    if (test === undefined || (optional && type === 'null')) {
      throw new WeirError('WEIR_INVALID_ARGUMENT', `codecs.json (${codec}): field ${key} has an unknown type ${JSON.stringify(spec)} (use ${Object.keys(FIELD_TESTS).join(', ')}, with ? when optional)`);
    }
    return { key, optional, type, test };
  });
}

function makeCheck(
  codec: string,
  fields: readonly CompiledField[] | undefined,
  validate: ((value: unknown) => JsonValidation) | undefined,
): (value: unknown, direction: 'decode' | 'encode') => void {
  return (value, direction) => {
    if (fields !== undefined) {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        throw new CodecError(codec, direction, `expected an object, got ${describe(value)}`);
      }
      const obj = value as Record<string, unknown>;
      for (let i = 0; i < fields.length; i++) {
        const f = fields[i];
        const v = obj[f.key];
        if (v === undefined || (v === null && f.optional)) {
          if (f.optional) continue;
          throw new CodecError(codec, direction, v === undefined ? 'missing' : `expected ${f.type}, got null`, { field: f.key });
        }
        if (!f.test(v)) throw new CodecError(codec, direction, `expected ${f.type}, got ${describe(v)}`, { field: f.key });
      }
    }
    if (validate === undefined) return;
    let verdict: JsonValidation;
    try {
      verdict = validate(value);
    } catch (e) {
      if (e instanceof CodecError) throw e;
      throw new CodecError(codec, direction, e instanceof Error ? e.message : String(e), { cause: e });
    }
    if (verdict === true || verdict === undefined || verdict === null) return;
    if (verdict === false) throw new CodecError(codec, direction, 'rejected by validate');
    if (typeof verdict === 'string') throw new CodecError(codec, direction, verdict);
    if (typeof verdict === 'object' && typeof verdict.reason === 'string') {
      throw new CodecError(codec, direction, verdict.reason, verdict.field === undefined ? {} : { field: verdict.field });
    }
    throw new CodecError(codec, direction, `validate returned ${describe(verdict)}, not true, false, a reason or { field, reason }`);
  };
}

/**
 * Codecs: round trips (properties), Avro's wire format, registry and schema evolution, Protobuf's
 * object mapping, and the reasons bad input is refused with.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { CodecError, MemorySchemaRegistry, WeirError, codecs, type Codec, type SchemaRegistry } from '../src/index.js';

let dir = '';
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'weir-codecs-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Asserts `fn` throws a CodecError of `direction` whose message has every fragment (and `field`, when given). */
function throwsCodec(fn: () => unknown, direction: 'decode' | 'encode', fragments: (string | RegExp)[], field?: string): CodecError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof CodecError, `expected a CodecError, got ${String(caught)}`);
  assert.equal(caught.direction, direction, caught.message);
  for (const f of fragments) {
    if (typeof f === 'string') assert.ok(caught.message.includes(f), `message ${JSON.stringify(caught.message)} lacks ${JSON.stringify(f)}`);
    else assert.match(caught.message, f);
  }
  if (field !== undefined) assert.equal(caught.field, field, caught.message);
  return caught;
}

function isWeirError(code: string, ...fragments: (string | RegExp)[]): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(e instanceof WeirError, `expected a WeirError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    for (const f of fragments) {
      if (typeof f === 'string') assert.ok(e.message.includes(f), `message ${JSON.stringify(e.message)} lacks ${JSON.stringify(f)}`);
      else assert.match(e.message, f);
    }
    return true;
  };
}

/** Avro records decode to instances of generated classes: this turns them into plain data to compare. */
function plain(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(plain);
  if (v instanceof Uint8Array) return Buffer.from(v);
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

/** A registry with only the asynchronous half (as a remote one would be), counting lookups. */
function asyncRegistry(inner = new MemorySchemaRegistry()): SchemaRegistry & { lookups: number[] } {
  const lookups: number[] = [];
  return {
    lookups,
    register: (subject, schema) => inner.register(subject, schema),
    lookup: async (id) => {
      lookups.push(id);
      await new Promise((r) => setTimeout(r, 1));
      return inner.lookup(id);
    },
  };
}

describe('codecs.json / string / bytes', () => {
  it('round-trips any JSON value', () => {
    const json = codecs.json();
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const bytes = json.encode(v);
        assert.ok(bytes instanceof Uint8Array);
        assert.deepEqual(json.decode(bytes), JSON.parse(JSON.stringify(v)));
        assert.equal(Buffer.from(bytes).toString('utf8'), JSON.stringify(v));
      }),
      { numRuns: 300 },
    );
  });

  it('checks fields and names the field that is wrong', () => {
    interface Txn { id: number; card: string; amount: number; note?: string | null }
    const txns = codecs.json<Txn>({ fields: { id: 'integer', card: 'string', amount: 'number', note: 'string?' } });
    const ok = { id: 1, card: 'c1', amount: 12.5 };
    assert.deepEqual(txns.decode(txns.encode(ok)), ok);
    assert.deepEqual(txns.decode(Buffer.from('{"id":2,"card":"c","amount":1,"note":null}')), { id: 2, card: 'c', amount: 1, note: null });
    throwsCodec(() => txns.decode(Buffer.from('{"id":1,"card":"c1","amount":"12"}')), 'decode', ['json: cannot decode: field amount: expected number, got a string ("12")'], 'amount');
    throwsCodec(() => txns.decode(Buffer.from('{"id":1.5,"card":"c1","amount":1}')), 'decode', ['expected integer, got number 1.5'], 'id');
    throwsCodec(() => txns.decode(Buffer.from('{"id":1,"amount":1}')), 'decode', ['field card: missing'], 'card');
    throwsCodec(() => txns.decode(Buffer.from('{"id":1,"card":"c","amount":1,"note":3}')), 'decode', ['expected string, got number 3'], 'note');
    throwsCodec(() => txns.decode(Buffer.from('[1,2]')), 'decode', ['expected an object, got an array']);
    // Both ways by default: a bad record does not get written either.
    throwsCodec(() => txns.encode({ id: 1, card: 7 } as unknown as Txn), 'encode', ['json: cannot encode: field card: expected string, got number 7'], 'card');
  });

  it('runs validate: type guards, reasons, { field, reason } and throws', () => {
    interface Txn { amount: number }
    const guard = codecs.json<Txn>({ validate: (v): v is Txn => typeof (v as Txn)?.amount === 'number' });
    assert.deepEqual(guard.decode(Buffer.from('{"amount":3}')), { amount: 3 });
    throwsCodec(() => guard.decode(Buffer.from('{"amount":"3"}')), 'decode', ['rejected by validate']);

    const reasons = codecs.json<Txn>({
      validate: (v) => {
        const t = v as Txn;
        if (typeof t.amount !== 'number') return 'amount is not a number';
        if (t.amount < 0) return { field: 'amount', reason: 'must not be negative' };
        if (t.amount > 1e6) throw new Error('amount too large');
        return true;
      },
    });
    throwsCodec(() => reasons.decode(Buffer.from('{}')), 'decode', ['json: cannot decode: amount is not a number']);
    const neg = throwsCodec(() => reasons.decode(Buffer.from('{"amount":-1}')), 'decode', ['field amount: must not be negative'], 'amount');
    assert.equal(neg.reason, 'must not be negative');
    throwsCodec(() => reasons.decode(Buffer.from('{"amount":1e9}')), 'decode', ['amount too large']);

    const decodeOnly = codecs.json<Txn>({ validate: () => false, validateOn: 'decode' });
    assert.deepEqual(Buffer.from(decodeOnly.encode({ amount: 1 })).toString(), '{"amount":1}');
    const encodeOnly = codecs.json<Txn>({ validate: () => false, validateOn: 'encode' });
    assert.deepEqual(encodeOnly.decode(Buffer.from('{"amount":1}')), { amount: 1 });
    throwsCodec(() => encodeOnly.encode({ amount: 1 }), 'encode', ['rejected by validate']);
  });

  it('refuses bytes that are not UTF-8 or not JSON, and values with no JSON form', () => {
    const json = codecs.json();
    throwsCodec(() => json.decode(Buffer.from([0x7b, 0xff, 0x7d])), 'decode', ['not valid UTF-8']);
    throwsCodec(() => json.decode(Buffer.from('{"a":')), 'decode', ['invalid JSON']);
    throwsCodec(() => json.decode(new Uint8Array(0)), 'decode', ['invalid JSON']);
    assert.deepEqual(json.decode(Buffer.from('\ufeff{"a":1}')), { a: 1 }, 'a BOM is dropped');
    throwsCodec(() => json.encode(undefined), 'encode', ['undefined has no JSON form']);
    throwsCodec(() => json.encode({ n: 1n }), 'encode', ['JSON.stringify failed', /BigInt/]);
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    throwsCodec(() => json.encode(cycle), 'encode', ['JSON.stringify failed', /circular/i]);
    assert.throws(() => codecs.json({ fields: { a: 'float' as 'number' } }), isWeirError('WEIR_INVALID_ARGUMENT', 'field a has an unknown type'));
  });

  it('round-trips strings and bytes', () => {
    const str = codecs.string();
    const bytes = codecs.bytes();
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.uint8Array(), (s, b) => {
        assert.equal(str.decode(str.encode(s)), s);
        assert.equal(bytes.encode(b), b, 'bytes encode is the identity');
        assert.equal(bytes.decode(b), b, 'bytes decode is the identity');
      }),
      { numRuns: 200 },
    );
    assert.equal(str.text, true);
    throwsCodec(() => str.decode(Buffer.from([0xc3])), 'decode', ['not valid UTF-8']);
    throwsCodec(() => str.encode(5 as unknown as string), 'encode', ['expected a string, got number 5']);
    throwsCodec(() => bytes.encode('abc' as unknown as Uint8Array), 'encode', ['expected bytes']);
  });
});

const userV1 = {
  type: 'record',
  name: 'User',
  namespace: 'com.acme',
  fields: [
    { name: 'id', type: 'long' },
    { name: 'name', type: 'string' },
    { name: 'legacy', type: 'string', default: '' },
  ],
};
/** v2: `legacy` removed, `name` renamed to `fullName` (alias), `email` added with a default. */
const userV2 = {
  type: 'record',
  name: 'User',
  namespace: 'com.acme',
  fields: [
    { name: 'id', type: 'long' },
    { name: 'fullName', type: 'string', aliases: ['name'] },
    { name: 'email', type: ['null', 'string'], default: null },
  ],
};
interface UserV1 { id: number; name: string; legacy: string }
interface UserV2 { id: number; fullName: string; email: string | null }

const everything = {
  type: 'record',
  name: 'Everything',
  namespace: 'test',
  fields: [
    { name: 'id', type: 'long' },
    { name: 'name', type: 'string' },
    { name: 'score', type: 'double' },
    { name: 'count', type: 'int' },
    { name: 'active', type: 'boolean' },
    { name: 'tags', type: { type: 'array', items: 'string' } },
    { name: 'email', type: ['null', 'string'], default: null },
    { name: 'kind', type: { type: 'enum', name: 'Kind', symbols: ['A', 'B', 'C'] } },
    { name: 'data', type: 'bytes' },
    { name: 'attrs', type: { type: 'map', values: 'int' } },
    { name: 'address', type: { type: 'record', name: 'Address', fields: [{ name: 'zip', type: 'string' }, { name: 'city', type: 'string' }] } },
  ],
};
const everythingArb = fc.record({
  id: fc.maxSafeInteger().filter((n) => n >= Number.MIN_SAFE_INTEGER),
  name: fc.string({ unit: 'binary' }),
  score: fc.double(),
  count: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
  active: fc.boolean(),
  tags: fc.array(fc.string(), { maxLength: 5 }),
  email: fc.option(fc.string(), { nil: null }),
  kind: fc.constantFrom('A', 'B', 'C'),
  data: fc.uint8Array({ maxLength: 20 }).map((a) => Buffer.from(a)),
  attrs: fc.dictionary(fc.stringMatching(/^[a-z]{1,6}$/), fc.integer({ min: -1000, max: 1000 }), { maxKeys: 4 }),
  address: fc.record({ zip: fc.string(), city: fc.string() }),
});

describe('codecs.avro', () => {
  it('round-trips records of a schema (property), in the Confluent wire format', () => {
    const registry = codecs.schemaRegistry.memory({ isolated: true });
    const codec = codecs.avro({ schema: everything, registry });
    assert.equal(codec.name, 'avro(test.Everything)');
    fc.assert(
      fc.property(everythingArb, (rec) => {
        const bytes = Buffer.from(codec.encode(rec));
        assert.deepEqual([...bytes.subarray(0, 5)], [0, 0, 0, 0, 1], 'magic byte 0 and schema id 1, big-endian');
        assert.deepEqual(plain(codec.decode(bytes)), plain(rec));
      }),
      { numRuns: 300 },
    );
  });

  it('writes magic byte 0, the 4-byte big-endian schema id, then the Avro binary datum', async () => {
    const registry = codecs.schemaRegistry.memory({ isolated: true });
    // Push the ids past one byte so the big-endian layout shows.
    for (let i = 0; i < 300; i++) await registry.register(`filler-${i}`, { type: 'record', name: `F${i}`, fields: [] });
    const codec = codecs.avro<UserV1>({ schema: userV1, registry, subject: 'users-value' });
    await codec.open?.();
    assert.deepEqual(registry.versions('users-value'), [301]);
    const bytes = Buffer.from(codec.encode({ id: 1, name: 'ada', legacy: '' }));
    assert.deepEqual([...bytes], [0x00, 0x00, 0x00, 0x01, 0x2d, /* id 1 */ 0x02, /* "ada" */ 0x06, 0x61, 0x64, 0x61, /* "" */ 0x00]);
    const raw = codecs.avro<UserV1>({ schema: userV1, wireFormat: 'raw' });
    assert.deepEqual([...raw.encode({ id: 1, name: 'ada', legacy: '' })], [0x02, 0x06, 0x61, 0x64, 0x61, 0x00]);
    assert.deepEqual(plain(raw.decode(Buffer.from([0x02, 0x06, 0x61, 0x64, 0x61, 0x00]))), { id: 1, name: 'ada', legacy: '' });
  });

  it('gives the same schema the same id, in any key order, under any subject; a new schema a new id', async () => {
    const registry = codecs.schemaRegistry.memory({ isolated: true });
    const a = codecs.avro({ schema: userV1, registry, subject: 'a' });
    const reordered = { fields: userV1.fields.map((f) => ({ default: f.default, type: f.type, name: f.name })), namespace: 'com.acme', name: 'User', type: 'record' };
    const b = codecs.avro({ schema: reordered, registry, subject: 'b' });
    const c = codecs.avro({ schema: JSON.stringify(userV1), registry, subject: 'a' });
    const d = codecs.avro({ schema: userV2, registry, subject: 'a' });
    await Promise.all([a, b, c, d].map((x) => x.open?.()));
    const idOf = (x: Codec<unknown>): number => Buffer.from(x.encode({ id: 1, name: 'n', fullName: 'n', legacy: '', email: null })).readUInt32BE(1);
    assert.equal(idOf(a), 1);
    assert.equal(idOf(b), 1);
    assert.equal(idOf(c), 1);
    assert.equal(idOf(d), 2);
    assert.deepEqual(registry.versions('a'), [1, 2]);
    assert.deepEqual(registry.versions('b'), [1]);
    assert.equal(await registry.register('z', userV1), 1);
    assert.deepEqual(await registry.lookup(3), undefined);

    // Without a registry option: the process-wide one, shared by every codec.
    assert.equal(codecs.schemaRegistry.memory(), codecs.schemaRegistry.memory());
    assert.notEqual(codecs.schemaRegistry.memory({ isolated: true }), codecs.schemaRegistry.memory());
    const shared1 = codecs.avro<UserV1>(userV1);
    const shared2 = codecs.avro<UserV1>({ schema: userV1 });
    const sharedId = Buffer.from(shared1.encode({ id: 5, name: 'x', legacy: '' })).readUInt32BE(1);
    assert.equal(Buffer.from(shared2.encode({ id: 5, name: 'x', legacy: '' })).readUInt32BE(1), sharedId);
    assert.deepEqual(codecs.schemaRegistry.memory().lookupSync(sharedId), codecs.schemaRegistry.memory().lookupSync(sharedId));
    assert.ok(codecs.schemaRegistry.memory().versions('com.acme.User').includes(sharedId), 'default subject: the full name');
  });

  it('resolves old records into the reader schema: added field with default, removed field, renamed field by alias', () => {
    const registry = codecs.schemaRegistry.memory({ isolated: true });
    const v1 = codecs.avro<UserV1>({ schema: userV1, registry, subject: 'users' });
    const v2 = codecs.avro<UserV2>({ schema: userV2, registry, subject: 'users' });
    const old = v1.encode({ id: 7, name: 'grace', legacy: 'dropped' });
    const now = v2.encode({ id: 8, fullName: 'ada', email: 'ada@x' });
    assert.notEqual(Buffer.from(old).readUInt32BE(1), Buffer.from(now).readUInt32BE(1));
    assert.deepEqual(plain(v2.decode(old)), { id: 7, fullName: 'grace', email: null });
    assert.deepEqual(plain(v2.decode(now)), { id: 8, fullName: 'ada', email: 'ada@x' });
    // A v1 reader cannot read v2 records: v2 has no `name` (and no alias the other way round).
    throwsCodec(() => v1.decode(now), 'decode', [`schema id ${Buffer.from(now).readUInt32BE(1)} cannot be read as com.acme.User`]);

    // readerSchema: write v1, read as v2 from one codec.
    const both = codecs.avro<UserV2>({ schema: userV1, readerSchema: userV2, registry, subject: 'users' });
    assert.deepEqual(plain(both.decode(both.encode({ id: 9, name: 'x', legacy: 'l' } as unknown as UserV2))), { id: 9, fullName: 'x', email: null });
    assert.throws(
      () => codecs.avro({ schema: userV2, readerSchema: userV1, registry }),
      isWeirError('WEIR_INVALID_ARGUMENT', 'readerSchema cannot read records written with schema'),
    );
  });

  it('with an asynchronous registry: open() registers, prepare(batch) fetches unknown ids once per batch', async () => {
    const inner = new MemorySchemaRegistry();
    const registry = asyncRegistry(inner);
    const writerV1 = codecs.avro<UserV1>({ schema: userV1, registry, subject: 'users' });
    assert.throws(() => writerV1.encode({ id: 1, name: 'a', legacy: '' }), isWeirError('WEIR_JOB_STATE', 'encode before open()'));
    await writerV1.open?.();
    const reader = codecs.avro<UserV2>({ schema: userV2, registry, subject: 'users' });
    await reader.open?.();
    const batch = [1, 2, 3].map((i) => writerV1.encode({ id: i, name: `u${i}`, legacy: '' }));
    throwsCodec(() => reader.decode(batch[0]), 'decode', ['schema id 1 was not fetched: call prepare(batch) before decode']);
    const p = reader.prepare?.(batch);
    assert.ok(p instanceof Promise, 'an unknown id needs a lookup');
    await p;
    assert.deepEqual(registry.lookups, [1], 'one lookup for the batch, not one per record');
    assert.deepEqual(batch.map((b) => plain(reader.decode(b))), [1, 2, 3].map((i) => ({ id: i, fullName: `u${i}`, email: null })));
    assert.equal(reader.prepare?.(batch), null, 'nothing missing: no promise');
    const own = reader.encode({ id: 4, fullName: 'x', email: null });
    assert.equal(reader.prepare?.([own]), null, 'its own schema is known');

    // An id the registry does not have: prepare resolves, decode fails record by record.
    const bogus = Buffer.from(own);
    bogus.writeUInt32BE(99, 1);
    await reader.prepare?.([bogus, own]);
    throwsCodec(() => reader.decode(bogus), 'decode', ['unknown schema id 99: the registry has no such schema']);
    assert.deepEqual(plain(reader.decode(own)), { id: 4, fullName: 'x', email: null });

    // A registry that fails: prepare rejects (a source error, not a bad record).
    const down: SchemaRegistry = { register: async () => 1, lookup: async () => Promise.reject(new Error('connection refused')) };
    const r2 = codecs.avro<UserV1>({ schema: userV1, registry: down });
    await assert.rejects(r2.prepare?.([bogus]) as Promise<void>, /looking up schema id 99 failed: connection refused/);
  });

  it('refuses bad input with a clear reason', () => {
    const registry = codecs.schemaRegistry.memory({ isolated: true });
    const codec = codecs.avro<UserV1>({ schema: userV1, registry });
    const good = Buffer.from(codec.encode({ id: 1, name: 'ada', legacy: 'x' }));
    throwsCodec(() => codec.decode(Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x7d, 0x0a])), 'decode', ['avro(com.acme.User): cannot decode: bad magic byte 0x7b']);
    throwsCodec(() => codec.decode(good.subarray(0, 3)), 'decode', ['truncated: 3 bytes, shorter than the 5-byte header']);
    throwsCodec(() => codec.decode(good.subarray(0, good.length - 2)), 'decode', ['truncated Avro payload (schema id 1)']);
    throwsCodec(() => codec.decode(Buffer.concat([good, Buffer.from([1, 2])])), 'decode', ['2 unexpected bytes after the record']);
    const unknown = Buffer.from(good);
    unknown.writeUInt32BE(42, 1);
    throwsCodec(() => codec.decode(unknown), 'decode', ['unknown schema id 42']);
    throwsCodec(() => codec.decode('not bytes' as unknown as Uint8Array), 'decode', ['expected bytes']);
    const badLong = Buffer.concat([good.subarray(0, 5), Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00, 0x00])]);
    throwsCodec(() => codec.decode(badLong), 'decode', ['bad Avro data (schema id 1)', 'precision']);
  });

  it('names the field path of a record that does not match the schema', () => {
    const codec = codecs.avro({ schema: everything, registry: codecs.schemaRegistry.memory({ isolated: true }) });
    const rec = fc.sample(everythingArb, { numRuns: 1, seed: 1 })[0];
    throwsCodec(() => codec.encode({ ...rec, address: { zip: 12345, city: 'x' } }), 'encode', ['field address.zip: expected string, got number 12345'], 'address.zip');
    throwsCodec(() => codec.encode({ ...rec, tags: ['a', 2] }), 'encode', ['expected string, got number 2'], 'tags[1]');
    throwsCodec(() => codec.encode({ ...rec, kind: 'D' }), 'encode', ['expected enum test.Kind'], 'kind');
    throwsCodec(() => codec.encode({ ...rec, email: 3 }), 'encode', ['expected null | string, got number 3'], 'email');
    const { name: _drop, ...noName } = rec;
    throwsCodec(() => codec.encode(noName), 'encode', ['missing (expected string)'], 'name');
    throwsCodec(() => codec.encode({ ...rec, id: 2 ** 60 }), 'encode', [], 'id');
  });

  it('keeps longs exact: numbers up to ±(2^53 - 1), bigints for all 64 bits, never a rounded value', () => {
    const asNumber = codecs.avro<number>({ schema: 'long', wireFormat: 'raw' });
    const asBigInt = codecs.avro<bigint>({ schema: 'long', wireFormat: 'raw', longs: 'bigint' });
    assert.equal(asNumber.name, 'avro(long)');
    // Zigzag varints: -(2^52) - 1 → 2^53 + 1 (where doubles stop being exact), and the int64 extremes.
    assert.deepEqual([...asNumber.encode(-(2 ** 52) - 1)], [0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10]);
    assert.deepEqual([...asBigInt.encode(2n ** 63n - 1n)], [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
    assert.deepEqual([...asBigInt.encode(-(2n ** 63n))], [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
    fc.assert(
      fc.property(fc.maxSafeInteger().filter((n) => n >= -Number.MAX_SAFE_INTEGER), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), (n, b) => {
        assert.equal(asNumber.decode(asNumber.encode(n)), n);
        assert.equal(asBigInt.decode(asBigInt.encode(b)), b);
        assert.equal(asBigInt.decode(asNumber.encode(n)), BigInt(n));
        if (b > BigInt(Number.MAX_SAFE_INTEGER) || b < -BigInt(Number.MAX_SAFE_INTEGER)) {
          throwsCodec(() => asNumber.decode(asBigInt.encode(b)), 'decode', [/beyond ±\(2\^53 - 1\).*longs: 'bigint'/]);
        } else {
          assert.equal(asNumber.decode(asBigInt.encode(b)), Number(b));
        }
      }),
      { numRuns: 500 },
    );
    throwsCodec(() => asNumber.encode(2 ** 60), 'encode', ['expected long']);
    throwsCodec(() => asNumber.encode(1.5), 'encode', ['expected long']);
    // Truncated inside a long, short or long varint; a varint that never ends.
    throwsCodec(() => asNumber.decode(Buffer.from([0x81, 0x80])), 'decode', ['truncated Avro payload']);
    throwsCodec(() => asBigInt.decode(Buffer.from(asBigInt.encode(2n ** 62n)).subarray(0, 8)), 'decode', ['truncated Avro payload']);
    throwsCodec(() => asBigInt.decode(Buffer.alloc(11, 0xff)), 'decode', ['bad Avro data', 'longer than 10 bytes']);
    // Promotions: an int written, read as a long; a long written, read as a double.
    const registry = codecs.schemaRegistry.memory({ isolated: true });
    const rec = (t: string): object => ({ type: 'record', name: 'R', fields: [{ name: 'n', type: t }] });
    const asInt = codecs.avro<{ n: number }>({ schema: rec('int'), registry });
    const asLong = codecs.avro<{ n: number }>({ schema: rec('long'), registry });
    const asDouble = codecs.avro<{ n: number }>({ schema: rec('double'), registry });
    assert.equal(asLong.decode(asInt.encode({ n: -123456 })).n, -123456);
    assert.equal(asDouble.decode(asLong.encode({ n: -(2 ** 40) - 3 })).n, -(2 ** 40) - 3);
    assert.equal(asLong.decode(asLong.encode({ n: -(2 ** 52) - 1 })).n, -(2 ** 52) - 1);
  });

  it('encodes records larger than its scratch buffer', () => {
    const codec = codecs.avro<UserV1>({ schema: userV1, registry: codecs.schemaRegistry.memory({ isolated: true }) });
    for (const n of [10, 5000, 200_000, 3]) {
      const rec = { id: n, name: 'é'.repeat(n), legacy: 'l' };
      assert.deepEqual(plain(codec.decode(codec.encode(rec))), rec);
    }
  });

  it('refuses a schema that is not Avro, and bad options', () => {
    assert.throws(() => codecs.avro({ type: 'record', name: 'X', fields: [{ name: 'a', type: 'nope' }] }), isWeirError('WEIR_INVALID_ARGUMENT', 'schema is not a valid Avro schema', 'nope'));
    assert.throws(() => codecs.avro({ schema: userV1, wireFormat: 'magic' as 'raw' }), isWeirError('WEIR_INVALID_ARGUMENT', 'wireFormat'));
    assert.throws(() => codecs.avro({ schema: userV1, registry: {} as SchemaRegistry }), isWeirError('WEIR_INVALID_ARGUMENT', 'registry must have'));
  });
});

const shopProto = `
syntax = "proto3";
package shop;
enum Status { NEW = 0; PAID = 1; SHIPPED = 2; }
message Item { string sku = 1; int32 qty = 2; }
message Order {
  int64 id = 1;
  string customer = 2;
  repeated Item items = 3;
  Status status = 4;
  map<string, int32> tags = 5;
  bytes blob = 6;
  double total = 7;
  uint64 big = 8;
  oneof payment { string card = 9; string iban = 10; }
}
`;
interface Order {
  id: string;
  customer: string;
  items: { sku: string; qty: number }[];
  status: 'NEW' | 'PAID' | 'SHIPPED';
  tags: Record<string, number>;
  blob: Uint8Array;
  total: number;
  big: string;
  card?: string;
  iban?: string;
}
const orderArb = fc.record({
  id: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map(String),
  customer: fc.string({ unit: 'binary' }),
  items: fc.array(fc.record({ sku: fc.string(), qty: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }) }), { maxLength: 4 }),
  status: fc.constantFrom('NEW' as const, 'PAID' as const, 'SHIPPED' as const),
  tags: fc.dictionary(fc.stringMatching(/^[a-z]{1,6}$/), fc.integer({ min: -1000, max: 1000 }), { maxKeys: 4 }),
  blob: fc.uint8Array({ maxLength: 16 }).map((a) => Buffer.from(a)),
  total: fc.double(),
  big: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map(String),
});

describe('codecs.protobuf', () => {
  it('round-trips messages (property): longs as strings, enums as names, bytes as Buffers', () => {
    const codec = codecs.protobuf<Order>({ type: 'shop.Order', proto: shopProto });
    assert.equal(codec.name, 'protobuf(shop.Order)');
    fc.assert(
      fc.property(orderArb, fc.option(fc.constantFrom('card', 'iban'), { nil: undefined }), (order, pay) => {
        const input: Order = pay === undefined ? order : { ...order, [pay]: 'x' };
        assert.deepEqual(plain(codec.decode(codec.encode(input))), plain(input));
      }),
      { numRuns: 300 },
    );
  });

  it('loads .proto files, JSON descriptors and roots alike', async () => {
    const file = join(dir, 'shop.proto');
    await writeFile(file, shopProto);
    const fromFile = codecs.protobuf<Order>({ type: 'shop.Order', files: file });
    const fromText = codecs.protobuf<Order>({ type: 'shop.Order', proto: shopProto });
    const root = (await import('protobufjs')).default.loadSync(file);
    const fromDescriptor = codecs.protobuf<Order>({ type: 'shop.Order', descriptor: root.toJSON() });
    const fromRoot = codecs.protobuf<Order>({ type: 'shop.Order', root });
    const order = fc.sample(orderArb, { numRuns: 1, seed: 7 })[0];
    const bytes = Buffer.from(fromFile.encode(order));
    for (const c of [fromText, fromDescriptor, fromRoot]) {
      assert.deepEqual(Buffer.from(c.encode(order)), bytes);
      assert.deepEqual(plain(c.decode(bytes)), plain(order));
    }
    // Known wire bytes: field 1 (id, varint) = 150 → 08 96 01.
    const small = codecs.protobuf({ type: 'shop.Item', root });
    assert.deepEqual([...small.encode({ sku: 'a', qty: 150 })], [0x0a, 0x01, 0x61, 0x10, 0x96, 0x01]);
  });

  it('maps to plain objects as configured: defaults, longs, enums', () => {
    const base = { type: 'shop.Order', proto: shopProto };
    const empty = new Uint8Array(0);
    assert.deepEqual(plain(codecs.protobuf(base).decode(empty)), {
      id: '0', customer: '', items: [], status: 'NEW', tags: {}, blob: Buffer.alloc(0), total: 0, big: '0',
    });
    assert.deepEqual(codecs.protobuf({ ...base, defaults: false }).decode(empty), { items: [], tags: {} });
    const msg = { id: '9007199254740993', status: 'PAID', big: 5n };
    assert.equal((codecs.protobuf<{ id: bigint }>({ ...base, longs: 'bigint' }).decode(codecs.protobuf(base).encode(msg))).id, 9007199254740993n);
    assert.equal((codecs.protobuf<{ id: number }>({ ...base, longs: 'number' }).decode(codecs.protobuf(base).encode({ id: 42 }))).id, 42);
    assert.equal((codecs.protobuf<{ status: number }>({ ...base, enums: 'number' }).decode(codecs.protobuf(base).encode(msg))).status, 1);
    // 64-bit integers at any depth: nested, repeated, map values, recursive types.
    const tree = codecs.protobuf<Record<string, unknown>>({
      type: 't.Tree',
      proto: 'syntax = "proto3"; package t; message Tree { int64 v = 1; repeated Tree kids = 2; map<string, sint64> m = 3; repeated fixed64 f = 4; uint64 u = 5; }',
    });
    const t = { v: '-9223372036854775808', kids: [{ v: '1', kids: [{ v: '-2', kids: [], m: { a: '9007199254740993' }, f: [], u: '0' }], m: {}, f: ['18446744073709551615'], u: '18446744073709551615' }], m: { x: '-9007199254740993', y: '5' }, f: ['0', '4294967296'], u: '9007199254740992' };
    assert.deepEqual(tree.decode(tree.encode(t)), t);
    // Encoding accepts enum numbers, and longs as numbers, strings or bigints.
    const c = codecs.protobuf<Record<string, unknown>>(base);
    assert.deepEqual(c.decode(c.encode({ status: 2, id: 7, big: 8n })), c.decode(c.encode({ status: 'SHIPPED', id: '7', big: '8' })));
  });

  it('verifies before encoding and names the field', () => {
    const c = codecs.protobuf<Record<string, unknown>>({ type: 'shop.Order', proto: shopProto });
    throwsCodec(() => c.encode({ items: [{ sku: 'a', qty: 1 }, { sku: 'b', qty: '2' }] }), 'encode', ['protobuf(shop.Order): cannot encode: field items[1].qty: expected int32, got a string ("2")'], 'items[1].qty');
    throwsCodec(() => c.encode({ status: 'LOST' }), 'encode', ['expected Status (one of NEW, PAID, SHIPPED), got a string ("LOST")'], 'status');
    throwsCodec(() => c.encode({ custmer: 'typo' }), 'encode', ['unknown field: Order has id, customer'], 'custmer');
    throwsCodec(() => c.encode({ items: [{ sku: 'a', qty: 2 ** 31 }] }), 'encode', ['expected int32'], 'items[0].qty');
    throwsCodec(() => c.encode({ id: '12abc' }), 'encode', ['expected int64'], 'id');
    throwsCodec(() => c.encode({ id: 2 ** 60 }), 'encode', ['expected int64'], 'id');
    throwsCodec(() => c.encode({ big: '-1' }), 'encode', ['expected uint64'], 'big');
    throwsCodec(() => c.encode({ card: 'x', iban: 'y' }), 'encode', ['oneof payment has more than one field set (card, iban)'], 'payment');
    throwsCodec(() => c.encode({ tags: { a: 1.5 } }), 'encode', ['expected int32, got number 1.5'], 'tags["a"]');
    throwsCodec(() => c.encode({ items: {} }), 'encode', ['expected an array'], 'items');
    throwsCodec(() => c.encode('order' as unknown as Record<string, unknown>), 'encode', ['expected a Order message (an object)']);
    const lenient = codecs.protobuf<Record<string, unknown>>({ type: 'shop.Order', proto: shopProto, rejectUnknownFields: false });
    assert.deepEqual(lenient.decode(lenient.encode({ customer: 'c', extra: 1 })).customer, 'c');
  });

  it('fails decoding bytes that are not a message of the type', () => {
    const c = codecs.protobuf<Order>({ type: 'shop.Order', proto: shopProto });
    const bytes = Buffer.from(c.encode({ ...fc.sample(orderArb, { numRuns: 1, seed: 3 })[0], customer: 'a long enough customer name' }));
    throwsCodec(() => c.decode(bytes.subarray(0, bytes.length - 3)), 'decode', ['protobuf(shop.Order): cannot decode: not a Order message', /index out of range/]);
    throwsCodec(() => c.decode(Buffer.from([0x0f, 0x01])), 'decode', ['not a Order message', /wire type/]);
    const p2 = codecs.protobuf({ type: 'x.Req', proto: 'syntax = "proto2"; package x; message Req { required string name = 1; optional int32 n = 2; }' });
    throwsCodec(() => p2.decode(Buffer.from([0x10, 0x01])), 'decode', ['field name: required field missing'], 'name');
    throwsCodec(() => p2.encode({ n: 1 }), 'encode', ['required field missing'], 'name');
  });

  it('refuses bad options with a clear reason', () => {
    assert.throws(() => codecs.protobuf({ type: 'shop.Ordr', proto: shopProto }), isWeirError('WEIR_INVALID_ARGUMENT', 'no message type shop.Ordr', 'shop.Item, shop.Order'));
    assert.throws(() => codecs.protobuf({ type: 'shop.Order' }), isWeirError('WEIR_INVALID_ARGUMENT', 'exactly one of root, files, descriptor, proto (got none)'));
    assert.throws(() => codecs.protobuf({ type: 'shop.Order', files: join(dir, 'missing.proto') }), isWeirError('WEIR_INVALID_ARGUMENT', 'cannot load the definitions from files', 'missing.proto'));
    assert.throws(() => codecs.protobuf({ type: 'a.B', proto: 'syntax = "proto3"; message {' }), isWeirError('WEIR_INVALID_ARGUMENT', 'cannot load the definitions from proto'));
    assert.throws(() => codecs.protobuf({ type: 'shop.Order', proto: shopProto, longs: 'long' as 'string' }), isWeirError('WEIR_INVALID_ARGUMENT', 'longs'));
    assert.throws(() => codecs.protobuf({ type: 'a.B', proto: 'syntax = "proto3"; package a; message B { Missing m = 1; }' }), isWeirError('WEIR_INVALID_ARGUMENT', 'do not resolve', 'Missing'));
  });
});

describe('CodecError', () => {
  it('carries the codec, direction, reason and field', () => {
    const e = new CodecError('avro(User)', 'decode', 'expected int', { field: 'a.b' });
    assert.ok(e instanceof Error);
    assert.equal(e.name, 'CodecError');
    assert.equal(e.message, 'avro(User): cannot decode: field a.b: expected int');
    assert.deepEqual([e.codec, e.direction, e.reason, e.field], ['avro(User)', 'decode', 'expected int', 'a.b']);
    assert.equal(new CodecError('json', 'encode', 'x').field, undefined);
  });
});

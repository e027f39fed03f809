/**
 * sources.file / sinks.file with codecs: round trips through real pipelines in both framings, bad
 * records dead-lettered with their position while the rest is read, corrupt framing, resuming from a
 * saved position, and the codec option of the JSONL source and sink.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { pino } from 'pino';
import {
  MemoryCheckpointStorage,
  MemorySchemaRegistry,
  Pipeline,
  WeirError,
  codecs,
  sinks,
  sources,
  systemClock,
  type Codec,
  type DeadLetter,
  type FileFraming,
  type FileRawRecord,
  type SchemaRegistry,
  type Source,
  type SourceContext,
} from '../src/index.js';

let dir = '';
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'weir-file-codecs-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

let fileCount = 0;
function tmp(name: string): string {
  return join(dir, `${++fileCount}-${name}`);
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

function stubContext(rejected: unknown[][]): SourceContext {
  return {
    name: 'stub',
    logger: pino({ level: 'silent' }),
    clock: systemClock,
    signal: new AbortController().signal,
    reject: (raw, reason, cause) => void rejected.push([raw, reason, cause]),
  };
}

function plain(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(plain);
  if (v instanceof Uint8Array) return Buffer.from(v);
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

/** Length-prefixed framing by hand: 4-byte big-endian length + bytes. */
function frame(...records: Uint8Array[]): Buffer {
  return Buffer.concat(records.flatMap((r) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(r.length);
    return [len, Buffer.from(r)];
  }));
}

interface Txn { id: number; card: string; amount: number }
const txnSchema = {
  type: 'record',
  name: 'Txn',
  namespace: 'test',
  fields: [
    { name: 'id', type: 'long' },
    { name: 'card', type: 'string' },
    { name: 'amount', type: 'double' },
  ],
};
const txnProto = 'syntax = "proto3"; package test; message Txn { int64 id = 1; string card = 2; double amount = 3; }';
const txns = (n: number): Txn[] => Array.from({ length: n }, (_, i) => ({ id: i, card: `c${i % 7}é`, amount: i * 1.25 }));

/** Runs items → sinks.file(codec) → file, then file → sources.file(codec) → collected. */
async function roundTrip<T>(items: T[], codec: () => Codec<T>, framing: FileFraming | undefined, batchSize = 64): Promise<{ got: T[]; path: string }> {
  const path = tmp('rt.bin');
  const w = new Pipeline({ name: 'file-write', batchSize });
  w.source(sources.array(items)).sink(sinks.file(path, framing === undefined ? { codec: codec() } : { codec: codec(), framing }));
  assert.equal((await w.run()).status, 'finished');
  const got: T[] = [];
  const r = new Pipeline({ name: 'file-read', batchSize });
  r.source(sources.file(path, framing === undefined ? { codec: codec(), highWaterMark: 97 } : { codec: codec(), framing, highWaterMark: 97 })).sink(sinks.collect(got));
  assert.equal((await r.run()).status, 'finished');
  return { got, path };
}

describe('sources.file and sinks.file', () => {
  it('round-trips every codec through a pipeline, in both framings (small chunks split records)', async () => {
    const items = txns(500);
    const registry = codecs.schemaRegistry.memory({ isolated: true });
    const cases: [string, () => Codec<Txn>, FileFraming | undefined][] = [
      ['json, lines (default)', () => codecs.json<Txn>(), undefined],
      ['json, length-prefixed', () => codecs.json<Txn>(), 'length-prefixed'],
      ['avro, length-prefixed (default)', () => codecs.avro<Txn>({ schema: txnSchema, registry }), undefined],
      ['protobuf, length-prefixed', () => codecs.protobuf<Txn>({ type: 'test.Txn', proto: txnProto, longs: 'number' }), 'length-prefixed'],
    ];
    for (const [what, codec, framing] of cases) {
      const { got } = await roundTrip(items, codec, framing);
      assert.deepEqual(plain(got), plain(items), what);
    }
    const strings = ['a', '', 'b c', 'ünï', 'x'.repeat(1000)];
    const { got, path } = await roundTrip(strings, () => codecs.string(), 'lines');
    assert.deepEqual(got, strings.filter((s) => s !== ''), 'empty lines are skipped');
    assert.equal(await readFile(path, 'utf8'), `${strings.join('\n')}\n`);
  });

  it('writes exactly the framing it documents', async () => {
    const path = tmp('wire.bin');
    const registry = codecs.schemaRegistry.memory({ isolated: true });
    const p = new Pipeline({ name: 'file-wire' });
    p.source(sources.array([{ id: 1, card: 'a', amount: 0.5 }])).sink(sinks.file(path, { codec: codecs.avro<Txn>({ schema: txnSchema, registry }) }));
    await p.run();
    const bytes = await readFile(path);
    assert.equal(bytes.readUInt32BE(0), bytes.length - 4, 'a 4-byte big-endian length');
    assert.deepEqual([...bytes.subarray(4, 9)], [0, 0, 0, 0, 1], 'then the Confluent header');
    const lines = tmp('wire.jsonl');
    const q = new Pipeline({ name: 'file-wire-lines' });
    q.source(sources.array([{ a: 1 }, { a: 2 }])).sink(sinks.file(lines, { codec: codecs.json() }));
    await q.run();
    assert.equal(await readFile(lines, 'utf8'), '{"a":1}\n{"a":2}\n');
  });

  it('reads any split of records into chunks and batches (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 60 }),
        fc.integer({ min: 1, max: 50 }),
        fc.integer({ min: 1, max: 17 }),
        async (records, hwm, max) => {
          const path = tmp('prop.bin');
          await writeFile(path, frame(...records));
          const src = sources.file(path, { codec: codecs.bytes(), highWaterMark: hwm });
          const rejected: unknown[][] = [];
          await src.open?.(stubContext(rejected));
          const got: Buffer[] = [];
          for (;;) {
            const batch = await src.poll(max);
            if (batch === null) break;
            assert.ok(batch.length <= max);
            for (const b of batch) got.push(Buffer.from(b));
          }
          await src.close?.();
          assert.deepEqual(got, records.map((r) => Buffer.from(r)));
          assert.deepEqual(rejected, []);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('sends a corrupt line to the dead-letter sink with its line and offset, and reads the rest', async () => {
    const path = tmp('bad.jsonl');
    const lines = ['{"id":1,"card":"a","amount":1}', '{"id":2,"card":"b","amount":2}', '{"id":3,"card":7,"amount":3}', '{oops', '', '{"id":6,"card":"f","amount":6}'];
    await writeFile(path, lines.join('\r\n'));
    const got: Txn[] = [];
    const dlq: DeadLetter[] = [];
    const p = new Pipeline({ name: 'file-bad-lines' });
    const codec = codecs.json<Txn>({ fields: { id: 'integer', card: 'string', amount: 'number' } });
    p.source(sources.file(path, { codec }), { onError: { deadLetter: sinks.collect(dlq) } }).sink(sinks.collect(got));
    assert.equal((await p.run()).status, 'finished');
    assert.deepEqual(got.map((t) => t.id), [1, 2, 6]);
    assert.equal(dlq.length, 2);
    const offsetOf = (i: number): number => Buffer.byteLength(lines.slice(0, i).join('\r\n')) + (i > 0 ? 2 : 0);
    assert.deepEqual(dlq.map((d) => d.record as FileRawRecord), [
      { offset: offsetOf(2), line: 3, text: lines[2] },
      { offset: offsetOf(3), line: 4, text: '{oops' },
    ]);
    assert.equal(dlq[0].code, 'WEIR_DECODE_FAILED');
    assert.equal(dlq[0].reason, `${path} line 3 (byte ${offsetOf(2)}): json: cannot decode: field card: expected string, got number 7`);
    assert.match(dlq[1].reason, /line 4 \(byte \d+\): json: cannot decode: invalid JSON/);

    // The default policy fails the job, naming the file, the line and the field.
    const q = new Pipeline({ name: 'file-bad-lines-fail' });
    const got2: Txn[] = [];
    q.source(sources.file(path, { codec })).sink(sinks.collect(got2));
    await assert.rejects(q.run(), isWeirError('WEIR_DECODE_FAILED', path, 'line 3', 'field card'));
    assert.deepEqual(got2.map((t) => t.id), [1, 2], 'the records before it go out; nothing after it');
  });

  it('sends a corrupt length-prefixed record and a truncated last one to the dead-letter sink, and reads the rest', async () => {
    const registry = codecs.schemaRegistry.memory({ isolated: true });
    const codec = codecs.avro<Txn>({ schema: txnSchema, registry });
    const good = txns(6).map((t) => codec.encode(t));
    const corrupt = Buffer.from(good[2]);
    corrupt[0] = 0x7b; // not the magic byte
    const cut = Buffer.from(good[5]).subarray(0, 3);
    const body = Buffer.concat([frame(good[0], good[1], corrupt, good[3], good[4]), Buffer.from([0, 0, 0, good[5].length]), cut]);
    const path = tmp('bad.avro');
    await writeFile(path, body);

    const got: Txn[] = [];
    const dlq: DeadLetter[] = [];
    const p = new Pipeline({ name: 'file-bad-prefixed' });
    p.source(sources.file(path, { codec: codecs.avro<Txn>({ schema: txnSchema, registry }) }), { onError: { deadLetter: sinks.collect(dlq) } }).sink(sinks.collect(got));
    assert.equal((await p.run()).status, 'finished');
    assert.deepEqual(got.map((t) => t.id), [0, 1, 3, 4]);
    assert.equal(dlq.length, 2);
    const at = (i: number): number => good.slice(0, i).reduce((n, g) => n + 4 + g.length, 0);
    assert.deepEqual(dlq[0].record, { offset: at(2), index: 3, bytes: corrupt });
    assert.equal(dlq[0].reason, `${path} record 3 (byte ${at(2)}): avro(test.Txn): cannot decode: bad magic byte 0x7b (the Confluent wire format starts with 0x00)`);
    assert.deepEqual(dlq[1].record, { offset: at(5), index: 6, bytes: cut });
    assert.match(dlq[1].reason, new RegExp(`record 6 \\(byte ${at(5)}\\): truncated: the length prefix says ${good[5].length} bytes, the file ends after 3`));
  });

  it('fails the job on a corrupt length prefix, after the records before it, whatever the policy', async () => {
    const json = codecs.json();
    const path = tmp('framing.bin');
    await writeFile(path, Buffer.concat([frame(json.encode(1), json.encode(2)), Buffer.from([0x7f, 0xff, 0xff, 0xff]), Buffer.from('{"rest":1}')]));
    const got: unknown[] = [];
    const dlq: DeadLetter[] = [];
    const p = new Pipeline({ name: 'file-bad-framing' });
    p.source(sources.file(path, { codec: json, framing: 'length-prefixed', maxRecordBytes: 1 << 20 }), { onError: { deadLetter: sinks.collect(dlq) } }).sink(sinks.collect(got));
    await assert.rejects(p.run(), isWeirError('WEIR_DECODE_FAILED', path, 'record 3 (byte 10)', 'length prefix 2147483647 is larger than maxRecordBytes', 'framing is corrupt'));
    assert.deepEqual(got, [1, 2]);
  });

  it('resumes from a saved position: every record once, in both framings (property)', async () => {
    const items = txns(40);
    const files: Record<FileFraming, string> = { lines: tmp('resume.jsonl'), 'length-prefixed': tmp('resume.bin') };
    const json = codecs.json<Txn>();
    await writeFile(files.lines, items.map((t) => JSON.stringify(t)).join('\n\n'));
    await writeFile(files['length-prefixed'], frame(...items.map((t) => json.encode(t))));
    await fc.assert(
      fc.asyncProperty(fc.constantFrom<FileFraming>('lines', 'length-prefixed'), fc.integer({ min: 0, max: 45 }), fc.integer({ min: 1, max: 60 }), fc.integer({ min: 1, max: 9 }), async (framing, stopAfter, hwm, max) => {
        const read = async (position: unknown, limit: number): Promise<{ got: Txn[]; position: unknown }> => {
          const src = sources.file(files[framing], { codec: json, framing, highWaterMark: hwm });
          await src.open?.(stubContext([]));
          if (position !== undefined) await src.seek?.(position);
          const got: Txn[] = [];
          while (got.length < limit) {
            const batch = await src.poll(Math.min(max, limit - got.length));
            if (batch === null) break;
            got.push(...batch);
          }
          const pos = src.savePosition?.();
          await src.close?.();
          return { got, position: pos };
        };
        const first = await read(undefined, stopAfter);
        const rest = await read(JSON.parse(JSON.stringify(first.position)), Infinity);
        assert.deepEqual([...first.got, ...rest.got].map((t) => t.id), items.map((t) => t.id));
      }),
      { numRuns: 120 },
    );
    const src = sources.file(files.lines, { codec: json });
    assert.throws(() => src.seek?.({ line: 3 }), isWeirError('WEIR_INVALID_ARGUMENT', 'cannot resume from'));
  });

  it('resumes a checkpointed job stopped mid-file: every record exactly once across the two runs', async () => {
    const registry = codecs.schemaRegistry.memory({ isolated: true });
    const path = tmp('resume-job.avro');
    const items = txns(5000);
    const w = new Pipeline({ name: 'file-resume-write' });
    w.source(sources.array(items)).sink(sinks.file(path, { codec: codecs.avro<Txn>({ schema: txnSchema, registry }) }));
    await w.run();
    const storage = new MemoryCheckpointStorage();
    const job = (out: number[], stopAtPoll?: number): Pipeline => {
      const p: Pipeline = new Pipeline({ name: 'file-resume', batchSize: 100, checkpoint: { storage, interval: '5ms' } });
      const src = sources.file(path, { codec: codecs.avro<Txn>({ schema: txnSchema, registry }), highWaterMark: 1000 });
      let polls = 0;
      const wrapped: Source<Txn> = {
        name: src.name,
        open: (ctx) => src.open?.(ctx),
        poll: (max) => (++polls === stopAtPoll ? (void p.stop(), src.poll(max)) : src.poll(max)),
        close: () => src.close?.(),
        savePosition: () => src.savePosition(),
        seek: (pos) => src.seek(pos),
      };
      p.source(wrapped).map((t) => t.id).sink(sinks.collect(out));
      return p;
    };
    const first: number[] = [];
    assert.equal((await job(first, 12).run()).status, 'stopped');
    assert.ok(first.length > 0 && first.length < items.length, `first run read ${first.length}`);
    const second: number[] = [];
    assert.equal((await job(second).run()).status, 'finished');
    assert.deepEqual([...first, ...second], items.map((t) => t.id));
  });

  it('fetches unknown writer schemas once per batch, and reads old records as the new schema', async () => {
    const inner = new MemorySchemaRegistry();
    const lookups: number[] = [];
    const registry: SchemaRegistry = { register: (s, x) => inner.register(s, x), lookup: async (id) => (lookups.push(id), inner.lookup(id)) };
    const v1 = { ...txnSchema };
    const v2 = { ...txnSchema, fields: [...txnSchema.fields, { name: 'currency', type: 'string', default: 'EUR' }] };
    const path = tmp('evolve.avro');
    const w = new Pipeline({ name: 'file-evolve-write' });
    w.source(sources.array(txns(300))).sink(sinks.file(path, { codec: codecs.avro<Txn>({ schema: v1, registry, subject: 'txns' }) }));
    await w.run();
    const got: (Txn & { currency: string })[] = [];
    const r = new Pipeline({ name: 'file-evolve-read', batchSize: 50 });
    r.source(sources.file(path, { codec: codecs.avro<Txn & { currency: string }>({ schema: v2, registry, subject: 'txns' }) })).sink(sinks.collect(got));
    await r.run();
    assert.equal(got.length, 300);
    assert.deepEqual(plain(got[299]), { id: 299, card: 'c5é', amount: 373.75, currency: 'EUR' });
    assert.deepEqual(lookups, [1], 'the v1 schema is looked up once, not per record or per batch');
  });

  it('fails a record the sink codec cannot encode with WEIR_ENCODE_FAILED, naming the field', async () => {
    const registry = codecs.schemaRegistry.memory({ isolated: true });
    const path = tmp('enc.avro');
    const p = new Pipeline({ name: 'file-encode-fail' });
    const bad = { id: 2, card: 42, amount: 1 } as unknown as Txn;
    p.source(sources.array([{ id: 1, card: 'a', amount: 1 }, bad])).sink(sinks.file(path, { codec: codecs.avro<Txn>({ schema: txnSchema, registry }) }));
    await assert.rejects(p.run(), (e: unknown) => {
      isWeirError('WEIR_ENCODE_FAILED', path, 'avro(test.Txn): cannot encode: field card: expected string, got number 42')(e);
      assert.deepEqual((e as WeirError).record, bad);
      assert.equal((e as WeirError).domain, 'user');
      assert.equal((e as WeirError).retryable, false);
      return true;
    });
    const q = new Pipeline({ name: 'file-encode-lf' });
    q.source(sources.array(['one', 'two\nthree'])).sink(sinks.file(tmp('lf.txt'), { codec: codecs.string() }));
    await assert.rejects(q.run(), isWeirError('WEIR_ENCODE_FAILED', 'line feed inside', "framing 'length-prefixed'"));
  });

  it('refuses bad options', () => {
    const avro = codecs.avro({ schema: txnSchema, registry: codecs.schemaRegistry.memory({ isolated: true }) });
    assert.throws(() => sources.file('x.bin', { codec: avro, framing: 'lines' }), isWeirError('WEIR_INVALID_ARGUMENT', 'cannot be split into lines'));
    assert.throws(() => sinks.file('x.bin', { codec: avro, framing: 'lines' }), isWeirError('WEIR_INVALID_ARGUMENT', 'cannot be split into lines'));
    assert.throws(() => sources.file('x.bin', {} as { codec: Codec<unknown> }), isWeirError('WEIR_INVALID_ARGUMENT', 'a codec is required'));
    assert.throws(() => sinks.file('x.bin', { codec: codecs.json(), framing: 'csv' as FileFraming }), isWeirError('WEIR_INVALID_ARGUMENT', 'framing must be'));
    assert.throws(() => sources.file('', { codec: codecs.json() }), isWeirError('WEIR_INVALID_ARGUMENT', 'expected a file path'));
  });

  it('fails with the path when the input file is missing', async () => {
    const missing = join(dir, 'nope', 'missing.bin');
    const p = new Pipeline({ name: 'file-missing' });
    p.source(sources.file(missing, { codec: codecs.bytes() })).sink(sinks.collect<Uint8Array>([]));
    await assert.rejects(p.run(), isWeirError('WEIR_SOURCE_FAILED', missing, 'no such file'));
  });
});

describe('sources.jsonl / sinks.jsonl with a codec', () => {
  it('validates lines with codecs.json and dead-letters the ones that fail, naming the field', async () => {
    const path = tmp('codec.jsonl');
    await writeFile(path, '{"id":1,"card":"a","amount":1}\n{"id":"2","card":"b","amount":2}\n{"id":3,"card":"c","amount":3}\n');
    const got: Txn[] = [];
    const dlq: DeadLetter[] = [];
    const p = new Pipeline({ name: 'jsonl-codec' });
    p.source(sources.jsonl<Txn>(path, { codec: codecs.json<Txn>({ fields: { id: 'integer', card: 'string', amount: 'number' } }) }), { onError: { deadLetter: sinks.collect(dlq) } }).sink(sinks.collect(got));
    await p.run();
    assert.deepEqual(got.map((t) => t.id), [1, 3]);
    assert.equal(dlq.length, 1);
    assert.deepEqual(dlq[0].record, { line: 2, text: '{"id":"2","card":"b","amount":2}' });
    assert.match(dlq[0].reason, /line 2: rejected by codec: json: cannot decode: field id: expected integer, got a string \("2"\)/);
    assert.throws(() => sources.jsonl(path, { codec: codecs.avro({ schema: txnSchema }) as Codec<unknown> }), isWeirError('WEIR_INVALID_ARGUMENT', 'text codec'));
  });

  it('writes through codecs.json and fails with WEIR_ENCODE_FAILED on a record it rejects', async () => {
    const path = tmp('codec-out.jsonl');
    const codec = codecs.json<Txn>({ fields: { id: 'integer', card: 'string', amount: 'number' } });
    const p = new Pipeline({ name: 'jsonl-codec-out' });
    p.source(sources.array(txns(2))).sink(sinks.jsonl(path, { codec }));
    await p.run();
    assert.equal(await readFile(path, 'utf8'), '{"id":0,"card":"c0é","amount":0}\n{"id":1,"card":"c1é","amount":1.25}\n');
    const q = new Pipeline({ name: 'jsonl-codec-out-bad' });
    q.source(sources.array([{ id: 1.5, card: 'x', amount: 1 }])).sink(sinks.jsonl(tmp('bad-out.jsonl'), { codec }));
    await assert.rejects(q.run(), isWeirError('WEIR_ENCODE_FAILED', 'field id: expected integer, got number 1.5'));
    assert.throws(() => sinks.jsonl(path, { codec, format: String }), isWeirError('WEIR_INVALID_ARGUMENT', 'not both'));
  });
});

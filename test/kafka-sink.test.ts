/**
 * sinks.kafka against the real broker: at-least-once writes with keys, headers and timestamps; an
 * exactly-once job's output is visible (read_committed, Kafka's Java client) only once its checkpoints
 * commit; an exactly-once sink needs checkpoints; a record the codec refuses fails with its reason.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { Pipeline, WeirError, codecs, sinks, sources } from '../src/index.js';
import { kafkaBrokers, type KafkaBrokers } from './kafka-broker.js';
import { committedRecords } from './kafka-java-reader.js';

describe('sinks.kafka', () => {
  let broker: KafkaBrokers | null = null;
  let kafka: Kafka;
  let admin: Admin;
  let tmp = '';
  const topics: string[] = [];
  before(async () => {
    tmp = await mkdtemp(path.join(tmpdir(), 'weir-kafka-sink-'));
  });
  after(async () => {
    if (topics.length > 0) await admin?.deleteTopics({ topics }).catch(() => undefined);
    await admin?.disconnect();
    await broker?.stop();
    await rm(tmp, { recursive: true, force: true });
  });

  async function topic(t: TestContext, partitions = 3): Promise<string | null> {
    if (broker === null) {
      broker = await kafkaBrokers(t);
      if (broker === null) return null;
      kafka = new Kafka({ clientId: 'weir-test', brokers: broker.brokers, logLevel: logLevel.NOTHING });
      admin = kafka.admin();
      await admin.connect();
    }
    const name = `weir-sink-${randomUUID()}`;
    await admin.createTopics({ topics: [{ topic: name, numPartitions: partitions, replicationFactor: 1 }], waitForLeaders: true });
    topics.push(name);
    return name;
  }

  it('writes at least once, with keys, headers and event timestamps', async (t) => {
    const out = await topic(t);
    if (out === null) return;
    const records = Array.from({ length: 500 }, (_, i) => ({ id: i, user: `u${i % 7}`, ts: 1_700_000_000_000 + i }));
    const p = new Pipeline({ name: 'alo' });
    p.source(sources.array(records), { timestamp: (r) => r.ts }).sink(sinks.kafka({ brokers: broker!.brokers, topic: out, key: (r) => r.user, headers: (r) => ({ id: String(r.id) }) }));
    await p.run();
    const got: { key: string; value: { id: number }; timestamp: number; header: string; partition: number }[] = [];
    const read = new Pipeline({ name: 'read-back' });
    read.source(sources.kafka<{ id: number; user: string }>({ brokers: broker!.brokers, topics: [out], groupId: `g-${randomUUID()}`, endAt: 'latest' }))
      .map((r) => ({ key: r.key!, value: r.value, timestamp: r.timestamp, header: r.headers.id, partition: r.partition }))
      .sink(sinks.collect(got));
    await read.run();
    assert.equal(got.length, 500);
    assert.deepEqual(got.map((g) => g.value.id).sort((a, b) => a - b), records.map((r) => r.id));
    for (const g of got) {
      assert.equal(g.header, String(g.value.id));
      assert.equal(g.timestamp, 1_700_000_000_000 + g.value.id);
      assert.equal(g.key, `u${g.value.id % 7}`);
    }
    const partitionOf = new Map<string, number>();
    for (const g of got) assert.equal(partitionOf.get(g.key) ?? (partitionOf.set(g.key, g.partition), g.partition), g.partition, 'a key stays in one partition');
  });

  it('exactly once: each checkpoint commits one transaction; read_committed sees every record once', async (t) => {
    const out = await topic(t);
    if (out === null) return;
    const p = new Pipeline({ name: 'eo-sink', batchSize: 50, checkpoint: { dir: path.join(tmp, 'eo'), interval: '20ms' } });
    p.source(sources.generator((i) => ({ i }), { count: 3000, seed: 1 })).sink(sinks.kafka<{ i: number }>({ brokers: broker!.brokers, topic: out, exactlyOnce: true, key: (r) => String(r.i % 10) }));
    await p.run();
    assert.ok((p.lastCheckpoint()?.id ?? 0) > 1, 'several checkpoints');
    const lines = await committedRecords(broker!.brokers, out);
    assert.equal(lines.length, 3000);
    assert.deepEqual(new Set(lines.map((l) => (JSON.parse(l.split('\t')[1]) as { i: number }).i)).size, 3000);
  });

  it('dead letters to a Kafka topic: original bytes and key, headers with the error, operator and origin', async (t) => {
    const input = await topic(t, 1);
    const dlq = await topic(t, 1);
    if (input === null || dlq === null) return;
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: input, messages: [{ key: 'a', value: '{"n": 1}' }, { key: 'b', value: 'not json' }, { key: 'c', value: '{"n": 0}' }, { key: 'd', value: '{"n": 4}' }] });
    await producer.disconnect();
    const out: number[] = [];
    const p = new Pipeline({ name: 'dlq-topic' });
    p.source(sources.kafka<{ n: number }>({ brokers: broker!.brokers, topics: [input], groupId: `g-${randomUUID()}`, endAt: 'latest' }), {
      onError: { deadLetter: sinks.kafkaDeadLetters({ brokers: broker!.brokers, topic: dlq }) },
      name: 'orders',
    })
      .map(
        (r) => {
          if (r.value.n === 0) throw new Error('division by zero');
          return 12 / r.value.n;
        },
        { name: 'divide' },
      )
      .sink(sinks.collect(out));
    await p.run();
    assert.deepEqual(out.sort((a, b) => a - b), [3, 12]);
    const letters: { key: string; value: string; headers: Record<string, string> }[] = [];
    const read = new Pipeline({ name: 'read-dlq' });
    read.source(sources.kafka<string>({ brokers: broker!.brokers, topics: [dlq], groupId: `g-${randomUUID()}`, endAt: 'latest', codec: codecs.string() }))
      .map((r) => ({ key: r.key!, value: r.value, headers: { ...r.headers } }))
      .sink(sinks.collect(letters));
    await read.run();
    letters.sort((a, b) => a.key.localeCompare(b.key));
    assert.equal(letters.length, 2);
    const [undecodable, failed] = letters;
    assert.deepEqual({ key: undecodable.key, value: undecodable.value }, { key: 'b', value: 'not json' }, 'the original bytes and key');
    assert.equal(undecodable.headers['weir.error.code'], 'WEIR_DECODE_FAILED');
    assert.equal(undecodable.headers['weir.error.source'], 'orders');
    assert.deepEqual([undecodable.headers['weir.source.topic'], undecodable.headers['weir.source.partition'], undecodable.headers['weir.source.offset']], [input, '0', '1']);
    assert.equal(failed.key, 'c');
    assert.equal(failed.headers['weir.error.code'], 'WEIR_USER_FUNCTION_FAILED');
    assert.equal(failed.headers['weir.error.operator'], 'divide');
    assert.match(failed.headers['weir.error.reason'], /division by zero/);
    assert.equal(failed.headers['weir.source.offset'], '2');
    assert.equal((JSON.parse(failed.value) as { value: { n: number } }).value.n, 0, 'the record as JSON');
  });

  it('round-trips Avro through Kafka, a v1 writer read as v2 (schema evolution), and Protobuf', async (t) => {
    const out = await topic(t, 2);
    const pb = await topic(t, 2);
    if (out === null || pb === null) return;
    const v1 = { type: 'record', name: 'Click', namespace: 'weir.test', fields: [{ name: 'user', type: 'string' }, { name: 'amount', type: 'long' }] };
    const v2 = {
      type: 'record',
      name: 'Click',
      namespace: 'weir.test',
      fields: [
        { name: 'user', type: 'string' },
        { name: 'cents', type: 'long', aliases: ['amount'] },
        { name: 'country', type: 'string', default: 'NL' },
      ],
    };
    const records = Array.from({ length: 200 }, (_, i) => ({ user: `u${i % 9}`, amount: i * 3 }));
    const w = new Pipeline({ name: 'avro-write' });
    w.source(sources.array(records)).sink(sinks.kafka({ brokers: broker!.brokers, topic: out, codec: codecs.avro<{ user: string; amount: number }>({ schema: v1, subject: `${out}-value` }) }));
    await w.run();
    const got: { user: string; cents: number; country: string }[] = [];
    const r = new Pipeline({ name: 'avro-read' });
    r.source(sources.kafka({ brokers: broker!.brokers, topics: [out], groupId: `g-${randomUUID()}`, endAt: 'latest', codec: codecs.avro<{ user: string; cents: number; country: string }>({ schema: v2, subject: `${out}-value` }) }))
      .map((x) => ({ ...x.value }))
      .sink(sinks.collect(got));
    await r.run();
    const key = (x: { user: string; cents: number }): string => `${x.user}/${x.cents}`;
    assert.deepEqual(got.map(key).sort(), records.map((x) => key({ user: x.user, cents: x.amount })).sort());
    assert.ok(got.every((x) => x.country === 'NL'), 'the field v1 lacks takes its default');

    const proto = 'syntax = "proto3"; package shop; message Order { string id = 1; int64 cents = 2; repeated string items = 3; }';
    const orders = Array.from({ length: 100 }, (_, i) => ({ id: `o${i}`, cents: String(i * 1000), items: [`a${i}`, `b${i}`] }));
    const pw = new Pipeline({ name: 'pb-write' });
    pw.source(sources.array(orders)).sink(sinks.kafka({ brokers: broker!.brokers, topic: pb, codec: codecs.protobuf<(typeof orders)[number]>({ proto, type: 'shop.Order' }) }));
    await pw.run();
    const back: (typeof orders)[number][] = [];
    const pr = new Pipeline({ name: 'pb-read' });
    pr.source(sources.kafka({ brokers: broker!.brokers, topics: [pb], groupId: `g-${randomUUID()}`, endAt: 'latest', codec: codecs.protobuf<(typeof orders)[number]>({ proto, type: 'shop.Order' }) }))
      .map((x) => x.value)
      .sink(sinks.collect(back));
    await pr.run();
    assert.deepEqual(back.sort((a, b) => a.id.localeCompare(b.id)), orders.slice().sort((a, b) => a.id.localeCompare(b.id)));
  });

  it('refuses an exactly-once sink without checkpoints, and a record its codec refuses', async (t) => {
    const out = await topic(t, 1);
    if (out === null) return;
    const p = new Pipeline({ name: 'no-ckpt' });
    p.source(sources.array([{ a: 1 }])).sink(sinks.kafka({ brokers: broker!.brokers, topic: out, exactlyOnce: true }));
    await assert.rejects(p.run(), (e: unknown) => e instanceof WeirError && e.code === 'WEIR_INVALID_PLAN' && /checkpoint/.test(e.message));
    const q = new Pipeline({ name: 'bad-record' });
    q.source(sources.array([{ n: 1 }, { n: 'two' as unknown as number }])).sink(sinks.kafka({ brokers: broker!.brokers, topic: out, codec: codecs.json<{ n: number }>({ fields: { n: 'number' } }) }), { name: 'to-kafka' });
    await assert.rejects(q.run(), (e: unknown) => e instanceof WeirError && e.code === 'WEIR_ENCODE_FAILED' && e.step === 'to-kafka' && /field n/.test(e.message));
  });
});

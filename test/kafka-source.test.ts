/**
 * sources.kafka against the real broker: a bounded read of a 3-partition topic through a keyed window
 * equals a reference computed from what was produced, with per-partition watermarks (one partition
 * far behind the others loses nothing to lateness); undecodable messages go to the dead letters with
 * topic, partition and offset; offsets live in the checkpoints (stopped mid-way and restarted, an
 * exactly-once output holds every result once); startFrom a timestamp.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { Kafka, logLevel, Partitioners, type Admin } from 'kafkajs';
import { Pipeline, agg, sinks, sources, watermarks, windows, type DeadLetter, type KafkaRecord } from '../src/index.js';
import { kafkaBrokers, type KafkaBrokers } from './kafka-broker.js';

interface Click {
  user: string;
  ts: number;
  amount: number;
}

/** Per partition p: 600 clicks; partition 0's event times run 10 minutes behind the others'. */
function clicksOf(partitions: number, perPartition: number): { partition: number; click: Click }[] {
  const out: { partition: number; click: Click }[] = [];
  for (let p = 0; p < partitions; p++) {
    const base = 1_700_000_000_000 + (p === 0 ? 0 : 600_000);
    for (let i = 0; i < perPartition; i++) out.push({ partition: p, click: { user: `u${(i * 7 + p) % 13}`, ts: base + i * 997, amount: 1 + ((i * 31 + p) % 50) } });
  }
  return out;
}

/** Sum per (user, 1-minute window), as lines: what the job must produce. */
function reference(clicks: readonly Click[]): string[] {
  const sums = new Map<string, number>();
  for (const c of clicks) {
    const start = Math.floor(c.ts / 60_000) * 60_000;
    const k = `${c.user}|${start}`;
    sums.set(k, (sums.get(k) ?? 0) + c.amount);
  }
  return [...sums].map(([k, sum]) => {
    const [user, start] = k.split('|');
    return JSON.stringify({ user, start: Number(start), sum });
  }).sort();
}

interface SumRow {
  user: string;
  start: number;
  sum: number;
}

describe('sources.kafka', () => {
  let broker: KafkaBrokers | null = null;
  let kafka: Kafka;
  let admin: Admin;
  let tmp = '';
  const topics: string[] = [];
  before(async () => {
    tmp = await mkdtemp(path.join(tmpdir(), 'weir-kafka-src-'));
  });
  after(async () => {
    if (topics.length > 0) await admin?.deleteTopics({ topics }).catch(() => undefined);
    await admin?.disconnect();
    await broker?.stop();
    await rm(tmp, { recursive: true, force: true });
  });

  /** Connects (or skips); creates a topic with `partitions` and produces `messages` to it. */
  async function topicWith(t: TestContext, partitions: number, messages: { partition: number; value: string; timestamp?: number; key?: string }[]): Promise<string | null> {
    if (broker === null) {
      broker = await kafkaBrokers(t);
      if (broker === null) return null;
      kafka = new Kafka({ clientId: 'weir-test', brokers: broker.brokers, logLevel: logLevel.NOTHING });
      admin = kafka.admin();
      await admin.connect();
    }
    const topic = `weir-src-${randomUUID()}`;
    await admin.createTopics({ topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }], waitForLeaders: true });
    topics.push(topic);
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    for (let i = 0; i < messages.length; i += 500) {
      await producer.send({
        topic,
        messages: messages.slice(i, i + 500).map((m) => ({ partition: m.partition, key: m.key ?? null, value: m.value, ...(m.timestamp === undefined ? {} : { timestamp: String(m.timestamp) }) })),
      });
    }
    await producer.disconnect();
    return topic;
  }

  /** The job: per-user 1-minute sums of the clicks in `topic`, read to its current end. */
  function sumsJob(name: string, topic: string, out: ReturnType<typeof sinks.collect<SumRow>> | ReturnType<typeof sinks.jsonl<SumRow>>, extra: Partial<ConstructorParameters<typeof Pipeline>[0]> = {}): Pipeline {
    const p = new Pipeline({ name, batchSize: 100, ...extra });
    p.source(sources.kafka<Click>({ brokers: broker!.brokers, topics: [topic], groupId: `g-${name}-${randomUUID()}`, endAt: 'latest' }), {
      timestamp: (r) => r.value.ts,
      watermarks: watermarks.ascending(),
      name: 'clicks',
    })
      .map((r) => r.value)
      .keyBy((c) => c.user)
      .window(windows.tumbling('1m'))
      .aggregate(agg.sum((c) => c.amount), { name: 'sums' })
      .map((w): SumRow => ({ user: w.key, start: w.start, sum: w.value }))
      .sink(out);
    return p;
  }

  it('reads every partition to the end; per-partition watermarks lose nothing from a partition far behind', async (t) => {
    const data = clicksOf(3, 600);
    const topic = await topicWith(t, 3, data.map((d) => ({ partition: d.partition, value: JSON.stringify(d.click), key: d.click.user })));
    if (topic === null) return;
    const rows: SumRow[] = [];
    const p = sumsJob('bounded', topic, sinks.collect(rows));
    const r = await p.run();
    assert.equal(r.status, 'finished');
    const late = p.metrics().filter((m) => m.name === 'weir_late_records_total').reduce((a, m) => a + m.value, 0);
    assert.equal(late, 0, 'no record was late: partition 0 held the watermark back');
    assert.deepEqual(rows.map((x) => JSON.stringify(x)).sort(), reference(data.map((d) => d.click)));
  });

  it('sends an undecodable message to the dead letters with its topic, partition and offset, and reads on', async (t) => {
    const good = clicksOf(2, 50);
    const messages = good.map((d) => ({ partition: d.partition, value: JSON.stringify(d.click) }));
    messages.splice(20, 0, { partition: 0, value: '{"user": "u1", "ts": oops' });
    const topic = await topicWith(t, 2, messages);
    if (topic === null) return;
    const rows: KafkaRecord<Click>[] = [];
    const dlq: DeadLetter[] = [];
    const p = new Pipeline({ name: 'dlq' });
    p.source(sources.kafka<Click>({ brokers: broker!.brokers, topics: [topic], groupId: `g-dlq-${randomUUID()}`, endAt: 'latest' }), {
      onError: { deadLetter: sinks.collect(dlq) },
    }).sink(sinks.collect(rows));
    await p.run();
    assert.equal(rows.length, good.length);
    assert.equal(dlq.length, 1);
    const bad = dlq[0];
    assert.equal(bad.code, 'WEIR_DECODE_FAILED');
    const raw = bad.record as { topic: string; partition: number; offset: string; value: string };
    assert.equal(raw.topic, topic);
    assert.equal(raw.partition, 0);
    assert.equal(raw.offset, '20');
    assert.equal(Buffer.from(raw.value, 'base64').toString(), '{"user": "u1", "ts": oops');
    assert.match(bad.reason, new RegExp(`${topic}/0@20: the value cannot be decoded as json`));
  });

  it('keeps offsets in checkpoints: stopped mid-way and restarted, exactly-once output holds every result once', async (t) => {
    const data = clicksOf(3, 1500);
    const topic = await topicWith(t, 3, data.map((d) => ({ partition: d.partition, value: JSON.stringify(d.click) })));
    if (topic === null) return;
    const file = path.join(tmp, 'sums.jsonl');
    const dir = path.join(tmp, 'ckpt');
    const groupId = `g-eo-${randomUUID()}`;
    let seen = 0;
    for (const stopAfter of [1200, 2500, Infinity]) {
      const p = new Pipeline({ name: 'kafka-eo', batchSize: 100, checkpoint: { dir, interval: '30ms' } });
      p.source(sources.kafka<Click>({ brokers: broker!.brokers, topics: [topic], groupId, endAt: 'latest' }), { timestamp: (r) => r.value.ts, name: 'clicks' })
        .map((r) => {
          if (++seen === stopAfter) void p.stop();
          return r.value;
        })
        .keyBy((c) => c.user)
        .window(windows.tumbling('1m'))
        .aggregate(agg.sum((c) => c.amount))
        .map((w): SumRow => ({ user: w.key, start: w.start, sum: w.value }))
        .sink(sinks.jsonl<SumRow>(file, { exactlyOnce: true }));
      const r = await p.run();
      assert.equal(r.status, stopAfter === Infinity ? 'finished' : 'stopped');
      const late = r.metrics.filter((m) => m.name === 'weir_late_records_total').reduce((a, m) => a + m.value, 0);
      assert.equal(late, 0, `no record was late after a restart (run ending at ${stopAfter})`);
    }
    assert.ok(seen < data.length + 3 * 100 + 1, `records were not read again from the start (${seen} read for ${data.length})`);
    const lines = (await readFile(file, 'utf8')).split('\n').filter(Boolean).sort();
    assert.deepEqual(lines, reference(data.map((d) => d.click)));
    // The group's committed offsets follow the checkpoints (monitoring, hand-over).
    const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
    assert.deepEqual(committed.partitions.map((x) => x.offset).sort(), ['1500', '1500', '1500']);
  });

  it('reads a backlog many fetches long (3 MB per partition) to its end', { timeout: 60_000 }, async (t) => {
    const pad = 'x'.repeat(80);
    const messages = Array.from({ length: 60_000 }, (_, i) => ({ partition: i % 3, key: String(i % 1000), value: JSON.stringify({ i, pad }) }));
    const topic = await topicWith(t, 3, messages);
    if (topic === null) return;
    let n = 0;
    let sum = 0;
    const p = new Pipeline({ name: 'backlog', batchSize: 1000 });
    // A sink that takes its time (as a Kafka sink does): kafkajs's fetches run ahead meanwhile.
    p.source(sources.kafka<{ i: number }>({ brokers: broker!.brokers, topics: [topic], groupId: `g-backlog-${randomUUID()}`, endAt: 'latest' })).sink({
      name: 'count',
      async write(items) {
        n += items.length;
        for (const r of items) sum += r.value.i;
        await new Promise((r) => setTimeout(r, 5));
      },
    });
    const r = await p.run();
    assert.equal(r.status, 'finished');
    assert.equal(n, 60_000);
    assert.equal(sum, (60_000 * 59_999) / 2, 'each record once');
  });

  it('a slow sink slows the fetching: what the consumer fetched stays bounded, not the whole backlog', { timeout: 60_000 }, async (t) => {
    const pad = 'x'.repeat(180);
    const messages = Array.from({ length: 60_000 }, (_, i) => ({ partition: i % 3, value: JSON.stringify({ i, pad }) }));
    const topic = await topicWith(t, 3, messages);
    if (topic === null) return;
    // The consumer the source makes, watched: how many records kafkajs handed over to it.
    let fetched = 0;
    const client = {
      admin: () => kafka.admin(),
      producer: (cfg?: Parameters<Kafka['producer']>[0]) => kafka.producer(cfg),
      consumer: (cfg: Parameters<Kafka['consumer']>[0]) => {
        const c = kafka.consumer(cfg);
        c.on(c.events.START_BATCH_PROCESS, (e) => (fetched += e.payload.batchSize));
        return c;
      },
    };
    let written = 0;
    let maxAhead = 0;
    const p = new Pipeline({ name: 'slow-sink', batchSize: 100 });
    p.source(sources.kafka<{ i: number }>({ client, topics: [topic], groupId: `g-slow-${randomUUID()}` })).sink({
      name: 'slow',
      async write(items) {
        written += items.length;
        maxAhead = Math.max(maxAhead, fetched - written);
        await new Promise((r) => setTimeout(r, 20));
        if (written >= 5_000) void p.stop();
      },
    });
    await p.run();
    assert.ok(written >= 5_000);
    assert.ok(fetched < 30_000, `kafkajs fetched ${fetched} of the 60 000 records while the sink took ${written}`);
    assert.ok(maxAhead < 25_000, `at most ${maxAhead} records were fetched ahead of the sink`);
  });

  it('starts from a timestamp', async (t) => {
    const T = 1_700_000_500_000;
    const messages = Array.from({ length: 40 }, (_, i) => ({ partition: i % 2, value: JSON.stringify({ i }), timestamp: T - 20_000 + i * 1000 }));
    const topic = await topicWith(t, 2, messages);
    if (topic === null) return;
    const rows: KafkaRecord<{ i: number }>[] = [];
    const p = new Pipeline({ name: 'from-ts' });
    p.source(sources.kafka<{ i: number }>({ brokers: broker!.brokers, topics: [topic], groupId: `g-ts-${randomUUID()}`, startFrom: { timestamp: T }, endAt: 'latest' })).sink(sinks.collect(rows));
    await p.run();
    assert.deepEqual(rows.map((r) => r.value.i).sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => 20 + i));
    assert.ok(rows.every((r) => r.timestamp >= T));
  });
});

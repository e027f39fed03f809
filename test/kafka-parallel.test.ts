/**
 * Kafka with worker threads: the same Kafka → keyed window → Kafka job (exactly once) at parallelism
 * 1 and 3 gives the same committed output (read with Kafka's Java read_committed consumer).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { Kafka, logLevel, Partitioners, type Admin } from 'kafkajs';
import { Random } from '../src/index.js';
import { buildJob } from './fixtures/kafka-parallel-job.js';
import { kafkaBrokers, type KafkaBrokers } from './kafka-broker.js';
import { committedRecords } from './kafka-java-reader.js';

describe('sources.kafka → worker threads → sinks.kafka', () => {
  let broker: KafkaBrokers | null = null;
  let admin: Admin | undefined;
  const topics: string[] = [];
  let tmp = '';
  after(async () => {
    if (topics.length > 0) await admin?.deleteTopics({ topics }).catch(() => undefined);
    await admin?.disconnect();
    await broker?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('parallelism 3 commits exactly what parallelism 1 does', { timeout: 120_000 }, async (t) => {
    broker = await kafkaBrokers(t);
    if (broker === null) return;
    tmp = await mkdtemp(path.join(tmpdir(), 'weir-kafka-parallel-'));
    const kafka = new Kafka({ clientId: 'weir-test', brokers: broker.brokers, logLevel: logLevel.NOTHING });
    admin = kafka.admin();
    await admin.connect();
    const id = randomUUID();
    const [input, one, three] = ['in', 'out1', 'out3'].map((s) => `weir-kpar-${s}-${id}`);
    topics.push(input, one, three);
    await admin.createTopics({ topics: [input, one, three].map((topic) => ({ topic, numPartitions: 3, replicationFactor: 1 })), waitForLeaders: true });
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    const rng = new Random(3);
    const messages = Array.from({ length: 12_000 }, (_, i) => {
      const user = `u${rng.int(40)}`;
      return { key: user, value: JSON.stringify({ user, ts: 1_700_000_000_000 + i * 25 + rng.int(1500) }) };
    });
    await producer.send({ topic: input, messages });
    await producer.disconnect();

    const base = { brokers: broker.brokers, input };
    await buildJob({ ...base, output: one, groupId: `g1-${id}`, dir: path.join(tmp, 'p1'), parallelism: 1 }).run();
    await buildJob({ ...base, output: three, groupId: `g3-${id}`, dir: path.join(tmp, 'p3'), parallelism: 3 }).run();
    const [expected, got] = [await committedRecords(broker.brokers, one), await committedRecords(broker.brokers, three)];
    assert.ok(expected.length > 500, `${expected.length} window counts`);
    assert.deepEqual(got, expected);
    const total = expected.reduce((a, line) => a + (JSON.parse(line.slice(line.indexOf('\t') + 1)) as { count: number }).count, 0);
    assert.ok(total > 11_000 && total <= 12_000, `the counts add up to the input, less late records (${total})`);
  });
});

/**
 * A real Kafka broker (scripts/kafka/broker.mjs: Kafka 3.9.1, one KRaft node, from Maven Central jars)
 * driven by kafkajs: topics with partitions, keyed messages, consumer groups, transactions.
 * These tests also pin the kafkajs-on-KRaft behaviours that weir's Kafka source and sink must live with
 * (docs/kafka.md, "Gotchas"). Without a broker they fail under CI=true and are skipped, loudly, otherwise.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it, type TestContext } from 'node:test';
import { Kafka, logLevel, Partitioners, type Admin, type Consumer } from 'kafkajs';
import { kafkaBrokers, type KafkaBrokers } from './kafka-broker.js';

type Msg = { partition: number; offset: string; key: string | null; value: string };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a real Kafka broker with kafkajs', () => {
  let broker: KafkaBrokers | null = null;
  after(async () => {
    await broker?.stop();
  });

  /** A kafkajs client on the test broker plus an admin; null when the test was skipped. */
  async function connect(t: TestContext): Promise<{ kafka: Kafka; admin: Admin; topics: string[] } | null> {
    broker = await kafkaBrokers(t);
    if (broker === null) return null;
    const kafka = new Kafka({
      clientId: 'weir-test',
      brokers: broker.brokers,
      // kafkajs logs every retried protocol error at ERROR level (CONCURRENT_TRANSACTIONS, coordinator loading...)
      logLevel: logLevel.NOTHING,
      retry: { initialRetryTime: 100, retries: 8 },
    });
    const admin = kafka.admin();
    await admin.connect();
    const topics: string[] = [];
    t.after(async () => {
      if (topics.length > 0) await admin.deleteTopics({ topics }).catch(() => undefined);
      await admin.disconnect();
    });
    return { kafka, admin, topics };
  }

  async function createTopic(admin: Admin, topics: string[], numPartitions: number): Promise<string> {
    const topic = `weir-test-${randomUUID()}`;
    // waitForLeaders: produce/subscribe right after creation would otherwise race the controller
    assert.equal(await admin.createTopics({ topics: [{ topic, numPartitions, replicationFactor: 1 }], waitForLeaders: true }), true);
    topics.push(topic);
    return topic;
  }

  /**
   * Consumes `topic` in group `groupId` until `done(messages)`; the consumer has left the group when
   * this returns (disconnect sends LeaveGroup and commits what was processed).
   */
  async function consumeUntil(
    kafka: Kafka,
    topic: string,
    opts: { groupId: string; fromBeginning: boolean; readUncommitted?: boolean },
    done: (msgs: Msg[]) => boolean,
    timeoutMs = 30_000,
  ): Promise<Msg[]> {
    const consumer: Consumer = kafka.consumer({
      groupId: opts.groupId,
      readUncommitted: opts.readUncommitted ?? false,
      maxWaitTimeInMs: 100,
      sessionTimeout: 6_000,
      heartbeatInterval: 500,
    });
    const msgs: Msg[] = [];
    let finish!: () => void;
    const finished = new Promise<void>((r) => (finish = r));
    await consumer.connect();
    try {
      await consumer.subscribe({ topics: [topic], fromBeginning: opts.fromBeginning });
      await consumer.run({
        eachMessage: async ({ partition, message }) => {
          msgs.push({ partition, offset: message.offset, key: message.key?.toString() ?? null, value: message.value?.toString() ?? '' });
          if (done(msgs)) finish();
        },
      });
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`consumer ${opts.groupId}: not done after ${timeoutMs} ms; got ${JSON.stringify(msgs)}`)), timeoutMs);
      });
      try {
        await Promise.race([finished, timeout]);
      } finally {
        clearTimeout(timer);
      }
      return msgs;
    } finally {
      await consumer.disconnect();
    }
  }

  it('round trip: a 3-partition topic, keyed messages, a consumer group that commits and resumes', async (t) => {
    const c = await connect(t);
    if (c === null) return;
    const { kafka, admin, topics } = c;
    const topic = await createTopic(admin, topics, 3);
    const meta = await admin.fetchTopicMetadata({ topics: [topic] });
    assert.deepEqual(meta.topics[0].partitions.map((p) => p.partitionId).sort(), [0, 1, 2]);
    assert.ok(meta.topics[0].partitions.every((p) => p.leader === 1), 'node 1 leads every partition');

    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    t.after(() => producer.disconnect());
    const keys = Array.from({ length: 10 }, (_, i) => `key-${i}`);
    const batch = (seqs: number[]) => seqs.flatMap((seq) => keys.map((key) => ({ key, value: JSON.stringify({ key, seq }) })));
    await producer.send({ topic, acks: -1, messages: batch([0, 1, 2]) });

    const groupId = `weir-test-group-${randomUUID()}`;
    const first = await consumeUntil(kafka, topic, { groupId, fromBeginning: true }, (m) => m.length >= 30);
    assert.equal(first.length, 30);
    const partitionsOf = new Map<string, Set<number>>();
    for (const key of keys) {
      const mine = first.filter((m) => m.key === key);
      // one key, one partition, and in that partition the order it was produced in
      assert.deepEqual(mine.map((m) => JSON.parse(m.value).seq), [0, 1, 2], `order of ${key}`);
      partitionsOf.set(key, new Set(mine.map((m) => m.partition)));
      assert.equal(partitionsOf.get(key)!.size, 1, `${key} is in one partition`);
    }
    const used = new Set(first.map((m) => m.partition));
    assert.ok(used.size >= 2, `10 keys spread over more than one of the 3 partitions (got ${[...used]})`);

    // the group committed what it processed: 30 messages over the 3 partitions
    const committed = await admin.fetchOffsets({ groupId, topics: [topic] });
    assert.equal(committed[0].partitions.reduce((s, p) => s + Number(p.offset), 0), 30);

    // a new member of the same group resumes after the committed offsets: only the new messages
    await producer.send({ topic, acks: -1, messages: batch([3]) });
    const second = await consumeUntil(kafka, topic, { groupId, fromBeginning: true }, (m) => m.length >= 10);
    assert.deepEqual(second.map((m) => JSON.parse(m.value).seq), Array(10).fill(3));
    for (const m of second) assert.ok(partitionsOf.get(m.key!)!.has(m.partition), `${m.key} stays in its partition`);
  });

  it('transactions: committed ones are read, aborted ones only by readUncommitted; offsets commit with them', async (t) => {
    const c = await connect(t);
    if (c === null) return;
    const { kafka, admin, topics } = c;
    const topic = await createTopic(admin, topics, 1);
    // kafkajs needs all three for transactions (docs/Transactions.md)
    const producer = kafka.producer({
      transactionalId: `weir-test-tx-${randomUUID()}`,
      idempotent: true,
      maxInFlightRequests: 1,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    await producer.connect();
    t.after(() => producer.disconnect());
    const send = (values: string[]) => values.map((value) => ({ key: 'k', value }));
    const offsetsGroup = `weir-test-txgroup-${randomUUID()}`;
    const sendOffsets = (tx: Awaited<ReturnType<typeof producer.transaction>>, offset: number) =>
      // kafkajs does not retry AddOffsetsToTxn: right after the previous EndTxn the coordinator may
      // still answer CONCURRENT_TRANSACTIONS (it is writing the markers). Retry it ourselves.
      retryConcurrentTransactions(() =>
        tx.sendOffsets({ consumerGroupId: offsetsGroup, topics: [{ topic, partitions: [{ partition: 0, offset: String(offset) }] }] }),
      );

    const tx1 = await producer.transaction();
    await tx1.send({ topic, messages: send(['c1', 'c2', 'c3']) });
    await sendOffsets(tx1, 3);
    await tx1.commit();

    const tx2 = await producer.transaction();
    await tx2.send({ topic, messages: send(['a1', 'a2']) });
    await sendOffsets(tx2, 99);
    await assert.rejects(producer.transaction(), /already an ongoing transaction/, 'one open transaction per producer');
    await tx2.abort();

    const tx3 = await producer.transaction();
    await tx3.send({ topic, messages: send(['c4', 'end']) });
    await tx3.commit();

    const isEnd = (m: Msg[]) => m.at(-1)?.value === 'end';
    const committedOnly = await consumeUntil(kafka, topic, { groupId: `weir-test-rc-${randomUUID()}`, fromBeginning: true, readUncommitted: false }, isEnd);
    assert.deepEqual(committedOnly.map((m) => m.value), ['c1', 'c2', 'c3', 'c4', 'end']);
    const everything = await consumeUntil(kafka, topic, { groupId: `weir-test-ru-${randomUUID()}`, fromBeginning: true, readUncommitted: true }, isEnd);
    assert.deepEqual(everything.map((m) => m.value), ['c1', 'c2', 'c3', 'a1', 'a2', 'c4', 'end']);

    // each commit/abort marker takes an offset (3, 6, 9): offsets read_committed sees have gaps
    assert.deepEqual(committedOnly.map((m) => m.offset), ['0', '1', '2', '7', '8']);
    const [p0] = await admin.fetchTopicOffsets(topic);
    assert.equal(p0.high, '10');

    // the consumer offsets sent in a transaction are committed with it, and dropped by an abort
    const txOffsets = await admin.fetchOffsets({ groupId: offsetsGroup, topics: [topic] });
    assert.equal(txOffsets[0].partitions[0].offset, '3');
  });

  it('kafkajs on KRaft: subscribing to a topic that does not exist yet fails (create topics first)', async (t) => {
    const c = await connect(t);
    if (c === null) return;
    const { kafka, topics } = c;
    const topic = `weir-test-missing-${randomUUID()}`;
    topics.push(topic); // auto-creation still happens, broker side: delete it afterwards
    const consumer = kafka.consumer({ groupId: `weir-test-missing-${randomUUID()}`, maxWaitTimeInMs: 100 });
    await consumer.connect();
    try {
      // tulios/kafkajs#1563: with auto-create on, KRaft answers the first Metadata request with
      // UNKNOWN_TOPIC_OR_PARTITION while it creates the topic, and kafkajs's subscribe() gives up on it
      await assert.rejects(consumer.subscribe({ topics: [topic] }), { type: 'UNKNOWN_TOPIC_OR_PARTITION' });
    } finally {
      await consumer.disconnect();
    }
  });
});

async function retryConcurrentTransactions<T>(f: () => Promise<T>, attempts = 30): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await f();
    } catch (e) {
      if ((e as { type?: string }).type !== 'CONCURRENT_TRANSACTIONS' || i >= attempts) throw e;
      await sleep(100);
    }
  }
}

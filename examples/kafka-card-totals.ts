/**
 * Kafka in, Kafka out, exactly once: card transactions from a Kafka topic → spend per card and
 * minute (event time, 5 s out-of-orderness) → a Kafka topic, in one Kafka transaction per checkpoint.
 * The example writes its own input (seeded synthetic transactions, keyed by card), runs the job to
 * the end of that input, reads the output back with a read_committed consumer and checks the totals
 * against the input. Its topics are deleted at the end.
 *
 *   npm run kafka:start                       # a local broker from Maven Central (127.0.0.1:19092)
 *   KAFKA_BROKERS=127.0.0.1:19092 node dist/examples/kafka-card-totals.js
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Kafka, logLevel, Partitioners } from 'kafkajs';
import { Pipeline, Random, agg, sinks, sources, watermarks, windows } from 'weir';
import { cardTransactions, type Txn } from './data/card-transactions.js';

interface CardMinute {
  card: string;
  minute: string;
  total: number;
  count: number;
}

const brokers = process.env.KAFKA_BROKERS?.split(',').filter((b) => b !== '');
if (!brokers || brokers.length === 0) {
  console.log('kafka-card-totals needs a Kafka broker: run `npm run kafka:start`, then\n  KAFKA_BROKERS=127.0.0.1:19092 node dist/examples/kafka-card-totals.js');
  process.exit(0);
}

const COUNT = 40_000;
const run = randomUUID().slice(0, 8);
const [input, output] = [`weir-example-txns-${run}`, `weir-example-card-minutes-${run}`];
const kafka = new Kafka({ clientId: 'weir-example', brokers, logLevel: logLevel.NOTHING });
const admin = kafka.admin();
await admin.connect();
const dir = mkdtempSync(path.join(tmpdir(), 'weir-kafka-example-'));
try {
  await admin.createTopics({ topics: [input, output].map((topic) => ({ topic, numPartitions: 4, replicationFactor: 1 })), waitForLeaders: true });

  // 1. The input: 40K transactions keyed by card (a card's transactions stay in order in one partition).
  const next = cardTransactions();
  const rng = new Random(7);
  const txns: Txn[] = Array.from({ length: COUNT }, (_, i) => next(i, rng));
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  for (let i = 0; i < COUNT; i += 5000) {
    await producer.send({ topic: input, messages: txns.slice(i, i + 5000).map((t) => ({ key: t.card, value: JSON.stringify(t), timestamp: String(t.ts) })) });
  }
  await producer.disconnect();

  // 2. The job: Kafka → spend per card and minute → Kafka, exactly once (checkpoints every 500 ms).
  let lateTxns = 0;
  let written = 0;
  const p = new Pipeline({ name: 'kafka-card-totals', checkpoint: { dir, interval: '500ms' } });
  p.source(sources.kafka<Txn>({ brokers, topics: [input], groupId: `weir-example-${run}`, endAt: 'latest' }), {
    timestamp: (r) => r.value.ts,
    watermarks: watermarks.boundedOutOfOrderness('5s', { idleTimeout: '2s' }),
    name: 'transactions',
  })
    .map((r) => r.value)
    .filter((t) => t.amount > 0)
    .keyBy((t) => t.card)
    .window(windows.tumbling('1m'))
    .lateOutput({ name: 'late', write: (items) => void (lateTxns += items.length) }) // offline terminals: counted, not lost silently
    .aggregate({
      create: () => ({ total: 0, count: 0 }),
      add: (acc, t: Txn) => ({ total: acc.total + t.amount, count: acc.count + 1 }),
      merge: (a, b) => ({ total: a.total + b.total, count: a.count + b.count }),
      result: (acc) => acc,
    })
    .map((w): CardMinute => (written++, { card: w.key, minute: new Date(w.start).toISOString().slice(11, 16), total: Math.round(w.value.total * 100) / 100, count: w.value.count }))
    .sink(sinks.kafka<CardMinute>({ brokers, topic: output, key: (r) => r.card, exactlyOnce: true }), { name: 'card-minutes' });
  const started = performance.now();
  await p.run();
  const seconds = (performance.now() - started) / 1000;

  // 3. Read the output back (read_committed) and check it against the input.
  const consumer = kafka.consumer({ groupId: `weir-example-reader-${run}`, readUncommitted: false });
  const rows: CardMinute[] = [];
  const ends = await admin.fetchTopicOffsets(output);
  await consumer.connect();
  await consumer.subscribe({ topics: [output], fromBeginning: true });
  const done = new Promise<void>((resolve) => {
    const seen = new Map<number, string>();
    void consumer.run({
      eachMessage: async ({ partition, message }) => {
        rows.push(JSON.parse(message.value!.toString()) as CardMinute);
        seen.set(partition, message.offset);
        if (ends.every((e) => e.high === '0' || BigInt(seen.get(e.partition) ?? -1) >= BigInt(e.high) - 2n)) resolve();
      },
    });
  });
  await Promise.race([done, new Promise((r) => setTimeout(r, 20_000))]);
  await consumer.disconnect();

  const spent = txns.filter((t) => t.amount > 0).reduce((a, t) => a + t.amount, 0);
  const counted = rows.reduce((a, r) => a + r.count, 0);
  const total = rows.reduce((a, r) => a + r.total, 0);
  console.log(`kafka-card-totals: ${COUNT.toLocaleString('en-US')} transactions from ${input} in ${seconds.toFixed(1)} s (${Math.round(COUNT / seconds).toLocaleString('en-US')} records/s)`);
  console.log(`  card-minute totals written     ${String(written).padStart(8)}`);
  console.log(`  read back (read_committed)     ${String(rows.length).padStart(8)}`);
  console.log(`  purchases in totals            ${String(counted).padStart(8)} + ${lateTxns} too late for their window = ${counted + lateTxns} of ${txns.filter((t) => t.amount > 0).length}`);
  console.log(`  spend in totals                ${total.toFixed(2).padStart(12)} (input: ${spent.toFixed(2)})`);
  const sample = rows.find((r) => r.count > 1);
  if (sample) console.log(`  e.g. ${JSON.stringify(sample)}`);
} finally {
  await admin.deleteTopics({ topics: [input, output] }).catch(() => undefined);
  await admin.disconnect();
  rmSync(dir, { recursive: true, force: true });
}

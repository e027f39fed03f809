/**
 * Kafka → weir → Kafka, against the real broker (`npm run kafka:start` first, or KAFKA_BROKERS):
 *
 * - throughput: a backlog of N records (3 partitions) read to its end (`endAt: 'latest'`) through a
 *   pass-through job (`map`) into an output topic, at least once and exactly once (checkpoint every
 *   `interval`); records/s over the job's wall time, and per CPU second of the process;
 * - end-to-end latency: a producer writes R records/s for D seconds, each carrying its send time; the
 *   job runs unbounded; a consumer of the output (read_committed) takes `now - sent` per record:
 *   p50 / p99 / max. Exactly once, a record becomes visible at the commit after its checkpoint, so its
 *   latency is at most about the checkpoint interval plus the commit.
 *
 * - the ceiling: kafkajs alone doing the same work (consume, parse, produce with acks=all), no weir.
 *
 * Run: `node dist/benchmarks/kafka/kafka-bench.js [--records=300000] [--rate=20000] [--seconds=10] [--interval=1000]`
 * Prints one JSON line per measurement.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Kafka, logLevel, Partitioners, type Admin } from 'kafkajs';
import { Pipeline, sinks, sources } from '../../src/index.js';
import { silentLogger } from '../../src/observability/logger.js';

interface Rec {
  id: number;
  sent: number;
  pad: string;
}

const arg = (name: string, fallback: number): number => {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a === undefined ? fallback : Number(a.slice(name.length + 3));
};
const RECORDS = arg('records', 300_000);
const RATE = arg('rate', 20_000);
const SECONDS = arg('seconds', 10);
const INTERVAL = arg('interval', 1000);
const brokers = (process.env.KAFKA_BROKERS ?? '127.0.0.1:19092').split(',');
const kafka = new Kafka({ clientId: 'weir-bench', brokers, logLevel: logLevel.NOTHING });
const PAD = 'x'.repeat(80);

async function topic(admin: Admin, prefix: string): Promise<string> {
  const name = `${prefix}-${randomUUID()}`;
  await admin.createTopics({ topics: [{ topic: name, numPartitions: 3, replicationFactor: 1 }], waitForLeaders: true });
  return name;
}

/** The pass-through job: Kafka → map → Kafka. */
function job(name: string, input: string, output: string, exactlyOnce: boolean, dir: string, bounded: boolean): Pipeline {
  const p = new Pipeline({ name, logger: silentLogger(), batchSize: 1000, ...(exactlyOnce ? { checkpoint: { dir, interval: INTERVAL } } : {}) });
  p.source(sources.kafka<Rec>({ brokers, topics: [input], groupId: `bench-${randomUUID()}`, ...(bounded ? { endAt: 'latest' as const } : {}), sessionTimeout: 10_000 }), {
    timestamp: (r) => r.timestamp,
  })
    .map((r) => r.value)
    .sink(sinks.kafka<Rec>({ brokers, topic: output, key: (r) => String(r.id % 1000), exactlyOnce }));
  return p;
}

/** Writes the throughput input: RECORDS JSON records over 3 partitions. */
async function backlog(input: string): Promise<void> {
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  for (let i = 0; i < RECORDS; i += 5000) {
    const n = Math.min(5000, RECORDS - i);
    await producer.send({ topic: input, messages: Array.from({ length: n }, (_, j) => ({ key: String((i + j) % 1000), value: JSON.stringify({ id: i + j, sent: 0, pad: PAD }) })) });
  }
  await producer.disconnect();
}

/**
 * The ceiling on this machine: kafkajs alone doing the job's work (consume a batch, parse the JSON,
 * produce it with acks=all, then take the next), no weir in between.
 */
async function kafkajsAlone(admin: Admin): Promise<void> {
  const input = await topic(admin, 'bench-raw-in');
  const output = await topic(admin, 'bench-raw-out');
  await backlog(input);
  const consumer = kafka.consumer({ groupId: `bench-raw-${randomUUID()}`, maxWaitTimeInMs: 500 });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
  await Promise.all([consumer.connect(), producer.connect()]);
  await consumer.subscribe({ topics: [input], fromBeginning: true });
  let seen = 0;
  let finish!: () => void;
  const finished = new Promise<void>((r) => (finish = r));
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await consumer.run({
    partitionsConsumedConcurrently: 4,
    eachBatch: async ({ batch }) => {
      const messages = batch.messages.map((m) => {
        const r = JSON.parse(m.value!.toString()) as Rec;
        return { key: String(r.id % 1000), value: JSON.stringify(r), timestamp: m.timestamp };
      });
      await producer.send({ topic: output, acks: -1, messages });
      seen += messages.length;
      if (seen >= RECORDS) finish();
    },
  });
  await finished;
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  await Promise.all([consumer.disconnect(), producer.disconnect()]);
  console.log(JSON.stringify({ measure: 'throughput', mode: 'kafkajs alone (consume, parse, produce)', records: RECORDS, wallMs: Math.round(wallMs), recordsPerSec: Math.round(RECORDS / (wallMs / 1000)), recordsPerCpuSec: Math.round(RECORDS / ((cpu.user + cpu.system) / 1e6)) }));
  await admin.deleteTopics({ topics: [input, output] }).catch(() => undefined);
}

async function throughput(admin: Admin, exactlyOnce: boolean, dir: string): Promise<void> {
  const input = await topic(admin, 'bench-in');
  const output = await topic(admin, 'bench-out');
  await backlog(input);
  const p = job(`bench-${exactlyOnce ? 'eo' : 'alo'}`, input, output, exactlyOnce, dir, true);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await p.run();
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  const out = (await admin.fetchTopicOffsets(output)).reduce((a, o) => a + Number(o.high), 0);
  console.log(JSON.stringify({ measure: 'throughput', mode: exactlyOnce ? 'exactly-once' : 'at-least-once', records: RECORDS, wallMs: Math.round(wallMs), recordsPerSec: Math.round(RECORDS / (wallMs / 1000)), recordsPerCpuSec: Math.round(RECORDS / (cpuMs / 1000)), outputOffsets: out, checkpoints: p.lastCheckpoint()?.id ?? 0 }));
  await admin.deleteTopics({ topics: [input, output] }).catch(() => undefined);
}

async function latency(admin: Admin, exactlyOnce: boolean, dir: string): Promise<void> {
  const input = await topic(admin, 'bench-lat-in');
  const output = await topic(admin, 'bench-lat-out');
  const p = job(`bench-lat-${exactlyOnce ? 'eo' : 'alo'}`, input, output, exactlyOnce, dir, false);
  const running = p.run();
  const consumer = kafka.consumer({ groupId: `bench-read-${randomUUID()}`, readUncommitted: false, maxWaitTimeInMs: 20 });
  const latencies: number[] = [];
  await consumer.connect();
  await consumer.subscribe({ topics: [output], fromBeginning: true });
  await consumer.run({
    eachBatch: async ({ batch }) => {
      const now = Date.now();
      for (const m of batch.messages) latencies.push(now - (JSON.parse(m.value!.toString()) as Rec).sent);
    },
  });
  await new Promise((r) => setTimeout(r, 3000)); // job and consumer joined their groups
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const total = RATE * SECONDS;
  const perTick = Math.max(1, Math.round(RATE / 100));
  const start = Date.now();
  for (let id = 0; id < total; ) {
    const due = start + (id / RATE) * 1000;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const n = Math.min(perTick, total - id);
    const sent = Date.now();
    await producer.send({ topic: input, acks: 1, messages: Array.from({ length: n }, (_, j) => ({ key: String((id + j) % 1000), value: JSON.stringify({ id: id + j, sent, pad: PAD }) })) });
    id += n;
  }
  await producer.disconnect();
  const deadline = Date.now() + 15_000;
  while (latencies.length < total && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  await p.stop();
  await running;
  await consumer.disconnect();
  const sorted = latencies.slice().sort((a, b) => a - b);
  const q = (x: number): number => sorted[Math.min(sorted.length - 1, Math.floor(x * sorted.length))] ?? NaN;
  console.log(JSON.stringify({ measure: 'latency', mode: exactlyOnce ? 'exactly-once' : 'at-least-once', ratePerSec: RATE, seconds: SECONDS, checkpointIntervalMs: exactlyOnce ? INTERVAL : null, received: latencies.length, sent: total, p50Ms: q(0.5), p99Ms: q(0.99), maxMs: sorted.at(-1) }));
  await admin.deleteTopics({ topics: [input, output] }).catch(() => undefined);
}

const admin = kafka.admin();
await admin.connect();
const tmp = await mkdtemp(path.join(tmpdir(), 'weir-kafka-bench-'));
try {
  await kafkajsAlone(admin);
  for (const eo of [false, true]) await throughput(admin, eo, path.join(tmp, `tp-${eo}`));
  for (const eo of [false, true]) await latency(admin, eo, path.join(tmp, `lat-${eo}`));
} finally {
  await admin.disconnect();
  await rm(tmp, { recursive: true, force: true });
}

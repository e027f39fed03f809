/**
 * Scale-out across processes: two processes of one consumer group run test/fixtures/kafka-group-job.ts
 * (a running count per key, exactly once to Kafka, `kafkaChangelog` checkpoints). One is killed with
 * SIGKILL mid-run; the other must take over its partitions with their state (the counts go on where
 * the dead one's last committed checkpoint left them) and, read with Kafka's own read_committed
 * consumer, the output holds every record exactly once with the right count.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel, Partitioners, type Admin } from 'kafkajs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Pipeline, WeirError, kafkaPartitionOf, Random, sinks, sources, type Collector } from '../src/index.js';
import type { CountRow, KafkaGroupConfig } from './fixtures/kafka-group-job.js';
import { kafkaBrokers, type KafkaBrokers } from './kafka-broker.js';
import { committedRecords } from './kafka-java-reader.js';

const job = fileURLToPath(new URL('./fixtures/kafka-group-job.js', import.meta.url));
const KEYS = 24;
const PER_KEY = 150;
const PARTITIONS = 4;

/** A running job process: its output lines counted, its exit awaited. */
interface Proc {
  child: ChildProcess;
  lines: number;
  stderr: string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function start(cfg: KafkaGroupConfig): Proc {
  const child = spawn(process.execPath, [job, JSON.stringify(cfg)], { env: { ...process.env, WEIR_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] });
  const proc: Proc = { child, lines: 0, stderr: '', exit: new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal }))) };
  child.stdout!.on('data', (d: Buffer) => {
    for (let i = 0; i < d.length; i++) if (d[i] === 10) proc.lines++;
  });
  child.stderr!.on('data', (d: Buffer) => (proc.stderr += d.toString()));
  return proc;
}

async function until(what: string, timeoutMs: number, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(200);
  }
}

/**
 * Starts process a, then b once a counts; once both count (b joined the group and got partitions) and
 * a counted some more, kills a with SIGKILL mid-run.
 */
async function startPairAndKillA(base: Omit<KafkaGroupConfig, 'instance'>, procs: Proc[]): Promise<{ a: Proc; b: Proc }> {
  const a = start({ ...base, instance: 'a' });
  procs.push(a);
  await until('process a to start counting', 60_000, () => a.lines >= 1);
  const b = start({ ...base, instance: 'b' });
  procs.push(b);
  await until('process b to start counting', 60_000, () => b.lines >= 1).catch((e: Error) => {
    throw new Error(`${e.message}\n--- a:\n${a.stderr}\n--- b:\n${b.stderr}`);
  });
  const aBefore = a.lines;
  await until('process a to count some more', 60_000, () => a.lines >= aBefore + 3);
  a.child.kill('SIGKILL');
  const aExit = await a.exit;
  assert.equal(aExit.signal, 'SIGKILL', `process a died of the kill: ${a.stderr}`);
  return { a, b };
}

describe('kafkaPartitionOf', () => {
  it("gives the partition of Kafka's default partitioner (murmur2), for ASCII and non-ASCII keys of every length", () => {
    const partitioner = Partitioners.DefaultPartitioner();
    const rng = new Random(11);
    const alphabet = 'abcXYZ019-_ éü日本🙂';
    for (let i = 0; i < 2000; i++) {
      const chars = Array.from(alphabet);
      const key = Array.from({ length: rng.int(20) }, () => chars[rng.int(chars.length)]).join('');
      const partitions = 1 + rng.int(64);
      const partitionMetadata = Array.from({ length: partitions }, (_, p) => ({ partitionId: p, leader: 1, replicas: [1], isr: [1], partitionErrorCode: 0 }));
      const expected = partitioner({ topic: 't', partitionMetadata, message: { key, value: null } });
      assert.equal(kafkaPartitionOf(key, partitions), expected, `key ${JSON.stringify(key)} over ${partitions} partitions`);
    }
    assert.equal(kafkaPartitionOf(42, 7), kafkaPartitionOf('42', 7));
  });
});

describe('KeyedStream.through (repartition through a Kafka topic)', () => {
  it('needs a stream from exactly one Kafka source', () => {
    const p = new Pipeline({ name: 'through-plan' });
    const s = p.source(sources.array([{ k: 'a' }]), { timestamp: () => 0 });
    assert.throws(() => s.keyBy((r) => r.k).through({ topic: 't' }), (e: unknown) => e instanceof WeirError && e.code === 'WEIR_INVALID_PLAN' && /exactly one Kafka source/.test(e.message));
  });

  it('refuses a job with an exactly-once sink (the repartition topic is at-least-once), before connecting', async () => {
    const p = new Pipeline({ name: 'through-eos', checkpoint: { dir: path.join(tmpdir(), `weir-through-${randomUUID()}`) } });
    p.source(sources.kafka<{ k: string }>({ brokers: ['127.0.0.1:1'], topics: ['in'], groupId: 'g' }), { timestamp: (r) => r.timestamp })
      .keyBy((r) => r.value.k)
      .through({ topic: 'by-k' })
      .process({ processElement: (r, _ctx, out: Collector<string>) => out.emit(r.value.k) })
      .sink(sinks.kafka<string>({ brokers: ['127.0.0.1:1'], topic: 'out', exactlyOnce: true }));
    await assert.rejects(p.run(), (e: unknown) => e instanceof WeirError && e.code === 'WEIR_INVALID_PLAN' && /at least once/.test(e.message));
  });
});

describe('two processes sharing a consumer group (kafkaChangelog)', () => {
  let broker: KafkaBrokers | null = null;
  let admin: Admin | undefined;
  const topics: string[] = [];
  const procs: Proc[] = [];
  after(async () => {
    for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    if (topics.length > 0) await admin?.deleteTopics({ topics }).catch(() => undefined);
    await admin?.disconnect();
    await broker?.stop();
  });

  it('one killed with SIGKILL: the other takes over its partitions with their state, and the output is exactly once', async (t) => {
    broker = await kafkaBrokers(t);
    if (broker === null) return;
    const kafka = new Kafka({ clientId: 'weir-test', brokers: broker.brokers, logLevel: logLevel.NOTHING });
    admin = kafka.admin();
    await admin.connect();
    const id = randomUUID();
    const [input, output, changelog] = ['in', 'out', 'state'].map((s) => `weir-group-${s}-${id}`);
    topics.push(input, output, changelog);
    await admin.createTopics({ topics: [input, output].map((topic) => ({ topic, numPartitions: PARTITIONS, replicationFactor: 1 })), waitForLeaders: true });
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    const messages = [];
    for (let seq = 0; seq < PER_KEY; seq++) for (let k = 0; k < KEYS; k++) messages.push({ key: `k${k}`, value: JSON.stringify({ key: `k${k}`, seq }) });
    await producer.send({ topic: input, messages });
    await producer.disconnect();

    const base = { brokers: broker.brokers, input, output, groupId: `weir-group-${id}`, changelog, workMs: 4 };
    const { a, b } = await startPairAndKillA(base, procs);

    // b takes over every partition: the group's offsets (committed with b's transactions) reach the end.
    const ends = await admin.fetchTopicOffsets(input);
    await until('every partition consumed and committed', 120_000, async () => {
      const [committed] = await admin!.fetchOffsets({ groupId: base.groupId, topics: [input] });
      return ends.every((e) => committed.partitions.some((c) => c.partition === e.partition && c.offset === e.high));
    });
    b.child.kill('SIGTERM');
    const bExit = await b.exit;
    assert.equal(bExit.code, 0, `process b stopped cleanly: ${b.stderr}`);
    assert.match(b.stderr, /rebalanced/, 'process b started again on new partitions');

    const rows = (await committedRecords(broker.brokers, output)).map((line) => JSON.parse(line.slice(line.indexOf('\t') + 1)) as CountRow);
    // Exactly once, with the right state: per key, record seq s carries count s + 1, each (key, seq) once.
    const seen = new Map<string, CountRow>();
    for (const r of rows) {
      const id2 = `${r.key}/${r.seq}`;
      assert.ok(!seen.has(id2), `${id2} came out twice: ${JSON.stringify(seen.get(id2))} and ${JSON.stringify(r)}`);
      seen.set(id2, r);
      assert.equal(r.n, r.seq + 1, `${r.key} seq ${r.seq} counted by ${r.instance} as ${r.n}: the state did not move with the partition`);
    }
    assert.equal(seen.size, KEYS * PER_KEY, `all ${KEYS * PER_KEY} records came out (got ${seen.size})`);
    // Some keys were counted by a first and continued by b from a's committed state.
    const takenOver = [...Array(KEYS).keys()].map((k) => `k${k}`).filter((key) => {
      const byA = rows.filter((r) => r.key === key && r.instance === 'a');
      const byB = rows.filter((r) => r.key === key && r.instance === 'b');
      return byA.length > 0 && byB.length > 0 && Math.min(...byB.map((r) => r.n)) > Math.max(...byA.map((r) => r.n));
    });
    assert.ok(takenOver.length > 0, 'some keys were counted first by a, then by b from where a left off');
  });

  it('keyed by a field through a repartition topic (`through`, at least once): one killed, the other goes on with its state', async (t) => {
    broker ??= await kafkaBrokers(t);
    if (broker === null) return;
    const kafka = new Kafka({ clientId: 'weir-test', brokers: broker.brokers, logLevel: logLevel.NOTHING });
    admin ??= kafka.admin();
    await admin.connect();
    const id = randomUUID();
    const [input, output, changelog, internal] = ['in', 'out', 'state', 'by-key'].map((s) => `weir-group-rp-${s}-${id}`);
    topics.push(input, output, changelog, internal);
    await admin.createTopics({ topics: [input, output].map((topic) => ({ topic, numPartitions: PARTITIONS, replicationFactor: 1 })), waitForLeaders: true });
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    // The Kafka key is not the key the job counts by: a key's records are spread over every partition.
    const messages = [];
    for (let seq = 0; seq < PER_KEY; seq++) for (let k = 0; k < KEYS; k++) messages.push({ key: `m${seq * KEYS + k}`, value: JSON.stringify({ key: `k${k}`, seq }) });
    await producer.send({ topic: input, messages });
    await producer.disconnect();

    const base = { brokers: broker.brokers, input, output, groupId: `weir-group-rp-${id}`, changelog, workMs: 4, repartition: internal };
    const { a, b } = await startPairAndKillA(base, procs);

    // b takes over: both groups' offsets (the input's and the repartition topic's) reach the end.
    const done = async (group: string, topic: string): Promise<boolean> => {
      const ends = await admin!.fetchTopicOffsets(topic);
      const [committed] = await admin!.fetchOffsets({ groupId: group, topics: [topic] });
      return ends.every((e) => e.high === '0' || committed.partitions.some((c) => c.partition === e.partition && c.offset === e.high));
    };
    await until('every record read and re-keyed', 120_000, async () => (await done(base.groupId, input)) && (await done(`${base.groupId}.${internal}`, internal)));
    b.child.kill('SIGTERM');
    const bExit = await b.exit;
    assert.equal(bExit.code, 0, `process b stopped cleanly: ${b.stderr}`);

    const rows = (await committedRecords(broker.brokers, output)).map((line) => JSON.parse(line.slice(line.indexOf('\t') + 1)) as CountRow);
    // At least once: every record counted (maybe twice after the kill), by the key's owner.
    const seqs = new Map<string, Set<number>>();
    for (const r of rows) {
      let s2 = seqs.get(r.key);
      if (!s2) seqs.set(r.key, (s2 = new Set()));
      s2.add(r.seq);
    }
    for (let k = 0; k < KEYS; k++) assert.equal(seqs.get(`k${k}`)?.size, PER_KEY, `every record of k${k} came out`);
    // The state moved: no count falls short (had b started a key it took over from 0, its count would
    // end far below PER_KEY; a replay after the kill only adds), and b went on from a's counts.
    let continued = 0;
    for (let k = 0; k < KEYS; k++) {
      const key = `k${k}`;
      const mine = rows.filter((r) => r.key === key);
      assert.ok(Math.max(...mine.map((r) => r.n)) >= PER_KEY, `${key} counted at least ${PER_KEY} (got ${Math.max(...mine.map((r) => r.n))})`);
      const byB = mine.filter((r) => r.instance === 'b');
      if (mine.some((r) => r.instance === 'a') && byB.length > 0 && Math.min(...byB.map((r) => r.n)) > 1) continued++;
    }
    assert.ok(continued > 0, 'some keys counted by a were continued by b from their restored counts');
    assert.ok(rows.some((r) => r.instance === 'a') && rows.some((r) => r.instance === 'b'), 'both processes counted');
  });
});

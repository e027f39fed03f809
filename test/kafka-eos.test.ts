/**
 * Kafka exactly-once under SIGKILL: test/fixtures/kafka-eos-job.ts (Kafka → keyed window → Kafka with
 * `exactlyOnce`) runs in a child process, is killed at random moments several times and restarted
 * with the same command until it finishes. A read_committed consumer of its output (Kafka's Java
 * client: see test/kafka-java-reader.ts) must see exactly what a failure-free run's output holds (as
 * a multiset): nothing lost, nothing twice.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel, Partitioners, type Admin } from 'kafkajs';
import { Random } from '../src/index.js';
import type { KafkaEosConfig } from './fixtures/kafka-eos-job.js';
import { kafkaBrokers, type KafkaBrokers } from './kafka-broker.js';
import { committedRecords } from './kafka-java-reader.js';
import { runJob, type JobExit, type Kill } from './killable-job.js';

const job = fileURLToPath(new URL('./fixtures/kafka-eos-job.js', import.meta.url));
const EVENTS = 20_000;

/** Runs the job once (killed with SIGKILL after `kill.afterPolls` polls, when given); warnings on stderr. */
function runOnce(cfg: KafkaEosConfig, kill?: Kill): Promise<JobExit> {
  return runJob(job, cfg, { logLevel: 'warn', kill });
}

/** What `b` lacks of `a` (missing) and holds beyond it (extra), as multisets. */
function multisetDiff(a: readonly string[], b: readonly string[]): { missing: string[]; extra: string[] } {
  const counts = new Map<string, number>();
  for (const x of a) counts.set(x, (counts.get(x) ?? 0) + 1);
  for (const x of b) counts.set(x, (counts.get(x) ?? 0) - 1);
  const missing: string[] = [];
  const extra: string[] = [];
  for (const [x, n] of counts) for (let i = 0; i < Math.abs(n); i++) (n > 0 ? missing : extra).push(x);
  return { missing: missing.slice(0, 20), extra: extra.slice(0, 20) };
}

describe('sinks.kafka exactly-once', () => {
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

  it('killed with SIGKILL several times, a read_committed consumer sees exactly the failure-free results', async (t) => {
    broker = await kafkaBrokers(t);
    if (broker === null) return;
    tmp = await mkdtemp(path.join(tmpdir(), 'weir-kafka-eos-'));
    const kafka = new Kafka({ clientId: 'weir-test', brokers: broker.brokers, logLevel: logLevel.NOTHING });
    admin = kafka.admin();
    await admin.connect();
    const name = (s: string) => `weir-eos-${s}-${randomUUID()}`;
    const [input, clean, crash] = [name('in'), name('clean'), name('crash')];
    topics.push(input, clean, crash);
    await admin.createTopics({ topics: [input, clean, crash].map((topic) => ({ topic, numPartitions: 3, replicationFactor: 1 })), waitForLeaders: true });
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    const rng = new Random(5);
    for (let i = 0; i < EVENTS; i += 1000) {
      await producer.send({
        topic: input,
        messages: Array.from({ length: 1000 }, (_, j) => {
          const user = `u${rng.int(50)}`;
          return { key: user, value: JSON.stringify({ user, ts: 1_700_000_000_000 + (i + j) * 20 + rng.int(1000) }) };
        }),
      });
    }
    await producer.disconnect();

    const base = { brokers: broker.brokers, input };
    const r0 = await runOnce({ ...base, output: clean, groupId: name('g-clean'), dir: path.join(tmp, 'clean') });
    assert.equal(r0.code, 0, r0.stderr);
    const expected = await committedRecords(broker.brokers, clean);
    assert.ok(expected.length > 1000, `the clean run produced ${expected.length} results`);

    const cfg: KafkaEosConfig = { ...base, output: crash, groupId: name('g-crash'), dir: path.join(tmp, 'crash') };
    // First a kill at the worst moment: a checkpoint is durable, its Kafka transaction (with records) not committed.
    const first = await runOnce({ ...cfg, dieAtCommitNumber: 2 });
    assert.equal(first.signal, 'SIGKILL', `the first run died before committing its second transaction: ${first.stderr}`);
    const rng2 = new Random(29);
    let kills = 0;
    for (let attempt = 0; attempt < 30; attempt++) {
      const kill = kills < 3 ? { afterPolls: 5 + rng2.int(60), extraMs: rng2.int(20) } : undefined;
      const r = await runOnce(cfg, kill);
      if (attempt === 0) assert.match(r.stderr, /the transaction of this checkpoint never committed/, 'the restart gave up the uncommitted checkpoint and replayed from the one before');
      if (r.signal === 'SIGKILL') {
        kills++;
        continue;
      }
      assert.equal(r.code, 0, `the job failed: ${r.stderr}`);
      break;
    }
    assert.ok(kills >= 2, `kills landed mid-run (${kills})`);
    const got = await committedRecords(broker.brokers, crash);
    const { missing, extra } = multisetDiff(expected, got);
    assert.deepEqual({ missing, extra }, { missing: [], extra: [] }, `${got.length} results vs ${expected.length} expected`);
  });
});

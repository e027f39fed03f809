import { randomUUID } from 'node:crypto';
import os from 'node:os';
import type { Admin, Producer } from 'kafkajs';
import type { Logger } from 'pino';
import type { CheckpointStorage, StoredCheckpoint } from '../checkpoint/checkpoint-coordinator.js';
import type { CheckpointDelta, SourceSnapshot, StateEntry } from '../checkpoint/snapshot.js';
import { WeirError, messageOf } from '../errors.js';
import { decodeValue } from '../state/store/value-codec.js';
import type { Sink } from '../sinks/sink.js';
import { isTransactional } from '../sinks/transactional-sink.js';
import type { Source } from '../sources/source.js';
import { kafkaClientOf, type KafkaClient, type KafkaConnection } from './kafka-client.js';
import { kafkaPartitionOf } from './murmur2.js';

/** Options of {@link kafkaChangelog}. */
export interface KafkaChangelogOptions extends KafkaConnection {
  /**
   * The compacted topic the job's state goes to. Created when missing, with as many partitions as the
   * source topic (an existing one must have that many).
   */
  readonly topic: string;
  /**
   * This process's name in the group (default `<hostname>-<pid>`): the exactly-once Kafka sink's
   * transactional ids end with it, so the processes of a group never fence each other.
   */
  readonly instance?: string;
  /** How long restoring the state of newly assigned partitions may take, ms (default 120 000). */
  readonly restoreTimeout?: number;
}

/**
 * The part of the Kafka source the changelog drives (internal): group membership kept across the
 * job restarts a rebalance causes, and the partitions assigned now.
 */
export interface KafkaGroupMember {
  readonly kafkaGroupMember: true;
  readonly groupId: string;
  readonly topics: readonly string[];
  readonly connection: KafkaConnection;
  /** From now on: keep the consumer across job restarts, hold new partitions until `seek`, end the job on a rebalance. */
  enableGroupState(): void;
  /** The partitions of the (one) topic assigned to this member, once it joined the group. */
  assignment(timeoutMs: number): Promise<readonly number[]>;
  /** False once the group moved partitions since the job restored (the job must not commit then). */
  stillOwnsPartitions(): boolean;
  /** The end: leave the group for good. */
  release(): Promise<void>;
  /** Whether this is the reading side of a repartition (`through`): its partitions carry the state. */
  readonly repartition: boolean;
  /** Partitions without a checkpointed offset start at the group's committed offsets (sources upstream of a repartition). */
  useCommittedStart(): void;
}

/** What the exactly-once Kafka sink needs to carry the changelog in its transactions (internal). */
export interface ChangelogCarrier {
  readonly carriesChangelog: true;
  /** Makes the sink's transactional ids unique to this process. */
  useInstance(instance: string): void;
}

/** One checkpoint's changelog records, handed to the exactly-once Kafka sink (internal). */
export interface ChangelogBatch {
  readonly topic: string;
  readonly messages: readonly { partition: number; key: string; value: string | null; headers: Record<string, string> }[];
}

function isMember(s: Source<unknown>): s is Source<unknown> & KafkaGroupMember {
  return (s as Partial<KafkaGroupMember>).kafkaGroupMember === true;
}

function isCarrier(s: Sink<unknown>): s is Sink<unknown> & ChangelogCarrier {
  return (s as Partial<ChangelogCarrier>).carriesChangelog === true;
}

/** A changelog record's key: `["s", operator, table, ns, key]` (state) or `["p", topic]` (where partition p's input is), as JSON. */
type ChangelogKey = ['s', string, string, number, unknown] | ['p', string] | ['m', string];

/** The value of a `["p", topic]` record: the next offset of the partition and its watermark state. */
interface PartitionPosition {
  readonly offset: string;
  readonly watermark?: { readonly generator: unknown; readonly emitted: number };
}

/**
 * Checkpoints kept in Kafka, for jobs whose processes share a consumer group: the state moves with
 * the partitions. Each checkpoint writes the keyed state that changed to a compacted changelog topic
 * (a key's state goes to the partition Kafka's default partitioner gives the key, so the state of
 * the keys a source partition carries sits in the same-numbered changelog partition), together with
 * each partition's next offset and watermark. With an exactly-once Kafka sink these records are part
 * of the sink's transaction, atomic with the output; otherwise they are written (acknowledged by all
 * replicas) before the offsets are committed.
 *
 * When the group's partitions move (a process joins, leaves or dies), each process ends its job and
 * starts it again on its new partitions: their state and positions are read back from the changelog
 * (up to a marker it appends, so everything committed before is seen, and nothing of a transaction
 * that was still open is). No state of a partition this process does not own is kept.
 *
 * Keys must be co-partitioned with the input: the stream is keyed by the Kafka record key (a string,
 * or a number as its decimal string) of a topic written with the default partitioner, or re-keyed
 * through an internal topic first (`keyBy(f).through({ topic })`: then that topic's partitions carry
 * the state). Needs exactly one Kafka source reading one topic (plus the reading side of one `through`).
 *
 * @example
 * const p = new Pipeline('card-counts', { checkpoint: { interval: '1s', storage: kafkaChangelog({ topic: 'card-counts-state' }) } });
 * p.source(sources.kafka({ brokers, topics: ['payments'], groupId: 'card-counts' }), { timestamp: r => r.timestamp })
 *  .keyBy(r => r.key!).process(countPerCard)
 *  .sink(sinks.kafka({ brokers, topic: 'card-counts', exactlyOnce: true }));
 */
export function kafkaChangelog(opts: KafkaChangelogOptions): KafkaChangelogStorage {
  return new KafkaChangelogStorage(opts);
}

/** The storage {@link kafkaChangelog} returns. */
export class KafkaChangelogStorage implements CheckpointStorage {
  /** Tells the pipeline to start the job again when the group rebalances (internal). */
  readonly restartsOnRebalance = true;
  readonly instance: string;
  private member: (Source<unknown> & KafkaGroupMember) | null = null;
  /** The source's step name (checkpoints key sources by it). */
  private sourceStep = '';
  /** Whether the exactly-once Kafka sink carries the changelog (else this storage writes it). */
  private carried = false;
  private logger: Logger | null = null;
  private client: KafkaClient | null = null;
  private admin: Admin | null = null;
  private producer: Producer | null = null;
  private partitions = 0;
  private lastId = 0;
  private restores = 0;

  constructor(private readonly opts: KafkaChangelogOptions) {
    if (!opts || typeof opts.topic !== 'string' || opts.topic === '') throw new WeirError('WEIR_INVALID_ARGUMENT', 'kafkaChangelog: give a `topic`');
    this.instance = opts.instance ?? `${os.hostname()}-${process.pid}`;
  }

  /**
   * Before the job opens: finds the Kafka source and the sinks. Throws unless there is exactly one
   * Kafka source reading one topic, and no exactly-once sink other than one Kafka sink.
   */
  attach(parts: { sources: readonly { name: string; source: Source<unknown> }[]; sinks: readonly { name: string; sink: Sink<unknown> }[] }, logger: Logger): void {
    this.logger = logger;
    const members = parts.sources.filter((s) => isMember(s.source));
    const repartitions = members.filter((s) => (s.source as unknown as KafkaGroupMember).repartition);
    if (members.length !== parts.sources.length || members.length === 0 || repartitions.length > 1 || (members.length > 1 && repartitions.length !== 1)) {
      throw new WeirError(
        'WEIR_INVALID_PLAN',
        `kafkaChangelog: the job needs one Kafka source, or one Kafka source and one \`through\` repartition (it has ${parts.sources.map((s) => s.name).join(', ') || 'none'})`,
      );
    }
    const state = repartitions[0] ?? members[0];
    // Sources upstream of the repartition hold no state: a restart resumes them at the group's offsets.
    for (const m of members) if (m !== state) (m.source as unknown as KafkaGroupMember).useCommittedStart();
    const member = state.source as Source<unknown> & KafkaGroupMember;
    if (member.topics.length !== 1) throw new WeirError('WEIR_INVALID_PLAN', `kafkaChangelog: the Kafka source must read one topic (it reads ${member.topics.join(', ')})`, { step: state.name });
    const eos = parts.sinks.filter((s) => isTransactional(s.sink));
    const carriers = eos.filter((s) => isCarrier(s.sink));
    if (eos.length > 1 || eos.length !== carriers.length) {
      throw new WeirError('WEIR_INVALID_PLAN', `kafkaChangelog: state and output can be committed together only with one exactly-once Kafka sink (the job has ${eos.map((s) => s.name).join(', ')})`, { step: eos[0]?.name });
    }
    if (carriers.length === 1) (carriers[0].sink as unknown as ChangelogCarrier).useInstance(this.instance);
    this.carried = carriers.length === 1;
    this.member = member;
    this.sourceStep = state.name;
    member.enableGroupState();
  }

  /** The changelog records of a checkpoint for the exactly-once sink's transaction (undefined when this storage writes them). */
  changelogFor(delta: CheckpointDelta): ChangelogBatch | undefined {
    return this.carried ? this.batchOf(delta) : undefined;
  }

  async load(): Promise<StoredCheckpoint | null> {
    const member = this.requireMember();
    await this.connect();
    const timeout = this.opts.restoreTimeout ?? 120_000;
    const assigned = await member.assignment(timeout);
    const started = performance.now();
    const read = await this.readPartitions(assigned, timeout);
    this.lastId = Math.max(this.lastId, read.maxId);
    const [topic] = member.topics;
    const offsets: Record<string, string> = {};
    const splits: Record<string, { generator: unknown; emitted: number }> = {};
    for (const [partition, pos] of read.positions) {
      offsets[partition] = pos.offset;
      if (pos.watermark) splits[`${topic}:${partition}`] = pos.watermark;
    }
    const source: SourceSnapshot = {
      position: { kind: 'kafka', groupId: member.groupId, offsets: { [topic]: offsets } },
      watermark: { generator: undefined, emitted: -Infinity, splits },
    };
    const operators = new Map<string, { entries: StateEntry[]; meta: unknown; watermarks: { inputs: number[]; combined: number } }>();
    let keys = 0;
    for (const [op, byKey] of read.state) {
      const entries: StateEntry[] = [];
      for (const e of byKey.values()) entries.push({ table: e.table, ns: e.ns, key: e.key, value: decodeValue(e.value) });
      keys += entries.length;
      operators.set(op, { entries, meta: undefined, watermarks: { inputs: [], combined: -Infinity } });
    }
    this.logger?.info({ partitions: assigned, stateEntries: keys, ms: Math.round(performance.now() - started) }, 'state of the assigned partitions restored from the changelog');
    return { id: this.lastId, operators, sources: { [this.sourceStep]: source }, sinks: {} };
  }

  mayCommit(): boolean {
    return this.member?.stillOwnsPartitions() ?? true;
  }

  nextId(): number {
    return this.lastId + 1;
  }

  read(): Promise<StoredCheckpoint> {
    return Promise.reject(new WeirError('WEIR_INVALID_ARGUMENT', 'kafkaChangelog: savepoints are not supported with state kept in Kafka'));
  }

  writeFull(): Promise<void> {
    return Promise.reject(new WeirError('WEIR_INVALID_ARGUMENT', 'kafkaChangelog: starting from a savepoint is not supported with state kept in Kafka'));
  }

  async write(delta: CheckpointDelta): Promise<{ bytes: number }> {
    this.lastId = Math.max(this.lastId, delta.id);
    const batch = this.batchOf(delta);
    let bytes = 0;
    for (const m of batch.messages) bytes += m.key.length + (m.value?.length ?? 0);
    if (this.carried || batch.messages.length === 0) return { bytes };
    await this.connect();
    if (!this.producer) {
      this.producer = this.client!.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
      await this.producer.connect();
    }
    try {
      await this.producer.send({ topic: this.opts.topic, acks: -1, messages: batch.messages.map((m) => ({ ...m })) });
    } catch (e) {
      throw new WeirError('WEIR_CHECKPOINT_FAILED', `checkpoint ${delta.id}: writing ${batch.messages.length} changelog records to ${this.opts.topic} failed: ${messageOf(e)}`, { cause: e });
    }
    return { bytes };
  }

  async close(): Promise<void> {
    const member = this.member;
    this.member = null;
    const errors: unknown[] = [];
    for (const c of [this.producer, this.admin]) {
      try {
        await c?.disconnect();
      } catch (e) {
        errors.push(e);
      }
    }
    this.producer = null;
    this.admin = null;
    try {
      await member?.release();
    } catch (e) {
      errors.push(e);
    }
    if (errors.length > 0) throw errors[0];
  }

  private requireMember(): Source<unknown> & KafkaGroupMember {
    if (!this.member) throw new WeirError('WEIR_JOB_STATE', 'kafkaChangelog: not attached to a job (use it as `checkpoint.storage`)');
    return this.member;
  }

  /** Connects (once) and makes sure the changelog topic exists, compacted, with the source topic's partition count. */
  private async connect(): Promise<void> {
    if (this.admin) return;
    const member = this.requireMember();
    const conn: KafkaConnection = this.opts.client || this.opts.brokers ? this.opts : member.connection;
    this.client = await kafkaClientOf(conn, this.logger!, `changelog(${this.opts.topic})`);
    const admin = this.client.admin();
    await admin.connect();
    this.admin = admin;
    const [topic] = member.topics;
    const meta = await admin.fetchTopicMetadata({ topics: [topic] });
    this.partitions = meta.topics[0].partitions.length;
    const existing = await admin.listTopics();
    if (!existing.includes(this.opts.topic)) {
      await admin
        .createTopics({ waitForLeaders: true, topics: [{ topic: this.opts.topic, numPartitions: this.partitions, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }] })
        .catch((e: unknown) => {
          if (!/already exists/i.test(messageOf(e))) throw e;
        });
    }
    const own = await admin.fetchTopicMetadata({ topics: [this.opts.topic] });
    const n = own.topics[0].partitions.length;
    if (n !== this.partitions) {
      throw new WeirError('WEIR_INVALID_PLAN', `kafkaChangelog: ${this.opts.topic} has ${n} partitions but ${topic} has ${this.partitions}: they must match (a key's state sits in the partition its records come from)`);
    }
  }

  /** A checkpoint's changed state and partition positions as changelog records. */
  private batchOf(delta: CheckpointDelta): ChangelogBatch {
    const member = this.requireMember();
    const headers = { 'weir.checkpoint': String(delta.id) };
    const messages: { partition: number; key: string; value: string | null; headers: Record<string, string> }[] = [];
    const n = this.partitions;
    if (n === 0) throw new WeirError('WEIR_INTERNAL', 'kafkaChangelog: a checkpoint before the state was loaded');
    for (const [op, snap] of Object.entries(delta.operators)) {
      for (const c of snap.changes) {
        const key: ChangelogKey = ['s', op, c.table, c.ns, c.key];
        messages.push({ partition: kafkaPartitionOf(c.key, n), key: JSON.stringify(key), value: c.value ?? null, headers });
      }
    }
    const src = delta.sources[this.sourceStep];
    const [topic] = member.topics;
    const offsets = (src?.position as { offsets?: Record<string, Record<string, string>> } | undefined)?.offsets?.[topic] ?? {};
    for (const [partition, offset] of Object.entries(offsets)) {
      const pos: PartitionPosition = { offset, watermark: src?.watermark.splits?.[`${topic}:${partition}`] };
      messages.push({ partition: Number(partition), key: JSON.stringify(['p', topic] satisfies ChangelogKey), value: JSON.stringify(pos), headers });
    }
    return { topic: this.opts.topic, messages };
  }

  /**
   * Reads the changelog partitions `assigned` to the end: appends a marker to each first, then reads
   * (read_committed) until every marker came back. An open transaction before a marker holds the read
   * until it commits or aborts, so what comes back is exactly what was committed before.
   */
  private async readPartitions(
    assigned: readonly number[],
    timeoutMs: number,
  ): Promise<{ state: Map<string, Map<string, { table: string; ns: number; key: unknown; value: string }>>; positions: Map<number, PartitionPosition>; maxId: number }> {
    const state = new Map<string, Map<string, { table: string; ns: number; key: unknown; value: string }>>();
    const positions = new Map<number, PartitionPosition>();
    let maxId = 0;
    if (assigned.length === 0) return { state, positions, maxId };
    const token = `${this.instance}.${++this.restores}.${randomUUID()}`;
    const markerKey = JSON.stringify(['m', token] satisfies ChangelogKey);
    const producer = this.client!.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    try {
      await producer.send({ topic: this.opts.topic, acks: -1, messages: assigned.map((partition) => ({ partition, key: markerKey, value: null })) });
    } finally {
      await producer.disconnect().catch(() => undefined);
    }
    const wanted = new Set(assigned);
    const waiting = new Set(assigned);
    const groupId = `weir-restore.${this.opts.topic}.${token}`;
    const consumer = this.client!.consumer({ groupId, readUncommitted: false, allowAutoTopicCreation: false, maxWaitTimeInMs: 200 });
    let finish!: () => void;
    const finished = new Promise<void>((r) => (finish = r));
    try {
      await consumer.connect();
      await consumer.subscribe({ topics: [this.opts.topic], fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachBatch: async ({ batch }) => {
          if (!wanted.has(batch.partition) || !waiting.has(batch.partition)) return;
          for (const m of batch.messages) {
            const keyText = m.key?.toString('utf8') ?? '';
            if (keyText === markerKey) {
              waiting.delete(batch.partition);
              if (waiting.size === 0) finish();
              break;
            }
            const id = Number(m.headers?.['weir.checkpoint']?.toString() ?? 0);
            if (id > maxId) maxId = id;
            let key: ChangelogKey;
            try {
              key = JSON.parse(keyText) as ChangelogKey;
            } catch {
              continue; // not ours
            }
            if (key[0] === 'p') {
              if (m.value !== null) positions.set(batch.partition, JSON.parse(m.value.toString('utf8')) as PartitionPosition);
            } else if (key[0] === 's') {
              const [, op, table, ns, k] = key;
              let byKey = state.get(op);
              if (!byKey) state.set(op, (byKey = new Map()));
              const id2 = JSON.stringify([table, ns, k]);
              if (m.value === null) byKey.delete(id2);
              else byKey.set(id2, { table, ns, key: k, value: m.value.toString('utf8') });
            }
          }
        },
      });
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<boolean>((r) => (timer = setTimeout(() => r(true), timeoutMs)));
      const late = await Promise.race([finished.then(() => false), timedOut]);
      clearTimeout(timer);
      if (late) {
        throw new WeirError('WEIR_CHECKPOINT_FAILED', `kafkaChangelog: reading the state of partitions ${[...waiting].join(', ')} of ${this.opts.topic} took more than ${timeoutMs} ms (a transaction left open by a process that died holds it until the broker aborts it: transaction.timeout.ms)`);
      }
    } finally {
      await consumer.disconnect().catch(() => undefined);
      await this.admin!.deleteGroups([groupId]).catch(() => undefined);
    }
    return { state, positions, maxId };
  }
}

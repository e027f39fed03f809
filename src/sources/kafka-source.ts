import type { Admin, Batch, Consumer, EachBatchPayload, KafkaMessage } from 'kafkajs';
import type { Logger } from 'pino';
import { WeirError, messageOf } from '../errors.js';
import { kafkaClientOf, type KafkaConnection } from '../kafka/kafka-client.js';
import type { KafkaGroupMember } from '../kafka/kafka-changelog-storage.js';
import type { Source, SourceContext } from './source.js';

/**
 * Turns a message's bytes into a value: the shape of weir's codecs (`codecs.json()`, `codecs.avro()`,
 * ...). `decode` is synchronous; `prepare` fetches what a batch needs (schemas) first.
 */
export interface KafkaDecoder<T> {
  readonly name: string;
  open?(): Promise<void>;
  prepare?(batch: readonly Uint8Array[]): Promise<void> | null;
  decode(bytes: Uint8Array): T;
}

/** One record read from Kafka: its value (decoded) and where it came from. */
export interface KafkaRecord<V, K = string | null> {
  readonly topic: string;
  readonly partition: number;
  /** The offset (a decimal string, as Kafka's are 64-bit). */
  readonly offset: string;
  /** The record's Kafka timestamp, epoch ms (a good event time: `timestamp: r => r.timestamp`). */
  readonly timestamp: number;
  readonly key: K;
  readonly value: V;
  /** Headers, as UTF-8 strings (the last value of a repeated header). */
  readonly headers: Readonly<Record<string, string>>;
}

/** Where a partition starts when the checkpoint has no offset for it. */
export type KafkaStartFrom = 'earliest' | 'latest' | 'committed' | { readonly timestamp: number };

/** Options of {@link kafkaSource} (`sources.kafka`). */
export interface KafkaSourceOptions<V, K = string | null> extends KafkaConnection {
  readonly topics: readonly string[];
  /** The consumer group: partitions are shared among the job instances with the same one. */
  readonly groupId: string;
  /** Decodes values (default: UTF-8 JSON). A value that fails goes to the dead-letter policy with its topic, partition and offset. */
  readonly codec?: KafkaDecoder<V>;
  /** Decodes keys (default: UTF-8 string, or null). */
  readonly keyCodec?: KafkaDecoder<K>;
  /**
   * Where partitions without an offset in the checkpoint start: `'earliest'` (default), `'latest'`,
   * `'committed'` (the group's committed offsets, else earliest), or `{ timestamp }` (the first record
   * at or after it). A job restored from a checkpoint resumes every partition the checkpoint has.
   */
  readonly startFrom?: KafkaStartFrom;
  /**
   * `'latest'`: a bounded read: the source ends once every assigned partition reached the end offset
   * it had when the job started (tests, backfills). Default: unbounded.
   */
  readonly endAt?: 'latest';
  /** Commit the offsets of each completed checkpoint to the group (default true): for monitoring and hand-over. */
  readonly commitOffsets?: boolean;
  /** Partitions kafkajs fetches concurrently (default 4): the batches buffered at most. */
  readonly partitionsConsumedConcurrently?: number;
  /** Consumer session timeout, ms (default 30 000): how long a member that died keeps its partitions from the others. */
  readonly sessionTimeout?: number;
  /** @internal The reading side of `KeyedStream.through` (its partitions carry the keyed state after it). */
  readonly repartition?: boolean;
}

/** A source position: the next offset per topic and partition. */
export interface KafkaPosition {
  readonly kind: 'kafka';
  readonly groupId: string;
  readonly offsets: Readonly<Record<string, Readonly<Record<string, string>>>>;
}

/** A fetched batch waiting to be polled. */
interface Pending {
  readonly topic: string;
  readonly partition: number;
  readonly split: string;
  readonly messages: KafkaMessage[];
  next: number;
  /** Resolves the eachBatch call that handed it over (kafkajs then fetches that partition again). */
  readonly done: () => void;
}

const EMPTY_POLL_WAIT_MS = 50;
/** How often a batch waiting for the job heartbeats (and notices a rebalance). */
const HEARTBEAT_EVERY_MS = 1000;

const jsonValues: KafkaDecoder<unknown> = {
  name: 'json',
  decode(bytes) {
    return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  },
};
const stringKeys: KafkaDecoder<string> = {
  name: 'string',
  decode: (bytes) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'),
};

/**
 * Reads Kafka topics as a consumer group member (kafkajs by default). Offsets live in weir's
 * checkpoints (no auto-commit): a restored job resumes each partition exactly where the checkpoint
 * left it; after a checkpoint completes its offsets are also committed to the group. Each partition is
 * a split with its own watermark: the source's watermark is the minimum over the topics' partitions
 * that are not idle, assigned to this member or not (set `idleTimeout` in the watermark strategy for
 * topics with quiet partitions). Backpressure: a
 * fetched batch is handed over only as fast as the job polls it, and kafkajs fetches a partition again
 * only once its batch is taken, so memory stays bounded when a sink is slow.
 *
 * @example
 * p.source(sources.kafka<Click>({ brokers: ['localhost:9092'], topics: ['clicks'], groupId: 'click-counts' }),
 *          { timestamp: r => r.timestamp, watermarks: watermarks.boundedOutOfOrderness('5s', { idleTimeout: '30s' }) })
 *  .map(r => r.value)
 */
export function kafkaSource<V = unknown, K = string | null>(opts: KafkaSourceOptions<V, K>): Source<KafkaRecord<V, K>> {
  return new KafkaSource<V, K>(opts);
}

class KafkaSource<V, K> implements Source<KafkaRecord<V, K>>, KafkaGroupMember {
  readonly name: string;
  readonly kafkaGroupMember = true as const;
  currentSplit: string | undefined = undefined;
  private ctx!: SourceContext;
  private logger!: Logger;
  private consumer: Consumer | null = null;
  private admin: Admin | null = null;
  private running = false;
  private closed = false;
  private readonly queue: Pending[] = [];
  private wake: (() => void) | null = null;
  /** Next offset per split, for what was handed to the job. */
  private readonly positions = new Map<string, string>();
  /** Offsets to seek to, from a checkpoint. */
  private restored: Map<string, string> | null = null;
  /** Where to start partitions the checkpoint does not have (offset per split), fetched at open. */
  private readonly startOffsets = new Map<string, string>();
  /** The end offset per split when the source opened (bounded reads stop there). */
  private readonly endOffsets = new Map<string, string>();
  private assigned: readonly string[] = [];
  /** Every partition of the topics (at open): the splits whose watermarks count, assigned now or not. */
  private allSplits: readonly string[] = [];
  private readonly valueCodec: KafkaDecoder<V>;
  private readonly keyCodec: KafkaDecoder<K>;
  private crashed: unknown = null;
  /**
   * Group state (`kafkaChangelog` checkpoints): the consumer outlives a job restart, new partitions
   * wait (paused) until the job restored their state and seeks, and a rebalance ends the job.
   */
  private groupState = false;
  /** Group state: the partitions assigned now (null before the first join). */
  private assignedPartitions: number[] | null = null;
  /** Group state: the assignment the running job restored its state for. */
  private jobAssignment: string | null = null;
  /** Group state: the group rebalanced since the job restored (it must start again). */
  private rebalanced = false;
  /** Group state: between two jobs (no batch is queued meanwhile). */
  private suspended = false;
  private readonly assignmentWaiters: (() => void)[] = [];
  /** Set by `kafkaChangelog` for a source upstream of a repartition: restarts resume at the group's committed offsets. */
  private startOverride: KafkaStartFrom | undefined = undefined;

  constructor(private readonly opts: KafkaSourceOptions<V, K>) {
    if (!opts || !Array.isArray(opts.topics) || opts.topics.length === 0) throw new WeirError('WEIR_INVALID_ARGUMENT', 'sources.kafka: give `topics` (at least one)');
    if (typeof opts.groupId !== 'string' || opts.groupId === '') throw new WeirError('WEIR_INVALID_ARGUMENT', 'sources.kafka: give a `groupId`');
    this.name = `kafka(${opts.topics.join(',')})`;
    this.valueCodec = opts.codec ?? (jsonValues as KafkaDecoder<V>);
    this.keyCodec = opts.keyCodec ?? (stringKeys as unknown as KafkaDecoder<K>);
  }

  get groupId(): string {
    return this.opts.groupId;
  }

  get topics(): readonly string[] {
    return this.opts.topics;
  }

  get connection(): KafkaConnection {
    return this.opts;
  }

  enableGroupState(): void {
    this.groupState = true;
  }

  /** Whether this is the reading side of a repartition (`through`). */
  get repartition(): boolean {
    return this.opts.repartition === true;
  }

  /** From now on, partitions without a checkpointed offset start at the group's committed offsets. */
  useCommittedStart(): void {
    this.startOverride = 'committed';
  }

  /** The partitions assigned to this member once it joined (group state); the running job is bound to them. */
  async assignment(timeoutMs: number): Promise<readonly number[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.assignedPartitions === null) {
      if (this.crashed !== null) throw new WeirError('WEIR_SOURCE_FAILED', `the Kafka consumer stopped: ${messageOf(this.crashed)}`, { step: this.ctx?.name ?? this.name, cause: this.crashed });
      if (Date.now() > deadline) throw new WeirError('WEIR_SOURCE_FAILED', `no partitions of ${this.opts.topics.join(', ')} were assigned to this member of group ${this.opts.groupId} within ${timeoutMs} ms`, { step: this.ctx?.name ?? this.name });
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 500);
        this.assignmentWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    const parts = this.assignedPartitions;
    this.jobAssignment = parts.join(',');
    this.rebalanced = false;
    return parts;
  }

  /** Whether the group kept this member's partitions since the job restored them (else it must not commit). */
  stillOwnsPartitions(): boolean {
    return !this.rebalanced;
  }

  async release(): Promise<void> {
    this.groupState = false;
    this.suspended = false;
    await this.close();
  }

  async open(ctx: SourceContext): Promise<void> {
    this.ctx = ctx;
    this.logger = ctx.logger;
    if (this.groupState && this.consumer) {
      // A restart after a rebalance: the same group member goes on; the job seeks its partitions.
      this.closed = false;
      return;
    }
    // A source object may be opened again (the job starts again after a rebalance): start afresh.
    this.running = false;
    this.closed = false;
    this.crashed = null;
    this.queue.length = 0;
    this.positions.clear();
    this.restored = null;
    this.startOffsets.clear();
    this.endOffsets.clear();
    this.assigned = [];
    const client = await kafkaClientOf(this.opts, ctx.logger, ctx.name);
    await this.valueCodec.open?.();
    if ((this.keyCodec as unknown) !== this.valueCodec) await this.keyCodec.open?.();
    const admin = (this.admin = client.admin());
    try {
      await admin.connect();
      await this.fetchStartAndEndOffsets(admin);
      const consumer = (this.consumer = client.consumer({
        groupId: this.opts.groupId,
        sessionTimeout: this.opts.sessionTimeout ?? 30_000,
        heartbeatInterval: Math.min(3000, Math.floor((this.opts.sessionTimeout ?? 30_000) / 3)),
        allowAutoTopicCreation: false,
        readUncommitted: false,
        // A fetch waits at most this long for data: also how long closing waits for the last one.
        maxWaitTimeInMs: 500,
      }));
      consumer.on(consumer.events.GROUP_JOIN, (e) => this.onAssignment(e.payload.memberAssignment));
      consumer.on(consumer.events.CRASH, (e) => {
        if (!e.payload.restart) this.crashed = e.payload.error;
      });
      await consumer.connect();
      await consumer.subscribe({ topics: [...this.opts.topics], fromBeginning: true });
      // With group state the member joins now: the state to restore depends on its partitions.
      if (this.groupState) this.start();
    } catch (e) {
      throw new WeirError('WEIR_SOURCE_FAILED', `cannot connect to Kafka or read ${this.opts.topics.join(', ')}: ${messageOf(e)}`, { step: ctx.name, cause: e });
    }
  }

  /** Start offsets for `earliest` / `latest` / a timestamp, and end offsets for bounded reads: fetched once. */
  private async fetchStartAndEndOffsets(admin: Admin): Promise<void> {
    const start = this.startOverride ?? this.opts.startFrom ?? 'earliest';
    const all: string[] = [];
    for (const topic of this.opts.topics) {
      const offsets = await admin.fetchTopicOffsets(topic);
      for (const o of offsets) {
        const split = splitOf(topic, o.partition);
        all.push(split);
        this.endOffsets.set(split, o.high);
        if (start === 'earliest') this.startOffsets.set(split, o.low);
        else if (start === 'latest') this.startOffsets.set(split, o.high);
      }
      if (typeof start === 'object') {
        for (const o of await admin.fetchTopicOffsetsByTimestamp(topic, start.timestamp)) this.startOffsets.set(splitOf(topic, o.partition), o.offset);
      }
      if (start === 'committed') {
        const [committed] = await admin.fetchOffsets({ groupId: this.opts.groupId, topics: [topic] });
        const low = new Map(offsets.map((o) => [o.partition, o.low]));
        for (const c of committed?.partitions ?? []) this.startOffsets.set(splitOf(topic, c.partition), c.offset === '-1' ? (low.get(c.partition) ?? '0') : c.offset);
      }
    }
    this.allSplits = all.sort();
  }

  /** A new assignment: seek each new partition to its checkpointed offset, or where `startFrom` says. */
  private onAssignment(assignment: Record<string, number[]>): void {
    if (this.groupState) {
      this.onGroupStateAssignment(assignment);
      return;
    }
    const list: string[] = [];
    for (const [topic, partitions] of Object.entries(assignment)) {
      for (const partition of partitions) {
        const split = splitOf(topic, partition);
        list.push(split);
        const offset = this.positions.get(split) ?? this.restored?.get(split) ?? this.startOffsets.get(split);
        if (offset !== undefined) {
          this.consumer!.seek({ topic, partition, offset });
          this.positions.set(split, offset);
        }
      }
    }
    list.sort();
    this.assigned = list;
    this.logger.info({ partitions: list }, 'kafka partitions assigned');
  }

  /**
   * Group state: the new partitions wait (paused) until the job restored their state and seeks them;
   * an assignment other than the one the running job restored ends that job (it starts again).
   */
  private onGroupStateAssignment(assignment: Record<string, number[]>): void {
    const [topic] = this.opts.topics;
    const parts = [...(assignment[topic] ?? [])].sort((a, b) => a - b);
    const consumer = this.consumer!;
    const same = this.jobAssignment === parts.join(',') && !this.suspended;
    this.assignedPartitions = parts;
    this.assigned = parts.map((p) => splitOf(topic, p));
    this.logger.info({ partitions: this.assigned }, 'kafka partitions assigned');
    if (same) {
      // Nothing moved: go on where the job is (kafkajs fetches from the committed offsets otherwise).
      for (const p of parts) {
        const at = this.positions.get(splitOf(topic, p));
        if (at !== undefined) consumer.seek({ topic, partition: p, offset: at });
      }
    } else {
      if (parts.length > 0) consumer.pause([{ topic, partitions: parts }]);
      if (this.jobAssignment !== null) this.rebalanced = true;
      this.wake?.();
    }
    for (const w of this.assignmentWaiters.splice(0)) w();
  }

  savePosition(): KafkaPosition {
    const offsets: Record<string, Record<string, string>> = {};
    for (const [split, offset] of this.positions) {
      const [topic, partition] = parseSplit(split);
      (offsets[topic] ??= {})[partition] = offset;
    }
    return { kind: 'kafka', groupId: this.opts.groupId, offsets };
  }

  seek(position: unknown): void {
    const p = position as Partial<KafkaPosition> | null;
    if (p?.kind !== 'kafka' || typeof p.offsets !== 'object' || p.offsets === null) {
      throw new WeirError('WEIR_SOURCE_FAILED', `cannot resume from ${JSON.stringify(position)}: not a Kafka position`, { step: this.ctx?.name ?? this.name });
    }
    const restored = new Map<string, string>();
    for (const [topic, parts] of Object.entries(p.offsets)) for (const [partition, offset] of Object.entries(parts)) restored.set(splitOf(topic, Number(partition)), offset);
    this.restored = restored;
    if (this.groupState) {
      this.seekAssigned(restored);
      return;
    }
    for (const [split, offset] of restored) this.positions.set(split, offset);
  }

  /** Group state: positions for exactly the assigned partitions (restored, else `startFrom`), then fetching resumes. */
  private seekAssigned(restored: ReadonlyMap<string, string>): void {
    const [topic] = this.opts.topics;
    const consumer = this.consumer!;
    for (const q of this.queue.splice(0)) q.done();
    this.positions.clear();
    const parts = this.assignedPartitions ?? [];
    for (const partition of parts) {
      const split = splitOf(topic, partition);
      const offset = restored.get(split) ?? this.startOffsets.get(split);
      if (offset === undefined) continue;
      consumer.seek({ topic, partition, offset });
      this.positions.set(split, offset);
    }
    this.suspended = false;
    if (parts.length > 0) consumer.resume([{ topic, partitions: parts }]);
  }

  /**
   * Every partition of the topics, not only those assigned now: a partition another member still
   * holds (one of a job that died, until its session times out) holds the watermark back rather than
   * letting it run ahead on the partitions this member has.
   */
  splits(): readonly string[] {
    // With group state each process's keys come only from its own partitions: their watermarks suffice.
    return this.groupState ? this.assigned : this.allSplits;
  }

  /** After a checkpoint completed: commit its offsets to the group (monitoring; where another member picks up). */
  async checkpointComplete(position: unknown): Promise<void> {
    if (this.opts.commitOffsets === false || !this.consumer || this.closed) return;
    const p = position as KafkaPosition;
    const list: { topic: string; partition: number; offset: string }[] = [];
    for (const [topic, parts] of Object.entries(p.offsets)) for (const [partition, offset] of Object.entries(parts)) list.push({ topic, partition: Number(partition), offset });
    if (list.length === 0) return;
    try {
      await this.consumer.commitOffsets(list);
    } catch (e) {
      // Not fatal: the checkpoint holds the offsets; a rebalance in flight refuses commits.
      this.logger.warn({ err: e }, 'kafka: committing the checkpoint offsets to the group failed');
    }
  }

  poll(max: number): readonly KafkaRecord<V, K>[] | null | Promise<readonly KafkaRecord<V, K>[] | null> {
    if (this.crashed !== null) throw new WeirError('WEIR_SOURCE_FAILED', `the Kafka consumer stopped: ${messageOf(this.crashed)}`, { step: this.ctx.name, cause: this.crashed });
    if (this.rebalanced) {
      throw new WeirError('WEIR_REBALANCED', `the partitions of group ${this.opts.groupId} moved (now ${this.assigned.join(', ') || 'none'}): the job starts again on them`, { step: this.ctx.name });
    }
    if (!this.running) this.start();
    if (this.endReached()) return null;
    const head = this.queue[0];
    if (head === undefined) return this.waitForData();
    return this.take(head, max);
  }

  /** Bounded reads: every partition of the topics is at its end offset (and nothing is queued). */
  private endReached(): boolean {
    if (this.opts.endAt !== 'latest' || this.queue.length > 0) return false;
    for (const [split, end] of this.endOffsets) {
      if (this.groupState && !this.assigned.includes(split)) continue;
      const at = this.positions.get(split) ?? this.startOffsets.get(split);
      if (at === undefined || BigInt(at) < BigInt(end)) return false;
    }
    return true;
  }

  /** Nothing queued: resolves with `[]` once a batch arrives or after a short wait (the job checks idleness, stop). */
  private waitForData(): Promise<readonly KafkaRecord<V, K>[] | null> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = null;
        resolve(this.endReached() ? null : []);
      }, EMPTY_POLL_WAIT_MS);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = null;
        resolve([]);
      };
    });
  }

  /** Up to `max` records of the head batch, decoded; bad ones go to the dead-letter policy. */
  private take(head: Pending, max: number): readonly KafkaRecord<V, K>[] | Promise<readonly KafkaRecord<V, K>[]> {
    const end = Math.min(head.messages.length, head.next + max);
    const slice = head.messages.slice(head.next, end);
    const prepared = this.prepare(slice);
    if (prepared !== null) return prepared.then(() => this.decodeSlice(head, slice, end));
    return this.decodeSlice(head, slice, end);
  }

  private prepare(slice: readonly KafkaMessage[]): Promise<void> | null {
    if (!this.valueCodec.prepare && !this.keyCodec.prepare) return null;
    const values = slice.flatMap((m) => (m.value ? [m.value] : []));
    const keys = slice.flatMap((m) => (m.key ? [m.key] : []));
    const a = this.valueCodec.prepare?.(values) ?? null;
    const b = this.keyCodec.prepare?.(keys) ?? null;
    if (a === null && b === null) return null;
    return Promise.all([a, b]).then(() => undefined);
  }

  private decodeSlice(head: Pending, slice: readonly KafkaMessage[], end: number): KafkaRecord<V, K>[] {
    const out: KafkaRecord<V, K>[] = [];
    const { topic, partition } = head;
    for (const m of slice) {
      let key: K;
      let value: V;
      try {
        key = m.key === null ? (null as K) : this.keyCodec.decode(m.key);
      } catch (e) {
        this.reject(topic, partition, m, 'key', e);
        continue;
      }
      try {
        value = m.value === null ? (null as V) : this.valueCodec.decode(m.value);
      } catch (e) {
        this.reject(topic, partition, m, 'value', e);
        continue;
      }
      out.push({ topic, partition, offset: m.offset, timestamp: Number(m.timestamp), key, value, headers: headersOf(m) });
    }
    head.next = end;
    this.currentSplit = head.split;
    if (slice.length > 0) this.positions.set(head.split, (BigInt(slice[slice.length - 1].offset) + 1n).toString());
    if (head.next >= head.messages.length) {
      // Usually the head of the queue; not if a rebalance took it back while a codec prepared it.
      const i = this.queue.indexOf(head);
      if (i >= 0) this.queue.splice(i, 1);
      head.done();
    }
    return out;
  }

  /** A message that cannot be decoded: to the dead-letter policy, with where it was and its raw bytes. */
  private reject(topic: string, partition: number, m: KafkaMessage, what: 'key' | 'value', cause: unknown): void {
    const raw = {
      topic,
      partition,
      offset: m.offset,
      timestamp: Number(m.timestamp),
      key: m.key === null ? null : m.key.toString('base64'),
      value: m.value === null ? null : m.value.toString('base64'),
      encoding: 'base64',
      headers: headersOf(m),
    };
    const codec = what === 'key' ? this.keyCodec.name : this.valueCodec.name;
    this.ctx.reject(raw, `${topic}/${partition}@${m.offset}: the ${what} cannot be decoded as ${codec}`, cause);
  }

  private start(): void {
    this.running = true;
    const consumer = this.consumer!;
    consumer
      .run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: this.opts.partitionsConsumedConcurrently ?? 4,
        eachBatch: (payload) => this.onBatch(payload),
      })
      .catch((e: unknown) => (this.crashed = e));
  }

  /** kafkajs hands over a partition's batch: queue it and wait until the job took all of it. */
  private async onBatch({ batch, heartbeat, isRunning, isStale, resolveOffset }: EachBatchPayload): Promise<void> {
    if (batch.messages.length === 0 || this.closed || this.suspended) return;
    const split = splitOf(batch.topic, batch.partition);
    const messages = this.fromPosition(batch, split);
    // kafkajs fetches a partition again from its last resolved offset (nothing is committed: autoCommit
    // is off): resolve what was handed over, or what was skipped, or it fetches the same batch forever.
    if (messages.length === 0) {
      resolveOffset(batch.lastOffset());
      return;
    }
    let resolve!: () => void;
    const done = new Promise<void>((r) => (resolve = r));
    this.queue.push({ topic: batch.topic, partition: batch.partition, split, messages, next: 0, done: resolve });
    this.wake?.();
    for (;;) {
      const finished = await Promise.race([done.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), HEARTBEAT_EVERY_MS).unref())]);
      if (finished) {
        if (!this.closed) resolveOffset(messages[messages.length - 1].offset);
        return;
      }
      // A heartbeat that fails means the group is rebalancing: give the batch back at once so the
      // consumer can rejoin (what the job took of it is in `positions`; a refetch starts there).
      const rebalancing = !isRunning() || isStale() || this.closed || (await heartbeat().then(() => false, () => true));
      if (rebalancing) {
        const i = this.queue.findIndex((q) => q.done === resolve);
        if (i >= 0) this.queue.splice(i, 1);
        return;
      }
    }
  }

  /** The messages of a batch from the split's position on (a batch fetched before a seek may start earlier). */
  private fromPosition(batch: Batch, split: string): KafkaMessage[] {
    const at = this.positions.get(split);
    if (at === undefined) return batch.messages;
    const from = BigInt(at);
    return batch.messages.filter((m) => BigInt(m.offset) >= from);
  }

  async close(): Promise<void> {
    if (this.groupState && this.consumer && this.crashed === null) {
      // Between two jobs of a group member: stay in the group, fetch nothing until the next job seeks.
      this.suspended = true;
      this.jobAssignment = null;
      for (const q of this.queue.splice(0)) q.done();
      this.wake?.();
      const [topic] = this.opts.topics;
      const parts = this.assignedPartitions ?? [];
      if (parts.length > 0) this.consumer.pause([{ topic, partitions: parts }]);
      return;
    }
    this.closed = true;
    for (const q of this.queue.splice(0)) q.done();
    this.wake?.();
    const errors: unknown[] = [];
    for (const c of [this.consumer, this.admin]) {
      try {
        await c?.disconnect();
      } catch (e) {
        errors.push(e);
      }
    }
    if (errors.length > 0) throw errors[0];
  }
}

function splitOf(topic: string, partition: number): string {
  return `${topic}:${partition}`;
}

function parseSplit(split: string): [string, string] {
  const i = split.lastIndexOf(':');
  return [split.slice(0, i), split.slice(i + 1)];
}

/** Shared by every record without headers (no object per record). */
const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({});

function headersOf(m: KafkaMessage): Readonly<Record<string, string>> {
  if (!m.headers) return NO_HEADERS;
  let any = false;
  for (const _ in m.headers) {
    any = true;
    break;
  }
  if (!any) return NO_HEADERS;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(m.headers)) {
    const last = Array.isArray(v) ? v[v.length - 1] : v;
    if (last !== undefined) out[k] = Buffer.isBuffer(last) ? last.toString('utf8') : String(last);
  }
  return out;
}

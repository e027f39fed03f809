import type { Admin, ICustomPartitioner, Message, Producer, Transaction } from 'kafkajs';
import type { Logger } from 'pino';
import type { SourceSnapshot } from '../checkpoint/snapshot.js';
import { WeirError, messageOf } from '../errors.js';
import { kafkaClientOf, type KafkaClient, type KafkaConnection } from '../kafka/kafka-client.js';
import type { ChangelogCarrier } from '../kafka/kafka-changelog-storage.js';
import type { KafkaPosition } from '../sources/kafka-source.js';
import type { DeadLetter, Sink, SinkContext } from './sink.js';
import { SerialQueue, checkEpoch, transactionStep, type CommitHandle, type PreCommitContext, type TransactionalSink } from './transactional-sink.js';

/** Turns a value into a message's bytes: the shape of weir's codecs (`codecs.json()`, `codecs.avro()`, ...). */
export interface KafkaEncoder<T> {
  readonly name: string;
  open?(): Promise<void>;
  encode(value: T): Uint8Array;
}

/** Options of {@link kafkaSink} (`sinks.kafka`). */
export interface KafkaSinkOptions<T> extends KafkaConnection {
  /** The topic every record goes to. */
  readonly topic: string;
  /** Encodes values (default: UTF-8 JSON). */
  readonly codec?: KafkaEncoder<T>;
  /** The message key (default none: Kafka's partitioner spreads the records). */
  readonly key?: (record: T) => string | Uint8Array | null;
  /** Headers per record. */
  readonly headers?: (record: T) => Record<string, string>;
  /**
   * Exactly once (default false: at least once). Records go out in one Kafka transaction per
   * checkpoint, committed (with the job's consumed Kafka offsets) once the checkpoint is durable: a
   * `read_committed` consumer sees each result once, even when the job is killed and restarted. Needs
   * the job's `checkpoint`.
   */
  readonly exactlyOnce?: boolean;
  /**
   * The transactional id (default `weir.<job>.<sink step>`): fixed across restarts, so a restarted job
   * fences the producer of the one that died. Two jobs writing at once need different ones.
   */
  readonly transactionalId?: string;
  /**
   * How long the broker lets a transaction stay open, ms (default 60 000; 10 000 with
   * `kafkaChangelog` checkpoints): a process that died leaves its transaction open this long, which
   * holds back `read_committed` readers of the topic (and the group's state hand-over). Must exceed
   * the checkpoint interval plus the time a commit takes.
   */
  readonly transactionTimeout?: number;
}

/** A Kafka sink's pre-committed transaction. */
export interface KafkaCommitHandle extends CommitHandle {
  readonly transactionalId: string;
  /** True when the epoch wrote nothing (no transaction to commit). */
  readonly empty: boolean;
}

const jsonValues: KafkaEncoder<unknown> = { name: 'json', encode: (v) => Buffer.from(JSON.stringify(v), 'utf8') };

/**
 * Writes records to a Kafka topic. At least once by default (one acknowledged `send` per batch);
 * with `exactlyOnce`, transactional: see {@link KafkaSinkOptions.exactlyOnce}.
 *
 * How exactly-once survives a crash with kafkajs, which cannot resume a transaction after a restart:
 * each transaction also commits the checkpoint's epoch as the "offset" of a marker consumer group
 * (`weir-epoch.<transactional id>`, on partition 0 of the topic), atomically with the records. A
 * restarted job first fences the old producers (their open transactions are aborted, or completed
 * if they were committing), then reads the marker: a checkpoint whose transaction is not in it is
 * given up, and the job restores the checkpoint before it (whose transaction did commit) and replays
 * from there. Two producers (`<transactional id>.0` / `.1`) take turns, so records keep flowing while
 * a checkpoint's transaction waits for its commit.
 *
 * @example
 * stream.sink(sinks.kafka({ brokers: ['localhost:9092'], topic: 'alerts', key: a => a.card, exactlyOnce: true }))
 */
export function kafkaSink<T>(opts: KafkaSinkOptions<T>): Sink<T> | TransactionalSink<T> {
  if (!opts || typeof opts.topic !== 'string' || opts.topic === '') throw new WeirError('WEIR_INVALID_ARGUMENT', 'sinks.kafka: give a `topic`');
  return opts.exactlyOnce ? new TransactionalKafkaSink<T>(opts) : new KafkaSink<T>(opts);
}

/** Builds the messages of a batch. */
function messagesOf<T>(opts: KafkaSinkOptions<T>, codec: KafkaEncoder<T>, items: readonly T[], timestamps: readonly number[], step: string): Message[] {
  const out: Message[] = new Array(items.length);
  const { key, headers } = opts;
  for (let i = 0; i < items.length; i++) {
    const r = items[i];
    let value: Uint8Array;
    try {
      value = codec.encode(r);
    } catch (e) {
      throw new WeirError('WEIR_ENCODE_FAILED', `a record cannot be encoded as ${codec.name}: ${messageOf(e)}`, { step, record: r, cause: e });
    }
    const k = key?.(r) ?? null;
    out[i] = {
      key: k === null ? null : typeof k === 'string' ? k : Buffer.from(k.buffer, k.byteOffset, k.byteLength),
      value: Buffer.from(value.buffer, value.byteOffset, value.byteLength),
      timestamp: String(Math.floor(timestamps[i])),
      ...(headers ? { headers: headers(r) } : {}),
    };
  }
  return out;
}

class KafkaSink<T> implements Sink<T> {
  readonly name: string;
  private producer: Producer | null = null;
  private step = '';
  private readonly codec: KafkaEncoder<T>;

  constructor(private readonly opts: KafkaSinkOptions<T>) {
    this.name = `kafka(${opts.topic})`;
    this.codec = opts.codec ?? (jsonValues as KafkaEncoder<T>);
  }

  async open(ctx: SinkContext): Promise<void> {
    this.step = ctx.name;
    const client = await kafkaClientOf(this.opts, ctx.logger, ctx.name);
    await this.codec.open?.();
    this.producer = client.producer({ idempotent: true, maxInFlightRequests: 5, allowAutoTopicCreation: false, createPartitioner: await defaultPartitioner() });
    await this.producer.connect();
  }

  async write(items: readonly T[], timestamps: readonly number[]): Promise<void> {
    const messages = messagesOf(this.opts, this.codec, items, timestamps, this.step);
    try {
      await this.producer!.send({ topic: this.opts.topic, messages, acks: -1 });
    } catch (e) {
      throw new WeirError('WEIR_SINK_FAILED', `sending ${messages.length} records to ${this.opts.topic} failed: ${messageOf(e)}`, { step: this.step, cause: e });
    }
  }

  async close(): Promise<void> {
    await this.producer?.disconnect();
    this.producer = null;
  }
}

/**
 * Two transactional producers take turns: the records after a checkpoint's `preCommit` go into the
 * other producer's transaction while the pre-committed one waits for its `commit` (a producer has one
 * transaction at a time). Checkpoints never overlap, so the other producer's previous transaction is
 * always committed by then.
 */
const PRODUCERS = 2;

class TransactionalKafkaSink<T> implements TransactionalSink<T>, ChangelogCarrier {
  readonly transactional = true as const;
  readonly carriesChangelog = true as const;
  /** With `kafkaChangelog`: this process's name, the end of its transactional ids. */
  private instance: string | null = null;
  readonly name: string;
  private producers: Producer[] = [];
  private ids: string[] = [];
  private client: KafkaClient | null = null;
  private admin: Admin | null = null;
  /** Each producer's open transaction. */
  private readonly txns: (Transaction | null)[] = new Array<Transaction | null>(PRODUCERS).fill(null);
  /** The producer new records go to. */
  private current = 0;
  /** Pre-committed epochs not yet committed or aborted → their producer. */
  private readonly pending = new Map<number, number>();
  private transactionalId = '';
  private step = '';
  private logger!: Logger;
  private closed = false;
  private readonly queue = new SerialQueue();
  private readonly codec: KafkaEncoder<T>;

  constructor(private readonly opts: KafkaSinkOptions<T>) {
    this.name = `kafka(${opts.topic})`;
    this.codec = opts.codec ?? (jsonValues as KafkaEncoder<T>);
  }

  /** The marker group whose "offset" on partition 0 of the topic is the last committed epoch. */
  private get markerGroup(): string {
    return `weir-epoch.${this.transactionalId}`;
  }

  /** With `kafkaChangelog` checkpoints (each process of the group has its own transactional ids). */
  useInstance(instance: string): void {
    this.instance = instance;
  }

  async open(ctx: SinkContext): Promise<void> {
    this.step = ctx.name;
    this.logger = ctx.logger;
    this.ids = [];
    this.producers = [];
    this.current = 0;
    this.pending.clear();
    this.closed = false;
    const base = this.opts.transactionalId ?? `weir.${ctx.job ?? 'job'}.${ctx.name}`;
    this.transactionalId = this.instance === null ? base : `${base}.${this.instance}`;
    const client = await kafkaClientOf(this.opts, ctx.logger, ctx.name);
    await this.codec.open?.();
    this.admin = client.admin();
    await this.admin.connect();
    this.client = client;
    for (let i = 0; i < PRODUCERS; i++) {
      this.ids.push(`${this.transactionalId}.${i}`);
      this.producers.push(await this.fencedProducer(this.ids[i]));
    }
  }

  /**
   * A connected transactional producer for `transactionalId`. Initializing the id fences a producer
   * of an earlier run: its open transaction is aborted, or completed if it was committing. (kafkajs
   * initializes at the first transaction, so one is begun and aborted here.)
   */
  private async fencedProducer(transactionalId: string): Promise<Producer> {
    const transactionTimeout = this.opts.transactionTimeout ?? (this.instance === null ? undefined : 10_000);
    const producer = this.client!.producer({ transactionalId, transactionTimeout, idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false, createPartitioner: await defaultPartitioner() });
    await producer.connect();
    const fence = await producer.transaction();
    await fence.abort();
    return producer;
  }

  async write(items: readonly T[], timestamps: readonly number[]): Promise<void> {
    const messages = messagesOf(this.opts, this.codec, items, timestamps, this.step);
    const i = this.current;
    const fresh = this.txns[i] === null;
    try {
      this.txns[i] ??= await this.producers[i].transaction();
      await this.txns[i]!.send({ topic: this.opts.topic, messages, acks: -1 });
    } catch (e) {
      // The first send of a transaction found the producer's epoch bumped (the coordinator was still
      // aborting the transaction of a run that died when this one fenced it): nothing of this
      // transaction was sent yet, so initialize the id again and send once more.
      if (fresh && isEpochError(e)) {
        this.logger.warn({ err: e, transactionalId: this.ids[i] }, 'kafka: producer epoch moved on; initializing the transactional id again');
        await this.producers[i].disconnect().catch(() => undefined);
        this.txns[i] = null;
        this.producers[i] = await this.fencedProducer(this.ids[i]);
        this.txns[i] = await this.producers[i].transaction();
        await this.txns[i]!.send({ topic: this.opts.topic, messages, acks: -1 });
        return;
      }
      throw new WeirError('WEIR_SINK_FAILED', `sending ${messages.length} records to ${this.opts.topic} in a transaction failed: ${messageOf(e)}`, { step: this.step, cause: e });
    }
  }

  preCommit(epoch: number, context?: PreCommitContext): Promise<KafkaCommitHandle> {
    checkEpoch(epoch, this.step);
    return this.queue.run(() =>
      transactionStep(this.step, this.closed, `preCommit(${epoch})`, async () => {
        const i = this.current;
        const changelog = context?.changelog;
        if (this.txns[i] === null && changelog !== undefined && changelog.messages.length > 0) this.txns[i] = await this.producers[i].transaction();
        const txn = this.txns[i];
        if (txn === null) return { epoch, transactionalId: this.ids[i], empty: true };
        if (changelog !== undefined && changelog.messages.length > 0) {
          try {
            await txn.send({ topic: changelog.topic, acks: -1, messages: changelog.messages.map((m) => ({ ...m })) });
          } catch (e) {
            throw new WeirError('WEIR_SINK_COMMIT_FAILED', `sending ${changelog.messages.length} state records to ${changelog.topic} in the transaction of epoch ${epoch} failed: ${messageOf(e)}`, { step: this.step, cause: e });
          }
        }
        // The records are acknowledged (send awaited them); add the epoch marker and the consumed offsets.
        await retryConcurrent(() => txn.sendOffsets({ consumerGroupId: this.markerGroup, topics: [{ topic: this.opts.topic, partitions: [{ partition: 0, offset: String(epoch) }] }] }));
        for (const position of kafkaPositions(context?.sources)) {
          const topics = Object.entries(position.offsets).map(([topic, parts]) => ({ topic, partitions: Object.entries(parts).map(([partition, offset]) => ({ partition: Number(partition), offset })) }));
          if (topics.length > 0) await retryConcurrent(() => txn.sendOffsets({ consumerGroupId: position.groupId, topics }));
        }
        this.pending.set(epoch, i);
        const next = (i + 1) % PRODUCERS;
        if (this.txns[next] !== null) throw new WeirError('WEIR_INTERNAL', `kafka sink: producer ${next} still has a transaction open at preCommit(${epoch})`, { step: this.step });
        this.current = next;
        return { epoch, transactionalId: this.ids[i], empty: false };
      }),
    );
  }

  commit(handle: CommitHandle): Promise<void> {
    return this.queue.run(() =>
      transactionStep(this.step, this.closed, `commit(${handle.epoch})`, async () => {
        const h = handle as KafkaCommitHandle;
        if (h.empty) return;
        const i = this.pending.get(h.epoch);
        if (i !== undefined) {
          await this.txns[i]!.commit();
          this.txns[i] = null;
          this.pending.delete(h.epoch);
          return;
        }
        if ((await this.committedEpoch()) >= h.epoch) return; // committed already (idempotent)
        throw new WeirError('WEIR_SINK_TRANSACTION_LOST', `the Kafka transaction of epoch ${h.epoch} (${h.transactionalId}) is gone: it was never committed`, { step: this.step });
      }),
    );
  }

  abort(handle: CommitHandle): Promise<void> {
    return this.queue.run(() =>
      transactionStep(this.step, this.closed, `abort(${handle.epoch})`, async () => {
        const i = this.pending.get(handle.epoch);
        if (i === undefined) return;
        await this.txns[i]!.abort();
        this.txns[i] = null;
        this.pending.delete(handle.epoch);
      }),
    );
  }

  /**
   * After a restart: the producers of the run that died are fenced (their open transactions aborted)
   * since `open`; the handles must be committed already, which {@link lostHandles} checked before the
   * job chose its checkpoint.
   */
  recover(lastCommitted: readonly CommitHandle[]): Promise<void> {
    return this.queue.run(() =>
      transactionStep(this.step, this.closed, 'recover', async () => {
        const lost = await this.lostOf(lastCommitted);
        if (lost.length > 0) {
          throw new WeirError('WEIR_SINK_TRANSACTION_LOST', `the Kafka transactions of epochs ${lost.join(', ')} (${this.transactionalId}) were never committed`, { step: this.step });
        }
      }),
    );
  }

  /**
   * Which of a checkpoint's handles were never committed (their transaction died with the job):
   * that checkpoint must then be given up for the one before it.
   */
  lostHandles(handles: readonly CommitHandle[]): Promise<number[]> {
    return this.queue.run(() => transactionStep(this.step, this.closed, 'lostHandles', () => this.lostOf(handles)));
  }

  private async lostOf(handles: readonly CommitHandle[]): Promise<number[]> {
    const open = handles.filter((h) => !(h as KafkaCommitHandle).empty);
    if (open.length === 0) return [];
    const committed = await this.committedEpoch();
    return open.filter((h) => h.epoch > committed).map((h) => h.epoch);
  }

  /** The last epoch whose transaction committed (-1: none). */
  private async committedEpoch(): Promise<number> {
    const [t] = await this.admin!.fetchOffsets({ groupId: this.markerGroup, topics: [this.opts.topic] });
    const p0 = t?.partitions.find((p) => p.partition === 0);
    const n = p0 === undefined ? -1 : Number(p0.offset);
    return Number.isFinite(n) ? n : -1;
  }

  async close(): Promise<void> {
    this.closed = true;
    const errors: unknown[] = [];
    // Transactions still open hold records after the last checkpoint: they are dropped (as jsonl's part file).
    for (let i = 0; i < this.txns.length; i++) {
      const txn = this.txns[i];
      this.txns[i] = null;
      if (txn !== null) await txn.abort().catch((e: unknown) => this.logger.warn({ err: e }, 'kafka: aborting an open transaction at close failed'));
    }
    for (const c of [...this.producers, this.admin]) {
      try {
        await c?.disconnect();
      } catch (e) {
        errors.push(e);
      }
    }
    if (errors.length > 0) throw new WeirError('WEIR_SINK_FAILED', `close failed: ${messageOf(errors[0])}`, { step: this.step, cause: errors[0] });
  }
}

/** kafkajs's default (murmur2, as the Java client) partitioner, named so kafkajs does not warn about it. */
async function defaultPartitioner(): Promise<ICustomPartitioner | undefined> {
  try {
    return (await import('kafkajs')).Partitioners.DefaultPartitioner;
  } catch {
    return undefined;
  }
}

/** The Kafka positions among a checkpoint's source positions. */
function kafkaPositions(sources: Readonly<Record<string, SourceSnapshot>> | undefined): KafkaPosition[] {
  if (!sources) return [];
  return Object.values(sources)
    .map((s) => s.position as Partial<KafkaPosition> | undefined)
    .filter((p): p is KafkaPosition => p?.kind === 'kafka' && typeof p.groupId === 'string');
}

/** A producer epoch error: INVALID_PRODUCER_EPOCH or PRODUCER_FENCED (kafkajs error types). */
function isEpochError(e: unknown): boolean {
  for (let x = e as { type?: string; cause?: unknown; originalError?: unknown } | null, i = 0; x && i < 4; i++) {
    if (x.type === 'INVALID_PRODUCER_EPOCH' || x.type === 'PRODUCER_FENCED') return true;
    x = (x.originalError ?? x.cause) as typeof x;
  }
  return false;
}

/**
 * kafkajs does not retry AddOffsetsToTxn when the coordinator still finishes the previous
 * transaction (CONCURRENT_TRANSACTIONS right after a commit): retry it here, briefly.
 */
async function retryConcurrent<R>(f: () => Promise<R>, attempts = 30): Promise<R> {
  for (let i = 1; ; i++) {
    try {
      return await f();
    } catch (e) {
      const type = (e as { type?: string }).type;
      if (type !== 'CONCURRENT_TRANSACTIONS' || i >= attempts) throw e;
      await new Promise((r) => setTimeout(r, Math.min(20 * i, 200)));
    }
  }
}

/** Options of {@link kafkaDeadLetterSink} (`sinks.kafkaDeadLetters`). */
export interface KafkaDeadLetterOptions extends KafkaConnection {
  /** The dead-letter topic. */
  readonly topic: string;
}

/**
 * A dead-letter sink for Kafka input: each record that could not be decoded or processed goes to
 * `topic` as it was read — the original key and value bytes when it never decoded, else the record
 * as JSON — with headers naming why and where: `weir.error.code`, `weir.error.reason`,
 * `weir.error.operator`, `weir.error.source` (the source step), and for Kafka records
 * `weir.source.topic`, `weir.source.partition`, `weir.source.offset` (as Kafka Connect's dead-letter
 * queues do). At least once.
 *
 * @example
 * p.source(sources.kafka<Order>({ brokers, topics: ['orders'], groupId: 'orders' }),
 *          { onError: { deadLetter: sinks.kafkaDeadLetters({ brokers, topic: 'orders.dlq' }) } })
 */
export function kafkaDeadLetterSink(opts: KafkaDeadLetterOptions): Sink<DeadLetter> {
  const { topic, ...connection } = opts;
  return kafkaSink<DeadLetter>({
    ...connection,
    topic,
    codec: { name: 'dead-letter', encode: (d) => deadLetterValue(d.record) },
    key: (d) => deadLetterKey(d.record),
    headers: (d) => {
      const h: Record<string, string> = {
        'weir.error.code': d.code,
        'weir.error.reason': d.reason,
        'weir.error.operator': d.step,
        'weir.error.source': d.source,
      };
      const where = kafkaOrigin(d.record);
      if (where !== null) {
        h['weir.source.topic'] = where.topic;
        h['weir.source.partition'] = String(where.partition);
        h['weir.source.offset'] = String(where.offset);
      }
      return h;
    },
  });
}

/** A Kafka record, or the raw form of one that did not decode (`encoding: 'base64'`), or null. */
function kafkaOrigin(r: unknown): { topic: string; partition: number; offset: string; key: unknown; value: unknown; encoding?: unknown } | null {
  const x = r as { topic?: unknown; partition?: unknown; offset?: unknown } | null;
  if (x === null || typeof x !== 'object' || typeof x.topic !== 'string' || typeof x.partition !== 'number' || typeof x.offset !== 'string') return null;
  return x as { topic: string; partition: number; offset: string; key: unknown; value: unknown; encoding?: unknown };
}

/** The original bytes of a record that never decoded; otherwise the record (or its value) as JSON. */
function deadLetterValue(record: unknown): Uint8Array {
  const k = kafkaOrigin(record);
  if (k !== null && k.encoding === 'base64') return typeof k.value === 'string' ? Buffer.from(k.value, 'base64') : Buffer.alloc(0);
  return Buffer.from(JSON.stringify(record === undefined ? null : record), 'utf8');
}

function deadLetterKey(record: unknown): string | Uint8Array | null {
  const k = kafkaOrigin(record);
  if (k === null || k.key === null || k.key === undefined) return null;
  if (k.encoding === 'base64' && typeof k.key === 'string') return Buffer.from(k.key, 'base64');
  return typeof k.key === 'string' ? k.key : JSON.stringify(k.key);
}

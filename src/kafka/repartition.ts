import type { Logger } from 'pino';
import { WeirError, messageOf } from '../errors.js';
import type { Plan, PlanNode } from '../graph/plan.js';
import { kafkaSink } from '../sinks/kafka-sink.js';
import type { Sink, SinkContext } from '../sinks/sink.js';
import { kafkaSource, type KafkaRecord } from '../sources/kafka-source.js';
import type { Source } from '../sources/source.js';
import { watermarks as wm, type WatermarkStrategy } from '../time/watermark-strategy.js';
import { kafkaClientOf, type KafkaConnection } from './kafka-client.js';

/** Options of `KeyedStream.through`. */
export interface ThroughOptions {
  /** The internal topic the records go through, keyed by the stream's key (created when missing). */
  readonly topic: string;
  /** Its partition count when weir creates it (default: as many as the Kafka source's topic has). */
  readonly partitions?: number;
  /**
   * The event-time watermarks of the records read back (default: bounded out-of-orderness of 1 s,
   * partitions idle after 5 s): records of many upstream partitions interleave in the topic, so their
   * order is re-derived from their timestamps, as Kafka Streams' stream time is. Records later than
   * that go to the keyed step's late output (or are dropped and counted).
   */
  readonly watermarks?: WatermarkStrategy;
}

/** What the Kafka source of a job exposes for `through` (internal). */
interface KafkaRoot {
  readonly kafkaGroupMember: true;
  readonly groupId: string;
  readonly topics: readonly string[];
  readonly connection: KafkaConnection;
}

/** Marks the sink that writes a repartition topic (internal): at-least-once only, see {@link addRepartition}. */
export interface RepartitionWriter {
  readonly repartitionTopic: string;
}

/**
 * Adds the steps of `through`: a Kafka sink writing the stream's records (JSON) to `opts.topic`, keyed
 * by `String(key)` so that Kafka's default partitioner puts each key in one partition, and a Kafka
 * source reading them back in the group `<source's group>.<topic>`; returns the node of the records
 * read back. With `kafkaChangelog`, the keyed state after it belongs to that topic's partitions.
 * At-least-once: a job with an exactly-once sink refuses it (kafkajs's read_committed would let the
 * aborted writes of other processes through).
 */
export function addRepartition(plan: Plan, input: number, key: (r: unknown) => unknown, opts: ThroughOptions, stepName: string | undefined): number {
  if (!opts || typeof opts.topic !== 'string' || opts.topic === '') throw new WeirError('WEIR_INVALID_ARGUMENT', 'through: give a `topic`');
  if (opts.partitions !== undefined && (!Number.isInteger(opts.partitions) || opts.partitions < 1)) {
    throw new WeirError('WEIR_INVALID_ARGUMENT', `through: partitions must be a whole number ≥ 1, got ${String(opts.partitions)}`);
  }
  const root = kafkaRootOf(plan, input);
  const topic = opts.topic;
  const writer = kafkaSink<unknown>({ ...root.connection, topic, key: (r) => String(key(r)) });
  const base = stepName ?? topic;
  plan.add({ kind: 'sink', inputs: [input], sink: creatingTopic(writer, root, topic, opts.partitions), name: `${base}:write`, label: `sink:through(${topic})` });
  const reader = kafkaSource<unknown>({ ...root.connection, topics: [topic], groupId: `${root.groupId}.${topic}`, startFrom: 'committed', repartition: true });
  const read = plan.add({
    kind: 'source',
    inputs: [],
    source: reader as Source<unknown>,
    timestamp: (r) => (r as KafkaRecord<unknown>).timestamp,
    watermarks: opts.watermarks ?? wm.boundedOutOfOrderness('1s', { idleTimeout: '5s' }),
    deadLetter: undefined,
    batchSize: undefined,
    name: `${base}:read`,
    label: `source:through(${topic})`,
  });
  return plan.add({ kind: 'map', inputs: [read], fn: (r) => (r as KafkaRecord<unknown>).value, name: `${base}:value` });
}

/** The one Kafka source `input` comes from (its connection and group name the repartition topic's). */
function kafkaRootOf(plan: Plan, input: number): KafkaRoot {
  const roots = new Set<KafkaRoot>();
  const others: string[] = [];
  const seen = new Set<number>();
  const walk = (id: number): void => {
    if (seen.has(id)) return;
    seen.add(id);
    const node = plan.nodes[id] as PlanNode;
    if (node.kind === 'source') {
      const s = node.source as Partial<KafkaRoot>;
      if (s.kafkaGroupMember === true) roots.add(s as KafkaRoot);
      else others.push(node.source.name);
      return;
    }
    for (const i of node.inputs) walk(i);
  };
  walk(input);
  if (roots.size !== 1 || others.length > 0) {
    throw new WeirError('WEIR_INVALID_PLAN', `through: the stream must come from exactly one Kafka source (it comes from ${[...[...roots].map((r) => `kafka(${r.topics.join(',')})`), ...others].join(', ') || 'none'})`);
  }
  return [...roots][0];
}

/** The writer, creating the topic at open when it is missing. */
function creatingTopic(writer: Sink<unknown>, root: KafkaRoot, topic: string, partitions: number | undefined): Sink<unknown> & RepartitionWriter {
  return {
    name: writer.name,
    repartitionTopic: topic,
    async open(ctx: SinkContext): Promise<void> {
      await ensureTopic(root, topic, partitions, ctx.logger, ctx.name);
      await writer.open?.(ctx);
    },
    write: (items, timestamps) => writer.write(items, timestamps),
    close: () => writer.close?.(),
  };
}

async function ensureTopic(root: KafkaRoot, topic: string, partitions: number | undefined, logger: Logger, step: string): Promise<void> {
  const admin = (await kafkaClientOf(root.connection, logger, step)).admin();
  await admin.connect();
  try {
    if ((await admin.listTopics()).includes(topic)) return;
    const n = partitions ?? (await admin.fetchTopicMetadata({ topics: [root.topics[0]] })).topics[0].partitions.length;
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: n }] }).catch((e: unknown) => {
      if (!/already exists/i.test(messageOf(e))) throw e;
    });
    logger.info({ topic, partitions: n }, 'created the repartition topic');
  } catch (e) {
    throw new WeirError('WEIR_SINK_FAILED', `through: cannot create the topic ${topic}: ${messageOf(e)}`, { step, cause: e });
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/** Whether a sink writes a repartition topic. */
export function isRepartitionWriter(s: Sink<unknown>): boolean {
  return typeof (s as Partial<RepartitionWriter>).repartitionTopic === 'string';
}

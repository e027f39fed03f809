import { WeirError } from './errors.js';
import type { KeyFn, Plan } from './graph/plan.js';
import type { KeyedProcessFunction, StateSpec } from './operators/keyed-process-function.js';
import type { Sink } from './sinks/sink.js';
import { toMillis, type Duration } from './time/duration.js';
import { agg, type Aggregator } from './windows/aggregator.js';
import type { WindowAssigner, WindowInfo, WindowResult } from './windows/window-assigner.js';
import { scoreSpec, type ScoreModel, type ScoreOptions, type Scored } from './ml/scoring/score-spec.js';
import type { DriftReport, KeyedDriftReport } from './ml/drift/drift-report.js';
import type { DriftSpec, DriftStepOptions } from './ml/drift/drift-spec.js';
import { addRepartition, type ThroughOptions } from './kafka/repartition.js';

/** Options every step takes. */
export interface StepOptions {
  /** The step's name in logs, metrics, errors and dead letters (default `kind#id`). Must be unique. */
  name?: string;
}

/**
 * What `keyBy` may return: a primitive, so equal keys are the same key (objects would be compared by
 * identity) and keys can be stored. Build a composite key as a string: `e => `${e.region}|${e.card}``.
 */
export type KeyValue = string | number | bigint | boolean;

/**
 * A stream of `T`. Every method returns a new handle and adds a node to the plan; nothing runs until
 * `pipeline.run()`.
 *
 * @example
 * p.source(sources.array(txns), { timestamp: t => t.ts })
 *  .filter(t => t.amount > 0)
 *  .map(t => ({ ...t, eur: t.amount * 0.9 }))
 *  .sink(sinks.console())
 */
export class Stream<T> {
  /** @internal */
  constructor(
    /** @internal */ readonly plan: Plan,
    /** @internal */ readonly nodeId: number,
  ) {}

  /** One output per element. */
  map<O>(fn: (value: T) => O, opts?: StepOptions): Stream<O> {
    return this.next({ kind: 'map', inputs: [this.nodeId], fn: fn as (r: unknown) => unknown, name: opts?.name });
  }

  /** Keeps the elements for which `fn` is true; a type guard narrows the type. */
  filter<S extends T>(fn: (value: T) => value is S, opts?: StepOptions): Stream<S>;
  filter(fn: (value: T) => boolean, opts?: StepOptions): Stream<T>;
  filter(fn: (value: T) => boolean, opts?: StepOptions): Stream<T> {
    return this.next({ kind: 'filter', inputs: [this.nodeId], fn: fn as (r: unknown) => boolean, name: opts?.name });
  }

  /** Zero or more outputs per element (an array or any iterable); they keep the element's timestamp. */
  flatMap<O>(fn: (value: T) => Iterable<O>, opts?: StepOptions): Stream<O> {
    return this.next({ kind: 'flatMap', inputs: [this.nodeId], fn: fn as (r: unknown) => Iterable<unknown>, name: opts?.name });
  }

  /**
   * Partitions the stream by key for windows and keyed state. The key type is inferred.
   * @example .keyBy(e => e.card)   // KeyedStream<string, Txn>
   */
  keyBy<K extends KeyValue>(fn: (value: T) => K, opts?: StepOptions): KeyedStream<K, T> {
    return new KeyedStream<K, T>(this.plan, this.nodeId, fn, opts?.name);
  }

  /**
   * Merges streams of the same type. The merged watermark is the minimum of the inputs' (idle inputs
   * excepted).
   */
  union(...others: Stream<T>[]): Stream<T> {
    for (const o of others) {
      if (o.plan !== this.plan) throw new WeirError('WEIR_INVALID_PLAN', 'union: streams belong to different pipelines');
    }
    return this.next({ kind: 'union', inputs: [this.nodeId, ...others.map((o) => o.nodeId)] });
  }

  /**
   * Watches a feature for drift: one report per event-time window (or count window), comparing the
   * window's values with a reference by KS or PSI (see docs/ml-drift.md). A feature that is not a
   * numeric field of `T` is a compile error; records whose window already fired go to
   * `opts.lateOutput` (or are dropped and counted).
   * @example
   * txns.drift(ml.psi({ feature: 'amount', reference: trainingAmounts, window: '1m' }))   // Stream<DriftReport>
   */
  drift(spec: DriftSpec<T>, opts?: DriftStepOptions<T>): Stream<DriftReport> {
    return this.next({
      kind: 'drift',
      inputs: [this.nodeId],
      key: unkeyedDrift,
      keyed: false,
      spec: spec as DriftSpec<unknown>,
      lateOutput: opts?.lateOutput as Sink<unknown> | undefined,
      name: opts?.name,
      label: `drift:${spec.test}(${spec.feature})`,
    });
  }

  /**
   * Scores each record with a model and adds the score (field `output`, default `score`) and the
   * model's version (field `versionField`, default `modelVersion`), in order. Records go to the model
   * in micro-batches: one `[rows, features]` tensor and one call per `batchSize` records (or fewer
   * after `maxLatency`). A record with bad features goes to the dead letters; a failed model call
   * trips a circuit breaker and its records get the `fallback` (see docs/ml-scoring.md).
   * @example
   * const model = await ml.tfjs.load('./models/fraud');
   * txns.score(model, { features: ['amount', 'velocity'], output: 'fraud', batchSize: 256, fallback: { score: 0 } })
   *   // Stream<Txn & { fraud: number; modelVersion: string }>
   */
  score<const O extends string = 'score', S = number, const V extends string = 'modelVersion'>(model: ScoreModel<S>, opts: ScoreOptions<T, O, S, V>): Stream<Scored<T, O, S, V>> {
    const spec = scoreSpec(model as ScoreModel<unknown>, opts as unknown as ScoreOptions<unknown, string, unknown, string>);
    const side = spec.fallback.kind === 'side-output' ? spec.fallback.sink : undefined;
    return this.next({ kind: 'score', inputs: [this.nodeId], spec, sideOutput: side, name: opts.name });
  }

  /** Ends the stream in a sink. A sink of another element type is a compile error. */
  sink(sink: Sink<T>, opts?: StepOptions): void {
    this.plan.add({ kind: 'sink', inputs: [this.nodeId], sink: sink as Sink<unknown>, name: opts?.name, label: `sink:${sink.name}` });
  }

  private next<O>(node: Parameters<Plan['add']>[0]): Stream<O> {
    return new Stream<O>(this.plan, this.plan.add(node));
  }
}

/** The key of an unkeyed drift step: one key, so with parallelism one worker sees the whole stream. */
const unkeyedDrift = (): string => '';

/**
 * A stream partitioned by a key of type `K`: window it, or process it with per-key state and timers.
 */
export class KeyedStream<K extends KeyValue, T> {
  /** @internal */
  constructor(
    private readonly plan: Plan,
    private readonly input: number,
    private readonly key: (value: T) => K,
    private readonly keyName: string | undefined,
  ) {}

  /**
   * Re-keys through Kafka, as Kafka Streams' repartition topics do: the records go to `topic` keyed by
   * this stream's key and are read back (in the group `<source group>.<topic>`), so each key's records
   * reach the one process of the group that owns the key's partition. Needed before a keyed step when
   * several processes share a group (`kafkaChangelog`) and the key is not the input topic's Kafka key.
   * Records must survive JSON; at least once (a job with an exactly-once sink refuses it).
   * @example
   * payments.keyBy((p) => p.merchant).through({ topic: 'payments-by-merchant' }).window(windows.tumbling('1m'))
   */
  through(opts: ThroughOptions, stepOpts?: StepOptions): KeyedStream<K, T> {
    const id = addRepartition(this.plan, this.input, this.key as (r: unknown) => unknown, opts, stepOpts?.name);
    return new KeyedStream<K, T>(this.plan, id, this.key, this.keyName);
  }

  /**
   * Groups each key's elements into event-time windows.
   * @example .window(windows.sliding({ size: '5m', slide: '1m' }))
   */
  window(assigner: WindowAssigner): WindowedStream<K, T> {
    return new WindowedStream<K, T>(this.plan, this.input, this.key, assigner, 0, undefined, this.keyName);
  }

  /**
   * Watches a feature for drift per key: one report per key and window, with the key (see
   * {@link Stream.drift}); first-window and trailing references are each key's own.
   * @example
   * txns.keyBy((t) => t.merchant).drift(ml.ks({ feature: 'amount', reference: 'first-window', window: '1h' }))
   *   // Stream<KeyedDriftReport<string>>
   */
  drift(spec: DriftSpec<T>, opts?: DriftStepOptions<T>): Stream<KeyedDriftReport<K>> {
    const id = this.plan.add({
      kind: 'drift',
      inputs: [this.input],
      key: this.key as KeyFn<unknown, unknown>,
      keyed: true,
      spec: spec as DriftSpec<unknown>,
      lateOutput: opts?.lateOutput as Sink<unknown> | undefined,
      name: opts?.name ?? this.keyName,
      label: `drift:${spec.test}(${spec.feature})`,
    });
    return new Stream<KeyedDriftReport<K>>(this.plan, id);
  }

  /**
   * Runs a keyed process function: per-key state (value / map / list) and timers. The output type is
   * what `processElement` returns (or give it: `.process<Alert>(...)`).
   */
  process<O, S extends StateSpec = {}>(fn: KeyedProcessFunction<K, T, O, S>, opts?: StepOptions): Stream<O> {
    const id = this.plan.add({
      kind: 'process',
      inputs: [this.input],
      key: this.key as KeyFn<unknown, unknown>,
      fn: fn as unknown as KeyedProcessFunction<unknown, unknown, unknown, StateSpec>,
      name: opts?.name ?? this.keyName,
    });
    return new Stream<O>(this.plan, id);
  }
}

/**
 * A keyed, windowed stream: say how late data is handled, then aggregate, reduce or process it.
 */
export class WindowedStream<K extends KeyValue, T> {
  /** @internal */
  constructor(
    private readonly plan: Plan,
    private readonly input: number,
    private readonly key: (value: T) => K,
    private readonly assigner: WindowAssigner,
    private readonly lateness: number,
    private readonly late: Sink<T> | undefined,
    private readonly keyName: string | undefined,
  ) {}

  /**
   * Keeps window state `d` after the window fired: a late element within it updates the window and
   * re-fires it with the new result. Later elements go to `lateOutput` (or are dropped and counted).
   */
  allowedLateness(d: Duration): WindowedStream<K, T> {
    return new WindowedStream(this.plan, this.input, this.key, this.assigner, toMillis(d, 'allowedLateness'), this.late, this.keyName);
  }

  /** Receives the elements too late for any window (the elements themselves). */
  lateOutput(sink: Sink<T>): WindowedStream<K, T> {
    return new WindowedStream(this.plan, this.input, this.key, this.assigner, this.lateness, sink, this.keyName);
  }

  /**
   * Aggregates each window incrementally. The result type comes from the aggregator.
   * @example .aggregate(agg.avg(e => e.amount))   // Stream<WindowResult<string, number>>
   */
  aggregate<A, R>(aggregator: Aggregator<T, A, R>, opts?: StepOptions): Stream<WindowResult<K, R>> {
    return this.add(aggregator as Aggregator<unknown, unknown, unknown>, undefined, opts);
  }

  /** Folds each window's elements pairwise; the result has the element type. */
  reduce(fn: (a: T, b: T) => T, opts?: StepOptions): Stream<WindowResult<K, T>> {
    return this.add(agg.reduce(fn) as Aggregator<unknown, unknown, unknown>, undefined, opts);
  }

  /**
   * Calls `fn` once per window with all its elements (buffered: prefer `aggregate` when you can).
   * Return `undefined` to emit nothing.
   */
  process<O>(fn: (elements: readonly T[], window: WindowInfo<K>) => O, opts?: StepOptions): Stream<Exclude<O, undefined>> {
    const project = (w: WindowInfo<unknown>, r: unknown) => fn(r as T[], w as WindowInfo<K>);
    return this.add(agg.collect<T>() as Aggregator<unknown, unknown, unknown>, project, opts);
  }

  private add<O>(aggregator: Aggregator<unknown, unknown, unknown>, project: ((w: WindowInfo<unknown>, r: unknown) => unknown) | undefined, opts: StepOptions | undefined): Stream<O> {
    const id = this.plan.add({
      kind: 'window',
      inputs: [this.input],
      key: this.key as KeyFn<unknown, unknown>,
      assigner: this.assigner,
      aggregator,
      allowedLateness: this.lateness,
      lateOutput: this.late as Sink<unknown> | undefined,
      project,
      name: opts?.name ?? this.keyName,
    });
    return new Stream<O>(this.plan, id);
  }
}

import { MemoryCheckpointStore } from '../checkpoint/memory-checkpoint-store.js';
import type { RestoredCheckpoint } from '../checkpoint/snapshot.js';
import { WeirError } from '../errors.js';
import { silentLogger } from '../observability/logger.js';
import type { MetricSample } from '../observability/metrics.js';
import type { Pipeline } from '../pipeline.js';
import type { Job } from '../runtime/job.js';
import type { SourceNode } from '../runtime/source-node.js';
import type { Sink } from '../sinks/sink.js';
import type { Source } from '../sources/source.js';
import { ManualClock } from '../time/clock.js';

/**
 * An input a {@link TestDriver} feeds by hand. Use it as a pipeline source; the driver pushes records,
 * watermarks and idleness into it. (Under `p.run()` it would simply be an empty, endless source.)
 */
export interface TestInput<T> extends Source<T> {
  readonly testInput: true;
  /** Records sent into it so far (its position in a checkpoint). */
  readonly sent: number;
}

/** A sink that keeps what reached it, with timestamps, for assertions. */
export interface TestOutput<T> extends Sink<T> {
  /** Every record so far, in arrival order. */
  readonly values: T[];
  /** Their event timestamps. */
  readonly timestamps: number[];
  /** Returns the records received since the last `take()` and forgets them. */
  take(): T[];
}

/**
 * A hand-driven input.
 * @example const txns = testInput<Txn>('txns');
 */
export function testInput<T>(name = 'test-input'): TestInput<T> {
  const input = {
    name,
    testInput: true as const,
    sent: 0,
    poll: (): T[] => [],
    savePosition: (): number => input.sent,
    seek(position: unknown): void {
      input.sent = typeof position === 'number' ? position : 0;
    },
  };
  return input;
}

/**
 * A recording output.
 * @example const out = testOutput<WindowResult<string, number>>(); stream.sink(out); ...; out.take()
 */
export function testOutput<T>(name = 'test-output'): TestOutput<T> {
  const values: T[] = [];
  const timestamps: number[] = [];
  let taken = 0;
  return {
    name,
    values,
    timestamps,
    write(items: readonly T[], ts: readonly number[]) {
      for (let i = 0; i < items.length; i++) {
        values.push(items[i]);
        timestamps.push(ts[i]);
      }
    },
    take() {
      const r = values.slice(taken);
      taken = values.length;
      return r;
    },
  };
}

/**
 * A checkpoint taken by {@link TestDriver.checkpoint}: the job's full state at that moment, as a
 * durable store would restore it. Treat it as opaque; restore it with `TestDriver.create(p, { restoreFrom })`.
 */
export type TestCheckpoint = RestoredCheckpoint;

/** Options of {@link TestDriver.create}. */
export interface TestDriverOptions {
  /** Processing time at the start (default 0). */
  startTime?: number;
  /**
   * Start from this checkpoint (taken by another driver on a pipeline built the same way): state,
   * timers, watermarks and source positions come back as they were. Implies checkpointing.
   */
  restoreFrom?: TestCheckpoint;
}

/**
 * Runs a pipeline deterministically, in the spirit of Kafka Streams' TopologyTestDriver and Beam's
 * TestStream: you push records into {@link testInput}s, move the watermark and processing time by
 * hand, and read {@link testOutput}s. Everything runs synchronously inside each call; the source's
 * watermark strategy still applies after each `send` (use `watermarks.none()` for full control).
 * Branches of the job that end in no sink are allowed here, so a test can drive one part of a job.
 *
 * @example
 * const input = testInput<Txn>();
 * const out = testOutput<WindowResult<string, number>>();
 * p.source(input, { timestamp: t => t.ts, watermarks: watermarks.none() })
 *  .keyBy(t => t.card).window(windows.tumbling(1000)).aggregate(agg.count()).sink(out);
 * const d = await TestDriver.create(p);
 * d.send(input, [{ card: 'a', ts: 10 }, { card: 'a', ts: 20 }]);
 * d.advanceWatermark(999);
 * assert.deepEqual(out.take(), [{ key: 'a', start: 0, end: 1000, value: 2 }]);
 * await d.close();
 */
export class TestDriver {
  private closed = false;
  private nextCheckpointId: number;

  private constructor(
    private readonly job: Job,
    /** The processing-time clock the job sees. */
    readonly clock: ManualClock,
    private readonly pipeline: Pipeline,
    private readonly store: MemoryCheckpointStore,
    lastCheckpointId: number,
  ) {
    this.nextCheckpointId = lastCheckpointId + 1;
  }

  /**
   * Compiles and opens the pipeline (sinks, operators, sources) without running its sources; with
   * `restoreFrom`, restores a checkpoint into it first.
   */
  static async create(pipeline: Pipeline, opts: TestDriverOptions = {}): Promise<TestDriver> {
    const clock = new ManualClock(opts.startTime ?? 0);
    const job = pipeline.createJob({ clock, logger: pipeline.options.logger ?? silentLogger(), allowDangling: true, checkpointing: true });
    job.manualTime = true;
    await job.open();
    if (opts.restoreFrom) await job.restore(opts.restoreFrom);
    const store = opts.restoreFrom ? MemoryCheckpointStore.from(opts.restoreFrom) : new MemoryCheckpointStore();
    return new TestDriver(job, clock, pipeline, store, opts.restoreFrom?.id ?? 0);
  }

  /**
   * Takes a checkpoint now, as the job would between two batches, and returns the full state it
   * holds. Restore it into a fresh pipeline (built by the same code) with
   * `TestDriver.create(p2, { restoreFrom })`: the restarted job must go on as if nothing happened.
   * With an operator that works asynchronously (a `score` step with an async model or `maxLatency`,
   * spilled state), `await flush()` first: a checkpoint while it holds input throws `WEIR_JOB_STATE`.
   */
  checkpoint(): TestCheckpoint {
    if (this.job.compiled.operators.some((n) => n.pending)) {
      throw new WeirError('WEIR_JOB_STATE', 'checkpoint(): an operator still holds input (an asynchronous model call, records waiting for maxLatency, state being read back): await driver.flush() first');
    }
    const delta = this.job.snapshotLocal(this.nextCheckpointId++);
    this.store.write(delta);
    return this.store.latest()!;
  }

  /** Pushes records through the job as one batch (or one batch per `batchSize` records). */
  send<T>(input: TestInput<T>, records: readonly T[], opts: { batchSize?: number } = {}): void {
    const node = this.nodeOf(input);
    (input as { sent: number }).sent += records.length;
    const size = opts.batchSize ?? (records.length || 1);
    for (let i = 0; i < records.length; i += size) node.push(records.slice(i, i + size));
  }

  /** Moves the watermark of `input` (or of every input) to `wm`. */
  advanceWatermark(wm: number, input?: TestInput<unknown>): void {
    for (const node of this.nodesOf(input)) node.emitWatermark(wm);
  }

  /** Marks an input idle (it stops holding back the watermark downstream) or active again. */
  setIdle(input: TestInput<unknown>, idle: boolean): void {
    this.nodeOf(input).setIdle(idle);
  }

  /** Moves processing time forward by `ms` and fires the processing-time timers that came due. */
  advanceProcessingTime(ms: number): void {
    this.job.fireProcessingTimers(this.clock.advance(ms));
  }

  /** Ends `input` (or every input): a `+Infinity` watermark fires every window. */
  endInput(input?: TestInput<unknown>): void {
    for (const node of this.nodesOf(input)) node.end();
  }

  /** Waits for async sink writes. */
  async flush(): Promise<void> {
    await this.job.settleSinks();
  }

  /** The job's counters. */
  metrics(): MetricSample[] {
    return this.pipeline.metrics();
  }

  /** Stops the job: closes sinks and sources (windows not yet fired stay unfired: call `endInput` first). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.job.stop();
    await this.job.run();
  }

  private nodeOf(input: TestInput<unknown>): SourceNode<unknown> {
    const found = this.job.compiled.sources.find((s) => s.plan.source === input);
    if (!found) throw new WeirError('WEIR_INVALID_ARGUMENT', `test input ${input.name} is not a source of pipeline ${this.pipeline.name}`);
    return found.node;
  }

  private nodesOf(input: TestInput<unknown> | undefined): SourceNode<unknown>[] {
    return input === undefined ? this.job.compiled.sources.map((s) => s.node) : [this.nodeOf(input)];
  }
}

import { setImmediate as yieldToEventLoop, setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { CheckpointCoordinator } from '../checkpoint/checkpoint-coordinator.js';
import { SNAPSHOT_FORMAT, SnapshotWriter, type CheckpointDelta, type OperatorSnapshot, type RestoredCheckpoint, type SourceSnapshot } from '../checkpoint/snapshot.js';
import { WeirError, messageOf } from '../errors.js';
import { compile, type CompiledJob, type CompiledSource } from '../graph/compile.js';
import type { Placement } from '../graph/compile.js';
import type { Plan } from '../graph/plan.js';
import type { RemoteStage } from '../parallel/remote-stage.js';
import type { MetricsRegistry } from '../observability/metrics.js';
import type { StateBackend } from '../state/state-backend.js';
import type { Clock } from '../time/clock.js';
import { MinHeap } from './min-heap.js';
import type { ProcessingTimeService } from './operator.js';
import type { RuntimeNode } from './runtime-node.js';
import type { SinkNode } from './sink-node.js';

/** What a job runs with. */
export interface JobEnv {
  readonly name: string;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly metrics: MetricsRegistry;
  readonly state: StateBackend;
  /** Records per source poll. */
  readonly batchSize: number;
  /** Accept streams that end nowhere (test drivers). */
  readonly allowDangling?: boolean;
  /** Whether checkpoints are taken (operators then track their changes). */
  readonly checkpointing?: boolean;
  /** With `parallelism > 1`: the part of the plan this thread runs. */
  readonly placement?: Placement;
  /** On the main thread of a job with `parallelism > 1`: its workers. */
  readonly remote?: RemoteStage;
  /** In a worker: called after processing-time timers fired (their output goes to the main thread). */
  readonly afterProcessingTime?: () => void;
}

/** How a run ended. */
export interface JobOutcome {
  /** `finished`: every source ended and every window fired; `stopped`: `stop()` was called. */
  readonly status: 'finished' | 'stopped';
  readonly durationMs: number;
}

const TIME_SLICE_MS = 10;
const EMPTY_POLL_BACKOFF_MS = 5;

/**
 * A compiled plan, opened and driven. `run()` pulls every source in its own async loop and pushes
 * each batch synchronously through the chained operators; it awaits only per batch: a source's
 * promise, a sink's pending write (backpressure), and a yield to the event loop every few ms so timers
 * and I/O run. The test driver uses the same compiled job but pushes by hand.
 */
export class Job {
  readonly compiled: CompiledJob;
  private readonly pendingSinks = new Set<SinkNode>();
  /** Operators waiting for their state (spilled keys being read back), or for model scores. */
  private readonly pendingNodes = new Set<RuntimeNode>();
  /** Operators holding small batches back for more (see `Operator.coalesce`): flushed before a checkpoint and at the end. */
  private readonly lingeringNodes = new Set<RuntimeNode>();
  /** Closed while a checkpoint waits for in-flight work: the sources hold their next batch. */
  private gate: Promise<void> | null = null;
  private openGate: (() => void) | null = null;
  private readonly procTimers = new MinHeap<RuntimeNode>();
  private procTimeout: NodeJS.Timeout | null = null;
  private procTimeoutAt = Infinity;
  private readonly abort = new AbortController();
  private failure: unknown = null;
  private stopping = false;
  /** Set by test drivers: processing time moves only when they say so. */
  manualTime = false;
  /** Takes checkpoints while the job runs (set by the pipeline when `checkpoint` is configured). */
  coordinator: CheckpointCoordinator | null = null;
  /**
   * With checkpoints: each source's position after the last batch it handed over. A checkpoint uses
   * these, not the source's position at that moment: a poll in flight may have read further.
   */
  private readonly positions = new Map<CompiledSource['node'], unknown>();
  /** The worker threads running the keyed part of the job (`parallelism > 1`), or null. */
  private readonly remote: RemoteStage | null;

  constructor(plan: Plan, readonly env: JobEnv) {
    this.compiled = compile(plan, {
      logger: env.logger,
      clock: env.clock,
      metrics: env.metrics,
      state: env.state,
      processingTime: (node) => this.processingTimeFor(node),
      onSinkPending: (node) => this.pendingSinks.add(node),
      onNodePending: (node) => this.pendingNodes.add(node),
      onNodeLinger: (node) => this.lingeringNodes.add(node),
      allowDangling: env.allowDangling,
      placement: env.placement,
    });
    this.remote = env.remote ?? null;
    this.remote?.bind({
      sinks: new Map(this.compiled.sinks.map((s) => [s.name, s])),
      metrics: env.metrics,
      logger: env.logger,
      fail: (e) => this.fail(e),
    });
  }

  /** Opens sinks, then operators, then sources. */
  async open(): Promise<void> {
    const { logger } = this.env;
    for (const s of this.compiled.sinks) {
      try {
        await s.sink.open?.({ name: s.name, job: this.env.name, logger: logger.child({ step: s.name }) });
      } catch (e) {
        throw new WeirError('WEIR_SINK_FAILED', `open failed: ${messageOf(e)}`, { step: s.name, cause: e });
      }
    }
    for (const n of this.compiled.operators) {
      await n.operator.open?.({
        name: n.name,
        output: n.output,
        errors: n.errors,
        metrics: this.env.metrics,
        clock: this.env.clock,
        processingTime: this.processingTimeFor(n),
        logger: logger.child({ step: n.name }),
        checkpointing: this.env.checkpointing ?? false,
      });
    }
    for (const { plan, node } of this.compiled.sources) {
      try {
        await plan.source.open?.({
          name: plan.name,
          logger: logger.child({ step: plan.name }),
          clock: this.env.clock,
          signal: this.abort.signal,
          reject: (raw, reason, cause) => node.errors.recordFailed('WEIR_DECODE_FAILED', reason, raw, undefined, cause),
        });
      } catch (e) {
        throw new WeirError('WEIR_SOURCE_FAILED', `open failed: ${messageOf(e)}`, { step: node.name, cause: e });
      }
    }
    await this.remote?.start();
  }

  /** Runs until every source ends (or `stop()`); then closes everything. Rejects with the first failure. */
  async run(): Promise<JobOutcome> {
    const started = performance.now();
    const coordinator = this.coordinator;
    try {
      if (coordinator) {
        for (const { plan, node } of this.compiled.sources) this.positions.set(node, plan.source.savePosition?.());
        coordinator.start();
      }
      await Promise.all(this.compiled.sources.map((s) => this.sourceLoop(s)));
      await this.settleSinks();
      if (this.failure) throw this.failure;
      if (!this.stopping) {
        for (const n of this.compiled.operators) await n.operator.close?.();
        await this.remote?.end();
        await this.settleSinks();
      }
      // The last checkpoint: at the end of input it commits the last results; on a stop it keeps
      // the state to resume from.
      if (coordinator) {
        await coordinator.finish();
        await this.settleSinks();
      }
    } catch (e) {
      this.failure ??= e;
    } finally {
      coordinator?.stopTimer();
      this.clearProcessingTimer();
      await this.closeAll();
    }
    if (this.failure) throw this.failure;
    return { status: this.stopping ? 'stopped' : 'finished', durationMs: performance.now() - started };
  }

  /**
   * Takes checkpoint `id` between two batches (call it only there: nothing may be in flight through
   * the operators, which holds between source polls): the keyed state each operator changed since its
   * last snapshot, operator and source watermarks, and where each source is. With worker threads the
   * sources pause and the result is a promise of every worker's part too; once the sinks' pre-commits
   * are queued, call {@link snapshotTaken}.
   */
  snapshot(id: number): CheckpointDelta | Promise<CheckpointDelta> {
    if (this.remote === null && this.pendingNodes.size === 0 && this.lingeringNodes.size === 0) return this.snapshotLocal(id);
    return this.snapshotWhenSettled(id);
  }

  /** A snapshot that first lets in-flight work finish (and the workers reach the barrier), the sources held meanwhile. */
  private async snapshotWhenSettled(id: number): Promise<CheckpointDelta> {
    if (this.gate === null) this.gate = new Promise<void>((resolve) => (this.openGate = resolve));
    await this.settleNodes();
    const local = this.snapshotLocal(id);
    if (!this.remote) return local;
    const remote = await this.remote.snapshot(id);
    return { ...local, operators: { ...local.operators, ...remote } };
  }

  /** After a checkpoint's pre-commits are queued: the workers' later output and the sources go on. */
  snapshotTaken(): void {
    this.remote?.release();
    this.releaseGate();
  }

  private releaseGate(): void {
    const open = this.openGate;
    this.gate = null;
    this.openGate = null;
    open?.();
  }

  /** Tells each source that the checkpoint holding its position is complete (failures are logged). */
  async checkpointComplete(delta: CheckpointDelta): Promise<void> {
    for (const { plan, node } of this.compiled.sources) {
      const done = plan.source.checkpointComplete;
      if (!done) continue;
      try {
        await done.call(plan.source, delta.sources[node.name]?.position);
      } catch (e) {
        this.env.logger.warn({ err: e, step: node.name }, 'source checkpointComplete failed');
      }
    }
  }

  /** This thread's part of checkpoint `id` (see {@link snapshot}). */
  snapshotLocal(id: number): CheckpointDelta {
    const operators: Record<string, OperatorSnapshot> = {};
    for (const n of this.compiled.operators) {
      const w = new SnapshotWriter();
      n.operator.snapshotState?.(w);
      operators[n.name] = { changes: w.changes, meta: w.meta, watermarks: n.snapshotWatermarks() };
    }
    const sources: Record<string, SourceSnapshot> = {};
    for (const { plan, node } of this.compiled.sources) {
      const position = this.positions.has(node) ? this.positions.get(node) : plan.source.savePosition?.();
      sources[node.name] = { position, watermark: node.snapshotWatermark() };
    }
    return { format: SNAPSHOT_FORMAT, id, time: this.env.clock.now(), operators, sources };
  }

  /**
   * After `open()`, before `run()`: takes back the state of a checkpoint and moves every source to
   * where the checkpoint left it. A source that cannot resume (no `seek`, or no position saved) fails
   * the restore: starting it from the beginning would process its records twice.
   */
  async restore(cp: RestoredCheckpoint): Promise<void> {
    for (const n of this.compiled.operators) {
      const s = cp.operators.get(n.name);
      if (!s) continue;
      n.restoreWatermarks(s.watermarks);
      if (s.entries.length > 0 && !n.operator.restoreState) throw new WeirError('WEIR_INTERNAL', `operator ${n.name} has state in checkpoint ${cp.id} but cannot restore it`, { step: n.name });
      n.operator.restoreState?.(s.entries, s.meta);
    }
    for (const { plan, node } of this.compiled.sources) {
      const s = cp.sources[node.name];
      if (!s) continue;
      if (s.position === undefined || !plan.source.seek) {
        throw new WeirError('WEIR_SOURCE_FAILED', `cannot resume from checkpoint ${cp.id}: the source has no position to resume from (it cannot be replayed)`, { step: node.name });
      }
      await plan.source.seek(s.position);
      node.restoreWatermark(s.watermark);
    }
    await this.remote?.restore(cp);
  }

  /** Closes sources and sinks after `open()` failed part-way (their own errors are logged, not thrown). */
  async dispose(): Promise<void> {
    this.stopping = true;
    this.abort.abort();
    const failure = this.failure;
    await this.closeAll();
    if (this.failure !== failure) this.env.logger.warn({ err: this.failure }, 'close after a failed open also failed');
    this.failure = failure;
  }

  /** Asks the sources to stop; `run()` then resolves with status `stopped` (windows not fired). */
  stop(): void {
    this.stopping = true;
    this.abort.abort();
  }

  private async sourceLoop({ plan, node }: CompiledSource): Promise<void> {
    const source = plan.source;
    const batchSize = plan.batchSize ?? this.env.batchSize;
    const idleTimeout = plan.watermarks.idleTimeoutMs;
    const clock = this.env.clock;
    let sliceStart = performance.now();
    while (!this.stopping && this.failure === null) {
      let polled: readonly unknown[] | null | Promise<readonly unknown[] | null>;
      try {
        polled = source.poll(batchSize);
        if (polled !== null && !Array.isArray(polled)) {
          const p = polled as Promise<readonly unknown[] | null>;
          polled = await this.unlessStopped(idleTimeout === undefined ? p : this.pollWithIdleness(p, node, idleTimeout));
        }
      } catch (e) {
        this.fail(e instanceof WeirError ? e : new WeirError('WEIR_SOURCE_FAILED', `read failed: ${messageOf(e)}`, { step: plan.name, cause: e }));
        return;
      }
      if (this.stopping || this.failure !== null) return;
      const batch = polled as readonly unknown[] | null;
      if (batch === null) {
        this.guard(() => node.end());
        return;
      }
      if (source.splits !== undefined) {
        const list = source.splits();
        this.guard(() => node.setSplits(list));
      }
      if (batch.length === 0) {
        if (idleTimeout !== undefined) this.guard(() => node.checkIdleness());
        await sleep(EMPTY_POLL_BACKOFF_MS);
        continue;
      }
      // A checkpoint waiting for in-flight work (or for the workers' snapshots): this batch belongs after it.
      if (this.gate !== null) await this.gate;
      if (this.stopping || this.failure !== null) return;
      const split = source.currentSplit;
      this.guard(() => node.push(batch, split));
      if (this.coordinator) this.positions.set(node, source.savePosition?.());
      const pressure = this.remote?.backpressure();
      if (pressure) await pressure;
      if (this.pendingSinks.size > 0 || this.pendingNodes.size > 0) {
        try {
          // Lingering operators may keep waiting for more input: this is not the end, nor a checkpoint.
          await this.settleSinks(false);
        } catch (e) {
          this.fail(e);
          return;
        }
      }
      const now = performance.now();
      if (now - sliceStart >= TIME_SLICE_MS) {
        await yieldToEventLoop();
        sliceStart = performance.now();
      }
    }
  }

  /** Awaits a pending poll, but gives up (with `[]`) as soon as the job stops or fails. */
  private unlessStopped(p: Promise<readonly unknown[] | null>): Promise<readonly unknown[] | null> {
    const signal = this.abort.signal;
    if (signal.aborted) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      const onAbort = (): void => resolve([]);
      signal.addEventListener('abort', onAbort, { once: true });
      p.then(
        (v) => {
          signal.removeEventListener('abort', onAbort);
          resolve(v);
        },
        (e) => {
          signal.removeEventListener('abort', onAbort);
          reject(e);
        },
      );
    });
  }

  /** Awaits a poll; if it takes longer than the idle timeout, marks the source idle meanwhile. */
  private async pollWithIdleness(p: Promise<readonly unknown[] | null>, node: CompiledSource['node'], idleTimeout: number): Promise<readonly unknown[] | null> {
    const wait = Math.max(0, idleTimeout - (this.env.clock.now() - node.lastActivity));
    const ac = new AbortController();
    const timer = sleep(wait, 'idle' as const, { signal: ac.signal }).catch(() => 'aborted' as const);
    const first = await Promise.race([p, timer]);
    if (first !== 'idle') {
      ac.abort();
      return first as readonly unknown[] | null;
    }
    this.guard(() => node.checkIdleness());
    return p;
  }

  /** Runs synchronous work on the task; a throw fails the job (and stops the other loops). */
  private guard(work: () => void): void {
    try {
      work();
    } catch (e) {
      this.fail(e);
    }
  }

  /** Fails the job from outside its loops (a periodic checkpoint that failed). */
  fail(e: unknown): void {
    if (this.failure === null) {
      this.failure = e;
      this.abort.abort();
      this.releaseGate();
      this.env.logger.error({ err: e }, 'job failed');
    }
  }

  /**
   * Waits for queued operator input (spilled state being read back, model scores), then for in-flight
   * sink writes. `flush`: lingering operators too stop waiting for more input and empty their queue.
   */
  async settleSinks(flush = true): Promise<void> {
    await this.settleNodes(flush);
    while (this.pendingSinks.size > 0) {
      const nodes = [...this.pendingSinks];
      this.pendingSinks.clear();
      for (const n of nodes) await n.settle();
      await this.settleNodes(flush);
    }
  }

  /** Waits until no operator has queued input (with `flush`, lingering ones included). */
  async settleNodes(flush = true): Promise<void> {
    for (;;) {
      if (flush && this.lingeringNodes.size > 0) {
        const lingering = [...this.lingeringNodes];
        this.lingeringNodes.clear();
        for (const n of lingering) n.flush();
      }
      if (this.pendingNodes.size === 0) return;
      // A node leaves the set only once its drain is through: a checkpoint that comes meanwhile
      // (from the timer) must still see it as pending and wait for it too.
      for (const n of [...this.pendingNodes]) {
        try {
          await n.settle();
        } finally {
          if (!n.draining) this.pendingNodes.delete(n);
        }
      }
    }
  }

  /** Whether an operator has queued input, lingering included (a worker thread then settles before its next message). */
  get hasPendingNodes(): boolean {
    return this.pendingNodes.size > 0 || this.lingeringNodes.size > 0;
  }

  private async closeAll(): Promise<void> {
    const errors: unknown[] = [];
    await this.remote?.close();
    await this.disposeOperators(errors);
    for (const { plan } of this.compiled.sources) {
      try {
        await plan.source.close?.();
      } catch (e) {
        errors.push(new WeirError('WEIR_SOURCE_FAILED', `close failed: ${messageOf(e)}`, { step: plan.name, cause: e }));
      }
    }
    for (const s of this.compiled.sinks) {
      try {
        await s.sink.close?.();
      } catch (e) {
        errors.push(new WeirError('WEIR_SINK_FAILED', `close failed: ${messageOf(e)}`, { step: s.name, cause: e }));
      }
    }
    if (errors.length > 0 && this.failure === null) this.failure = errors[0];
  }

  /** Lets every operator release its resources (spill stores); errors are collected. */
  async disposeOperators(errors: unknown[] = []): Promise<void> {
    for (const n of this.compiled.operators) {
      try {
        await n.operator.dispose?.();
      } catch (e) {
        errors.push(e);
      }
    }
  }

  // ---- processing time ----

  private processingTimeFor(node: RuntimeNode): ProcessingTimeService {
    const clock = this.env.clock;
    return {
      now: () => clock.now(),
      request: (time: number) => {
        this.procTimers.push(time, node);
        this.scheduleProcessingTimer();
      },
    };
  }

  /** Calls `onProcessingTime` of every operator with a request due at `now`. */
  fireProcessingTimers(now: number): void {
    const due = new Set<RuntimeNode>();
    while (this.procTimers.hasDue(now)) due.add(this.procTimers.pop());
    for (const node of due) node.onProcessingTime(now);
  }

  private scheduleProcessingTimer(): void {
    if (this.manualTime) return;
    const next = this.procTimers.peekTime();
    if (next >= this.procTimeoutAt) return;
    this.clearProcessingTimer();
    this.procTimeoutAt = next;
    const delay = Math.max(0, next - this.env.clock.now());
    this.procTimeout = setTimeout(() => {
      this.procTimeout = null;
      this.procTimeoutAt = Infinity;
      if (this.stopping || this.failure !== null) return;
      this.guard(() => this.fireProcessingTimers(this.env.clock.now()));
      this.env.afterProcessingTime?.();
      this.scheduleProcessingTimer();
    }, Math.min(delay, 2 ** 31 - 1));
    this.procTimeout.unref();
  }

  private clearProcessingTimer(): void {
    if (this.procTimeout) clearTimeout(this.procTimeout);
    this.procTimeout = null;
    this.procTimeoutAt = Infinity;
  }
}

import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { OperatorSnapshot, RestoredCheckpoint, StateEntry } from '../checkpoint/snapshot.js';
import { WeirError, messageOf } from '../errors.js';
import type { PlanNode } from '../graph/plan.js';
import type { MetricSample, MetricsRegistry } from '../observability/metrics.js';
import type { Receiver } from '../runtime/runtime-node.js';
import type { SinkNode } from '../runtime/sink-node.js';
import { keyGroupOf, type KeyPart } from '../state/store/key-codec.js';
import { workerOfKeyGroup } from './key-groups.js';
import type { FromWorker, SinkBatch, ToWorker, WorkerData } from './messages.js';
import { fromWire } from './wire-error.js';

/** Batches sent to one worker and not yet answered, beyond which the sources wait (flow control). */
const MAX_IN_FLIGHT = 32;
/** How long the workers get to release their resources when the job ends. */
const CLOSE_TIMEOUT_MS = 5000;

/** What the main thread knows of one worker. */
interface WorkerSlot {
  readonly index: number;
  readonly worker: Worker;
  /** `batch` messages not yet answered. */
  inFlight: number;
  /** Its counters, as of its last snapshot or its end. */
  metrics: MetricSample[];
  /** Set while a checkpoint waits for the other workers: this one's later output is held back. */
  snapshotted: boolean;
  exited: boolean;
}

/** A reply the main thread waits for from every worker. */
interface Round<T> {
  readonly kind: FromWorker['t'];
  readonly replies: (T | undefined)[];
  remaining: number;
  resolve(replies: T[]): void;
  reject(e: unknown): void;
}

/** How the main thread reaches the job around its workers. */
export interface RemoteStageHost {
  /** The sink nodes by step name (workers send their output by name). */
  readonly sinks: ReadonlyMap<string, SinkNode>;
  readonly metrics: MetricsRegistry;
  readonly logger: Logger;
  /** Fails the job (a worker died, or sent an error). */
  fail(e: unknown): void;
}

/**
 * The main thread's side of a job with `parallelism > 1`: starts one worker thread per parallel
 * instance, routes the records going into a keyed operator to the worker owning their key group,
 * broadcasts watermarks and idleness, feeds what the workers produce into the sinks, and runs the
 * checkpoint barrier: every worker snapshots its key groups after the batches sent before the
 * barrier; output a worker produces after its snapshot is held back until the checkpoint's
 * pre-commits are queued, so each checkpoint's output matches its state exactly.
 */
export class RemoteStage {
  private readonly slots: WorkerSlot[] = [];
  /** Replies awaited from every worker, oldest first (workers answer in the order they were asked). */
  private readonly rounds: Round<unknown>[] = [];
  private readonly held: SinkBatch[][] = [];
  private holding = false;
  private drainWaiter: { promise: Promise<void>; resolve: () => void } | null = null;
  private closed = false;
  /** A worker failed: the others are not asked for anything more. */
  private broken = false;

  private host!: RemoteStageHost;

  constructor(
    private readonly data: Omit<WorkerData, 'index'>,
    private readonly remoteOperators: readonly string[],
  ) {}

  /** Connects the stage to its job (once the job is compiled: the sinks exist then). */
  bind(host: RemoteStageHost): void {
    this.host = host;
  }

  /** Starts the workers; resolves once each has built and opened its part of the job. */
  async start(): Promise<void> {
    const entry = new URL('./worker-entry.js', import.meta.url);
    for (let index = 0; index < this.data.parallelism; index++) {
      const workerData: WorkerData = { ...this.data, index };
      const worker = new Worker(entry, { workerData });
      const slot: WorkerSlot = { index, worker, inFlight: 0, metrics: [], snapshotted: false, exited: false };
      this.slots.push(slot);
      this.held.push([]);
      worker.on('message', (m: FromWorker) => this.onMessage(slot, m));
      worker.on('error', (e) => this.workerFailed(slot, new WeirError('WEIR_WORKER_FAILED', `worker ${index} failed: ${messageOf(e)}`, { cause: e })));
      worker.on('exit', (code) => {
        slot.exited = true;
        if (!this.closed) this.workerFailed(slot, new WeirError('WEIR_WORKER_FAILED', `worker ${index} exited (code ${code}) while the job was running`));
      });
    }
    await this.everyWorker('ready');
    this.host.logger.info({ workers: this.slots.length }, 'workers started');
  }

  /** The receiver a local stream going into remote keyed node `node` at input `port` is connected to. */
  exchange(node: PlanNode, port: number): Receiver {
    if (node.kind !== 'window' && node.kind !== 'process' && node.kind !== 'drift') {
      throw new WeirError('WEIR_INTERNAL', `${node.name} gets records from the main thread but is not keyed`, { step: node.name });
    }
    return new KeyExchange(this, node.name, port, node.key, this.data.parallelism, this.data.maxParallelism);
  }

  /** @internal Sends one message to worker `index` (a batch counts against its flow-control window). */
  send(index: number, m: ToWorker): void {
    const slot = this.slots[index];
    if (m.t === 'batch') slot.inFlight++;
    slot.worker.postMessage(m);
  }

  /** @internal Sends one message to every worker. */
  broadcast(m: ToWorker): void {
    for (const s of this.slots) s.worker.postMessage(m);
  }

  /** A promise to wait on when a worker has too many batches in flight, else null. */
  backpressure(): Promise<void> | null {
    if (!this.slots.some((s) => s.inFlight >= MAX_IN_FLIGHT)) return null;
    if (!this.drainWaiter) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.drainWaiter = { promise, resolve };
    }
    return this.drainWaiter.promise;
  }

  /** Hands each worker the state of the key groups it owns (entries are placed by their key's group). */
  async restore(cp: RestoredCheckpoint): Promise<void> {
    const n = this.slots.length;
    const { maxParallelism } = this.data;
    const parts = this.slots.map(() => ({}) as Record<string, { entries: StateEntry[]; meta: unknown; watermarks: OperatorSnapshot['watermarks'] }>);
    for (const name of this.remoteOperators) {
      const op = cp.operators.get(name);
      if (!op) continue;
      const lists = parts.map((p) => (p[name] = { entries: [] as StateEntry[], meta: op.meta, watermarks: op.watermarks }).entries);
      for (const e of op.entries) lists[workerOfKeyGroup(keyGroupOf(e.key as KeyPart, maxParallelism), n, maxParallelism)].push(e);
    }
    const done = this.everyWorker('restored');
    this.slots.forEach((s, i) => s.worker.postMessage({ t: 'restore', operators: parts[i] } satisfies ToWorker));
    await done;
  }

  /**
   * Checkpoint barrier `id` (the job holds its sources meanwhile): asks every worker for its
   * snapshot and merges them per operator. The caller queues the sinks' pre-commits, then calls
   * {@link release}.
   */
  async snapshot(id: number): Promise<Record<string, OperatorSnapshot>> {
    this.holding = true;
    const replies = this.everyWorker<Extract<FromWorker, { t: 'snapshot' }>>('snapshot');
    this.broadcast({ t: 'barrier', id });
    const snaps = await replies;
    const merged: Record<string, OperatorSnapshot> = {};
    for (const name of this.remoteOperators) {
      const parts = snaps.map((s) => s.operators[name]).filter((o): o is OperatorSnapshot => o !== undefined);
      if (parts.length === 0) continue;
      // Every worker saw the same watermarks (they are broadcast), so meta and watermarks agree.
      merged[name] = { changes: parts.flatMap((p) => p.changes), meta: parts[0].meta, watermarks: parts[0].watermarks };
    }
    snaps.forEach((s, i) => (this.slots[i].metrics = s.metrics));
    return merged;
  }

  /** After a checkpoint's pre-commits are queued: feeds the held-back output. */
  release(): void {
    this.holding = false;
    for (const s of this.slots) s.snapshotted = false;
    for (let i = 0; i < this.held.length; i++) {
      const batches = this.held[i];
      this.held[i] = [];
      for (const b of batches) this.deliver(b);
    }
  }

  /** End of input (after the +Infinity watermark went out): every worker closes its operators and flushes. */
  async end(): Promise<void> {
    const replies = this.everyWorker<Extract<FromWorker, { t: 'ended' }>>('ended');
    this.broadcast({ t: 'end' });
    const ended = await replies;
    ended.forEach((e, i) => (this.slots[i].metrics = e.metrics));
  }

  /**
   * Lets the workers release their resources (a few seconds at most), stops them, and adds their
   * counters to the job's (sinks count on the main thread already).
   */
  async close(): Promise<void> {
    if (this.closed) return;
    if (!this.broken && this.slots.length > 0 && this.slots.every((s) => !s.exited)) {
      const closed = this.everyWorker('closed').catch(() => undefined);
      this.broadcast({ t: 'close' });
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([closed, new Promise((r) => (timer = setTimeout(r, CLOSE_TIMEOUT_MS)))]);
      clearTimeout(timer);
    }
    this.closed = true;
    for (const r of this.rounds.splice(0)) r.reject(new WeirError('WEIR_JOB_STATE', 'the job is closing'));
    for (const s of this.slots) {
      for (const m of s.metrics) {
        if (this.host.sinks.has(m.labels.step ?? '')) continue;
        this.host.metrics.counter(m.name, { ...m.labels }).value += m.value;
      }
    }
    await Promise.all(this.slots.map((s) => (s.exited ? undefined : s.worker.terminate())));
  }

  private onMessage(slot: WorkerSlot, m: FromWorker): void {
    switch (m.t) {
      case 'out':
        if (m.ack > 0) {
          slot.inFlight -= m.ack;
          if (this.drainWaiter && !this.slots.some((s) => s.inFlight >= MAX_IN_FLIGHT)) {
            const w = this.drainWaiter;
            this.drainWaiter = null;
            w.resolve();
          }
        }
        if (slot.snapshotted && this.holding) this.held[slot.index].push(...m.batches);
        else for (const b of m.batches) this.deliver(b);
        return;
      case 'failed':
        this.workerFailed(slot, fromWire(m.error, slot.index));
        return;
      case 'snapshot':
        slot.snapshotted = true;
        this.reply(slot, m);
        return;
      default:
        this.reply(slot, m);
    }
  }

  private deliver([name, items, ts]: SinkBatch): void {
    const sink = this.host.sinks.get(name);
    if (!sink) {
      this.host.fail(new WeirError('WEIR_INTERNAL', `a worker sent output for an unknown sink ${name}`));
      return;
    }
    try {
      sink.receiveBatch(items, ts, 0);
    } catch (e) {
      this.host.fail(e);
    }
  }

  private reply(slot: WorkerSlot, m: FromWorker): void {
    const round = this.rounds.find((r) => r.replies[slot.index] === undefined);
    if (!round || round.kind !== m.t) {
      this.host.fail(new WeirError('WEIR_INTERNAL', `worker ${slot.index} sent ${m.t} unasked`));
      return;
    }
    round.replies[slot.index] = m;
    if (--round.remaining === 0) {
      this.rounds.splice(this.rounds.indexOf(round), 1);
      round.resolve(round.replies as unknown[]);
    }
  }

  /** Waits for one reply of kind `kind` from every worker (after the replies asked for before). */
  private everyWorker<T>(kind: FromWorker['t']): Promise<T[]> {
    return new Promise<T[]>((resolve, reject) => {
      this.rounds.push({ kind, replies: this.slots.map(() => undefined), remaining: this.slots.length, resolve: resolve as (r: unknown[]) => void, reject });
    });
  }

  private workerFailed(slot: WorkerSlot, e: WeirError): void {
    if (this.closed) return;
    this.broken = true;
    this.host.logger.error({ err: e, worker: slot.index }, 'worker failed');
    for (const r of this.rounds.splice(0)) r.reject(e);
    this.drainWaiter?.resolve();
    this.host.fail(e);
  }
}

/**
 * Routes the records of one input of a keyed operator to the workers by key group (a key the key
 * function fails on goes to worker 0, whose operator reports it as usual); broadcasts watermarks and
 * idleness to every worker.
 */
class KeyExchange implements Receiver {
  constructor(
    private readonly stage: RemoteStage,
    private readonly node: string,
    private readonly port: number,
    private readonly key: (r: unknown) => unknown,
    private readonly parallelism: number,
    private readonly maxParallelism: number,
  ) {}

  receiveBatch(items: readonly unknown[], timestamps: readonly number[]): void {
    const n = this.parallelism;
    const max = this.maxParallelism;
    const parts: unknown[][] = [];
    const times: number[][] = [];
    for (let w = 0; w < n; w++) {
      parts.push([]);
      times.push([]);
    }
    const key = this.key;
    for (let i = 0; i < items.length; i++) {
      let w = 0;
      try {
        w = workerOfKeyGroup(keyGroupOf(key(items[i]) as KeyPart, max), n, max);
      } catch {
        w = 0;
      }
      parts[w].push(items[i]);
      times[w].push(timestamps[i]);
    }
    for (let w = 0; w < n; w++) {
      if (parts[w].length > 0) this.stage.send(w, { t: 'batch', node: this.node, port: this.port, items: parts[w], ts: times[w] });
    }
  }

  receiveWatermark(wm: number): void {
    this.stage.broadcast({ t: 'wm', node: this.node, port: this.port, wm });
  }

  receiveIdle(idle: boolean): void {
    this.stage.broadcast({ t: 'idle', node: this.node, port: this.port, idle });
  }
}

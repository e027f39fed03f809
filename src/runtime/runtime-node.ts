import type { Counter } from '../observability/metrics.js';
import type { ErrorHandler } from './error-handler.js';
import type { Emitter, Operator, ProcessingTimeService } from './operator.js';

/** Receives batches, watermarks and idleness from one upstream output. */
export interface Receiver {
  receiveBatch(items: readonly unknown[], timestamps: readonly number[], input: number): void;
  receiveWatermark(wm: number, input: number): void;
  receiveIdle(idle: boolean, input: number): void;
}

/**
 * The fan-out of one node: batches, watermarks and idleness go to every downstream (node, input port).
 * Batches are shared, not copied, so nobody downstream may change them.
 */
export class Output<T> implements Emitter<T> {
  private targets: Receiver[] = [];
  private ports: number[] = [];

  constructor(private readonly counter: Counter) {}

  connect(target: Receiver, port: number): void {
    this.targets.push(target);
    this.ports.push(port);
  }

  emit(items: readonly T[], timestamps: readonly number[]): void {
    const n = items.length;
    if (n === 0) return;
    this.counter.value += n;
    const targets = this.targets;
    for (let i = 0; i < targets.length; i++) targets[i].receiveBatch(items, timestamps, this.ports[i]);
  }

  watermark(wm: number): void {
    const targets = this.targets;
    for (let i = 0; i < targets.length; i++) targets[i].receiveWatermark(wm, this.ports[i]);
  }

  idle(idle: boolean): void {
    const targets = this.targets;
    for (let i = 0; i < targets.length; i++) targets[i].receiveIdle(idle, this.ports[i]);
  }
}

/** Input held back while an operator waits for its state (see {@link Operator.prefetch}). */
type Queued =
  | { readonly kind: 'batch'; readonly items: readonly unknown[]; readonly ts: readonly number[] }
  | { readonly kind: 'watermark'; readonly wm: number; readonly input: number }
  | { readonly kind: 'idle'; readonly idle: boolean; readonly input: number };

/**
 * An operator in the running job, with its input ports. Its watermark is the minimum over the input
 * watermarks of inputs that are not idle; it never goes backwards. When every input is idle the node
 * is idle too, and says so downstream.
 *
 * An operator whose state may be spilled (`prefetch`) can make a batch wait for its keys' state:
 * the node then queues that batch and whatever arrives after it (watermarks too, in order), tells
 * the job (`onPending`: the job awaits {@link settle} before its next batch and before a
 * checkpoint), and processes the queue as the reads complete.
 *
 * An operator that declares `coalesce` (model scoring) gets the batches queued behind a pending
 * `prefetch` in one `prefetch` call, and with `lingerMs` a small batch may wait in the queue for more
 * (the node is then *lingering*: the job knows through `onLinger`, keeps its sources going, and
 * {@link flush}es the node before a checkpoint and at the end).
 */
export class RuntimeNode<I = unknown, O = unknown> implements Receiver {
  private readonly inputWatermarks: number[];
  private readonly inputIdle: boolean[];
  private idle = false;
  private queue: Queued[] | null = null;
  private drainPromise: Promise<void> | null = null;
  /** Why the last drain stopped, until {@link settle} reports it (a drain a timer started has no one awaiting it). */
  private failure: unknown = null;
  /** Whether queued input waits for more (see {@link Operator.coalesce}); no drain runs meanwhile. */
  private lingering = false;
  private lingerDeadline = Infinity;
  /** Records in the queued batches (while lingering). */
  private queuedItems = 0;
  private lingerTime: ProcessingTimeService | null = null;
  private onLinger: ((node: RuntimeNode) => void) | undefined = undefined;
  /** The current combined watermark. */
  watermark = -Infinity;

  constructor(
    readonly name: string,
    readonly operator: Operator<I, O>,
    inputs: number,
    readonly output: Output<O>,
    private readonly recordsIn: Counter,
    /** The error policy for records this operator fails on. */
    readonly errors: ErrorHandler,
    private readonly onPending?: (node: RuntimeNode) => void,
  ) {
    this.inputWatermarks = new Array<number>(inputs).fill(-Infinity);
    this.inputIdle = new Array<boolean>(inputs).fill(false);
  }

  /**
   * Lets small batches linger up to the operator's `coalesce.lingerMs` (processing time from `time`);
   * `onLinger` tells the job that the node holds input without a drain running.
   */
  enableLinger(time: ProcessingTimeService, onLinger: ((node: RuntimeNode) => void) | undefined): void {
    this.lingerTime = time;
    this.onLinger = onLinger;
  }

  receiveBatch(items: readonly unknown[], timestamps: readonly number[], _input: number): void {
    this.recordsIn.value += items.length;
    if (this.queue !== null) {
      this.queue.push({ kind: 'batch', items, ts: timestamps });
      if (this.lingering) {
        this.queuedItems += items.length;
        if (this.queuedItems >= this.operator.coalesce!.maxItems) this.startDrain(null);
      }
      return;
    }
    const c = this.operator.coalesce;
    if (c !== undefined && c.lingerMs > 0 && items.length < c.maxItems && this.lingerTime !== null) {
      this.queue = [{ kind: 'batch', items, ts: timestamps }];
      this.queuedItems = items.length;
      this.lingering = true;
      this.lingerDeadline = this.lingerTime.now() + c.lingerMs;
      this.lingerTime.request(this.lingerDeadline);
      this.onLinger?.(this);
      return;
    }
    const wait = this.operator.prefetch?.(items as readonly I[]) ?? null;
    if (wait === null) {
      this.operator.processBatch(items as readonly I[], timestamps);
      return;
    }
    this.queue = [{ kind: 'batch', items, ts: timestamps }];
    this.startDrain(wait);
  }

  private startDrain(first: Promise<void> | null): void {
    this.lingering = false;
    this.lingerDeadline = Infinity;
    this.queuedItems = 0;
    this.drainPromise = this.drain(first);
    this.drainPromise.catch((e: unknown) => (this.failure ??= e)); // kept for settle()
    this.onPending?.(this);
  }

  /** A lingering node stops waiting for more input and works through its queue (a no-op otherwise). */
  flush(): void {
    if (this.lingering) this.startDrain(null);
  }

  /** Processing time reached `now`: a linger that is due ends, then the operator's own callback. */
  onProcessingTime(now: number): void {
    if (this.lingering && now >= this.lingerDeadline) this.flush();
    this.operator.onProcessingTime?.(now);
  }

  /**
   * Resolves once the drain under way (if any) is through (rejects with the error that stopped it).
   * A lingering node stays lingering: {@link flush} it first to have it empty.
   */
  settle(): Promise<void> {
    if (this.failure !== null) {
      const e = this.failure;
      this.failure = null;
      return Promise.reject(e);
    }
    const d = this.drainPromise;
    if (d === null) return Promise.resolve();
    // Whoever awaits this one hears of a failure: it is not reported again.
    return d.catch((e: unknown) => {
      if (this.failure === e) this.failure = null;
      throw e;
    });
  }

  /** Whether input waits in the queue. */
  get pending(): boolean {
    return this.queue !== null;
  }

  /** Whether a drain is under way (input is being worked through; {@link settle} waits for it). */
  get draining(): boolean {
    return this.drainPromise !== null;
  }

  /**
   * Works through the queue: the first batch once `first` resolves (when given), each later one
   * after its own prefetch, or, for a coalescing operator, after the prefetch of the group of
   * batches it belongs to.
   */
  private async drain(first: Promise<void> | null): Promise<void> {
    const q = this.queue!;
    try {
      if (first !== null) await first;
      // Batches at the head of the queue whose prefetch has completed.
      let ready = first === null ? 0 : 1;
      while (q.length > 0) {
        const e = q[0];
        if (e.kind === 'batch') {
          if (ready === 0) ready = await this.prefetchNext(q);
          q.shift();
          this.operator.processBatch(e.items as readonly I[], e.ts);
          ready--;
        } else if (e.kind === 'watermark') {
          q.shift();
          this.applyWatermark(e.wm, e.input);
        } else {
          q.shift();
          this.applyIdle(e.idle, e.input);
        }
      }
    } finally {
      this.queue = null;
      this.drainPromise = null;
    }
  }

  /**
   * Prefetches the first queued batch, or for a coalescing operator the first batches up to
   * `maxItems` records (the watermarks between them stay where they are); returns how many batches.
   */
  private async prefetchNext(q: readonly Queued[]): Promise<number> {
    const op = this.operator;
    if (op.prefetch === undefined) return 1;
    const max = op.coalesce?.maxItems ?? 0;
    let count = 0;
    let total = 0;
    let first: readonly unknown[] | null = null;
    let items: unknown[] | null = null;
    for (let i = 0; i < q.length; i++) {
      const e = q[i];
      if (e.kind !== 'batch') continue;
      const n = e.items.length;
      if (count > 0 && total + n > max) break;
      if (count === 0) first = e.items;
      else {
        if (items === null) items = first!.slice();
        for (let j = 0; j < n; j++) items.push(e.items[j]);
      }
      count++;
      total += n;
      if (total >= max) break;
    }
    const wait = op.prefetch((items ?? first!) as readonly I[]);
    if (wait !== null) await wait;
    return count;
  }

  receiveWatermark(wm: number, input: number): void {
    if (this.queue !== null) {
      this.queue.push({ kind: 'watermark', wm, input });
      return;
    }
    this.applyWatermark(wm, input);
  }

  receiveIdle(idle: boolean, input: number): void {
    if (this.queue !== null) {
      this.queue.push({ kind: 'idle', idle, input });
      return;
    }
    this.applyIdle(idle, input);
  }

  private applyWatermark(wm: number, input: number): void {
    if (wm <= this.inputWatermarks[input]) return;
    this.inputWatermarks[input] = wm;
    this.advance();
  }

  private applyIdle(idle: boolean, input: number): void {
    if (this.inputIdle[input] === idle) return;
    this.inputIdle[input] = idle;
    const allIdle = this.inputIdle.every(Boolean);
    if (allIdle !== this.idle) {
      this.idle = allIdle;
      this.output.idle(allIdle);
    }
    this.advance();
  }

  /** The watermarks to keep in a checkpoint. */
  snapshotWatermarks(): { inputs: number[]; combined: number } {
    return { inputs: [...this.inputWatermarks], combined: this.watermark };
  }

  /** Takes back the watermarks of a checkpoint (before any data; inputs start active). */
  restoreWatermarks(w: { inputs: readonly number[]; combined: number }): void {
    for (let i = 0; i < this.inputWatermarks.length && i < w.inputs.length; i++) this.inputWatermarks[i] = w.inputs[i];
    this.watermark = w.combined;
  }

  private advance(): void {
    let min = Infinity;
    let active = false;
    for (let i = 0; i < this.inputWatermarks.length; i++) {
      if (this.inputIdle[i]) continue;
      active = true;
      if (this.inputWatermarks[i] < min) min = this.inputWatermarks[i];
    }
    if (!active || min <= this.watermark) return;
    this.watermark = min;
    this.operator.onWatermark?.(min);
    this.output.watermark(min);
  }
}

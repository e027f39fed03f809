import type { Counter } from '../observability/metrics.js';
import type { ErrorHandler } from './error-handler.js';
import type { Emitter, Operator } from './operator.js';

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
 */
export class RuntimeNode<I = unknown, O = unknown> implements Receiver {
  private readonly inputWatermarks: number[];
  private readonly inputIdle: boolean[];
  private idle = false;
  private queue: Queued[] | null = null;
  private draining: Promise<void> | null = null;
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

  receiveBatch(items: readonly unknown[], timestamps: readonly number[], _input: number): void {
    this.recordsIn.value += items.length;
    if (this.queue !== null) {
      this.queue.push({ kind: 'batch', items, ts: timestamps });
      return;
    }
    const wait = this.operator.prefetch?.(items as readonly I[]) ?? null;
    if (wait === null) {
      this.operator.processBatch(items as readonly I[], timestamps);
      return;
    }
    this.queue = [{ kind: 'batch', items, ts: timestamps }];
    this.draining = this.drain(wait);
    this.draining.catch(() => undefined); // kept for settle()
    this.onPending?.(this);
  }

  /** Resolves once nothing is queued (rejects with the error that stopped the queue). */
  settle(): Promise<void> {
    return this.draining ?? Promise.resolve();
  }

  /** Whether input waits in the queue. */
  get pending(): boolean {
    return this.queue !== null;
  }

  /** Works through the queue: the first batch once `first` resolves, each later one after its own prefetch. */
  private async drain(first: Promise<void>): Promise<void> {
    const q = this.queue!;
    try {
      await first;
      let prefetched = true;
      while (q.length > 0) {
        const e = q[0];
        if (e.kind === 'batch') {
          if (!prefetched) {
            const wait = this.operator.prefetch?.(e.items as readonly I[]) ?? null;
            if (wait !== null) await wait;
          }
          q.shift();
          this.operator.processBatch(e.items as readonly I[], e.ts);
          prefetched = false;
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
      this.draining = null;
    }
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

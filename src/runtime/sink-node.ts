import { WeirError, messageOf } from '../errors.js';
import type { Counter } from '../observability/metrics.js';
import type { Sink } from '../sinks/sink.js';
import type { Receiver } from './runtime-node.js';

/**
 * Feeds a user {@link Sink}: calls `write` per batch, keeps writes in order and never overlapping, and
 * tells the job when a write is in flight so the job can wait (backpressure).
 */
export class SinkNode implements Receiver {
  private tail: Promise<void> | null = null;
  private failure: WeirError | null = null;

  constructor(
    readonly name: string,
    readonly sink: Sink<unknown>,
    private readonly recordsIn: Counter,
    private readonly onPending: (node: SinkNode) => void,
  ) {}

  receiveBatch(items: readonly unknown[], timestamps: readonly number[], _input: number): void {
    if (items.length === 0) return;
    this.recordsIn.value += items.length;
    if (this.failure) throw this.failure;
    if (this.tail) {
      this.chain(() => this.sink.write(items, timestamps));
      return;
    }
    let r: void | Promise<void>;
    try {
      r = this.sink.write(items, timestamps);
    } catch (e) {
      throw this.fail(e);
    }
    if (r && typeof (r as Promise<void>).then === 'function') {
      this.tail = r as Promise<void>;
      this.onPending(this);
    }
  }

  /**
   * Runs `step` (a sink transaction method) after every write so far; writes after this call wait
   * for it. That puts a `preCommit` exactly between the records of two checkpoints.
   */
  after<R>(step: () => Promise<R>): Promise<R> {
    if (this.failure) return Promise.reject(this.failure);
    const p = this.chain(step);
    this.onPending(this);
    return p;
  }

  /** Queues `step` behind the tail. The tail keeps a failure for `settle()` but never goes unhandled. */
  private chain<R>(step: () => R | Promise<R>): Promise<R> {
    const p = (this.tail ?? Promise.resolve()).then(step);
    const tail = p.then(() => undefined);
    tail.catch(() => undefined);
    this.tail = tail;
    return p;
  }

  receiveWatermark(): void {}
  receiveIdle(): void {}

  /** Resolves when every write so far is done; rejects with a `WEIR_SINK_FAILED` error if one failed. */
  async settle(): Promise<void> {
    while (this.tail) {
      const t = this.tail;
      try {
        await t;
      } catch (e) {
        this.tail = null;
        throw this.fail(e);
      }
      if (this.tail === t) this.tail = null;
    }
    if (this.failure) throw this.failure;
  }

  private fail(e: unknown): WeirError {
    if (!this.failure) {
      this.failure = e instanceof WeirError ? e : new WeirError('WEIR_SINK_FAILED', `write failed: ${messageOf(e)}`, { step: this.name, cause: e });
    }
    return this.failure;
  }
}

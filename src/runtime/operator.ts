import type { Logger } from 'pino';
import type { SnapshotWriter, StateEntry } from '../checkpoint/snapshot.js';
import type { Clock } from '../time/clock.js';
import type { MetricsRegistry } from '../observability/metrics.js';
import type { ErrorHandler } from './error-handler.js';

/**
 * Where an operator sends what it produces: a batch of records with their event timestamps
 * (two parallel arrays, never an envelope per record). Arrays handed to `emit` must not be changed
 * afterwards: several downstream operators may hold them.
 */
export interface Emitter<O> {
  emit(items: readonly O[], timestamps: readonly number[]): void;
}

/** Processing-time callbacks: the job calls the operator's `onProcessingTime` once `time` is reached. */
export interface ProcessingTimeService {
  now(): number;
  /** Ask for an `onProcessingTime` call at (or soon after) `time`. Repeated requests are cheap. */
  request(time: number): void;
}

/** What an operator is handed when the job opens it. */
export interface OperatorContext<O> {
  /** The step name: `map#3`, or the name given with `{ name }`. */
  readonly name: string;
  readonly output: Emitter<O>;
  readonly errors: ErrorHandler;
  readonly metrics: MetricsRegistry;
  readonly clock: Clock;
  readonly processingTime: ProcessingTimeService;
  readonly logger: Logger;
  /**
   * Whether the job takes checkpoints: then the operator tracks what changed since its last
   * snapshot (and pays for it); without checkpoints that tracking is off and free.
   */
  readonly checkpointing: boolean;
}

/**
 * A runtime operator. `processBatch` is the one required method; the hooks default to nothing
 * (the watermark is forwarded by the job after `onWatermark` returns). Everything per record is a
 * plain synchronous loop inside `processBatch`.
 */
export interface Operator<I, O> {
  open?(ctx: OperatorContext<O>): void | Promise<void>;
  processBatch(items: readonly I[], timestamps: readonly number[]): void;
  /**
   * An operator whose state may be spilled out of memory: before `processBatch(items)`, a promise
   * that resolves once the state of the batch's keys is back in memory (one batched read), or null
   * when it already is (the usual case, and always without a cache budget). The runtime holds the
   * batch, and what comes after it, until then.
   */
  prefetch?(items: readonly I[]): Promise<void> | null;
  /**
   * An operator whose `prefetch` works best on many records at once (model inference: one call per
   * batch) asks the runtime to gather them. While a `prefetch` is pending, the batches queued behind
   * it go to the next `prefetch` together: their records concatenated, up to `maxItems` (a batch is
   * never split; a single batch may be bigger). Each batch still reaches `processBatch` on its own,
   * in order, with the watermarks and idleness that came between them applied between them. With
   * `lingerMs > 0`, a batch of fewer than `maxItems` records also waits up to `lingerMs` of
   * processing time for more (the sources go on meanwhile); a checkpoint, the end of the input, or
   * anything that settles the job cuts the wait short, so nothing is held across a checkpoint.
   */
  readonly coalesce?: { readonly maxItems: number; readonly lingerMs: number };
  /** The combined input watermark advanced to `wm`: fire what is due (results go out before `wm` does). */
  onWatermark?(wm: number): void;
  /** Processing time reached `now` (only after a `processingTime.request`). */
  onProcessingTime?(now: number): void;
  /** After the last batch and watermark; flush. Not called when the job failed. */
  close?(): void | Promise<void>;
  /** At the very end (after the last checkpoint), also when the job failed: release files and handles. */
  dispose?(): void | Promise<void>;
  /**
   * Between two batches: write the keyed state that changed since the last snapshot (or since the
   * restore) and the operator's metadata. Only called when `checkpointing`.
   */
  snapshotState?(out: SnapshotWriter): void;
  /** After `open`, before any data: take the state of a checkpoint (all of it, not a delta). */
  restoreState?(entries: readonly StateEntry[], meta: unknown): void;
}

import { preview } from '../errors.js';
import type { Counter } from '../observability/metrics.js';
import type { Clock } from '../time/clock.js';
import type { WatermarkGenerator } from '../time/watermark-strategy.js';
import type { ErrorHandler } from './error-handler.js';
import type { Output } from './runtime-node.js';

/** Extracts the event time (epoch ms) of a record. */
export type TimestampFn<T> = (record: T) => number;

/**
 * The head of a source's chain: stamps each record with its event time (or ingestion time when the
 * source has no timestamp function), drops bad records to the error policy, and turns the batch's
 * largest timestamp into a watermark. One loop per batch, nothing allocated per record.
 */
export class SourceNode<T> {
  private watermark = -Infinity;
  private idle = false;
  /** Processing time of the last batch (for idleness). */
  lastActivity: number;

  constructor(
    readonly name: string,
    private readonly timestamp: TimestampFn<T> | undefined,
    private readonly generator: WatermarkGenerator,
    readonly output: Output<T>,
    /** The source's error policy. */
    readonly errors: ErrorHandler,
    private readonly clock: Clock,
    private readonly recordsIn: Counter,
  ) {
    this.lastActivity = clock.now();
  }

  /** Push one batch of raw records into the job. */
  push(records: readonly T[]): void {
    const n = records.length;
    this.lastActivity = this.clock.now();
    if (this.idle) this.setIdle(false);
    if (n === 0) return;
    this.recordsIn.value += n;
    let items = records;
    let ts: number[];
    let max = -Infinity;
    const fn = this.timestamp;
    if (fn === undefined) {
      max = this.lastActivity;
      ts = new Array<number>(n).fill(max);
    } else {
      ts = new Array<number>(n);
      let bad = 0;
      for (let i = 0; i < n; i++) {
        let t: number;
        try {
          t = fn(records[i]);
        } catch (e) {
          this.reject(records[i], `timestamp function threw`, e);
          ts[i] = NaN;
          bad++;
          continue;
        }
        if (typeof t !== 'number' || t - t !== 0) {
          this.reject(records[i], `timestamp is not a finite number (got ${preview(t, 40)})`);
          ts[i] = NaN;
          bad++;
          continue;
        }
        // Event time is whole milliseconds (as in Flink): `end - 1` is then the last instant of a window.
        const ms = Math.floor(t);
        ts[i] = ms;
        if (ms > max) max = ms;
      }
      if (bad > 0) {
        const keptItems: T[] = [];
        const keptTs: number[] = [];
        for (let i = 0; i < n; i++) {
          if (ts[i] === ts[i]) {
            keptItems.push(records[i]);
            keptTs.push(ts[i]);
          }
        }
        items = keptItems;
        ts = keptTs;
      }
    }
    this.output.emit(items, ts);
    const wm = this.generator.onBatch(max);
    if (wm > this.watermark) {
      this.watermark = wm;
      this.output.watermark(wm);
    }
  }

  /** Its watermark state for a checkpoint. */
  snapshotWatermark(): { generator: unknown; emitted: number } {
    return { generator: this.generator.snapshot?.(), emitted: this.watermark };
  }

  /** Takes back the watermark state of a checkpoint (before any data). */
  restoreWatermark(w: { generator: unknown; emitted: number }): void {
    this.generator.restore?.(w.generator);
    this.watermark = w.emitted;
  }

  /** Emit a watermark by hand (test drivers); ignored unless it moves forward. */
  emitWatermark(wm: number): void {
    if (wm > this.watermark) {
      this.watermark = wm;
      this.output.watermark(wm);
    }
  }

  /** End of input: `+Infinity` fires every window downstream. */
  end(): void {
    if (this.idle) this.setIdle(false);
    this.emitWatermark(Infinity);
  }

  setIdle(idle: boolean): void {
    if (idle === this.idle) return;
    this.idle = idle;
    this.output.idle(idle);
  }

  get isIdle(): boolean {
    return this.idle;
  }

  private reject(record: T, message: string, cause?: unknown): void {
    this.errors.recordFailed('WEIR_TIMESTAMP_INVALID', message, record, undefined, cause);
  }
}

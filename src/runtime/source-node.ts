import { preview } from '../errors.js';
import type { Counter } from '../observability/metrics.js';
import type { Clock } from '../time/clock.js';
import type { WatermarkGenerator } from '../time/watermark-strategy.js';
import type { ErrorHandler } from './error-handler.js';
import type { Output } from './runtime-node.js';

/** Extracts the event time (epoch ms) of a record. */
export type TimestampFn<T> = (record: T) => number;

/** One split of a source with splits (a Kafka partition): its own watermark and idleness. */
interface SplitState {
  readonly generator: WatermarkGenerator;
  watermark: number;
  lastActivity: number;
  idle: boolean;
}

/** A source's watermark state in a checkpoint. */
export interface SourceWatermarkState {
  readonly generator: unknown;
  readonly emitted: number;
  /** Per split (sources with splits): each split's generator state and watermark. */
  readonly splits?: Readonly<Record<string, { readonly generator: unknown; readonly emitted: number }>>;
}

/**
 * The head of a source's chain: stamps each record with its event time (or ingestion time when the
 * source has no timestamp function), drops bad records to the error policy, and turns the batch's
 * largest timestamp into a watermark. One loop per batch, nothing allocated per record.
 *
 * A source with splits (Kafka partitions) gets a watermark generator per split: the source's
 * watermark is the minimum over the splits that are not idle (a split is idle after the strategy's
 * idle timeout without records), as Flink's per-partition watermarks. Splits come and go with the
 * source's assignment ({@link setSplits}); a new split holds the watermark back until it has records
 * or goes idle.
 */
export class SourceNode<T> {
  private watermark = -Infinity;
  private idle = false;
  /** Processing time of the last batch (for idleness). */
  lastActivity: number;
  private readonly splits = new Map<string, SplitState>();
  private splitList: readonly string[] | null = null;

  constructor(
    readonly name: string,
    private readonly timestamp: TimestampFn<T> | undefined,
    private readonly generator: WatermarkGenerator,
    readonly output: Output<T>,
    /** The source's error policy. */
    readonly errors: ErrorHandler,
    private readonly clock: Clock,
    private readonly recordsIn: Counter,
    /** Makes a split's generator (the source's strategy). */
    private readonly newGenerator: () => WatermarkGenerator = () => generator,
    /** The strategy's idle timeout, ms (per split), or undefined. */
    private readonly idleTimeout: number | undefined = undefined,
  ) {
    this.lastActivity = clock.now();
  }

  /**
   * The splits the source reads now. Splits no longer listed are dropped (they stop holding the
   * watermark back); new ones start with no watermark. Cheap when the list is the same array as before.
   */
  setSplits(list: readonly string[]): void {
    if (list === this.splitList) return;
    this.splitList = list;
    const now = this.clock.now();
    const keep = new Set(list);
    for (const id of [...this.splits.keys()]) if (!keep.has(id)) this.splits.delete(id);
    for (const id of list) if (!this.splits.has(id)) this.splits.set(id, { generator: this.newGenerator(), watermark: -Infinity, lastActivity: now, idle: false });
    this.advanceSplits();
  }

  /** Push one batch of raw records into the job; `split`: the split they came from (sources with splits). */
  push(records: readonly T[], split?: string): void {
    const n = records.length;
    this.lastActivity = this.clock.now();
    if (this.idle) this.setIdle(false);
    let state: SplitState | undefined;
    if (split !== undefined) {
      state = this.splits.get(split);
      if (state === undefined) this.splits.set(split, (state = { generator: this.newGenerator(), watermark: -Infinity, lastActivity: this.lastActivity, idle: false }));
      state.lastActivity = this.lastActivity;
      state.idle = false;
    }
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
    if (state !== undefined) {
      const swm = state.generator.onBatch(max);
      if (swm > state.watermark) state.watermark = swm;
      this.advanceSplits();
      return;
    }
    const wm = this.generator.onBatch(max);
    if (wm > this.watermark) {
      this.watermark = wm;
      this.output.watermark(wm);
    }
  }

  /**
   * No records for a while: with an idle timeout, marks the source idle (or, with splits, each split
   * without records for that long; the watermark may then move on with the others).
   */
  checkIdleness(): void {
    const timeout = this.idleTimeout;
    if (timeout === undefined) return;
    const now = this.clock.now();
    if (this.splits.size === 0) {
      if (now - this.lastActivity >= timeout) this.setIdle(true);
      return;
    }
    let changed = false;
    for (const st of this.splits.values()) {
      if (!st.idle && now - st.lastActivity >= timeout) {
        st.idle = true;
        changed = true;
      }
    }
    if (changed) this.advanceSplits();
  }

  /** The minimum watermark over active splits goes out; all splits idle: the source is idle. */
  private advanceSplits(): void {
    let min = Infinity;
    let active = false;
    for (const st of this.splits.values()) {
      if (st.idle) continue;
      active = true;
      if (st.watermark < min) min = st.watermark;
    }
    if (!active) {
      if (this.splits.size > 0) this.setIdle(true);
      return;
    }
    if (this.idle) this.setIdle(false);
    if (min > this.watermark && min !== Infinity) {
      this.watermark = min;
      this.output.watermark(min);
    }
  }

  /** Its watermark state for a checkpoint. */
  snapshotWatermark(): SourceWatermarkState {
    if (this.splits.size === 0) return { generator: this.generator.snapshot?.(), emitted: this.watermark };
    const splits: Record<string, { generator: unknown; emitted: number }> = {};
    for (const [id, st] of this.splits) splits[id] = { generator: st.generator.snapshot?.(), emitted: st.watermark };
    return { generator: undefined, emitted: this.watermark, splits };
  }

  /** Takes back the watermark state of a checkpoint (before any data). */
  restoreWatermark(w: SourceWatermarkState): void {
    this.watermark = w.emitted;
    if (w.splits === undefined) {
      this.generator.restore?.(w.generator);
      return;
    }
    const now = this.clock.now();
    for (const [id, sw] of Object.entries(w.splits)) {
      const generator = this.newGenerator();
      generator.restore?.(sw.generator);
      this.splits.set(id, { generator, watermark: sw.emitted, lastActivity: now, idle: false });
    }
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

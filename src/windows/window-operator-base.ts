import { preview } from '../errors.js';
import type { Counter } from '../observability/metrics.js';
import type { ErrorHandler } from '../runtime/error-handler.js';
import type { Emitter, Operator, OperatorContext } from '../runtime/operator.js';
import type { StateBackend } from '../state/state-backend.js';
import type { Aggregator } from './aggregator.js';
import { WindowOutput } from './window-output.js';
import type { WindowInfo } from './window-assigner.js';

/** What every keyed window operator is built from. */
export interface WindowOperatorConfig {
  readonly key: (record: unknown) => unknown;
  readonly aggregator: Aggregator<unknown, unknown, unknown>;
  readonly allowedLateness: number;
  readonly project: ((w: WindowInfo<unknown>, result: unknown) => unknown) | undefined;
  /** Where elements too late for every window go; absent: dropped and counted. */
  readonly lateOutput: Emitter<unknown> | undefined;
  readonly state: StateBackend;
}

/** Returned by {@link KeyedWindowOperator.keyOf} when the key function failed. */
export const NO_KEY: unique symbol = Symbol('weir.noKey');
/**
 * `keyFn(record)`, or NO_KEY after reporting a key function that threw (WEIR_USER_FUNCTION_FAILED) or
 * returned undefined, null or NaN (WEIR_KEY_INVALID) to the error policy. Keyed event-time steps
 * (windows, drift) share it.
 */
export function keyOrReport(keyFn: (record: unknown) => unknown, record: unknown, ts: number, errors: ErrorHandler): unknown {
  let k: unknown;
  try {
    k = keyFn(record);
  } catch (e) {
    errors.recordFailed('WEIR_USER_FUNCTION_FAILED', 'keyBy function threw', record, ts, e);
    return NO_KEY;
  }
  if (k === undefined || k === null || k !== k) {
    errors.recordFailed('WEIR_KEY_INVALID', `keyBy returned ${preview(k, 20)}`, record, ts);
    return NO_KEY;
  }
  return k;
}

/** Returned by {@link KeyedWindowOperator.addTo} when the aggregate function failed. */
export const NO_ACC: unique symbol = Symbol('weir.noAcc');

/**
 * Shared machinery of the window operators: key extraction with error handling, the output buffer
 * (one emit per batch / watermark), late-element routing and the late metrics.
 */
export abstract class KeyedWindowOperator implements Operator<unknown, unknown> {
  protected errors!: ErrorHandler;
  protected name = '';
  protected watermark = -Infinity;
  /** Whether the job takes checkpoints (then changes since the last snapshot are tracked). */
  protected tracking = false;
  protected readonly keyFn: (record: unknown) => unknown;
  protected readonly agg: Aggregator<unknown, unknown, unknown>;
  protected readonly lateness: number;
  private readonly project: WindowOperatorConfig['project'];
  private readonly lateOut: Emitter<unknown> | undefined;
  private output!: WindowOutput;
  protected lateUpdated!: Counter;

  constructor(protected readonly config: WindowOperatorConfig) {
    this.keyFn = config.key;
    this.agg = config.aggregator;
    this.lateness = config.allowedLateness;
    this.project = config.project;
    this.lateOut = config.lateOutput;
  }

  open(ctx: OperatorContext<unknown>): void {
    this.tracking = ctx.checkpointing;
    this.errors = ctx.errors;
    this.name = ctx.name;
    this.output = new WindowOutput(ctx, this.lateOut);
    this.lateUpdated = ctx.metrics.counter('weir_late_records_total', { step: ctx.name, outcome: 'updated' });
  }

  abstract processBatch(items: readonly unknown[], timestamps: readonly number[]): void;

  /** The record's key, or NO_KEY after reporting a bad one to the error policy. */
  protected keyOf(record: unknown, ts: number): unknown {
    return keyOrReport(this.keyFn, record, ts, this.errors);
  }

  /** Folds `record` into `acc` (undefined: a fresh one); NO_ACC after reporting a failure. */
  protected addTo(acc: unknown, record: unknown, ts: number): unknown {
    try {
      return this.agg.add(acc === undefined ? this.agg.create() : acc, record);
    } catch (e) {
      this.errors.recordFailed('WEIR_USER_FUNCTION_FAILED', 'aggregate function threw', record, ts, e);
      return NO_ACC;
    }
  }

  /** Buffers one window result (timestamp `end - 1`). */
  protected fire(key: unknown, start: number, end: number, acc: unknown): void {
    let out: unknown;
    try {
      const value = this.agg.result(acc);
      out = this.project === undefined ? { key, start, end, value } : this.project({ key, start, end }, value);
    } catch (e) {
      this.windowFailed(key, start, end, this.project === undefined ? 'aggregate result' : 'window process', e);
      return;
    }
    if (out === undefined) return;
    this.output.result(out, end - 1);
  }

  /** `merge(a, b)`, or NO_ACC after reporting that it threw (the window of that key is skipped). */
  protected mergeOrFail(a: unknown, b: unknown, key: unknown, start: number, end: number): unknown {
    try {
      return this.agg.merge(a, b);
    } catch (e) {
      this.windowFailed(key, start, end, 'aggregate merge', e);
      return NO_ACC;
    }
  }

  /**
   * A user function failed on a whole window: the error policy gets `{ key, start, end }` as the
   * record (there is no single element to blame).
   */
  protected windowFailed(key: unknown, start: number, end: number, what: string, e: unknown): void {
    this.errors.recordFailed('WEIR_USER_FUNCTION_FAILED', `${what} function threw for window [${start}, ${end}) of key ${preview(key, 40)}`, { key, start, end }, end - 1, e);
  }

  /** An element too late for every window: to the late output, or dropped and counted. */
  protected tooLate(record: unknown, ts: number): void {
    this.output.tooLate(record, ts);
  }

  /** Sends what the batch or watermark produced. */
  protected flush(): void {
    this.output.flush();
  }
}

/** `x mod m` in [0, m), also for negative x. */
export function mod(x: number, m: number): number {
  const r = x % m;
  return r < 0 ? r + m : r;
}

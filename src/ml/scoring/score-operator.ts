import type { Logger } from 'pino';
import { WeirError, messageOf, preview, type ErrorCode } from '../../errors.js';
import type { Counter } from '../../observability/metrics.js';
import type { ErrorHandler } from '../../runtime/error-handler.js';
import type { Emitter, Operator, OperatorContext } from '../../runtime/operator.js';
import { CircuitBreaker, type BreakerState } from './circuit-breaker.js';
import { FeatureBatch } from './feature-batch.js';
import type { ScoreSpec } from './score-spec.js';
import type { ModelOutput, ScoringModel } from './scoring-model.js';

/** Per-row outcome of a group (absent `status`: every row was scored). */
const SCORED = 0;
const INVALID = 1;
const FN_THREW = 2;
const FALLBACK = 3;

/** Upper bounds of the model-call size histogram (`weir_score_batch_rows_bucket{le}`). */
const BUCKETS = [1, 8, 32, 128, 256, 1024, 4096] as const;

const BREAKER_GAUGE: Record<BreakerState, number> = { closed: 0, open: 1, 'half-open': 2 };

interface ScoreMetrics {
  readonly scored: Counter;
  readonly calls: Counter;
  readonly rows: Counter;
  readonly modelMs: Counter;
  readonly failures: Counter;
  readonly fallback: Counter;
  readonly invalid: Counter;
  readonly breaker: Counter;
  readonly trips: Counter;
  readonly buckets: readonly Counter[];
}

/**
 * The `score` step. `prefetch` gets the records of one or more queued batches (the runtime coalesces
 * them, see `Operator.coalesce`), writes their features into ONE `Float32Array` (valid rows only),
 * and calls the model once per `batchSize` rows; `processBatch` then writes the scores back, batch by
 * batch, in order. Only model calls that really are asynchronous make a promise: a synchronous model
 * (TensorFlow.js on the cpu, wasm or tensorflow backends) is scored inside `prefetch`, which then
 * returns null.
 *
 * Records whose features are bad go to the error policy one by one (`WEIR_FEATURE_INVALID`); a model
 * call that fails (or no model, or the breaker open) gives its rows the fallback. Nothing is held
 * between batches, so checkpoints need no state from this operator.
 */
export class ScoreOperator implements Operator<unknown, unknown> {
  readonly coalesce: { readonly maxItems: number; readonly lingerMs: number };
  private out!: Emitter<unknown>;
  private errors!: ErrorHandler;
  private logger!: Logger;
  private name = 'score';
  private breaker!: CircuitBreaker;
  private m!: ScoreMetrics;
  /** Features per row (-1: not known yet; a features function's first row sets it). */
  private width: number;

  // The group the last prefetch prepared, consumed in order by processBatch.
  private rows = 0;
  private cursor = 0;
  /** Rows with features, compacted into `matrix`; `validIdx[t]` is the row of matrix row `t` (null: row t). */
  private valid = 0;
  private matrix = new Float32Array(0);
  private validIdx: Int32Array | null = null;
  private status: Uint8Array | null = null;
  private reasons: (string | undefined)[] = [];
  private causes: unknown[] = [];
  private scores = new Float64Array(0);
  private outWidth = -1;
  private version = '';
  private lastVersion: string | null = null;
  private lastFailure = '';

  constructor(
    private readonly spec: ScoreSpec,
    /** Where fallback records go with `fallback: { sideOutput }`. */
    private readonly side: Emitter<unknown> | null,
  ) {
    this.coalesce = { maxItems: spec.batchSize, lingerMs: spec.maxLatencyMs };
    this.width = spec.fields?.length ?? -1;
  }

  async open(ctx: OperatorContext<unknown>): Promise<void> {
    this.out = ctx.output;
    this.errors = ctx.errors;
    this.logger = ctx.logger;
    this.name = ctx.name;
    const c = (n: string, labels: Record<string, string> = {}): Counter => ctx.metrics.counter(n, { step: ctx.name, ...labels });
    this.m = {
      scored: c('weir_score_records_total'),
      calls: c('weir_score_model_calls_total'),
      rows: c('weir_score_model_rows_total'),
      modelMs: c('weir_score_model_ms_total'),
      failures: c('weir_score_model_failures_total'),
      fallback: c('weir_score_fallback_total'),
      invalid: c('weir_score_invalid_features_total'),
      breaker: c('weir_score_breaker_state'),
      trips: c('weir_score_breaker_trips_total'),
      buckets: [...BUCKETS.map((b) => c('weir_score_batch_rows_bucket', { le: String(b) })), c('weir_score_batch_rows_bucket', { le: '+Inf' })],
    };
    this.breaker = new CircuitBreaker(this.spec.breakerFailures, this.spec.coolDownMs, ctx.clock, (s) => this.onBreaker(s));
    const ref = this.spec.model;
    await ref.ready();
    const model = ref.current;
    if (model === null) {
      this.logger.error({ err: ref.lastError }, 'no model loaded: records get the fallback until one loads');
      return;
    }
    if (model.inputWidth !== undefined) {
      if (this.spec.fields !== null && model.inputWidth !== this.width) {
        throw new WeirError('WEIR_INVALID_ARGUMENT', `model ${model.name} ${model.version} takes ${model.inputWidth} features, but features names ${this.width} fields (${this.spec.fields.join(', ')})`, { step: ctx.name });
      }
      if (this.width < 0) this.width = model.inputWidth;
    }
    this.logger.info({ model: model.name, version: model.version, batchSize: this.spec.batchSize, maxLatencyMs: this.spec.maxLatencyMs }, 'scoring with model');
  }

  prefetch(items: readonly unknown[]): Promise<void> | null {
    if (this.cursor !== this.rows) throw new WeirError('WEIR_INTERNAL', `score: ${this.rows - this.cursor} scored records were never written back`, { step: this.name });
    const n = items.length;
    this.rows = n;
    this.cursor = 0;
    this.status = null;
    this.outWidth = -1;
    if (n === 0) return null;
    this.extract(items);
    if (this.valid === 0) return null;
    return this.scoreRows(false);
  }

  processBatch(items: readonly unknown[], ts: readonly number[]): void {
    const n = items.length;
    const base = this.cursor;
    if (base + n > this.rows) throw new WeirError('WEIR_INTERNAL', `score: a batch of ${n} records reached processBatch without its prefetch`, { step: this.name });
    this.cursor = base + n;
    if (n === 0) return;
    const out = this.spec.output;
    const vf = this.spec.versionField;
    const version = this.version;
    const status = this.status;
    if (status === null) {
      const res = new Array<unknown>(n);
      if (this.outWidth === 1) {
        const s = this.scores;
        for (let i = 0; i < n; i++) res[i] = { ...(items[i] as object), [out]: s[base + i], [vf]: version };
      } else {
        for (let i = 0; i < n; i++) res[i] = { ...(items[i] as object), [out]: this.scoreOf(base + i), [vf]: version };
      }
      this.m.scored.value += n;
      this.out.emit(res, ts);
      return;
    }
    const fb = this.spec.fallback;
    const keptItems: unknown[] = [];
    const keptTs: number[] = [];
    let sideItems: unknown[] | null = null;
    let sideTs: number[] | null = null;
    let scored = 0;
    for (let i = 0; i < n; i++) {
      const row = base + i;
      const r = items[i];
      const st = status[row];
      if (st === SCORED) {
        keptItems.push({ ...(r as object), [out]: this.scoreOf(row), [vf]: version });
        keptTs.push(ts[i]);
        scored++;
      } else if (st === FALLBACK) {
        if (fb.kind === 'score') {
          keptItems.push({ ...(r as object), [out]: fb.score, [vf]: fb.version });
          keptTs.push(ts[i]);
        } else if (fb.kind === 'side-output') {
          (sideItems ??= []).push(r);
          (sideTs ??= []).push(ts[i]);
        } else {
          this.errors.recordFailed('WEIR_MODEL_FAILED', this.reasons[row]!, r, ts[i]);
        }
      } else {
        const code: ErrorCode = st === FN_THREW ? 'WEIR_USER_FUNCTION_FAILED' : 'WEIR_FEATURE_INVALID';
        this.errors.recordFailed(code, this.reasons[row]!, r, ts[i], this.causes[row]);
      }
    }
    this.m.scored.value += scored;
    this.out.emit(keptItems, keptItems.length === n ? ts : keptTs);
    if (sideItems !== null) this.side!.emit(sideItems, sideTs!);
  }

  /** Row `row`'s score: a number, or an array with several outputs per row. */
  private scoreOf(row: number): number | number[] {
    const w = this.outWidth;
    if (w === 1) return this.scores[row];
    const v = new Array<number>(w);
    for (let j = 0; j < w; j++) v[j] = this.scores[row * w + j];
    return v;
  }

  // ---- features ----

  /** Fills `matrix` with the features of the valid rows (compacted) and rejects the others. */
  private extract(items: readonly unknown[]): void {
    const n = items.length;
    const fields = this.spec.fields;
    const fn = this.spec.featureFn;
    let w = this.width;
    if (w < 0) w = this.width = this.learnWidth(items);
    if (w < 0) {
      // No row gave an array: each is rejected below with its own reason.
      w = 0;
    }
    // A fresh array per group: a scorer may keep the batch it was given.
    const m = (this.matrix = new Float32Array(n * w));
    let idx: Int32Array | null = null;
    let k = 0;
    let off = 0;
    for (let i = 0; i < n; i++) {
      const r = items[i];
      let bad: string | null = null;
      if (fields !== null) {
        if (r === null || typeof r !== 'object') bad = `the record is ${r === null ? 'null' : typeof r}, not an object with fields ${fields.join(', ')}`;
        else {
          for (let j = 0; j < w; j++) {
            const v = (r as Record<string, unknown>)[fields[j]];
            if (typeof v !== 'number' || v - v !== 0) {
              bad = badValue(`field ${JSON.stringify(fields[j])}`, v);
              break;
            }
            m[off + j] = v;
          }
        }
      } else {
        let row: ArrayLike<number>;
        try {
          row = fn!(r);
        } catch (e) {
          idx ??= this.startIdx(n, k);
          this.reject(i, FN_THREW, 'features function threw', e);
          continue;
        }
        if (row === null || typeof row !== 'object' || typeof row.length !== 'number') bad = `the features function returned ${describe(row)}, not an array of numbers`;
        else if (row.length === 0) bad = 'the features function returned no values';
        else if (row.length !== w) bad = `the features function returned ${row.length} values, the model takes ${w}`;
        else {
          for (let j = 0; j < w; j++) {
            const v = row[j];
            if (typeof v !== 'number' || v - v !== 0) {
              bad = badValue(`feature ${j}`, v);
              break;
            }
            m[off + j] = v;
          }
        }
      }
      if (bad !== null) {
        idx ??= this.startIdx(n, k);
        this.reject(i, INVALID, bad);
        continue;
      }
      if (idx !== null) idx[k] = i;
      k++;
      off += w;
    }
    this.valid = k;
    this.validIdx = idx;
    this.m.invalid.value += n - k;
  }

  /** The row count of a features function, from the first record it gives an array for (-1: none). */
  private learnWidth(items: readonly unknown[]): number {
    const fn = this.spec.featureFn!;
    for (const r of items) {
      try {
        const row = fn(r);
        if (row !== null && typeof row === 'object' && typeof row.length === 'number' && row.length > 0) return row.length;
      } catch {
        // reported per record by extract
      }
    }
    return -1;
  }

  /** The valid-row index list, once the first bad row shows up (rows before it map to themselves). */
  private startIdx(n: number, k: number): Int32Array {
    const idx = new Int32Array(n);
    for (let t = 0; t < k; t++) idx[t] = t;
    return idx;
  }

  private reject(row: number, code: number, reason: string, cause?: unknown): void {
    if (this.status === null) {
      this.status = new Uint8Array(this.rows);
      this.reasons = [];
      this.causes = [];
    }
    this.status[row] = code;
    this.reasons[row] = reason;
    if (cause !== undefined) this.causes[row] = cause;
  }

  // ---- model calls ----

  /** Scores the valid rows, or gives them the fallback; a promise only if a model call is asynchronous. */
  private scoreRows(reloaded: boolean): Promise<void> | null {
    const k = this.valid;
    if (!this.breaker.allow()) {
      this.fallbackRows(0, k, `circuit breaker open after ${this.spec.breakerFailures} failed model calls (last: ${this.lastFailure})`);
      return null;
    }
    const ref = this.spec.model;
    if (ref.current === null) {
      if (!reloaded && ref.canReload) {
        const retry = (): Promise<void> | undefined => this.scoreRows(true) ?? undefined;
        return ref.reload().then(retry, retry);
      }
      this.modelFailed(0, k, `no model loaded${ref.lastError === null ? '' : `: ${messageOf(ref.lastError)}`}`);
      return null;
    }
    const model = ref.acquire()!;
    if (model.inputWidth !== undefined && model.inputWidth !== this.width) {
      this.modelFailed(0, k, `model ${model.name} ${model.version} takes ${model.inputWidth} features, the rows have ${this.width}`);
      ref.release(model);
      return null;
    }
    if (model.version !== this.lastVersion) {
      if (this.lastVersion !== null) this.logger.info({ model: model.name, version: model.version, previous: this.lastVersion }, 'model version changed');
      this.lastVersion = model.version;
    }
    this.version = model.version;
    const pending = this.runCalls(model, 0);
    if (pending === null) {
      ref.release(model);
      return null;
    }
    return pending.finally(() => ref.release(model));
  }

  /** Model calls of `batchSize` rows from matrix row `from` on; continues asynchronously only after an asynchronous call. */
  private runCalls(model: ScoringModel<unknown>, from: number): Promise<void> | null {
    const k = this.valid;
    const bs = this.spec.batchSize;
    const w = this.width;
    for (let start = from; start < k; start += bs) {
      const end = Math.min(k, start + bs);
      if (!this.breaker.allow()) {
        this.fallbackRows(start, k, `circuit breaker open after ${this.spec.breakerFailures} failed model calls (last: ${this.lastFailure})`);
        return null;
      }
      const batch = new FeatureBatch(this.matrix.subarray(start * w, end * w), end - start, w);
      const t0 = performance.now();
      let r: ModelOutput | Promise<ModelOutput>;
      try {
        r = model.predict(batch);
      } catch (e) {
        this.callFailed(model, start, end, e);
        continue;
      }
      if (r instanceof Promise) {
        const next = (): Promise<void> | undefined => this.runCalls(model, end) ?? undefined;
        return r.then(
          (o) => {
            this.callDone(model, o, start, end, t0);
            return next();
          },
          (e: unknown) => {
            this.callFailed(model, start, end, e);
            return next();
          },
        );
      }
      this.callDone(model, r, start, end, t0);
    }
    return null;
  }

  private callDone(model: ScoringModel<unknown>, o: ModelOutput, start: number, end: number, t0: number): void {
    const rows = end - start;
    const m = this.m;
    m.modelMs.value += performance.now() - t0;
    m.calls.value++;
    m.rows.value += rows;
    for (let b = 0; b < BUCKETS.length; b++) if (rows <= BUCKETS[b]) m.buckets[b].value++;
    m.buckets[BUCKETS.length].value++;
    const width = o?.width;
    const values = o?.values;
    if (!(Number.isInteger(width) && width >= 1) || values === null || typeof values !== 'object' || values.length !== rows * width) {
      this.callFailed(model, start, end, new Error(`it returned ${values?.length ?? 'no'} values for ${rows} rows`));
      return;
    }
    if (this.outWidth < 0) {
      this.outWidth = width;
      if (this.scores.length < this.rows * width) this.scores = new Float64Array(Math.max(this.rows * width, this.scores.length * 2));
    } else if (width !== this.outWidth) {
      this.callFailed(model, start, end, new Error(`it returned ${width} scores per row, earlier calls ${this.outWidth}`));
      return;
    }
    const s = this.scores;
    const idx = this.validIdx;
    if (width === 1) {
      if (idx === null) for (let t = 0; t < rows; t++) s[start + t] = values[t];
      else for (let t = 0; t < rows; t++) s[idx[start + t]] = values[t];
    } else {
      for (let t = 0; t < rows; t++) {
        const row = idx === null ? start + t : idx[start + t];
        for (let j = 0; j < width; j++) s[row * width + j] = values[t * width + j];
      }
    }
    this.breaker.success();
  }

  private callFailed(model: ScoringModel<unknown>, start: number, end: number, e: unknown): void {
    this.modelFailed(start, end, `model ${model.name} ${model.version} failed: ${messageOf(e)}`, e);
  }

  /** A failed call (or load): the breaker counts it, the rows get the fallback. */
  private modelFailed(start: number, end: number, reason: string, cause?: unknown): void {
    this.m.failures.value++;
    this.lastFailure = reason;
    this.logger.warn({ err: cause, rows: end - start, breaker: this.breaker.state }, reason);
    this.breaker.failure();
    this.fallbackRows(start, end, reason);
  }

  private fallbackRows(start: number, end: number, reason: string): void {
    const idx = this.validIdx;
    for (let t = start; t < end; t++) this.reject(idx === null ? t : idx[t], FALLBACK, reason);
    this.m.fallback.value += end - start;
  }

  private onBreaker(s: BreakerState): void {
    this.m.breaker.value = BREAKER_GAUGE[s];
    if (s === 'open') {
      this.m.trips.value++;
      this.logger.warn({ coolDownMs: this.spec.coolDownMs, last: this.lastFailure }, 'circuit breaker open: records get the fallback');
    } else if (s === 'closed') this.logger.info('circuit breaker closed: the model scores again');
    else this.logger.info('circuit breaker half-open: trying the model');
  }
}

/** Why a feature value is unusable, for the dead letter. */
function badValue(what: string, v: unknown): string {
  if (v === undefined) return `${what} is missing`;
  if (typeof v === 'number') return `${what} is ${v}`; // NaN, Infinity, -Infinity
  return `${what} is ${describe(v)}, not a number`;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  if (typeof v === 'string') return `a string (${preview(v, 40)})`;
  if (typeof v === 'object') return Array.isArray(v) ? 'an array' : `an object (${preview(v, 40)})`;
  return `a ${typeof v} (${String(v)})`;
}

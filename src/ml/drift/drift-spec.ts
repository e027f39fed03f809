/**
 * `ml.ks(...)` and `ml.psi(...)`: the configuration of a drift step, checked and resolved once when the
 * pipeline is built (the reference sorted, PSI bin edges fixed), so the operator only counts.
 */
import { WeirError } from '../../errors.js';
import { toMillis, type Duration } from '../../time/duration.js';
import type { Sink } from '../../sinks/sink.js';
import type { TumblingWindows } from '../../windows/window-assigner.js';
import type { KsAlternative, KsMethod } from '../stats/ks.js';
import { psiBins, type PsiBins } from '../stats/psi.js';
import type { QuantileSketchOptions } from '../stats/quantile-sketch.js';
import { sortSample } from '../stats/sample.js';

/**
 * The records a field-name feature accepts: the field holds a number (or is missing / null, which sends
 * the record to the dead letters). A name that is not a numeric field of the stream's type is a compile
 * error at `.drift(...)`.
 *
 * @example
 * // ml.ks({ feature: 'amount', ... }) is a DriftSpec<FeatureRecord<'amount'>>: fits any Stream<{ amount: number }>
 */
export type FeatureRecord<F extends string> = { readonly [K in F]?: number | null };

/**
 * The window a drift step compares: an event-time tumbling window (a duration, or
 * `windows.tumbling(size, { offset })`), which reports when the watermark reaches `end - 1`; or a count
 * window of `count` values per key, which reports as soon as it is full (a last, partial one is not
 * reported).
 *
 * @example
 * window: '1m'
 * window: windows.tumbling('1h', { offset: '15m' })
 * window: { count: 10_000 }
 */
export type DriftWindow = Duration | TumblingWindows | { readonly count: number };

/**
 * What each window is compared with:
 * - a fixed sample (`number[]` or `Float64Array`, e.g. the training data);
 * - `'first-window'`: the first window that completes (per key) becomes the reference; it gets no report;
 * - `{ trailing: n }`: the `n` most recent earlier windows (per key, windows that had values); the first
 *   `n` windows only fill the reference and get no report.
 *
 * @example
 * reference: trainingAmounts
 * reference: 'first-window'
 * reference: { trailing: 6 }
 */
export type DriftReference = readonly number[] | Float64Array | 'first-window' | { readonly trailing: number };

/**
 * A feature: the name of a numeric field, or a function of the record. Values must be finite numbers;
 * anything else (missing, null, NaN, ±Infinity, a string) sends the record to the dead letters
 * (`WEIR_FEATURE_INVALID`) under `onError: { deadLetter }`, or fails the job.
 *
 * @example
 * feature: 'amount'
 * feature: (t: Txn) => Math.log1p(t.amount)
 */
export type FeatureSelector<T> = string | ((record: T) => number | null | undefined);

/**
 * Options of both drift tests.
 *
 * @example
 * { feature: 'amount', reference: training, window: '5m', sketch: { exactLimit: 50_000 } }
 */
export interface DriftOptions<F> {
  /** The feature to watch: a numeric field name, or a function of the record. */
  readonly feature: F;
  /** The feature's name in reports (default: the field name, or the function's name, or `'feature'`). */
  readonly name?: string;
  readonly window: DriftWindow;
  readonly reference: DriftReference;
  /**
   * Samples up to `exactLimit` values (default 10 000) are kept whole and tested exactly; larger ones
   * go into a quantile sketch of `k` values per level (default 4096): memory stays bounded and reports
   * say `approximate: true` with their certified `rankError`.
   */
  readonly sketch?: QuantileSketchOptions;
}

/**
 * Options of `ml.ks`: the two-sample Kolmogorov–Smirnov test, reference first, as
 * `ml.stats.ks2(reference, window, { alternative, method })`.
 *
 * @example
 * ml.ks({ feature: 'amount', reference: 'first-window', window: '1m', alpha: 0.01 })
 */
export interface KsDriftOptions<F> extends DriftOptions<F> {
  /** A window drifts when its p-value is below this (default 0.05). */
  readonly alpha?: number;
  /** Default `'two-sided'`. */
  readonly alternative?: KsAlternative;
  /** How exact-vs-exact p-values are computed (default `'auto'`, as scipy). Sketched samples use `'asymp'`. */
  readonly method?: KsMethod;
}

/**
 * Options of `ml.psi`: the Population Stability Index with bins at the reference's quantiles, as
 * `ml.stats.psi(reference, window, { bins, epsilon })`.
 *
 * @example
 * ml.psi({ feature: 'amount', reference: training, window: '1m', bins: 10, thresholds: [0.1, 0.25] })
 */
export interface PsiDriftOptions<F> extends DriftOptions<F> {
  /** Number of reference-quantile bins (default 10). */
  readonly bins?: number;
  /** `[moderate, major]` (default `[0.1, 0.25]`): PSI at or above them is that level of drift. */
  readonly thresholds?: readonly [number, number];
  /** Floor of every bin proportion (default 1e-4). */
  readonly epsilon?: number;
}

/** @internal The resolved window. */
export type DriftWindowConfig = { readonly kind: 'tumbling'; readonly size: number; readonly offset: number } | { readonly kind: 'count'; readonly count: number };

/** @internal The resolved reference. */
export type DriftReferenceConfig =
  | { readonly kind: 'fixed'; readonly sorted: Float64Array; readonly bins: PsiBins | null }
  | { readonly kind: 'first-window' }
  | { readonly kind: 'trailing'; readonly windows: number };

/** @internal Everything the operator needs, resolved and checked. */
export interface DriftConfig {
  readonly test: 'ks' | 'psi';
  /** The feature's name in reports and messages. */
  readonly feature: string;
  /** The field name, when the feature is one (read without a function call). */
  readonly field: string | undefined;
  readonly window: DriftWindowConfig;
  readonly reference: DriftReferenceConfig;
  readonly k: number;
  readonly exactLimit: number;
  readonly ks: { readonly alpha: number; readonly alternative: KsAlternative; readonly method: KsMethod } | null;
  readonly psi: { readonly bins: number; readonly epsilon: number; readonly thresholds: readonly [number, number] } | null;
}

/**
 * A drift step's configuration, made by `ml.ks(...)` or `ml.psi(...)` and given to `.drift(...)`. `T` is
 * what the feature needs of a record: a `DriftSpec<FeatureRecord<'amount'>>` fits any stream whose
 * records have a numeric `amount`.
 *
 * @example
 * const amountDrift = ml.psi({ feature: 'amount', reference: training, window: '1m' });
 * txns.drift(amountDrift).sink(sinks.console());
 */
export interface DriftSpec<in T> {
  readonly test: 'ks' | 'psi';
  /** The feature's name in reports. */
  readonly feature: string;
  /** @internal Reads the feature from a record (unchecked). */
  readonly read: (record: T) => unknown;
  /** @internal */
  readonly config: DriftConfig;
}

const bad = (what: string, message: string): WeirError => new WeirError('WEIR_INVALID_ARGUMENT', `${what}: ${message}`);

function windowOf(w: DriftWindow, what: string): DriftWindowConfig {
  if (typeof w === 'number' || typeof w === 'string') {
    const size = toMillis(w, `${what} window`);
    if (size <= 0 || !Number.isInteger(size)) throw bad(what, `window must be a positive whole number of ms, got ${JSON.stringify(w)}`);
    return { kind: 'tumbling', size, offset: 0 };
  }
  if (w !== null && typeof w === 'object') {
    if ('count' in w) {
      if (!Number.isInteger(w.count) || w.count < 1) throw bad(what, `window.count must be a positive integer, got ${String(w.count)}`);
      return { kind: 'count', count: w.count };
    }
    if ((w as { kind?: unknown }).kind === 'tumbling') return { kind: 'tumbling', size: w.size, offset: w.offset };
  }
  throw bad(what, `window must be a duration ('1m'), windows.tumbling(...), or { count: n }; got ${JSON.stringify(w)} (drift windows are tumbling)`);
}

function referenceOf(r: DriftReference, what: string, psi: { bins: number; epsilon: number } | null): DriftReferenceConfig {
  if (r === 'first-window') return { kind: 'first-window' };
  if (Array.isArray(r) || r instanceof Float64Array) {
    for (let i = 0; i < r.length; i++) {
      if (!Number.isFinite(r[i])) throw bad(`${what}: reference[${i}]`, `is ${String(r[i])}: reference values must be finite numbers`);
    }
    const sorted = sortSample(r, `${what}: reference`);
    return { kind: 'fixed', sorted, bins: psi === null ? null : psiBins(sorted, psi) };
  }
  if (r !== null && typeof r === 'object' && 'trailing' in r) {
    if (!Number.isInteger(r.trailing) || r.trailing < 1) throw bad(what, `reference.trailing must be a positive integer (windows), got ${String(r.trailing)}`);
    return { kind: 'trailing', windows: r.trailing };
  }
  throw bad(what, `reference must be a sample (number[] or Float64Array), 'first-window' or { trailing: n }; got ${JSON.stringify(r)}`);
}

function sketchOf(s: QuantileSketchOptions | undefined, what: string): { k: number; exactLimit: number } {
  const k = s?.k ?? 4096;
  const exactLimit = s?.exactLimit ?? 10_000;
  if (!Number.isInteger(k) || k < 8 || k > 2 ** 24 || k % 2 !== 0) throw bad(what, `sketch.k must be an even integer from 8 to 2^24, got ${String(k)}`);
  if (!Number.isInteger(exactLimit) || exactLimit < 0 || exactLimit > 2 ** 27) throw bad(what, `sketch.exactLimit must be an integer from 0 to 2^27, got ${String(exactLimit)}`);
  return { k, exactLimit };
}

function common<F>(o: DriftOptions<F>, test: 'ks' | 'psi', psi: { bins: number; epsilon: number } | null): Omit<DriftConfig, 'ks' | 'psi'> & { read: (r: unknown) => unknown } {
  const what = `ml.${test}`;
  if (o === null || typeof o !== 'object') throw bad(what, 'takes an options object');
  const f = o.feature as unknown;
  let read: (r: unknown) => unknown;
  let field: string | undefined;
  let name: string;
  if (typeof f === 'string') {
    if (f === '') throw bad(what, 'feature must be a field name or a function, got ""');
    field = f;
    name = f;
    read = (r) => (r === null || r === undefined ? undefined : (r as Record<string, unknown>)[f]);
  } else if (typeof f === 'function') {
    read = f as (r: unknown) => unknown;
    name = f.name !== '' ? f.name : 'feature';
  } else {
    throw bad(what, `feature must be a field name or a function, got ${JSON.stringify(f)}`);
  }
  if (o.name !== undefined) {
    if (typeof o.name !== 'string' || o.name === '') throw bad(what, `name must be a non-empty string, got ${JSON.stringify(o.name)}`);
    name = o.name;
  }
  const { k, exactLimit } = sketchOf(o.sketch, what);
  return { test, feature: name, field, read, window: windowOf(o.window, what), reference: referenceOf(o.reference, what, psi), k, exactLimit };
}

function freeze<T>(c: Omit<DriftConfig, 'ks' | 'psi'> & { read: (r: unknown) => unknown }, ks: DriftConfig['ks'], psi: DriftConfig['psi']): DriftSpec<T> {
  const { read, ...rest } = c;
  const config: DriftConfig = Object.freeze({ ...rest, ks, psi });
  return Object.freeze({ test: c.test, feature: c.feature, read, config });
}

/**
 * A two-sample Kolmogorov–Smirnov drift test, for `.drift(...)`: each window's values against the
 * reference (reference first, as `ml.stats.ks2(reference, window)`); a window drifts when
 * `pValue < alpha` (default 0.05).
 *
 * @example
 * txns.drift(ml.ks({ feature: 'amount', reference: trainingAmounts, window: '1m', alpha: 0.01 }))
 * txns.keyBy((t) => t.card).drift(ml.ks({ feature: (t: Txn) => t.amount, reference: { trailing: 3 }, window: '1h' }))
 */
export function ks<const F extends string>(options: KsDriftOptions<F>): DriftSpec<FeatureRecord<F>>;
export function ks<T>(options: KsDriftOptions<(record: T) => number | null | undefined>): DriftSpec<T>;
export function ks(options: KsDriftOptions<FeatureSelector<unknown>>): DriftSpec<unknown> {
  const c = common(options, 'ks', null);
  const alpha = options.alpha ?? 0.05;
  if (typeof alpha !== 'number' || !(alpha > 0 && alpha < 1)) throw bad('ml.ks', `alpha must be a number in (0, 1), got ${String(alpha)}`);
  const alternative = options.alternative ?? 'two-sided';
  if (alternative !== 'two-sided' && alternative !== 'less' && alternative !== 'greater') throw bad('ml.ks', `alternative must be 'two-sided', 'less' or 'greater', got ${String(alternative)}`);
  const method = options.method ?? 'auto';
  if (method !== 'auto' && method !== 'exact' && method !== 'asymp') throw bad('ml.ks', `method must be 'auto', 'exact' or 'asymp', got ${String(method)}`);
  return freeze(c, { alpha, alternative, method }, null);
}

/**
 * A Population Stability Index drift test, for `.drift(...)`: bins at the reference's quantiles (fixed
 * once per reference), each window counted into them; `thresholds` (default `[0.1, 0.25]`) give the
 * level, and a window drifts from `moderate` up.
 *
 * @example
 * txns.drift(ml.psi({ feature: 'amount', reference: trainingAmounts, window: '1m', bins: 10, thresholds: [0.1, 0.25] }))
 */
export function psi<const F extends string>(options: PsiDriftOptions<F>): DriftSpec<FeatureRecord<F>>;
export function psi<T>(options: PsiDriftOptions<(record: T) => number | null | undefined>): DriftSpec<T>;
export function psi(options: PsiDriftOptions<FeatureSelector<unknown>>): DriftSpec<unknown> {
  const bins = options?.bins ?? 10;
  const epsilon = options?.epsilon ?? 1e-4;
  if (!Number.isInteger(bins) || bins < 1 || bins > 1_000_000) throw bad('ml.psi', `bins must be an integer from 1 to 1000000, got ${String(bins)}`);
  if (typeof epsilon !== 'number' || !(epsilon > 0 && epsilon < 1)) throw bad('ml.psi', `epsilon must be a number in (0, 1), got ${String(epsilon)}`);
  const thresholds = options?.thresholds ?? ([0.1, 0.25] as const);
  if (!Array.isArray(thresholds) || thresholds.length !== 2 || !(thresholds[0] > 0) || !(thresholds[1] >= thresholds[0]) || !Number.isFinite(thresholds[1])) {
    throw bad('ml.psi', `thresholds must be [moderate, major] with 0 < moderate <= major, got ${JSON.stringify(thresholds)}`);
  }
  const c = common(options, 'psi', { bins, epsilon });
  return freeze(c, null, { bins, epsilon, thresholds: [thresholds[0], thresholds[1]] });
}

/**
 * Options of the `.drift(...)` step itself.
 *
 * @example
 * txns.drift(ml.ks({ ... }), { name: 'amount-drift', lateOutput: sinks.jsonl('late-for-drift.jsonl') })
 */
export interface DriftStepOptions<T> {
  /** The step's name in logs, metrics, errors and dead letters (default `drift:ks(amount)`). Must be unique. */
  readonly name?: string;
  /** Receives the records too late for their window (the records themselves); absent: dropped and counted. */
  readonly lateOutput?: Sink<T>;
}

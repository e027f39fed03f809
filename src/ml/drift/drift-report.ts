/**
 * What a drift operator emits: one report per window (per key and window on a keyed stream).
 */

/**
 * How far a window has moved from its reference: PSI maps its value through `thresholds`
 * (`< t0` none, `[t0, t1)` moderate, `>= t1` major); KS is `'major'` when `pValue < alpha`, else `'none'`.
 *
 * @example
 * if (report.level === 'major') page(report);
 */
export type DriftLevel = 'none' | 'moderate' | 'major';

/** Fields every drift report has. */
interface DriftReportBase {
  /** The feature's name: the field name, or the `name` option (default `'feature'` for a function). */
  readonly feature: string;
  /**
   * The window: `[start, end)` in event time for a time window; for a count window, from its first
   * to just after its last element's timestamp.
   */
  readonly start: number;
  readonly end: number;
  /** KS: the statistic D in [0, 1]; PSI: the index itself (same as `psi`). */
  readonly statistic: number;
  /** Number of reference values the window was compared with. */
  readonly referenceSize: number;
  /** Number of values in the window. */
  readonly windowSize: number;
  /** Whether the window drifted: KS `pValue < alpha`; PSI `level !== 'none'` (`psi >= thresholds[0]`). */
  readonly drifted: boolean;
  readonly level: DriftLevel;
  /**
   * Whether a quantile sketch stood in for a sample (a window or reference larger than `exactLimit`).
   * False: the figures are exactly `ml.stats.ks2` / `ml.stats.psi` on the samples.
   */
  readonly approximate: boolean;
  /**
   * The certified error of the sketches used (0 when exact): KS: |statistic − exact statistic| <=
   * rankError; PSI: every bin proportion of a sketched sample is within ±2·rankError of its exact value
   * (and the bin edges of a sketched reference are its approximate quantiles).
   */
  readonly rankError: number;
}

/**
 * A two-sample Kolmogorov–Smirnov report (`ml.ks`): the reference is the first sample, the window the
 * second, as in `ml.stats.ks2(reference, window)`.
 *
 * @example
 * { test: 'ks', feature: 'amount', start: 0, end: 60000, statistic: 0.31, pValue: 2.1e-9, alpha: 0.01,
 *   referenceSize: 5000, windowSize: 812, drifted: true, level: 'major', approximate: false, rankError: 0,
 *   pValueRange: [2.1e-9, 2.1e-9], method: 'exact' }
 */
export interface KsDriftReport extends DriftReportBase {
  readonly test: 'ks';
  readonly pValue: number;
  /** The significance level the window was tested at. */
  readonly alpha: number;
  /** Where the exact p-value lies (both ends equal `pValue` unless `approximate`). */
  readonly pValueRange: readonly [number, number];
  /** How the p-value was computed (scipy's rules; always `'asymp'` when approximate). */
  readonly method: 'exact' | 'asymp';
}

/**
 * A Population Stability Index report (`ml.psi`).
 *
 * @example
 * { test: 'psi', feature: 'amount', start: 0, end: 60000, statistic: 0.18, psi: 0.18, bins: 10,
 *   referenceSize: 5000, windowSize: 812, drifted: true, level: 'moderate', approximate: false, rankError: 0 }
 */
export interface PsiDriftReport extends DriftReportBase {
  readonly test: 'psi';
  readonly psi: number;
  /** Number of bins actually used (duplicate reference quantiles merge bins). */
  readonly bins: number;
}

/**
 * What `stream.drift(ml.ks(...) | ml.psi(...))` emits; narrow it with `report.test`.
 *
 * @example
 * stream.drift(ml.psi({ feature: 'amount', reference: training, window: '1m' }))
 *   .filter((r) => r.drifted)
 *   .sink(sinks.jsonl('drift.jsonl'));
 */
export type DriftReport = KsDriftReport | PsiDriftReport;

/**
 * A drift report of a keyed stream: one per key and window, with the key.
 *
 * @example
 * txns.keyBy((t) => t.merchant).drift(ml.ks({ feature: 'amount', reference: 'first-window', window: '1h' }))
 *   // Stream<KeyedDriftReport<string>>
 */
export type KeyedDriftReport<K> = DriftReport & { readonly key: K };

/**
 * Turns one fired window and its reference into a {@link DriftReport}: the KS test or the PSI, exact
 * (`ml.stats.ks2Sorted` / `psiFromCounts`, the same figures as `ml.stats.ks2` / `ml.stats.psi` on the
 * samples) when every sample is whole, through the quantile sketches otherwise.
 */
import { ks2Sorted } from '../stats/ks.js';
import { psiBinIndex, psiFromCounts, type PsiBins } from '../stats/psi.js';
import { ks2Sketch } from '../stats/quantile-sketch.js';
import type { DriftSample } from './drift-sample.js';
import type { DriftLevel, DriftReport, KeyedDriftReport, KsDriftReport, PsiDriftReport } from './drift-report.js';
import type { DriftConfig } from './drift-spec.js';
import type { ReferenceSample } from './reference-sample.js';
import type { WindowSlot } from './window-slot.js';

/**
 * The report of one window. `key` is added when `keyed`.
 *
 * @example
 * const report = evaluate(config, reference, slot, 'card-1', true, 0, 60_000);
 */
export function evaluate(config: DriftConfig, ref: ReferenceSample, slot: WindowSlot, key: unknown, keyed: boolean, start: number, end: number): DriftReport {
  const report = config.ks !== null ? ksReport(config, ref, slot.sample!, start, end) : psiReport(config, ref, slot, start, end);
  if (!keyed) return report;
  const withKey: KeyedDriftReport<unknown> = { key, ...report };
  return withKey;
}

function ksReport(config: DriftConfig, ref: ReferenceSample, win: DriftSample, start: number, end: number): KsDriftReport {
  const o = config.ks!;
  let statistic: number;
  let pValue: number;
  let method: 'exact' | 'asymp';
  let pValueRange: readonly [number, number];
  let rankError = 0;
  const approximate = !(ref.isExact && win.isExact);
  if (!approximate) {
    const r = ks2Sorted(ref.sorted!, win.sortedValues(), { alternative: o.alternative, method: o.method });
    statistic = r.statistic;
    pValue = r.pValue;
    method = r.method;
    pValueRange = [pValue, pValue];
  } else {
    const r = ks2Sketch(ref.asSketch(), win.asSketch(), { alternative: o.alternative });
    statistic = r.statistic;
    pValue = r.pValue;
    method = r.method;
    pValueRange = r.pValueRange;
    rankError = r.errorBound;
  }
  const drifted = pValue < o.alpha;
  return {
    test: 'ks',
    feature: config.feature,
    start,
    end,
    statistic,
    pValue,
    alpha: o.alpha,
    pValueRange,
    method,
    referenceSize: ref.size,
    windowSize: win.n,
    drifted,
    level: drifted ? 'major' : 'none',
    approximate,
    rankError,
  };
}

function psiReport(config: DriftConfig, ref: ReferenceSample, slot: WindowSlot, start: number, end: number): PsiDriftReport {
  const o = config.psi!;
  const bins = ref.psiBins(o.bins, o.epsilon);
  let counts: ArrayLike<number>;
  let rankError = ref.epsilon;
  if (slot.counts !== null && slot.bins === bins) {
    counts = slot.counts;
  } else {
    const sample = slot.sample!;
    counts = countInto(bins, sample);
    rankError += sample.epsilon;
  }
  const value = psiFromCounts(bins, counts).psi;
  const [moderate, major] = o.thresholds;
  const level: DriftLevel = value >= major ? 'major' : value >= moderate ? 'moderate' : 'none';
  return {
    test: 'psi',
    feature: config.feature,
    start,
    end,
    statistic: value,
    psi: value,
    bins: bins.edges.length + 1,
    referenceSize: ref.size,
    windowSize: slot.n,
    drifted: level !== 'none',
    level,
    approximate: rankError > 0 || !ref.isExact,
    rankError,
  };
}

/** A sample's counts in `bins`: exact for a whole sample, from the sketch's ranks otherwise. */
function countInto(bins: PsiBins, sample: DriftSample): Float64Array {
  const edges = bins.edges;
  const m = edges.length;
  const counts = new Float64Array(m + 1);
  if (sample.isExact) {
    const v = sample.values();
    for (let i = 0; i < v.length; i++) counts[psiBinIndex(edges, v[i])]++;
    return counts;
  }
  const s = sample.asSketch();
  let below = 0;
  for (let i = 0; i < m; i++) {
    const upTo = s.rank(edges[i]);
    counts[i] = upTo - below;
    below = upTo;
  }
  counts[m] = s.count - below;
  return counts;
}

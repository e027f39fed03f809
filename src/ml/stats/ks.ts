/**
 * Two-sample Kolmogorov–Smirnov test, as `scipy.stats.ks_2samp` (scipy 1.10): same statistic (ties
 * included), same location and sign, same choice between exact and asymptotic p-values, same
 * fall-backs.
 */
import { WeirError } from '../../errors.js';
import { exactKsPValue } from './ks-exact.js';
import { kolmogorovSf } from './kolmogorov.js';
import { checkSorted, gcd, roundHalfEven, sortSample } from './sample.js';

/**
 * The alternative hypothesis, with F1 the ECDF of the first sample and F2 of the second:
 * `'two-sided'`: F1 ≠ F2 (statistic max |F1 − F2|); `'greater'`: F1 > F2 somewhere (max(F1 − F2));
 * `'less'`: F1 < F2 somewhere (max(F2 − F1)). As scipy: "greater" means the first sample tends to be smaller.
 *
 * @example
 * ks2(a, b, { alternative: 'less' });
 */
export type KsAlternative = 'two-sided' | 'less' | 'greater';

/**
 * How the p-value is computed: `'exact'` (lattice-path counting), `'asymp'` (Kolmogorov distribution for
 * two-sided, Hodges' formula for one-sided), or `'auto'` (exact when both samples have at most 10 000
 * values). Exact falls back to asymp when it would overflow.
 *
 * @example
 * ks2(a, b, { method: 'asymp' });
 */
export type KsMethod = 'auto' | 'exact' | 'asymp';

/**
 * Options of {@link ks2}.
 *
 * @example
 * const opts: Ks2Options = { alternative: 'two-sided', method: 'auto' };
 */
export interface Ks2Options {
  /** Default `'two-sided'`. */
  readonly alternative?: KsAlternative;
  /** Default `'auto'`. */
  readonly method?: KsMethod;
}

/**
 * Result of {@link ks2}.
 *
 * @example
 * const { statistic, pValue, method } = ks2(reference, window);
 * if (pValue < 0.01) alert(`drift: D=${statistic} (${method})`);
 */
export interface Ks2Result {
  /** The KS statistic D in [0, 1] (for `'exact'`, rounded to the lattice h/lcm(n1, n2), as scipy does). */
  readonly statistic: number;
  /** The p-value in [0, 1]. */
  readonly pValue: number;
  /** The method actually used (`'auto'` resolved; `'exact'` that would overflow reports `'asymp'`). */
  readonly method: 'exact' | 'asymp';
  /** A pooled sample value where the statistic is attained (first one in a's then b's sorted order). */
  readonly statisticLocation: number;
  /**
   * +1 when the statistic is max(F1 − F2) (F1 above F2 at `statisticLocation`), -1 when it is
   * max(F2 − F1). Always -1 for `'less'`, +1 for `'greater'`; for `'two-sided'` +1 on a tie (scipy's rule).
   */
  readonly statisticSign: 1 | -1;
}

/**
 * `method: 'auto'` is exact when both samples have at most this many values (scipy's MAX_AUTO_N).
 *
 * @example
 * const method = Math.max(a.length, b.length) <= KS_MAX_AUTO_N ? 'exact' : 'asymp';
 */
export const KS_MAX_AUTO_N = 10_000;
const INT32_MAX = 2 ** 31 - 1;

/**
 * Two-sample Kolmogorov–Smirnov test of `a` against `b` (numbers or a Float64Array; not sorted, not
 * changed). Matches `scipy.stats.ks_2samp(a, b, alternative, method)` of scipy 1.10. NaN or an empty
 * sample throws a `WEIR_INVALID_ARGUMENT` WeirError. p-values treat the data as continuous, as scipy's.
 *
 * @example
 * const r = ks2([1, 2, 3], [4, 5, 6]);
 * // { statistic: 1, pValue: 0.0999..., method: 'exact', statisticLocation: 3, statisticSign: 1 }
 * ks2(ref, win, { alternative: 'greater', method: 'asymp' }).pValue;
 */
export function ks2(a: ArrayLike<number>, b: ArrayLike<number>, options: Ks2Options = {}): Ks2Result {
  const { alternative, method } = checkOptions(options);
  return ks2OfSorted(sortSample(a, 'ks2: a'), sortSample(b, 'ks2: b'), alternative, method);
}

/**
 * {@link ks2} for samples already sorted ascending (checked in O(n), not copied): a fixed reference sorted
 * once with `sortSample` is not re-sorted for every window.
 *
 * @example
 * const ref = sortSample(reference);
 * const r = ks2Sorted(ref, sortSample(window), { method: 'auto' });
 */
export function ks2Sorted(a: ArrayLike<number>, b: ArrayLike<number>, options: Ks2Options = {}): Ks2Result {
  const { alternative, method } = checkOptions(options);
  checkSorted(a, 'ks2Sorted: a');
  checkSorted(b, 'ks2Sorted: b');
  return ks2OfSorted(a, b, alternative, method);
}

/**
 * A reference sample sorted once, tested against many windows: `test(window)` sorts only the window.
 * The reference is the first sample (F1), the window the second (F2).
 *
 * @example
 * const ref = new KsReference(trainingValues, { method: 'auto' });
 * for (const w of windows) if (ref.test(w).pValue < 0.001) console.log('drift');
 */
export class KsReference {
  /** The reference, sorted ascending. */
  readonly sorted: Float64Array;
  private readonly alternative: KsAlternative;
  private readonly method: KsMethod;

  constructor(reference: ArrayLike<number>, options: Ks2Options = {}) {
    ({ alternative: this.alternative, method: this.method } = checkOptions(options));
    this.sorted = sortSample(reference, 'KsReference: reference');
  }

  /** The number of reference values. */
  get size(): number {
    return this.sorted.length;
  }

  /** KS test of the reference against `window` (any order; copied and sorted). */
  test(window: ArrayLike<number>, options: Ks2Options = {}): Ks2Result {
    const o = checkOptions({ alternative: this.alternative, method: this.method, ...options });
    return ks2OfSorted(this.sorted, sortSample(window, 'KsReference.test: window'), o.alternative, o.method);
  }

  /** KS test of the reference against a window already sorted ascending (checked, not copied). */
  testSorted(sortedWindow: ArrayLike<number>, options: Ks2Options = {}): Ks2Result {
    const o = checkOptions({ alternative: this.alternative, method: this.method, ...options });
    checkSorted(sortedWindow, 'KsReference.testSorted: window');
    return ks2OfSorted(this.sorted, sortedWindow, o.alternative, o.method);
  }
}

function checkOptions(options: Ks2Options): { alternative: KsAlternative; method: KsMethod } {
  const alternative = options.alternative ?? 'two-sided';
  const method = options.method ?? 'auto';
  if (alternative !== 'two-sided' && alternative !== 'less' && alternative !== 'greater') {
    throw new WeirError('WEIR_INVALID_ARGUMENT', `ks2: alternative must be 'two-sided', 'less' or 'greater' (got ${String(alternative)})`);
  }
  if (method !== 'auto' && method !== 'exact' && method !== 'asymp') {
    throw new WeirError('WEIR_INVALID_ARGUMENT', `ks2: method must be 'auto', 'exact' or 'asymp' (got ${String(method)})`);
  }
  return { alternative, method };
}

/**
 * The extremes of F1 − F2 over the pooled points, and where they are first attained (see {@link ecdfDifference}).
 *
 * @example
 * const { max, min } = ecdfDifference(sortedA, sortedB);
 * const d = Math.max(max, -min); // the two-sided statistic
 */
export interface EcdfDifference {
  /** max(F1 − F2) (>= 0: both ECDFs are 1 at the largest pooled point). */
  readonly max: number;
  readonly maxLocation: number;
  /** min(F1 − F2) (<= 0). */
  readonly min: number;
  readonly minLocation: number;
}

/**
 * max and min of F1(t) − F2(t) over the pooled sample points t, with right-continuous ECDFs, both
 * samples sorted ascending. Points are visited in the order of numpy's `concatenate([a, b])` and the
 * first extreme wins, so locations agree with scipy's argmax/argmin; each difference is computed as
 * `i/n1 - j/n2` as numpy does, so ties between extremes resolve the same way. O(n1 + n2).
 *
 * @example
 * ecdfDifference(Float64Array.of(1, 2, 3), Float64Array.of(4, 5, 6)); // { max: 1, maxLocation: 3, min: 0, minLocation: 6 }
 */
export function ecdfDifference(a: ArrayLike<number>, b: ArrayLike<number>): EcdfDifference {
  const n1 = a.length;
  const n2 = b.length;
  let max = -Infinity;
  let maxLocation = NaN;
  let min = Infinity;
  let minLocation = NaN;
  // a's points: i1 = #a <= t (end of t's run of ties in a), i2 = #b <= t
  let i2 = 0;
  for (let i = 0; i < n1; ) {
    const t = a[i];
    let end = i + 1;
    while (end < n1 && a[end] === t) end++;
    while (i2 < n2 && b[i2] <= t) i2++;
    const diff = end / n1 - i2 / n2;
    if (diff > max) {
      max = diff;
      maxLocation = t;
    }
    if (diff < min) {
      min = diff;
      minLocation = t;
    }
    i = end; // the other points of the run give the same difference and are not first
  }
  let i1 = 0;
  for (let j = 0; j < n2; ) {
    const t = b[j];
    let end = j + 1;
    while (end < n2 && b[end] === t) end++;
    while (i1 < n1 && a[i1] <= t) i1++;
    const diff = i1 / n1 - end / n2;
    if (diff > max) {
      max = diff;
      maxLocation = t;
    }
    if (diff < min) {
      min = diff;
      minLocation = t;
    }
    j = end;
  }
  return { max, maxLocation, min, minLocation };
}

/** The test proper, on validated sorted samples. */
function ks2OfSorted(a: ArrayLike<number>, b: ArrayLike<number>, alternative: KsAlternative, method: KsMethod): Ks2Result {
  const n1 = a.length;
  const n2 = b.length;
  const e = ecdfDifference(a, b);
  const minS = Math.min(Math.max(-e.min, 0), 1);
  const maxS = e.max;
  let d: number;
  let location: number;
  let sign: 1 | -1;
  if (alternative === 'less' || (alternative === 'two-sided' && minS > maxS)) {
    d = minS;
    location = e.minLocation;
    sign = -1;
  } else {
    d = maxS;
    location = e.maxLocation;
    sign = 1;
  }
  return { ...ksPValue(d, n1, n2, alternative, method), statisticLocation: location, statisticSign: sign };
}

/**
 * The p-value of an observed two-sample KS statistic `d` for sample sizes n1 and n2, as `ks2` computes it
 * (the statistic comes back rounded to the lattice h/lcm when the exact method is used).
 *
 * @example
 * ksPValue(0.6, 10, 10, 'two-sided', 'exact'); // { statistic: 0.6, pValue: 0.0524475..., method: 'exact' }
 */
export function ksPValue(
  d: number,
  n1: number,
  n2: number,
  alternative: KsAlternative = 'two-sided',
  method: KsMethod = 'auto',
): { statistic: number; pValue: number; method: 'exact' | 'asymp' } {
  if (!(Number.isInteger(n1) && Number.isInteger(n2) && n1 > 0 && n2 > 0)) {
    throw new WeirError('WEIR_INVALID_ARGUMENT', `ksPValue: sample sizes must be positive integers (got ${n1}, ${n2})`);
  }
  if (!(d >= 0 && d <= 1)) throw new WeirError('WEIR_INVALID_ARGUMENT', `ksPValue: statistic must be in [0, 1] (got ${d})`);
  const g = gcd(n1, n2);
  const n1g = n1 / g;
  const n2g = n2 / g;
  let mode: 'exact' | 'asymp';
  if (method === 'auto') mode = Math.max(n1, n2) <= KS_MAX_AUTO_N ? 'exact' : 'asymp';
  else if (method === 'exact') mode = n1g >= INT32_MAX / n2g ? 'asymp' : 'exact'; // lcm too big for the lattice
  else mode = 'asymp';

  let p = NaN;
  if (mode === 'exact') {
    const lcm = n1g * n2;
    const h = roundHalfEven(d * lcm);
    d = h / lcm;
    const exact = exactKsPValue(n1, n2, g, h, alternative === 'two-sided' ? 'two-sided' : 'one-sided');
    if (exact === undefined) mode = 'asymp';
    else p = exact;
  }
  if (mode === 'asymp') {
    const m = Math.max(n1, n2);
    const n = Math.min(n1, n2);
    const en = (m * n) / (m + n);
    if (alternative === 'two-sided') {
      // kstwo.sf(d, round(en)) with numpy's half-to-even rounding. For n1 = n2 = 1, en = 0.5 rounds to 0
      // and scipy returns NaN; weir uses n = 1 there, so the p-value stays a probability.
      p = kolmogorovSf(Math.max(roundHalfEven(en), 1), d);
    } else {
      // Hodges (1958) eq. 5.3, with m the larger sample size.
      const z = Math.sqrt(en) * d;
      p = Math.exp(-2 * z * z - (2 * z * (m + 2 * n)) / Math.sqrt(m * n * (m + n)) / 3);
    }
  }
  return { statistic: d, pValue: Math.min(Math.max(p, 0), 1), method: mode };
}

/**
 * A mergeable quantile sketch with a deterministic rank-error bound, for drift statistics over windows
 * too large to keep.
 *
 * Up to `exactLimit` values it keeps every value and answers exactly. Beyond that it is a hierarchy of
 * compactors in the style of KLL, but with equal capacities and deterministic compaction (the
 * Manku–Rajagopalan–Lindsay variant), because a deterministic bound needs no luck: level h holds values
 * of weight 2^h; when a level holds k values it sorts them, keeps every other one (alternating which
 * half from one compaction to the next) as values of weight 2^(h+1) one level up, and empties itself.
 *
 * Error bound. One compaction at level h changes the estimated rank of any point by 0 or ±2^h (pairs of
 * neighbours become one value of double weight), so the rank error of every query is at most the sum of
 * 2^h over all compactions done, which the sketch tracks ({@link QuantileSketch.rankErrorBound}). A
 * priori: a compaction at level h consumes k·2^h of the n units of weight, so level h compacts at most
 * n/(k·2^h) times and contributes at most n/k; only levels with k·2^h <= n ever compact. Hence, for every
 * x and every q,
 *
 *     |rank̂(x) − rank(x)| <= ε·n   with   ε = (⌊log2(n/k)⌋ + 1) / k   (n > exactLimit; 0 below),
 *
 * e.g. k = 4096 (the default): ε <= 0.0020 at n = 10^6, 0.0037 at 10^8. Merging sketches adds their
 * bounds and keeps the a-priori one (the weight argument covers merged sketches too). Memory: at most
 * about 2k values per level, ⌊log2(n/k)⌋ + 2 levels.
 *
 * KS on sketches. Each sketch's CDF estimate F̂ = rank̂/n is within ε of the empirical CDF F at every
 * point, so for two sketches sup|F̂a − F̂b| differs from the exact two-sample statistic D = sup|Fa − Fb|
 * by at most εa + εb: |D_approx − D| <= εa + εb (same for the one-sided statistics). See {@link ks2Sketch}.
 */
import { WeirError } from '../../errors.js';
import { ksPValue, ks2Sorted, type KsAlternative, type Ks2Result } from './ks.js';
import { upperBound } from './sample.js';

/**
 * Options of {@link QuantileSketch}.
 *
 * @example
 * new QuantileSketch({ k: 8192, exactLimit: 50_000 });
 */
export interface QuantileSketchOptions {
  /** Values per compactor level (even, 8 to 2^24). Larger k: smaller error, more memory. Default 4096. */
  readonly k?: number;
  /** Keep all values, and answer exactly, up to this many. Default 10 000 (ks2's exact-method limit). */
  readonly exactLimit?: number;
}

/**
 * A {@link QuantileSketch}'s state as plain data (see {@link QuantileSketch.toState}): `exact` holds
 * every value while the sketch is exact (then `levels` is empty); otherwise `levels[h]` holds the values
 * of weight 2^h.
 *
 * @example
 * const state: QuantileSketchState = sketch.toState();
 */
export interface QuantileSketchState {
  readonly k: number;
  readonly exactLimit: number;
  readonly n: number;
  readonly exact: Float64Array | null;
  readonly levels: readonly Float64Array[];
  readonly parity: readonly number[];
  readonly bound: number;
  readonly min: number;
  readonly max: number;
}

/**
 * A sketch's stored values, ascending, with cumulative weights: `cumWeights[i]` is the estimated number
 * of values <= `values[i]` (the last one is the count).
 *
 * @example
 * const { values, cumWeights } = sketch.sortedView();
 * const median = values[cumWeights.findIndex((c) => c >= sketch.count / 2)];
 */
export interface SketchSortedView {
  readonly values: Float64Array;
  readonly cumWeights: Float64Array;
}

/**
 * Quantiles, ranks and the CDF of a stream of numbers, exact up to `exactLimit` values and within a
 * certified rank error beyond (see the module comment for the bound).
 *
 * @example
 * const s = new QuantileSketch({ k: 4096 });
 * s.addBatch(latencies);                 // Float64Array or number[]
 * s.quantile(0.99);                      // true rank within ±s.rankErrorBound() of 0.99·n
 * s.cdf(250);                            // within ±s.epsilon of the empirical CDF at 250
 */
export class QuantileSketch {
  /** Capacity of each compactor level. */
  readonly k: number;
  /** Values kept exactly before compaction starts. */
  readonly exactLimit: number;
  private n = 0;
  private exact: Float64Array | null;
  private exactLen = 0;
  private readonly levels: Float64Array[] = [];
  private readonly levelLen: number[] = [];
  private readonly parity: number[] = [];
  private bound = 0;
  private lo = Infinity;
  private hi = -Infinity;
  private view: SketchSortedView | null = null;

  constructor(options: QuantileSketchOptions = {}) {
    const k = options.k ?? 4096;
    const exactLimit = options.exactLimit ?? 10_000;
    if (!Number.isInteger(k) || k < 8 || k > 2 ** 24 || k % 2 !== 0) {
      throw new WeirError('WEIR_INVALID_ARGUMENT', `QuantileSketch: k must be an even integer from 8 to 2^24 (got ${String(k)})`);
    }
    if (!Number.isInteger(exactLimit) || exactLimit < 0 || exactLimit > 2 ** 27) {
      throw new WeirError('WEIR_INVALID_ARGUMENT', `QuantileSketch: exactLimit must be an integer from 0 to 2^27 (got ${String(exactLimit)})`);
    }
    this.k = k;
    this.exactLimit = exactLimit;
    this.exact = exactLimit > 0 ? new Float64Array(Math.min(exactLimit, 1024)) : null;
  }

  /**
   * The a-priori bound on ε (rank error / n) for n values and level capacity k: (⌊log2(n/k)⌋ + 1)/k,
   * 0 when n < k.
   *
   * @example
   * QuantileSketch.epsilonBound(4096, 1e6); // 0.00195...
   */
  static epsilonBound(k: number, n: number): number {
    if (n < k) return 0;
    return (Math.floor(Math.log2(n / k)) + 1) / k;
  }

  /** Number of values added. */
  get count(): number {
    return this.n;
  }

  /** Whether every value is still kept (answers are exact). */
  get isExact(): boolean {
    return this.exact !== null;
  }

  /** Smallest value added (exact). */
  get min(): number {
    return this.lo;
  }

  /** Largest value added (exact). */
  get max(): number {
    return this.hi;
  }

  /**
   * Certified bound on the absolute rank error of any query: |rank̂(x) − rank(x)| <= this, for all x
   * (the sum of 2^h over the compactions done; 0 while exact).
   */
  rankErrorBound(): number {
    return this.bound;
  }

  /** Certified bound on the CDF error: rankErrorBound() / count (0 when empty or exact). */
  get epsilon(): number {
    return this.n === 0 ? 0 : this.bound / this.n;
  }

  /** Number of values the sketch holds in memory. */
  get storedCount(): number {
    if (this.exact !== null) return this.exactLen;
    let s = 0;
    for (const l of this.levelLen) s += l;
    return s;
  }

  /** Adds one value (NaN throws WEIR_INVALID_ARGUMENT). */
  add(x: number): void {
    if (typeof x !== 'number' || x !== x) throw new WeirError('WEIR_INVALID_ARGUMENT', `QuantileSketch.add: ${String(x)} is not a number`);
    this.view = null;
    if (x < this.lo) this.lo = x;
    if (x > this.hi) this.hi = x;
    this.n++;
    if (this.exact !== null) {
      if (this.n <= this.exactLimit) {
        if (this.exactLen === this.exact.length) {
          const grown = new Float64Array(Math.min(this.exactLimit, this.exact.length * 2));
          grown.set(this.exact);
          this.exact = grown;
        }
        this.exact[this.exactLen++] = x;
        return;
      }
      this.leaveExactMode();
    }
    this.push(0, x);
  }

  /** Adds a batch of values (a Float64Array or number[]). */
  addBatch(values: ArrayLike<number>): void {
    for (let i = 0; i < values.length; i++) this.add(values[i]);
  }

  /**
   * Adds everything `other` holds (it is not changed). Both must have the same k. The rank-error bound
   * of the result is the sum of both bounds plus that of any compaction the merge causes.
   *
   * @example
   * const all = new QuantileSketch(); all.merge(slice1); all.merge(slice2);
   */
  merge(other: QuantileSketch): void {
    if (other === this) throw new WeirError('WEIR_INVALID_ARGUMENT', 'QuantileSketch.merge: cannot merge a sketch into itself');
    if (other.k !== this.k) throw new WeirError('WEIR_INVALID_ARGUMENT', `QuantileSketch.merge: k differs (${this.k} vs ${other.k})`);
    if (other.n === 0) return;
    if (other.exact !== null) {
      this.addBatch(other.exact.subarray(0, other.exactLen));
      return;
    }
    this.view = null;
    if (this.exact !== null) this.leaveExactMode();
    this.n += other.n;
    this.bound += other.bound;
    if (other.lo < this.lo) this.lo = other.lo;
    if (other.hi > this.hi) this.hi = other.hi;
    for (let h = 0; h < other.levels.length; h++) {
      const len = other.levelLen[h];
      if (len === 0) continue;
      this.ensureLevel(h);
      this.append(h, other.levels[h].subarray(0, len));
    }
    for (let h = 0; h < this.levels.length; h++) if (this.levelLen[h] >= this.k) this.compact(h);
  }

  /** Estimated number of values <= x (within ±rankErrorBound()). */
  rank(x: number): number {
    const v = this.sortedView();
    const i = upperBound(v.values, x);
    return i === 0 ? 0 : v.cumWeights[i - 1];
  }

  /** Estimated empirical CDF at x: rank(x) / count (within ±epsilon). */
  cdf(x: number): number {
    if (this.n === 0) throw new WeirError('WEIR_INVALID_ARGUMENT', 'QuantileSketch.cdf: the sketch is empty');
    return this.rank(x) / this.n;
  }

  /**
   * The q-quantile (0 <= q <= 1) as the smallest stored value whose estimated rank reaches q·n (the
   * inverse of the ECDF, Hyndman–Fan type 1; exact while the sketch is exact). The true rank interval
   * [#(< v), #(<= v)] of the answer v comes within rankErrorBound() of q·n.
   *
   * @example
   * sketch.quantile(0.5); // a median
   */
  quantile(q: number): number {
    if (this.n === 0) throw new WeirError('WEIR_INVALID_ARGUMENT', 'QuantileSketch.quantile: the sketch is empty');
    if (!(q >= 0 && q <= 1)) throw new WeirError('WEIR_INVALID_ARGUMENT', `QuantileSketch.quantile: q must be in [0, 1] (got ${q})`);
    const v = this.sortedView();
    const target = q * this.n;
    if (target <= 0) return v.values[0];
    // first i with cumWeights[i] >= target
    let lo = 0;
    let hi = v.values.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (v.cumWeights[mid] >= target) hi = mid;
      else lo = mid + 1;
    }
    return v.values[lo];
  }

  /**
   * The stored values, ascending, with their cumulative weights (cumWeights[i] = estimated number of
   * values <= values[i]; the last one is count). Cached until the next add/merge; do not modify.
   */
  sortedView(): SketchSortedView {
    if (this.view !== null) return this.view;
    if (this.exact !== null) {
      const values = this.exact.slice(0, this.exactLen).sort();
      const cumWeights = new Float64Array(values.length);
      for (let i = 0; i < values.length; i++) cumWeights[i] = i + 1;
      this.view = { values, cumWeights };
      return this.view;
    }
    const H = this.levels.length;
    let total = 0;
    for (let h = 0; h < H; h++) {
      this.levels[h].subarray(0, this.levelLen[h]).sort();
      total += this.levelLen[h];
    }
    const values = new Float64Array(total);
    const cumWeights = new Float64Array(total);
    const pos = new Array<number>(H).fill(0);
    let cum = 0;
    for (let out = 0; out < total; out++) {
      let best = -1;
      let bestValue = Infinity;
      for (let h = 0; h < H; h++) {
        if (pos[h] < this.levelLen[h]) {
          const x = this.levels[h][pos[h]];
          if (best < 0 || x < bestValue) {
            best = h;
            bestValue = x;
          }
        }
      }
      pos[best]++;
      cum += 2 ** best;
      values[out] = bestValue;
      cumWeights[out] = cum;
    }
    this.view = { values, cumWeights };
    return this.view;
  }

  /**
   * The sketch's whole state as plain data (numbers and typed-array copies), for checkpoints; give it
   * to {@link QuantileSketch.fromState} to get an identical sketch back (same answers, same bound, and
   * the same compactions from then on).
   *
   * @example
   * const copy = QuantileSketch.fromState(structuredClone(sketch.toState()));
   */
  toState(): QuantileSketchState {
    return {
      k: this.k,
      exactLimit: this.exactLimit,
      n: this.n,
      exact: this.exact === null ? null : this.exact.slice(0, this.exactLen),
      levels: this.levels.map((l, h) => l.slice(0, this.levelLen[h])),
      parity: [...this.parity],
      bound: this.bound,
      min: this.lo,
      max: this.hi,
    };
  }

  /**
   * A sketch from what {@link QuantileSketch.toState} returned (checked for consistency; a state that
   * does not add up throws WEIR_INVALID_ARGUMENT).
   *
   * @example
   * const restored = QuantileSketch.fromState(state);
   */
  static fromState(state: QuantileSketchState): QuantileSketch {
    const s = new QuantileSketch({ k: state.k, exactLimit: state.exactLimit });
    const bad = (why: string): WeirError => new WeirError('WEIR_INVALID_ARGUMENT', `QuantileSketch.fromState: ${why}`);
    if (state.exact !== null) {
      if (state.exact.length !== state.n || state.n > state.exactLimit) throw bad(`an exact sketch of ${state.n} values holds ${state.exact.length}`);
      s.addBatch(state.exact);
      return s;
    }
    if (state.levels.length !== state.parity.length) throw bad('levels and parities differ in number');
    let weight = 0;
    s.exact = null;
    for (let h = 0; h < state.levels.length; h++) {
      const l = state.levels[h];
      s.ensureLevel(h);
      s.append(h, l instanceof Float64Array ? l : Float64Array.from(l));
      s.parity[h] = state.parity[h] & 1;
      weight += l.length * 2 ** h;
    }
    if (weight !== state.n) throw bad(`the levels weigh ${weight}, not the count ${state.n}`);
    s.n = state.n;
    s.bound = state.bound;
    s.lo = state.min;
    s.hi = state.max;
    return s;
  }

  private leaveExactMode(): void {
    const exact = this.exact;
    const len = this.exactLen;
    this.exact = null;
    this.exactLen = 0;
    if (exact === null) return;
    for (let i = 0; i < len; i++) this.push(0, exact[i]);
  }

  private ensureLevel(h: number): void {
    while (this.levels.length <= h) {
      this.levels.push(new Float64Array(2 * this.k));
      this.levelLen.push(0);
      this.parity.push(0);
    }
  }

  private push(h: number, x: number): void {
    this.ensureLevel(h);
    this.levels[h][this.levelLen[h]++] = x;
    if (this.levelLen[h] >= this.k) this.compact(h);
  }

  private append(h: number, xs: Float64Array): void {
    let buf = this.levels[h];
    const len = this.levelLen[h];
    if (len + xs.length > buf.length) {
      const grown = new Float64Array(Math.max(2 * buf.length, len + xs.length));
      grown.set(buf.subarray(0, len));
      this.levels[h] = buf = grown;
    }
    buf.set(xs, len);
    this.levelLen[h] = len + xs.length;
  }

  /** Halves level h into level h+1 (and further up if that fills). */
  private compact(h: number): void {
    const len = this.levelLen[h];
    const buf = this.levels[h];
    const sorted = buf.subarray(0, len).sort();
    const even = len - (len % 2);
    const offset = this.parity[h];
    this.parity[h] ^= 1; // alternate which half survives, so errors tend to cancel
    const up = new Float64Array(even / 2);
    for (let i = offset, j = 0; i < even; i += 2, j++) up[j] = sorted[i];
    // an odd value out stays at this level: it is not compacted, so it adds no error
    if (len % 2 === 1) buf[0] = sorted[len - 1];
    this.levelLen[h] = len % 2;
    this.bound += 2 ** h;
    this.ensureLevel(h + 1);
    this.append(h + 1, up);
    if (this.levelLen[h + 1] >= this.k) this.compact(h + 1);
  }
}

/**
 * Result of {@link ks2Sketch}.
 *
 * @example
 * const { statistic, errorBound } = ks2Sketch(refSketch, winSketch);
 * // the exact statistic lies in [statistic - errorBound, statistic + errorBound]
 */
export interface Ks2SketchResult extends Ks2Result {
  /** εa + εb: |statistic − exact statistic| <= errorBound (0 when both sketches are exact). */
  readonly errorBound: number;
  /** p-values at statistic + errorBound and statistic − errorBound (clamped to [0, 1]): where the exact p lies. */
  readonly pValueRange: readonly [number, number];
}

/**
 * Two-sample KS test on two quantile sketches (F1 from `a`, F2 from `b`). When both sketches are still
 * exact this is `ks2Sorted` on their values (same result as `ks2`, method 'auto'). Otherwise the
 * statistic is sup|F̂a − F̂b| over the stored points, within εa + εb of the exact one, and the p-value is
 * the asymptotic one at that statistic (`pValueRange` brackets the p-value of the exact statistic).
 *
 * @example
 * const ref = new QuantileSketch(); ref.addBatch(training);
 * const win = new QuantileSketch(); win.addBatch(last24h);
 * const r = ks2Sketch(ref, win);
 * if (r.statistic - r.errorBound > 0.05) console.log('drift for sure');
 */
export function ks2Sketch(a: QuantileSketch, b: QuantileSketch, options: { readonly alternative?: KsAlternative } = {}): Ks2SketchResult {
  const alternative = options.alternative ?? 'two-sided';
  if (a.count === 0 || b.count === 0) throw new WeirError('WEIR_INVALID_ARGUMENT', 'ks2Sketch: a sketch is empty');
  const va = a.sortedView();
  const vb = b.sortedView();
  if (a.isExact && b.isExact) {
    const r = ks2Sorted(va.values, vb.values, { alternative, method: 'auto' });
    return { ...r, errorBound: 0, pValueRange: [r.pValue, r.pValue] };
  }
  const na = a.count;
  const nb = b.count;
  // Walk the distinct stored values of both in order; F̂ is a step function, so its extremes are there.
  let max = -Infinity;
  let maxLocation = NaN;
  let min = Infinity;
  let minLocation = NaN;
  let i = 0;
  let j = 0;
  while (i < va.values.length || j < vb.values.length) {
    const t = j >= vb.values.length || (i < va.values.length && va.values[i] <= vb.values[j]) ? va.values[i] : vb.values[j];
    while (i < va.values.length && va.values[i] <= t) i++;
    while (j < vb.values.length && vb.values[j] <= t) j++;
    const diff = (i === 0 ? 0 : va.cumWeights[i - 1]) / na - (j === 0 ? 0 : vb.cumWeights[j - 1]) / nb;
    if (diff > max) {
      max = diff;
      maxLocation = t;
    }
    if (diff < min) {
      min = diff;
      minLocation = t;
    }
  }
  const minS = Math.min(Math.max(-min, 0), 1);
  const maxS = Math.max(max, 0);
  let d: number;
  let location: number;
  let sign: 1 | -1;
  if (alternative === 'less' || (alternative === 'two-sided' && minS > maxS)) {
    [d, location, sign] = [minS, minLocation, -1];
  } else {
    [d, location, sign] = [maxS, maxLocation, 1];
  }
  const errorBound = a.epsilon + b.epsilon;
  const p = (x: number): number => ksPValue(Math.min(Math.max(x, 0), 1), na, nb, alternative, 'asymp').pValue;
  return {
    statistic: d,
    pValue: p(d),
    method: 'asymp',
    statisticLocation: location,
    statisticSign: sign,
    errorBound,
    pValueRange: [p(d + errorBound), p(d - errorBound)],
  };
}

/**
 * Population Stability Index with bins from the reference's quantiles.
 *
 * Conventions (weir's, matching numpy-based practice; see the reference values in the tests):
 * - interior edges are the reference quantiles k/B (k = 1..B-1) by numpy's default 'linear' method
 *   (Hyndman–Fan type 7, computed with numpy's `_lerp` so edges agree to the last bit); duplicate edges
 *   are dropped (discrete data gives fewer bins); the outer edges are -∞ and +∞, so out-of-range current
 *   values fall in the first or last bin;
 * - bins are right-closed: (-∞, e1], (e1, e2], ..., (em, +∞); a value's bin is the number of edges < it;
 * - proportions are count / n, each clipped below at epsilon (default 1e-4), not renormalised;
 * - PSI = Σ (cur_i − ref_i) · ln(cur_i / ref_i) >= 0. Rule of thumb: < 0.1 stable, 0.1–0.25 moderate
 *   shift, >= 0.25 major shift. With no drift its expected value is about (B−1)(1/N + 1/M): small
 *   windows read high.
 */
import { WeirError } from '../../errors.js';
import { checkSample, upperBound } from './sample.js';

/**
 * Options of {@link psi} and {@link psiBins}.
 *
 * @example
 * psi(reference, current, { bins: 20, epsilon: 1e-6 });
 */
export interface PsiOptions {
  /** Number of quantile bins before duplicate edges are dropped (integer >= 1). Default 10. */
  readonly bins?: number;
  /** Floor of each proportion, so empty bins do not give ln(0). Default 1e-4. */
  readonly epsilon?: number;
}

/**
 * Result of {@link psi} and {@link psiFromCounts}.
 *
 * @example
 * const { psi: value, terms } = psi(reference, current);
 * const worstBin = terms.indexOf(Math.max(...terms));
 */
export interface PsiResult {
  /** The index: Σ terms. */
  readonly psi: number;
  /** Interior bin edges (ascending, without the implicit -∞ / +∞); bins = edges.length + 1. */
  readonly edges: number[];
  readonly referenceCounts: number[];
  readonly currentCounts: number[];
  /** (cur_i − ref_i)·ln(cur_i / ref_i) per bin, from the clipped proportions. */
  readonly terms: number[];
}

/**
 * Fixed PSI bins built once from a reference sample: edges, reference counts and (clipped) proportions.
 * Reuse it with {@link PsiAccumulator} or {@link psiFromCounts} so a stream only counts values.
 *
 * @example
 * const bins = psiBins(trainingValues, { bins: 10 });
 * bins.edges.length + 1; // number of bins
 */
export interface PsiBins {
  /** Interior edges, ascending, duplicates removed. */
  readonly edges: Float64Array;
  readonly referenceCounts: Float64Array;
  /** max(count / n, epsilon) per bin. */
  readonly referenceProportions: Float64Array;
  /** Number of reference values. */
  readonly referenceSize: number;
  readonly epsilon: number;
}

function checkOptions(options: PsiOptions | number, what: string): { bins: number; epsilon: number } {
  const o = typeof options === 'number' ? { bins: options } : options;
  const bins = o.bins ?? 10;
  const epsilon = o.epsilon ?? 1e-4;
  if (!Number.isInteger(bins) || bins < 1 || bins > 1_000_000) {
    throw new WeirError('WEIR_INVALID_ARGUMENT', `${what}: bins must be an integer from 1 to 1000000 (got ${String(bins)})`);
  }
  if (typeof epsilon !== 'number' || !(epsilon > 0 && epsilon < 1)) {
    throw new WeirError('WEIR_INVALID_ARGUMENT', `${what}: epsilon must be a number in (0, 1) (got ${String(epsilon)})`);
  }
  return { bins, epsilon };
}

/**
 * The q-quantile of an ascending sample by numpy's default 'linear' method (type 7): virtual index
 * (n−1)·q between neighbours, interpolated with numpy's `_lerp` (a + (b−a)·t for t < 0.5, b − (b−a)·(1−t)
 * otherwise), so results agree with `np.quantile` bit for bit.
 *
 * @example
 * quantileSorted(Float64Array.of(1, 2, 3, 4), 0.5); // 2.5
 */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  const vi = (n - 1) * q;
  if (vi >= n - 1) return sorted[n - 1];
  if (vi <= 0) return sorted[0];
  const lo = Math.floor(vi);
  const t = vi - lo;
  const a = sorted[lo];
  const b = sorted[lo + 1];
  const diff = b - a;
  return t >= 0.5 ? b - diff * (1 - t) : a + diff * t;
}

/**
 * Builds PSI bins from a reference sample (finite numbers, any order; not changed): interior edges at
 * the reference quantiles k/bins, duplicates dropped, plus the reference counts and proportions.
 * `options` may be the number of bins.
 *
 * @example
 * const bins = psiBins(reference, 10);
 * const acc = new PsiAccumulator(bins);
 * acc.addBatch(window);
 * acc.result().psi;
 */
export function psiBins(reference: ArrayLike<number>, options: PsiOptions | number = {}): PsiBins {
  const { bins, epsilon } = checkOptions(options, 'psiBins');
  checkSample(reference, 'psi: reference', true);
  const sorted = Float64Array.from(reference).sort();
  return binsFromRanks(
    bins,
    sorted.length,
    (q) => quantileSorted(sorted, q),
    (x) => upperBound(sorted, x),
    epsilon,
  );
}

/**
 * PSI bins of a reference of `n` values known through its quantiles and ranks (the sorted values
 * themselves, or a quantile sketch): edges at the k/bins quantiles, duplicates dropped; bin
 * i = (e_{i-1}, e_i] holds rank(e_i) - rank(e_{i-1}) values, where rank(x) = #(values <= x).
 */
export function binsFromRanks(bins: number, n: number, quantile: (q: number) => number, rank: (x: number) => number, epsilon: number): PsiBins {
  const raw: number[] = [];
  for (let k = 1; k < bins; k++) raw.push(quantile(k / bins));
  raw.sort((x, y) => x - y);
  const edges: number[] = [];
  for (const e of raw) if (edges.length === 0 || e !== edges[edges.length - 1]) edges.push(e);
  const referenceCounts = new Float64Array(edges.length + 1);
  let below = 0;
  for (let i = 0; i < edges.length; i++) {
    const upTo = rank(edges[i]);
    referenceCounts[i] = upTo - below;
    below = upTo;
  }
  referenceCounts[edges.length] = n - below;
  const referenceProportions = new Float64Array(referenceCounts.length);
  for (let i = 0; i < referenceCounts.length; i++) referenceProportions[i] = Math.max(referenceCounts[i] / n, epsilon);
  return { edges: Float64Array.from(edges), referenceCounts, referenceProportions, referenceSize: n, epsilon };
}

/**
 * The bin of value `x` for interior `edges` (ascending): the number of edges strictly less than x, so
 * bins are right-closed, (-∞, e1] is bin 0 and (em, +∞) is bin m.
 *
 * @example
 * psiBinIndex(Float64Array.of(1, 2), 1);   // 0
 * psiBinIndex(Float64Array.of(1, 2), 1.5); // 1
 * psiBinIndex(Float64Array.of(1, 2), 9);   // 2
 */
export function psiBinIndex(edges: Float64Array, x: number): number {
  let lo = 0;
  let hi = edges.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (edges[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * PSI of current bin counts against fixed bins (e.g. counts gathered by a stream operator).
 *
 * @example
 * const bins = psiBins(reference);
 * psiFromCounts(bins, [12, 9, 10, 11, 8, 10, 10, 9, 11, 10]).psi;
 */
export function psiFromCounts(bins: PsiBins, currentCounts: ArrayLike<number>, epsilon: number = bins.epsilon): PsiResult {
  const m = bins.referenceCounts.length;
  if (currentCounts.length !== m) {
    throw new WeirError('WEIR_INVALID_ARGUMENT', `psiFromCounts: expected ${m} counts (one per bin), got ${currentCounts.length}`);
  }
  let total = 0;
  for (let i = 0; i < m; i++) {
    const c = currentCounts[i];
    if (!(c >= 0) || !Number.isFinite(c)) throw new WeirError('WEIR_INVALID_ARGUMENT', `psiFromCounts: count ${i} is ${c}`);
    total += c;
  }
  if (total === 0) throw new WeirError('WEIR_INVALID_ARGUMENT', 'psiFromCounts: the current sample is empty (all counts are 0)');
  const terms: number[] = new Array<number>(m);
  let sum = 0;
  const refN = bins.referenceSize;
  for (let i = 0; i < m; i++) {
    const ref = epsilon === bins.epsilon ? bins.referenceProportions[i] : Math.max(bins.referenceCounts[i] / refN, epsilon);
    const cur = Math.max(currentCounts[i] / total, epsilon);
    const term = (cur - ref) * Math.log(cur / ref);
    terms[i] = term;
    sum += term;
  }
  return {
    psi: sum,
    edges: Array.from(bins.edges),
    referenceCounts: Array.from(bins.referenceCounts),
    currentCounts: Array.from(currentCounts),
    terms,
  };
}

/**
 * Population Stability Index of `current` against `reference` (both non-empty; reference values finite,
 * current values not NaN; ±∞ in current fall in the outer bins), with `bins` reference-quantile bins.
 *
 * @example
 * const r = psi(trainScores, liveScores, { bins: 10 });
 * if (r.psi >= 0.25) console.log('major shift', r.terms);
 */
export function psi(reference: ArrayLike<number>, current: ArrayLike<number>, options: PsiOptions = {}): PsiResult {
  const bins = psiBins(reference, options);
  const acc = new PsiAccumulator(bins);
  checkSample(current, 'psi: current');
  acc.addBatch(current);
  return acc.result();
}

/**
 * Counts current values into fixed {@link PsiBins}, one at a time or in batches, and gives the PSI at
 * any point. `remove` undoes an `add` (for sliding windows); `reset` starts a new window.
 *
 * @example
 * const acc = new PsiAccumulator(psiBins(reference));
 * for (const batch of batches) acc.addBatch(batch);   // Float64Array or number[]
 * const { psi } = acc.result();
 * acc.reset();
 */
export class PsiAccumulator {
  readonly bins: PsiBins;
  private readonly counts: Float64Array;
  private readonly edges: Float64Array;
  private total = 0;

  constructor(bins: PsiBins) {
    this.bins = bins;
    this.edges = bins.edges;
    this.counts = new Float64Array(bins.referenceCounts.length);
  }

  /** Number of values counted. */
  get count(): number {
    return this.total;
  }

  /** Counts one value (NaN throws WEIR_INVALID_ARGUMENT). */
  add(x: number): void {
    if (x !== x) throw new WeirError('WEIR_INVALID_ARGUMENT', 'psi: a current value is NaN');
    this.counts[psiBinIndex(this.edges, x)]++;
    this.total++;
  }

  /** Removes a value added before (its bin count goes down by one). */
  remove(x: number): void {
    if (x !== x) throw new WeirError('WEIR_INVALID_ARGUMENT', 'psi: a current value is NaN');
    const i = psiBinIndex(this.edges, x);
    if (this.counts[i] === 0) throw new WeirError('WEIR_INVALID_ARGUMENT', `psi: remove(${x}): its bin is empty`);
    this.counts[i]--;
    this.total--;
  }

  /** Counts a batch of values. A NaN throws WEIR_INVALID_ARGUMENT and leaves the counts as they were. */
  addBatch(values: ArrayLike<number>): void {
    const edges = this.edges;
    const counts = this.counts;
    const n = values.length;
    for (let k = 0; k < n; k++) {
      const x = values[k];
      if (x !== x) {
        for (let r = 0; r < k; r++) counts[psiBinIndex(edges, values[r])]--; // undo: a batch counts whole or not at all
        throw new WeirError('WEIR_INVALID_ARGUMENT', `psi: current value ${k} of the batch is NaN`);
      }
      counts[psiBinIndex(edges, x)]++;
    }
    this.total += n;
  }

  /** A copy of the current counts, one per bin. */
  currentCounts(): number[] {
    return Array.from(this.counts);
  }

  /** The PSI of the values counted so far (throws if none). */
  result(): PsiResult {
    return psiFromCounts(this.bins, this.counts);
  }

  /** Forgets all counted values. */
  reset(): void {
    this.counts.fill(0);
    this.total = 0;
  }
}

/**
 * A reference as the tests use it: the values sorted (exact), or a quantile sketch, built once per
 * reference, with its PSI bins made on first use.
 */
import { binsFromRanks, psiBins, type PsiBins } from '../stats/psi.js';
import { QuantileSketch } from '../stats/quantile-sketch.js';
import type { DriftSample } from './drift-sample.js';

/**
 * The sample a window is tested against.
 *
 * @example
 * const ref = ReferenceSample.ofSamples([firstWindow], 4096);
 * ref.psiBins(10, 1e-4).edges;
 */
export class ReferenceSample {
  private bins: PsiBins | null = null;
  private sketch: QuantileSketch | null;

  private constructor(
    /** The values ascending, when exact; null when sketched. */
    readonly sorted: Float64Array | null,
    sketch: QuantileSketch | null,
    /** Number of values. */
    readonly size: number,
    private readonly k: number,
  ) {
    this.sketch = sketch;
  }

  /** A fixed reference: values already sorted (and their PSI bins, when made already). */
  static ofSorted(sorted: Float64Array, k: number, bins: PsiBins | null = null): ReferenceSample {
    const r = new ReferenceSample(sorted, null, sorted.length, k);
    r.bins = bins;
    return r;
  }

  /**
   * The union of window samples (the first window, or the trailing ones): exact when each of them is
   * (however many values that makes: they are in memory anyway), else their merged sketch.
   */
  static ofSamples(samples: readonly DriftSample[], k: number): ReferenceSample {
    let total = 0;
    let exact = true;
    for (const s of samples) {
      total += s.n;
      if (!s.isExact) exact = false;
    }
    if (exact) {
      const all = new Float64Array(total);
      let at = 0;
      for (const s of samples) {
        all.set(s.values(), at);
        at += s.n;
      }
      return new ReferenceSample(all.sort(), null, total, k);
    }
    if (samples.length === 1) return new ReferenceSample(null, samples[0].asSketch(), total, k);
    const merged = new QuantileSketch({ k, exactLimit: samples[0].exactLimit });
    for (const s of samples) {
      if (s.isExact) merged.addBatch(s.values());
      else merged.merge(s.asSketch());
    }
    return new ReferenceSample(null, merged, total, k);
  }

  /** Whether the reference is every value (not a sketch). */
  get isExact(): boolean {
    return this.sorted !== null;
  }

  /** Certified CDF error of the reference (0 when exact). */
  get epsilon(): number {
    return this.sketch === null || this.sorted !== null ? 0 : this.sketch.epsilon;
  }

  /** The reference as a sketch (an exact one for an exact reference), made once. */
  asSketch(): QuantileSketch {
    if (this.sketch === null) {
      const s = new QuantileSketch({ k: this.k, exactLimit: Math.min(this.size, 2 ** 27) });
      s.addBatch(this.sorted!);
      this.sketch = s;
    }
    return this.sketch;
  }

  /**
   * The PSI bins, made once: `psiBins` of the values when exact; from the sketch otherwise (edges at
   * its k/bins quantiles, duplicates dropped; counts from its ranks).
   */
  psiBins(bins: number, epsilon: number): PsiBins {
    if (this.bins === null) this.bins = this.sorted !== null ? psiBins(this.sorted, { bins, epsilon }) : sketchBins(this.sketch!, bins, epsilon);
    return this.bins;
  }
}

/** PSI bins from a sketch: quantile edges and rank-difference counts, within the sketch's rank error. */
function sketchBins(s: QuantileSketch, bins: number, epsilon: number): PsiBins {
  return binsFromRanks(
    bins,
    s.count,
    (q) => s.quantile(q),
    (x) => s.rank(x),
    epsilon,
  );
}

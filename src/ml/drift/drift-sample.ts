/**
 * The values of one window (or one reference window): kept whole, in a growing Float64Array, up to
 * `exactLimit`; beyond, a {@link QuantileSketch} with the same `exactLimit` takes over, fed the kept
 * values first, so it is exactly the sketch that would have seen every value, and memory stays bounded.
 * Small windows (per-key windows are mostly small) start with a few slots, not a sketch's buffer.
 */
import { WeirError } from '../../errors.js';
import { QuantileSketch, type QuantileSketchState } from '../stats/quantile-sketch.js';

/** A {@link DriftSample} as checkpoints store it (plain data). */
export type DriftSampleState = { readonly values: Float64Array } | { readonly sketch: QuantileSketchState };

const FIRST_CAPACITY = 8;

/**
 * A sample of finite numbers, exact up to `exactLimit` values, sketched beyond.
 *
 * @example
 * const s = new DriftSample(4096, 10_000);
 * s.add(1.5); s.add(2);
 * s.sortedValues(); // Float64Array [1.5, 2]
 */
export class DriftSample {
  /** Number of values added. */
  n = 0;
  private buf: Float64Array;
  /** The sketch once there are more than `exactLimit` values. */
  private sketch: QuantileSketch | null = null;

  constructor(
    readonly k: number,
    readonly exactLimit: number,
  ) {
    this.buf = new Float64Array(Math.min(FIRST_CAPACITY, exactLimit));
  }

  /** Adds one value (the caller checked it is a finite number). */
  add(x: number): void {
    const n = this.n;
    if (n < this.buf.length) {
      this.buf[n] = x;
      this.n = n + 1;
      return;
    }
    this.addSlow(x);
  }

  private addSlow(x: number): void {
    if (this.sketch === null) {
      if (this.n < this.exactLimit) {
        const grown = new Float64Array(Math.min(this.exactLimit, this.buf.length * 2));
        grown.set(this.buf);
        this.buf = grown;
        this.buf[this.n++] = x;
        return;
      }
      const s = new QuantileSketch({ k: this.k, exactLimit: this.exactLimit });
      s.addBatch(this.buf.subarray(0, this.n));
      this.sketch = s;
      this.buf = new Float64Array(0);
    }
    this.sketch.add(x);
    this.n++;
  }

  /** Whether every value is kept. */
  get isExact(): boolean {
    return this.sketch === null;
  }

  /** The values, ascending, in a new array (exact samples only). */
  sortedValues(): Float64Array {
    if (this.sketch !== null) throw new WeirError('WEIR_INTERNAL', 'DriftSample.sortedValues on a sketched sample');
    return this.buf.slice(0, this.n).sort();
  }

  /** Gives back the spare room of the value buffer (a sample kept as a reference takes no more values). */
  trim(): void {
    if (this.sketch === null && this.buf.length > this.n) this.buf = this.buf.slice(0, this.n);
  }

  /** The values in arrival order (exact samples only; a view, do not keep it across adds). */
  values(): Float64Array {
    if (this.sketch !== null) throw new WeirError('WEIR_INTERNAL', 'DriftSample.values on a sketched sample');
    return this.buf.subarray(0, this.n);
  }

  /** The sample as a sketch: its own, or an exact one holding its values. */
  asSketch(): QuantileSketch {
    if (this.sketch !== null) return this.sketch;
    const s = new QuantileSketch({ k: this.k, exactLimit: Math.max(this.n, this.exactLimit) });
    s.addBatch(this.buf.subarray(0, this.n));
    return s;
  }

  /** Certified CDF error: 0 while exact. */
  get epsilon(): number {
    return this.sketch === null ? 0 : this.sketch.epsilon;
  }

  /** Plain data for a checkpoint (copies). */
  toState(): DriftSampleState {
    return this.sketch === null ? { values: this.buf.slice(0, this.n) } : { sketch: this.sketch.toState() };
  }

  /** A sample from {@link DriftSample.toState}'s data. */
  static fromState(state: DriftSampleState, k: number, exactLimit: number): DriftSample {
    const s = new DriftSample(k, exactLimit);
    if ('values' in state) {
      const v = state.values;
      // A smaller exactLimit than when it was stored: values beyond it go into a sketch, as they would have.
      for (let i = 0; i < v.length; i++) s.add(v[i]);
      return s;
    }
    s.sketch = QuantileSketch.fromState(state.sketch);
    s.buf = new Float64Array(0);
    s.n = s.sketch.count;
    return s;
  }
}

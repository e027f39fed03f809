/**
 * One key's open window in a drift operator: its values as PSI bin counts (once the bins are known: a
 * fixed reference, or a key whose first window became its reference) or as a {@link DriftSample}.
 */
import { WeirError } from '../../errors.js';
import { psiBinIndex, type PsiBins } from '../stats/psi.js';
import { DriftSample, type DriftSampleState } from './drift-sample.js';

/** A {@link WindowSlot} as checkpoints store it. */
export interface WindowSlotState {
  readonly n: number;
  /** Smallest and largest timestamp seen (count windows report them). */
  readonly lo: number;
  readonly hi: number;
  readonly counts?: Float64Array;
  readonly sample?: DriftSampleState;
}

/**
 * The state of one (window, key). Counting is a binary search over the bin edges into a Float64Array;
 * sampling appends to a Float64Array. `mark`, `persisted` and `alive` serve incremental checkpoints.
 *
 * @example
 * const slot = WindowSlot.counting('card-1', 0, bins);
 * slot.add(12.5, 1000);
 */
export class WindowSlot {
  n = 0;
  lo = Infinity;
  hi = -Infinity;
  /** The snapshot epoch in which it last changed (see the operator). */
  mark = -1;
  /** Whether some checkpoint holds it (it then needs a delete when it goes). */
  persisted = false;
  /** False once fired (or dropped). */
  alive = true;

  private constructor(
    readonly key: unknown,
    /** The window start (0 for count windows): the namespace in checkpoints. */
    readonly ns: number,
    readonly counts: Float64Array | null,
    readonly bins: PsiBins | null,
    readonly sample: DriftSample | null,
  ) {}

  /** A slot that counts into fixed PSI bins. */
  static counting(key: unknown, ns: number, bins: PsiBins): WindowSlot {
    return new WindowSlot(key, ns, new Float64Array(bins.edges.length + 1), bins, null);
  }

  /** A slot that keeps the values (exact up to `exactLimit`, then sketched). */
  static sampling(key: unknown, ns: number, k: number, exactLimit: number): WindowSlot {
    return new WindowSlot(key, ns, null, null, new DriftSample(k, exactLimit));
  }

  /** Adds a finite value seen at event time `t`. */
  add(x: number, t: number): void {
    this.n++;
    if (t < this.lo) this.lo = t;
    if (t > this.hi) this.hi = t;
    const counts = this.counts;
    if (counts !== null) {
      counts[psiBinIndex(this.bins!.edges, x)]++;
      return;
    }
    this.sample!.add(x);
  }

  /** Plain data for a checkpoint (copies). */
  toState(): WindowSlotState {
    return this.counts !== null
      ? { n: this.n, lo: this.lo, hi: this.hi, counts: this.counts.slice() }
      : { n: this.n, lo: this.lo, hi: this.hi, sample: this.sample!.toState() };
  }

  /** A slot from checkpointed data; `bins` are the key's bins when it was counting. */
  static fromState(key: unknown, ns: number, state: WindowSlotState, bins: PsiBins | null, k: number, exactLimit: number): WindowSlot {
    let slot: WindowSlot;
    if (state.counts !== undefined) {
      if (bins === null || bins.edges.length + 1 !== state.counts.length) {
        throw new WeirError('WEIR_INVALID_ARGUMENT', `a checkpointed drift window of key ${String(key)} has ${state.counts.length} PSI bins, the reference now gives ${bins === null ? 'none' : bins.edges.length + 1}: the reference or bins changed since the checkpoint`);
      }
      slot = new WindowSlot(key, ns, Float64Array.from(state.counts), bins, null);
    } else {
      slot = new WindowSlot(key, ns, null, null, DriftSample.fromState(state.sample!, k, exactLimit));
    }
    slot.n = state.n;
    slot.lo = state.lo;
    slot.hi = state.hi;
    slot.persisted = true;
    return slot;
  }
}

import type { Aggregator } from './aggregator.js';
import { NO_ACC } from './window-operator-base.js';

/** Shared empty front of keys that never flipped (the front is replaced whole, never pushed to). */
const EMPTY: never[] = [];

/** One key's slice accumulators in the window, as two stacks (front: suffix merges; back: one running merge). */
interface KeyStacks {
  fStarts: number[];
  fSuffix: unknown[];
  fHead: number;
  bStarts: number[];
  bAccs: unknown[];
  /** Merge of `bAccs`, or undefined while the back is empty: the slice's own accumulator while there is one entry (read only). */
  bAgg: unknown;
  /** Whether `bAgg` is ours (so later merges may change it) rather than a slice's. */
  bOwned: boolean;
  /** A merge failed (and was reported): no result for this key until the cache starts afresh. */
  broken: boolean;
}

/** `merge` that reports a failure to the error policy and returns NO_ACC instead of throwing. */
export type SafeMerge = (a: unknown, b: unknown, key: unknown, start: number, end: number) => unknown;

/** Visits the slices with start in `[from, to)`, in order. */
export type SliceVisitor = (from: number, to: number, visit: (sliceStart: number, slice: Map<unknown, unknown>) => void) => void;

/**
 * Makes firing consecutive sliding windows cheap when a window spans many slices (size / slide large).
 *
 * Merging every slice of every window costs `size / slide` merges per key and window; here each key
 * keeps its slices of the current window as a queue built from two stacks (the classic "two-stacks"
 * sliding aggregation): slices enter at the back, where one running merge covers them all; they leave
 * from the front, which holds suffix merges computed when the back is flipped over. A window's result
 * is then at most one merge of the front's top with the back's running merge: amortized O(1) merges
 * per key and window, whatever the slide. Slice accumulators are never changed (only read).
 *
 * The cache follows windows in order. A window that does not overlap the last one, or a change to a
 * slice that already entered (a late element within the allowed lateness), starts it afresh.
 */
export class SlidingWindowCache {
  private readonly stacks = new Map<unknown, KeyStacks>();
  private valid = false;
  /** End of the last window served: slices starting before it have entered. */
  private to = -Infinity;

  constructor(
    private readonly agg: Aggregator<unknown, unknown, unknown>,
    private readonly merge: SafeMerge,
  ) {}

  /** Slices starting before this have entered the cache: changing one of them must invalidate it. */
  get enteredBefore(): number {
    return this.valid ? this.to : -Infinity;
  }

  invalidate(): void {
    this.valid = false;
  }

  /** Serves window `[s, e)`: calls `emit` with every key that has data in it and the key's merged accumulator. */
  window(s: number, e: number, slices: SliceVisitor, emit: (key: unknown, acc: unknown) => void): void {
    let enterFrom = this.to;
    if (!this.valid || s >= this.to) {
      this.stacks.clear();
      enterFrom = s;
    }
    this.valid = true;
    this.to = e;
    slices(enterFrom, e, (sliceStart, slice) => {
      slice.forEach((acc, key) => this.enter(key, sliceStart, acc, s, e));
    });
    this.stacks.forEach((st, key) => {
      if (st.broken || !this.evict(st, s, key, e)) {
        this.stacks.delete(key);
        return;
      }
      const top = st.fHead < st.fStarts.length ? st.fSuffix[st.fHead] : undefined;
      const back = st.bAgg;
      if (top === undefined && back === undefined) {
        this.stacks.delete(key);
        return;
      }
      let acc: unknown;
      if (top === undefined) acc = back;
      else if (back === undefined) acc = top;
      else {
        acc = this.merge(this.agg.create(), top, key, s, e);
        if (acc !== NO_ACC) acc = this.merge(acc, back, key, s, e);
      }
      if (acc !== NO_ACC) emit(key, acc);
    });
  }

  private enter(key: unknown, sliceStart: number, acc: unknown, s: number, e: number): void {
    let st = this.stacks.get(key);
    if (st === undefined) {
      // Most keys of a high-cardinality stream live in one slice: keep that case to one object and two small arrays.
      this.stacks.set(key, { fStarts: EMPTY, fSuffix: EMPTY, fHead: 0, bStarts: [sliceStart], bAccs: [acc], bAgg: acc, bOwned: false, broken: false });
      return;
    }
    if (st.broken) return;
    if (st.bAgg === undefined) {
      st.bAgg = acc;
      st.bOwned = false;
    } else {
      const base = st.bOwned ? st.bAgg : this.merge(this.agg.create(), st.bAgg, key, s, e);
      const merged = base === NO_ACC ? NO_ACC : this.merge(base, acc, key, s, e);
      if (merged === NO_ACC) return this.broke(st);
      st.bAgg = merged;
      st.bOwned = true;
    }
    st.bStarts.push(sliceStart);
    st.bAccs.push(acc);
  }

  /** Drops the key's slices that start before `s`, flipping the back over when the front runs out. False: a merge failed. */
  private evict(st: KeyStacks, s: number, key: unknown, e: number): boolean {
    for (;;) {
      while (st.fHead < st.fStarts.length && st.fStarts[st.fHead] < s) st.fHead++;
      if (st.fHead < st.fStarts.length || st.bStarts.length === 0 || st.bStarts[0] >= s) return true;
      if (!this.flip(st, key, s, e)) return false;
    }
  }

  /** Moves the back into the front as suffix merges (newest first). False: a merge failed. */
  private flip(st: KeyStacks, key: unknown, s: number, e: number): boolean {
    const n = st.bStarts.length;
    const suffix = new Array<unknown>(n);
    // Suffixes are only ever read (the window result and the next suffix merge into fresh
    // accumulators), so the newest one can be the slice's own accumulator.
    let prev: unknown = (suffix[n - 1] = st.bAccs[n - 1]);
    for (let i = n - 2; i >= 0; i--) {
      const base = this.merge(this.agg.create(), prev, key, s, e);
      const cur = base === NO_ACC ? NO_ACC : this.merge(base, st.bAccs[i], key, s, e);
      if (cur === NO_ACC) {
        this.broke(st);
        return false;
      }
      suffix[i] = prev = cur;
    }
    st.fStarts = st.bStarts;
    st.fSuffix = suffix;
    st.fHead = 0;
    st.bStarts = [];
    st.bAccs = [];
    st.bAgg = undefined;
    st.bOwned = false;
    return true;
  }

  private broke(st: KeyStacks): void {
    st.broken = true;
    this.valid = false;
  }
}

/**
 * An incremental aggregation: how a window folds its elements. `merge` is what session windows and
 * sliding-window slices need.
 *
 * Contract (so weir can avoid copies): `create` returns a fresh accumulator; `add` may change `acc`
 * and return it; `merge` may change its first argument and return it, never the second; `result`
 * must not change `acc`, and must not return an object that a later `add` or `merge` changes (a window
 * re-fired for a late element keeps its accumulator; what was emitted before must stay as it was).
 *
 * @example
 * const spread: Aggregator<Txn, { lo: number; hi: number }, number> = {
 *   create: () => ({ lo: Infinity, hi: -Infinity }),
 *   add: (a, e) => { a.lo = Math.min(a.lo, e.amount); a.hi = Math.max(a.hi, e.amount); return a; },
 *   merge: (a, b) => { a.lo = Math.min(a.lo, b.lo); a.hi = Math.max(a.hi, b.hi); return a; },
 *   result: a => a.hi - a.lo,
 * };
 */
export interface Aggregator<in T, A, out R> {
  readonly create: () => A;
  readonly add: (acc: A, value: T) => A;
  readonly merge: (a: A, b: A) => A;
  readonly result: (acc: A) => R;
}

interface AvgAcc {
  sum: number;
  count: number;
}

/**
 * Built-in aggregators. Their inputs are typed: `agg.sum(e => e.note)` on a string field does not compile.
 *
 * @example
 * stream.keyBy(e => e.card).window(windows.tumbling('1m')).aggregate(agg.avg(e => e.amount))
 */
export const agg = {
  /** Number of elements. */
  count(): Aggregator<unknown, number, number> {
    return { create: () => 0, add: (a) => a + 1, merge: (a, b) => a + b, result: (a) => a };
  },
  /** Sum of `f(e)`. */
  sum<T>(f: (e: T) => number): Aggregator<T, number, number> {
    return { create: () => 0, add: (a, e) => a + f(e), merge: (a, b) => a + b, result: (a) => a };
  },
  /** Arithmetic mean of `f(e)`. */
  avg<T>(f: (e: T) => number): Aggregator<T, AvgAcc, number> {
    return {
      create: () => ({ sum: 0, count: 0 }),
      add: (a, e) => {
        a.sum += f(e);
        a.count++;
        return a;
      },
      merge: (a, b) => {
        a.sum += b.sum;
        a.count += b.count;
        return a;
      },
      result: (a) => (a.count === 0 ? NaN : a.sum / a.count),
    };
  },
  /** Smallest `f(e)`. */
  min<T>(f: (e: T) => number): Aggregator<T, number, number> {
    return { create: () => Infinity, add: (a, e) => Math.min(a, f(e)), merge: (a, b) => Math.min(a, b), result: (a) => a };
  },
  /** Largest `f(e)`. */
  max<T>(f: (e: T) => number): Aggregator<T, number, number> {
    return { create: () => -Infinity, add: (a, e) => Math.max(a, f(e)), merge: (a, b) => Math.max(a, b), result: (a) => a };
  },
  /**
   * Folds elements pairwise with `f`, as Flink's `reduce`: the result has the element type.
   * @example agg.reduce((a, b) => (a.amount >= b.amount ? a : b))  // the largest transaction
   */
  reduce<T>(f: (a: T, b: T) => T): Aggregator<T, ReduceAcc<T>, T> {
    return {
      create: () => ({ has: false, value: undefined as T }),
      add: (a, e) => {
        a.value = a.has ? f(a.value, e) : e;
        a.has = true;
        return a;
      },
      merge: (a, b) => {
        if (b.has) {
          a.value = a.has ? f(a.value, b.value) : b.value;
          a.has = true;
        }
        return a;
      },
      result: (a) => a.value,
    };
  },
  /**
   * Every element (what a window `process` function receives): in arrival order within one slice or
   * session; where slices or merged sessions are combined, slice by slice / session by session.
   * `result` is a copy: the accumulator lives on (allowed lateness, later sliding windows) and must not
   * change a result that was already emitted, nor be changed by the function that receives it.
   */
  collect<T>(): Aggregator<T, T[], T[]> {
    return {
      create: () => [],
      add: (a, e) => {
        a.push(e);
        return a;
      },
      merge: (a, b) => {
        for (let i = 0; i < b.length; i++) a.push(b[i]);
        return a;
      },
      result: (a) => a.slice(),
    };
  },
};

/** Accumulator of {@link agg.reduce}. */
export interface ReduceAcc<T> {
  has: boolean;
  value: T;
}

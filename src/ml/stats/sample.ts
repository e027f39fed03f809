/**
 * Input checks and small numeric helpers shared by the drift statistics: validated sorted copies of a
 * sample, numpy's round-half-to-even, and an overflow-safe `ldexp`.
 */
import { WeirError } from '../../errors.js';

/**
 * Checks that `values` is a non-empty sample of numbers without NaN (±Infinity is allowed: it orders
 * fine) and throws a `WEIR_INVALID_ARGUMENT` {@link WeirError} naming `what` otherwise.
 *
 * @example
 * checkSample([1, 2, 3], 'ks2: a'); // ok
 * checkSample([], 'ks2: a');        // throws WEIR_INVALID_ARGUMENT: ks2: a is empty
 */
export function checkSample(values: ArrayLike<number>, what: string, finite = false): void {
  if (values === null || typeof values !== 'object' || typeof values.length !== 'number') {
    throw new WeirError('WEIR_INVALID_ARGUMENT', `${what} must be an array or typed array of numbers`);
  }
  const n = values.length;
  if (n === 0) throw new WeirError('WEIR_INVALID_ARGUMENT', `${what} is empty: a sample needs at least one value`);
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (typeof v !== 'number' || v !== v || (finite && (v === Infinity || v === -Infinity))) {
      throw new WeirError(
        'WEIR_INVALID_ARGUMENT',
        `${what}[${i}] is ${typeof v === 'number' ? String(v) : typeof v}: ${finite ? 'values must be finite numbers' : 'values must be numbers, not NaN'}`,
      );
    }
  }
}

/**
 * A validated, ascending copy of a sample (a `Float64Array`), for the `*Sorted` functions that take
 * samples sorted once and reused (a fixed reference against many windows).
 *
 * @example
 * const ref = sortSample(referenceValues);   // sort once
 * for (const w of windows) ks2Sorted(ref, sortSample(w));
 */
export function sortSample(values: ArrayLike<number>, what = 'sample'): Float64Array {
  checkSample(values, what);
  const out = Float64Array.from(values);
  out.sort();
  return out;
}

/**
 * Throws a `WEIR_INVALID_ARGUMENT` WeirError unless `sorted` is a non-empty ascending sample without
 * NaN (O(n), no copy).
 *
 * @example
 * checkSorted(Float64Array.of(1, 2, 2, 5), 'window'); // ok
 * checkSorted([2, 1], 'window');                       // throws: window is not sorted ascending
 */
export function checkSorted(sorted: ArrayLike<number>, what: string): void {
  checkSample(sorted, what);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i] < sorted[i - 1]) {
      throw new WeirError('WEIR_INVALID_ARGUMENT', `${what} is not sorted ascending (index ${i}): sort it with sortSample()`);
    }
  }
}

/**
 * Rounds to the nearest integer, ties to even, as `numpy.round` does (JS `Math.round` rounds ties up).
 *
 * @example
 * roundHalfEven(2.5); // 2 (Math.round: 3)
 * roundHalfEven(3.5); // 4
 */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const diff = x - f;
  if (diff > 0.5) return f + 1;
  if (diff < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * `x * 2**e` without overflowing or underflowing the power of two on the way (C's ldexp).
 *
 * @example
 * ldexp(2 ** 600, -1100); // 2 ** -500 (2 ** -1100 alone would underflow to 0)
 */
export function ldexp(x: number, e: number): number {
  while (e > 1000) {
    x *= 2 ** 1000;
    e -= 1000;
  }
  while (e < -1000) {
    x *= 2 ** -1000;
    e += 1000;
  }
  return x * 2 ** e;
}

/**
 * Greatest common divisor of two positive integers.
 *
 * @example
 * gcd(200, 300); // 100
 */
export function gcd(a: number, b: number): number {
  while (b !== 0) {
    const t = a % b;
    a = b;
    b = t;
  }
  return a;
}

/**
 * Number of elements of the ascending `sorted` that are <= x (binary search).
 * @example upperBound(Float64Array.of(1, 2, 2, 3), 2) // 3
 */
export function upperBound(sorted: ArrayLike<number>, x: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

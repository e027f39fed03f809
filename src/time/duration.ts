import { WeirError } from '../errors.js';

/**
 * A duration: milliseconds as a number, or a string with a unit.
 * @example '250ms' | '5s' | '5m' | '1h' | '1d' | 1500
 */
export type Duration = number | `${number}${'ms' | 's' | 'm' | 'h' | 'd'}`;

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Milliseconds of a {@link Duration}; throws `WEIR_INVALID_DURATION` for anything else.
 * @example toMillis('5m') === 300_000
 */
export function toMillis(d: Duration, what = 'duration'): number {
  if (typeof d === 'number') {
    if (Number.isFinite(d) && d >= 0) return d;
  } else if (typeof d === 'string') {
    const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(d.trim());
    if (m) return Number(m[1]) * UNIT_MS[m[2]];
  }
  throw new WeirError('WEIR_INVALID_DURATION', `${what}: ${JSON.stringify(d)} is not a duration (use ms or '250ms', '5s', '5m', '1h', '1d')`);
}

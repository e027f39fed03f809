import { WeirError } from '../errors.js';
import { toMillis, type Duration } from '../time/duration.js';

/** Tumbling windows: `[t - (t - offset) mod size, +size)`. */
export interface TumblingWindows {
  readonly kind: 'tumbling';
  readonly size: number;
  readonly offset: number;
}
/** Sliding windows: every `[s, s + size)` with `s = k*slide + offset` containing `t`. */
export interface SlidingWindows {
  readonly kind: 'sliding';
  readonly size: number;
  readonly slide: number;
  readonly offset: number;
}
/** Session windows: each event opens `[t, t + gap)`; windows of a key that overlap or touch merge. */
export interface SessionWindows {
  readonly kind: 'session';
  readonly gap: number;
}
/** A window assigner: plain, frozen configuration (the window operator does the work). */
export type WindowAssigner = TumblingWindows | SlidingWindows | SessionWindows;

/** Options of tumbling and sliding windows. */
export interface AlignedWindowOptions {
  /**
   * Shifts window starts: with `offset: '15m'` hourly windows run from :15 to :15. A negative number
   * of ms shifts them back (as Flink's offsets: `-8 * 3_600_000` aligns days to UTC+8 midnight).
   */
  offset?: Duration;
}

function positive(d: Duration, what: string): number {
  const ms = toMillis(d, what);
  if (ms <= 0 || !Number.isInteger(ms)) throw new WeirError('WEIR_INVALID_ARGUMENT', `${what} must be a positive whole number of ms, got ${JSON.stringify(d)}`);
  return ms;
}

function offsetOf(opts: AlignedWindowOptions | undefined, size: number): number {
  if (opts?.offset === undefined) return 0;
  // toMillis rejects negative durations; an offset may be negative (only its value mod size matters).
  const o = typeof opts.offset === 'number' && opts.offset < 0 ? -toMillis(-opts.offset, 'offset') : toMillis(opts.offset, 'offset');
  if (!Number.isInteger(o)) throw new WeirError('WEIR_INVALID_ARGUMENT', `offset must be a whole number of ms, got ${JSON.stringify(opts.offset)}`);
  return ((o % size) + size) % size;
}

/**
 * Window assigners (DESIGN.md §2). Event time; `end` is exclusive; a window fires once when the
 * watermark reaches `end - 1`.
 *
 * @example
 * .window(windows.tumbling('1m'))
 * .window(windows.sliding({ size: '5m', slide: '1m' }))
 * .window(windows.session({ gap: '30s' }))
 */
export const windows = {
  tumbling(size: Duration, opts?: AlignedWindowOptions): TumblingWindows {
    const s = positive(size, 'tumbling size');
    return Object.freeze({ kind: 'tumbling', size: s, offset: offsetOf(opts, s) });
  },
  sliding(opts: { size: Duration; slide: Duration } & AlignedWindowOptions): SlidingWindows {
    const size = positive(opts.size, 'sliding size');
    const slide = positive(opts.slide, 'sliding slide');
    if (slide > size) throw new WeirError('WEIR_INVALID_ARGUMENT', `sliding slide (${slide}ms) must not exceed size (${size}ms)`);
    return Object.freeze({ kind: 'sliding', size, slide, offset: offsetOf(opts, slide) });
  },
  session(opts: { gap: Duration }): SessionWindows {
    return Object.freeze({ kind: 'session', gap: positive(opts.gap, 'session gap') });
  },
};

/** What a window produces for one key: `end` is exclusive. */
export interface WindowResult<K, R> {
  readonly key: K;
  readonly start: number;
  readonly end: number;
  readonly value: R;
}

/** The window a `process` function is called for. */
export interface WindowInfo<K> {
  readonly key: K;
  readonly start: number;
  readonly end: number;
}

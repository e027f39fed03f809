/**
 * Where processing time comes from. Injectable so tests control time (`weir/testing` uses a manual clock).
 * @example const clock: Clock = { now: () => Date.now() };
 */
export interface Clock {
  /** Current processing time, epoch milliseconds. */
  now(): number;
}

/** The wall clock. */
export const systemClock: Clock = { now: () => Date.now() };

/**
 * A clock that moves only when told to.
 * @example const c = new ManualClock(0); c.advance(1000); c.now() === 1000
 */
export class ManualClock implements Clock {
  constructor(private time = 0) {}
  now(): number {
    return this.time;
  }
  /** Moves time forward by `ms` (never backwards). */
  advance(ms: number): number {
    if (ms > 0) this.time += ms;
    return this.time;
  }
  /** Sets time to `t` if it is later than now. */
  set(t: number): number {
    if (t > this.time) this.time = t;
    return this.time;
  }
}

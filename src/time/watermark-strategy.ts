import { toMillis, type Duration } from './duration.js';

/**
 * Turns the timestamps a source has seen into a watermark: "no event with timestamp <= W is still expected".
 * One generator per source (later: per partition), called once per batch, never per record.
 */
export interface WatermarkGenerator {
  /**
   * Called after each batch with the largest timestamp in it (`-Infinity` for an empty batch);
   * returns the current watermark (`-Infinity` while none is known). Must never go backwards.
   */
  onBatch(maxTimestamp: number): number;
  /** Its state for a checkpoint (JSON-like); a generator without state need not implement it. */
  snapshot?(): unknown;
  /** Takes the state `snapshot` returned. */
  restore?(state: unknown): void;
}

/**
 * How a source makes watermarks: a factory of generators plus an optional idle timeout.
 * Build one with {@link watermarks}.
 */
export interface WatermarkStrategy {
  /** Human-readable description, shown in logs and errors. */
  readonly description: string;
  /**
   * Processing-time ms without records after which the input is idle and stops holding back the
   * watermark of the operators downstream (the minimum across inputs ignores idle ones).
   */
  readonly idleTimeoutMs: number | undefined;
  create(): WatermarkGenerator;
}

/** Options shared by the built-in strategies. */
export interface WatermarkOptions {
  /** Mark the input idle after this long without records (processing time). */
  idleTimeout?: Duration;
}

class BoundedOutOfOrderness implements WatermarkGenerator {
  private max = -Infinity;
  constructor(private readonly boundMs: number) {}
  onBatch(maxTimestamp: number): number {
    if (maxTimestamp > this.max) this.max = maxTimestamp;
    return this.max - this.boundMs - 1;
  }
  snapshot(): unknown {
    return this.max;
  }
  restore(state: unknown): void {
    if (typeof state === 'number') this.max = state;
  }
}

const NO_WATERMARKS: WatermarkGenerator = { onBatch: () => -Infinity };

function strategy(description: string, opts: WatermarkOptions | undefined, create: () => WatermarkGenerator): WatermarkStrategy {
  const idle = opts?.idleTimeout === undefined ? undefined : toMillis(opts.idleTimeout, 'idleTimeout');
  return Object.freeze({ description, idleTimeoutMs: idle, create });
}

/**
 * Built-in watermark strategies (DESIGN.md §2).
 *
 * @example
 * p.source(sources.array(events), { timestamp: e => e.ts, watermarks: watermarks.boundedOutOfOrderness('5s') })
 */
export const watermarks = {
  /**
   * `W = maxTimestampSeen - bound - 1`: events may arrive up to `bound` out of order.
   * @example watermarks.boundedOutOfOrderness('5s', { idleTimeout: '1m' })
   */
  boundedOutOfOrderness(bound: Duration, opts?: WatermarkOptions): WatermarkStrategy {
    const ms = toMillis(bound, 'boundedOutOfOrderness');
    return strategy(`boundedOutOfOrderness(${ms}ms)`, opts, () => new BoundedOutOfOrderness(ms));
  },
  /** Timestamps only ever increase: `W = maxTimestampSeen - 1`. */
  ascending(opts?: WatermarkOptions): WatermarkStrategy {
    return strategy('ascending', opts, () => new BoundedOutOfOrderness(0));
  },
  /**
   * No watermarks until the end of input (`+Infinity`), or those a test driver injects by hand.
   * @example testing: p.source(input, { timestamp: e => e.ts, watermarks: watermarks.none() })
   */
  none(opts?: WatermarkOptions): WatermarkStrategy {
    return strategy('none', opts, () => NO_WATERMARKS);
  },
  /**
   * A strategy of your own: `create` returns a generator called once per batch.
   * @example watermarks.custom('lag-1s', () => { let max = -Infinity; return { onBatch: m => (max = Math.max(max, m)) - 1000 }; })
   */
  custom(description: string, create: () => WatermarkGenerator, opts?: WatermarkOptions): WatermarkStrategy {
    return strategy(description, opts, create);
  },
};

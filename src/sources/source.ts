import type { Logger } from 'pino';
import type { Clock } from '../time/clock.js';

/** What a source gets when the job opens it. */
export interface SourceContext {
  /** The source's step name, for errors and logs. */
  readonly name: string;
  readonly logger: Logger;
  readonly clock: Clock;
  /** Aborted when the job stops: a source waiting for data should give up then. */
  readonly signal: AbortSignal;
  /**
   * Reports an input the source could not decode (a bad JSONL line, ...). Under the source's error
   * policy this fails the job with `WEIR_DECODE_FAILED`, or sends `raw` with the reason to the
   * dead-letter sink and returns; either way the source must skip the record. The cause's message is
   * appended to the reason (`<reason>: <cause message>`).
   */
  reject(raw: unknown, reason: string, cause?: unknown): void;
}

/**
 * A source of records, read in batches. Implement it to bring your own input.
 *
 * `poll(max)` returns up to `max` records, `[]` when nothing is there right now (the job polls again
 * shortly), or `null` at the end of a bounded input. It may return a promise; synchronous sources
 * (arrays, generators) should not, so the job pays for no promise per batch. A returned array belongs
 * to the job: the source must not change it afterwards.
 *
 * @example
 * const counter: Source<number> = { name: 'counter', poll: max => (n < 10 ? [n++] : null) };
 */
export interface Source<T> {
  /** A short name for logs and error messages, e.g. `jsonl(events.jsonl)`. */
  readonly name: string;
  open?(ctx: SourceContext): void | Promise<void>;
  poll(max: number): readonly T[] | null | Promise<readonly T[] | null>;
  close?(): void | Promise<void>;
  /**
   * Where the source is: just after what it has handed out so far (plain data), stored in each
   * checkpoint. A source without it cannot be resumed: a job restored from a checkpoint refuses it.
   */
  savePosition?(): unknown;
  /** After `open`, before the first `poll`: resume at a position `savePosition` returned. */
  seek?(position: unknown): void | Promise<void>;
  /**
   * Called once checkpoint holding `position` (what `savePosition` returned for it) is complete:
   * e.g. commit those offsets to a Kafka consumer group. Failures are logged, not fatal.
   */
  checkpointComplete?(position: unknown): void | Promise<void>;
  /**
   * A source whose input has parts, each in its own order (Kafka partitions): the split the batch
   * the last `poll` returned came from. The job then keeps a watermark per split and emits the
   * minimum over the splits that are not idle (per-split idleness with the strategy's `idleTimeout`).
   */
  readonly currentSplit?: string;
  /**
   * The splits the source reads now (its assignment). Return the same array while it does not
   * change (the job compares it by reference after each poll).
   */
  splits?(): readonly string[];
}

import type { Logger } from 'pino';

/** What a sink gets when the job opens it. */
export interface SinkContext {
  /** The sink's step name, for errors and logs. */
  readonly name: string;
  readonly logger: Logger;
  /**
   * The pipeline's name, when the job passes it: transactional sinks name their transactions
   * `job / sink / epoch` with it (a sink's own `job` option wins).
   */
  readonly job?: string;
}

/**
 * Where records leave a job. `write` receives a batch (and each record's event timestamp); it may
 * return a promise, and the job waits for it before reading more input (that is the backpressure).
 * Writes come in order and never overlap: the next `write` waits for the previous promise.
 * A sink may keep the arrays only until its `write` promise resolves... or copy them.
 *
 * `T` is contravariant: a `Sink<{ a: number }>` accepts a stream of `{ a: number; b: string }`.
 *
 * @example
 * const log: Sink<string> = { name: 'log', write: items => { for (const s of items) console.log(s); } };
 */
export interface Sink<in T> {
  readonly name: string;
  readonly open?: (ctx: SinkContext) => void | Promise<void>;
  readonly write: (items: readonly T[], timestamps: readonly number[]) => void | Promise<void>;
  /** Flush and release; called once at the end of the job (also after a failure). */
  readonly close?: () => void | Promise<void>;
}

/**
 * A record that could not be processed, as a dead-letter sink receives it. Nothing is lost: the
 * original `record` (or raw line) is kept with the reason.
 */
export interface DeadLetter {
  /** The error code, e.g. `WEIR_TIMESTAMP_INVALID`. */
  readonly code: string;
  /** Human-readable reason. */
  readonly reason: string;
  /** The operator that rejected it, e.g. `map#3` or the name given with `{ name }`. */
  readonly step: string;
  /** The source the record came from (its step name). */
  readonly source: string;
  /** The record itself (or the raw input line for decode errors). */
  readonly record: unknown;
  /** Its event timestamp, when it had one. */
  readonly timestamp?: number;
}

/**
 * weir's coded error catalog. Every error a job can raise is a {@link WeirError} with a stable `code`,
 * the `step` (operator name) that raised it, the offending `record` when there is one, and the `cause`.
 * docs/errors.md lists every code; a test keeps the two in step.
 */

/** Who is at fault: the user's code or data, something outside weir, or weir itself. */
export type ErrorDomain = 'user' | 'external' | 'internal';

interface CodeInfo {
  readonly domain: ErrorDomain;
  readonly retryable: boolean;
  readonly message: string;
}

/** The catalog: code → domain, retry hint and a one-line description. */
export const ERROR_CODES = {
  WEIR_INVALID_DURATION: { domain: 'user', retryable: false, message: 'a duration is neither a non-negative number of ms nor a string like 250ms, 5s, 5m, 1h, 1d' },
  WEIR_INVALID_ARGUMENT: { domain: 'user', retryable: false, message: 'an option or argument has a value weir cannot use' },
  WEIR_INVALID_PLAN: { domain: 'user', retryable: false, message: 'the pipeline graph is not runnable (no source, no sink, a stream used after the job started, ...)' },
  WEIR_TIMESTAMP_INVALID: { domain: 'user', retryable: false, message: 'the timestamp function returned something that is not a finite number' },
  WEIR_KEY_INVALID: { domain: 'user', retryable: false, message: 'the key function returned undefined, null or NaN' },
  WEIR_USER_FUNCTION_FAILED: { domain: 'user', retryable: false, message: 'a user function (map, filter, flatMap, keyBy, process, aggregate) threw' },
  WEIR_DECODE_FAILED: { domain: 'user', retryable: false, message: 'an input record could not be decoded (a bad JSONL line, ...)' },
  WEIR_ENCODE_FAILED: { domain: 'user', retryable: false, message: 'a sink could not encode a record with its codec (the record does not match the schema, ...)' },
  WEIR_FEATURE_INVALID: { domain: 'user', retryable: false, message: "a record's features for model scoring or drift are missing, not finite numbers, or of the wrong length" },
  WEIR_MODEL_FAILED: { domain: 'external', retryable: true, message: 'a model could not be loaded, or failed to score a batch (its records got the score step\'s fallback)' },
  WEIR_ML_BACKEND_MISSING: { domain: 'user', retryable: false, message: 'the TensorFlow.js package or backend asked for is not installed or cannot start' },
  WEIR_SOURCE_FAILED: { domain: 'external', retryable: true, message: 'a source failed to open or to read' },
  WEIR_SINK_FAILED: { domain: 'external', retryable: true, message: 'a sink failed to open, write or close' },
  WEIR_SINK_COMMIT_FAILED: { domain: 'external', retryable: true, message: 'a transactional sink failed to pre-commit, commit, abort or recover a transaction' },
  WEIR_SINK_TRANSACTION_LOST: { domain: 'external', retryable: false, message: 'a transaction to commit is gone (its part file or staged rows), or committed output was changed outside weir' },
  WEIR_CHECKPOINT_FAILED: { domain: 'external', retryable: true, message: 'a checkpoint could not be taken or stored; the job stops rather than go on without one' },
  WEIR_CHECKPOINT_INVALID: { domain: 'external', retryable: false, message: 'a stored checkpoint is corrupt, truncated or of an unknown format: recovery skips it and uses an older one' },
  WEIR_NO_VALID_CHECKPOINT: { domain: 'external', retryable: false, message: 'the state store holds checkpoints but none of them can be used; the job will not silently start empty' },
  WEIR_STATE_BACKEND_MISSING: { domain: 'user', retryable: false, message: 'the state backend (classic-level or @nxtedition/rocksdb) is not installed or cannot load' },
  WEIR_STATE_LOCKED: { domain: 'external', retryable: true, message: 'the state store directory is in use by another job or process' },
  WEIR_STATE_CORRUPT: { domain: 'external', retryable: false, message: 'the state store (its files, or an entry in it) is corrupt and cannot be read' },
  WEIR_STATE_IO: { domain: 'external', retryable: true, message: 'reading or writing the state store failed (disk full, permissions, ...)' },
  WEIR_REBALANCED: { domain: 'external', retryable: true, message: 'the Kafka group moved partitions (kafkaChangelog checkpoints): the job starts again on its new partitions, restored from the changelog' },
  WEIR_WORKER_FAILED: { domain: 'internal', retryable: true, message: 'a worker thread of a job with parallelism > 1 could not start, or died' },
  WEIR_JOB_STATE: { domain: 'user', retryable: false, message: 'the job was asked to do something its state does not allow (run twice, ...)' },
  WEIR_INTERNAL: { domain: 'internal', retryable: false, message: 'an invariant inside weir was broken: please report it' },
} as const satisfies Record<string, CodeInfo>;

/** One of the codes of {@link ERROR_CODES}. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** Options of a {@link WeirError}. */
export interface WeirErrorOptions {
  /** The operator (or source / sink) that raised it, e.g. `map#3` or a name given with `{ name }`. */
  step?: string;
  /** The record being processed, when there is one. */
  record?: unknown;
  /** The underlying error. */
  cause?: unknown;
}

/**
 * An error raised by weir. `code` is stable and documented; `step` names the operator; `record` is the
 * record at fault (kept as is, so a dead-letter sink can store it).
 *
 * @example
 * try { await p.run(); } catch (e) {
 *   if (e instanceof WeirError && e.code === 'WEIR_TIMESTAMP_INVALID') console.error(e.step, e.record);
 * }
 */
export class WeirError extends Error {
  readonly code: ErrorCode;
  readonly step: string | undefined;
  readonly record: unknown;
  readonly domain: ErrorDomain;
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, options: WeirErrorOptions = {}) {
    const where = options.step ? ` [${options.step}]` : '';
    const what = options.record === undefined ? '' : ` record: ${preview(options.record)}`;
    super(`${code}${where}: ${message}${what}`, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'WeirError';
    this.code = code;
    this.step = options.step;
    this.record = options.record;
    this.domain = ERROR_CODES[code].domain;
    this.retryable = ERROR_CODES[code].retryable;
  }
}

/** A short, safe rendering of a record for error messages (never throws, never huge). */
export function preview(value: unknown, max = 200): string {
  let s: string;
  try {
    s = typeof value === 'string' ? JSON.stringify(value) : JSON.stringify(value, bigintSafe) ?? String(value);
  } catch {
    s = String(value);
  }
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

function bigintSafe(_k: string, v: unknown): unknown {
  return typeof v === 'bigint' ? `${v}n` : v;
}

/** The message of anything thrown. */
export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

import { WeirError, messageOf, type ErrorCode } from '../errors.js';
import type { DeadLetter } from '../sinks/sink.js';

/** What to do with a record that cannot be processed: fail the job, or hand it to a dead-letter sink. */
export interface ErrorHandler {
  /**
   * Report a failed record. With the fail policy this throws the `WeirError`; with a dead-letter
   * policy it queues the record with its reason and returns, and the job goes on without it.
   */
  recordFailed(code: ErrorCode, message: string, record: unknown, timestamp: number | undefined, cause?: unknown): void;
}

/** Receives dead letters (the runtime wires it to the dead-letter sink). */
export type DeadLetterWriter = (letter: DeadLetter) => void;

/** Fails the job on the first bad record: the default. */
export class FailingErrorHandler implements ErrorHandler {
  constructor(private readonly step: string) {}
  recordFailed(code: ErrorCode, message: string, record: unknown, _ts: number | undefined, cause?: unknown): never {
    if (cause instanceof WeirError) throw cause;
    throw new WeirError(code, cause === undefined ? message : `${message}: ${messageOf(cause)}`, { step: this.step, record, cause });
  }
}

/** Sends bad records to a dead-letter sink with the reason; counts them. */
export class DeadLetterErrorHandler implements ErrorHandler {
  constructor(
    private readonly step: string,
    private readonly source: string,
    private readonly write: DeadLetterWriter,
    private readonly counter: { value: number },
  ) {}
  recordFailed(code: ErrorCode, message: string, record: unknown, timestamp: number | undefined, cause?: unknown): void {
    const reason = cause === undefined ? message : `${message}: ${messageOf(cause)}`;
    this.counter.value++;
    this.write(timestamp === undefined
      ? { code, reason, step: this.step, source: this.source, record }
      : { code, reason, step: this.step, source: this.source, record, timestamp });
  }
}

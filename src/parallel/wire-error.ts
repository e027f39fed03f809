import { ERROR_CODES, WeirError, messageOf, type ErrorCode } from '../errors.js';
import type { WireError } from './messages.js';

/** An error as a worker sends it: code, message, step and record survive the trip. */
export function toWire(e: unknown): WireError {
  let record: unknown;
  if (e instanceof WeirError) {
    try {
      record = structuredClone(e.record);
    } catch {
      record = undefined;
    }
  }
  return {
    code: e instanceof WeirError ? e.code : undefined,
    message: messageOf(e),
    step: e instanceof WeirError ? e.step : undefined,
    record,
    stack: e instanceof Error ? e.stack : undefined,
  };
}

/** Back into a {@link WeirError} on the main thread; one without a weir code is a WEIR_WORKER_FAILED. */
export function fromWire(w: WireError, worker: number): WeirError {
  if (w.code !== undefined && w.code in ERROR_CODES) {
    const err = new WeirError(w.code as ErrorCode, w.message, { step: w.step, record: w.record });
    err.message = w.message; // already says code, step and record
    if (w.stack) err.stack = w.stack;
    return err;
  }
  return new WeirError('WEIR_WORKER_FAILED', `worker ${worker} failed: ${w.message}`, { step: w.step });
}

import { WeirError, messageOf } from '../errors.js';
import type { SourceSnapshot } from '../checkpoint/snapshot.js';
import type { Sink } from './sink.js';
import type { ChangelogBatch } from '../kafka/kafka-changelog-storage.js';

/** A value that survives `JSON.stringify` / `JSON.parse` unchanged. */
export type JsonValue = null | boolean | number | string | readonly JsonValue[] | { readonly [key: string]: JsonValue };

/**
 * What `preCommit` returns and `commit` / `abort` take back: a small JSON object that names one
 * pre-committed transaction. The job stores it in its checkpoint as it is, so it must be plain data
 * (no class instances, no `undefined`, no bigint) and small (a few hundred bytes).
 *
 * @example { epoch: 7, part: '7.part', bytes: 48213 }                       // sinks.jsonl
 * @example { epoch: 7, txn: 'orders/pg(orders)/7', rows: 1200, columns: ['id', 'amount'] } // sinks.postgres
 */
export interface CommitHandle {
  /** The epoch (checkpoint id) whose writes the transaction holds. */
  readonly epoch: number;
  readonly [field: string]: JsonValue;
}

/**
 * A sink that writes exactly once, by two-phase commit with the job's checkpoints.
 *
 * Writes go into the transaction of the current epoch, which nobody outside can see yet. At a
 * checkpoint the job calls `preCommit(epoch)`: everything written since the previous `preCommit`
 * becomes durable but still invisible, and the sink returns a {@link CommitHandle} that the job stores
 * in the checkpoint; the writes after it belong to the next epoch. Once the checkpoint is durable the
 * job calls `commit(handle)`, which makes the epoch visible. If the job dies in between, the restarted
 * job calls `recover(handles of its last durable checkpoint)` before anything else: the sink commits
 * those and aborts every other transaction it finds pending for this sink (transaction ids are
 * deterministic, `job / sink / epoch`, so it can find them).
 *
 * The rules a job follows, and a sink relies on:
 * - Calls never overlap: `write`s are finished (their promises settled) before `preCommit`, and the job
 *   awaits each of `preCommit`, `commit`, `abort`, `recover` before the next of these (writes of the next
 *   epoch may run while a `commit` is in flight).
 * - Epochs increase: each `preCommit(epoch)` gets an epoch above the previous one and above every epoch
 *   the sink has ever committed (after a restart, continue the numbering; never reuse a committed epoch).
 * - Commits go in epoch order, and a checkpoint carries every handle not yet known to be committed.
 * - A job that restarts from a checkpoint calls `recover` (with `[]` if the checkpoint holds no handle
 *   for this sink) before the first `write`. A sink that sees a `write` or `preCommit` without a
 *   `recover` first takes the run as a fresh start and forgets the pending transactions of earlier runs.
 *
 * What a sink guarantees:
 * - `commit` is idempotent: committing a handle twice, or again after a crash in the middle of a
 *   commit, gives the same result as committing it once.
 * - `abort` is idempotent, and aborting an epoch that was already committed changes nothing.
 * - A handle whose data is gone and was never committed fails with `WEIR_SINK_TRANSACTION_LOST`
 *   (never a silent loss); other failures of the four methods are `WEIR_SINK_COMMIT_FAILED`.
 *
 * A sink without `transactional: true` is at-least-once: after a restart it may see again the records
 * written since the last checkpoint.
 *
 * @example
 * // What a job's checkpoint coordinator does with it:
 * const sink = sinks.jsonl<Out>('out.jsonl', { exactlyOnce: true });
 * await sink.open?.(ctx);
 * await sink.recover(lastCheckpoint?.sinks[sink.name] ?? []);   // on a restart only
 * await sink.write(batch, timestamps);                             // epoch 8 (invisible)
 * const handle = await sink.preCommit(8);                          // durable, still invisible
 * await store.writeCheckpoint({ id: 8, sinks: { [sink.name]: [handle] }, ... });
 * await sink.commit(handle);                                       // now visible, exactly once
 */
export interface TransactionalSink<in T> extends Sink<T> {
  readonly transactional: true;
  /**
   * Makes everything written since the previous `preCommit` durable but invisible, as the transaction
   * of `epoch`, and returns its handle. An epoch without writes gives a handle too.
   */
  preCommit(epoch: number, context?: PreCommitContext): Promise<CommitHandle>;
  /** Makes a pre-committed transaction visible. Idempotent. */
  commit(handle: CommitHandle): Promise<void>;
  /** Drops a pre-committed transaction. Idempotent; an already committed one stays committed. */
  abort(handle: CommitHandle): Promise<void>;
  /**
   * After a restart: commits `lastCommitted` (the handles stored in the last durable checkpoint), in
   * epoch order, then aborts every other pending transaction of this sink.
   */
  recover(lastCommitted: readonly CommitHandle[]): Promise<void>;
  /**
   * For a sink that cannot commit a pre-committed transaction after a restart (Kafka through kafkajs:
   * a new producer aborts the old one's open transaction): the epochs among `handles` that were never
   * committed. A checkpoint with such handles is given up for the one before it, and the job replays
   * from there. Such sinks commit first at each checkpoint, before the other sinks.
   */
  lostHandles?(handles: readonly CommitHandle[]): Promise<number[]>;
}

/** What a sink learns at `preCommit`: the checkpoint's source positions (a Kafka sink commits Kafka offsets with its transaction). */
export interface PreCommitContext {
  readonly sources?: Readonly<Record<string, SourceSnapshot>>;
  /** With `kafkaChangelog` checkpoints: the state records the exactly-once Kafka sink commits in the same transaction. */
  readonly changelog?: ChangelogBatch;
}

/**
 * Whether a sink takes part in checkpoints by two-phase commit.
 * @example if (isTransactional(sink)) handles[sink.name] = [await sink.preCommit(epoch)];
 */
export function isTransactional<T>(sink: Sink<T>): sink is TransactionalSink<T> {
  return (sink as { transactional?: unknown }).transactional === true;
}

/** Throws unless `epoch` is a non-negative safe integer (epochs name files and rows). */
export function checkEpoch(epoch: unknown, step: string, what = 'epoch'): number {
  if (typeof epoch !== 'number' || !Number.isSafeInteger(epoch) || epoch < 0) {
    throw new WeirError('WEIR_INVALID_ARGUMENT', `${what} must be a non-negative safe integer, got ${String(epoch)}`, { step });
  }
  return epoch;
}

/**
 * Runs async steps one at a time, in call order: the four transaction methods of a sink go through
 * one, so a caller that does not await one before the next still gets them in order.
 */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();

  run<R>(step: () => Promise<R>): Promise<R> {
    const next = this.tail.then(step, step);
    this.tail = next.catch(() => undefined);
    return next;
  }
}

/**
 * Runs one transaction step of sink `name` (`preCommit`, `commit`, ...): refuses it once the sink is
 * closed, and wraps a failure that is not already a WeirError as `WEIR_SINK_COMMIT_FAILED`.
 */
export async function transactionStep<R>(name: string, closed: boolean, what: string, step: () => Promise<R>): Promise<R> {
  if (closed) throw new WeirError('WEIR_SINK_COMMIT_FAILED', `${what}: the sink is closed`, { step: name });
  try {
    return await step();
  } catch (e) {
    if (e instanceof WeirError) throw e;
    throw new WeirError('WEIR_SINK_COMMIT_FAILED', `${what} failed: ${messageOf(e)}`, { step: name, cause: e });
  }
}

/**
 * The data of the fraud-scoring example: one seeded stream of card transactions
 * (examples/data/card-transactions.ts), cut in two.
 *
 * - The first `trainTxns` transactions are history: the model is trained on them.
 * - The next `liveTxns` are the live stream the job scores. Halfway through it, prices drift: from
 *   the first 10-minute boundary after its midpoint on, every amount is `driftFactor` times what it
 *   would have been. That is the change the drift monitors have to catch.
 *
 * The labels are the generator's own: a fraud burst's purchases are the ones at the burst merchants.
 */
import type { Random } from 'weir';
import { BURST_MERCHANTS, cardTransactions, type Txn } from '../data/card-transactions.js';

export type { Txn } from '../data/card-transactions.js';

/** The event-time grid drift is injected on (and reported on): 10 minutes. */
export const DRIFT_WINDOW_MS = 10 * 60_000;

/** Whether a transaction is one of a fraud burst's purchases (the generator's ground truth). */
export function isFraud(t: Txn): boolean {
  return BURST_MERCHANTS.includes(t.merchant);
}

/** A generator for `sources.generator(make, { count, seed })`. */
export type TxnGenerator = (i: number, rng: Random) => Txn;

/** The history: transactions 0 .. trainTxns-1 of the stream (use with `count: trainTxns`); `info.lastTs` follows its latest event time. */
export function history(info: { lastTs: number }): TxnGenerator {
  const next = cardTransactions();
  return (i, rng) => {
    const t = next(i, rng);
    if (t.ts > info.lastTs) info.lastTs = t.ts;
    return t;
  };
}

/** What the live stream did: where its drift began (known once the stream has got there). */
export interface LiveInfo {
  /** Event time from which amounts drift (a multiple of {@link DRIFT_WINDOW_MS}); null before the midpoint. */
  driftAt: number | null;
}

/**
 * The live stream: transactions trainTxns .. trainTxns+liveTxns-1 of the same seeded stream (use with
 * `count: liveTxns` and the same seed as the history). On its first call it runs through the history
 * with the source's random generator, so both halves are one stream. From the midpoint on, amounts
 * with event time at or after `info.driftAt` are multiplied by `driftFactor`.
 */
export function live(opts: { trainTxns: number; liveTxns: number; driftFactor: number }, info: LiveInfo): TxnGenerator {
  const next = cardTransactions();
  const mid = Math.floor(opts.liveTxns / 2);
  let skipped = false;
  let maxTs = -Infinity;
  return (i, rng) => {
    if (!skipped) {
      for (let j = 0; j < opts.trainTxns; j++) maxTs = Math.max(maxTs, next(j, rng).ts);
      skipped = true;
    }
    const t = next(opts.trainTxns + i, rng);
    maxTs = Math.max(maxTs, t.ts);
    // The midpoint: drift starts at the next 10-minute boundary, after every transaction so far.
    if (i === mid) info.driftAt = Math.floor(maxTs / DRIFT_WINDOW_MS + 1) * DRIFT_WINDOW_MS;
    if (info.driftAt !== null && t.ts >= info.driftAt) return { ...t, amount: Math.round(t.amount * opts.driftFactor * 100) / 100 };
    return t;
  };
}

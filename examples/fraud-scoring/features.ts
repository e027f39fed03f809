/**
 * Per-card features over sliding windows: for each card, every minute, its purchases of the last
 * 5 minutes summed up in one pass. The same code makes the training rows and the rows the live job
 * scores, so the model sees in production exactly what it was trained on.
 */
import { windows, type Aggregator, type Stream } from 'weir';
import { isFraud, type Txn } from './data.js';

export const WINDOW = { size: '5m', slide: '1m' } as const;
const SIZE_MS = 5 * 60_000;

/** Whether a window is one of the card's windows that do not overlap (those starting on a 5-minute mark). */
export function nonOverlapping(w: CardWindow): boolean {
  return w.start % SIZE_MS === 0;
}

/** One card over one 5-minute window: what the model scores. */
export interface CardWindow {
  card: string;
  /** The window, epoch ms (end exclusive). */
  start: number;
  end: number;
  /** Purchases in the window. */
  txns: number;
  /** Their total, mean and three largest amounts, in dollars (0 where there are fewer purchases). */
  total: number;
  avgAmount: number;
  maxAmount: number;
  secondAmount: number;
  thirdAmount: number;
  /** The label, from the generator, NOT a feature: how many of the purchases were fraud. */
  fraudTxns: number;
}

/** The names of the model's inputs, in the order of {@link featureRow}. */
export const FEATURE_NAMES = ['txns', 'log_total', 'log_avg', 'log_max', 'log_2nd', 'log_3rd'] as const;

/** The model's input row for a card window (amounts on a log scale: their spread is wide). */
export function featureRow(w: CardWindow): number[] {
  return [w.txns, Math.log1p(w.total), Math.log1p(w.avgAmount), Math.log1p(w.maxAmount), Math.log1p(w.secondAmount), Math.log1p(w.thirdAmount)];
}

interface Acc {
  n: number;
  sum: number;
  /** The three largest amounts, descending (0: none). */
  top: [number, number, number];
  fraud: number;
}

function insert(top: [number, number, number], x: number): void {
  if (x <= top[2]) return;
  if (x > top[0]) (top[2] = top[1]), (top[1] = top[0]), (top[0] = x);
  else if (x > top[1]) (top[2] = top[1]), (top[1] = x);
  else top[2] = x;
}

/**
 * The window aggregate: count, sum, top 3 and the label in one accumulator. `merge` is what lets the
 * sliding window keep one accumulator per card and 1-minute slice and merge five per window.
 */
export const cardSummary: Aggregator<Txn, Acc, Omit<CardWindow, 'card' | 'start' | 'end'>> = {
  create: () => ({ n: 0, sum: 0, top: [0, 0, 0], fraud: 0 }),
  add: (a, t) => {
    a.n++;
    a.sum += t.amount;
    insert(a.top, t.amount);
    if (isFraud(t)) a.fraud++;
    return a;
  },
  merge: (a, b) => {
    a.n += b.n;
    a.sum += b.sum;
    for (const x of b.top) insert(a.top, x);
    a.fraud += b.fraud;
    return a;
  },
  result: (a) => ({
    txns: a.n,
    total: Math.round(a.sum * 100) / 100,
    avgAmount: Math.round((a.sum / a.n) * 100) / 100,
    maxAmount: a.top[0],
    secondAmount: a.top[1],
    thirdAmount: a.top[2],
    fraudTxns: a.fraud,
  }),
};

/**
 * Transactions → card windows: purchases only (no refunds or $0 checks), keyed by card, 5-minute
 * windows every minute. Windows that start before `from` are dropped: they would hold only part of
 * their 5 minutes (the stream began inside them), and look unlike every window after.
 */
export function cardWindows(txns: Stream<Txn>, opts: { from: number; name: string }): Stream<CardWindow> {
  return txns
    .filter((t) => t.amount > 0, { name: 'purchases' })
    .keyBy((t) => t.card)
    .window(windows.sliding(WINDOW))
    .aggregate(cardSummary, { name: opts.name })
    .filter((r) => r.start >= opts.from, { name: 'full-windows' })
    .map((r): CardWindow => ({ card: r.key, start: r.start, end: r.end, ...r.value }), { name: 'card-window' });
}

/**
 * Synthetic card transactions for the examples: a seeded, deterministic stream (the same seed gives
 * the same transactions on every machine), made to exercise a streaming job:
 *
 * - event time advances ~20 ms per transaction, and ~30% arrive up to 3 s out of order (within a
 *   5 s watermark bound);
 * - ~2% are refunds (negative) and ~1% $0 card checks, which a job filters out;
 * - now and then a compromised card makes a burst of large purchases within a few seconds;
 * - ~0.2% come from a terminal that was offline: they arrive 6 to 20 minutes late.
 *
 * Use it as `sources.generator(cardTransactions(), { count, seed })`.
 */
import type { Random } from 'weir';

/** One card transaction. `ts` is its event time, epoch ms. */
export interface Txn {
  readonly id: number;
  readonly card: string;
  readonly merchant: string;
  readonly amount: number;
  readonly ts: number;
}

/** Options of {@link cardTransactions}. */
export interface CardDataOptions {
  /** Number of cards (default 400). */
  cards?: number;
  /** Event time of the first transaction (default 2024-03-01T09:00:00Z). */
  start?: number;
}

const MERCHANTS = ['grocer', 'fuel', 'cafe', 'pharmacy', 'bookshop', 'transit', 'streaming', 'restaurant', 'hardware', 'florist'];
/** Where compromised cards spend: the merchants of fraud bursts only. */
export const BURST_MERCHANTS = ['electronics-online', 'giftcards-online', 'luxury-watches'];

/** How late an offline terminal's transactions arrive: 6 to 20 minutes. */
export const OFFLINE_DELAY_MS = { min: 6 * 60_000, max: 20 * 60_000 };

/**
 * A generator function `(i, rng) => Txn` for `sources.generator`. It keeps a little state (the
 * running clock and the current fraud burst), so use one per source and call it in order: that is
 * what `sources.generator` does.
 */
export function cardTransactions(opts: CardDataOptions = {}): (i: number, rng: Random) => Txn {
  const cards = opts.cards ?? 400;
  let clock = opts.start ?? Date.UTC(2024, 2, 1, 9, 0, 0);
  let burst: { card: string; left: number } | null = null;
  return (i, rng) => {
    clock += rng.int(41); // 0..40 ms, ~20 ms on average
    let ts = clock;
    if (rng.next() < 0.3) ts -= rng.int(3000); // out of order, within the 5 s bound
    // An offline terminal uploads its buffer late (not in the first 20 minutes, so they are late for windows inside the stream).
    if (i > 60_000 && rng.next() < 0.002) ts -= OFFLINE_DELAY_MS.min + rng.int(OFFLINE_DELAY_MS.max - OFFLINE_DELAY_MS.min);

    if (burst === null && rng.next() < 0.0002) burst = { card: card(rng.int(cards)), left: 6 };
    if (burst !== null && rng.next() < 0.05) {
      // A compromised card: big purchases a few hundred ms apart.
      const t: Txn = { id: i, card: burst.card, merchant: rng.pick(BURST_MERCHANTS), amount: cents(600 + rng.next() * 900), ts };
      if (--burst.left === 0) burst = null;
      return t;
    }

    const roll = rng.next();
    // Mostly small amounts with a long tail (log-normal, median ~$33); some refunds and $0 checks.
    const amount = roll < 0.02 ? -cents(Math.exp(rng.gaussian(3.5, 0.9))) : roll < 0.03 ? 0 : cents(Math.exp(rng.gaussian(3.5, 0.9)));
    return { id: i, card: card(rng.int(cards)), merchant: rng.pick(MERCHANTS), amount, ts };
  };
}

function card(n: number): string {
  return `card-${String(n).padStart(4, '0')}`;
}

function cents(x: number): number {
  return Math.round(x * 100) / 100;
}

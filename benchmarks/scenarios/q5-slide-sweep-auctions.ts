import { q5SlideSweep } from '../lib/nexmark-queries.js';

/**
 * Nexmark q5 per auction with a 10 s window and a shrinking slide: informational. Each auction gets
 * its bids within a few ms, so it lives in one slice, and q5 emits one result per auction and window:
 * about 0.06 * size/slide results per bid (0.3 at 2 s, 6 at 0.1 s). Throughput here follows the
 * number of results, not the cost of reading input (that is what `q5-slide-sweep` isolates).
 */
await q5SlideSweep('q5-slide-sweep-auctions', 'auction', { full: 4_000_000, quick: 20_000 });

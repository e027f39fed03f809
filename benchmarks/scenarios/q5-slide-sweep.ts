import { q5SlideSweep } from '../lib/nexmark-queries.js';

/**
 * What slicing buys: q5's sliding count (10 s window) with a shrinking slide, over 1,000 auction
 * buckets (`auction % 1000`), so the number of window results per bid stays small and the cost of
 * the windows themselves shows. Each bid updates one slice whatever the slide, and the per-key
 * two-stacks merging keeps firing a window at O(1) merges per key: the issue's target is at most a
 * 10% lower throughput at 0.1 s than at 2 s. (`q5-slide-sweep-auctions` is the per-auction version.)
 */
await q5SlideSweep('q5-slide-sweep', 'auction%1000', { full: 16_000_000, quick: 20_000 });

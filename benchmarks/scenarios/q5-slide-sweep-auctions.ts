import { sources, type Duration } from '../../src/index.js';
import { Q5_EVENTS_PER_SECOND, q5 } from '../lib/nexmark-queries.js';
import { runScenario } from '../lib/scenario-runner.js';

/**
 * Nexmark q5 per auction with a 10 s window and a shrinking slide: informational. Each auction gets
 * its bids within a few ms, so it lives in one slice, and q5 emits one result per auction and window:
 * about 0.06 * size/slide results per bid (0.3 at 2 s, 6 at 0.1 s). Throughput here follows the
 * number of results, not the cost of reading input (that is what `q5-slide-sweep` isolates).
 */
await runScenario({
  name: 'q5-slide-sweep-auctions',
  events: { full: 4_000_000, quick: 20_000 },
  variants: ['2s', '1s', '500ms', '200ms', '100ms'].map((slide) => ({ slide })),
  build(p, { events, wrap, sink, args }) {
    q5(p, wrap(sources.nexmark({ kinds: ['bid'], events, eventsPerSecond: Q5_EVENTS_PER_SECOND })), (args.slide ?? '2s') as Duration, sink, 'auction');
  },
  config: (args) => ({
    query: `bids | keyBy(auction) | sliding(10s, ${args.slide ?? '2s'}) count | keyBy(end) | tumbling(${args.slide ?? '2s'}) max`,
    source: 'nexmark bids',
    eventTimeRate: Q5_EVENTS_PER_SECOND,
    slide: args.slide ?? '2s',
  }),
});

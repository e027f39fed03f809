import { sources } from '../../src/index.js';
import { Q5_EVENTS_PER_SECOND, q5 } from '../lib/nexmark-queries.js';
import { runScenario } from '../lib/scenario-runner.js';

/** Nexmark q5 (hot items), sliding windows 10 s / 2 s, in-memory state. */
await runScenario({
  name: 'q5',
  events: { full: 16_000_000, quick: 20_000 },
  targetEventsPerSec: 2_000_000,
  build(p, { events, wrap, sink }) {
    q5(p, wrap(sources.nexmark({ kinds: ['bid'], events, eventsPerSecond: Q5_EVENTS_PER_SECOND })), '2s', sink);
  },
  config: () => ({
    query: 'bids | keyBy(auction) | sliding(10s, 2s) count | keyBy(end) | tumbling(2s) max',
    source: 'nexmark bids',
    eventTimeRate: Q5_EVENTS_PER_SECOND,
  }),
});

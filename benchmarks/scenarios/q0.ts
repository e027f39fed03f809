import { sources } from '../../src/index.js';
import { NEXMARK_EVENTS_PER_SECOND } from '../lib/nexmark-queries.js';
import { runScenario } from '../lib/scenario-runner.js';

/** Nexmark q0-style stateless path: bids → a realistic filter (price > $10: ~83% pass) → counting sink. */
await runScenario({
  name: 'q0',
  events: { full: 40_000_000, quick: 20_000 },
  targetEventsPerSec: 5_000_000,
  build(p, { events, wrap, sink }) {
    p.source(wrap(sources.nexmark({ kinds: ['bid'], events, eventsPerSecond: NEXMARK_EVENTS_PER_SECOND })), { timestamp: (b) => b.dateTime })
      .filter((b) => b.price > 1000)
      .sink(sink);
  },
  config: () => ({ query: 'bids | filter(price > 1000 cents) | count', source: 'nexmark bids', eventTimeRate: NEXMARK_EVENTS_PER_SECOND }),
});

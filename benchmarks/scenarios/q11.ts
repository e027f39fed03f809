import { agg, sources, windows } from '../../src/index.js';
import { NEXMARK_EVENTS_PER_SECOND } from '../lib/nexmark-queries.js';
import { runScenario } from '../lib/scenario-runner.js';

/** Nexmark q11 (user sessions): bids per bidder per session window with a 10 s gap. */
await runScenario({
  name: 'q11',
  events: { full: 20_000_000, quick: 20_000 },
  targetEventsPerSec: 500_000,
  build(p, { events, wrap, sink }) {
    p.source(wrap(sources.nexmark({ kinds: ['bid'], events, eventsPerSecond: NEXMARK_EVENTS_PER_SECOND })), { timestamp: (b) => b.dateTime })
      .keyBy((b) => b.bidder)
      .window(windows.session({ gap: '10s' }))
      .aggregate(agg.count())
      .sink(sink);
  },
  config: () => ({ query: 'bids | keyBy(bidder) | session(gap 10s) count', source: 'nexmark bids', eventTimeRate: NEXMARK_EVENTS_PER_SECOND }),
});

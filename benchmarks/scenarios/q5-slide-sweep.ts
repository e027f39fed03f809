import { sources, type Duration } from '../../src/index.js';
import { NEXMARK_EVENTS_PER_SECOND, q5 } from '../lib/nexmark-queries.js';
import { runScenario } from '../lib/scenario-runner.js';

/**
 * q5 with a 10 s window and a shrinking slide: with slicing, an event updates one slice whatever the
 * slide, so reading input should cost the same (the issue: at most 10% lower at 0.1 s than at 2 s).
 * The window results do not: every auction is in size/slide windows, so q5 emits about
 * 0.06 * size/slide results per bid (0.3 at 2 s, 6 at 0.1 s). 4M events, not more: the engine buffers
 * all the results of one watermark advance (the end of input fires ~100 windows at 0.1 s) before
 * emitting them, and 16M events run out of memory there.
 */
await runScenario({
  name: 'q5-slide-sweep',
  events: { full: 4_000_000, quick: 20_000 },
  variants: ['2s', '1s', '500ms', '200ms', '100ms'].map((slide) => ({ slide })),
  build(p, { events, wrap, sink, args }) {
    q5(p, wrap(sources.nexmark({ kinds: ['bid'], events, eventsPerSecond: NEXMARK_EVENTS_PER_SECOND })), (args.slide ?? '2s') as Duration, sink);
  },
  config: (args) => ({
    query: `bids | keyBy(auction) | sliding(10s, ${args.slide ?? '2s'}) count | keyBy(end) | tumbling(${args.slide ?? '2s'}) max`,
    source: 'nexmark bids',
    eventTimeRate: NEXMARK_EVENTS_PER_SECOND,
    slide: args.slide ?? '2s',
  }),
});

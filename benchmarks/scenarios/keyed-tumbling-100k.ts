import { agg, sources, windows } from '../../src/index.js';
import { runScenario } from '../lib/scenario-runner.js';

const KEYS = 100_000;
/** 1M events per second of event time: a 1 s window holds ~10 events per key. */
const EVENTS_PER_SECOND = 1_000_000;

/** A keyed tumbling count over 100K distinct keys (uniformly random), 1 s windows. */
await runScenario({
  name: 'keyed-tumbling-100k',
  events: { full: 40_000_000, quick: 20_000 },
  targetEventsPerSec: 3_000_000,
  build(p, { events, wrap, sink }) {
    const source = sources.generator((i, rng) => ({ k: rng.int(KEYS), ts: Math.floor((i * 1000) / EVENTS_PER_SECOND) }), { count: events, seed: 1 });
    p.source(wrap(source), { timestamp: (e) => e.ts })
      .keyBy((e) => e.k)
      .window(windows.tumbling('1s'))
      .aggregate(agg.count())
      .sink(sink);
  },
  config: () => ({ query: 'records | keyBy(k) | tumbling(1s) count', source: `generator { k: random of ${KEYS}, ts }`, keys: KEYS, eventTimeRate: EVENTS_PER_SECOND }),
});

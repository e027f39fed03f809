import { agg, sources, windows } from '../../src/index.js';
import { runScenario } from '../lib/scenario-runner.js';

const KEYS = 1_000_000;
/** 1M events per second of event time (as keyed-tumbling-100k): a 1 s window sees ~632K of the 1M keys, once each on average. */
const EVENTS_PER_SECOND = 1_000_000;
const STATES = ['memory', 'classic-level', 'rocksdb'] as const;
type State = (typeof STATES)[number];

function stateOf(args: Readonly<Record<string, string>>): State {
  const s = (args.state ?? 'classic-level') as State;
  if (!STATES.includes(s)) throw new Error(`--state=${args.state}: use ${STATES.join(', ')}`);
  return s;
}

/**
 * A keyed tumbling count over 1M distinct keys (uniformly random), 1 s windows, with a checkpoint
 * every second (wall time) on classic-level or rocksdb; `state=memory` is the same job without
 * checkpoints (the baseline). Windows fire during the run (event time moves 1 s per 1M events), so
 * the checkpoints write both new window state and the deletes of fired windows. The target:
 * at least 500K events/s per core with checkpoints.
 */
await runScenario({
  name: 'keyed-tumbling-1m-checkpointed',
  events: { full: 10_000_000, quick: 20_000 },
  variants: STATES.map((state) => ({ state })),
  targetEventsPerSec: (args) => (stateOf(args) === 'memory' ? undefined : 500_000),
  options(args) {
    const state = stateOf(args);
    return state === 'memory' ? { state } : { state, checkpoint: { interval: '1s' } };
  },
  build(p, { events, wrap, sink }) {
    const source = sources.generator((i, rng) => ({ k: rng.int(KEYS), ts: Math.floor((i * 1000) / EVENTS_PER_SECOND) }), { count: events, seed: 1 });
    p.source(wrap(source), { timestamp: (e) => e.ts })
      .keyBy((e) => e.k)
      .window(windows.tumbling('1s'))
      .aggregate(agg.count())
      .sink(sink);
  },
  config: (args) => ({
    query: 'records | keyBy(k) | tumbling(1s) count',
    source: `generator { k: random of ${KEYS}, ts }`,
    keys: KEYS,
    eventTimeRate: EVENTS_PER_SECOND,
    state: stateOf(args),
    checkpoint: stateOf(args) === 'memory' ? 'none' : 'every 1s, retain 3',
  }),
});

import { agg, sources, windows } from '../../src/index.js';
import { runScenario } from '../lib/scenario-runner.js';

const KEYS = 100_000;
const EVENTS_PER_SECOND = 1_000_000;

/**
 * `keyed-tumbling-100k` with its keyed window in worker threads (`parallelism` 1, 2, 3): the main
 * thread generates, routes each record to the worker owning its key group (structured clone over a
 * MessagePort) and feeds the sink; each worker runs the window for its key groups. On a 2-core
 * machine this says what the exchange costs more than what parallelism gains; batch latency is not
 * comparable between variants (with workers a batch's trip ends when it is posted).
 */
await runScenario({
  name: 'keyed-tumbling-parallel',
  events: { full: 20_000_000, quick: 20_000 },
  variants: [{ parallelism: '1' }, { parallelism: '2' }, { parallelism: '3' }],
  options: (args) => ({ parallelism: Number(args.parallelism ?? 1) }),
  build(p, { events, wrap, sink }) {
    const source = sources.generator((i, rng) => ({ k: rng.int(KEYS), ts: Math.floor((i * 1000) / EVENTS_PER_SECOND) }), { count: events, seed: 1 });
    p.source(wrap(source), { timestamp: (e) => e.ts })
      .keyBy((e) => e.k)
      .window(windows.tumbling('1s'))
      .aggregate(agg.count())
      .sink(sink);
  },
  config: (args) => ({ query: 'records | keyBy(k) | tumbling(1s) count', keys: KEYS, parallelism: Number(args.parallelism ?? 1), cores: 2 }),
});

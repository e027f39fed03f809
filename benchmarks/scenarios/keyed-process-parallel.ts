import { sources, state } from '../../src/index.js';
import { runScenario } from '../lib/scenario-runner.js';

const KEYS = 10_000;

/** CPU work standing in for an expensive per-record function (feature extraction, scoring): ~`rounds` × 10 ns. */
function burn(seed: number, rounds: number): number {
  let x = seed | 0;
  for (let i = 0; i < rounds; i++) x = (Math.imul(x, 1103515245) + 12345) | 0;
  return x;
}

/**
 * Where worker threads pay: a keyed process function doing ~5 µs of CPU work per record (and keeping a
 * running value per key), at `parallelism` 1, 2, 4. The main thread only generates and routes;
 * the work spreads over the workers, up to what the main thread can route (see keyed-tumbling-parallel).
 */
await runScenario({
  name: 'keyed-process-parallel',
  events: { full: 1_000_000, quick: 5_000 },
  variants: [{ parallelism: '1' }, { parallelism: '2' }, { parallelism: '4' }],
  options: (args) => ({ parallelism: Number(args.parallelism ?? 1) }),
  build(p, { events, wrap, sink }) {
    const rounds = 4000;
    p.source(wrap(sources.generator((i, rng) => ({ k: rng.int(KEYS), v: i }), { count: events, seed: 3 })))
      .keyBy((e) => e.k)
      .process({
        state: { acc: state.value(0) },
        processElement(e, ctx) {
          const x = burn(e.v ^ ctx.state.acc.get(), rounds);
          ctx.state.acc.set(x);
          return e.v % 1000 === 0 ? x : undefined;
        },
      })
      .sink(sink);
  },
  config: (args) => ({ query: 'records | keyBy(k) | process(~5 µs of work per record, value state)', keys: KEYS, parallelism: Number(args.parallelism ?? 1) }),
});

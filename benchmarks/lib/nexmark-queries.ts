import { agg, sources, windows, type Duration, type NexmarkBid, type Pipeline, type Sink, type Source } from '../../src/index.js';
import { runScenario } from './scenario-runner.js';

/** The Nexmark default event-time rate of the Flink setup: 10M events/s (0.1 µs per event). */
export const NEXMARK_EVENTS_PER_SECOND = 10_000_000;

/**
 * The event-time rate of the windowed q5 runs: 1M events/s, so a 16M-event run spans 16 s of event
 * time and 10 s windows fire (and free their state) while the run goes on. At the Nexmark default the
 * same run spans 1.6 s: no window would fire before the end of input, and all state would pile up.
 */
export const Q5_EVENTS_PER_SECOND = 1_000_000;

/** How q5 groups bids: by auction (Nexmark's q5), or by auction bucket (a fixed number of keys). */
export type Q5Keys = 'auction' | 'auction%1000';

/**
 * Nexmark q5 (hot items): bids per auction on sliding windows of 10 s every `slide`, then the auction
 * with the most bids per window: a tumbling window of `slide` keyed by window end over the first
 * step's results (which carry the timestamp `end - 1`, so each falls in the tumbling window of its end).
 */
export function q5(p: Pipeline, bids: Source<NexmarkBid>, slide: Duration, sink: Sink<unknown>, keys: Q5Keys = 'auction'): void {
  p.source(bids, { timestamp: (b) => b.dateTime })
    .keyBy(keys === 'auction' ? (b) => b.auction : (b) => b.auction % 1000)
    .window(windows.sliding({ size: '10s', slide }))
    .aggregate(agg.count(), { name: 'bids-per-auction' })
    .keyBy((r) => r.end)
    .window(windows.tumbling(slide))
    .reduce((a, b) => (b.value > a.value ? b : a), { name: 'hot-item' })
    .sink(sink);
}

/** The slides of the q5 sweeps, widest first. */
export const SWEEP_SLIDES = ['2s', '1s', '500ms', '200ms', '100ms'];

/** Runs q5 once per slide of {@link SWEEP_SLIDES}, each in its own process, keyed as `keys` says. */
export async function q5SlideSweep(name: string, keys: Q5Keys, events: { full: number; quick: number }): Promise<void> {
  await runScenario({
    name,
    events,
    variants: SWEEP_SLIDES.map((slide) => ({ slide })),
    build(p, { events: n, wrap, sink, args }) {
      q5(p, wrap(sources.nexmark({ kinds: ['bid'], events: n, eventsPerSecond: Q5_EVENTS_PER_SECOND })), (args.slide ?? '2s') as Duration, sink, keys);
    },
    config: (args) => ({
      query: `bids | keyBy(${keys}) | sliding(10s, ${args.slide ?? '2s'}) count | keyBy(end) | tumbling(${args.slide ?? '2s'}) max`,
      source: 'nexmark bids',
      eventTimeRate: Q5_EVENTS_PER_SECOND,
      slide: args.slide ?? '2s',
    }),
  });
}

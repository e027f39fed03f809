import { WeirError } from '../../errors.js';
import type { Source } from '../source.js';
import { NexmarkGenerator, type NexmarkOptions } from './nexmark-generator.js';
import type { NexmarkEventOf, NexmarkKind } from './nexmark-model.js';

/** The Nexmark source: a {@link Source} whose `poll` is synchronous. */
export interface NexmarkSource<T> extends Source<T> {
  poll(max: number): readonly T[] | null;
}

/**
 * A synthetic Nexmark source (persons, auctions and bids of an auction site, 1 : 3 : 46), for
 * benchmarks and demos. Deterministic per seed and synchronous (no promise per batch), so it measures
 * the engine, not the source. Event time is `dateTime`; with `kinds` the element type narrows.
 *
 * @example
 * p.source(sources.nexmark({ kinds: ['bid'], events: 10_000_000 }), { timestamp: b => b.dateTime })
 *  .keyBy(b => b.auction)
 *  .window(windows.sliding({ size: '10s', slide: '2s' }))
 *  .aggregate(agg.count())
 */
export function nexmarkSource<K extends NexmarkKind = NexmarkKind>(opts: NexmarkOptions<K> & { name?: string } = {}): NexmarkSource<NexmarkEventOf<K>> {
  let gen = new NexmarkGenerator<K>(opts);
  return {
    name: opts.name ?? 'nexmark',
    poll(max: number): readonly NexmarkEventOf<K>[] | null {
      if (gen.done) return null;
      return gen.next(max);
    },
    savePosition: () => gen.count,
    /** Resumes after `position` events: regenerates and drops them (the generator runs at ~14M events/s). */
    seek(position: unknown) {
      if (typeof position !== 'number' || !(position >= 0)) throw new WeirError('WEIR_INVALID_ARGUMENT', `nexmark: cannot resume from ${JSON.stringify(position)}`);
      gen = new NexmarkGenerator<K>(opts);
      for (let left = position; left > 0; ) left -= gen.next(Math.min(left, 65_536)).length || left;
    },
  };
}

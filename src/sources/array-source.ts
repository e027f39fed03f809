import { WeirError } from '../errors.js';
import type { Source } from './source.js';

/**
 * A bounded source over an array, read in slices (the array is not copied).
 * @example p.source(sources.array([{ card: 'a', amount: 3, ts: 0 }]), { timestamp: e => e.ts })
 */
export function arraySource<T>(items: readonly T[], opts: { name?: string } = {}): Source<T> {
  let pos = 0;
  return {
    name: opts.name ?? `array(${items.length})`,
    poll(max: number): readonly T[] | null {
      if (pos >= items.length) return null;
      const end = Math.min(items.length, pos + max);
      const batch = items.slice(pos, end);
      pos = end;
      return batch;
    },
    savePosition: () => pos,
    seek(position: unknown) {
      if (typeof position !== 'number' || !(position >= 0)) throw new WeirError('WEIR_INVALID_ARGUMENT', `array source: cannot resume from ${JSON.stringify(position)}`);
      pos = position;
    },
  };
}

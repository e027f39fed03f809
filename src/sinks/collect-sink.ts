import type { Sink } from './sink.js';

/**
 * Pushes every record into `into` (tests, small jobs).
 * @example const out: WindowResult<string, number>[] = []; stream.sink(sinks.collect(out));
 */
export function collectSink<T>(into: T[], opts: { name?: string } = {}): Sink<T> {
  return {
    name: opts.name ?? 'collect',
    write(items: readonly T[]): void {
      for (let i = 0; i < items.length; i++) into.push(items[i]);
    },
  };
}

import type { Sink } from './sink.js';

/** Options of {@link consoleSink}. */
export interface ConsoleSinkOptions<T> {
  name?: string;
  /** How to print a record (default JSON, one per line). */
  format?: (record: T) => string;
  /** Where to (default process.stdout). */
  stream?: NodeJS.WritableStream;
}

/**
 * Prints records, one line each; waits for the stream to drain when it is full (backpressure).
 * @example stream.sink(sinks.console({ format: r => `${r.key}: ${r.value}` }))
 */
export function consoleSink<T>(opts: ConsoleSinkOptions<T> = {}): Sink<T> {
  const format = opts.format ?? ((r: T) => JSON.stringify(r));
  const out = opts.stream ?? process.stdout;
  return {
    name: opts.name ?? 'console',
    write(items: readonly T[]): void | Promise<void> {
      let text = '';
      for (let i = 0; i < items.length; i++) text += `${format(items[i])}\n`;
      if (out.write(text)) return;
      return new Promise<void>((resolve) => out.once('drain', resolve));
    },
  };
}

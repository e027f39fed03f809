import { WeirError } from '../errors.js';

/**
 * A batch as JSONL text: one line per record (`format`, default `JSON.stringify`), each ending in a
 * line feed. A `format` that returns something other than a string fails with `WEIR_SINK_FAILED`,
 * naming `step` and `file`.
 * @example jsonLines([{ a: 1 }, { a: 2 }], undefined, 'out', 'out.jsonl') // '{"a":1}\n{"a":2}\n'
 */
export function jsonLines<T>(items: readonly T[], format: ((record: T) => string) | undefined, step: string, file: string): string {
  let text = '';
  for (let i = 0; i < items.length; i++) {
    const line = format === undefined ? JSON.stringify(items[i]) : format(items[i]);
    if (typeof line !== 'string') {
      const by = format === undefined ? 'JSON.stringify' : 'format';
      throw new WeirError('WEIR_SINK_FAILED', `${by} returned ${typeof line}, not a string, for a record of ${file}`, { step, record: items[i] });
    }
    text += `${line}\n`;
  }
  return text;
}

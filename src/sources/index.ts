import { arraySource } from './array-source.js';
import { generatorSource } from './generator-source.js';
import { iterableSource } from './iterable-source.js';
import { fileSource } from './file-source.js';
import { jsonlSource } from './jsonl-source.js';
import { kafkaSource } from './kafka-source.js';
import { nexmarkSource } from './nexmark/nexmark-source.js';

/**
 * Built-in sources.
 * @example p.source(sources.array(events), { timestamp: e => e.ts })
 */
export const sources = {
  array: arraySource,
  iterable: iterableSource,
  generator: generatorSource,
  nexmark: nexmarkSource,
  jsonl: jsonlSource,
  file: fileSource,
  kafka: kafkaSource,
};

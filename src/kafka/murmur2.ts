/**
 * Kafka's default partitioner, for keyed records: partition = `murmur2(key bytes) & 0x7fffffff`
 * modulo the partition count (Austin Appleby's MurmurHash2, 32-bit, as Kafka's Java client
 * `Utils.murmur2` computes it: seed 0x9747b28c, little-endian 4-byte blocks). weir uses it to find
 * the partition a key's state belongs to when state moves with partitions between processes.
 */

const SEED = 0x9747b28c;
const M = 0x5bd1e995;
const R = 24;

/** MurmurHash2 of `bytes` as a signed 32-bit integer (as Java's). */
export function murmur2(bytes: Uint8Array): number {
  const length = bytes.length;
  let h = (SEED ^ length) | 0;
  const blocks = length & ~3;
  for (let i = 0; i < blocks; i += 4) {
    let k = bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24);
    k = Math.imul(k, M);
    k ^= k >>> R;
    k = Math.imul(k, M);
    h = Math.imul(h, M) ^ k;
  }
  const tail = length & 3;
  if (tail === 3) h ^= bytes[blocks + 2] << 16;
  if (tail >= 2) h ^= bytes[blocks + 1] << 8;
  if (tail >= 1) {
    h ^= bytes[blocks];
    h = Math.imul(h, M);
  }
  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h | 0;
}

/** The bytes a state key is partitioned by: a string as UTF-8, a number as its decimal string, anything else as JSON. */
export function keyBytesOf(key: unknown): Uint8Array {
  const text = typeof key === 'string' ? key : typeof key === 'number' || typeof key === 'bigint' ? String(key) : JSON.stringify(key);
  return Buffer.from(text ?? 'null', 'utf8');
}

/**
 * The partition Kafka's default partitioner gives a record with this key (a string key as its UTF-8
 * bytes, a number as its decimal string).
 * @example kafkaPartitionOf('card-42', 4) // the same partition `producer.send({ key: 'card-42' })` picks
 */
export function kafkaPartitionOf(key: unknown, partitions: number): number {
  return (murmur2(keyBytesOf(key)) & 0x7fffffff) % partitions;
}

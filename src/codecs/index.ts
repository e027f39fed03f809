import { avroCodec } from './avro-codec.js';
import { bytesCodec, jsonCodec, stringCodec } from './json-codec.js';
import { protobufCodec } from './protobuf-codec.js';
import { memorySchemaRegistry } from './schema-registry.js';

export { CodecError, type Codec, type CodecDirection } from './codec.js';
export type { JsonCodecOptions, JsonValidation, JsonFieldType } from './json-codec.js';
export type { AvroCodecOptions, AvroSchema, AvroType } from './avro-codec.js';
export type { ProtobufCodecOptions, ProtobufType, ProtobufRoot } from './protobuf-codec.js';
export { MemorySchemaRegistry, type SchemaRegistry, type SchemaDefinition } from './schema-registry.js';

/**
 * Built-in codecs (bytes ↔ records) for Kafka and file sources and sinks.
 * @example
 * p.source(sources.file<Txn>('txns.bin', { codec: codecs.avro<Txn>(txnSchema), framing: 'length-prefixed' }))
 * @example
 * sinks.file<Order>('orders.pb', { codec: codecs.protobuf<Order>({ files: 'shop.proto', type: 'shop.Order' }) })
 */
export const codecs = {
  /** UTF-8 JSON, optionally validated. @example codecs.json<Txn>({ fields: { id: 'integer', amount: 'number' } }) */
  json: jsonCodec,
  /** UTF-8 strings as they are. @example codecs.string() */
  string: stringCodec,
  /** Raw bytes (the identity). @example codecs.bytes() */
  bytes: bytesCodec,
  /** Avro (avsc), Confluent wire format, schema evolution. @example codecs.avro<User>(userSchema) */
  avro: avroCodec,
  /** Protocol Buffers (protobufjs). @example codecs.protobuf<Order>({ files: 'shop.proto', type: 'shop.Order' }) */
  protobuf: protobufCodec,
  /** Schema registries for the Avro codec. */
  schemaRegistry: {
    /**
     * The process-wide in-memory registry, or a new one with `{ isolated: true }`.
     * @example codecs.schemaRegistry.memory({ isolated: true })
     */
    memory: memorySchemaRegistry,
  },
};

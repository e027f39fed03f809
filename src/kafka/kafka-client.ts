import type { Kafka, KafkaConfig, LogEntry } from 'kafkajs';
import type { Logger } from 'pino';
import { WeirError, messageOf } from '../errors.js';

/**
 * The Kafka client weir talks to: the part of the KafkaJS API it uses. kafkajs is the default; any
 * client with the same API can be passed instead, e.g. @confluentinc/kafka-javascript's
 * KafkaJS-compatible `new KafkaJS.Kafka({ kafkaJS: { brokers } })` (librdkafka, with KIP-447 fencing).
 */
export type KafkaClient = Pick<Kafka, 'consumer' | 'producer' | 'admin'>;

/** Where a Kafka source or sink connects: `brokers` (kafkajs is created for you), or a `client` of your own. */
export interface KafkaConnection {
  /** Bootstrap brokers, `host:port`. */
  brokers?: readonly string[];
  /** The client id (default `weir`). */
  clientId?: string;
  /** A client of your own (TLS, SASL, another library): `brokers` and `clientId` are then not used. */
  client?: KafkaClient;
  /** More kafkajs options (ssl, sasl, connectionTimeout, retry, ...) when weir creates the client. */
  kafkaJs?: Omit<KafkaConfig, 'brokers' | 'clientId' | 'logCreator' | 'logLevel'>;
}

/** The client of a connection: the given one, or kafkajs on `brokers`, logging through pino. */
export async function kafkaClientOf(conn: KafkaConnection, logger: Logger, step: string): Promise<KafkaClient> {
  if (conn.client) return conn.client;
  if (!conn.brokers || conn.brokers.length === 0) throw new WeirError('WEIR_INVALID_ARGUMENT', 'kafka: give `brokers` (host:port list) or a `client`', { step });
  let mod: typeof import('kafkajs');
  try {
    mod = await import('kafkajs');
  } catch (e) {
    throw new WeirError('WEIR_INVALID_ARGUMENT', `kafka: kafkajs cannot be loaded (${messageOf(e)}); reinstall weir or pass a \`client\``, { step, cause: e });
  }
  const { Kafka, logLevel } = mod;
  const toPino = (level: number): 'error' | 'warn' | 'info' | 'debug' => (level === logLevel.ERROR ? 'error' : level === logLevel.WARN ? 'warn' : level === logLevel.INFO ? 'info' : 'debug');
  return new Kafka({
    clientId: conn.clientId ?? 'weir',
    brokers: [...conn.brokers],
    ...conn.kafkaJs,
    logLevel: logLevel.WARN,
    logCreator:
      () =>
      ({ namespace, level, log }: LogEntry) => {
        const { message, timestamp: _t, ...extra } = log;
        logger[toPino(level)]({ kafkajs: namespace, ...extra }, message);
      },
  });
}

import { collectSink } from './collect-sink.js';
import { consoleSink } from './console-sink.js';
import { fileSink } from './file-sink.js';
import { jsonlSink } from './jsonl-sink.js';
import { kafkaDeadLetterSink, kafkaSink } from './kafka-sink.js';
import { postgresSink } from './postgres-sink.js';

/**
 * Built-in sinks.
 * @example stream.sink(sinks.collect(out))
 */
export const sinks = {
  collect: collectSink,
  console: consoleSink,
  jsonl: jsonlSink,
  file: fileSink,
  postgres: postgresSink,
  kafka: kafkaSink,
  kafkaDeadLetters: kafkaDeadLetterSink,
};

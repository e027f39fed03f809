/**
 * weir — an embeddable streaming dataflow engine for Node.js.
 * @example
 * import { Pipeline, sources, sinks, windows, agg, watermarks } from 'weir';
 */
export { Pipeline, type PipelineOptions, type SourceOptions, type RunResult, type CheckpointOptions, type WorkerOptions, type StateStoreOptions, type StateBackendKind } from './pipeline.js';
export type { CheckpointStorage, StoredCheckpoint, CheckpointStats } from './checkpoint/checkpoint-coordinator.js';
export { MemoryCheckpointStorage } from './checkpoint/memory-checkpoint-store.js';
export { Stream, KeyedStream, WindowedStream, type StepOptions, type KeyValue } from './stream.js';
export { sources } from './sources/index.js';
export type { Source, SourceContext } from './sources/source.js';
export type { GeneratorOptions } from './sources/generator-source.js';
export type { JsonlSource, JsonlSourceOptions, JsonlRawLine } from './sources/jsonl-source.js';
export type { KafkaRecord, KafkaSourceOptions, KafkaStartFrom, KafkaPosition, KafkaDecoder } from './sources/kafka-source.js';
export type { KafkaClient, KafkaConnection } from './kafka/kafka-client.js';
export { kafkaChangelog, KafkaChangelogStorage, type KafkaChangelogOptions } from './kafka/kafka-changelog-storage.js';
export { kafkaPartitionOf } from './kafka/murmur2.js';
export type { ThroughOptions } from './kafka/repartition.js';
export type { KafkaSinkOptions, KafkaCommitHandle, KafkaEncoder, KafkaDeadLetterOptions } from './sinks/kafka-sink.js';
export { Random } from './sources/random.js';
export { NexmarkGenerator, type NexmarkOptions } from './sources/nexmark/nexmark-generator.js';
export type { NexmarkSource } from './sources/nexmark/nexmark-source.js';
export type { NexmarkEvent, NexmarkEventOf, NexmarkKind, NexmarkPerson, NexmarkAuction, NexmarkBid } from './sources/nexmark/nexmark-model.js';
export { sinks } from './sinks/index.js';
export type { Sink, SinkContext, DeadLetter } from './sinks/sink.js';
export type { JsonlSinkOptions } from './sinks/jsonl-sink.js';
export { isTransactional, type TransactionalSink, type CommitHandle, type JsonValue } from './sinks/transactional-sink.js';
export type { JsonlCommitHandle } from './sinks/transactional-jsonl-sink.js';
export type { PostgresSinkOptions, PostgresSinkCommonOptions, PostgresRowMapping, PostgresCommitHandle, ColumnOf } from './sinks/postgres-sink.js';
export { windows, type WindowAssigner, type TumblingWindows, type SlidingWindows, type SessionWindows, type WindowResult, type WindowInfo, type AlignedWindowOptions } from './windows/window-assigner.js';
export { agg, type Aggregator, type ReduceAcc } from './windows/aggregator.js';
export { watermarks, type WatermarkStrategy, type WatermarkGenerator, type WatermarkOptions } from './time/watermark-strategy.js';
export { toMillis, type Duration } from './time/duration.js';
export { systemClock, ManualClock, type Clock } from './time/clock.js';
export {
  state,
  type StateOptions,
  type StateTtl,
  type KeyedProcessFunction,
  type KeyedContext,
  type Collector,
  type TimerService,
  type ValueState,
  type MapState,
  type ListState,
  type StateSpec,
  type StateHandles,
  type ValueDecl,
  type MapDecl,
  type ListDecl,
} from './operators/keyed-process-function.js';
export { WeirError, ERROR_CODES, type ErrorCode, type ErrorDomain, type WeirErrorOptions } from './errors.js';
export type { MetricSample } from './observability/metrics.js';
export type { TimestampFn } from './runtime/source-node.js';
export { ml } from './ml/index.js';
export { ModelRef, TfjsModel, FeatureBatch, type ScoringModel, type ModelOutput, type FnModelOptions, type ScoreBatchResult, type ModelRefOptions, type ModelSource, type TfjsLoadOptions, type MlBackend, type BackendOptions, type TfRuntime, type Tf, type BreakerState, type ScoreOptions, type ScoreFeatures, type ScoreFallback, type ScoreBreakerOptions, type Scored, type ScoreModel, type NumericField } from './ml/scoring/index.js';
export type * from './ml/stats/index.js';
export type { DriftReport, KsDriftReport, PsiDriftReport, KeyedDriftReport, DriftLevel, DriftSpec, DriftOptions, KsDriftOptions, PsiDriftOptions, DriftStepOptions, DriftWindow, DriftReference, FeatureSelector, FeatureRecord } from './ml/drift/index.js';
export {
  codecs,
  CodecError,
  MemorySchemaRegistry,
  type Codec,
  type CodecDirection,
  type SchemaRegistry,
  type SchemaDefinition,
  type JsonCodecOptions,
  type JsonValidation,
  type JsonFieldType,
  type AvroCodecOptions,
  type AvroSchema,
  type AvroType,
  type ProtobufCodecOptions,
  type ProtobufType,
  type ProtobufRoot,
} from './codecs/index.js';
export type { FileSource, FileSourceOptions, FileRawRecord, FileFraming, FilePosition } from './sources/file-source.js';
export type { FileSinkOptions } from './sinks/file-sink.js';

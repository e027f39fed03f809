import type { OperatorSnapshot, StateEntry } from '../checkpoint/snapshot.js';
import type { MetricSample } from '../observability/metrics.js';

/**
 * The messages between the main thread and the worker threads of a job with `parallelism > 1`. One
 * port per worker; each side handles its messages in order, which is what makes a checkpoint barrier
 * work: a worker sees every batch sent before a barrier before the barrier itself.
 */

/** What a worker is started with (`workerData`). */
export interface WorkerData {
  readonly weir: 1;
  /** The module (a file URL) whose export builds the same pipeline, and the export's name. */
  readonly module: string;
  readonly export: string;
  /** Passed to the export (structured-cloned). */
  readonly args: unknown;
  readonly job: string;
  readonly index: number;
  readonly parallelism: number;
  readonly maxParallelism: number;
  /** The main thread's plan shape: the worker checks it built the same one. */
  readonly shape: string;
  readonly checkpointing: boolean;
}

/** Main thread → worker. */
export type ToWorker =
  | { readonly t: 'restore'; readonly operators: Record<string, { entries: StateEntry[]; meta: unknown; watermarks: OperatorSnapshot['watermarks'] }> }
  | { readonly t: 'batch'; readonly node: string; readonly port: number; readonly items: unknown[]; readonly ts: number[] }
  | { readonly t: 'wm'; readonly node: string; readonly port: number; readonly wm: number }
  | { readonly t: 'idle'; readonly node: string; readonly port: number; readonly idle: boolean }
  | { readonly t: 'barrier'; readonly id: number }
  | { readonly t: 'end' }
  /** The job is over: release resources (spill stores), then answer `closed`. */
  | { readonly t: 'close' };

/** Records a worker produced for one sink (by the sink's step name). */
export type SinkBatch = [sink: string, items: readonly unknown[], ts: readonly number[]];

/** An error as it crosses threads. */
export interface WireError {
  readonly code: string | undefined;
  readonly message: string;
  readonly step: string | undefined;
  readonly record: unknown;
  readonly stack: string | undefined;
}

/** Worker → main thread. */
export type FromWorker =
  | { readonly t: 'ready' }
  | { readonly t: 'restored' }
  /** Output for the sinks, and how many `batch` messages this answers (flow control). */
  | { readonly t: 'out'; readonly batches: SinkBatch[]; readonly ack: number }
  | { readonly t: 'snapshot'; readonly id: number; readonly operators: Record<string, OperatorSnapshot>; readonly metrics: MetricSample[] }
  | { readonly t: 'ended'; readonly metrics: MetricSample[] }
  | { readonly t: 'closed' }
  | { readonly t: 'failed'; readonly error: WireError };

import { WeirError } from '../../errors.js';
import type { Sink } from '../../sinks/sink.js';
import { toMillis, type Duration } from '../../time/duration.js';
import { toModelRef, type ModelRef } from './model-ref.js';
import type { ScoringModel } from './scoring-model.js';

/** The fields of `T` that hold numbers (optional ones included): what `features` may name. */
export type NumericField<T> = { [K in keyof T]-?: NonNullable<T[K]> extends number ? K : never }[keyof T] & string;

/**
 * How a record becomes a row of features: the names of numeric fields (read in that order, straight
 * into the batch's `Float32Array`), or a function returning the row (`number[]`, `Float32Array`, ...).
 */
export type ScoreFeatures<T> = readonly NumericField<T>[] | ((record: T) => ArrayLike<number>);

/**
 * What records get while the model cannot score them (a failed call, the breaker open, no model
 * loaded):
 * - `'dead-letter'` (the default): each record goes to the source's error policy as a
 *   `WEIR_MODEL_FAILED` dead letter (with `onError: 'fail'`, the job fails instead);
 * - `{ score, version? }`: the record goes on with this score, and `version` (default `'fallback'`)
 *   in its version field;
 * - `{ sideOutput: sink }`: the record itself, unscored, goes to `sink`.
 */
export type ScoreFallback<T, S> = 'dead-letter' | { readonly score: S; readonly version?: string } | { readonly sideOutput: Sink<T> };

/** Options of the circuit breaker around the model. */
export interface ScoreBreakerOptions {
  /** Consecutive failed model calls that open it (default 5). */
  failures?: number;
  /** How long it stays open before a trial batch (default `'10s'`). */
  coolDown?: Duration;
}

/**
 * Options of `stream.score(model, opts)`.
 *
 * @example
 * stream.score(model, {
 *   features: ['amount', 'velocity', 'hour'],   // or: t => [t.amount, Math.log1p(t.count)]
 *   output: 'fraud',                           // the field added (default 'score')
 *   batchSize: 256, maxLatency: '5ms',
 *   fallback: { score: 0 },                    // or { sideOutput: sink } or 'dead-letter'
 * })
 */
export interface ScoreOptions<T, O extends string, S, V extends string> {
  /** The row of features of each record (see {@link ScoreFeatures}). */
  features: ScoreFeatures<T>;
  /** The field that receives the score (default `'score'`). */
  output?: O;
  /** The field that receives the version of the model that scored the record (default `'modelVersion'`). */
  versionField?: V;
  /** Records per model call, at most (default 256). */
  batchSize?: number;
  /**
   * How long a batch smaller than `batchSize` may wait for more records before it is scored anyway
   * (default 0: score what is there; batches that queue up behind a running model call are still
   * scored together). A checkpoint or the end of the input never waits.
   */
  maxLatency?: Duration;
  /** What records get while the model cannot score them (default `'dead-letter'`). */
  fallback?: ScoreFallback<T, S>;
  /** The circuit breaker around the model calls. */
  breaker?: ScoreBreakerOptions;
  /** The step's name (logs, metrics, errors, dead letters; default `score#id`). */
  name?: string;
}

/** A record after `score`: `T` with the score in field `O` and the model version in field `V`. */
export type Scored<T, O extends string, S, V extends string> = Omit<T, O | V> & { [K in O]: S } & { [K in V]: string };

/** What the model of a `score` step may be. */
export type ScoreModel<S> = ScoringModel<S> | ModelRef<S> | Promise<ScoringModel<S>>;

/** @internal The fallback, normalised. */
export type FallbackSpec =
  | { readonly kind: 'dead-letter' }
  | { readonly kind: 'score'; readonly score: unknown; readonly version: string }
  | { readonly kind: 'side-output'; readonly sink: Sink<unknown> };

/** @internal A `score` step as the plan holds it: options checked and normalised. */
export interface ScoreSpec {
  readonly model: ModelRef<unknown>;
  /** Field names (null: `featureFn`). */
  readonly fields: readonly string[] | null;
  readonly featureFn: ((record: unknown) => ArrayLike<number>) | null;
  readonly output: string;
  readonly versionField: string;
  readonly batchSize: number;
  readonly maxLatencyMs: number;
  readonly fallback: FallbackSpec;
  readonly breakerFailures: number;
  readonly coolDownMs: number;
}

const DEFAULT_BATCH = 256;

/** @internal Checks a `score` step's options (errors name the option) and freezes them. */
export function scoreSpec(model: ScoreModel<unknown>, opts: ScoreOptions<unknown, string, unknown, string>): ScoreSpec {
  const bad = (msg: string): WeirError => new WeirError('WEIR_INVALID_ARGUMENT', `score: ${msg}`, opts?.name === undefined ? {} : { step: opts.name });
  if (opts === null || typeof opts !== 'object') throw bad('options { features, ... } are required');
  const ref = toModelRef(model);
  const f = opts.features;
  let fields: readonly string[] | null = null;
  let featureFn: ((record: unknown) => ArrayLike<number>) | null = null;
  if (typeof f === 'function') featureFn = f;
  else if (Array.isArray(f)) {
    if (f.length === 0) throw bad('features: name at least one field');
    for (const name of f) if (typeof name !== 'string' || name === '') throw bad(`features: ${JSON.stringify(name)} is not a field name`);
    if (new Set(f).size !== f.length) throw bad('features: a field is named twice');
    fields = Object.freeze([...f]);
  } else throw bad('features must be a list of numeric field names or a function record => number[]');
  const output = opts.output ?? 'score';
  const versionField = opts.versionField ?? 'modelVersion';
  if (typeof output !== 'string' || output === '') throw bad('output must be a non-empty field name');
  if (typeof versionField !== 'string' || versionField === '') throw bad('versionField must be a non-empty field name');
  if (output === versionField) throw bad(`output and versionField are both ${JSON.stringify(output)}`);
  const batchSize = opts.batchSize ?? DEFAULT_BATCH;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw bad(`batchSize must be a positive integer, got ${batchSize}`);
  const maxLatencyMs = opts.maxLatency === undefined ? 0 : toMillis(opts.maxLatency, 'score maxLatency');
  const failures = opts.breaker?.failures ?? 5;
  if (!Number.isInteger(failures) || failures < 1) throw bad(`breaker.failures must be a positive integer, got ${failures}`);
  const coolDownMs = opts.breaker?.coolDown === undefined ? 10_000 : toMillis(opts.breaker.coolDown, 'score breaker.coolDown');
  return Object.freeze({ model: ref, fields, featureFn, output, versionField, batchSize, maxLatencyMs, fallback: fallbackSpec(opts.fallback, bad), breakerFailures: failures, coolDownMs });
}

function fallbackSpec(fb: ScoreFallback<unknown, unknown> | undefined, bad: (m: string) => WeirError): FallbackSpec {
  if (fb === undefined || fb === 'dead-letter') return { kind: 'dead-letter' };
  if (fb !== null && typeof fb === 'object') {
    if ('sideOutput' in fb) {
      const sink = fb.sideOutput as Sink<unknown> | undefined;
      if (!sink || typeof sink.write !== 'function') throw bad('fallback.sideOutput must be a sink');
      return { kind: 'side-output', sink };
    }
    if ('score' in fb) {
      const version = fb.version ?? 'fallback';
      if (typeof version !== 'string') throw bad('fallback.version must be a string');
      return { kind: 'score', score: fb.score, version };
    }
  }
  throw bad("fallback must be 'dead-letter', { score } or { sideOutput: sink }");
}

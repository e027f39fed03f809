import type { FeatureBatch } from './feature-batch.js';

/**
 * What a model returns for a batch: `values` holds `rows × width` numbers, row-major (row `i`'s
 * scores are `values[i * width] .. values[i * width + width - 1]`).
 */
export interface ModelOutput {
  readonly values: ArrayLike<number>;
  readonly width: number;
}

/**
 * A batched scorer the `score` step calls: one `predict` per micro-batch, never one per record.
 * `ml.tfjs.load` / `ml.tfjs.fromModel` (TensorFlow.js) and `ml.fn` (any function) make one; the type
 * parameter `S` is what each record gets: `number` for a model with one output per row, `number[]`
 * for several.
 *
 * @example
 * const model = await ml.tfjs.load('./models/fraud');          // ScoringModel<number>
 * stream.score(model, { features: ['amount', 'velocity'], output: 'fraud' })
 */
export interface ScoringModel<S = number> {
  /** For logs and metrics (`weir_score_*{model}`). */
  readonly name: string;
  /** The model version every scored record carries (`modelVersion` by default). */
  readonly version: string;
  /** Features per row when the model declares it; rows of another length are rejected per record. */
  readonly inputWidth: number | undefined;
  /** Scores per row when known before the first call (1: each record gets a number). */
  readonly outputWidth: number | undefined;
  /** Scores `batch.rows` rows at once. May throw or reject: the step's circuit breaker counts it. */
  predict(batch: FeatureBatch): ModelOutput | Promise<ModelOutput>;
  /** Frees what the model holds (tensors); a `ModelRef` calls it on a model it replaced, once unused. */
  dispose(): void;
  /** Type marker only (never set): what each record gets. */
  readonly scoreType?: S;
}

/** A value that is a {@link ScoringModel} (duck-typed: `predict`, `dispose`, `version`). */
export function isScoringModel(x: unknown): x is ScoringModel<unknown> {
  const m = x as Partial<ScoringModel<unknown>> | null;
  return typeof m === 'object' && m !== null && typeof m.predict === 'function' && typeof m.dispose === 'function' && typeof m.version === 'string';
}

import { fileSystemIO } from './fs-io-handler.js';
import { ModelRef, type ModelRefOptions, type ModelSource } from './model-ref.js';
import { resolveBackend } from './tfjs-backend.js';
import { load, save } from './tfjs-model.js';

export { fn, type FnModelOptions, type ScoreBatchResult } from './fn-model.js';
export { FeatureBatch } from './feature-batch.js';
export { ModelRef, type ModelRefOptions, type ModelSource } from './model-ref.js';
export { TfjsModel, type TfjsLoadOptions } from './tfjs-model.js';
export type { ScoringModel, ModelOutput } from './scoring-model.js';
export type { MlBackend, BackendOptions, TfRuntime, Tf } from './tfjs-backend.js';
export type { BreakerState } from './circuit-breaker.js';
export type { ScoreOptions, ScoreFeatures, ScoreFallback, ScoreBreakerOptions, Scored, ScoreModel, NumericField } from './score-spec.js';

/**
 * TensorFlow.js models for `score`. The packages load on first use (a dynamic import: weir itself
 * does not pull TensorFlow.js in until you call one of these).
 *
 * - `load(pathOrModel, opts?)`: a LayersModel or GraphModel directory (model.json + shards) from local
 *   disk, or a `tf.LayersModel` in memory → a {@link TfjsModel}, warmed up;
 * - `save(model, dir)`: model.json + weights.bin, loadable with `load`;
 * - `resolve(opts?)`: the backend (tfjs-node-gpu → tfjs-node → wasm → cpu, or a forced one) and its
 *   `tf` namespace, e.g. to build and train a model;
 * - `fileSystemIO(path)`: the `tf.io.IOHandler` behind `load` and `save`.
 *
 * @example
 * const { tf } = await ml.tfjs.resolve();
 * const model = tf.sequential({ layers: [tf.layers.dense({ inputShape: [4], units: 1, activation: 'sigmoid' })] });
 * await ml.tfjs.save(model, './models/m');
 * const scoring = await ml.tfjs.load('./models/m');
 */
export const tfjs = { load, save, resolve: resolveBackend, fileSystemIO } as const;

/**
 * Swappable models.
 * @example
 * const ref = ml.models.ref(await ml.tfjs.load('./models/v1'));
 * stream.score(ref, { features: ['amount'] });
 * await ref.swap(ml.tfjs.load('./models/v2'));   // picked up at the next batch
 */
export const models = {
  /** A {@link ModelRef} on a model, a promise of one, or a loader function (which it can call again). */
  ref<S = number>(initial: ModelSource<S>, opts?: ModelRefOptions): ModelRef<S> {
    return new ModelRef<S>(initial, opts);
  },
} as const;

import path from 'node:path';
import type { GraphModel, LayersModel, Tensor } from '@tensorflow/tfjs';
import { WeirError, messageOf } from '../../errors.js';
import { FeatureBatch } from './feature-batch.js';
import { fileSystemIO, readArtifacts } from './fs-io-handler.js';
import type { ModelOutput, ScoringModel } from './scoring-model.js';
import { resolveBackend, scoringLogger, type BackendOptions, type Tf, type TfRuntime } from './tfjs-backend.js';

/** Options of {@link load}. */
export interface TfjsLoadOptions extends BackendOptions {
  /**
   * The version scored records carry. Default: `userDefinedMetadata.version` of model.json when
   * there is one, else the first 12 hex digits of a SHA-256 of model.json and its weights (for a
   * model in memory: its `name`).
   */
  version?: string;
  /** For logs and metrics (default: the model's directory name, or the in-memory model's name). */
  name?: string;
  /** One predict on a row of zeros at load, so the first real batch pays no set-up (default true). */
  warmUp?: boolean;
}

/**
 * A TensorFlow.js model (LayersModel or GraphModel) ready for `score`: one `[rows, width]` float32
 * tensor per batch, one `predict`, the output read back, every tensor disposed.
 */
export class TfjsModel<S = number> implements ScoringModel<S> {
  /** Set when a GraphModel needs `executeAsync` (control flow): then `predict` is asynchronous. */
  private async = false;
  private width: number | undefined;
  private disposed = false;
  declare readonly scoreType?: S;

  /** @internal use {@link load} */
  constructor(
    /** The TensorFlow.js model. */
    readonly model: LayersModel | GraphModel,
    /** `'layers-model'` or `'graph-model'`. */
    readonly format: 'layers-model' | 'graph-model',
    /** The backend it runs on. */
    readonly runtime: TfRuntime,
    readonly name: string,
    readonly version: string,
    readonly inputWidth: number | undefined,
    outputWidth: number | undefined,
  ) {
    this.width = outputWidth;
  }

  get outputWidth(): number | undefined {
    return this.width;
  }

  /** The TensorFlow.js namespace of its backend. */
  get tf(): Tf {
    return this.runtime.tf;
  }

  /**
   * Scores a batch: synchronous (`dataSync`) on the CPU-side backends, where reading back costs no
   * wait; asynchronous only for a GraphModel with control flow (`executeAsync`).
   */
  predict(batch: FeatureBatch): ModelOutput | Promise<ModelOutput> {
    if (this.disposed) throw new Error(`model ${this.name} ${this.version} was disposed`);
    if (this.async) return this.predictAsync(batch);
    const tf = this.tf;
    const model = this.model;
    const y = tf.tidy(() => {
      const x = tf.tensor2d(batch.data, [batch.rows, batch.width], 'float32');
      return firstOutput(model.predict(x) as Tensor | Tensor[] | Record<string, Tensor>);
    });
    try {
      return this.output(y, batch.rows, y.dataSync());
    } finally {
      y.dispose();
    }
  }

  private async predictAsync(batch: FeatureBatch): Promise<ModelOutput> {
    const tf = this.tf;
    const x = tf.tensor2d(batch.data, [batch.rows, batch.width], 'float32');
    let outs: Tensor[] = [];
    try {
      const r = (await (this.model as GraphModel).executeAsync(x)) as Tensor | Tensor[];
      outs = Array.isArray(r) ? r : [r];
      return this.output(outs[0], batch.rows, await outs[0].data());
    } finally {
      x.dispose();
      for (const t of outs) t.dispose();
    }
  }

  private output(y: Tensor, rows: number, values: ArrayLike<number>): ModelOutput {
    if (y.shape[0] !== rows) throw new Error(`model ${this.name} returned ${y.shape[0]} rows for ${rows}`);
    const width = rows === 0 ? (this.width ?? 1) : values.length / rows;
    this.width ??= width;
    return { values, width };
  }

  /** Frees the model's weights (a `ModelRef` does it for a model it replaced). */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.model.dispose();
  }

  /** @internal One predict on zeros; finds out whether a GraphModel needs `executeAsync`. */
  async warmUp(): Promise<void> {
    const width = this.inputWidth;
    if (width === undefined) return;
    const zeros = new FeatureBatch(new Float32Array(width), 1, width);
    try {
      await this.predict(zeros);
    } catch (e) {
      if (this.format !== 'graph-model' || !/executeAsync/.test(messageOf(e))) throw e;
      this.async = true;
      await this.predict(zeros);
    }
  }
}

/** The first output of a predict (the one `score` writes back); tidy disposes the others. */
function firstOutput(r: Tensor | Tensor[] | Record<string, Tensor>): Tensor {
  if (Array.isArray(r)) return r[0];
  if ((r as Tensor).dataId !== undefined) return r as Tensor;
  const keys = Object.keys(r).sort();
  return (r as Record<string, Tensor>)[keys[0]];
}

/**
 * Loads a TensorFlow.js model for `score`: a directory (or model.json path) holding a LayersModel or a
 * GraphModel (model.json + weight shards, read with weir's file-system handler: no `file://` or
 * tfjs-node needed), or a `tf.LayersModel` / `tf.GraphModel` already in memory. Resolves the backend
 * first (see {@link resolveBackend}) and runs one warm-up predict.
 *
 * @example
 * const model = await ml.tfjs.load('./models/fraud');                    // LayersModel or GraphModel
 * const forced = await ml.tfjs.load('./models/fraud', { backend: 'wasm', version: 'v7' });
 * const inMemory = await ml.tfjs.load(trainedModel, { version: 'candidate' });
 */
export async function load<S extends number | number[] = number>(source: string | LayersModel | GraphModel, opts: TfjsLoadOptions = {}): Promise<TfjsModel<S>> {
  const runtime = await resolveBackend(opts);
  const tf = runtime.tf;
  let model: LayersModel | GraphModel;
  let format: 'layers-model' | 'graph-model';
  let version = opts.version;
  let name = opts.name;
  if (typeof source === 'string') {
    const read = await readArtifacts(source);
    const handler = { load: async () => read.artifacts };
    try {
      model = read.format === 'graph-model' ? await tf.loadGraphModel(handler) : await tf.loadLayersModel(handler);
    } catch (e) {
      throw new WeirError('WEIR_MODEL_FAILED', `model load failed: ${read.jsonPath}: ${messageOf(e)}`, { cause: e });
    }
    format = read.format;
    const meta = read.artifacts.userDefinedMetadata?.version as unknown;
    version ??= typeof meta === 'string' || typeof meta === 'number' ? String(meta) : read.hash;
    name ??= path.basename(path.dirname(read.jsonPath));
  } else if (source !== null && typeof source === 'object' && typeof (source as LayersModel).predict === 'function') {
    model = source;
    format = 'execute' in source && 'executeAsync' in source && !('layers' in source) ? 'graph-model' : 'layers-model';
    name ??= (source as { name?: string }).name ?? 'model';
    version ??= name;
  } else {
    throw new WeirError('WEIR_INVALID_ARGUMENT', 'ml.tfjs.load: expected a model directory, a model.json path, or a tf.LayersModel / tf.GraphModel');
  }
  const inputs = model.inputs;
  if (inputs.length !== 1) {
    throw new WeirError('WEIR_MODEL_FAILED', `model load failed: ${name} has ${inputs.length} inputs; score feeds one [rows, features] tensor`);
  }
  const inShape = inputs[0].shape as readonly (number | null)[] | undefined;
  if (inShape !== undefined && inShape.length !== 2) {
    throw new WeirError('WEIR_MODEL_FAILED', `model load failed: ${name} takes input of shape [${inShape.join(', ')}]; score feeds one [rows, features] tensor`);
  }
  const inputWidth = positive(inShape?.[1]);
  const outShape = model.outputs[0]?.shape as readonly (number | null)[] | undefined;
  const outputWidth = outShape === undefined ? undefined : outShape.length === 1 ? 1 : outShape.length === 2 ? positive(outShape[1]) : undefined;
  const m = new TfjsModel<S>(model, format, runtime, name, version, inputWidth, outputWidth);
  if (opts.warmUp ?? true) {
    try {
      await m.warmUp();
    } catch (e) {
      if (typeof source === 'string') m.dispose();
      throw new WeirError('WEIR_MODEL_FAILED', `model load failed: ${name}: the warm-up predict failed: ${messageOf(e)}`, { cause: e });
    }
  }
  (opts.logger ?? scoringLogger()).info({ model: name, version, format, inputWidth, outputWidth: m.outputWidth, backend: runtime.backend, device: runtime.device }, 'model loaded');
  return m;
}

/**
 * Saves a model (a tf.LayersModel, a tf.GraphModel, or one from {@link load}) to a directory with
 * weir's file-system handler: `model.json` + `weights.bin`, loadable with {@link load} (or
 * `tf.loadLayersModel` with the same handler).
 *
 * @example
 * await model.fit(xs, ys, { epochs: 5 });
 * await ml.tfjs.save(model, './models/fraud');
 * const scoring = await ml.tfjs.load('./models/fraud');
 */
export async function save(model: LayersModel | GraphModel | TfjsModel<unknown>, dir: string): Promise<void> {
  const m = model instanceof TfjsModel ? model.model : model;
  try {
    await m.save(fileSystemIO(dir));
  } catch (e) {
    if (e instanceof WeirError) throw e;
    throw new WeirError('WEIR_MODEL_FAILED', `model save to ${dir} failed: ${messageOf(e)}`, { cause: e });
  }
}

function positive(n: number | null | undefined): number | undefined {
  return typeof n === 'number' && n > 0 ? n : undefined;
}

/**
 * The fraud model: a tiny MLP in TensorFlow.js, trained on the history's card windows, saved to disk.
 *
 *   6 features → standardize (frozen: the training mean and spread) → dense 16 relu → dense 8 relu → sigmoid
 *
 * The standardizing layer is part of the model, so the saved model takes raw feature rows and nobody
 * has to ship a scaler next to it. Training is deterministic: seeded initializers, a seeded shuffle
 * done here once, `shuffle: false` in `fit`.
 */
import { Random, ml } from 'weir';
import { FEATURE_NAMES, featureRow, type CardWindow } from './features.js';

export interface TrainReport {
  /** Training rows used: every fraud window and a sample of the others. */
  rows: number;
  positives: number;
  epochs: number;
  loss: number;
  ms: number;
  /** The backend it trained on (the one `score` uses too). */
  backend: string;
  package: string;
}

const EPOCHS = 25;
const NEGATIVES_PER_POSITIVE = 30;

/** Trains the model on labelled card windows and saves it into `dir` (model.json + weights.bin). */
export async function trainAndSave(windows: readonly CardWindow[], opts: { seed: number; dir: string }): Promise<TrainReport> {
  const t0 = performance.now();
  const { tf, backend, package: pkg } = await ml.tfjs.resolve();
  const rng = new Random(opts.seed);

  // Fraud is rare (under one window in a hundred): keep every fraud window and a random sample of
  // the others (training on all of them would take longer and teach little more).
  const positives = windows.filter((w) => w.fraudTxns > 0);
  const negatives = windows.filter((w) => w.fraudTxns === 0);
  const keep = Math.min(negatives.length, positives.length * NEGATIVES_PER_POSITIVE);
  shuffle(negatives, rng);
  const rows = shuffle([...positives, ...negatives.slice(0, keep)], rng);

  const width = FEATURE_NAMES.length;
  const x = new Float32Array(rows.length * width);
  const y = new Float32Array(rows.length);
  rows.forEach((w, i) => {
    x.set(featureRow(w), i * width);
    y[i] = w.fraudTxns > 0 ? 1 : 0;
  });
  const { mean, std } = moments(x, rows.length, width);

  const init = (seed: number) => tf.initializers.glorotUniform({ seed });
  const model = tf.sequential({
    name: 'fraud-mlp',
    layers: [
      // y = (x - mean) / std as a dense layer with a diagonal kernel, not trained.
      tf.layers.dense({
        inputShape: [width],
        units: width,
        trainable: false,
        name: 'standardize',
        weights: [tf.tensor2d(diag(std.map((s) => 1 / s)), [width, width]), tf.tensor1d(mean.map((m, j) => -m / std[j]))],
      }),
      tf.layers.dense({ units: 16, activation: 'relu', kernelInitializer: init(opts.seed + 1), name: 'hidden1' }),
      tf.layers.dense({ units: 8, activation: 'relu', kernelInitializer: init(opts.seed + 2), name: 'hidden2' }),
      tf.layers.dense({ units: 1, activation: 'sigmoid', kernelInitializer: init(opts.seed + 3), name: 'fraud' }),
    ],
  });
  model.compile({ optimizer: tf.train.adam(0.01), loss: 'binaryCrossentropy' });
  const xs = tf.tensor2d(x, [rows.length, width]);
  const ys = tf.tensor2d(y, [rows.length, 1]);
  const history = await model.fit(xs, ys, {
    epochs: EPOCHS,
    batchSize: 128,
    shuffle: false,
    verbose: 0,
  });
  xs.dispose();
  ys.dispose();

  model.setUserDefinedMetadata({ features: [...FEATURE_NAMES], trainedOn: `${rows.length} card windows` });
  await ml.tfjs.save(model, opts.dir);
  model.dispose();
  const loss = history.history.loss.at(-1) as number;
  return { rows: rows.length, positives: positives.length, epochs: EPOCHS, loss, ms: performance.now() - t0, backend, package: pkg };
}

function shuffle<T>(a: T[], rng: Random): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

function moments(x: Float32Array, rows: number, width: number): { mean: number[]; std: number[] } {
  const mean = new Array<number>(width).fill(0);
  const sq = new Array<number>(width).fill(0);
  for (let i = 0; i < rows; i++) for (let j = 0; j < width; j++) mean[j] += x[i * width + j] / rows;
  for (let i = 0; i < rows; i++) for (let j = 0; j < width; j++) sq[j] += (x[i * width + j] - mean[j]) ** 2 / rows;
  return { mean, std: sq.map((v) => Math.sqrt(v) || 1) };
}

function diag(d: number[]): number[] {
  const m = new Array<number>(d.length * d.length).fill(0);
  d.forEach((v, j) => (m[j * d.length + j] = v));
  return m;
}

/**
 * fraud-scoring: the job `npm start` runs. Card transactions in, fraud scores and drift reports out.
 *
 *   1. history: the first hour of a seeded stream of card transactions (examples/data) → per-card
 *      sliding-window features (5-minute windows every minute: count, total, mean, three largest
 *      amounts), labelled from the generator's fraud bursts;
 *   2. train a small TensorFlow.js MLP on them, save it to disk (model.json + weights.bin), load it
 *      back with `ml.tfjs.load`;
 *   3. the live job: the next transactions → the same features → `.score(model)` → alerts, and KS and
 *      PSI drift monitors on the features against the training data; amounts drift from the middle
 *      of the live stream on (prices up 50%): the monitors should say so, and only from there;
 *      checkpoints and exactly-once JSONL outputs; a progress line on stderr;
 *   4. a summary: scored records/s, alerts against the real frauds (precision, recall), drift reports.
 *
 *   node dist/examples/fraud-scoring/main.js [seed=42] [dir=.weir/fraud-scoring]
 *
 * Everything it writes goes to `dir` (emptied first): model/, checkpoints/, scores.jsonl,
 * alerts.jsonl, drift.jsonl. No network, no GPU needed: TensorFlow.js picks the best backend installed
 * (tfjs-node-gpu, tfjs-node, wasm, plain JS).
 */
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { Pipeline, ml, sinks, sources, watermarks } from 'weir';
import { history } from './data.js';
import { cardWindows, nonOverlapping, type CardWindow } from './features.js';
import { trainAndSave } from './model.js';
import { runLiveJob } from './pipeline.js';
import { printSummary } from './summary.js';

const SEED = Number(process.argv[2] ?? 42);
const DIR = path.resolve(process.argv[3] ?? '.weir/fraud-scoring');
const TRAIN_TXNS = 180_000; // one hour of event time (a transaction every ~20 ms)
const LIVE_TXNS = 300_000; // the next 100 minutes
const DRIFT_FACTOR = 1.5; // amounts x1.5 from the middle of the live stream on
const THRESHOLD = 0.5; // alert when the fraud score is at least this

for (const f of ['model', 'checkpoints', 'scores.jsonl', 'alerts.jsonl', 'drift.jsonl']) rmSync(path.join(DIR, f), { recursive: true, force: true });
mkdirSync(DIR, { recursive: true });
const started = performance.now();

// ---- 1. the history's card windows: the training data ----
const HISTORY_START = Date.UTC(2024, 2, 1, 9, 0, 0); // where examples/data's stream begins
const windows: CardWindow[] = [];
const past = { lastTs: -Infinity };
const h = new Pipeline({ name: 'fraud-training-data' });
const txns = h.source(sources.generator(history(past), { count: TRAIN_TXNS, seed: SEED }), {
  name: 'history',
  timestamp: (t) => t.ts,
  watermarks: watermarks.boundedOutOfOrderness('5s'),
});
cardWindows(txns, { from: HISTORY_START, name: 'card-windows' }).sink(sinks.collect(windows), { name: 'training-rows' });
await h.run();
// The last windows of the history hold only its last minutes: leave them out too.
const training = windows.filter((w) => w.end <= past.lastTs);

// ---- 2. train, save, load back ----
const say = (what: string) => process.stderr.write(`[fraud-scoring] ${what}\n`);
say(`${training.length.toLocaleString('en-US')} training windows; training the model...`);
const modelDir = path.join(DIR, 'model');
const trained = await trainAndSave(training, { seed: SEED, dir: modelDir });
const model = await ml.tfjs.load(modelDir); // model.json + weights.bin, from disk
say(`model saved to ${modelDir} and loaded back (version ${model.version}, ${model.runtime.backend} backend); scoring the live stream...`);

// ---- 3. the live job ----
const reference = training.filter(nonOverlapping); // what the drift monitors compare with
const live = await runLiveJob({
  seed: SEED,
  trainTxns: TRAIN_TXNS,
  liveTxns: LIVE_TXNS,
  driftFactor: DRIFT_FACTOR,
  // The first window that holds live transactions only: the live stream starts where the history ended.
  from: Math.floor(past.lastTs / 60_000 + 1) * 60_000,
  model,
  reference: { avgAmount: reference.map((w) => w.avgAmount), maxAmount: reference.map((w) => w.maxAmount) },
  threshold: THRESHOLD,
  dir: DIR,
});

// ---- 4. summary ----
printSummary({ seed: SEED, dir: DIR, training, trained, model, live, threshold: THRESHOLD, driftFactor: DRIFT_FACTOR, totalMs: performance.now() - started });

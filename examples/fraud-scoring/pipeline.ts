/**
 * The live job:
 *
 *   transactions ─ purchases ─ keyBy(card) ─ sliding 5m/1m ─ card windows ─┬─ score (tfjs MLP) ─┬─ scores.jsonl
 *                                                                          │                    └─ score >= threshold ─ alerts.jsonl
 *                                                                          ├─ drift: KS  avg amount vs training ─┬─ drift.jsonl
 *                                                                          └─ drift: PSI max amount vs training ─┘
 *
 * Checkpoints every 500 ms on LevelDB; the three JSONL files are exactly-once (their lines become
 * visible when the checkpoint that covers them commits), so a crash and restart would write each line
 * once. The live stream stops after a fixed count; a real one would not.
 */
import path from 'node:path';
import { Pipeline, ml, sinks, sources, watermarks, type DriftReport, type RunResult, type ScoringModel } from 'weir';
import { DRIFT_WINDOW_MS, live, type LiveInfo } from './data.js';
import { cardWindows, featureRow, nonOverlapping, type CardWindow } from './features.js';

/** A card window with its score and the version of the model that gave it. */
export type ScoredWindow = CardWindow & { fraudScore: number; modelVersion: string };

export interface Alert {
  card: string;
  windowEnd: number;
  fraudScore: number;
  modelVersion: string;
}

export interface LiveJobOptions {
  seed: number;
  trainTxns: number;
  liveTxns: number;
  driftFactor: number;
  /** Card windows starting before this are dropped (the live stream began inside them). */
  from: number;
  model: ScoringModel<number>;
  /** The training windows' features: the drift monitors' reference. */
  reference: { avgAmount: number[]; maxAmount: number[] };
  threshold: number;
  /** Where scores.jsonl, alerts.jsonl, drift.jsonl and checkpoints/ go. */
  dir: string;
}

export interface LiveJobResult {
  result: RunResult;
  scored: ScoredWindow[];
  drift: DriftReport[];
  info: LiveInfo;
  files: { scores: string; alerts: string; drift: string; checkpoints: string };
}

export async function runLiveJob(o: LiveJobOptions): Promise<LiveJobResult> {
  const files = {
    scores: path.join(o.dir, 'scores.jsonl'),
    alerts: path.join(o.dir, 'alerts.jsonl'),
    drift: path.join(o.dir, 'drift.jsonl'),
    checkpoints: path.join(o.dir, 'checkpoints'),
  };
  const info: LiveInfo = { driftAt: null };
  const scored: ScoredWindow[] = [];
  const drift: DriftReport[] = [];

  const p = new Pipeline({
    name: 'fraud-scoring',
    checkpoint: { dir: files.checkpoints, interval: '500ms' },
    progress: { interval: '500ms' },
  });

  const txns = p.source(sources.generator(live(o, info), { count: o.liveTxns, seed: o.seed }), {
    name: 'transactions',
    timestamp: (t) => t.ts,
    watermarks: watermarks.boundedOutOfOrderness('5s'), // up to 3 s out of order
  });
  const cards = cardWindows(txns, { from: o.from, name: 'card-windows' });

  // Score every card window, 256 at a time; the row is the same function the model was trained on.
  const scores = cards.score(o.model, { features: featureRow, output: 'fraudScore', batchSize: 256, name: 'fraud-model' });
  scores.sink(sinks.jsonl(files.scores, { exactlyOnce: true }), { name: 'scores' });
  scores.sink(sinks.collect(scored), { name: 'summary' });
  scores
    .filter((w) => w.fraudScore >= o.threshold, { name: 'alerts' })
    .map((w): Alert => ({ card: w.card, windowEnd: w.end, fraudScore: Math.round(w.fraudScore * 1e4) / 1e4, modelVersion: w.modelVersion }))
    .sink(sinks.jsonl(files.alerts, { exactlyOnce: true }), { name: 'alerts-out' });

  // Is the live data still what the model was trained on? Every 10 minutes of event time, compare
  // the card windows' features with the training windows': KS on the average amount, PSI on the
  // largest. KS assumes independent values, and overlapping windows share purchases: the monitors
  // take one window in five per card, the ones that do not overlap (the reference does the same).
  const window = DRIFT_WINDOW_MS;
  const sampled = cards.filter(nonOverlapping, { name: 'drift-sample' });
  const ks = sampled.drift(ml.ks({ feature: 'avgAmount', reference: o.reference.avgAmount, window, alpha: 1e-4 }), { name: 'ks-avg-amount' });
  const psi = sampled.drift(ml.psi({ feature: 'maxAmount', reference: o.reference.maxAmount, window, bins: 10 }), { name: 'psi-max-amount' });
  const reports = ks.union(psi);
  reports.sink(sinks.jsonl(files.drift, { exactlyOnce: true }), { name: 'drift-out' });
  reports.sink(sinks.collect(drift), { name: 'drift-summary' });

  const result = await p.run();
  return { result, scored, drift, info, files };
}

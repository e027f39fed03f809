/**
 * The summary the example prints at the end: what was trained, how fast the live job scored, how
 * the alerts compare with the generator's real frauds, and what the drift monitors said.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import type { DriftReport, MetricSample, TfjsModel } from 'weir';
import { DRIFT_WINDOW_MS } from './data.js';
import { FEATURE_NAMES, type CardWindow } from './features.js';
import type { TrainReport } from './model.js';
import type { LiveJobResult, ScoredWindow } from './pipeline.js';

export interface SummaryInput {
  seed: number;
  dir: string;
  training: readonly CardWindow[];
  trained: TrainReport;
  model: TfjsModel<number>;
  live: LiveJobResult;
  threshold: number;
  driftFactor: number;
  totalMs: number;
}

const n = (x: number) => x.toLocaleString('en-US');
const pct = (a: number, b: number) => (b === 0 ? 'n/a' : `${((100 * a) / b).toFixed(1)}%`);
const clock = (t: number) => new Date(t).toISOString().slice(11, 19);
const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const money = (x: number) => `$${x.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`.padStart(9);

function metric(ms: readonly MetricSample[], name: string, labels: Record<string, string> = {}): number {
  return ms.filter((m) => m.name === name && Object.entries(labels).every(([k, v]) => m.labels[k] === v)).reduce((s, m) => s + m.value, 0);
}

/** Alerts against the labels: true positives, alerts, fraud windows. */
function confusion(ws: readonly ScoredWindow[], threshold: number) {
  let alerts = 0;
  let hits = 0;
  let fraud = 0;
  for (const w of ws) {
    const alert = w.fraudScore >= threshold;
    if (alert) alerts++;
    if (w.fraudTxns > 0) {
      fraud++;
      if (alert) hits++;
    }
  }
  return { alerts, hits, fraud, line: `precision ${pct(hits, alerts)}, recall ${pct(hits, fraud)}` };
}

/** Fraud bursts: a card's fraud windows in a row (1 minute apart) are one burst; caught if one of them raised an alert. */
function bursts(ws: readonly ScoredWindow[], threshold: number): { total: number; caught: number } {
  const byCard = new Map<string, ScoredWindow[]>();
  for (const w of ws) {
    if (w.fraudTxns === 0) continue;
    const list = byCard.get(w.card);
    if (list === undefined) byCard.set(w.card, [w]);
    else list.push(w);
  }
  let total = 0;
  let caught = 0;
  for (const list of byCard.values()) {
    list.sort((a, b) => a.end - b.end);
    let prevEnd = -Infinity;
    let hit = false;
    for (const w of list) {
      if (w.end - prevEnd > 60_000) {
        // A new burst: count the one before it.
        if (hit) caught++;
        total++;
        hit = false;
      }
      hit ||= w.fraudScore >= threshold;
      prevEnd = w.end;
    }
    if (hit) caught++;
  }
  return { total, caught };
}

function lines(file: string): number {
  return readFileSync(file, 'utf8').split('\n').filter((l) => l.length > 0).length;
}

export function printSummary(s: SummaryInput): void {
  const { live, trained, model } = s;
  const ms = live.result.metrics;
  const runSecs = live.result.durationMs / 1000;
  const txnsIn = metric(ms, 'weir_records_in_total', { step: 'transactions' });
  const scoredCount = metric(ms, 'weir_score_records_total', { step: 'fraud-model' });
  const modelMs = metric(ms, 'weir_score_model_ms_total', { step: 'fraud-model' });
  const calls = metric(ms, 'weir_score_model_calls_total', { step: 'fraud-model' });
  const late = metric(ms, 'weir_late_records_total', { step: 'card-windows' });
  const checkpoints = metric(ms, 'weir_checkpoints_total');
  const driftAt = live.info.driftAt ?? Infinity;

  const all = confusion(live.scored, s.threshold);
  const before = confusion(live.scored.filter((w) => w.end <= driftAt), s.threshold);
  const after = confusion(live.scored.filter((w) => w.end > driftAt), s.threshold);
  const b = bursts(live.scored, s.threshold);
  const trainFraud = s.training.filter((w) => w.fraudTxns > 0).length;

  const modelFiles = readdirSync(path.join(s.dir, 'model')).sort();
  const rel = path.relative(process.cwd(), s.dir) || '.';
  const shown = rel.startsWith('..') ? s.dir : rel;

  const reports = [...live.drift].sort((x, y) => x.start - y.start || x.test.localeCompare(y.test));
  const flagged = reports.filter((r) => r.drifted);
  const perTest = (test: DriftReport['test'], label: string) => {
    const rs = reports.filter((r) => r.test === test);
    const first = rs.find((r) => r.drifted);
    return `    ${label.padEnd(16)}${n(rs.filter((r) => r.drifted).length)} of ${n(rs.length)} windows flagged, first ${first ? `${clock(first.start)}-${clock(first.end)}` : 'none'}`;
  };

  console.log(`
fraud-scoring (seed ${s.seed}): ${live.result.status}
  training data     ${n(s.training.length)} card windows from the first hour, ${n(trainFraud)} with fraud
  model             MLP ${FEATURE_NAMES.length}-16-8-1 (${FEATURE_NAMES.join(', ')}), trained on ${n(trained.rows)} windows, ${trained.epochs} epochs, loss ${trained.loss.toFixed(4)}
  model files       ${shown}/model: ${modelFiles.map((f) => `${f} (${n(statSync(path.join(s.dir, 'model', f)).size)} B)`).join(', ')}
  loaded back       version ${model.version} (${model.format}, ${model.inputWidth} features)
  backend           ${model.runtime.backend} (${model.runtime.package}) on ${model.runtime.device}
  transactions      ${n(txnsIn)} live (${n(late)} too late for their windows: offline terminals, dropped and counted)
  records scored    ${n(scoredCount)} card windows
  alerts            ${n(all.alerts)} (score >= ${s.threshold}), ${n(all.hits)} real fraud: ${all.line} (${n(all.fraud)} fraud windows)
    before drift    ${n(before.alerts)} alerts: ${before.line}
    after drift     ${n(after.alerts)} alerts: ${after.line}
  fraud bursts      ${n(b.caught)} of ${n(b.total)} caught
  drift injected    ${clock(driftAt)} (amounts x${s.driftFactor} from the middle of the live stream on)
  drift reports     ${n(reports.length)}: ${n(flagged.length)} flagged, ${n(flagged.filter((r) => r.start < driftAt).length)} before the injection
${perTest('ks', 'KS avg amount')}
${perTest('psi', 'PSI max amount')}
  outputs           ${shown}: scores.jsonl ${n(lines(live.files.scores))} lines, alerts.jsonl ${n(lines(live.files.alerts))}, drift.jsonl ${n(lines(live.files.drift))} (exactly once)
  throughput        ${n(Math.round(scoredCount / runSecs))} scored records/s, ${n(Math.round(txnsIn / runSecs))} transactions/s (live job ${secs(live.result.durationMs)}; the model alone: ${n(calls)} calls, ${modelMs.toFixed(0)} ms, ${n(Math.round(scoredCount / (modelMs / 1000)))} rows/s)
  run time          ${secs(s.totalMs)} (training ${secs(trained.ms)}), ${n(checkpoints)} checkpoints`);
  console.log(`\ndrift reports (${DRIFT_WINDOW_MS / 60_000}-minute windows of card windows, against the training windows):`);
  console.log('  window                 KS avg amount                PSI max amount');
  for (const start of [...new Set(reports.map((r) => r.start))]) {
    const ks = reports.find((r) => r.start === start && r.test === 'ks');
    const psi = reports.find((r) => r.start === start && r.test === 'psi');
    const k = ks?.test === 'ks' ? `D ${ks.statistic.toFixed(3)}  p ${ks.pValue.toExponential(1).padEnd(8)} ${ks.drifted ? 'DRIFT' : '     '}` : ''.padEnd(27);
    const p = psi?.test === 'psi' ? `${psi.psi.toFixed(3)} ${psi.level}` : '';
    console.log(`  ${clock(start)}-${clock((ks ?? psi)!.end)}${start >= driftAt ? ' *' : '  '}  ${k}   ${p}`);
  }
  console.log('  (* after the drift was injected)');

  const alert = (w: ScoredWindow) =>
    `  ${clock(w.start)}-${clock(w.end)}  ${w.card}  score ${w.fraudScore.toFixed(3)}  ${String(w.txns).padStart(2)} purchases, largest ${money(w.maxAmount)} ${money(w.secondAmount)} ${money(w.thirdAmount)}  ${w.fraudTxns > 0 ? `fraud (${w.fraudTxns})` : 'false alarm'}`;
  const alerts = live.scored.filter((w) => w.fraudScore >= s.threshold).sort((x, y) => x.end - y.end || x.card.localeCompare(y.card));
  console.log('\nfirst alerts:');
  for (const w of alerts.slice(0, 4)) console.log(alert(w));
  console.log(`first false alarms after the drift (normal spending, ${Math.round((s.driftFactor - 1) * 100)}% dearer):`);
  for (const w of alerts.filter((a) => a.end > driftAt && a.fraudTxns === 0).slice(0, 3)) console.log(alert(w));
}

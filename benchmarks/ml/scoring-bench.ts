/**
 * Model scoring benchmark (standalone, not a pipeline scenario):
 *
 *   node <build>/benchmarks/ml/scoring-bench.js [--quick] [--backend=cpu|wasm|cpu,wasm]
 *
 * A 32-feature MLP (32 → 64 → 32 → 1, relu, relu, sigmoid) on each TensorFlow.js backend asked for
 * (default: cpu and wasm, the two that need no native package), one thread:
 *
 * - predict: the model alone, rows/s of `model.predict` on a ready `[batch, 32]` tensor plus the
 *   read-back, per batch size: the ceiling for scoring;
 * - pipeline: records/s through `source (1024 records per poll) → score → counting sink`, per
 *   `batchSize` 1, 32, 256, 1024 (features by a function returning each record's `Float32Array`),
 *   and the latency the step adds to a record: the time from the poll that read it to its arrival
 *   at the sink (the whole poll batch is scored before any of it moves on), p50 / p99 / max, next
 *   to the same pipeline with a `map` in place of `score`;
 * - trickle: polls of 16 records, `batchSize: 256, maxLatency: '2ms'`: the calls are coalesced
 *   (average rows per call) and what that costs in latency.
 *
 * Target (issue 5): >= 100K records/s on the wasm backend at batch 256. Prints the environment, a
 * table, then one JSON line with every figure.
 */
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { pino } from 'pino';
import { Pipeline } from '../../src/pipeline.js';
import { ml } from '../../src/ml/index.js';
import type { Sink } from '../../src/sinks/sink.js';
import type { Source } from '../../src/sources/source.js';
import type { Stream } from '../../src/stream.js';
import type { MlBackend, Tf } from '../../src/ml/scoring/tfjs-backend.js';

const QUICK = process.argv.includes('--quick') || process.env.WEIR_BENCH_QUICK === '1';
const backendArg = process.argv.find((a) => a.startsWith('--backend='))?.slice('--backend='.length);
const BACKENDS = (backendArg ?? 'cpu,wasm').split(',') as MlBackend[];
const BATCHES = [1, 32, 256, 1024];
const POLL = 1024;
const WIDTH = 32;
const silent = pino({ level: 'silent' });

interface Rec {
  readonly id: number;
  readonly f: Float32Array;
}

/** Seeded records with 32 features in [-1, 1). */
function records(n: number): Rec[] {
  let s = 99;
  const out = new Array<Rec>(n);
  for (let i = 0; i < n; i++) {
    const f = new Float32Array(WIDTH);
    for (let j = 0; j < WIDTH; j++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      f[j] = s / 2147483648 - 1;
    }
    out[i] = { id: i, f };
  }
  return out;
}

/** Polls `size` records at a time from `data` (up to `count`), stamping when each poll returned. */
function timedSource(data: readonly Rec[], count: number, size: number, stamp: { at: number }): Source<Rec> {
  let pos = 0;
  return {
    name: 'bench',
    poll: () => {
      if (pos >= count) return null;
      const n = Math.min(size, count - pos);
      const batch = new Array<Rec>(n);
      for (let i = 0; i < n; i++) batch[i] = data[(pos + i) % data.length];
      pos += n;
      stamp.at = performance.now();
      return batch;
    },
  };
}

interface Run {
  readonly recordsPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly calls: number;
  readonly rowsPerCall: number;
  readonly cpuPerWall: number;
}

/** One pipeline run: per-record latency from poll to sink, records/s over the whole run. */
async function runPipeline(data: readonly Rec[], count: number, poll: number, build: (s: Stream<Rec>, sink: Sink<unknown>) => void): Promise<Run> {
  const stamp = { at: 0 };
  // Latency histogram in 10 µs buckets up to 1 s (weighted by records).
  const hist = new Float64Array(100_001);
  let seen = 0;
  let maxMs = 0;
  const p = new Pipeline({ name: 'scoring-bench', batchSize: poll, logger: silent });
  build(p.source(timedSource(data, count, poll, stamp), {}), {
    name: 'count',
    write: (items) => {
      // Synchronous source and model: a record reaches the sink before the next poll, so the stamp
      // is still its poll's (the trickle case, where a step lingers, keeps every poll's stamp).
      const ms = performance.now() - stamp.at;
      hist[Math.min(100_000, Math.round(ms * 100))] += items.length;
      if (ms > maxMs) maxMs = ms;
      seen += items.length;
    },
  });
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await p.run();
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  if (seen !== count) throw new Error(`expected ${count} records at the sink, got ${seen}`);
  const q = (frac: number): number => {
    const target = frac * seen;
    let acc = 0;
    for (let i = 0; i < hist.length; i++) {
      acc += hist[i];
      if (acc >= target) return i / 100;
    }
    return maxMs;
  };
  const calls = p.metrics().filter((m) => m.name === 'weir_score_model_calls_total').reduce((a, m) => a + m.value, 0);
  const rows = p.metrics().filter((m) => m.name === 'weir_score_model_rows_total').reduce((a, m) => a + m.value, 0);
  return { recordsPerSec: (count * 1000) / wall, p50Ms: q(0.5), p99Ms: q(0.99), maxMs, calls, rowsPerCall: calls === 0 ? 0 : rows / calls, cpuPerWall: (cpu.user + cpu.system) / 1000 / wall };
}

/** Trickle: polls of 16, the score step lingering; latency from the oldest poll still in flight. */
async function runTrickle(data: readonly Rec[], count: number, model: Awaited<ReturnType<typeof ml.tfjs.load>>): Promise<Run> {
  const polls: number[] = []; // poll times, one per 16 records, in order
  let next = 0; // index into polls of the oldest record not yet at the sink
  let pos = 0;
  const src: Source<Rec> = {
    name: 'trickle',
    poll: () => {
      if (pos >= count) return null;
      const n = Math.min(16, count - pos);
      const batch = data.slice(pos % data.length, (pos % data.length) + n);
      pos += n;
      polls.push(performance.now());
      return batch;
    },
  };
  const lat: number[] = [];
  let seen = 0;
  const p = new Pipeline({ name: 'scoring-trickle', batchSize: 16, logger: silent });
  p.source(src, {})
    .score(model, { features: (r) => r.f, batchSize: 256, maxLatency: '2ms', name: 'score' })
    .sink({
      name: 'count',
      write: (items) => {
        const now = performance.now();
        for (let i = 0; i < items.length; i += 16) lat.push(now - polls[next++]);
        seen += items.length;
      },
    });
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await p.run();
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  if (seen !== count) throw new Error(`trickle: expected ${count}, got ${seen}`);
  lat.sort((a, b) => a - b);
  const calls = p.metrics().find((m) => m.name === 'weir_score_model_calls_total')?.value ?? 0;
  const rows = p.metrics().find((m) => m.name === 'weir_score_model_rows_total')?.value ?? 0;
  return {
    recordsPerSec: (count * 1000) / wall,
    p50Ms: lat[Math.floor(lat.length * 0.5)],
    p99Ms: lat[Math.floor(lat.length * 0.99)],
    maxMs: lat[lat.length - 1],
    calls,
    rowsPerCall: rows / calls,
    cpuPerWall: (cpu.user + cpu.system) / 1000 / wall,
  };
}

function mlp(tf: Tf) {
  return tf.sequential({
    layers: [
      tf.layers.dense({ inputShape: [WIDTH], units: 64, activation: 'relu' }),
      tf.layers.dense({ units: 32, activation: 'relu' }),
      tf.layers.dense({ units: 1, activation: 'sigmoid' }),
    ],
  });
}

/** Rows/s of the model alone: predict on a ready tensor, read back, dispose. */
function predictRate(tf: Tf, model: ReturnType<typeof mlp>, batch: number, ms: number): number {
  const x = tf.randomUniform([batch, WIDTH], -1, 1);
  const once = (): void => {
    const y = model.predict(x) as ReturnType<typeof tf.zeros>;
    y.dataSync();
    y.dispose();
  };
  const warm = performance.now() + Math.min(200, ms / 4);
  while (performance.now() < warm) once();
  let calls = 0;
  const t0 = performance.now();
  let now = t0;
  while (now - t0 < ms) {
    once();
    calls++;
    now = performance.now();
  }
  x.dispose();
  return (calls * batch * 1000) / (now - t0);
}

interface Row {
  readonly backend: string;
  readonly case: string;
  readonly batch: number;
  readonly recordsPerSec: number;
  readonly p50Ms?: number;
  readonly p99Ms?: number;
  readonly maxMs?: number;
  readonly rowsPerCall?: number;
  readonly cpuPerWall?: number;
  readonly target?: number;
}

const rows: Row[] = [];
const N = QUICK ? 20_000 : 300_000;
const data = records(Math.min(N, 100_000));
let device = '';

for (const backend of BACKENDS) {
  const rt = await ml.tfjs.resolve({ backend, logger: silent });
  device += `${device ? ', ' : ''}${rt.backend} (${rt.package}, ${rt.device})`;
  const raw = mlp(rt.tf);
  const model = await ml.tfjs.load(raw, { backend, version: 'bench', logger: silent });
  const tensorsBefore = rt.tf.memory().numTensors;
  for (const batch of BATCHES) {
    rows.push({ backend: rt.backend, case: 'predict alone', batch, recordsPerSec: predictRate(rt.tf, raw, batch, QUICK ? 150 : 1000) });
  }
  for (const batch of BATCHES) {
    const count = batch === 1 ? Math.min(N, QUICK ? 5_000 : 30_000) : N;
    // Warm-up run (JIT), then the measured one.
    await runPipeline(data, Math.min(count, 20_000), POLL, (s, sink) => s.score(model, { features: (r) => r.f, batchSize: batch }).sink(sink));
    const r = await runPipeline(data, count, POLL, (s, sink) => s.score(model, { features: (r) => r.f, batchSize: batch, name: 'score' }).sink(sink));
    rows.push({ backend: rt.backend, case: 'pipeline score', batch, ...r, target: rt.backend === 'wasm' && batch === 256 ? 100_000 : undefined });
  }
  const base = await runPipeline(data, N, POLL, (s, sink) => s.map((r) => ({ ...r, score: 0, modelVersion: 'none' })).sink(sink));
  rows.push({ backend: rt.backend, case: 'pipeline map (no model)', batch: POLL, ...base });
  await runTrickle(data, Math.min(N, 20_000), model);
  rows.push({ backend: rt.backend, case: 'trickle: polls of 16, maxLatency 2ms', batch: 256, ...(await runTrickle(data, QUICK ? 20_000 : 100_000, model)) });
  if (rt.tf.memory().numTensors !== tensorsBefore) throw new Error(`tensors leaked: ${tensorsBefore} → ${rt.tf.memory().numTensors}`);
  model.dispose();
}

// ---------------------------------------------------------------- report
const cpu = os.cpus()[0]?.model ?? 'unknown cpu';
console.log(`node ${process.version} (V8 ${process.versions.v8}), ${os.platform()} ${os.arch()}, ${cpu}, ${os.cpus().length} cores, load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}; tfjs backends: ${device}${QUICK ? ' — QUICK run, figures not comparable' : ''}`);
const fmt = (v: number): string => (v >= 1e6 ? `${(v / 1e6).toFixed(2)}M` : v >= 1e4 ? `${(v / 1e3).toFixed(0)}k` : v.toFixed(0));
const ms = (v: number | undefined): string => (v === undefined ? '' : v.toFixed(2));
console.log(`${'backend'.padEnd(10)} ${'case'.padEnd(38)} ${'batch'.padStart(5)} ${'records/s'.padStart(10)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'max ms'.padStart(8)} ${'rows/call'.padStart(9)} ${'cpu/wall'.padStart(8)}`);
for (const r of rows) {
  const target = r.target === undefined ? '' : r.recordsPerSec >= r.target ? `  ok (target ${fmt(r.target)})` : `  MISS (target ${fmt(r.target)})`;
  console.log(
    `${r.backend.padEnd(10)} ${r.case.padEnd(38)} ${String(r.batch).padStart(5)} ${fmt(r.recordsPerSec).padStart(10)} ${ms(r.p50Ms).padStart(8)} ${ms(r.p99Ms).padStart(8)} ${ms(r.maxMs).padStart(8)} ${(r.rowsPerCall === undefined || r.rowsPerCall === 0 ? '' : r.rowsPerCall.toFixed(1)).padStart(9)} ${(r.cpuPerWall === undefined ? '' : r.cpuPerWall.toFixed(2)).padStart(8)}${target}`,
  );
}
console.log(JSON.stringify({ bench: 'ml-scoring', quick: QUICK, node: process.version, cpu, device, rows }));

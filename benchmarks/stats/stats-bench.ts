/**
 * Drift statistics micro-benchmark (standalone, not a pipeline scenario):
 *
 *   node <build>/benchmarks/stats/stats-bench.js [--quick]
 *
 * - PSI: values/s counted into fixed reference bins (PsiAccumulator.addBatch on Float64Array batches,
 *   and add() one value at a time); target >= 1M values/s.
 * - KS: windows/s of 10 000 values (unsorted: sorting is included) against a fixed, pre-sorted
 *   reference of 10 000 (KsReference.test), for method 'auto' (exact at this size) and 'asymp',
 *   without and with drift; target >= 100 windows/s. Also unequal sizes (9 999 vs 10 000), where the
 *   exact two-sided p-value takes the slower "inside" lattice recursion, whose cost grows with D.
 * - QuantileSketch: values/s added, and ks2Sketch on two 10^6-value sketches.
 *
 * Prints the environment, a table, then one JSON line with every figure.
 */
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { KsReference, PsiAccumulator, QuantileSketch, ks2Sketch, psiBins, type KsAlternative, type KsMethod } from '../../src/ml/stats/index.js';

const QUICK = process.argv.includes('--quick') || process.env.WEIR_BENCH_QUICK === '1';

/** Seeded standard normals (LCG + Box–Muller), so runs are comparable. */
function normals(n: number, seed: number, shift = 0): Float64Array {
  let s = seed >>> 0 || 1;
  const u = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s + 0.5) / 4294967296;
  };
  const out = new Float64Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(u()));
    const t = 2 * Math.PI * u();
    out[i] = r * Math.cos(t) + shift;
    if (i + 1 < n) out[i + 1] = r * Math.sin(t) + shift;
  }
  return out;
}

interface Row {
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  readonly target?: number;
  readonly note?: string;
}
const rows: Row[] = [];

/** Runs `fn` repeatedly for about `ms` (after a warm-up) and returns calls per second. */
function rate(fn: () => void, ms: number): number {
  const warmEnd = performance.now() + Math.min(200, ms / 4);
  while (performance.now() < warmEnd) fn();
  let calls = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    fn();
    calls++;
    now = performance.now();
  }
  return (calls * 1000) / (now - start);
}

const MS = QUICK ? 150 : 1500;

// ---------------------------------------------------------------- PSI
{
  const reference = normals(100_000, 1);
  const bins = psiBins(reference, 10);
  const data = normals(1_000_000, 2, 0.1);
  const batch = 10_000;
  const acc = new PsiAccumulator(bins);
  const batchesPerSec = rate(() => {
    for (let i = 0; i < data.length; i += batch) acc.addBatch(data.subarray(i, i + batch));
    acc.reset();
  }, MS);
  rows.push({ name: 'psi: addBatch, 10 bins, Float64Array batches of 10k', value: batchesPerSec * data.length, unit: 'values/s', target: 1e6 });

  const single = new PsiAccumulator(bins);
  const singlePerSec = rate(() => {
    for (let i = 0; i < data.length; i++) single.add(data[i]);
    single.reset();
  }, MS);
  rows.push({ name: 'psi: add() one value at a time, 10 bins', value: singlePerSec * data.length, unit: 'values/s', target: 1e6 });

  const bins50 = psiBins(reference, 50);
  const acc50 = new PsiAccumulator(bins50);
  const perSec50 = rate(() => {
    for (let i = 0; i < data.length; i += batch) acc50.addBatch(data.subarray(i, i + batch));
    acc50.reset();
  }, MS);
  rows.push({ name: 'psi: addBatch, 50 bins', value: perSec50 * data.length, unit: 'values/s', target: 1e6 });

  acc.addBatch(data);
  const resultPerSec = rate(() => void acc.result(), QUICK ? 50 : 300);
  rows.push({ name: 'psi: result() of counted bins', value: resultPerSec, unit: 'calls/s' });
}

// ---------------------------------------------------------------- KS
{
  const N = 10_000;
  const ref = new KsReference(normals(N, 3));
  const windowsNull = Array.from({ length: 16 }, (_, i) => normals(N, 100 + i));
  const windowsDrift = Array.from({ length: 16 }, (_, i) => normals(N, 200 + i, 0.3));
  const windowsUnequalNull = Array.from({ length: 16 }, (_, i) => normals(N - 1, 300 + i));
  const windowsUnequalDrift = Array.from({ length: 16 }, (_, i) => normals(N - 1, 400 + i, 0.3));
  const cases: [string, Float64Array[], KsAlternative, KsMethod][] = [
    ['ks: 10k vs 10k, two-sided, auto (exact), no drift', windowsNull, 'two-sided', 'auto'],
    ['ks: 10k vs 10k, two-sided, auto (exact), drift 0.3σ', windowsDrift, 'two-sided', 'auto'],
    ['ks: 10k vs 10k, greater, auto (exact)', windowsNull, 'greater', 'auto'],
    ['ks: 10k vs 10k, two-sided, asymp', windowsNull, 'two-sided', 'asymp'],
    ['ks: 10k vs 10k, greater, asymp', windowsNull, 'greater', 'asymp'],
    ['ks: 9,999 vs 10k, two-sided, auto (exact), no drift', windowsUnequalNull, 'two-sided', 'auto'],
    ['ks: 9,999 vs 10k, two-sided, auto (exact), drift 0.3σ', windowsUnequalDrift, 'two-sided', 'auto'],
    ['ks: 9,999 vs 10k, two-sided, asymp, drift 0.3σ', windowsUnequalDrift, 'two-sided', 'asymp'],
  ];
  for (const [name, windows, alternative, method] of cases) {
    let i = 0;
    let resolved = '';
    const perSec = rate(() => {
      resolved = ref.test(windows[i++ % windows.length], { alternative, method }).method;
    }, MS);
    rows.push({ name, value: perSec, unit: 'windows/s', target: 100, note: `resolved: ${resolved}` });
  }
  // the part that is not the p-value: sorting a 10k window
  const sortPerSec = rate(() => void Float64Array.from(windowsNull[0]).sort(), MS);
  rows.push({ name: 'ks: (sorting one 10k window alone)', value: sortPerSec, unit: 'sorts/s' });
}

// ---------------------------------------------------------------- QuantileSketch
{
  const n = QUICK ? 200_000 : 1_000_000;
  const a = normals(n, 5);
  const b = normals(n, 6, 0.05);
  const t0 = performance.now();
  const sa = new QuantileSketch();
  sa.addBatch(a);
  const addMs = performance.now() - t0;
  rows.push({ name: `sketch: addBatch (k=4096), ${n.toLocaleString('en')} values`, value: (n * 1000) / addMs, unit: 'values/s' });
  const sb = new QuantileSketch();
  sb.addBatch(b);
  let r = ks2Sketch(sa, sb);
  const ksPerSec = rate(() => {
    r = ks2Sketch(sa, sb);
  }, QUICK ? 100 : 500);
  rows.push({
    name: `sketch: ks2Sketch, two sketches of ${n.toLocaleString('en')}`,
    value: ksPerSec,
    unit: 'calls/s',
    note: `D=${r.statistic.toFixed(4)} ± ${r.errorBound.toFixed(4)}, stored ${sa.storedCount}`,
  });
}

// ---------------------------------------------------------------- report
const cpu = os.cpus()[0]?.model ?? 'unknown cpu';
console.log(`node ${process.version} (V8 ${process.versions.v8}), ${os.platform()} ${os.arch()}, ${cpu}, ${os.cpus().length} cores, load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}${QUICK ? ' — QUICK run, figures not comparable' : ''}`);
const fmt = (v: number): string => (v >= 1e6 ? `${(v / 1e6).toFixed(1)}M` : v >= 1e4 ? `${(v / 1e3).toFixed(0)}k` : v.toFixed(1));
const width = Math.max(...rows.map((r) => r.name.length));
for (const r of rows) {
  const target = r.target === undefined ? '' : r.value >= r.target ? `  ok (target ${fmt(r.target)})` : `  MISS (target ${fmt(r.target)})`;
  console.log(`${r.name.padEnd(width)}  ${fmt(r.value).padStart(8)} ${r.unit}${target}${r.note ? `  [${r.note}]` : ''}`);
}
console.log(JSON.stringify({ bench: 'stats', quick: QUICK, node: process.version, cpu, rows }));

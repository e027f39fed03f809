/**
 * Drift operator benchmark (standalone, not a runner scenario): whole pipelines, end to end.
 *
 *   node <build>/benchmarks/ml/drift-bench.js [--quick]
 *
 * Every pipeline is `source → .drift(...) → counting sink`, in memory, one thread. The source makes one
 * record object `{ ts, card, x }` per value (x from a pre-drawn table of seeded normals, shifted by 0.3σ
 * in the second half), with event time advancing evenly and a bounded-out-of-orderness watermark.
 *
 * - PSI: values/s through `ml.psi` (10 bins) — fixed reference (counting only), keyed by 1 000 cards,
 *   and 'first-window'; target >= 1M values/s.
 * - KS: windows/s of 10 000 values each through `ml.ks` against a 10 000-value reference — fixed
 *   (exact p-values: both samples <= 10 000), keyed (10 keys), trailing (3 windows: 30 000-value
 *   references), 10 000-value windows sketched (exactLimit 1 000, k 1 024); target >= 100 windows/s. Also
 *   100 000-value windows sketched (exactLimit 10 000, k 4096), for their values/s.
 * - Baseline: the same source into the sink without a drift step (what the engine costs anyway).
 *
 * Each scenario runs once on a tenth of its input to warm up, then measured. Prints the environment, a
 * table, then one JSON line with every figure.
 */
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { Pipeline, ml, watermarks, type DriftSpec, type Sink, type Source, type Stream } from '../../src/index.js';
import { silentLogger } from '../../src/observability/logger.js';

const QUICK = process.argv.includes('--quick') || process.env.WEIR_BENCH_QUICK === '1';
const SCALE = QUICK ? 0.05 : 1;

interface Rec {
  readonly ts: number;
  readonly card: string;
  readonly x: number;
}

/** Seeded standard normals (LCG + Box–Muller). */
function normals(n: number, seed: number): Float64Array {
  let s = seed >>> 0 || 1;
  const u = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s + 0.5) / 4294967296;
  };
  const out = new Float64Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(u()));
    const t = 2 * Math.PI * u();
    out[i] = r * Math.cos(t);
    if (i + 1 < n) out[i + 1] = r * Math.sin(t);
  }
  return out;
}

const TABLE = normals(1 << 20, 12345);
const CARDS = Array.from({ length: 1000 }, (_, i) => `card-${i}`);

/** `total` records, `perMs` per millisecond of event time, over `keys` cards; the second half shifted. */
function source(total: number, perMs: number, keys: number): Source<Rec> {
  let i = 0;
  const mask = TABLE.length - 1;
  return {
    name: 'bench',
    poll(max: number): Rec[] | null {
      if (i >= total) return null;
      const end = Math.min(total, i + max);
      const out = new Array<Rec>(end - i);
      const half = total / 2;
      for (let j = 0; i < end; i++, j++) out[j] = { ts: Math.floor(i / perMs), card: CARDS[i % keys], x: TABLE[i & mask] + (i >= half ? 0.3 : 0) };
      return out;
    },
  };
}

interface Figures {
  readonly values: number;
  readonly reports: number;
  readonly wallMs: number;
}

async function run(total: number, perMs: number, keys: number, build: ((s: Stream<Rec>) => Stream<unknown>) | null): Promise<Figures> {
  let reports = 0;
  const counter: Sink<unknown> = { name: 'count', write: (items) => void (reports += items.length) };
  const p = new Pipeline({ name: 'drift-bench', logger: silentLogger() });
  const s = p.source(source(total, perMs, keys), { timestamp: (r) => r.ts, watermarks: watermarks.boundedOutOfOrderness(10) });
  (build === null ? (s as Stream<unknown>) : build(s)).sink(counter);
  const t0 = performance.now();
  await p.run();
  return { values: total, reports, wallMs: performance.now() - t0 };
}

interface Row {
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  readonly target?: number;
  readonly note?: string;
}
const rows: Row[] = [];

async function measure(total: number, perMs: number, keys: number, build: ((s: Stream<Rec>) => Stream<unknown>) | null): Promise<Figures> {
  await run(Math.max(1, Math.floor(total / 10)), perMs, keys, build);
  return run(total, perMs, keys, build);
}

const reference10k = Array.from(normals(10_000, 777));
const asStream = <R>(s: Stream<R>): Stream<unknown> => s as unknown as Stream<unknown>;
const psiSpec = (reference: number[] | 'first-window'): DriftSpec<Rec> => ml.psi({ feature: 'x', reference, window: '1s', bins: 10 });

// ---------------------------------------------------------------- baseline
{
  const n = Math.round(4_000_000 * SCALE);
  const f = await measure(n, 100, 1, null);
  rows.push({ name: 'baseline: source → sink, no drift step', value: (f.values * 1000) / f.wallMs, unit: 'values/s' });
}

// ---------------------------------------------------------------- PSI
for (const [name, keys, build] of [
  ['psi: fixed reference (10k), 10 bins, unkeyed, 100k-value windows', 1, (s: Stream<Rec>) => asStream(s.drift(psiSpec(reference10k)))],
  ['psi: fixed reference (10k), 10 bins, keyBy 1000 cards', 1000, (s: Stream<Rec>) => asStream(s.keyBy((r) => r.card).drift(psiSpec(reference10k)))],
  ["psi: 'first-window' reference, 10 bins, unkeyed", 1, (s: Stream<Rec>) => asStream(s.drift(psiSpec('first-window')))],
] as const) {
  const n = Math.round(4_000_000 * SCALE);
  const f = await measure(n, 100, keys, build);
  rows.push({ name, value: (f.values * 1000) / f.wallMs, unit: 'values/s', target: 1e6, note: `${f.reports} reports, ${(f.wallMs / 1000).toFixed(2)} s` });
}

// ---------------------------------------------------------------- KS
{
  const ks = (reference: number[] | 'first-window' | { trailing: number }, extra: { sketch?: { exactLimit: number; k?: number } } = {}): DriftSpec<Rec> =>
    ml.ks({ feature: 'x', reference, window: '1s', alpha: 0.01, ...extra });
  const cases: [string, number, number, number, (s: Stream<Rec>) => Stream<unknown>][] = [
    // name, values, values per ms (window = 1 s), keys, pipeline
    ['ks: 10k-value windows vs fixed 10k reference (exact), unkeyed', 3_000_000, 10, 1, (s) => asStream(s.drift(ks(reference10k)))],
    ['ks: 10k-value windows vs fixed 10k reference (exact), keyBy 10 cards', 3_000_000, 100, 10, (s) => asStream(s.keyBy((r) => r.card).drift(ks(reference10k)))],
    ['ks: 10k-value windows vs trailing 3 windows (30k), unkeyed', 3_000_000, 10, 1, (s) => asStream(s.drift(ks({ trailing: 3 })))],
    ['ks: 10k-value windows sketched (exactLimit 1000, k 1024) vs fixed 10k reference', 3_000_000, 10, 1, (s) => asStream(s.drift(ks(reference10k, { sketch: { exactLimit: 1000, k: 1024 } })))],
    ['ks: 100k-value windows sketched (exactLimit 10k, k 4096) vs fixed 10k reference', 6_000_000, 100, 1, (s) => asStream(s.drift(ks(reference10k, { sketch: { exactLimit: 10_000 } })))],
  ];
  for (const [name, values, perMs, keys, build] of cases) {
    const n = Math.round(values * SCALE);
    const f = await measure(n, perMs, keys, build);
    // The target is for 10k-value windows; 100k-value windows are there for their values/s.
    const target = name.startsWith('ks: 100k') ? undefined : 100;
    rows.push({ name, value: (f.reports * 1000) / f.wallMs, unit: 'windows/s', ...(target ? { target } : {}), note: `${f.reports} reports, ${((f.values * 1000) / f.wallMs / 1e6).toFixed(2)}M values/s` });
  }
}

// ---------------------------------------------------------------- report
const cpu = os.cpus()[0]?.model ?? 'unknown cpu';
console.log(`node ${process.version} (V8 ${process.versions.v8}), ${os.platform()} ${os.arch()}, ${cpu}, ${os.cpus().length} cores, load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}${QUICK ? ' — QUICK run, figures not comparable' : ''}`);
const fmt = (v: number): string => (v >= 1e6 ? `${(v / 1e6).toFixed(2)}M` : v >= 1e4 ? `${(v / 1e3).toFixed(0)}k` : v.toFixed(1));
const width = Math.max(...rows.map((r) => r.name.length));
for (const r of rows) {
  const target = r.target === undefined ? '' : r.value >= r.target ? `  ok (target ${fmt(r.target)})` : `  MISS (target ${fmt(r.target)})`;
  console.log(`${r.name.padEnd(width)}  ${fmt(r.value).padStart(8)} ${r.unit}${target}${r.note ? `  [${r.note}]` : ''}`);
}
console.log(JSON.stringify({ bench: 'drift', quick: QUICK, node: process.version, cpu, rows }));

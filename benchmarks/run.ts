/**
 * The benchmark runner: `npm run bench [-- [names...] [--quick] [--runs=n] [--save-baseline] [--profile]]`.
 *
 * Each scenario (a file of `benchmarks/scenarios/`, one per file) runs in a fresh node process, each
 * variant in its own; the runner prints the environment, a table, the change against
 * `benchmarks/results/baseline.json` when there is one, and writes `benchmarks/results/latest.json`
 * (`quick.tmp.json` in quick mode; `WEIR_BENCH_RESULTS_DIR` moves them).
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ScenarioResult } from './lib/scenario-runner.js';

interface Environment {
  readonly node: string;
  readonly v8: string;
  readonly platform: string;
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGb: number;
  readonly weir: string;
  readonly commit: string;
  readonly loadAverage: readonly number[];
  readonly date: string;
}

/** A scenario process that did not finish (out of memory, a throw...). */
interface FailedRun {
  readonly scenario: string;
  readonly variant: string;
  readonly error: string;
}

interface Report {
  readonly environment: Environment;
  readonly quick: boolean;
  readonly results: readonly ScenarioResult[];
  readonly failures?: readonly FailedRun[];
  /** Every run when `--runs` > 1 (results hold the median run of each scenario). */
  readonly runs?: readonly ScenarioResult[][];
  readonly slideSweeps?: readonly SweepSummary[];
}

interface SweepSummary {
  readonly scenario: string;
  readonly from: string;
  readonly to: string;
  readonly fromEventsPerSec: number;
  readonly toEventsPerSec: number;
  /** Throughput drop from the widest to the narrowest slide, %. */
  readonly dropPct: number;
  /** The same for the rate of reading input (before the end-of-input firing), %. */
  readonly ingestDropPct: number;
  /** Window results of the first step (`bids-per-auction`) at either end: the part that grows with size/slide. */
  readonly fromWindowResults: number;
  readonly toWindowResults: number;
  /** The drop between the best run (highest throughput) of either end, when there were several runs, %. */
  readonly bestDropPct?: number;
  /** The issue's limit, %. */
  readonly limitPct: number;
  /** Slides whose run failed: the drop then only covers the ones that ran. */
  readonly failed?: readonly string[];
}

const here = path.dirname(fileURLToPath(import.meta.url));
const scenariosDir = path.join(here, 'scenarios');

/** The repository root: the nearest folder up with weir's package.json (dist/ sits inside it). */
function repoRoot(): string {
  for (let dir = here; ; dir = path.dirname(dir)) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg) && JSON.parse(readFileSync(pkg, 'utf8')).name === 'weir') return dir;
    if (path.dirname(dir) === dir) throw new Error(`no weir package.json above ${here}`);
  }
}

function git(root: string, args: string[]): string {
  try {
    return execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
}

function environment(root: string): Environment {
  const commit = git(root, ['rev-parse', '--short', 'HEAD']) || 'unknown';
  const dirty = git(root, ['status', '--porcelain', '--untracked-files=no']) !== '';
  return {
    node: process.version,
    v8: process.versions.v8,
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    cpu: os.cpus()[0]?.model.trim() ?? 'unknown',
    cores: os.availableParallelism?.() ?? os.cpus().length,
    memoryGb: Number((os.totalmem() / 2 ** 30).toFixed(1)),
    weir: JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).version,
    commit: dirty ? `${commit}+dirty` : commit,
    loadAverage: os.loadavg().map((l) => Number(l.toFixed(2))),
    date: new Date().toISOString(),
  };
}

function parseCli(argv: readonly string[]) {
  const names: string[] = [];
  let quick = process.env.WEIR_BENCH_QUICK === '1';
  let runs = 1;
  let saveBaseline = false;
  let profile = false;
  for (const a of argv) {
    if (a === '--quick') quick = true;
    else if (a === '--save-baseline') saveBaseline = true;
    else if (a === '--profile') profile = true;
    else if (a.startsWith('--runs=')) runs = Math.max(1, Number(a.slice(7)) | 0);
    else if (a.startsWith('--')) throw new Error(`unknown option ${a} (use names..., --quick, --runs=n, --save-baseline, --profile)`);
    else names.push(a);
  }
  return { names, quick, runs, saveBaseline, profile };
}

/** Runs `node file args...` and returns the last JSON line it printed; rejects with the tail of its stderr. */
function runProcess(file: string, args: string[], env: NodeJS.ProcessEnv, nodeArgs: string[] = []): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeArgs, file, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (d: string) => (out += d));
    child.stderr.on('data', (d: string) => (err = (err + d).slice(-20_000)));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const line = out
        .trim()
        .split('\n')
        .reverse()
        .find((l) => l.startsWith('{') || l.startsWith('['));
      if (code !== 0 || line === undefined) {
        const oom = /heap out of memory|Allocation failed/.test(err);
        const tail = err
          .split('\n')
          .filter((l) => l.trim() !== '' && !/^\s*\d+: 0x/.test(l))
          .slice(-6)
          .join('\n');
        reject(new Error(`${oom ? 'out of memory' : `exit ${code ?? signal}`}${tail ? `\n${tail}` : ''}`));
        return;
      }
      if (err.trim() !== '') process.stderr.write(err);
      resolve(JSON.parse(line));
    });
  });
}

const fmtRate = (x: number): string => (x >= 1e6 ? `${(x / 1e6).toFixed(2)}M` : `${(x / 1e3).toFixed(0)}K`);
const fmtPct = (x: number): string => `${x >= 0 ? '+' : ''}${x.toFixed(1)}%`;
const labelOf = (r: { scenario: string; variant: string }): string => (r.variant ? `${r.scenario} [${r.variant}]` : r.scenario);

function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

function median(rs: ScenarioResult[]): ScenarioResult {
  const sorted = [...rs].sort((a, b) => a.eventsPerSec - b.eventsPerSec);
  return sorted[(sorted.length - 1) >> 1];
}

/** The throughput drop of each slide sweep (scenarios named q5-slide-sweep*), widest to narrowest slide. */
function sweepSummaries(results: readonly ScenarioResult[], failures: readonly FailedRun[], runs: readonly ScenarioResult[][]): SweepSummary[] {
  const names = [...new Set(results.map((r) => r.scenario).filter((n) => n.startsWith('q5-slide-sweep')))];
  return names.flatMap((name) => {
    const s = sweepSummary(name, results, failures, runs);
    return s ? [s] : [];
  });
}

function sweepSummary(name: string, results: readonly ScenarioResult[], failures: readonly FailedRun[], runs: readonly ScenarioResult[][]): SweepSummary | undefined {
  const sweep = results.filter((r) => r.scenario === name);
  const failed = failures.filter((f) => f.scenario === name).map((f) => f.variant);
  if (sweep.length < 2) return undefined;
  const first = sweep[0];
  const last = sweep[sweep.length - 1];
  const best = (r: ScenarioResult): number =>
    Math.max(...(runs.find((rs) => rs[0].scenario === r.scenario && rs[0].variant === r.variant) ?? [r]).map((x) => x.eventsPerSec));
  const several = runs.some((rs) => rs[0].scenario === name && rs.length > 1);
  return {
    ...(several ? { bestDropPct: Number(((1 - best(last) / best(first)) * 100).toFixed(1)) } : {}),
    scenario: name,
    from: String(first.config.slide),
    to: String(last.config.slide),
    fromEventsPerSec: first.eventsPerSec,
    toEventsPerSec: last.eventsPerSec,
    dropPct: Number(((1 - last.eventsPerSec / first.eventsPerSec) * 100).toFixed(1)),
    ingestDropPct: Number(((1 - last.ingestEventsPerSec / first.ingestEventsPerSec) * 100).toFixed(1)),
    fromWindowResults: first.recordsOut['bids-per-auction'] ?? NaN,
    toWindowResults: last.recordsOut['bids-per-auction'] ?? NaN,
    limitPct: 10,
    ...(failed.length > 0 ? { failed } : {}),
  };
}

const fmtBytes = (b: number): string => (b >= 2 ** 30 ? `${(b / 2 ** 30).toFixed(2)} GiB` : b >= 2 ** 20 ? `${(b / 2 ** 20).toFixed(1)} MiB` : `${(b / 2 ** 10).toFixed(1)} KiB`);
const fmtMs = (ms: number): string => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`);

/** What the checkpoints of each result took, and its targets other than throughput (`ok` / `MISS`; every run's value when there were several). */
function checkpointLines(results: readonly ScenarioResult[], runs: readonly ScenarioResult[][], quick: boolean): string[] {
  const lines: string[] = [];
  for (const r of results) {
    const c = r.checkpoints;
    if (c) {
      const io = c.ioWriteBytes === undefined ? '' : `, process wrote ${fmtBytes(c.ioWriteBytes)}`;
      lines.push(
        `${labelOf(r)}: ${c.count} checkpoint(s), avg ${fmtMs(c.avgMs)}, max ${fmtMs(c.maxMs)}, last ${fmtMs(c.lastMs)}; ` +
          `${c.stateChanges} state changes, ${fmtBytes(c.valueBytes)} of values; store ${fmtBytes(c.diskBytes)} on disk at the end${io}`,
      );
    }
    for (const check of r.checks ?? []) {
      const all = runs.find((rs) => rs.includes(r)) ?? [r];
      const values = all.length > 1 ? ` (runs: ${all.map((x) => x.checks?.find((k) => k.name === check.name)?.value ?? NaN).join(', ')} ${check.unit})` : '';
      const verdict = quick ? '' : check.ok ? ' ok' : ' MISS';
      lines.push(`${labelOf(r)}: ${check.name} ${check.value} ${check.unit} (target <= ${check.max} ${check.unit}${verdict})${values}`);
    }
    for (const note of r.notes ?? []) lines.push(`${labelOf(r)}: ${note}`);
  }
  if (lines.length > 0) lines.unshift('');
  return lines;
}

async function main(): Promise<void> {
  const cli = parseCli(process.argv.slice(2));
  const root = repoRoot();
  const resultsDir = process.env.WEIR_BENCH_RESULTS_DIR ?? path.join(root, 'benchmarks', 'results');
  const all = readdirSync(scenariosDir)
    .filter((f) => f.endsWith('.js'))
    .map((f) => f.slice(0, -3))
    .sort();
  const unknown = cli.names.filter((n) => !all.includes(n));
  if (unknown.length > 0) throw new Error(`unknown scenario(s) ${unknown.join(', ')}; have: ${all.join(', ')}`);
  const chosen = cli.names.length > 0 ? all.filter((n) => cli.names.includes(n)) : all;

  const env = environment(root);
  console.log(`weir ${env.weir} @ ${env.commit} | node ${env.node} (V8 ${env.v8}) | ${env.platform}`);
  console.log(`${env.cpu} | ${env.cores} cores | ${env.memoryGb} GB | load ${env.loadAverage.join(' ')} | ${env.date}`);
  console.log(`${cli.quick ? 'QUICK mode (tiny event counts: not figures to compare)' : 'full mode'}, ${cli.runs} run(s) per scenario, each in a fresh process\n`);

  const childEnv: NodeJS.ProcessEnv = { ...process.env, WEIR_LOG_LEVEL: process.env.WEIR_LOG_LEVEL ?? 'silent', ...(cli.quick ? { WEIR_BENCH_QUICK: '1' } : {}) };
  const profileDir = path.join(os.tmpdir(), `weir-bench-profiles-${Date.now()}`);
  const nodeArgs = cli.profile ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
  const results: ScenarioResult[] = [];
  const failures: FailedRun[] = [];
  const runs: ScenarioResult[][] = [];
  for (const name of chosen) {
    const file = path.join(scenariosDir, `${name}.js`);
    const variants = (await runProcess(file, ['--variants'], childEnv)) as Record<string, string>[];
    const perVariant: ScenarioResult[][] = variants.map(() => []);
    // Runs go round the variants (2s, 1s, ..., 2s, 1s, ...) so that a busy spell on a shared machine
    // does not fall on one variant only.
    for (let i = 0; i < cli.runs; i++) {
      for (const [vi, v] of variants.entries()) {
        const args = Object.entries(v).map(([k, val]) => `--${k}=${val}`);
        const variant = Object.entries(v)
          .map(([k, val]) => `${k}=${val}`)
          .join(',');
        try {
          const r = (await runProcess(file, args, childEnv, nodeArgs)) as ScenarioResult;
          perVariant[vi].push(r);
          process.stderr.write(`  ${labelOf(r)}: ${fmtRate(r.eventsPerSec)} events/s (${r.events} events, ${(r.wallMs / 1000).toFixed(1)} s)\n`);
        } catch (e) {
          const f: FailedRun = { scenario: name, variant, error: e instanceof Error ? e.message : String(e) };
          failures.push(f);
          process.stderr.write(`  ${labelOf(f)}: FAILED: ${f.error}\n`);
        }
      }
    }
    for (const these of perVariant) {
      if (these.length === 0) continue;
      runs.push(these);
      results.push(median(these));
    }
  }

  const baselineFile = path.join(resultsDir, 'baseline.json');
  const baseline = existsSync(baselineFile) ? (JSON.parse(readFileSync(baselineFile, 'utf8')) as Report) : undefined;
  const baseOf = (r: ScenarioResult) => baseline?.results.find((b) => b.scenario === r.scenario && b.variant === r.variant);
  const headers = ['scenario', 'events', 'events/s', 'target', 'p50 ms', 'p99 ms', 'peak RSS MB', 'engine %', 'cpu/wall'];
  if (baseline) headers.push('vs baseline');
  const rows = results.map((r) => {
    const target = r.targetEventsPerSec === undefined || cli.quick ? '' : `${r.eventsPerSec >= r.targetEventsPerSec ? 'ok' : 'MISS'} ${fmtRate(r.targetEventsPerSec)}`;
    const row = [
      labelOf(r),
      String(r.events),
      fmtRate(r.eventsPerSec),
      target,
      r.latencyMs.p50.toFixed(3),
      r.latencyMs.p99.toFixed(3),
      r.peakRssMb.toFixed(0),
      `${(((r.wallMs - r.sourceMs) / r.wallMs) * 100).toFixed(0)}%`,
      (r.cpuMs / r.wallMs).toFixed(2),
    ];
    if (baseline) {
      const b = baseOf(r);
      row.push(b ? `${fmtPct((r.eventsPerSec / b.eventsPerSec - 1) * 100)} (p99 ${fmtPct((r.latencyMs.p99 / b.latencyMs.p99 - 1) * 100)})` : 'new');
    }
    return row;
  });
  for (const f of failures) rows.push([labelOf(f), 'FAILED', f.error.split('\n')[0], ...headers.slice(3).map(() => '')]);
  console.log(table(headers, rows));
  console.log('\nengine % = share of the run not spent generating events (the source); cpu/wall > 1: GC or other threads; < 1: the process was waiting (a busy machine?)');

  for (const line of checkpointLines(results, runs, cli.quick)) console.log(line);

  const sweeps = sweepSummaries(results, failures, runs);
  for (const sweep of sweeps) {
    const verdict = sweep.scenario !== 'q5-slide-sweep' ? 'informational: output-bound' : sweep.dropPct <= sweep.limitPct ? `within the ${sweep.limitPct}% limit` : `OVER the ${sweep.limitPct}% limit`;
    const failed = sweep.failed ? ` -- FAILED: ${sweep.failed.join(', ')}` : '';
    const bestOf = sweep.bestDropPct === undefined ? '' : `; best run of each: drop ${sweep.bestDropPct}%`;
    console.log(`${sweep.scenario}: ${fmtRate(sweep.fromEventsPerSec)} events/s at slide ${sweep.from} -> ${fmtRate(sweep.toEventsPerSec)} at ${sweep.to}: median drop ${sweep.dropPct}% (${verdict})${bestOf}${failed}`);
    console.log(
      `  reading input (before the end-of-input firing): drop ${sweep.ingestDropPct}%; window results ${fmtRate(sweep.fromWindowResults)} -> ${fmtRate(sweep.toWindowResults)} (they grow as size/slide)`,
    );
  }
  if (baseline) console.log(`baseline: ${baseline.environment.commit} of ${baseline.environment.date}${baseline.quick ? ' (quick mode)' : ''}`);

  const report: Report = {
    environment: env,
    quick: cli.quick,
    results,
    ...(failures.length > 0 ? { failures } : {}),
    ...(cli.runs > 1 ? { runs } : {}),
    ...(sweeps.length > 0 ? { slideSweeps: sweeps } : {}),
  };
  mkdirSync(resultsDir, { recursive: true });
  // A quick run is a smoke test: it must not replace the figures of the last full run.
  const out = path.join(resultsDir, cli.quick ? 'quick.tmp.json' : 'latest.json');
  writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`\nwrote ${path.relative(process.cwd(), out)}`);
  if (cli.saveBaseline) {
    writeFileSync(baselineFile, `${JSON.stringify(report, null, 2)}\n`);
    console.log(`saved it as the baseline: ${path.relative(process.cwd(), baselineFile)}`);
  }
  if (failures.length > 0) process.exitCode = 1;
  if (cli.profile) console.log(`CPU profiles (warm-up and measured run together) in ${profileDir}: open them in Chrome DevTools`);
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
});

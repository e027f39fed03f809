import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { isMainThread } from 'node:worker_threads';
import { pino, type Logger } from 'pino';
import { Pipeline, type PipelineOptions, type Sink, type Source } from '../../src/index.js';
import { silentLogger } from '../../src/observability/logger.js';

/** What one scenario process prints (one JSON line on stdout). */
export interface ScenarioResult {
  readonly scenario: string;
  /** The variant's arguments (`slide=100ms`), or `''`. */
  readonly variant: string;
  readonly quick: boolean;
  /** Records read from the source. */
  readonly events: number;
  /** Records that reached the sink. */
  readonly outputs: number;
  /** Wall time of `p.run()`, ms. */
  readonly wallMs: number;
  /** `events / wallMs`, per second: the headline figure. */
  readonly eventsPerSec: number;
  /** `events / cpuMs`, per CPU second (all threads: GC, the state store's background threads...). */
  readonly eventsPerCpuSec?: number;
  /** CPU time (user + system, all threads) during `p.run()`, ms: compare with wallMs for contention. */
  readonly cpuMs: number;
  /** Processing time of one source batch through the whole graph, ms. */
  readonly latencyMs: { readonly p50: number; readonly p99: number; readonly max: number };
  readonly batches: number;
  readonly batchSize: number;
  /** Time inside the source's `poll` (generating the events), ms: the part of wallMs that is not the engine. */
  readonly sourceMs: number;
  /** From the end of input to `run()` resolving (the +Infinity watermark firing what is left), ms. */
  readonly flushMs: number;
  /** `events / (wallMs - flushMs)`: the rate while reading input, before the final firing. */
  readonly ingestEventsPerSec: number;
  /** Garbage collection pauses during `p.run()`, ms. */
  readonly gcMs: number;
  /** Records each step emitted (`weir_records_out_total` by step): window results, filtered records... */
  readonly recordsOut: Readonly<Record<string, number>>;
  /** Peak resident set size of the process (warm-up included), MB. */
  readonly peakRssMb: number;
  /** The throughput target, events/s (absent: none). */
  readonly targetEventsPerSec?: number;
  /** What the scenario runs: query, windows, event-time rate... */
  readonly config: Readonly<Record<string, unknown>>;
  /** With checkpoints: what the measured run's checkpoints took and wrote. */
  readonly checkpoints?: CheckpointFigures;
  /** Targets other than throughput (checkpoint and recovery times...), each `ok` or not. */
  readonly checks?: readonly TargetCheck[];
  /** Scenario-specific figures (what its `after` returned). */
  readonly extra?: Readonly<Record<string, unknown>>;
  /** Lines the runner prints under the table (what `after` returned). */
  readonly notes?: readonly string[];
}

/**
 * The checkpoints of the measured run. Count and value bytes come from the pipeline's counters
 * (`weir_checkpoints_total`, `weir_checkpoint_bytes_total`: the public route); durations from the
 * coordinator's `checkpoint complete` log lines (there is no public accessor for them), collected
 * through the pino logger the harness gives the job.
 */
export interface CheckpointFigures {
  readonly state: string;
  /** `weir_checkpoints_total`. */
  readonly count: number;
  /** Per checkpoint, ms (wall time from the snapshot to the store's write and retain; processing goes on during the asynchronous part). */
  readonly durationsMs: readonly number[];
  readonly avgMs: number;
  readonly maxMs: number;
  /** The last checkpoint (end of input or `stop()`), ms. */
  readonly lastMs: number;
  /** State entries written (puts and deletes), all checkpoints. */
  readonly stateChanges: number;
  /** The same per checkpoint. */
  readonly stateChangesPer: readonly number[];
  /** `weir_checkpoint_bytes_total`: the encoded state values (UTF-16 units), keys not counted. */
  readonly valueBytes: number;
  /** The store's directory at the end of the run (closed), bytes. */
  readonly diskBytes: number;
  /** What the process wrote during the run (`/proc/self/io`: `write_bytes`, block layer; `wchar`, write calls), bytes; absent off Linux. */
  readonly ioWriteBytes?: number;
  readonly ioWcharBytes?: number;
}

/** A target that is not a throughput: `value <= max`. */
export interface TargetCheck {
  readonly name: string;
  readonly value: number;
  readonly max: number;
  readonly unit: string;
  readonly ok: boolean;
}

/** What a scenario's `build` gets. */
export interface BuildArgs {
  /** How many events the source must produce. */
  readonly events: number;
  /** Wrap the scenario's source with this (it measures batch latency and generation time). */
  wrap<T>(source: Source<T>): Source<T>;
  /** End the graph in this sink (it counts, and keeps nothing). */
  readonly sink: Sink<unknown>;
  /** The variant's arguments (`{ slide: '100ms' }`). */
  readonly args: Readonly<Record<string, string>>;
}

/** What a scenario's `after` gets: the measured run's figures and its checkpoint directory (still there). */
export interface AfterArgs {
  readonly args: Readonly<Record<string, string>>;
  readonly events: number;
  readonly quick: boolean;
  /** The checkpoint directory of the measured run (undefined without checkpoints). */
  readonly dir: string | undefined;
  readonly checkpoints: CheckpointFigures | undefined;
  /** `performance.now()` when `p.run()` resolved. */
  readonly runEndedAt: number;
}

/** One benchmark scenario: a file in `benchmarks/scenarios/` calls {@link runScenario} with it. */
export interface ScenarioSpec {
  readonly name: string;
  /** Events of a full run (sized for 3–10 s), and of a quick one (a smoke test). */
  readonly events: { readonly full: number; readonly quick: number };
  /** Throughput target of the issue, events/s (per variant: a function; undefined: none). */
  readonly targetEventsPerSec?: number | ((args: Readonly<Record<string, string>>) => number | undefined);
  /**
   * Pipeline options beyond name, logger and batch size: the state store and checkpoints. Called
   * per run (warm-up included). With `checkpoint` and no `dir`, each run gets a fresh directory under
   * the OS temp dir, deleted after the run; the harness then reports {@link CheckpointFigures}.
   */
  options?(args: Readonly<Record<string, string>>): Pick<PipelineOptions, 'state' | 'checkpoint' | 'parallelism'>;
  /**
   * After the measured run (not the warm-up), before its checkpoint directory is deleted: more
   * measurements, e.g. a recovery from that directory. Its `extra`, `checks` and `notes` go into the result.
   */
  after?(a: AfterArgs): Promise<{ extra?: Record<string, unknown>; checks?: TargetCheck[]; notes?: string[] }>;
  /** Variants, each run in its own process: `[{ slide: '2s' }, { slide: '1s' }]`. */
  readonly variants?: readonly Readonly<Record<string, string>>[];
  /** Adds the scenario's graph to `p`: `args.wrap(source)` in, `args.sink` out. */
  build(p: Pipeline, args: BuildArgs): void;
  /** What to report about the configuration (may depend on the variant). */
  config(args: Readonly<Record<string, string>>): Record<string, unknown>;
}

const BATCH_SIZE = 1024;

/** `--name=value` arguments of the process. */
function parseArgs(argv: readonly string[]): Record<string, string> {
  const args: Record<string, string> = {};
  for (const a of argv) {
    const m = /^--([^=]+)=(.*)$/.exec(a);
    if (m) args[m[1]] = m[2];
  }
  return args;
}

/**
 * Times a synchronous source: `poll` returning marks the start of a batch's trip through the graph,
 * the next `poll` call its end (the job calls `poll` again as soon as the batch is through).
 */
class TimedSource<T> implements Source<T> {
  readonly name: string;
  latencies = new Float64Array(1024);
  batches = 0;
  sourceMs = 0;
  events = 0;
  endedAt = NaN;
  /** When the last non-empty batch came back (a run ended by `stop()` has no `endedAt`). */
  lastBatchAt = NaN;
  private returnedAt = NaN;
  readonly savePosition?: () => unknown;
  readonly seek?: (position: unknown) => void | Promise<void>;

  constructor(private readonly inner: Source<T>) {
    this.name = inner.name;
    // Checkpoints store the source's position, and a restore seeks it: pass both through.
    if (inner.savePosition) this.savePosition = () => inner.savePosition!();
    if (inner.seek) this.seek = (position) => inner.seek!(position);
  }

  poll(max: number): readonly T[] | null {
    const start = performance.now();
    if (this.returnedAt === this.returnedAt) {
      if (this.batches === this.latencies.length) {
        const grown = new Float64Array(this.latencies.length * 2);
        grown.set(this.latencies);
        this.latencies = grown;
      }
      this.latencies[this.batches++] = start - this.returnedAt;
    }
    const batch = this.inner.poll(max);
    if (batch !== null && !Array.isArray(batch)) throw new Error(`benchmark sources must be synchronous: ${this.inner.name} returned a promise`);
    const end = performance.now();
    this.sourceMs += end - start;
    if (batch === null) {
      this.returnedAt = NaN;
      this.endedAt = end;
    } else {
      const n = (batch as readonly T[]).length;
      this.events += n;
      // An empty batch goes through nothing (the job waits and polls again): not a latency sample.
      this.returnedAt = n > 0 ? end : NaN;
      if (n > 0) this.lastBatchAt = end;
    }
    return batch as readonly T[] | null;
  }
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

const round = (x: number, digits = 3): number => Number(x.toFixed(digits));

/** Total size of the files under `dir`, bytes. */
export function dirBytes(dir: string): number {
  let n = 0;
  for (const f of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, f.name);
    n += f.isDirectory() ? dirBytes(p) : statSync(p).size;
  }
  return n;
}

/** `write_bytes` and `wchar` of `/proc/self/io` (the whole process), or undefined where there is none. */
function processIo(): { writeBytes: number; wchar: number } | undefined {
  try {
    const text = readFileSync('/proc/self/io', 'utf8');
    const field = (name: string) => Number(new RegExp(`^${name}: (\\d+)$`, 'm').exec(text)?.[1]);
    const r = { writeBytes: field('write_bytes'), wchar: field('wchar') };
    return Number.isFinite(r.writeBytes) && Number.isFinite(r.wchar) ? r : undefined;
  } catch {
    return undefined;
  }
}

/** A log line as the job's pino logger wrote it, with when (performance.now()) it was written. */
export interface LogLine {
  readonly at: number;
  readonly record: Record<string, unknown>;
}

/**
 * A pino logger at `info` that keeps the lines matching `keep` (a message) and passes warnings and
 * errors on to stderr. pino writes synchronously to this destination, so `at` is when it logged.
 */
export function collectingLogger(keep: (msg: string) => boolean): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino(
    { level: 'info' },
    {
      write(line: string) {
        const at = performance.now();
        const record = JSON.parse(line) as Record<string, unknown>;
        if (typeof record.msg === 'string' && keep(record.msg)) lines.push({ at, record });
        if (typeof record.level === 'number' && record.level >= 40) process.stderr.write(line);
      },
    },
  );
  return { logger, lines };
}

/** The checkpoints of a run, from its counters and its `checkpoint complete` log lines. */
function checkpointFigures(state: string, metrics: readonly { name: string; value: number }[], lines: readonly LogLine[], dir: string, io0: ReturnType<typeof processIo>): CheckpointFigures {
  const done = lines.filter((l) => l.record.msg === 'checkpoint complete').map((l) => l.record as { durationMs: number; stateChanges: number; bytes: number });
  const durations = done.map((d) => d.durationMs);
  const total = (name: string) => metrics.filter((m) => m.name === name).reduce((a, m) => a + m.value, 0);
  const io1 = processIo();
  return {
    state,
    count: total('weir_checkpoints_total'),
    durationsMs: durations.map((d) => round(d, 1)),
    avgMs: round(durations.reduce((a, d) => a + d, 0) / Math.max(1, durations.length), 1),
    maxMs: round(Math.max(0, ...durations), 1),
    lastMs: round(durations.at(-1) ?? NaN, 1),
    stateChanges: done.reduce((a, d) => a + d.stateChanges, 0),
    stateChangesPer: done.map((d) => d.stateChanges),
    valueBytes: total('weir_checkpoint_bytes_total'),
    diskBytes: existsSync(dir) ? dirBytes(dir) : 0,
    ...(io0 && io1 ? { ioWriteBytes: io1.writeBytes - io0.writeBytes, ioWcharBytes: io1.wchar - io0.wchar } : {}),
  };
}

async function runOnce(spec: ScenarioSpec, events: number, args: Record<string, string>, measured: { quick: boolean } | null) {
  let outputs = 0;
  const sink: Sink<unknown> = {
    name: 'count',
    write(items) {
      outputs += items.length;
    },
  };
  let timed: TimedSource<unknown> | undefined;
  const options: Partial<PipelineOptions> = { ...(spec.options?.(args) ?? {}) };
  if ((options.parallelism ?? 1) > 1) {
    // Worker threads build the same pipeline: they import the scenario's file again (see buildScenarioInWorker).
    const workerArgs: WorkerBuildArgs = { module: pathToFileURL(process.argv[1]).href, events, args };
    Object.assign(options, { workers: { module: import.meta.url, export: 'buildScenarioInWorker', args: workerArgs } });
  }
  let checkpoint = options.checkpoint;
  let ownDir: string | undefined;
  if (checkpoint && checkpoint.dir === undefined && checkpoint.storage === undefined) {
    ownDir = mkdtempSync(path.join(os.tmpdir(), `weir-bench-${spec.name}-`));
    checkpoint = { ...checkpoint, dir: ownDir };
  }
  try {
    const log = checkpoint ? collectingLogger((msg) => msg === 'checkpoint complete') : undefined;
    const p = new Pipeline({ name: spec.name, logger: log?.logger ?? silentLogger(), batchSize: BATCH_SIZE, ...options, ...(checkpoint ? { checkpoint } : {}) });
    spec.build(p, {
      events,
      args,
      sink,
      wrap<T>(source: Source<T>): Source<T> {
        const t = new TimedSource(source);
        timed = t as TimedSource<unknown>;
        return t;
      },
    });
    let gcMs = 0;
    const gc = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) gcMs += e.duration;
    });
    gc.observe({ entryTypes: ['gc'] });
    const io0 = processIo();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const run = await p.run();
    const t1 = performance.now();
    const cpu = process.cpuUsage(cpu0);
    await new Promise((resolve) => setImmediate(resolve));
    gc.disconnect();
    if (!timed) throw new Error(`scenario ${spec.name} did not wrap its source`);
    const recordsOut: Record<string, number> = {};
    for (const m of run.metrics) if (m.name === 'weir_records_out_total' && m.labels.step !== undefined) recordsOut[m.labels.step] = m.value;
    const dir = checkpoint?.dir;
    const checkpoints = checkpoint && dir !== undefined && log ? checkpointFigures(typeof options.state === 'object' ? (options.state.backend ?? 'classic-level') : (options.state ?? 'classic-level'), run.metrics, log.lines, dir, io0) : undefined;
    const after = measured && spec.after ? await spec.after({ args, events, quick: measured.quick, dir, checkpoints, runEndedAt: t1 }) : undefined;
    return { timed, outputs, wallMs: t1 - t0, end: t1, cpuMs: (cpu.user + cpu.system) / 1000, gcMs, recordsOut, checkpoints, after };
  } finally {
    if (ownDir !== undefined) rmSync(ownDir, { recursive: true, force: true });
  }
}

/**
 * Runs a scenario in this process and prints its {@link ScenarioResult} as one JSON line: a short
 * warm-up run (same graph, fewer events) so the measured run is not the JIT's first pass, then the
 * measured run. Environment: `WEIR_BENCH_QUICK=1` (tiny event counts, no warm-up),
 * `WEIR_BENCH_EVENTS=n` (override the count). `--variants` prints the variants instead.
 */
/** The scenario a worker thread's import of a scenario file registered (see {@link buildScenarioInWorker}). */
let registered: ScenarioSpec | null = null;

/** What a worker thread of a scenario run with `parallelism > 1` is started with. */
interface WorkerBuildArgs {
  readonly module: string;
  readonly events: number;
  readonly args: Record<string, string>;
}

/**
 * In a worker thread of a scenario run with `parallelism > 1`: imports the scenario's file (whose
 * `runScenario` call then only registers the spec) and builds the same pipeline.
 */
export async function buildScenarioInWorker(a: WorkerBuildArgs): Promise<Pipeline> {
  await import(a.module);
  const spec = registered;
  if (!spec) throw new Error(`${a.module} did not call runScenario`);
  const options = spec.options?.(a.args) ?? {};
  const workers = { module: import.meta.url, export: 'buildScenarioInWorker', args: a };
  const p = new Pipeline({ name: spec.name, logger: silentLogger(), batchSize: BATCH_SIZE, ...options, workers });
  const sink: Sink<unknown> = { name: 'count', write() {} };
  spec.build(p, { events: a.events, args: a.args, sink, wrap: (source) => source });
  return p;
}

export async function runScenario(spec: ScenarioSpec): Promise<void> {
  if (!isMainThread) {
    registered = spec;
    return;
  }
  if (process.argv.includes('--variants')) {
    process.stdout.write(`${JSON.stringify(spec.variants ?? [{}])}\n`);
    return;
  }
  const args = parseArgs(process.argv.slice(2));
  const quick = process.env.WEIR_BENCH_QUICK === '1' || process.argv.includes('--quick');
  const override = Number(process.env.WEIR_BENCH_EVENTS);
  const events = override > 0 ? Math.floor(override) : quick ? spec.events.quick : spec.events.full;
  if (!quick && process.env.WEIR_BENCH_WARMUP !== '0') await runOnce(spec, Math.min(2_000_000, Math.max(10_000, Math.floor(events / 10))), args, null);

  const { timed, outputs, wallMs, end, cpuMs, gcMs, recordsOut, checkpoints, after } = await runOnce(spec, events, args, { quick });
  // A run ended by stop() has no end of input: its "flush" starts after the last batch.
  const endedAt = timed.endedAt === timed.endedAt ? timed.endedAt : timed.lastBatchAt === timed.lastBatchAt ? timed.lastBatchAt : end;
  const target = typeof spec.targetEventsPerSec === 'function' ? spec.targetEventsPerSec(args) : spec.targetEventsPerSec;
  const lat = timed.latencies.slice(0, timed.batches).sort();
  const result: ScenarioResult = {
    scenario: spec.name,
    variant: Object.entries(args)
      .map(([k, v]) => `${k}=${v}`)
      .join(','),
    quick,
    events: timed.events,
    outputs,
    wallMs: round(wallMs, 1),
    eventsPerSec: Math.round(timed.events / (wallMs / 1000)),
    eventsPerCpuSec: Math.round(timed.events / (cpuMs / 1000)),
    cpuMs: round(cpuMs, 1),
    latencyMs: { p50: round(percentile(lat, 50)), p99: round(percentile(lat, 99)), max: round(percentile(lat, 100)) },
    batches: timed.batches,
    batchSize: BATCH_SIZE,
    sourceMs: round(timed.sourceMs, 1),
    flushMs: round(end - endedAt, 1),
    ingestEventsPerSec: Math.round(timed.events / ((endedAt - (end - wallMs)) / 1000)),
    gcMs: round(gcMs, 1),
    recordsOut,
    peakRssMb: round(process.resourceUsage().maxRSS / 1024, 1),
    ...(target !== undefined ? { targetEventsPerSec: target } : {}),
    config: spec.config(args),
    ...(checkpoints ? { checkpoints } : {}),
    ...(after?.checks ? { checks: after.checks } : {}),
    ...(after?.extra ? { extra: after.extra } : {}),
    ...(after?.notes ? { notes: after.notes } : {}),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

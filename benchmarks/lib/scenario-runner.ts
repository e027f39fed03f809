import { PerformanceObserver } from 'node:perf_hooks';
import { Pipeline, type Sink, type Source } from '../../src/index.js';
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

/** One benchmark scenario: a file in `benchmarks/scenarios/` calls {@link runScenario} with it. */
export interface ScenarioSpec {
  readonly name: string;
  /** Events of a full run (sized for 3–10 s), and of a quick one (a smoke test). */
  readonly events: { readonly full: number; readonly quick: number };
  /** Throughput target of the issue, events/s. */
  readonly targetEventsPerSec?: number;
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
  private returnedAt = NaN;

  constructor(private readonly inner: Source<T>) {
    this.name = inner.name;
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
      this.events += (batch as readonly T[]).length;
      this.returnedAt = end;
    }
    return batch as readonly T[] | null;
  }
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

const round = (x: number, digits = 3): number => Number(x.toFixed(digits));

async function runOnce(spec: ScenarioSpec, events: number, args: Record<string, string>) {
  let outputs = 0;
  const sink: Sink<unknown> = {
    name: 'count',
    write(items) {
      outputs += items.length;
    },
  };
  let timed: TimedSource<unknown> | undefined;
  const p = new Pipeline({ name: spec.name, logger: silentLogger(), batchSize: BATCH_SIZE });
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
  return { timed, outputs, wallMs: t1 - t0, end: t1, cpuMs: (cpu.user + cpu.system) / 1000, gcMs, recordsOut };
}

/**
 * Runs a scenario in this process and prints its {@link ScenarioResult} as one JSON line: a short
 * warm-up run (same graph, fewer events) so the measured run is not the JIT's first pass, then the
 * measured run. Environment: `WEIR_BENCH_QUICK=1` (tiny event counts, no warm-up),
 * `WEIR_BENCH_EVENTS=n` (override the count). `--variants` prints the variants instead.
 */
export async function runScenario(spec: ScenarioSpec): Promise<void> {
  if (process.argv.includes('--variants')) {
    process.stdout.write(`${JSON.stringify(spec.variants ?? [{}])}\n`);
    return;
  }
  const args = parseArgs(process.argv.slice(2));
  const quick = process.env.WEIR_BENCH_QUICK === '1' || process.argv.includes('--quick');
  const override = Number(process.env.WEIR_BENCH_EVENTS);
  const events = override > 0 ? Math.floor(override) : quick ? spec.events.quick : spec.events.full;
  if (!quick && process.env.WEIR_BENCH_WARMUP !== '0') await runOnce(spec, Math.min(2_000_000, Math.max(10_000, Math.floor(events / 10))), args);

  const { timed, outputs, wallMs, end, cpuMs, gcMs, recordsOut } = await runOnce(spec, events, args);
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
    cpuMs: round(cpuMs, 1),
    latencyMs: { p50: round(percentile(lat, 50)), p99: round(percentile(lat, 99)), max: round(percentile(lat, 100)) },
    batches: timed.batches,
    batchSize: BATCH_SIZE,
    sourceMs: round(timed.sourceMs, 1),
    flushMs: round(end - timed.endedAt, 1),
    ingestEventsPerSec: Math.round(timed.events / ((timed.endedAt - (end - wallMs)) / 1000)),
    gcMs: round(gcMs, 1),
    recordsOut,
    peakRssMb: round(process.resourceUsage().maxRSS / 1024, 1),
    ...(spec.targetEventsPerSec !== undefined ? { targetEventsPerSec: spec.targetEventsPerSec } : {}),
    config: spec.config(args),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

import type { Job } from '../runtime/job.js';
import type { MetricsRegistry } from './metrics.js';

/**
 * Prints one progress line per interval: records read and written, the rate since the last line and
 * the slowest source watermark. Runs on a timer, off the record path.
 */
export class ProgressReporter {
  private timer: NodeJS.Timeout | null = null;
  private lastIn = 0;
  private lastAt = 0;
  private readonly startedAt = performance.now();

  constructor(
    private readonly name: string,
    private readonly job: Job,
    private readonly metrics: MetricsRegistry,
    private readonly intervalMs: number,
    private readonly write: (line: string) => void,
  ) {}

  start(): void {
    this.lastAt = performance.now();
    this.timer = setInterval(() => this.report(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.report();
  }

  /** The line as it would be printed now. */
  line(): string {
    const now = performance.now();
    const sources = this.job.compiled.sources.map((s) => s.node.name);
    const sinks = this.job.compiled.sinks.map((s) => s.name);
    let recordsIn = 0;
    for (const s of sources) recordsIn += this.metrics.total('weir_records_in_total', { step: s });
    let recordsOut = 0;
    for (const s of sinks) recordsOut += this.metrics.total('weir_records_in_total', { step: s });
    const secs = Math.max(1e-3, (now - this.lastAt) / 1000);
    const rate = (recordsIn - this.lastIn) / secs;
    this.lastIn = recordsIn;
    this.lastAt = now;
    const late = this.metrics.total('weir_late_records_total');
    const dead = this.metrics.total('weir_dead_letters_total');
    const elapsed = ((now - this.startedAt) / 1000).toFixed(1);
    return `[${this.name}] ${elapsed}s  in ${fmt(recordsIn)}  out ${fmt(recordsOut)}  ${fmt(Math.round(rate))} rec/s  late ${fmt(late)}  dead-letters ${fmt(dead)}`;
  }

  private report(): void {
    this.write(this.line());
  }
}

function fmt(n: number): string {
  return n.toLocaleString('en-US');
}

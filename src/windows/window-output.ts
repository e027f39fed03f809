import type { Counter } from '../observability/metrics.js';
import type { Emitter, OperatorContext } from '../runtime/operator.js';

/** Results are handed downstream in batches of at most about this many. */
const FLUSH_AT = 4096;

/**
 * What an event-time windowing operator (the window operators, the drift step) hands on: its results,
 * buffered and emitted in batches (one emit per input batch or watermark, or every 4096 results when a
 * watermark fires many windows at once), and the elements too late for every window, to the late
 * output or dropped, counted either way (`weir_late_records_total`).
 */
export class WindowOutput {
  private items: unknown[] = [];
  private ts: number[] = [];
  private lateItems: unknown[] = [];
  private lateTs: number[] = [];
  private readonly out: Emitter<unknown>;
  private readonly lateDropped: Counter;
  private readonly lateSide: Counter;

  constructor(
    ctx: OperatorContext<unknown>,
    private readonly lateOut: Emitter<unknown> | undefined,
  ) {
    this.out = ctx.output;
    this.lateDropped = ctx.metrics.counter('weir_late_records_total', { step: ctx.name, outcome: 'dropped' });
    this.lateSide = ctx.metrics.counter('weir_late_records_total', { step: ctx.name, outcome: 'side_output' });
  }

  /** Buffers one result with its timestamp (flushing once many are waiting). */
  result(item: unknown, ts: number): void {
    this.items.push(item);
    this.ts.push(ts);
    if (this.items.length >= FLUSH_AT) this.flush();
  }

  /** An element too late for every window: to the late output, or dropped and counted. */
  tooLate(record: unknown, ts: number): void {
    if (this.lateOut === undefined) {
      this.lateDropped.value++;
      return;
    }
    this.lateSide.value++;
    this.lateItems.push(record);
    this.lateTs.push(ts);
  }

  /** Emits what is buffered: results, then late elements. */
  flush(): void {
    if (this.items.length > 0) {
      const items = this.items;
      const ts = this.ts;
      this.items = [];
      this.ts = [];
      this.out.emit(items, ts);
    }
    if (this.lateItems.length > 0) {
      const items = this.lateItems;
      const ts = this.lateTs;
      this.lateItems = [];
      this.lateTs = [];
      this.lateOut!.emit(items, ts);
    }
  }
}

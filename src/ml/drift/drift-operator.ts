/**
 * The drift step: groups a feature's values into windows (per key on a keyed stream), and when a window
 * completes, tests it against its reference and emits one {@link DriftReport}.
 */
import type { SnapshotWriter, StateEntry } from '../../checkpoint/snapshot.js';
import { preview } from '../../errors.js';
import type { Counter } from '../../observability/metrics.js';
import type { ErrorHandler } from '../../runtime/error-handler.js';
import type { Emitter, Operator, OperatorContext } from '../../runtime/operator.js';
import { NO_KEY, keyOrReport, mod } from '../../windows/window-operator-base.js';
import { WindowOutput } from '../../windows/window-output.js';
import { evaluate } from './drift-evaluation.js';
import { DriftReferences, REFERENCE_TABLE, type KeyReferenceState } from './drift-references.js';
import type { DriftConfig } from './drift-spec.js';
import { WindowSlot, type WindowSlotState } from './window-slot.js';

/** The checkpoint table of open windows: namespace = window start (0 for count windows), key = the key. */
export const WINDOW_TABLE = 'windows';

/** The key of every record of an unkeyed drift step (its state needs one). */
export const UNKEYED = '';

/** What the operator is built from. */
export interface DriftOperatorConfig {
  readonly config: DriftConfig;
  readonly read: (record: unknown) => unknown;
  /** The key function of a keyed stream; undefined: one drift for the whole stream. */
  readonly key: ((record: unknown) => unknown) | undefined;
  /** Where records too late for their window go; absent: dropped and counted. */
  readonly lateOutput: Emitter<unknown> | undefined;
}

/**
 * Event-time tumbling windows fire when the watermark reaches `end - 1`, in start order (so each key
 * meets its windows in order, which the first-window and trailing references rely on); a record whose
 * window has fired is late: it goes to the late output, or is dropped and counted
 * (`weir_late_records_total`). Count windows fire when full.
 *
 * Per record: one timestamp range check, the feature read and check, a key lookup (skipped while the
 * key repeats), and a bin count or an append into a Float64Array. Nothing is allocated per record.
 *
 * Checkpoints are incremental: the (window, key) slots changed since the last snapshot, deletes for
 * fired ones a checkpoint held, and the references that changed.
 */
export class DriftOperator implements Operator<unknown, unknown> {
  private errors!: ErrorHandler;
  private name = '';
  private tracking = false;
  private watermark = -Infinity;
  private readonly config: DriftConfig;
  private readonly read: (record: unknown) => unknown;
  private readonly field: string | undefined;
  private readonly keyFn: ((record: unknown) => unknown) | undefined;
  private readonly keyed: boolean;
  private readonly lateOut: Emitter<unknown> | undefined;
  private readonly refs: DriftReferences;
  private readonly size: number;
  private readonly offset: number;
  private readonly count: number;

  /** Open windows by start; starts ascending from `head`. Count windows use the one namespace 0. */
  private readonly windows = new Map<number, Map<unknown, WindowSlot>>();
  private starts: number[] = [];
  private head = 0;
  // The window of the last record, and the last slot used: most records of a batch hit them again.
  private curStart = NaN;
  private curEnd = NaN;
  private curLate = false;
  private curMap: Map<unknown, WindowSlot> | undefined = undefined;
  private lastKey: unknown = undefined;
  private lastSlot: WindowSlot | null = null;

  /** Snapshot epoch: a slot whose `mark` differs changed for the first time since the last snapshot. */
  private epoch = 0;
  private dirty: WindowSlot[] = [];
  private deleted: WindowSlot[] = [];

  private output!: WindowOutput;
  private reportsNone!: Counter;
  private reportsModerate!: Counter;
  private reportsMajor!: Counter;

  constructor(c: DriftOperatorConfig) {
    this.config = c.config;
    this.read = c.read;
    this.field = c.config.field;
    this.keyFn = c.key;
    this.keyed = c.key !== undefined;
    this.lateOut = c.lateOutput;
    this.refs = new DriftReferences(c.config);
    const w = c.config.window;
    this.size = w.kind === 'tumbling' ? w.size : 0;
    this.offset = w.kind === 'tumbling' ? w.offset : 0;
    this.count = w.kind === 'count' ? w.count : 0;
  }

  open(ctx: OperatorContext<unknown>): void {
    this.errors = ctx.errors;
    this.name = ctx.name;
    this.tracking = ctx.checkpointing;
    if (this.tracking) this.refs.track();
    this.output = new WindowOutput(ctx, this.lateOut);
    this.reportsNone = ctx.metrics.counter('weir_drift_reports_total', { step: ctx.name, level: 'none' });
    this.reportsModerate = ctx.metrics.counter('weir_drift_reports_total', { step: ctx.name, level: 'moderate' });
    this.reportsMajor = ctx.metrics.counter('weir_drift_reports_total', { step: ctx.name, level: 'major' });
  }

  processBatch(items: readonly unknown[], ts: readonly number[]): void {
    const n = items.length;
    const counting = this.count > 0;
    const field = this.field;
    for (let i = 0; i < n; i++) {
      const rec = items[i];
      const t = ts[i];
      if (!counting) {
        if (!(t >= this.curStart && t < this.curEnd)) this.selectWindow(t);
        if (this.curLate) {
          this.tooLate(rec, t);
          continue;
        }
      }
      let key: unknown = UNKEYED;
      if (this.keyed) {
        key = this.keyOf(rec, t);
        if (key === NO_KEY) continue;
      }
      let x: unknown;
      if (field !== undefined) {
        x = rec === null || rec === undefined ? undefined : (rec as Record<string, unknown>)[field];
      } else {
        try {
          x = this.read(rec);
        } catch (e) {
          this.errors.recordFailed('WEIR_USER_FUNCTION_FAILED', `the feature function of ${this.config.test} drift step ${this.name} threw`, rec, t, e);
          continue;
        }
      }
      if (typeof x !== 'number' || x - x !== 0) {
        this.badFeature(rec, t, x);
        continue;
      }
      let slot = this.lastSlot;
      if (slot === null || key !== this.lastKey) slot = this.slotOf(key);
      slot.add(x, t);
      if (this.tracking && slot.mark !== this.epoch) {
        slot.mark = this.epoch;
        this.dirty.push(slot);
      }
      if (counting && slot.n >= this.count) this.fireCount(slot);
    }
    this.flush();
  }

  /** Picks the window of `t`, and whether it has fired already. */
  private selectWindow(t: number): void {
    const start = t - mod(t - this.offset, this.size);
    this.curStart = start;
    this.curEnd = start + this.size;
    this.curLate = start + this.size - 1 <= this.watermark;
    this.curMap = this.curLate ? undefined : this.windows.get(start);
    this.lastSlot = null;
  }

  /** The key's slot in the current window (count windows: its open one), created when missing. */
  private slotOf(key: unknown): WindowSlot {
    const ns = this.count > 0 ? 0 : this.curStart;
    let m = this.count > 0 ? this.windows.get(0) : this.curMap;
    if (m === undefined) m = this.createWindow(ns);
    let slot = m.get(key);
    if (slot === undefined) {
      const bins = this.refs.binsFor(key);
      slot = bins !== null ? WindowSlot.counting(key, ns, bins) : WindowSlot.sampling(key, ns, this.config.k, this.config.exactLimit);
      m.set(key, slot);
    }
    this.lastKey = key;
    this.lastSlot = slot;
    return slot;
  }

  private createWindow(ns: number): Map<unknown, WindowSlot> {
    const m = new Map<unknown, WindowSlot>();
    this.windows.set(ns, m);
    if (this.count === 0) {
      this.insertStart(ns);
      this.curMap = m;
    }
    return m;
  }

  private insertStart(s: number): void {
    const starts = this.starts;
    if (this.head === starts.length || s > starts[starts.length - 1]) {
      starts.push(s);
      return;
    }
    let lo = this.head;
    let hi = starts.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (starts[mid] < s) lo = mid + 1;
      else hi = mid;
    }
    if (starts[lo] !== s) starts.splice(lo, 0, s);
  }

  private keyOf(record: unknown, ts: number): unknown {
    return keyOrReport(this.keyFn!, record, ts, this.errors);
  }


  private badFeature(record: unknown, ts: number, x: unknown): void {
    const what = this.field !== undefined ? `field ${JSON.stringify(this.field)}` : `feature ${JSON.stringify(this.config.feature)} (a function)`;
    const got =
      x === undefined ? (this.field !== undefined ? 'missing (undefined)' : 'undefined')
      : x === null || typeof x === 'number' ? String(x)
      : `${preview(x, 40)} (a ${typeof x})`;
    this.errors.recordFailed(
      'WEIR_FEATURE_INVALID',
      `${what} of record ${preview(record, 120)} is ${got}: drift step ${this.name} (${this.config.test}) needs a finite number`,
      record,
      ts,
    );
  }

  private tooLate(record: unknown, ts: number): void {
    this.output.tooLate(record, ts);
  }

  onWatermark(wm: number): void {
    this.watermark = wm;
    this.curStart = NaN;
    this.curEnd = NaN;
    this.curMap = undefined;
    this.lastSlot = null;
    if (this.count > 0) return;
    const starts = this.starts;
    const size = this.size;
    while (this.head < starts.length && starts[this.head] + size - 1 <= wm) {
      const s = starts[this.head++];
      const m = this.windows.get(s);
      this.windows.delete(s);
      if (m !== undefined) m.forEach((slot) => this.fire(slot, s, s + size, s + size - 1));
    }
    if (this.head > 64 && this.head * 2 > starts.length) {
      this.starts = starts.slice(this.head);
      this.head = 0;
    }
    this.flush();
  }

  private fireCount(slot: WindowSlot): void {
    this.windows.get(0)!.delete(slot.key);
    this.lastSlot = null;
    this.fire(slot, slot.lo, slot.hi + 1, slot.hi);
  }

  /** Tests a complete window against its key's reference (if it has one yet), then lets the reference learn from it. */
  private fire(slot: WindowSlot, start: number, end: number, outTs: number): void {
    slot.alive = false;
    if (slot.persisted) this.deleted.push(slot);
    const ref = this.refs.referenceFor(slot.key);
    if (ref !== null) {
      const report = evaluate(this.config, ref, slot, slot.key, this.keyed, start, end);
      if (report.level === 'none') this.reportsNone.value++;
      else if (report.level === 'moderate') this.reportsModerate.value++;
      else this.reportsMajor.value++;
      this.output.result(report, outTs);
    }
    this.refs.windowFired(slot.key, slot);
  }

  private flush(): void {
    this.output.flush();
  }

  /** The slots changed since the last snapshot, deletes for fired ones a checkpoint held, changed references. */
  snapshotState(out: SnapshotWriter): void {
    for (const slot of this.deleted) out.delete(WINDOW_TABLE, slot.ns, slot.key);
    this.deleted = [];
    for (const slot of this.dirty) {
      if (!slot.alive) continue;
      out.put(WINDOW_TABLE, slot.ns, slot.key, slot.toState());
      slot.persisted = true;
    }
    this.dirty = [];
    this.epoch++;
    this.refs.snapshot(out);
    out.meta = { watermark: this.watermark };
  }

  restoreState(entries: readonly StateEntry[], meta: unknown): void {
    const wm = (meta as { watermark?: number } | undefined)?.watermark;
    if (typeof wm === 'number') this.watermark = wm;
    // References first: a counting window needs its key's bins.
    for (const e of entries) if (e.table === REFERENCE_TABLE) this.refs.restore(e.key, e.value as KeyReferenceState);
    for (const e of entries) {
      if (e.table !== WINDOW_TABLE) continue;
      const state = e.value as WindowSlotState;
      const slot = WindowSlot.fromState(e.key, e.ns, state, state.counts === undefined ? null : this.refs.binsFor(e.key), this.config.k, this.config.exactLimit);
      let m = this.windows.get(e.ns);
      if (m === undefined) {
        m = new Map();
        this.windows.set(e.ns, m);
        if (this.count === 0) this.insertStart(e.ns);
      }
      m.set(e.key, slot);
    }
    this.curStart = NaN;
    this.curEnd = NaN;
    this.curMap = undefined;
    this.lastSlot = null;
  }
}

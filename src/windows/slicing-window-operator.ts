import type { SnapshotWriter, StateEntry } from '../checkpoint/snapshot.js';
import { WeirError } from '../errors.js';
import type { OperatorContext } from '../runtime/operator.js';
import type { StateTable } from '../state/state-backend.js';
import { SlidingWindowCache } from './sliding-window-cache.js';
import type { SlidingWindows, TumblingWindows } from './window-assigner.js';
import { KeyedWindowOperator, NO_ACC, NO_KEY, mod, type WindowOperatorConfig } from './window-operator-base.js';

/** The first index `>= from` of the ascending `sorted` whose value is `>= value`. */
function lowerBound(sorted: readonly number[], from: number, value: number): number {
  let lo = from;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid] < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/**
 * Tumbling and sliding windows by slicing (DESIGN.md §2): time is cut into slices of
 * `gcd(size, slide)`; each element updates ONE slice accumulator of its key, and a window's result is
 * the merge of its slices. Tumbling windows are the case of one slice per window (no merge at all).
 *
 * A window `[s, s + size)` fires when the watermark reaches `s + size - 1`. Its slices are kept until
 * the last window containing them is past `end - 1 + allowedLateness`; an element whose every window
 * is past that goes to the late output. A late element within the lateness re-fires the windows it
 * updated, once per batch.
 */
export class SlicingWindowOperator extends KeyedWindowOperator {
  private readonly size: number;
  private readonly slide: number;
  private readonly offset: number;
  private readonly width: number;
  private slices!: StateTable<number, unknown, unknown>;
  /** Live slice starts, ascending, from `head`. */
  private starts: number[] = [];
  private head = 0;
  // The slice of the last element: most elements of a batch fall into it.
  private curStart = NaN;
  private curEnd = NaN;
  private curMap: Map<unknown, unknown> | undefined;
  private curLate = false;
  /**
   * With checkpoints: slices written since the last snapshot; slices some checkpoint holds (written by
   * a snapshot, or restored); and slices dropped since the last snapshot that a checkpoint holds (their
   * keys get deletes). A slice that lived and died between two checkpoints costs nothing.
   */
  private dirtySlices = new Set<number>();
  private persistedSlices = new Set<number>();
  private droppedSlices = new Map<number, Map<unknown, unknown>>();
  private curRefireFrom = 0;
  private curRefireTo = -1;
  /** Windows (by start) to re-fire after this batch, with the keys a late element updated. */
  private refire: Map<number, Set<unknown>> | null = null;
  private mergeTarget: Map<unknown, unknown> = new Map();
  private firing = { start: 0, end: 0 };
  private readonly mergeInto = (acc: unknown, key: unknown): void => {
    const t = this.mergeTarget.get(key);
    if (t === NO_ACC) return;
    const merged = this.mergeOrFail(t === undefined ? this.agg.create() : t, acc, key, this.firing.start, this.firing.end);
    if (merged !== t) this.mergeTarget.set(key, merged);
  };

  /** Two-stacks merging for windows of many slices (see {@link SlidingWindowCache}); null when cheap anyway. */
  private readonly cache: SlidingWindowCache | null;
  private readonly visitSlices = (from: number, to: number, visit: (start: number, slice: Map<unknown, unknown>) => void): void => {
    const starts = this.starts;
    for (let j = lowerBound(starts, this.head, from); j < starts.length && starts[j] < to; j++) {
      const m = this.slices.peek(starts[j]);
      if (m !== undefined) visit(starts[j], m);
    }
  };

  constructor(assigner: TumblingWindows | SlidingWindows, config: WindowOperatorConfig) {
    super(config);
    this.size = assigner.size;
    this.slide = assigner.kind === 'tumbling' ? assigner.size : assigner.slide;
    this.offset = assigner.offset;
    this.width = gcd(this.size, this.slide);
    this.cache = this.size / this.width > 2 ? new SlidingWindowCache(this.agg, (a, b, k, s, e) => this.mergeOrFail(a, b, k, s, e)) : null;
  }

  override open(ctx: OperatorContext<unknown>): void {
    super.open(ctx);
    this.slices = this.config.state.table<number, unknown, unknown>(ctx.name, 'slices');
  }

  /** Start of the last window containing slice `a`. */
  private lastStart(a: number): number {
    return a - mod(a - this.offset, this.slide);
  }

  /** Start of the first window containing slice `a`. */
  private firstStart(a: number): number {
    const r = mod(a - this.offset, this.slide);
    const k = Math.ceil((this.size - r) / this.slide) - 1;
    return a - r - k * this.slide;
  }

  processBatch(items: readonly unknown[], ts: readonly number[]): void {
    const n = items.length;
    for (let i = 0; i < n; i++) {
      const t = ts[i];
      const rec = items[i];
      if (!(t >= this.curStart && t < this.curEnd)) this.selectSlice(t);
      if (this.curLate) {
        this.tooLate(rec, t);
        continue;
      }
      const k = this.keyOf(rec, t);
      if (k === NO_KEY) continue;
      let m = this.curMap;
      if (m === undefined) m = this.createSlice();
      const prev = m.get(k);
      const next = this.addTo(prev, rec, t);
      if (next === NO_ACC) continue;
      if (next !== prev) m.set(k, next);
      if (this.curRefireFrom <= this.curRefireTo) this.markRefire(k);
    }
    if (this.refire !== null) this.refireWindows();
    this.flush();
  }

  private selectSlice(t: number): void {
    const a = t - mod(t - this.offset, this.width);
    const wm = this.watermark;
    const last = this.lastStart(a);
    this.curStart = a;
    this.curEnd = a + this.width;
    this.curLate = last + this.size - 1 + this.lateness <= wm;
    this.curMap = this.curLate ? undefined : this.slices.peek(a);
    if (this.tracking && !this.curLate) this.dirtySlices.add(a);
    // An element for a slice that fired windows already merged: the cache must start afresh.
    if (!this.curLate && this.cache !== null && a < this.cache.enteredBefore) this.cache.invalidate();
    // Windows of this slice that already fired but are still within the allowed lateness.
    const first = this.firstStart(a);
    const firedTo = Math.min(last, wm - this.size + 1);
    let aliveFrom = first;
    const cleanBelow = wm - this.size + 1 - this.lateness; // windows with s <= this are cleaned up
    if (aliveFrom <= cleanBelow) aliveFrom += (Math.floor((cleanBelow - aliveFrom) / this.slide) + 1) * this.slide;
    this.curRefireFrom = aliveFrom;
    this.curRefireTo = firedTo;
  }

  private createSlice(): Map<unknown, unknown> {
    const a = this.curStart;
    const m = this.slices.namespace(a);
    const starts = this.starts;
    if (this.head === starts.length || a > starts[starts.length - 1]) {
      starts.push(a);
    } else {
      const i = lowerBound(starts, this.head, a);
      if (starts[i] !== a) starts.splice(i, 0, a);
    }
    this.curMap = m;
    return m;
  }

  private markRefire(key: unknown): void {
    this.lateUpdated.value++;
    const refire = (this.refire ??= new Map());
    for (let s = this.curRefireFrom; s <= this.curRefireTo; s += this.slide) {
      let keys = refire.get(s);
      if (keys === undefined) refire.set(s, (keys = new Set()));
      keys.add(key);
    }
  }

  private refireWindows(): void {
    const refire = this.refire!;
    this.refire = null;
    for (const [s, keys] of refire) {
      const end = s + this.size;
      for (const key of keys) {
        let acc: unknown;
        for (let j = this.head; j < this.starts.length && this.starts[j] < end; j++) {
          if (this.starts[j] < s) continue;
          const a = this.slices.peek(this.starts[j])?.get(key);
          if (a !== undefined) acc = this.mergeOrFail(acc === undefined ? this.agg.create() : acc, a, key, s, end);
          if (acc === NO_ACC) break;
        }
        if (acc !== undefined && acc !== NO_ACC) this.fire(key, s, end, acc);
      }
    }
  }

  onWatermark(wm: number): void {
    const prev = this.watermark;
    this.watermark = wm;
    this.curStart = NaN;
    this.curEnd = NaN;
    this.curMap = undefined;
    const starts = this.starts;
    const size = this.size;
    const slide = this.slide;
    const hi = wm - size + 1; // windows with start <= hi are due
    let j = this.head;
    if (j < starts.length) {
      // Windows with start <= lo fired already; the first one not fired is the first aligned start
      // above lo. Starts are whole numbers, watermarks need not be (custom strategies, fractional
      // timestamps): above lo means from floor(lo) + 1.
      const lo = Math.floor(prev - size + 1);
      let s = lo === -Infinity ? this.firstStart(starts[j]) : lo + 1 + mod(this.offset - (lo + 1), slide);
      while (s <= hi) {
        while (j < starts.length && starts[j] < s) j++;
        if (j === starts.length) break;
        const a = starts[j];
        if (a >= s + size) {
          s = Math.max(s + slide, this.firstStart(a));
          continue;
        }
        this.fireWindow(s, j);
        s += slide;
      }
    }
    // Drop slices whose every window is past its cleanup time.
    while (this.head < starts.length && this.lastStart(starts[this.head]) + size - 1 + this.lateness <= wm) {
      if (this.tracking) this.forget(starts[this.head]);
      this.slices.drop(starts[this.head]);
      this.head++;
    }
    if (this.head > 64 && this.head * 2 > starts.length) {
      this.starts = starts.slice(this.head);
      this.head = 0;
    }
    this.flush();
  }

  private forget(a: number): void {
    this.dirtySlices.delete(a);
    if (!this.persistedSlices.delete(a)) return;
    const m = this.slices.peek(a);
    if (m !== undefined) this.droppedSlices.set(a, m);
  }

  /** Slices changed since the last snapshot (whole slices: a slice is small and short-lived), and deletes for dropped ones. */
  snapshotState(out: SnapshotWriter): void {
    for (const [a, m] of this.droppedSlices) m.forEach((_acc, key) => out.delete('slices', a, key));
    for (const a of this.dirtySlices) {
      this.slices.peek(a)?.forEach((acc, key) => out.put('slices', a, key, acc));
      this.persistedSlices.add(a);
    }
    this.droppedSlices.clear();
    this.dirtySlices.clear();
    // The next record must select its slice again, which marks it changed: records of the slice
    // selected last (no new selection while they fall in it) would otherwise miss the next snapshot.
    this.curStart = NaN;
    this.curEnd = NaN;
    out.meta = { watermark: this.watermark };
  }

  restoreState(entries: readonly StateEntry[], meta: unknown): void {
    const starts = new Set<number>();
    for (const e of entries) {
      if (e.table !== 'slices') continue;
      this.slices.namespace(e.ns).set(e.key, e.value);
      starts.add(e.ns);
    }
    this.starts = [...starts].sort((x, y) => x - y);
    this.head = 0;
    this.persistedSlices = new Set(starts);
    const wm = (meta as { watermark?: number } | undefined)?.watermark;
    if (typeof wm === 'number') this.watermark = wm;
    this.curStart = NaN;
    this.curEnd = NaN;
    this.curMap = undefined;
    this.cache?.invalidate();
  }

  private fireWindow(s: number, j: number): void {
    const end = s + this.size;
    const starts = this.starts;
    if (this.width === this.size) {
      const m = this.slices.peek(starts[j]);
      if (m === undefined) throw new WeirError('WEIR_INTERNAL', `slice ${starts[j]} is listed but has no state`, { step: this.name });
      m.forEach((acc, key) => this.fire(key, s, end, acc));
      return;
    }
    if (this.cache !== null) {
      this.cache.window(s, end, this.visitSlices, (key, acc) => this.fire(key, s, end, acc));
      return;
    }
    const target = (this.mergeTarget = new Map());
    this.firing.start = s;
    this.firing.end = end;
    for (let jj = j; jj < starts.length && starts[jj] < end; jj++) {
      this.slices.peek(starts[jj])?.forEach(this.mergeInto);
    }
    target.forEach((acc, key) => {
      if (acc !== NO_ACC) this.fire(key, s, end, acc);
    });
  }
}

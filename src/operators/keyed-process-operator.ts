import type { SnapshotWriter, StateEntry } from '../checkpoint/snapshot.js';
import { WeirError, preview } from '../errors.js';
import type { ErrorHandler } from '../runtime/error-handler.js';
import { MinHeap } from '../runtime/min-heap.js';
import type { Emitter, Operator, OperatorContext, ProcessingTimeService } from '../runtime/operator.js';
import type { StateBackend } from '../state/state-backend.js';
import type {
  Collector,
  KeyedContext,
  KeyedProcessFunction,
  ListState,
  MapState,
  StateDecl,
  StateSpec,
  TimerService,
  ValueState,
} from './keyed-process-function.js';

/** The operator's notion of "the current key", read by the state handles. */
interface KeyScope {
  currentKey: unknown;
}

/**
 * Keys changed since the last snapshot, per state; `null` when the job takes no checkpoints (then
 * nothing is tracked). Handles mark a key on every write, so state must be written with `set` /
 * `add` / `update` / `delete` — an object changed in place without a write is not seen.
 */
type DirtyKeys = Set<unknown> | null;

class ValueHandle implements ValueState<unknown> {
  constructor(private readonly scope: KeyScope, private readonly map: Map<unknown, unknown>, private readonly dflt: unknown, private readonly dirty: DirtyKeys) {}
  get(): unknown {
    const v = this.map.get(this.scope.currentKey);
    return v === undefined ? this.dflt : v;
  }
  set(value: unknown): void {
    this.dirty?.add(this.scope.currentKey);
    if (value === undefined) this.map.delete(this.scope.currentKey);
    else this.map.set(this.scope.currentKey, value);
  }
  clear(): void {
    this.dirty?.add(this.scope.currentKey);
    this.map.delete(this.scope.currentKey);
  }
}

const EMPTY_MAP: ReadonlyMap<unknown, unknown> = new Map();

class MapHandle implements MapState<unknown, unknown> {
  constructor(private readonly scope: KeyScope, private readonly map: Map<unknown, Map<unknown, unknown>>, private readonly dirty: DirtyKeys) {}
  private current(): ReadonlyMap<unknown, unknown> {
    return this.map.get(this.scope.currentKey) ?? EMPTY_MAP;
  }
  get(k: unknown): unknown {
    return this.current().get(k);
  }
  has(k: unknown): boolean {
    return this.current().has(k);
  }
  set(k: unknown, v: unknown): void {
    this.dirty?.add(this.scope.currentKey);
    let m = this.map.get(this.scope.currentKey);
    if (m === undefined) this.map.set(this.scope.currentKey, (m = new Map()));
    m.set(k, v);
  }
  delete(k: unknown): void {
    const m = this.map.get(this.scope.currentKey);
    if (m === undefined) return;
    this.dirty?.add(this.scope.currentKey);
    m.delete(k);
    if (m.size === 0) this.map.delete(this.scope.currentKey);
  }
  entries(): IterableIterator<[unknown, unknown]> {
    return (this.current() as Map<unknown, unknown>).entries();
  }
  get size(): number {
    return this.current().size;
  }
  clear(): void {
    this.dirty?.add(this.scope.currentKey);
    this.map.delete(this.scope.currentKey);
  }
}

const EMPTY_LIST: readonly unknown[] = Object.freeze([]);

class ListHandle implements ListState<unknown> {
  constructor(private readonly scope: KeyScope, private readonly map: Map<unknown, unknown[]>, private readonly dirty: DirtyKeys) {}
  get(): readonly unknown[] {
    return this.map.get(this.scope.currentKey) ?? EMPTY_LIST;
  }
  add(v: unknown): void {
    this.dirty?.add(this.scope.currentKey);
    const l = this.map.get(this.scope.currentKey);
    if (l === undefined) this.map.set(this.scope.currentKey, [v]);
    else l.push(v);
  }
  update(values: unknown[]): void {
    this.dirty?.add(this.scope.currentKey);
    if (values.length === 0) this.map.delete(this.scope.currentKey);
    else this.map.set(this.scope.currentKey, values.slice());
  }
  clear(): void {
    this.dirty?.add(this.scope.currentKey);
    this.map.delete(this.scope.currentKey);
  }
}

/** Timers of one time domain: a heap of (time, key) plus a per-key set that dedups and deletes. */
class KeyedTimers {
  readonly heap = new MinHeap<unknown>();
  readonly byKey = new Map<unknown, Set<number>>();
  /** Keys whose timers changed since the last snapshot (null: not tracked). */
  dirty: DirtyKeys = null;
  register(key: unknown, time: number): boolean {
    this.dirty?.add(key);
    let set = this.byKey.get(key);
    if (set === undefined) this.byKey.set(key, (set = new Set()));
    if (set.has(time)) return false;
    set.add(time);
    this.heap.push(time, key);
    return true;
  }
  delete(key: unknown, time: number): void {
    const set = this.byKey.get(key);
    if (set === undefined) return;
    this.dirty?.add(key);
    set.delete(time);
    if (set.size === 0) this.byKey.delete(key);
  }
  /** Pops the next live timer due at or before `until`; its key, or NO_TIMER. */
  popDue(until: number): { time: number; key: unknown } | null {
    while (this.heap.hasDue(until)) {
      const time = this.heap.peekTime();
      const key = this.heap.pop();
      const set = this.byKey.get(key);
      if (set === undefined || !set.has(time)) continue; // deleted
      this.dirty?.add(key);
      set.delete(time);
      if (set.size === 0) this.byKey.delete(key);
      return { time, key };
    }
    return null;
  }

  /** Writes the timers of changed keys to `table`. */
  snapshot(out: SnapshotWriter, table: string): void {
    if (this.dirty === null) return;
    for (const key of this.dirty) {
      const set = this.byKey.get(key);
      if (set === undefined) out.delete(table, 0, key);
      else out.put(table, 0, key, [...set]);
    }
    this.dirty.clear();
  }

  /** Takes back one key's timers. */
  restore(key: unknown, times: readonly number[]): void {
    const set = new Set(times);
    this.byKey.set(key, set);
    for (const t of set) this.heap.push(t, key);
  }
}

/**
 * Runs a {@link KeyedProcessFunction}: sets the current key, hands the function its state handles
 * (scoped to that key) and timers, and batches what it emits. One context object for the whole
 * operator: nothing is allocated per record.
 */
export class KeyedProcessOperator implements Operator<unknown, unknown>, KeyScope, KeyedContext<unknown, StateSpec>, Collector<unknown>, TimerService {
  currentKey: unknown = undefined;
  timestamp = 0;
  watermark = -Infinity;
  timeDomain: 'event' | 'processing' | undefined = undefined;
  state!: KeyedContext<unknown, StateSpec>['state'];
  readonly timers: TimerService = this;
  private out!: Emitter<unknown>;
  private errors!: ErrorHandler;
  private processing!: ProcessingTimeService;
  private name = '';
  private outItems: unknown[] = [];
  private outTs: number[] = [];
  private readonly eventTimers = new KeyedTimers();
  private readonly procTimers = new KeyedTimers();
  /** Per state name: its table (key → value) and its changed keys (with checkpoints). */
  private readonly tables = new Map<string, { map: Map<unknown, unknown>; dirty: DirtyKeys }>();

  constructor(
    private readonly fn: KeyedProcessFunction<unknown, unknown, unknown, StateSpec>,
    private readonly keyFn: (r: unknown) => unknown,
    private readonly backend: StateBackend,
  ) {}

  get key(): unknown {
    return this.currentKey;
  }

  open(ctx: OperatorContext<unknown>): void {
    this.out = ctx.output;
    this.errors = ctx.errors;
    this.processing = ctx.processingTime;
    this.name = ctx.name;
    const handles: Record<string, unknown> = {};
    const spec = this.fn.state ?? {};
    if (ctx.checkpointing) {
      this.eventTimers.dirty = new Set();
      this.procTimers.dirty = new Set();
    }
    for (const [stateName, decl] of Object.entries(spec) as [string, StateDecl][]) {
      const table = this.backend.table<number, unknown, never>(ctx.name, stateName).namespace(0);
      const dirty: DirtyKeys = ctx.checkpointing ? new Set() : null;
      this.tables.set(stateName, { map: table, dirty });
      switch (decl.kind) {
        case 'value':
          handles[stateName] = new ValueHandle(this, table, decl.defaultValue, dirty);
          break;
        case 'map':
          handles[stateName] = new MapHandle(this, table, dirty);
          break;
        case 'list':
          handles[stateName] = new ListHandle(this, table, dirty);
          break;
        default:
          throw new WeirError('WEIR_INVALID_ARGUMENT', `state ${stateName}: unknown declaration ${preview(decl)}; use state.value / state.map / state.list`, { step: ctx.name });
      }
    }
    this.state = handles as KeyedContext<unknown, StateSpec>['state'];
  }

  processBatch(items: readonly unknown[], ts: readonly number[]): void {
    const n = items.length;
    const fn = this.fn;
    this.timeDomain = undefined;
    for (let i = 0; i < n; i++) {
      const rec = items[i];
      const t = ts[i];
      let k: unknown;
      try {
        k = this.keyFn(rec);
      } catch (e) {
        this.errors.recordFailed('WEIR_USER_FUNCTION_FAILED', 'keyBy function threw', rec, t, e);
        continue;
      }
      if (k === undefined || k === null || k !== k) {
        this.errors.recordFailed('WEIR_KEY_INVALID', `keyBy returned ${preview(k, 20)}`, rec, t);
        continue;
      }
      this.currentKey = k;
      this.timestamp = t;
      try {
        const r = fn.processElement(rec, this, this);
        if (r !== undefined) this.emit(r);
      } catch (e) {
        this.errors.recordFailed('WEIR_USER_FUNCTION_FAILED', 'processElement threw', rec, t, e);
      }
    }
    this.flush();
  }

  onWatermark(wm: number): void {
    this.watermark = wm;
    for (let due = this.eventTimers.popDue(wm); due !== null; due = this.eventTimers.popDue(wm)) {
      this.callTimer(due.time, due.key, 'event', due.time);
    }
    this.flush();
  }

  onProcessingTime(now: number): void {
    for (let due = this.procTimers.popDue(now); due !== null; due = this.procTimers.popDue(now)) {
      this.callTimer(due.time, due.key, 'processing', Number.isFinite(this.watermark) ? this.watermark : due.time);
    }
    this.flush();
  }

  private callTimer(time: number, key: unknown, domain: 'event' | 'processing', outTs: number): void {
    const onTimer = this.fn.onTimer;
    if (onTimer === undefined) return;
    this.currentKey = key;
    this.timestamp = outTs;
    this.timeDomain = domain;
    try {
      const r = onTimer.call(this.fn, time, this, this);
      if (r !== undefined) this.emit(r);
    } catch (e) {
      this.errors.recordFailed('WEIR_USER_FUNCTION_FAILED', `onTimer(${time}) threw`, { key, time }, outTs, e);
    }
    this.timeDomain = undefined;
  }

  emit(value: unknown, timestamp?: number): void {
    const t = timestamp === undefined ? this.timestamp : timestamp;
    if (typeof t !== 'number' || t - t !== 0) {
      throw new WeirError('WEIR_TIMESTAMP_INVALID', `out.emit timestamp is not a finite number (got ${preview(t, 40)})`, { step: this.name, record: value });
    }
    this.outItems.push(value);
    this.outTs.push(t);
  }

  eventTime(time: number): void {
    this.eventTimers.register(this.currentKey, time);
  }
  processingTime(time: number): void {
    if (this.procTimers.register(this.currentKey, time)) this.processing.request(time);
  }
  deleteEventTime(time: number): void {
    this.eventTimers.delete(this.currentKey, time);
  }
  deleteProcessingTime(time: number): void {
    this.procTimers.delete(this.currentKey, time);
  }
  now(): number {
    return this.processing.now();
  }

  /** Per state, the values of changed keys; the timers of changed keys; the watermark. */
  snapshotState(out: SnapshotWriter): void {
    for (const [name, { map, dirty }] of this.tables) {
      if (dirty === null) continue;
      for (const key of dirty) {
        const v = map.get(key);
        if (v === undefined) out.delete(`state:${name}`, 0, key);
        else out.put(`state:${name}`, 0, key, v);
      }
      dirty.clear();
    }
    this.eventTimers.snapshot(out, 'timers:event');
    this.procTimers.snapshot(out, 'timers:processing');
    out.meta = { watermark: this.watermark };
  }

  restoreState(entries: readonly StateEntry[], meta: unknown): void {
    const wm = (meta as { watermark?: number } | undefined)?.watermark;
    if (typeof wm === 'number') this.watermark = wm;
    const procTimes = new Set<number>();
    for (const e of entries) {
      if (e.table === 'timers:event') this.eventTimers.restore(e.key, e.value as number[]);
      else if (e.table === 'timers:processing') {
        this.procTimers.restore(e.key, e.value as number[]);
        for (const t of e.value as number[]) procTimes.add(t);
      } else if (e.table.startsWith('state:')) {
        // State the function no longer declares is dropped: a job may change between restarts.
        this.tables.get(e.table.slice(6))?.map.set(e.key, e.value);
      }
    }
    for (const t of procTimes) this.processing.request(t);
  }

  private flush(): void {
    if (this.outItems.length === 0) return;
    const items = this.outItems;
    const ts = this.outTs;
    this.outItems = [];
    this.outTs = [];
    this.out.emit(items, ts);
  }
}

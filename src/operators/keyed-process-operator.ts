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

class ValueHandle implements ValueState<unknown> {
  constructor(private readonly scope: KeyScope, private readonly map: Map<unknown, unknown>, private readonly dflt: unknown) {}
  get(): unknown {
    const v = this.map.get(this.scope.currentKey);
    return v === undefined ? this.dflt : v;
  }
  set(value: unknown): void {
    if (value === undefined) this.map.delete(this.scope.currentKey);
    else this.map.set(this.scope.currentKey, value);
  }
  clear(): void {
    this.map.delete(this.scope.currentKey);
  }
}

const EMPTY_MAP: ReadonlyMap<unknown, unknown> = new Map();

class MapHandle implements MapState<unknown, unknown> {
  constructor(private readonly scope: KeyScope, private readonly map: Map<unknown, Map<unknown, unknown>>) {}
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
    let m = this.map.get(this.scope.currentKey);
    if (m === undefined) this.map.set(this.scope.currentKey, (m = new Map()));
    m.set(k, v);
  }
  delete(k: unknown): void {
    const m = this.map.get(this.scope.currentKey);
    if (m === undefined) return;
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
    this.map.delete(this.scope.currentKey);
  }
}

const EMPTY_LIST: readonly unknown[] = Object.freeze([]);

class ListHandle implements ListState<unknown> {
  constructor(private readonly scope: KeyScope, private readonly map: Map<unknown, unknown[]>) {}
  get(): readonly unknown[] {
    return this.map.get(this.scope.currentKey) ?? EMPTY_LIST;
  }
  add(v: unknown): void {
    const l = this.map.get(this.scope.currentKey);
    if (l === undefined) this.map.set(this.scope.currentKey, [v]);
    else l.push(v);
  }
  update(values: unknown[]): void {
    if (values.length === 0) this.map.delete(this.scope.currentKey);
    else this.map.set(this.scope.currentKey, values.slice());
  }
  clear(): void {
    this.map.delete(this.scope.currentKey);
  }
}

/** Timers of one time domain: a heap of (time, key) plus a per-key set that dedups and deletes. */
class KeyedTimers {
  readonly heap = new MinHeap<unknown>();
  readonly byKey = new Map<unknown, Set<number>>();
  register(key: unknown, time: number): boolean {
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
      set.delete(time);
      if (set.size === 0) this.byKey.delete(key);
      return { time, key };
    }
    return null;
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
    for (const [stateName, decl] of Object.entries(spec) as [string, StateDecl][]) {
      const table = this.backend.table<number, unknown, never>(ctx.name, stateName).namespace(0);
      switch (decl.kind) {
        case 'value':
          handles[stateName] = new ValueHandle(this, table, decl.defaultValue);
          break;
        case 'map':
          handles[stateName] = new MapHandle(this, table);
          break;
        case 'list':
          handles[stateName] = new ListHandle(this, table);
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

  private flush(): void {
    if (this.outItems.length === 0) return;
    const items = this.outItems;
    const ts = this.outTs;
    this.outItems = [];
    this.outTs = [];
    this.out.emit(items, ts);
  }
}

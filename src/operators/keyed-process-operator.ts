import type { SnapshotWriter, StateEntry } from '../checkpoint/snapshot.js';
import { WeirError, preview } from '../errors.js';
import type { ErrorHandler } from '../runtime/error-handler.js';
import type { Emitter, Operator, OperatorContext, ProcessingTimeService } from '../runtime/operator.js';
import path from 'node:path';
import { SpillCache } from '../state/spill-cache.js';
import type { StateBackend } from '../state/state-backend.js';
import type { Collector, KeyedContext, KeyedProcessFunction, StateDecl, StateSpec, TimerService } from './keyed-process-function.js';
import { KeyedTimers } from './keyed-timers.js';
import { ListHandle, MapHandle, ValueHandle, type DirtyKeys } from './state-handles.js';
import {
  TTL_CLEANUP_BUDGET,
  TtlListHandle,
  TtlMapHandle,
  TtlValueHandle,
  packPlain,
  parseTable,
  tableOf,
  unpack,
  type AnyTtlState,
  type TtlScope,
} from './ttl-state-handles.js';

/** One declared state: its in-memory table, changed keys, checkpoint table and TTL handle (if any). */
interface StateSlot {
  readonly map: Map<unknown, unknown>;
  readonly dirty: DirtyKeys;
  readonly kind: StateDecl['kind'];
  readonly table: string;
  readonly ttl: AnyTtlState | null;
}

/**
 * Runs a {@link KeyedProcessFunction}: sets the current key, hands the function its state handles
 * (scoped to that key) and timers, and batches what it emits. One context object for the whole
 * operator: nothing is allocated per record.
 */
export class KeyedProcessOperator implements Operator<unknown, unknown>, TtlScope, KeyedContext<unknown, StateSpec>, Collector<unknown>, TimerService {
  currentKey: unknown = undefined;
  timestamp = 0;
  watermark = -Infinity;
  /** Processing time as TTL state sees it: read once per batch / callback, only when a state needs it. */
  procNow = 0;
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
  /** Per state name: its table (key → value), changed keys (with checkpoints), TTL handle. */
  private readonly tables = new Map<string, StateSlot>();
  /** The states with a TTL; null when there are none (then the TTL code never runs). */
  private ttlStates: AnyTtlState[] | null = null;
  /** Whether a TTL state counts in processing time (then `procNow` is kept current). */
  private procTtl = false;
  /** The earliest processing-time callback asked for TTL cleanup and not yet received. */
  private ttlRequestedAt = Infinity;
  /** Entries of another format (a state whose TTL changed between runs) to delete at the next snapshot. */
  private readonly staleEntries: { table: string; key: unknown }[] = [];
  /** With `state: { cacheBytes }`: the cache of the states without a TTL (TTL states stay in memory). */
  private spill: SpillCache | null = null;
  /** The spilled tables, in the cache's order. */
  private spillSlots: StateSlot[] = [];
  private batchKeys: unknown[] = [];

  constructor(
    private readonly fn: KeyedProcessFunction<unknown, unknown, unknown, StateSpec>,
    private readonly keyFn: (r: unknown) => unknown,
    private readonly backend: StateBackend,
  ) {}

  get key(): unknown {
    return this.currentKey;
  }

  async open(ctx: OperatorContext<unknown>): Promise<void> {
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
      const ttl = decl.ttl;
      let handle: unknown;
      let ttlHandle: AnyTtlState | null = null;
      switch (decl.kind) {
        case 'value':
          handle = ttl === undefined ? new ValueHandle(this, table, decl.defaultValue, dirty) : (ttlHandle = new TtlValueHandle(this, table, decl.defaultValue, dirty, ttl));
          break;
        case 'map':
          handle = ttl === undefined ? new MapHandle(this, table, dirty) : (ttlHandle = new TtlMapHandle(this, table, dirty, ttl));
          break;
        case 'list':
          handle = ttl === undefined ? new ListHandle(this, table, dirty) : (ttlHandle = new TtlListHandle(this, table, dirty, ttl));
          break;
        default:
          throw new WeirError('WEIR_INVALID_ARGUMENT', `state ${stateName}: unknown declaration ${preview(decl)}; use state.value / state.map / state.list`, { step: ctx.name });
      }
      handles[stateName] = handle;
      this.tables.set(stateName, { map: table, dirty, kind: decl.kind, table: tableOf(stateName, ttl), ttl: ttlHandle });
      if (ttlHandle !== null) {
        (this.ttlStates ??= []).push(ttlHandle);
        if (!ttlHandle.event) this.procTtl = true;
      }
    }
    this.state = handles as KeyedContext<unknown, StateSpec>['state'];
    if (this.procTtl) this.procNow = this.processing.now();
    const spill = this.backend.spill;
    this.spillSlots = [...this.tables.values()].filter((slot) => slot.ttl === null);
    if (spill && this.spillSlots.length > 0) {
      const dir = path.join(spill.dir, ctx.name.replace(/[^A-Za-z0-9_.-]/g, '_'));
      const tables = this.spillSlots.map((slot) => ({ table: slot.table, map: slot.map, dirty: slot.dirty }));
      const pinned = (key: unknown): boolean => this.eventTimers.byKey.has(key) || this.procTimers.byKey.has(key);
      const counters = {
        evicted: ctx.metrics.counter('weir_state_evicted_total', { step: ctx.name }),
        loaded: ctx.metrics.counter('weir_state_loaded_total', { step: ctx.name }),
      };
      this.spill = await SpillCache.open({ cacheBytes: spill.cacheBytes, dir, kind: spill.kind }, tables, pinned, ctx.logger, counters);
    }
  }

  /** With a cache budget: reads the batch's spilled keys back (one read for the batch); null when none is spilled. */
  prefetch(items: readonly unknown[]): Promise<void> | null {
    const spill = this.spill;
    if (spill === null) return null;
    const keys = this.batchKeys;
    keys.length = 0;
    for (let i = 0; i < items.length; i++) {
      let k: unknown;
      try {
        k = this.keyFn(items[i]);
      } catch {
        continue; // processBatch reports it
      }
      if (k !== undefined && k !== null && k === k) keys.push(k);
    }
    return spill.prefetch(keys);
  }

  /** The spill cache's figures (tests, logs), or null without a budget. */
  get spillStats(): { residentKeys: number; residentBytes: number; evictions: number; loads: number; reads: number } | null {
    const s = this.spill;
    return s === null ? null : { residentKeys: s.residentKeys, residentBytes: s.residentBytes, ...s.stats };
  }

  processBatch(items: readonly unknown[], ts: readonly number[]): void {
    const n = items.length;
    const fn = this.fn;
    this.timeDomain = undefined;
    if (this.procTtl) this.procNow = this.processing.now();
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
    if (this.ttlStates !== null) this.cleanupTtl();
    this.spill?.evictIfOver();
    this.flush();
  }

  onWatermark(wm: number): void {
    this.watermark = wm;
    if (this.procTtl) this.procNow = this.processing.now();
    for (let due = this.eventTimers.popDue(wm); due !== null; due = this.eventTimers.popDue(wm)) {
      this.callTimer(due.time, due.key, 'event', due.time);
    }
    if (this.ttlStates !== null) this.cleanupTtl();
    this.spill?.evictIfOver();
    this.flush();
  }

  onProcessingTime(now: number): void {
    if (this.ttlStates !== null) {
      this.procNow = now;
      if (now >= this.ttlRequestedAt) this.ttlRequestedAt = Infinity;
    }
    for (let due = this.procTimers.popDue(now); due !== null; due = this.procTimers.popDue(now)) {
      this.callTimer(due.time, due.key, 'processing', Number.isFinite(this.watermark) ? this.watermark : due.time);
    }
    if (this.ttlStates !== null) this.cleanupTtl();
    this.spill?.evictIfOver();
    this.flush();
  }

  /**
   * Removes up to {@link TTL_CLEANUP_BUDGET} expired entries (event-time states against the watermark,
   * processing-time ones against `procNow`), then asks for a processing-time callback at the next
   * expiry in processing time, or at once when the budget ran out before everything due was removed.
   * Runs after each batch, watermark and processing-time callback: the work per call is bounded, and
   * nothing ever walks all keys.
   */
  private cleanupTtl(): void {
    let budget = TTL_CLEANUP_BUDGET;
    let next = Infinity;
    let behind = false;
    for (const s of this.ttlStates!) {
      const now = s.now();
      budget = s.cleanup(now, budget);
      if (s.heap.hasDue(now)) behind = true;
      else if (!s.event && s.heap.peekTime() < next) next = s.heap.peekTime();
    }
    if (behind) next = Math.min(next, this.processing.now());
    if (next < this.ttlRequestedAt) {
      this.ttlRequestedAt = next;
      this.processing.request(next);
    }
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
    for (const { table, key } of this.staleEntries) out.delete(table, 0, key);
    this.staleEntries.length = 0;
    if (this.spill !== null) {
      // Changed keys that went out of memory since the last snapshot, as they were when they left.
      const evicted = this.spill.takeEvicted();
      for (let t = 0; t < evicted.length; t++) {
        const table = this.spillSlots[t].table;
        for (const [key, encoded] of evicted[t]) {
          if (encoded === undefined) out.delete(table, 0, key);
          else out.putEncoded(table, 0, key, encoded);
        }
      }
    }
    for (const { map, dirty, table, ttl } of this.tables.values()) {
      if (dirty === null) continue;
      for (const key of dirty) {
        const v = map.get(key);
        if (v === undefined) out.delete(table, 0, key);
        else out.put(table, 0, key, ttl === null ? v : ttl.encode(v));
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
    this.procNow = this.processing.now();
    const procTimes = new Set<number>();
    for (const e of entries) {
      if (e.table === 'timers:event') this.eventTimers.restore(e.key, e.value as number[]);
      else if (e.table === 'timers:processing') {
        this.procTimers.restore(e.key, e.value as number[]);
        for (const t of e.value as number[]) procTimes.add(t);
      } else {
        const ref = parseTable(e.table);
        if (ref === null) continue;
        // State the function no longer declares is dropped: a job may change between restarts.
        const slot = this.tables.get(ref.name);
        if (slot === undefined) continue;
        if (slot.ttl === null && e.table === slot.table) slot.map.set(e.key, e.value);
        else this.restoreEntry(slot, ref.domain, e.table, e.key, e.value);
      }
    }
    for (const t of procTimes) this.processing.request(t);
    if (this.ttlStates !== null) this.cleanupTtl();
    if (this.spill !== null) {
      this.spill.reset();
      for (const slot of this.spillSlots) for (const key of slot.map.keys()) this.spill.adopt(key);
      this.spill.evictIfOver();
    }
  }

  /** Closes the spill store (also after a failure). */
  async dispose(): Promise<void> {
    const spill = this.spill;
    this.spill = null;
    await spill?.close();
  }

  /**
   * Restores an entry with a TTL, or one whose TTL changed since it was written. Expired values are
   * dropped (by the clock they were written under). A TTL state takes values written without one (or
   * in the other time domain) as written now: at the restored watermark (0 before any), or at the
   * current processing time. An entry moved to another table is deleted from the old one at the next
   * snapshot. A changed `ttl` duration applies from the next write: stored expiries are kept.
   */
  private restoreEntry(slot: StateSlot, domain: 'event' | 'processing' | null, table: string, key: unknown, value: unknown): void {
    const u = unpack(slot.kind, domain !== null, table, value);
    if (table !== slot.table) {
      this.staleEntries.push({ table, key });
      slot.dirty?.add(key);
    }
    if (u.exps !== null) {
      const now = domain === 'event' ? this.watermark : this.procNow;
      let j = 0;
      for (let i = 0; i < u.exps.length; i++) {
        if (u.exps[i] <= now) continue;
        u.vals[j] = u.vals[i];
        u.exps[j] = u.exps[i];
        if (u.keys !== null) u.keys[j] = u.keys[i];
        j++;
      }
      if (j !== u.exps.length) {
        slot.dirty?.add(key);
        u.vals.length = j;
        u.exps.length = j;
        if (u.keys !== null) u.keys.length = j;
      }
    }
    if (u.vals.length === 0) return;
    const ttl = slot.ttl;
    if (ttl === null) {
      slot.map.set(key, packPlain(slot.kind, u));
      return;
    }
    let exps = u.exps;
    if (exps === null || domain !== (ttl.event ? 'event' : 'processing')) {
      const base = ttl.event ? (Number.isFinite(this.watermark) ? this.watermark : 0) : this.procNow;
      exps = new Array<number>(u.vals.length).fill(base + ttl.ms);
    }
    ttl.load(key, u.keys, u.vals, exps);
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

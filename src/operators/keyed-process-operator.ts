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
  StateTtl,
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

// ---- state with a TTL ----
//
// Chosen at open time: a state declared without `ttl` uses the handles above, untouched. A TTL state
// keeps an expiry with each value (per map entry, per list element) and an expiry queue (a min-heap)
// whose items point at the cells. Each live cell has exactly one "canonical" queue item, at `q` (<= its
// expiry): a write that moves the expiry later pushes nothing (the item, when due, finds the cell still
// alive and re-queues it at its expiry), so the heap grows with live entries, not with writes. Items
// whose cell was removed or replaced, or whose time is not the cell's `q`, are stale and skipped.
// Reads check the expiry themselves (and drop what expired), so cleanup may lag without being seen.

/** Due queue items removed per trigger (watermark, processing-time callback, batch), over all states. */
export const TTL_CLEANUP_BUDGET = 4096;

/** What TTL handles read from the operator: the current key and the clocks. */
interface TtlScope extends KeyScope {
  /** The element's timestamp (in `onTimer`: the timer's `ctx.timestamp`): event-time writes count from it. */
  readonly timestamp: number;
  readonly watermark: number;
  /** Processing time, read once per batch / callback. */
  readonly procNow: number;
}

/** A value with its expiry; `k` leads a queue item back to its table entry. */
class TtlValueCell {
  constructor(public v: unknown, public e: number, public q: number, readonly k: unknown) {}
}
/** One map entry with its expiry. */
class TtlEntryCell {
  constructor(public v: unknown, public e: number, public q: number, readonly k: unknown, readonly mk: unknown) {}
}
/** A key's map: its entries and a lower bound of their expiries (exact after a purge). */
class TtlMapBox {
  readonly m = new Map<unknown, TtlEntryCell>();
  minE = Infinity;
}
/** A key's list: values and their expiries side by side; `minE` is a lower bound of `exps`. */
class TtlListBox {
  constructor(public vals: unknown[], public exps: number[], public minE: number, public q: number, readonly k: unknown) {}
}

/** A checkpoint entry of any format, unpacked: values (with map keys), and expiries when it had a TTL. */
interface Unpacked {
  keys: unknown[] | null;
  vals: unknown[];
  exps: number[] | null;
}

/**
 * The common part of TTL handles: clocks, the expiry queue, bounded cleanup. `Stored` is what the
 * table keeps per key, `Item` what the queue points at (the same, or a map entry).
 */
abstract class TtlState<Stored, Item> {
  readonly heap = new MinHeap<Item>();
  readonly event: boolean;
  protected readonly rw: boolean;
  readonly ms: number;
  constructor(protected readonly scope: TtlScope, protected readonly map: Map<unknown, Stored>, protected readonly dirty: DirtyKeys, ttl: StateTtl) {
    this.event = ttl.timeDomain === 'event';
    this.rw = ttl.update === 'onReadAndWrite';
    this.ms = ttl.ms;
  }
  /** The time expiries are compared with: an entry with expiry `e` is gone once `e <= now()`. */
  now(): number {
    return this.event ? this.scope.watermark : this.scope.procNow;
  }
  /** The expiry of what is written (or, with onReadAndWrite, read) now. */
  protected expiry(): number {
    return (this.event ? this.scope.timestamp : this.scope.procNow) + this.ms;
  }
  /** Handles up to `budget` queue items due at `now`; returns the budget left. */
  cleanup(now: number, budget: number): number {
    const heap = this.heap;
    while (budget > 0 && heap.hasDue(now)) {
      const time = heap.peekTime();
      const item = heap.pop();
      budget--;
      this.due(item, time, now);
    }
    return budget;
  }
  /** A queue item came due: remove the cell if it expired, or queue it again at its expiry. */
  protected abstract due(item: Item, time: number, now: number): void;
  /** What a checkpoint stores for one key (the in-memory form is not plain data). */
  abstract encode(stored: Stored): unknown;
  /** Takes back one key's state (values and expiries, the expired already dropped). */
  abstract load(key: unknown, keys: unknown[] | null, vals: unknown[], exps: number[]): void;
}

class TtlValueHandle extends TtlState<TtlValueCell, TtlValueCell> implements ValueState<unknown> {
  constructor(scope: TtlScope, map: Map<unknown, TtlValueCell>, private readonly dflt: unknown, dirty: DirtyKeys, ttl: StateTtl) {
    super(scope, map, dirty, ttl);
  }
  get(): unknown {
    const k = this.scope.currentKey;
    const c = this.map.get(k);
    if (c === undefined) return this.dflt;
    if (c.e <= this.now()) {
      this.map.delete(k);
      this.dirty?.add(k);
      return this.dflt;
    }
    if (this.rw) {
      const e = this.expiry();
      if (e > c.e) {
        c.e = e;
        this.dirty?.add(k);
      }
    }
    return c.v;
  }
  set(value: unknown): void {
    const k = this.scope.currentKey;
    this.dirty?.add(k);
    if (value === undefined) {
      this.map.delete(k);
      return;
    }
    const e = this.expiry();
    const c = this.map.get(k);
    if (c === undefined) {
      const cell = new TtlValueCell(value, e, e, k);
      this.map.set(k, cell);
      this.heap.push(e, cell);
    } else {
      c.v = value;
      c.e = e;
      if (e < c.q) {
        c.q = e;
        this.heap.push(e, c);
      }
    }
  }
  clear(): void {
    this.dirty?.add(this.scope.currentKey);
    this.map.delete(this.scope.currentKey);
  }
  protected due(c: TtlValueCell, time: number, now: number): void {
    if (c.q !== time || this.map.get(c.k) !== c) return;
    if (c.e <= now) {
      this.map.delete(c.k);
      this.dirty?.add(c.k);
    } else {
      c.q = c.e;
      this.heap.push(c.e, c);
    }
  }
  /** `[value, expiry]`. */
  encode(c: TtlValueCell): unknown {
    return [c.v, c.e];
  }
  load(key: unknown, _keys: unknown[] | null, vals: unknown[], exps: number[]): void {
    const cell = new TtlValueCell(vals[0], exps[0], exps[0], key);
    this.map.set(key, cell);
    this.heap.push(cell.e, cell);
  }
}

function* liveEntries(m: Map<unknown, TtlEntryCell>): IterableIterator<[unknown, unknown]> {
  for (const [mk, c] of m) yield [mk, c.v];
}

class TtlMapHandle extends TtlState<TtlMapBox, TtlEntryCell> implements MapState<unknown, unknown> {
  get(mk: unknown): unknown {
    const c = this.cell(mk);
    return c === undefined ? undefined : c.v;
  }
  has(mk: unknown): boolean {
    return this.cell(mk) !== undefined;
  }
  /** The live cell of `mk` (touched, with onReadAndWrite); drops it if it expired. */
  private cell(mk: unknown): TtlEntryCell | undefined {
    const k = this.scope.currentKey;
    const box = this.map.get(k);
    if (box === undefined) return undefined;
    const c = box.m.get(mk);
    if (c === undefined) return undefined;
    if (c.e <= this.now()) {
      this.dirty?.add(k);
      box.m.delete(mk);
      if (box.m.size === 0) this.map.delete(k);
      return undefined;
    }
    if (this.rw) {
      const e = this.expiry();
      if (e > c.e) {
        c.e = e;
        this.dirty?.add(k);
      }
    }
    return c;
  }
  set(mk: unknown, v: unknown): void {
    const k = this.scope.currentKey;
    this.dirty?.add(k);
    let box = this.map.get(k);
    if (box === undefined) this.map.set(k, (box = new TtlMapBox()));
    const e = this.expiry();
    const c = box.m.get(mk);
    if (c === undefined) {
      const cell = new TtlEntryCell(v, e, e, k, mk);
      box.m.set(mk, cell);
      this.heap.push(e, cell);
    } else {
      c.v = v;
      c.e = e;
      if (e < c.q) {
        c.q = e;
        this.heap.push(e, c);
      }
    }
    if (e < box.minE) box.minE = e;
  }
  delete(mk: unknown): void {
    const k = this.scope.currentKey;
    const box = this.map.get(k);
    if (box === undefined) return;
    this.dirty?.add(k);
    box.m.delete(mk);
    if (box.m.size === 0) this.map.delete(k);
  }
  /** Every live entry (with onReadAndWrite, each counts as read). */
  entries(): IterableIterator<[unknown, unknown]> {
    const box = this.live();
    if (box === undefined) return EMPTY_MAP.entries() as IterableIterator<[unknown, unknown]>;
    if (this.rw) {
      const e = this.expiry();
      let touched = false;
      for (const c of box.m.values()) {
        if (e > c.e) {
          c.e = e;
          touched = true;
        }
      }
      if (touched) this.dirty?.add(this.scope.currentKey);
    }
    return liveEntries(box.m);
  }
  /** Live entries (not a read: does not refresh them). */
  get size(): number {
    const box = this.live();
    return box === undefined ? 0 : box.m.size;
  }
  clear(): void {
    this.dirty?.add(this.scope.currentKey);
    this.map.delete(this.scope.currentKey);
  }
  /** The current key's map with its expired entries dropped (one pass, only when one may have expired). */
  private live(): TtlMapBox | undefined {
    const k = this.scope.currentKey;
    const box = this.map.get(k);
    if (box === undefined) return undefined;
    const now = this.now();
    if (box.minE > now) return box;
    let min = Infinity;
    const size = box.m.size;
    for (const [mk, c] of box.m) {
      if (c.e <= now) box.m.delete(mk);
      else if (c.e < min) min = c.e;
    }
    box.minE = min;
    if (box.m.size !== size) this.dirty?.add(k);
    if (box.m.size === 0) {
      this.map.delete(k);
      return undefined;
    }
    return box;
  }
  protected due(c: TtlEntryCell, time: number, now: number): void {
    if (c.q !== time) return;
    const box = this.map.get(c.k);
    if (box === undefined || box.m.get(c.mk) !== c) return;
    if (c.e <= now) {
      this.dirty?.add(c.k);
      box.m.delete(c.mk);
      if (box.m.size === 0) this.map.delete(c.k);
    } else {
      c.q = c.e;
      this.heap.push(c.e, c);
    }
  }
  /** `[mapKey, value, expiry, mapKey, value, expiry, ...]` (plain data stays JSON). */
  encode(box: TtlMapBox): unknown {
    const flat: unknown[] = [];
    for (const [mk, c] of box.m) flat.push(mk, c.v, c.e);
    return flat;
  }
  load(key: unknown, keys: unknown[] | null, vals: unknown[], exps: number[]): void {
    const box = new TtlMapBox();
    for (let i = 0; i < vals.length; i++) {
      const cell = new TtlEntryCell(vals[i], exps[i], exps[i], key, keys![i]);
      box.m.set(cell.mk, cell);
      this.heap.push(cell.e, cell);
      if (cell.e < box.minE) box.minE = cell.e;
    }
    this.map.set(key, box);
  }
}

class TtlListHandle extends TtlState<TtlListBox, TtlListBox> implements ListState<unknown> {
  get(): readonly unknown[] {
    const k = this.scope.currentKey;
    let box = this.map.get(k);
    if (box === undefined) return EMPTY_LIST;
    if (box.minE <= this.now()) {
      box = this.purge(box, this.now());
      if (box === undefined) return EMPTY_LIST;
    }
    if (this.rw) {
      const e = this.expiry();
      const exps = box.exps;
      let touched = false;
      let min = Infinity;
      for (let i = 0; i < exps.length; i++) {
        if (e > exps[i]) {
          exps[i] = e;
          touched = true;
        }
        if (exps[i] < min) min = exps[i];
      }
      box.minE = min;
      if (touched) this.dirty?.add(k);
    }
    return box.vals;
  }
  add(v: unknown): void {
    const k = this.scope.currentKey;
    this.dirty?.add(k);
    const e = this.expiry();
    const box = this.map.get(k);
    if (box === undefined) {
      const b = new TtlListBox([v], [e], e, e, k);
      this.map.set(k, b);
      this.heap.push(e, b);
      return;
    }
    box.vals.push(v);
    box.exps.push(e);
    if (e < box.minE) box.minE = e;
    if (e < box.q) {
      box.q = e;
      this.heap.push(e, box);
    }
  }
  update(values: unknown[]): void {
    const k = this.scope.currentKey;
    this.dirty?.add(k);
    if (values.length === 0) {
      this.map.delete(k);
      return;
    }
    const e = this.expiry();
    const exps = new Array<number>(values.length).fill(e);
    const box = this.map.get(k);
    if (box === undefined) {
      const b = new TtlListBox(values.slice(), exps, e, e, k);
      this.map.set(k, b);
      this.heap.push(e, b);
      return;
    }
    box.vals = values.slice();
    box.exps = exps;
    box.minE = e;
    if (e < box.q) {
      box.q = e;
      this.heap.push(e, box);
    }
  }
  clear(): void {
    this.dirty?.add(this.scope.currentKey);
    this.map.delete(this.scope.currentKey);
  }
  /** Drops the expired elements in place (order kept); the box, or undefined when none is left. */
  private purge(box: TtlListBox, now: number): TtlListBox | undefined {
    const { vals, exps } = box;
    const n = exps.length;
    let j = 0;
    let min = Infinity;
    for (let i = 0; i < n; i++) {
      const e = exps[i];
      if (e <= now) continue;
      vals[j] = vals[i];
      exps[j] = e;
      j++;
      if (e < min) min = e;
    }
    box.minE = min;
    if (j === n) return box;
    this.dirty?.add(box.k);
    if (j === 0) {
      this.map.delete(box.k);
      return undefined;
    }
    vals.length = j;
    exps.length = j;
    return box;
  }
  protected due(box: TtlListBox, time: number, now: number): void {
    if (box.q !== time || this.map.get(box.k) !== box) return;
    const live = box.minE <= now ? this.purge(box, now) : box;
    if (live === undefined) return;
    live.q = live.minE;
    this.heap.push(live.q, live);
  }
  /** `[values, expiries]`. */
  encode(box: TtlListBox): unknown {
    return [box.vals, box.exps];
  }
  load(key: unknown, _keys: unknown[] | null, vals: unknown[], exps: number[]): void {
    let min = Infinity;
    for (const e of exps) if (e < min) min = e;
    const box = new TtlListBox(vals, exps, min, min, key);
    this.map.set(key, box);
    this.heap.push(min, box);
  }
}

/**
 * Checkpoint tables of keyed state: `state:<name>` without a TTL (the value as the function sees it),
 * `state-ttl:<domain>:<name>` with one (values with their expiries, see each handle's `encode`).
 */
function tableOf(name: string, ttl: StateTtl | undefined): string {
  return ttl === undefined ? `state:${name}` : `state-ttl:${ttl.timeDomain}:${name}`;
}

/** The state name and format of a checkpoint table, or null for a table that is not keyed state. */
function parseTable(table: string): { name: string; domain: 'event' | 'processing' | null } | null {
  if (table.startsWith('state:')) return { name: table.slice(6), domain: null };
  if (table.startsWith('state-ttl:event:')) return { name: table.slice(16), domain: 'event' };
  if (table.startsWith('state-ttl:processing:')) return { name: table.slice(21), domain: 'processing' };
  return null;
}

function badEntry(table: string, kind: string): WeirError {
  return new WeirError('WEIR_CHECKPOINT_INVALID', `checkpoint table ${table}: an entry does not have the shape of ${kind} state (was the state's kind changed between runs?)`);
}

function isNumberArray(a: unknown): a is number[] {
  return Array.isArray(a) && a.every((x) => typeof x === 'number');
}

/** Reads a stored entry of either format (with or without TTL) into one shape. */
function unpack(kind: StateDecl['kind'], withTtl: boolean, table: string, value: unknown): Unpacked {
  switch (kind) {
    case 'value':
      if (!withTtl) return { keys: null, vals: [value], exps: null };
      if (!Array.isArray(value) || value.length !== 2 || typeof value[1] !== 'number') throw badEntry(table, 'value');
      return { keys: null, vals: [value[0]], exps: [value[1]] };
    case 'map': {
      if (!withTtl) {
        if (!(value instanceof Map)) throw badEntry(table, 'map');
        return { keys: [...value.keys()], vals: [...value.values()], exps: null };
      }
      if (!Array.isArray(value) || value.length % 3 !== 0) throw badEntry(table, 'map');
      const keys: unknown[] = [];
      const vals: unknown[] = [];
      const exps: number[] = [];
      for (let i = 0; i < value.length; i += 3) {
        if (typeof value[i + 2] !== 'number') throw badEntry(table, 'map');
        keys.push(value[i]);
        vals.push(value[i + 1]);
        exps.push(value[i + 2]);
      }
      return { keys, vals, exps };
    }
    case 'list':
      if (!withTtl) {
        if (!Array.isArray(value)) throw badEntry(table, 'list');
        return { keys: null, vals: value, exps: null };
      }
      if (!Array.isArray(value) || value.length !== 2 || !Array.isArray(value[0]) || !isNumberArray(value[1]) || value[0].length !== value[1].length) {
        throw badEntry(table, 'list');
      }
      return { keys: null, vals: value[0], exps: value[1] };
  }
}

/** Writes back the in-memory form of a state without TTL. */
function packPlain(kind: StateDecl['kind'], u: Unpacked): unknown {
  switch (kind) {
    case 'value':
      return u.vals[0];
    case 'map': {
      const m = new Map<unknown, unknown>();
      for (let i = 0; i < u.vals.length; i++) m.set(u.keys![i], u.vals[i]);
      return m;
    }
    case 'list':
      return u.vals;
  }
}

/** A TTL handle of any kind, as the operator drives it. */
type AnyTtlState = TtlState<any, unknown>;

/** One declared state: its in-memory table, changed keys, checkpoint table and TTL handle (if any). */
interface StateSlot {
  readonly map: Map<unknown, unknown>;
  readonly dirty: DirtyKeys;
  readonly kind: StateDecl['kind'];
  readonly table: string;
  readonly ttl: AnyTtlState | null;
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
    this.flush();
  }

  onWatermark(wm: number): void {
    this.watermark = wm;
    if (this.procTtl) this.procNow = this.processing.now();
    for (let due = this.eventTimers.popDue(wm); due !== null; due = this.eventTimers.popDue(wm)) {
      this.callTimer(due.time, due.key, 'event', due.time);
    }
    if (this.ttlStates !== null) this.cleanupTtl();
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

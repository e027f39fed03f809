/**
 * The handles of keyed state with a TTL, their expiry queues and bounded cleanup, and the checkpoint
 * format of keyed state (with and without TTL).
 */
import { WeirError } from '../errors.js';
import { MinHeap } from '../runtime/min-heap.js';
import type { ListState, MapState, StateDecl, StateTtl, ValueState } from './keyed-process-function.js';
import { EMPTY_LIST, EMPTY_MAP, type DirtyKeys, type KeyScope } from './state-handles.js';

/** Due queue items removed per trigger (watermark, processing-time callback, batch), over all states. */
export const TTL_CLEANUP_BUDGET = 4096;

/** What TTL handles read from the operator: the current key and the clocks. */
export interface TtlScope extends KeyScope {
  /** The element's timestamp (in `onTimer`: the timer's `ctx.timestamp`): event-time writes count from it. */
  readonly timestamp: number;
  readonly watermark: number;
  /** Processing time, read once per batch / callback. */
  readonly procNow: number;
}

/** A value with its expiry; `k` leads a queue item back to its table entry. */
export class TtlValueCell {
  constructor(public v: unknown, public e: number, public q: number, readonly k: unknown) {}
}
/** One map entry with its expiry. */
export class TtlEntryCell {
  constructor(public v: unknown, public e: number, public q: number, readonly k: unknown, readonly mk: unknown) {}
}
/** A key's map: its entries and a lower bound of their expiries (exact after a purge). */
export class TtlMapBox {
  readonly m = new Map<unknown, TtlEntryCell>();
  minE = Infinity;
}
/** A key's list: values and their expiries side by side; `minE` is a lower bound of `exps`. */
export class TtlListBox {
  constructor(public vals: unknown[], public exps: number[], public minE: number, public q: number, readonly k: unknown) {}
}

/** A checkpoint entry of any format, unpacked: values (with map keys), and expiries when it had a TTL. */
export interface Unpacked {
  keys: unknown[] | null;
  vals: unknown[];
  exps: number[] | null;
}

/**
 * The common part of TTL handles: clocks, the expiry queue, bounded cleanup. `Stored` is what the
 * table keeps per key, `Item` what the queue points at (the same, or a map entry).
 */
export abstract class TtlState<Stored, Item> {
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
  /** Drops the current key's state (its queue items go stale and are skipped when due). */
  clear(): void {
    this.dirty?.add(this.scope.currentKey);
    this.map.delete(this.scope.currentKey);
  }
  /** A queue item came due: remove the cell if it expired, or queue it again at its expiry. */
  protected abstract due(item: Item, time: number, now: number): void;
  /** What a checkpoint stores for one key (the in-memory form is not plain data). */
  abstract encode(stored: Stored): unknown;
  /** Takes back one key's state (values and expiries, the expired already dropped). */
  abstract load(key: unknown, keys: unknown[] | null, vals: unknown[], exps: number[]): void;
}

export class TtlValueHandle extends TtlState<TtlValueCell, TtlValueCell> implements ValueState<unknown> {
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

export function* liveEntries(m: Map<unknown, TtlEntryCell>): IterableIterator<[unknown, unknown]> {
  for (const [mk, c] of m) yield [mk, c.v];
}

export class TtlMapHandle extends TtlState<TtlMapBox, TtlEntryCell> implements MapState<unknown, unknown> {
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

export class TtlListHandle extends TtlState<TtlListBox, TtlListBox> implements ListState<unknown> {
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
export function tableOf(name: string, ttl: StateTtl | undefined): string {
  return ttl === undefined ? `state:${name}` : `state-ttl:${ttl.timeDomain}:${name}`;
}

/** The state name and format of a checkpoint table, or null for a table that is not keyed state. */
export function parseTable(table: string): { name: string; domain: 'event' | 'processing' | null } | null {
  if (table.startsWith('state:')) return { name: table.slice(6), domain: null };
  if (table.startsWith('state-ttl:event:')) return { name: table.slice(16), domain: 'event' };
  if (table.startsWith('state-ttl:processing:')) return { name: table.slice(21), domain: 'processing' };
  return null;
}

export function badEntry(table: string, kind: string): WeirError {
  return new WeirError('WEIR_CHECKPOINT_INVALID', `checkpoint table ${table}: an entry does not have the shape of ${kind} state (was the state's kind changed between runs?)`);
}

export function isNumberArray(a: unknown): a is number[] {
  return Array.isArray(a) && a.every((x) => typeof x === 'number');
}

/** Reads a stored entry of either format (with or without TTL) into one shape. */
export function unpack(kind: StateDecl['kind'], withTtl: boolean, table: string, value: unknown): Unpacked {
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
export function packPlain(kind: StateDecl['kind'], u: Unpacked): unknown {
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
export type AnyTtlState = TtlState<any, unknown>;


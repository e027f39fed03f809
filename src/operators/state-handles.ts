/**
 * The handles of keyed state without TTL, scoped to the operator's current key. Each write marks the
 * key changed (when the job checkpoints), so the next snapshot writes just those keys.
 */
import type { ListState, MapState, ValueState } from './keyed-process-function.js';

/** The operator's notion of "the current key", read by the state handles. */
export interface KeyScope {
  currentKey: unknown;
}

/**
 * Keys changed since the last snapshot, per state; `null` when the job takes no checkpoints (then
 * nothing is tracked). Handles mark a key on every write, so state must be written with `set` /
 * `add` / `update` / `delete` — an object changed in place without a write is not seen.
 */
export type DirtyKeys = Set<unknown> | null;

export class ValueHandle implements ValueState<unknown> {
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

export const EMPTY_MAP: ReadonlyMap<unknown, unknown> = new Map();

export class MapHandle implements MapState<unknown, unknown> {
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

export const EMPTY_LIST: readonly unknown[] = Object.freeze([]);

export class ListHandle implements ListState<unknown> {
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


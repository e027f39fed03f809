import type { SnapshotWriter } from '../checkpoint/snapshot.js';
import { MinHeap } from '../runtime/min-heap.js';
import type { DirtyKeys } from './state-handles.js';

/** Timers of one time domain: a heap of (time, key) plus a per-key set that dedups and deletes. */
export class KeyedTimers {
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


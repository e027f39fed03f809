/**
 * A binary min-heap ordered by a numeric `time`, with the payload kept beside it. Used for event-time
 * and processing-time timers; stale entries are skipped by their owners (lazy deletion), so there is no
 * decrease-key.
 */
export class MinHeap<V> {
  private times: number[] = [];
  private values: V[] = [];

  get size(): number {
    return this.times.length;
  }

  /** The smallest time, or `+Infinity` when empty. */
  peekTime(): number {
    return this.times.length === 0 ? Infinity : this.times[0];
  }

  /** Whether an entry is due at `time` (works for `time = +Infinity`, unlike comparing `peekTime`). */
  hasDue(time: number): boolean {
    return this.times.length > 0 && this.times[0] <= time;
  }

  push(time: number, value: V): void {
    const times = this.times;
    const values = this.values;
    let i = times.length;
    times.push(time);
    values.push(value);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (times[parent] <= time) break;
      times[i] = times[parent];
      values[i] = values[parent];
      i = parent;
    }
    times[i] = time;
    values[i] = value;
  }

  /** Removes and returns the payload with the smallest time; call only when `size > 0`. */
  pop(): V {
    const times = this.times;
    const values = this.values;
    const top = values[0];
    const lastTime = times.pop()!;
    const lastValue = values.pop()!;
    const n = times.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && times[r] < times[l] ? r : l;
        if (times[c] >= lastTime) break;
        times[i] = times[c];
        values[i] = values[c];
        i = c;
      }
      times[i] = lastTime;
      values[i] = lastValue;
    }
    return top;
  }

  clear(): void {
    this.times = [];
    this.values = [];
  }
}

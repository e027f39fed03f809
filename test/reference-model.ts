/**
 * A naive reference model of DESIGN.md §2, written to be obviously correct rather than fast, and
 * independent of the engine: it imports nothing from `src/`. The window tests compare the engine with it.
 *
 * - {@link expectedWindows} / {@link expectedResults}: the offline answer (every event known, none late).
 * - {@link OperationalModel}: the same rules replayed step by step with a watermark and allowed lateness,
 *   for late data: which windows have fired with which value, which events are too late.
 */

export type Key = string | number;

/** An input event. `id` is unique per test case, so window contents can be compared exactly. */
export interface Ev {
  readonly key: Key;
  readonly ts: number;
  readonly value: number;
  readonly id: number;
}

export type WindowSpec =
  | { readonly kind: 'tumbling'; readonly size: number; readonly offset: number }
  | { readonly kind: 'sliding'; readonly size: number; readonly slide: number; readonly offset: number }
  | { readonly kind: 'session'; readonly gap: number };

export interface Result<R> {
  readonly key: Key;
  readonly start: number;
  readonly end: number;
  readonly value: R;
}

/** The events of one window of one key. */
export interface WindowContents {
  readonly key: Key;
  readonly start: number;
  readonly end: number;
  readonly events: Ev[];
}

/** `x mod m` in `[0, m)`, negative `x` included. */
function mod(x: number, m: number): number {
  return ((x % m) + m) % m;
}

/**
 * Every aligned window `[s, s + size)` that contains `t`, found by brute force: try every start in
 * `(t - size, t]` and keep those on the grid `offset + k * step` (step = size for tumbling, slide for
 * sliding).
 */
export function alignedWindowsOf(spec: Exclude<WindowSpec, { kind: 'session' }>, t: number): Array<[number, number]> {
  const size = spec.size;
  const step = spec.kind === 'tumbling' ? spec.size : spec.slide;
  const out: Array<[number, number]> = [];
  for (let s = t - size + 1; s <= t; s++) {
    if (mod(s - spec.offset, step) === 0) out.push([s, s + size]);
  }
  return out;
}

/**
 * Sessions of one key, the obvious way: sort the key's timestamps and walk them; the next event joins
 * the current session `[start, end)` when `t <= end` (sessions are `[t, t + gap)` and touching ones
 * merge), else it opens a new one.
 */
export function sessionsOf(events: readonly Ev[], gap: number): WindowContents[] {
  const byKey = groupByKey(events);
  const out: WindowContents[] = [];
  for (const [key, evs] of byKey) {
    const sorted = [...evs].sort((a, b) => a.ts - b.ts || a.id - b.id);
    let cur: { key: Key; start: number; end: number; events: Ev[] } | null = null;
    for (const e of sorted) {
      if (cur !== null && e.ts <= cur.end) {
        cur.end = Math.max(cur.end, e.ts + gap);
        cur.events.push(e);
      } else {
        cur = { key, start: e.ts, end: e.ts + gap, events: [e] };
        out.push(cur);
      }
    }
  }
  return out;
}

/** The offline answer: every window with at least one event, and its events. */
export function expectedWindows(spec: WindowSpec, events: readonly Ev[]): WindowContents[] {
  if (spec.kind === 'session') return sessionsOf(events, spec.gap);
  const byId = new Map<string, WindowContents>();
  for (const e of events) {
    for (const [start, end] of alignedWindowsOf(spec, e.ts)) {
      const id = windowId(e.key, start, end);
      let w = byId.get(id);
      if (w === undefined) byId.set(id, (w = { key: e.key, start, end, events: [] }));
      w.events.push(e);
    }
  }
  return [...byId.values()];
}

/** The offline results with `f` applied to each window's events. */
export function expectedResults<R>(spec: WindowSpec, events: readonly Ev[], f: (events: Ev[]) => R): Result<R>[] {
  return expectedWindows(spec, events).map((w) => ({ key: w.key, start: w.start, end: w.end, value: f(w.events) }));
}

/** A stable identity of one window of one key (a number key and a string key stay different). */
export function windowId(key: Key, start: number, end: number): string {
  return JSON.stringify([key, start, end]);
}

function groupByKey(events: readonly Ev[]): Map<Key, Ev[]> {
  const m = new Map<Key, Ev[]>();
  for (const e of events) {
    const l = m.get(e.key);
    if (l === undefined) m.set(e.key, [e]);
    else l.push(e);
  }
  return m;
}

/** Sorts results canonically (key type, key, start, end, value) so two multisets compare with deepEqual. */
export function canonical<T extends { key: unknown; start: number; end: number; value?: unknown }>(results: readonly T[]): T[] {
  const keyOf = (k: unknown) => `${typeof k}:${typeof k === 'number' ? String(k).padStart(24, ' ') : String(k)}`;
  const cmp = (a: T, b: T): number => {
    const ka = keyOf(a.key);
    const kb = keyOf(b.key);
    if (ka !== kb) return ka < kb ? -1 : 1;
    if (a.start !== b.start) return a.start - b.start;
    if (a.end !== b.end) return a.end - b.end;
    const va = JSON.stringify(a.value);
    const vb = JSON.stringify(b.value);
    return va < vb ? -1 : va > vb ? 1 : 0;
  };
  return [...results].sort(cmp);
}

interface AlignedState {
  readonly key: Key;
  readonly start: number;
  readonly end: number;
  readonly events: Ev[];
  /** Changed since it last fired (a window that never fired and has events is dirty). */
  dirty: boolean;
}

interface SessionState {
  readonly key: Key;
  readonly start: number;
  readonly end: number;
  readonly events: Ev[];
  dirty: boolean;
}

/**
 * DESIGN.md §2 replayed step by step. Feed it what the engine sees: `batch(events)` (processed under
 * the current watermark), then `advance(wm)`.
 *
 * Rules (Flink's):
 * - A window `[start, end)` is *due* once `wm >= end - 1` and *alive* while `end - 1 + lateness > wm`.
 * - An event goes into each of its alive windows; when it has none it is late (`late`).
 * - A due window that has changed since it last fired fires (again) with its whole content: right
 *   after the batch that changed it, or when the watermark makes it due.
 * - Sessions: an event's `[t, t + gap)` merges with every alive session of its key that it overlaps or
 *   touches; the merged session is alive iff `end - 1 + lateness > wm`, else the event is late (and
 *   nothing merges). Sessions are forgotten once not alive, so a later event cannot join them.
 *
 * `view` holds, per window ever fired, the value it fired with last — what a consumer that upserts
 * by (key, start, end) sees.
 */
export class OperationalModel<R> {
  watermark = -Infinity;
  readonly late: Ev[] = [];
  /** Events that changed a window that was already due (the `updated` late records). */
  updated = 0;
  readonly view = new Map<string, Result<R>>();
  private readonly aligned = new Map<string, AlignedState>();
  private readonly sessions = new Map<Key, SessionState[]>();

  constructor(
    private readonly spec: WindowSpec,
    private readonly lateness: number,
    private readonly f: (events: Ev[]) => R,
  ) {}

  batch(events: readonly Ev[]): void {
    const wm = this.watermark;
    const L = this.lateness;
    for (const e of events) {
      if (this.spec.kind === 'session') {
        const gap = this.spec.gap;
        const list = this.sessions.get(e.key) ?? [];
        const touching = list.filter((s) => s.start <= e.ts + gap && e.ts <= s.end);
        const start = Math.min(e.ts, ...touching.map((s) => s.start));
        const end = Math.max(e.ts + gap, ...touching.map((s) => s.end));
        if (end - 1 + L <= wm) {
          this.late.push(e);
          continue;
        }
        const merged: SessionState = { key: e.key, start, end, events: [...touching.flatMap((s) => s.events), e], dirty: true };
        this.sessions.set(e.key, [...list.filter((s) => !touching.includes(s)), merged]);
        if (end - 1 <= wm) this.updated++;
      } else {
        const alive = alignedWindowsOf(this.spec, e.ts).filter(([, end]) => end - 1 + L > wm);
        if (alive.length === 0) {
          this.late.push(e);
          continue;
        }
        let updated = false;
        for (const [start, end] of alive) {
          const id = windowId(e.key, start, end);
          let w = this.aligned.get(id);
          if (w === undefined) this.aligned.set(id, (w = { key: e.key, start, end, events: [], dirty: false }));
          w.events.push(e);
          w.dirty = true;
          if (end - 1 <= wm) updated = true;
        }
        if (updated) this.updated++;
      }
    }
    this.fireDue();
  }

  advance(wm: number): void {
    if (!(wm > this.watermark)) return;
    this.watermark = wm;
    this.fireDue();
    for (const [key, list] of this.sessions) {
      const alive = list.filter((s) => s.end - 1 + this.lateness > wm);
      if (alive.length === 0) this.sessions.delete(key);
      else this.sessions.set(key, alive);
    }
  }

  /** The final view as a list (for multiset comparison). */
  results(): Result<R>[] {
    return [...this.view.values()];
  }

  private fireDue(): void {
    const wm = this.watermark;
    const all: Array<AlignedState | SessionState> = [...this.aligned.values(), ...[...this.sessions.values()].flat()];
    for (const w of all) {
      if (w.dirty && w.end - 1 <= wm) {
        w.dirty = false;
        this.view.set(windowId(w.key, w.start, w.end), { key: w.key, start: w.start, end: w.end, value: this.f(w.events) });
      }
    }
  }
}

/** `W = max - bound - 1` after each batch (DESIGN.md §2), per batch as a source emits it. */
export function boundedWatermarks(batches: readonly (readonly Ev[])[], bound: number): number[] {
  let max = -Infinity;
  const out: number[] = [];
  for (const b of batches) {
    for (const e of b) if (e.ts > max) max = e.ts;
    out.push(max - bound - 1);
  }
  return out;
}

/** Splits `items` into consecutive chunks of the given sizes (the last chunk takes the rest). */
export function chunk<T>(items: readonly T[], sizes: readonly number[]): T[][] {
  const out: T[][] = [];
  let i = 0;
  let j = 0;
  while (i < items.length) {
    const n = j < sizes.length ? Math.max(1, sizes[j++]) : items.length - i;
    out.push(items.slice(i, i + n));
    i += n;
  }
  return out;
}

/** Chunks of a fixed size (what `sources.array` hands out for a `batchSize`). */
export function chunkEvery<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

import type { SnapshotWriter, StateEntry } from '../checkpoint/snapshot.js';
import { MinHeap } from '../runtime/min-heap.js';
import type { OperatorContext } from '../runtime/operator.js';
import type { StateTable } from '../state/state-backend.js';
import type { SessionWindows } from './window-assigner.js';
import { KeyedWindowOperator, NO_ACC, NO_KEY, type WindowOperatorConfig } from './window-operator-base.js';

/** One session of one key: `[start, end)`. */
interface Session {
  key: unknown;
  start: number;
  end: number;
  acc: unknown;
  /** The time of this session's live timer; heap entries with another time are stale. */
  timer: number;
  /** `end` when it last fired (NaN: never). */
  firedEnd: number;
  /** Changed by a late element after it fired. */
  dirty: boolean;
  dead: boolean;
  queued: boolean;
}

/**
 * Session windows (DESIGN.md §2, as Flink's merging windows): an element at `t` opens `[t, t + gap)`;
 * sessions of a key that overlap or touch merge, accumulators included, so an out-of-order element can
 * bridge two sessions. A session fires when the watermark reaches `end - 1`.
 *
 * Timers are lazy: extending a session does not touch the heap; when its old timer comes due the
 * session re-arms at its new end. So the common case (a key's events extend its session) is a map
 * lookup and an `add` per element.
 */
export class SessionWindowOperator extends KeyedWindowOperator {
  private readonly gap: number;
  private sessions!: Map<unknown, Session[]>;
  private table!: StateTable<number, unknown, Session[]>;
  private readonly timers = new MinHeap<Session>();
  private refire: Session[] = [];
  /** With checkpoints: keys whose sessions changed since the last snapshot. */
  private dirtyKeys = new Set<unknown>();

  constructor(assigner: SessionWindows, config: WindowOperatorConfig) {
    super(config);
    this.gap = assigner.gap;
  }

  override open(ctx: OperatorContext<unknown>): void {
    super.open(ctx);
    this.table = this.config.state.table<number, unknown, Session[]>(ctx.name, 'sessions');
    this.sessions = this.table.namespace(0);
  }

  processBatch(items: readonly unknown[], ts: readonly number[]): void {
    const n = items.length;
    const wm = this.watermark;
    const gap = this.gap;
    for (let i = 0; i < n; i++) {
      const t = ts[i];
      const rec = items[i];
      const k = this.keyOf(rec, t);
      if (k === NO_KEY) continue;
      if (this.tracking) this.dirtyKeys.add(k);
      const list = this.sessions.get(k);
      let start = t;
      let end = t + gap;
      let first = -1;
      let overlaps = 0;
      if (list !== undefined) {
        for (let j = 0; j < list.length; j++) {
          const s = list[j];
          if (s.start <= t + gap && s.end >= t) {
            if (first < 0) first = j;
            overlaps++;
            if (s.start < start) start = s.start;
            if (s.end > end) end = s.end;
          }
        }
      }
      if (end - 1 + this.lateness <= wm) {
        this.tooLate(rec, t);
        continue;
      }
      let s: Session;
      if (first < 0) {
        const acc = this.addTo(undefined, rec, t);
        if (acc === NO_ACC) continue;
        s = { key: k, start, end, acc, timer: end - 1, firedEnd: NaN, dirty: false, dead: false, queued: false };
        if (list === undefined) this.sessions.set(k, [s]);
        else list.push(s);
        this.timers.push(s.timer, s);
      } else {
        s = list![first];
        const acc = this.addTo(s.acc, rec, t);
        if (acc === NO_ACC) continue;
        s.acc = acc;
        if (overlaps > 1) this.absorb(s, list!, t);
        s.start = start;
        s.end = end;
        if (end - 1 < s.timer) {
          s.timer = end - 1;
          this.timers.push(s.timer, s);
        }
      }
      if (end - 1 <= wm) {
        // Within the allowed lateness of a session that is already complete: fire again after the batch.
        this.lateUpdated.value++;
        s.dirty = true;
        if (!s.queued) {
          s.queued = true;
          this.refire.push(s);
        }
      }
    }
    if (this.refire.length > 0) this.refireSessions();
    this.flush();
  }

  /** Merges every other session of `list` that overlaps `[t, t + gap)` into `s`. */
  private absorb(s: Session, list: Session[], t: number): void {
    let w = 0;
    for (let j = 0; j < list.length; j++) {
      const o = list[j];
      if (o !== s && o.start <= t + this.gap && o.end >= t) {
        const merged = this.mergeOrFail(s.acc, o.acc, s.key, Math.min(s.start, o.start), Math.max(s.end, o.end));
        // A failed merge loses the absorbed session's aggregate, but the failure went to the error policy.
        if (merged !== NO_ACC) s.acc = merged;
        o.dead = true;
        if (!Number.isNaN(o.firedEnd)) s.dirty = true;
        continue;
      }
      list[w++] = o;
    }
    list.length = w;
  }

  private refireSessions(): void {
    const list = this.refire;
    this.refire = [];
    for (const s of list) {
      s.queued = false;
      if (s.dead || !s.dirty || s.end - 1 > this.watermark) continue;
      this.fire(s.key, s.start, s.end, s.acc);
      s.firedEnd = s.end;
      s.dirty = false;
    }
  }

  onWatermark(wm: number): void {
    this.watermark = wm;
    const timers = this.timers;
    while (timers.hasDue(wm)) {
      const time = timers.peekTime();
      const s = timers.pop();
      if (s.dead || time !== s.timer) continue;
      if (this.tracking) this.dirtyKeys.add(s.key);
      if (s.end - 1 > wm) {
        s.timer = s.end - 1;
        timers.push(s.timer, s);
        continue;
      }
      if (s.firedEnd !== s.end || s.dirty) {
        this.fire(s.key, s.start, s.end, s.acc);
        s.firedEnd = s.end;
        s.dirty = false;
      }
      const cleanup = s.end - 1 + this.lateness;
      if (cleanup <= wm) {
        this.remove(s);
      } else {
        s.timer = cleanup;
        timers.push(cleanup, s);
      }
    }
    this.flush();
  }

  /** The sessions of every key that changed since the last snapshot (a key's sessions are one entry). */
  snapshotState(out: SnapshotWriter): void {
    for (const key of this.dirtyKeys) {
      const list = this.sessions.get(key);
      if (list === undefined) out.delete('sessions', 0, key);
      else out.put('sessions', 0, key, list.map((x) => ({ start: x.start, end: x.end, acc: x.acc, firedEnd: x.firedEnd, dirty: x.dirty })));
    }
    this.dirtyKeys.clear();
    out.meta = { watermark: this.watermark };
  }

  restoreState(entries: readonly StateEntry[], meta: unknown): void {
    const wm = (meta as { watermark?: number } | undefined)?.watermark;
    if (typeof wm === 'number') this.watermark = wm;
    for (const e of entries) {
      if (e.table !== 'sessions') continue;
      const list: Session[] = (e.value as Pick<Session, 'start' | 'end' | 'acc' | 'firedEnd' | 'dirty'>[]).map((x) => {
        const complete = x.firedEnd === x.end && !x.dirty;
        const timer = complete ? x.end - 1 + this.lateness : x.end - 1;
        return { key: e.key, start: x.start, end: x.end, acc: x.acc, timer, firedEnd: x.firedEnd, dirty: x.dirty, dead: false, queued: false };
      });
      this.sessions.set(e.key, list);
      for (const x of list) this.timers.push(x.timer, x);
    }
  }

  private remove(s: Session): void {
    s.dead = true;
    const list = this.sessions.get(s.key);
    if (list === undefined) return;
    const i = list.indexOf(s);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.sessions.delete(s.key);
  }
}

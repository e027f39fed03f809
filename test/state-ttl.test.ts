import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Pipeline, WeirError, sinks, sources, state, watermarks } from '../src/index.js';
import { TTL_CLEANUP_BUDGET } from '../src/operators/ttl-state-handles.js';
import type { StateOptions } from '../src/operators/keyed-process-function.js';
import { TestDriver, testInput, testOutput, type TestCheckpoint, type TestInput, type TestOutput } from '../src/testing/index.js';

// A job whose process function interprets commands against a value, a map and a list state, all
// with the same options, and emits what each read returned.

type Cmd =
  | { k: string; dt: number; op: 'vset'; x: number }
  | { k: string; dt: number; op: 'vget' | 'vclear' | 'mentries' | 'msize' | 'lget' | 'lclear' }
  | { k: string; dt: number; op: 'mset'; mk: string; x: number }
  | { k: string; dt: number; op: 'mget' | 'mhas' | 'mdel'; mk: string }
  | { k: string; dt: number; op: 'ladd'; x: number }
  | { k: string; dt: number; op: 'lupdate'; xs: number[] };
/** A command with its event timestamp (`dt` is turned into `t` when it is sent). */
type Ev = Cmd & { t: number };
interface Read { k: string; op: string; r: unknown }

const OP = 'ttl-state';

function build(opts: StateOptions | undefined, name = OP): { p: Pipeline; input: TestInput<Ev>; out: TestOutput<Read> } {
  const p = new Pipeline({ name: 'ttl' });
  const input = testInput<Ev>('cmds');
  const out = testOutput<Read>('reads');
  p.source(input, { timestamp: (e) => e.t, watermarks: watermarks.none() })
    .keyBy((e) => e.k)
    .process(
      {
        state: { v: state.value(-1, opts), m: state.map<string, number>(opts), l: state.list<number>(opts) },
        processElement(e, ctx): Read | undefined {
          const { v, m, l } = ctx.state;
          const read = (r: unknown): Read => ({ k: e.k, op: e.op, r });
          switch (e.op) {
            case 'vset': v.set(e.x); return;
            case 'vget': return read(v.get());
            case 'vclear': v.clear(); return;
            case 'mset': m.set(e.mk, e.x); return;
            case 'mget': return read(m.get(e.mk) ?? null);
            case 'mhas': return read(m.has(e.mk));
            case 'mdel': m.delete(e.mk); return;
            case 'mentries': return read([...m.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1)));
            case 'msize': return read(m.size);
            case 'ladd': l.add(e.x); return;
            case 'lget': return read([...l.get()]);
            case 'lupdate': l.update(e.xs); return;
            case 'lclear': l.clear(); return;
          }
        },
      },
      { name },
    )
    .sink(out);
  return { p, input, out };
}

/** The entries of one checkpoint table, by key. */
function tableOf(cp: TestCheckpoint, table: string, op = OP): Map<unknown, unknown> {
  const m = new Map<unknown, unknown>();
  for (const e of cp.operators.get(op)?.entries ?? []) if (e.table === table) m.set(e.key, e.value);
  return m;
}

const cmd = (k: string, t: number, c: Record<string, unknown>): Ev => ({ k, t, dt: 0, ...c }) as Ev;

describe('state TTL', () => {
  it('a value expires in processing time exactly at write time + ttl', async () => {
    const { p, input, out } = build({ ttl: 100 });
    const d = await TestDriver.create(p, { startTime: 1000 });
    d.send(input, [cmd('a', 0, { op: 'vset', x: 7 })]);
    d.advanceProcessingTime(99);
    d.send(input, [cmd('a', 0, { op: 'vget' })]);
    d.advanceProcessingTime(1); // now = 1100 = 1000 + ttl
    d.send(input, [cmd('a', 0, { op: 'vget' })]);
    assert.deepEqual(out.take().map((r) => r.r), [7, -1]);
    await d.close();
  });

  it('a value expires in event time when the watermark reaches its timestamp + ttl', async () => {
    const { p, input, out } = build({ ttl: '100ms', timeDomain: 'event' });
    const d = await TestDriver.create(p);
    d.send(input, [cmd('a', 10, { op: 'vset', x: 7 }), cmd('b', 50, { op: 'vset', x: 8 })]);
    d.advanceProcessingTime(10_000); // processing time does not matter in event time
    d.advanceWatermark(109);
    d.send(input, [cmd('a', 200, { op: 'vget' }), cmd('b', 200, { op: 'vget' })]);
    d.advanceWatermark(110); // 10 + 100
    d.send(input, [cmd('a', 200, { op: 'vget' }), cmd('b', 200, { op: 'vget' })]);
    assert.deepEqual(out.take().map((r) => `${r.k}=${String(r.r)}`), ['a=7', 'b=8', 'a=-1', 'b=8']);
    await d.close();
  });

  it('map entries expire one by one', async () => {
    for (const timeDomain of ['event', 'processing'] as const) {
      const { p, input, out } = build({ ttl: 10, timeDomain });
      const d = await TestDriver.create(p);
      const at = (t: number): void => (timeDomain === 'event' ? d.advanceWatermark(t) : d.advanceProcessingTime(t - d.clock.now()));
      d.send(input, [cmd('a', 0, { op: 'mset', mk: 'x', x: 1 })]);
      at(5);
      d.send(input, [cmd('a', 5, { op: 'mset', mk: 'y', x: 2 }), cmd('a', 5, { op: 'msize' })]);
      at(10);
      d.send(input, [cmd('a', 10, { op: 'mget', mk: 'x' }), cmd('a', 10, { op: 'mhas', mk: 'y' }), cmd('a', 10, { op: 'mentries' }), cmd('a', 10, { op: 'msize' })]);
      at(15);
      d.send(input, [cmd('a', 15, { op: 'mentries' }), cmd('a', 15, { op: 'msize' })]);
      assert.deepEqual(out.take().map((r) => r.r), [2, null, true, [['y', 2]], 1, [], 0], timeDomain);
      await d.close();
    }
  });

  it('list elements expire one by one; update() restarts every element', async () => {
    for (const timeDomain of ['event', 'processing'] as const) {
      const { p, input, out } = build({ ttl: 10, timeDomain });
      const d = await TestDriver.create(p);
      const at = (t: number): void => (timeDomain === 'event' ? d.advanceWatermark(t) : d.advanceProcessingTime(t - d.clock.now()));
      d.send(input, [cmd('a', 0, { op: 'ladd', x: 1 }), cmd('b', 0, { op: 'ladd', x: 1 })]);
      at(4);
      d.send(input, [cmd('a', 4, { op: 'ladd', x: 2 }), cmd('b', 4, { op: 'lupdate', xs: [1, 2] })]);
      at(10);
      d.send(input, [cmd('a', 10, { op: 'lget' }), cmd('b', 10, { op: 'lget' })]);
      at(14);
      d.send(input, [cmd('a', 14, { op: 'lget' }), cmd('b', 14, { op: 'lget' })]);
      assert.deepEqual(out.take().map((r) => r.r), [[2], [1, 2], [], []], timeDomain);
      await d.close();
    }
  });

  it("update: 'onReadAndWrite' keeps a value alive while it is read; 'onWrite' does not", async () => {
    for (const update of ['onWrite', 'onReadAndWrite'] as const) {
      const { p, input, out } = build({ ttl: 100, update });
      const d = await TestDriver.create(p);
      d.send(input, [cmd('a', 0, { op: 'vset', x: 1 }), cmd('a', 0, { op: 'mset', mk: 'x', x: 1 }), cmd('a', 0, { op: 'ladd', x: 1 })]);
      for (let i = 0; i < 5; i++) {
        d.advanceProcessingTime(60);
        d.send(input, [cmd('a', 0, { op: 'vget' }), cmd('a', 0, { op: 'mget', mk: 'x' }), cmd('a', 0, { op: 'lget' })]);
      }
      const reads = out.take().map((r) => JSON.stringify(r.r));
      if (update === 'onWrite') assert.deepEqual(reads, ['1', '1', '[1]', ...Array(4).fill(['-1', 'null', '[]']).flat()]);
      else assert.deepEqual(reads, Array(5).fill(['1', '1', '[1]']).flat());
      await d.close();
    }
  });

  it('in event time, onReadAndWrite counts from the reading element and never shortens the life', async () => {
    const { p, input, out } = build({ ttl: 100, timeDomain: 'event', update: 'onReadAndWrite' });
    const d = await TestDriver.create(p);
    d.send(input, [cmd('a', 50, { op: 'vset', x: 1 })]); // expires at 150
    d.send(input, [cmd('a', 80, { op: 'vget' })]); // now 180
    d.send(input, [cmd('a', 10, { op: 'vget' })]); // an older element: still 180
    d.advanceWatermark(179);
    d.send(input, [cmd('a', 0, { op: 'vget' })]);
    d.advanceWatermark(180);
    d.send(input, [cmd('a', 0, { op: 'vget' })]);
    assert.deepEqual(out.take().map((r) => r.r), [1, 1, 1, -1]);
    await d.close();
  });

  it('a read checks the expiry itself, exactly at the boundary, before any cleanup ran', async () => {
    // Processing time: the clock moves but the operator's callback has not come yet.
    const a = build({ ttl: 10 });
    const d = await TestDriver.create(a.p);
    d.send(a.input, [cmd('a', 0, { op: 'vset', x: 1 }), cmd('a', 0, { op: 'mset', mk: 'x', x: 1 }), cmd('a', 0, { op: 'ladd', x: 1 })]);
    d.clock.advance(9);
    d.send(a.input, [cmd('a', 0, { op: 'vget' }), cmd('a', 0, { op: 'mget', mk: 'x' }), cmd('a', 0, { op: 'mhas', mk: 'x' }), cmd('a', 0, { op: 'lget' })]);
    d.clock.advance(1);
    d.send(a.input, [cmd('a', 0, { op: 'vget' }), cmd('a', 0, { op: 'mget', mk: 'x' }), cmd('a', 0, { op: 'mhas', mk: 'x' }), cmd('a', 0, { op: 'lget' }), cmd('a', 0, { op: 'msize' })]);
    assert.deepEqual(a.out.take().map((r) => r.r), [1, 1, true, [1], -1, null, false, [], 0]);
    await d.close();
    // Event time: an element older than watermark - ttl writes an entry that is already gone.
    const b = build({ ttl: 10, timeDomain: 'event' });
    const d2 = await TestDriver.create(b.p);
    d2.advanceWatermark(100);
    d2.send(b.input, [
      cmd('a', 91, { op: 'vset', x: 1 }), cmd('a', 91, { op: 'vget' }), cmd('b', 90, { op: 'vset', x: 1 }), cmd('b', 90, { op: 'vget' }),
      cmd('a', 90, { op: 'mset', mk: 'x', x: 1 }), cmd('a', 90, { op: 'mentries' }), cmd('a', 90, { op: 'ladd', x: 1 }), cmd('a', 90, { op: 'lget' }),
    ]);
    assert.deepEqual(b.out.take().map((r) => r.r), [1, -1, [], []]);
    assert.deepEqual(tableOf(d2.checkpoint(), 'state-ttl:event:v'), new Map([['a', [1, 101]]]), 'the batch cleaned up after itself');
    await d2.close();
  });

  it('cleanup removes expired entries without any read: the next checkpoint no longer holds them', async () => {
    for (const timeDomain of ['event', 'processing'] as const) {
      const { p, input } = build({ ttl: 10, timeDomain });
      const d = await TestDriver.create(p);
      const at = (t: number): void => (timeDomain === 'event' ? d.advanceWatermark(t) : d.advanceProcessingTime(t - d.clock.now()));
      d.send(input, [
        cmd('a', 0, { op: 'vset', x: 1 }), cmd('a', 0, { op: 'mset', mk: 'x', x: 1 }), cmd('a', 0, { op: 'ladd', x: 1 }),
        cmd('b', 0, { op: 'vset', x: 2 }),
      ]);
      at(5);
      d.send(input, [cmd('a', 5, { op: 'mset', mk: 'y', x: 2 }), cmd('a', 5, { op: 'ladd', x: 2 })]);
      const t = `state-ttl:${timeDomain}:`;
      let cp = d.checkpoint();
      assert.deepEqual(tableOf(cp, `${t}v`), new Map([['a', [1, 10]], ['b', [2, 10]]]));
      assert.deepEqual(tableOf(cp, `${t}m`), new Map([['a', ['x', 1, 10, 'y', 2, 15]]]));
      assert.deepEqual(tableOf(cp, `${t}l`), new Map([['a', [[1, 2], [10, 15]]]]));
      at(10);
      cp = d.checkpoint();
      assert.deepEqual(tableOf(cp, `${t}v`), new Map(), timeDomain);
      assert.deepEqual(tableOf(cp, `${t}m`), new Map([['a', ['y', 2, 15]]]), timeDomain);
      assert.deepEqual(tableOf(cp, `${t}l`), new Map([['a', [[2], [15]]]]), timeDomain);
      at(15);
      cp = d.checkpoint();
      assert.equal(cp.operators.get(OP)!.entries.filter((e) => e.table.startsWith('state')).length, 0, timeDomain);
      await d.close();
    }
  });

  it('cleanup is bounded per trigger and goes on in later callbacks until done', async () => {
    const { p, input } = build({ ttl: 10, timeDomain: 'event' });
    const d = await TestDriver.create(p);
    const n = TTL_CLEANUP_BUDGET * 2 + 100;
    d.send(input, Array.from({ length: n }, (_, i) => cmd(`k${i}`, 0, { op: 'vset', x: i })));
    d.advanceWatermark(10);
    const left = (): number => tableOf(d.checkpoint(), 'state-ttl:event:v').size;
    assert.equal(left(), n - TTL_CLEANUP_BUDGET);
    d.advanceProcessingTime(0); // the operator asked for a callback at once to go on
    assert.equal(left(), n - 2 * TTL_CLEANUP_BUDGET);
    d.send(input, [cmd('z', 20, { op: 'vget' })]); // each batch cleans too
    assert.equal(left(), 0);
    await d.close();
  });

  it('expiries survive checkpoint and restore', async () => {
    for (const timeDomain of ['event', 'processing'] as const) {
      const a = build({ ttl: 100, timeDomain });
      const d = await TestDriver.create(a.p, { startTime: 1000 });
      d.send(a.input, [cmd('a', 1000, { op: 'vset', x: 1 }), cmd('a', 1000, { op: 'mset', mk: 'x', x: 1 }), cmd('a', 1000, { op: 'ladd', x: 1 })]);
      d.advanceWatermark(1050);
      d.advanceProcessingTime(50);
      const cp = d.checkpoint();
      await d.close();

      const b = build({ ttl: 100, timeDomain });
      const d2 = await TestDriver.create(b.p, { restoreFrom: cp, startTime: 1050 });
      const reads = (): unknown[] => {
        d2.send(b.input, [cmd('a', 0, { op: 'vget' }), cmd('a', 0, { op: 'mget', mk: 'x' }), cmd('a', 0, { op: 'lget' })]);
        return b.out.take().map((r) => r.r);
      };
      d2.advanceWatermark(1099);
      d2.advanceProcessingTime(49);
      assert.deepEqual(reads(), [1, 1, [1]], timeDomain);
      const expire = (): void => (timeDomain === 'event' ? d2.advanceWatermark(1100) : d2.advanceProcessingTime(1));
      expire();
      // Cleanup ran on the restored queue (no read in between): the checkpoint holds nothing.
      assert.equal(d2.checkpoint().operators.get(OP)!.entries.filter((e) => e.table.startsWith('state')).length, 0, timeDomain);
      assert.deepEqual(reads(), [-1, null, []], timeDomain);
      await d2.close();
    }
  });

  it('entries that expired while the job was down are dropped at restore and deleted by the next checkpoint', async () => {
    const a = build({ ttl: 100 });
    const d = await TestDriver.create(a.p);
    d.send(a.input, [cmd('a', 0, { op: 'vset', x: 1 }), cmd('b', 0, { op: 'mset', mk: 'x', x: 1 })]);
    d.advanceProcessingTime(60);
    d.send(a.input, [cmd('b', 0, { op: 'mset', mk: 'y', x: 2 })]);
    const cp = d.checkpoint();
    await d.close();
    const b = build({ ttl: 100 });
    const d2 = await TestDriver.create(b.p, { restoreFrom: cp, startTime: 130 });
    const cp2 = d2.checkpoint();
    assert.deepEqual(tableOf(cp2, 'state-ttl:processing:v'), new Map());
    assert.deepEqual(tableOf(cp2, 'state-ttl:processing:m'), new Map([['b', ['y', 2, 160]]]));
    await d2.close();
  });

  it('a state that gains or loses its TTL between runs keeps its values (moved to the new format)', async () => {
    const a = build(undefined);
    const d = await TestDriver.create(a.p, { startTime: 500 });
    d.send(a.input, [cmd('a', 0, { op: 'vset', x: 1 }), cmd('a', 0, { op: 'mset', mk: 'x', x: 1 }), cmd('a', 0, { op: 'ladd', x: 1 })]);
    const cp = d.checkpoint();
    assert.deepEqual(tableOf(cp, 'state:v'), new Map([['a', 1]]), 'without a TTL the format is unchanged');
    await d.close();

    // Gains a TTL: values count as written at the restore.
    const b = build({ ttl: 100 });
    const d2 = await TestDriver.create(b.p, { restoreFrom: cp, startTime: 1000 });
    const cp2 = d2.checkpoint();
    assert.deepEqual(tableOf(cp2, 'state:v'), new Map(), 'the old entries are deleted');
    assert.deepEqual(tableOf(cp2, 'state-ttl:processing:v'), new Map([['a', [1, 1100]]]));
    assert.deepEqual(tableOf(cp2, 'state-ttl:processing:m'), new Map([['a', ['x', 1, 1100]]]));
    assert.deepEqual(tableOf(cp2, 'state-ttl:processing:l'), new Map([['a', [[1], [1100]]]]));
    d2.advanceProcessingTime(50);
    d2.send(b.input, [cmd('b', 0, { op: 'vset', x: 2 })]); // expires at 1150
    const cp3 = d2.checkpoint();
    await d2.close();

    // Loses it again: what had expired by then is dropped, the rest kept without expiry.
    const c = build(undefined);
    const d3 = await TestDriver.create(c.p, { restoreFrom: cp3, startTime: 1120 });
    d3.send(c.input, [cmd('a', 0, { op: 'vget' }), cmd('b', 0, { op: 'vget' }), cmd('a', 0, { op: 'mget', mk: 'x' })]);
    assert.deepEqual(c.out.take().map((r) => r.r), [-1, 2, null]);
    const cp4 = d3.checkpoint();
    assert.deepEqual(tableOf(cp4, 'state:v'), new Map([['b', 2]]));
    assert.equal(cp4.operators.get(OP)!.entries.filter((e) => e.table.startsWith('state-ttl:')).length, 0);
    await d3.close();
  });

  it('works under run() without checkpoints (event time, from the source watermarks)', async () => {
    const out: string[] = [];
    const p = new Pipeline({ name: 'ttl-run' });
    // The watermark after each record is its timestamp - 1: b@200 moves it past a@50's expiry (150).
    const evs = [{ k: 'a', t: 0 }, { k: 'a', t: 50 }, { k: 'b', t: 200 }, { k: 'a', t: 210 }, { k: 'a', t: 220 }];
    p.source(sources.array(evs), { timestamp: (e) => e.t, watermarks: watermarks.boundedOutOfOrderness(0), batchSize: 1 })
      .keyBy((e) => e.k)
      .process({
        state: { last: state.value<number | null>(null, { ttl: 100, timeDomain: 'event' }) },
        processElement(e, ctx) {
          const prev = ctx.state.last.get();
          ctx.state.last.set(e.t);
          return `${e.k}${e.t}:${String(prev)}`;
        },
      })
      .sink(sinks.collect(out));
    await p.run();
    assert.deepEqual(out, ['a0:null', 'a50:0', 'b200:null', 'a210:null', 'a220:210']);
  });

  it('checks the options when the state is declared', () => {
    const code = (f: () => unknown): string | undefined => {
      try {
        f();
      } catch (e) {
        return (e as WeirError).code;
      }
      return undefined;
    };
    assert.equal(code(() => state.value(0, { ttl: 0 })), 'WEIR_INVALID_ARGUMENT');
    assert.equal(code(() => state.map({ ttl: '5 minutes' as never })), 'WEIR_INVALID_DURATION');
    assert.equal(code(() => state.list({ ttl: '1h', timeDomain: 'wall' as never })), 'WEIR_INVALID_ARGUMENT');
    assert.equal(code(() => state.list({ ttl: '1h', update: 'onRead' as never })), 'WEIR_INVALID_ARGUMENT');
    assert.equal(code(() => state.value(0, { timeDomain: 'event' })), 'WEIR_INVALID_ARGUMENT', 'timeDomain without ttl');
    assert.deepEqual(state.value(0, { ttl: '1h' }).ttl, { ms: 3_600_000, timeDomain: 'processing', update: 'onWrite' });
    assert.equal(state.map().ttl, undefined);
    // @ts-expect-error: not a time domain
    void (() => state.value(0, { ttl: '1h', timeDomain: 'wall' }));
    // @ts-expect-error: not a duration
    void (() => state.list({ ttl: '1 hour' }));
  });
});

// ---- model-based property: the operator agrees with a reference (maps of values with expiries) ----

interface Live { x: number; e: number }
/**
 * `pt` advances processing time and delivers the callbacks that came due; `clock` only moves the clock
 * (a callback not delivered yet), so reads must check expiries themselves; `check` delivers what is
 * due, then compares a checkpoint with the model; `restart` checkpoints as things are (expired entries
 * not yet cleaned may be in it) and restores into a new job.
 */
type Step = { send: Cmd[] } | { wm: number } | { pt: number } | { clock: number } | { restart: true } | { check: true };

const TTL = 10; // small against the time steps, so that exact boundaries come up often

class Model {
  wm = -Infinity;
  now = 0;
  readonly v = new Map<string, Live>();
  readonly m = new Map<string, Map<string, Live>>();
  readonly l = new Map<string, Live[]>();
  constructor(readonly event: boolean, readonly rw: boolean) {}
  clock(): number {
    return this.event ? this.wm : this.now;
  }
  expiry(t: number): number {
    return (this.event ? t : this.now) + TTL;
  }
  private alive(c: Live | undefined): c is Live {
    return c !== undefined && c.e > this.clock();
  }
  private touch(c: Live, t: number): void {
    if (this.rw) c.e = Math.max(c.e, this.expiry(t));
  }
  liveMap(k: string): [string, Live][] {
    return [...(this.m.get(k) ?? new Map<string, Live>())].filter(([, c]) => this.alive(c));
  }
  liveList(k: string): Live[] {
    return (this.l.get(k) ?? []).filter((c) => this.alive(c));
  }
  apply(c: Ev): unknown {
    const { k, t } = c;
    switch (c.op) {
      case 'vset': this.v.set(k, { x: c.x, e: this.expiry(t) }); return undefined;
      case 'vclear': this.v.delete(k); return undefined;
      case 'vget': {
        const cell = this.v.get(k);
        if (!this.alive(cell)) return -1;
        this.touch(cell, t);
        return cell.x;
      }
      case 'mset': {
        let m = this.m.get(k);
        if (!m) this.m.set(k, (m = new Map()));
        m.set(c.mk, { x: c.x, e: this.expiry(t) });
        return undefined;
      }
      case 'mdel': this.m.get(k)?.delete(c.mk); return undefined;
      case 'mget':
      case 'mhas': {
        const cell = this.m.get(k)?.get(c.mk);
        if (!this.alive(cell)) return c.op === 'mget' ? null : false;
        this.touch(cell, t);
        return c.op === 'mget' ? cell.x : true;
      }
      case 'mentries': {
        const live = this.liveMap(k).sort((a, b) => (a[0] < b[0] ? -1 : 1));
        for (const [, cell] of live) this.touch(cell, t);
        return live.map(([mk, cell]) => [mk, cell.x]);
      }
      case 'msize': return this.liveMap(k).length;
      case 'ladd': {
        const l = this.liveList(k);
        l.push({ x: c.x, e: this.expiry(t) });
        this.l.set(k, l);
        return undefined;
      }
      case 'lupdate': this.l.set(k, c.xs.map((x) => ({ x, e: this.expiry(t) }))); return undefined;
      case 'lclear': this.l.delete(k); return undefined;
      case 'lget': {
        const live = this.liveList(k);
        this.l.set(k, live);
        for (const cell of live) this.touch(cell, t);
        return live.map((cell) => cell.x);
      }
    }
  }
  /** What a checkpoint must hold once cleanup has run: the live entries, with their expiries. */
  expected(): Record<string, Map<unknown, unknown>> {
    const v = new Map<unknown, unknown>();
    for (const [k, c] of this.v) if (this.alive(c)) v.set(k, [c.x, c.e]);
    const m = new Map<unknown, unknown>();
    for (const k of this.m.keys()) {
      const live = this.liveMap(k).sort((a, b) => (a[0] < b[0] ? -1 : 1));
      if (live.length > 0) m.set(k, live.flatMap(([mk, c]) => [mk, c.x, c.e]));
    }
    const l = new Map<unknown, unknown>();
    for (const k of this.l.keys()) {
      const live = this.liveList(k);
      if (live.length > 0) l.set(k, [live.map((c) => c.x), live.map((c) => c.e)]);
    }
    return { v, m, l };
  }
}

/** The TTL tables of a checkpoint, map entries sorted by map key (their order is not part of the contract). */
function actualTables(cp: TestCheckpoint, domain: string): Record<string, Map<unknown, unknown>> {
  const m = new Map<unknown, unknown>();
  for (const [k, flat] of tableOf(cp, `state-ttl:${domain}:m`)) {
    const triples: unknown[][] = [];
    for (let i = 0; i < (flat as unknown[]).length; i += 3) triples.push((flat as unknown[]).slice(i, i + 3));
    m.set(k, triples.sort((a, b) => ((a[0] as string) < (b[0] as string) ? -1 : 1)).flat());
  }
  return { v: tableOf(cp, `state-ttl:${domain}:v`), m, l: tableOf(cp, `state-ttl:${domain}:l`) };
}

const key = fc.constantFrom('a', 'b');
const mk = fc.constantFrom('x', 'y', 'z');
// Boundaries get extra weight: dt = -TTL writes an entry that expires exactly at the current
// watermark; a time step of TTL lands exactly on the expiry of what the previous step wrote.
const dt = fc.oneof(fc.integer({ min: -15, max: 15 }), fc.constant(-TTL));
const delta = fc.oneof(fc.integer({ min: 0, max: 12 }), fc.constant(TTL));
const x = fc.integer({ min: 0, max: 99 });
const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  fc.record({ k: key, dt, op: fc.constant('vset' as const), x }),
  fc.record({ k: key, dt, op: fc.constantFrom('vget' as const, 'vget' as const, 'lget' as const, 'vclear' as const, 'mentries' as const, 'msize' as const, 'lget' as const, 'lclear' as const) }),
  fc.record({ k: key, dt, op: fc.constant('mset' as const), mk, x }),
  fc.record({ k: key, dt, op: fc.constantFrom('mget' as const, 'mget' as const, 'mhas' as const, 'mdel' as const), mk }),
  fc.record({ k: key, dt, op: fc.constant('ladd' as const), x }),
  fc.record({ k: key, dt, op: fc.constant('lupdate' as const), xs: fc.array(x, { maxLength: 3 }) }),
);
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.array(cmdArb, { minLength: 1, maxLength: 5 }).map((send) => ({ send })) },
  { weight: 2, arbitrary: delta.map((wm) => ({ wm })) },
  { weight: 2, arbitrary: delta.map((pt) => ({ pt })) },
  { weight: 1, arbitrary: delta.map((clock) => ({ clock })) },
  { weight: 1, arbitrary: fc.constant({ restart: true as const }) },
  { weight: 1, arbitrary: fc.constant({ check: true as const }) },
);

describe('state TTL against a reference model', () => {
  for (const timeDomain of ['event', 'processing'] as const) {
    for (const update of ['onWrite', 'onReadAndWrite'] as const) {
      it(`${timeDomain} time, ${update}: every read agrees, and checkpoints hold exactly the live entries`, async () => {
        const opts: StateOptions = { ttl: TTL, timeDomain, update };
        await fc.assert(
          fc.asyncProperty(fc.array(stepArb, { minLength: 1, maxLength: 40 }), async (steps) => {
            const model = new Model(timeDomain === 'event', update === 'onReadAndWrite');
            let job = build(opts);
            let d = await TestDriver.create(job.p);
            const check = (cp: TestCheckpoint, what: string): void => assert.deepEqual(actualTables(cp, timeDomain), model.expected(), what);
            for (const [i, s] of steps.entries()) {
              if ('send' in s) {
                const base = Number.isFinite(model.wm) ? Math.max(0, model.wm) : 0;
                const evs: Ev[] = s.send.map((c) => ({ ...c, t: Math.max(0, base + c.dt) }));
                d.send(job.input, evs);
                const expected = evs.map((e) => model.apply(e)).filter((r) => r !== undefined);
                assert.deepEqual(job.out.take().map((r) => r.r), expected, `step ${i}`);
              } else if ('wm' in s) {
                const wm = (Number.isFinite(model.wm) ? model.wm : 0) + s.wm;
                d.advanceWatermark(wm);
                model.wm = Math.max(model.wm, wm);
              } else if ('pt' in s) {
                d.advanceProcessingTime(s.pt);
                model.now += s.pt;
              } else if ('clock' in s) {
                d.clock.advance(s.clock);
                model.now += s.clock;
              } else if ('restart' in s) {
                const cp = d.checkpoint();
                await d.close();
                job = build(opts);
                d = await TestDriver.create(job.p, { restoreFrom: cp, startTime: model.now });
              } else {
                d.advanceProcessingTime(0);
                check(d.checkpoint(), `checkpoint at step ${i}`);
              }
            }
            d.advanceProcessingTime(0);
            check(d.checkpoint(), 'last checkpoint');
            await d.close();
          }),
          { numRuns: Number(process.env.FC_NUM_RUNS ?? 300) },
        );
      });
    }
  }
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Pipeline, sinks, sources, state, watermarks, type Collector } from '../src/index.js';
import { TestDriver, testInput, testOutput } from '../src/testing/index.js';

interface Txn { card: string; amount: number; ts: number }

describe('keyed process functions', () => {
  it('keeps value, map and list state per key', async () => {
    const txns: Txn[] = [
      { card: 'a', amount: 5, ts: 1 },
      { card: 'b', amount: 7, ts: 2 },
      { card: 'a', amount: 3, ts: 3 },
      { card: 'a', amount: 5, ts: 4 },
      { card: 'b', amount: 1, ts: 5 },
    ];
    const out: { card: string; total: number; distinct: number; history: number[] }[] = [];
    const p = new Pipeline({ name: 'state' });
    p.source(sources.array(txns), { timestamp: (t) => t.ts })
      .keyBy((t) => t.card)
      .process({
        state: { total: state.value(0), seen: state.map<number, number>(), history: state.list<number>() },
        processElement(t, ctx) {
          const total = ctx.state.total.get() + t.amount;
          ctx.state.total.set(total);
          ctx.state.seen.set(t.amount, (ctx.state.seen.get(t.amount) ?? 0) + 1);
          ctx.state.history.add(t.amount);
          return { card: ctx.key, total, distinct: ctx.state.seen.size, history: [...ctx.state.history.get()] };
        },
      })
      .sink(sinks.collect(out));
    await p.run();
    assert.deepEqual(out, [
      { card: 'a', total: 5, distinct: 1, history: [5] },
      { card: 'b', total: 7, distinct: 1, history: [7] },
      { card: 'a', total: 8, distinct: 2, history: [5, 3] },
      { card: 'a', total: 13, distinct: 2, history: [5, 3, 5] },
      { card: 'b', total: 8, distinct: 2, history: [7, 1] },
    ]);
  });

  it('fires event-time timers in time order when the watermark passes, once per (key, time)', async () => {
    const p = new Pipeline({ name: 'timers' });
    const input = testInput<Txn>();
    const out = testOutput<string>();
    p.source(input, { timestamp: (t) => t.ts, watermarks: watermarks.none() })
      .keyBy((t) => t.card)
      .process({
        state: { sum: state.value(0) },
        processElement(t, ctx, _out: Collector<string>) {
          ctx.state.sum.set(ctx.state.sum.get() + t.amount);
          ctx.timers.eventTime(ctx.timestamp + 100);
          ctx.timers.eventTime(ctx.timestamp + 100); // same timer twice: fires once
          if (t.amount < 0) ctx.timers.deleteEventTime(ctx.timestamp + 100);
        },
        onTimer(time, ctx, out) {
          out.emit(`${ctx.key}@${time}:${ctx.state.sum.get()}:${ctx.timeDomain}`);
          ctx.state.sum.clear();
        },
      })
      .sink(out);
    const d = await TestDriver.create(p);
    d.send(input, [
      { card: 'a', amount: 1, ts: 10 },
      { card: 'b', amount: 2, ts: 5 },
      { card: 'a', amount: 4, ts: 50 },
      { card: 'c', amount: -1, ts: 20 },
    ]);
    d.advanceWatermark(109);
    assert.deepEqual(out.take(), ['b@105:2:event']);
    d.advanceWatermark(150);
    assert.deepEqual(out.take(), ['a@110:5:event', 'a@150:0:event']);
    assert.deepEqual(out.timestamps, [105, 110, 150]);
    d.endInput();
    assert.deepEqual(out.take(), [], 'the deleted timer of c never fires');
    await d.close();
  });

  it('fires processing-time timers when the driver advances processing time', async () => {
    const p = new Pipeline({ name: 'proc-timers' });
    const input = testInput<Txn>();
    const out = testOutput<{ card: string; at: number; count: number }>();
    p.source(input, { timestamp: (t) => t.ts })
      .keyBy((t) => t.card)
      .process({
        state: { count: state.value(0) },
        processElement(_t, ctx) {
          ctx.state.count.set(ctx.state.count.get() + 1);
          ctx.timers.processingTime(ctx.timers.now() + 1000);
        },
        onTimer(time, ctx) {
          return { card: ctx.key, at: time, count: ctx.state.count.get() };
        },
      })
      .sink(out);
    const d = await TestDriver.create(p, { startTime: 5000 });
    d.send(input, [{ card: 'a', amount: 1, ts: 1 }, { card: 'a', amount: 1, ts: 2 }]);
    d.advanceProcessingTime(999);
    assert.deepEqual(out.take(), []);
    d.advanceProcessingTime(1);
    assert.deepEqual(out.take(), [{ card: 'a', at: 6000, count: 2 }]);
    await d.close();
  });

  it('fires processing-time timers on the wall clock under run()', async () => {
    const p = new Pipeline({ name: 'wall-timers' });
    const out: string[] = [];
    async function* slow(): AsyncGenerator<Txn> {
      yield { card: 'x', amount: 1, ts: 1 };
      await new Promise((r) => setTimeout(r, 120));
    }
    p.source(sources.iterable(slow()), { timestamp: (t) => t.ts })
      .keyBy((t) => t.card)
      .process<string>({
        processElement(_t, ctx) {
          ctx.timers.processingTime(ctx.timers.now() + 30);
        },
        onTimer(_time, ctx) {
          return `timer:${ctx.key}:${ctx.timeDomain}`;
        },
      })
      .sink(sinks.collect(out));
    await p.run();
    assert.deepEqual(out, ['timer:x:processing']);
  });
});

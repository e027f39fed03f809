/**
 * Deterministic TestDriver cases, each pinning one rule of DESIGN.md §2 (event time, windows, late
 * data). Expected values are worked out by hand in the comments.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Pipeline, agg, sinks, sources, watermarks, windows, type Aggregator, type Stream, type WatermarkStrategy, type WindowAssigner, type WindowResult } from '../src/index.js';
import { TestDriver, testInput, testOutput, type TestInput, type TestOutput } from '../src/testing/index.js';
import { canonical } from './reference-model.js';
import { metric, silent } from './window-harness.js';

interface E {
  k: string;
  t: number;
  v: number;
}
const e = (k: string, t: number, v = 1): E => ({ k, t, v });
type R<V = number> = WindowResult<string, V>;
const r = <V = number>(key: string, start: number, end: number, value: V): R<V> => ({ key, start, end, value });

/** One input, one window step built by `build`, one recording output. */
async function harness<O>(build: (s: Stream<E>) => Stream<O>, wm: WatermarkStrategy = watermarks.none()) {
  const p = new Pipeline({ name: 'semantics', logger: silent });
  const input = testInput<E>();
  const out = testOutput<O>();
  build(p.source(input, { timestamp: (x) => x.t, watermarks: wm })).sink(out);
  const d = await TestDriver.create(p);
  return { p, d, input, out };
}

const count = (a: WindowAssigner) => (s: Stream<E>) =>
  s
    .keyBy((x) => x.k)
    .window(a)
    .aggregate(agg.count());

describe('watermarks', () => {
  it('boundedOutOfOrderness(d) emits W = max - d - 1: [0,1000) with d = 100 fires once an event at t >= 1100 arrived', async () => {
    const { d, input, out } = await harness(count(windows.tumbling(1000)), watermarks.boundedOutOfOrderness(100));
    d.send(input, [e('a', 10)]); // W = 10 - 101 = -91
    d.send(input, [e('b', 1099)]); // W = 998 < 999 = end - 1
    assert.deepEqual(out.take(), []);
    d.send(input, [e('a', 900)]); // out of order but [0,1000) has not fired: counted (W stays 998)
    assert.deepEqual(out.take(), []);
    d.send(input, [e('b', 1100)]); // W = 999: [0,1000) fires
    assert.deepEqual(out.take(), [r('a', 0, 1000, 2)]);
    d.send(input, [e('b', 2099)]); // W = 1998
    assert.deepEqual(out.take(), []);
    d.send(input, [e('b', 2100)]); // W = 1999: [1000,2000) holds 1099 and 1100
    assert.deepEqual(out.take(), [r('b', 1000, 2000, 2)]);
    await d.close();
  });

  it('ascending() emits W = max - 1: an event at end fires the window', async () => {
    const { d, input, out } = await harness(count(windows.tumbling(1000)), watermarks.ascending());
    d.send(input, [e('a', 0), e('a', 999)]); // W = 998
    assert.deepEqual(out.take(), []);
    d.send(input, [e('a', 1000)]); // W = 999
    assert.deepEqual(out.take(), [r('a', 0, 1000, 2)]);
    await d.close();
  });

  it('the watermark is taken after the whole batch: a batch is processed under the previous watermark', async () => {
    const { d, input, out } = await harness(count(windows.tumbling(1000)), watermarks.boundedOutOfOrderness(0));
    // One batch: 1500 moves W to 1499 only after the batch, so 10 still counts in [0,1000).
    d.send(input, [e('a', 1500), e('a', 10)]);
    assert.deepEqual(out.take(), [r('a', 0, 1000, 1)]);
    await d.close();
  });
});

describe('firing', () => {
  it('a window fires exactly once, when the watermark reaches end - 1 (not at end - 2)', async () => {
    const { d, input, out } = await harness(count(windows.tumbling(1000)));
    d.send(input, [e('a', 0), e('a', 999), e('a', 1000)]);
    d.advanceWatermark(998);
    assert.deepEqual(out.take(), []);
    d.advanceWatermark(999);
    assert.deepEqual(out.take(), [r('a', 0, 1000, 2)]);
    assert.deepEqual(out.timestamps, [999]); // a result carries the timestamp end - 1
    d.advanceWatermark(1000);
    d.advanceWatermark(1998);
    assert.deepEqual(out.take(), []);
    d.advanceWatermark(1999);
    assert.deepEqual(out.take(), [r('a', 1000, 2000, 1)]);
    d.advanceWatermark(50_000);
    d.endInput();
    assert.deepEqual(out.take(), []); // never twice
    await d.close();
  });

  it('a watermark that is not a whole number fires the windows it passed, and skips none', async () => {
    const cases = [
      { a: windows.tumbling(10), at8_5: [], all: [r('a', 0, 10, 1)] },
      { a: windows.sliding({ size: 10, slide: 5 }), at8_5: [r('a', -5, 5, 1)], all: [r('a', -5, 5, 1), r('a', 0, 10, 1)] },
      { a: windows.session({ gap: 10 }), at8_5: [], all: [r('a', 3, 13, 1)] },
    ];
    for (const { a, at8_5, all } of cases) {
      const { d, input, out } = await harness(count(a));
      d.send(input, [e('a', 3)]);
      d.advanceWatermark(8.5);
      assert.deepEqual(out.values, at8_5, `${a.kind} at 8.5`);
      d.advanceWatermark(100); // passes 9 = end - 1 of [0,10)
      assert.deepEqual(out.values, all, `${a.kind} at 100`);
      d.endInput();
      assert.deepEqual(out.values, all, `${a.kind} at the end`);
      await d.close();
    }
  });

  it('end of input (+Infinity) fires every pending window of every kind', async () => {
    const p = new Pipeline({ name: 'end-of-input', logger: silent });
    const input = testInput<E>();
    const tum = testOutput<R>('tumbling');
    const sli = testOutput<R>('sliding');
    const ses = testOutput<R>('session');
    const keyed = p.source(input, { timestamp: (x) => x.t, watermarks: watermarks.none() }).keyBy((x) => x.k);
    keyed.window(windows.tumbling(100)).aggregate(agg.count()).sink(tum);
    keyed.window(windows.sliding({ size: 100, slide: 50 })).aggregate(agg.count()).sink(sli);
    keyed.window(windows.session({ gap: 30 })).aggregate(agg.count()).sink(ses);
    const d = await TestDriver.create(p);
    d.send(input, [e('a', 10), e('b', 120), e('a', 1_000_000)]);
    assert.deepEqual([tum.values, sli.values, ses.values], [[], [], []]);
    d.endInput();
    assert.deepEqual(canonical(tum.values), canonical([r('a', 0, 100, 1), r('b', 100, 200, 1), r('a', 1_000_000, 1_000_100, 1)]));
    assert.deepEqual(
      canonical(sli.values),
      canonical([
        r('a', -50, 50, 1),
        r('a', 0, 100, 1),
        r('b', 50, 150, 1),
        r('b', 100, 200, 1),
        r('a', 999_950, 1_000_050, 1),
        r('a', 1_000_000, 1_000_100, 1),
      ]),
    );
    assert.deepEqual(canonical(ses.values), canonical([r('a', 10, 40, 1), r('b', 120, 150, 1), r('a', 1_000_000, 1_000_030, 1)]));
    await d.close();
  });

  it('Pipeline.run() on a bounded source fires every window at the end', async () => {
    const out: R[] = [];
    const p = new Pipeline({ name: 'run-end', logger: silent, batchSize: 2 });
    p.source(sources.array([e('a', 5), e('a', 7), e('b', 3000)]), { timestamp: (x) => x.t, watermarks: watermarks.boundedOutOfOrderness(10_000) })
      .keyBy((x) => x.k)
      .window(windows.tumbling(1000))
      .aggregate(agg.count())
      .sink(sinks.collect(out));
    await p.run();
    assert.deepEqual(canonical(out), [r('a', 0, 1000, 2), r('b', 3000, 4000, 1)]);
  });
});

describe('tumbling and sliding windows', () => {
  it('tumbling with an offset: [t - (t - offset) mod size, +size)', async () => {
    for (const a of [windows.tumbling(1000, { offset: 250 }), windows.tumbling('1s', { offset: '250ms' }), windows.tumbling(1000, { offset: -750 }), windows.tumbling(1000, { offset: 1250 })]) {
      const { d, input, out } = await harness(count(a));
      d.send(input, [e('a', 249), e('a', 250), e('a', 1249), e('a', 1250), e('a', -751)]);
      d.advanceWatermark(249);
      assert.deepEqual(out.take(), [r('a', -1750, -750, 1), r('a', -750, 250, 1)]);
      d.endInput();
      assert.deepEqual(out.take(), [r('a', 250, 1250, 2), r('a', 1250, 2250, 1)]);
      await d.close();
    }
  });

  it('sliding: each event is counted in size/slide windows', async () => {
    const { d, input, out } = await harness(count(windows.sliding({ size: 1000, slide: 250 })));
    d.send(input, [e('a', 1100)]);
    d.endInput();
    // 1100 is in [250,1250), [500,1500), [750,1750), [1000,2000): 1000 / 250 = 4 windows.
    assert.deepEqual(canonical(out.values), [r('a', 250, 1250, 1), r('a', 500, 1500, 1), r('a', 750, 1750, 1), r('a', 1000, 2000, 1)]);
    await d.close();
  });

  it('sliding where the slide does not divide the size (size 10, slide 4: 2-wide slices)', async () => {
    const { d, input, out } = await harness(count(windows.sliding({ size: 10, slide: 4 })));
    d.send(input, Array.from({ length: 20 }, (_, t) => e('a', t))); // one event at each t in 0..19
    d.advanceWatermark(1);
    assert.deepEqual(out.take(), [r('a', -8, 2, 2)]); // [-8, 2) holds 0, 1
    d.advanceWatermark(5);
    assert.deepEqual(out.take(), [r('a', -4, 6, 6)]);
    d.endInput();
    // [0,10): 10, [4,14): 10, [8,18): 10, [12,22): 12..19 = 8, [16,26): 16..19 = 4
    assert.deepEqual(out.take(), [r('a', 0, 10, 10), r('a', 4, 14, 10), r('a', 8, 18, 10), r('a', 12, 22, 8), r('a', 16, 26, 4)]);
    await d.close();
  });
});

describe('session windows', () => {
  it('events exactly gap apart are one session', async () => {
    const { d, input, out } = await harness(count(windows.session({ gap: 10 })));
    d.send(input, [e('a', 0), e('a', 10), e('a', 20)]);
    d.endInput();
    assert.deepEqual(out.values, [r('a', 0, 30, 3)]);
    await d.close();
  });

  it('events gap + 1 apart are two sessions', async () => {
    const { d, input, out } = await harness(count(windows.session({ gap: 10 })));
    d.send(input, [e('a', 0), e('a', 11)]);
    d.advanceWatermark(9);
    assert.deepEqual(out.take(), [r('a', 0, 10, 1)]);
    d.endInput();
    assert.deepEqual(out.take(), [r('a', 11, 21, 1)]);
    await d.close();
  });

  it('an out-of-order event bridges two sessions into one, merging their accumulators', async () => {
    const ids: Aggregator<E, number[], number[]> = {
      create: () => [],
      add: (a, x) => [...a, x.v],
      merge: (a, b) => [...a, ...b],
      result: (a) => [...a].sort((x, y) => x - y),
    };
    const p = new Pipeline({ name: 'bridge', logger: silent });
    const input = testInput<E>();
    const sums = testOutput<R>('sums');
    const lists = testOutput<R<number[]>>('lists');
    const keyed = p.source(input, { timestamp: (x) => x.t, watermarks: watermarks.none() }).keyBy((x) => x.k);
    keyed.window(windows.session({ gap: 10 })).aggregate(agg.sum((x: E) => x.v)).sink(sums);
    keyed.window(windows.session({ gap: 10 })).aggregate(ids).sink(lists);
    const d = await TestDriver.create(p);
    d.send(input, [e('a', 0, 1), e('a', 5, 2), e('a', 20, 4), e('a', 25, 8)]); // [0,15) and [20,35)
    d.send(input, [e('a', 12, 16)]); // [12,22) touches both
    d.endInput();
    assert.deepEqual(sums.values, [r('a', 0, 35, 31)]);
    assert.deepEqual(lists.values, [r('a', 0, 35, [1, 2, 4, 8, 16])]);
    await d.close();
  });

  it('a late event within allowedLateness bridges two fired sessions: the merged session fires', async () => {
    const { d, input, out } = await harness((s) =>
      s
        .keyBy((x) => x.k)
        .window(windows.session({ gap: 10 }))
        .allowedLateness(100)
        .aggregate(agg.count()),
    );
    d.send(input, [e('a', 0), e('a', 20)]);
    d.advanceWatermark(29);
    assert.deepEqual(out.take(), [r('a', 0, 10, 1), r('a', 20, 30, 1)]);
    d.send(input, [e('a', 10)]); // [10,20) touches both: [0,30) is due (29 <= W): fires at once
    assert.deepEqual(out.take(), [r('a', 0, 30, 3)]);
    d.endInput();
    assert.deepEqual(out.take(), []);
    await d.close();
  });

  // As in Flink: with allowedLateness 0 a session's state is purged when it fires (cleanup time =
  // end - 1), so an event at exactly `end` arriving after that (not late: t > W) opens a new session
  // although it touches the fired one. With allowedLateness >= 1 the fired session is still there and
  // merges.
  it('an event touching a session that already fired: new session at lateness 0, merged at lateness 1', async () => {
    for (const [lateness, want] of [
      [0, [r('a', 0, 10, 1), r('a', 10, 20, 1)]],
      [1, [r('a', 0, 10, 1), r('a', 0, 20, 2)]],
    ] as const) {
      const { d, input, out } = await harness((s) =>
        s
          .keyBy((x) => x.k)
          .window(windows.session({ gap: 10 }))
          .allowedLateness(lateness)
          .aggregate(agg.count()),
      );
      d.send(input, [e('a', 0)]);
      d.advanceWatermark(9);
      d.send(input, [e('a', 10)]);
      d.endInput();
      assert.deepEqual(out.values, want, `allowedLateness ${lateness}`);
      await d.close();
    }
  });
});

describe('late data', () => {
  async function lateHarness(a: WindowAssigner, lateness: number, withLate = true) {
    const p = new Pipeline({ name: 'late', logger: silent });
    const input = testInput<E>();
    const out = testOutput<R>('out');
    const late = testOutput<E>('late');
    const ws = p
      .source(input, { timestamp: (x) => x.t, watermarks: watermarks.none() })
      .keyBy((x) => x.k)
      .window(a)
      .allowedLateness(lateness);
    (withLate ? ws.lateOutput(late) : ws).aggregate(agg.count()).sink(out);
    const d = await TestDriver.create(p);
    const lateMetric = (outcome: string) => metric(d.metrics(), 'weir_late_records_total', { outcome });
    return { p, d, input, out, late, lateMetric };
  }

  it('allowedLateness re-fires the window with the updated result; beyond it, the element goes to lateOutput', async () => {
    const { d, input, out, late, lateMetric } = await lateHarness(windows.tumbling(1000), 500);
    d.send(input, [e('a', 100), e('a', 200)]);
    d.advanceWatermark(999);
    assert.deepEqual(out.take(), [r('a', 0, 1000, 2)]);
    d.send(input, [e('a', 300)]); // late, within lateness: same window, new value
    assert.deepEqual(out.take(), [r('a', 0, 1000, 3)]);
    d.advanceWatermark(1498); // cleanup at end - 1 + lateness = 1499
    d.send(input, [e('a', 400), e('b', 401)]); // b's window had no state: it is created and fires at once
    assert.deepEqual(out.take(), [r('a', 0, 1000, 4), r('b', 0, 1000, 1)]);
    d.advanceWatermark(1499);
    d.send(input, [e('a', 500)]);
    assert.deepEqual(out.take(), []);
    assert.deepEqual(late.values, [e('a', 500)]);
    assert.deepEqual([lateMetric('updated'), lateMetric('side_output'), lateMetric('dropped')], [3, 1, 0]);
    d.endInput();
    assert.deepEqual(out.take(), []);
    await d.close();
  });

  it('without lateOutput a too-late element is counted as dropped (p.metrics())', async () => {
    const out: R[] = [];
    const p = new Pipeline({ name: 'dropped', logger: silent, batchSize: 1 });
    // Batches of one: 2000 moves W to 1999, so 5 and 6 are too late for [0,1000), 1500 for [1000,2000).
    p.source(sources.array([e('a', 1), e('a', 2000), e('a', 5), e('a', 1500), e('a', 2500), e('a', 6)]), { timestamp: (x) => x.t, watermarks: watermarks.ascending() })
      .keyBy((x) => x.k)
      .window(windows.tumbling(1000))
      .aggregate(agg.count())
      .sink(sinks.collect(out));
    await p.run();
    assert.deepEqual(canonical(out), [r('a', 0, 1000, 1), r('a', 2000, 3000, 2)]);
    assert.equal(metric(p.metrics(), 'weir_late_records_total', { outcome: 'dropped' }), 3);
    assert.equal(metric(p.metrics(), 'weir_late_records_total', { outcome: 'side_output' }), 0);
  });

  it('sliding: an element late for some of its windows only is counted in the others, not sent to lateOutput', async () => {
    const { d, input, out, late } = await lateHarness(windows.sliding({ size: 10, slide: 5 }), 0);
    d.send(input, [e('a', 1)]);
    d.advanceWatermark(9);
    assert.deepEqual(out.take(), [r('a', -5, 5, 1), r('a', 0, 10, 1)]);
    d.send(input, [e('a', 7)]); // in [0,10) (fired, no lateness: skipped) and [5,15) (open)
    assert.deepEqual(out.take(), []);
    d.endInput();
    assert.deepEqual(out.take(), [r('a', 5, 15, 1)]);
    assert.deepEqual(late.values, []);
    await d.close();
  });

  it('sliding: an element late for all its windows goes to lateOutput; within lateness it re-fires each fired window', async () => {
    const { d, input, out, late } = await lateHarness(windows.sliding({ size: 10, slide: 5 }), 5);
    d.send(input, [e('a', 6)]);
    d.advanceWatermark(14); // [0,10) and [5,15) fired; cleanup of [0,10) at 14, of [5,15) at 19
    assert.deepEqual(out.take(), [r('a', 0, 10, 1), r('a', 5, 15, 1)]);
    d.send(input, [e('a', 7)]); // [0,10) is gone; [5,15) re-fires with 2
    assert.deepEqual(out.take(), [r('a', 5, 15, 2)]);
    d.send(input, [e('a', 3)]); // [-5,5) and [0,10) are both past cleanup: late
    assert.deepEqual(out.take(), []);
    assert.deepEqual(late.values, [e('a', 3)]);
    await d.close();
  });

  it('sessions: beyond allowedLateness the element goes to lateOutput', async () => {
    const { d, input, out, late, lateMetric } = await lateHarness(windows.session({ gap: 10 }), 5);
    d.send(input, [e('a', 0)]);
    d.advanceWatermark(13); // [0,10) fired; cleanup at 9 + 5 = 14
    d.send(input, [e('a', 2)]); // merges: [0,12), due: re-fires
    assert.deepEqual(out.take(), [r('a', 0, 10, 1), r('a', 0, 12, 2)]);
    d.advanceWatermark(16); // cleanup of [0,12) at 16
    d.send(input, [e('a', 1), e('a', 6)]); // [1,11) and [6,16): 10 + 5 <= 16 and 15 + 5 > 16
    assert.deepEqual(out.take(), [r('a', 6, 16, 1)]);
    assert.deepEqual(late.values, [e('a', 1)]);
    assert.deepEqual([lateMetric('updated'), lateMetric('side_output')], [2, 1]);
    await d.close();
  });
});

describe('several inputs', () => {
  async function unionHarness() {
    const p = new Pipeline({ name: 'union', logger: silent });
    const in1 = testInput<E>('in1');
    const in2 = testInput<E>('in2');
    const out = testOutput<R>();
    const s1 = p.source(in1, { timestamp: (x) => x.t, watermarks: watermarks.none() });
    const s2 = p.source(in2, { timestamp: (x) => x.t, watermarks: watermarks.none() });
    count(windows.tumbling(1000))(s1.union(s2)).sink(out);
    const d = await TestDriver.create(p);
    return { d, in1, in2, out };
  }

  it('union: a window fires only when both inputs passed end - 1 (the minimum)', async () => {
    const { d, in1, in2, out } = await unionHarness();
    d.send(in1, [e('a', 10)]);
    d.send(in2, [e('a', 20), e('a', 1500)]);
    d.advanceWatermark(999, in1);
    assert.deepEqual(out.take(), []);
    d.advanceWatermark(5000, in1);
    assert.deepEqual(out.take(), []);
    d.advanceWatermark(998, in2);
    assert.deepEqual(out.take(), []);
    d.advanceWatermark(999, in2);
    assert.deepEqual(out.take(), [r('a', 0, 1000, 2)]);
    d.endInput(in1);
    assert.deepEqual(out.take(), []); // in2 still at 999
    d.endInput(in2);
    assert.deepEqual(out.take(), [r('a', 1000, 2000, 1)]);
    await d.close();
  });

  it('an idle input stops holding the watermark back', async () => {
    const { d, in1, in2, out } = await unionHarness();
    d.send(in1, [e('a', 10)]);
    d.advanceWatermark(1999, in1); // in2 has no watermark yet: nothing fires
    assert.deepEqual(out.take(), []);
    d.setIdle(in2, true);
    assert.deepEqual(out.take(), [r('a', 0, 1000, 1)]);
    d.setIdle(in2, false); // active again: the combined watermark does not go back
    d.send(in1, [e('a', 2500)]);
    d.advanceWatermark(2999, in1);
    assert.deepEqual(out.take(), []); // held back by in2 again (at -Infinity)
    d.advanceWatermark(2999, in2);
    assert.deepEqual(out.take(), [r('a', 2000, 3000, 1)]);
    await d.close();
  });
});

describe('reduce and process', () => {
  it('reduce folds a window elementwise; the result has the element type', async () => {
    const { d, input, out } = await harness((s) =>
      s
        .keyBy((x) => x.k)
        .window(windows.tumbling(100))
        .reduce((a, b) => (b.v > a.v ? b : a)),
    );
    d.send(input, [e('a', 1, 5), e('a', 2, 9), e('b', 3, 1), e('a', 4, 7), e('a', 150, 2)]);
    d.endInput();
    assert.deepEqual(canonical(out.values), [r('a', 0, 100, e('a', 2, 9)), r('a', 100, 200, e('a', 150, 2)), r('b', 0, 100, e('b', 3, 1))]);
    await d.close();
  });

  it('process gets all elements of the window (tumbling: in arrival order) and may return undefined to emit nothing', async () => {
    const seen: Array<{ start: number; ts: number[] }> = [];
    const { d, input, out } = await harness((s) =>
      s
        .keyBy((x) => x.k)
        .window(windows.tumbling(100))
        .process((els, w) => {
          seen.push({ start: w.start, ts: els.map((x) => x.t) });
          return els.length >= 2 ? `${w.key}@${w.start}:${els.length}` : undefined;
        }),
    );
    d.send(input, [e('a', 50), e('a', 10), e('a', 120), e('a', 30)]);
    d.endInput();
    assert.deepEqual(seen, [
      { start: 0, ts: [50, 10, 30] },
      { start: 100, ts: [120] },
    ]);
    assert.deepEqual(out.values, ['a@0:3']); // the one-element window emitted nothing
    await d.close();
  });

  it('process on sliding and session windows gets every element of the window', async () => {
    for (const a of [windows.sliding({ size: 10, slide: 5 }), windows.session({ gap: 10 })]) {
      const { d, input, out } = await harness((s) =>
        s
          .keyBy((x) => x.k)
          .window(a)
          .process((els, w) => r(w.key, w.start, w.end, els.map((x) => x.t).sort((p, q) => p - q))),
      );
      d.send(input, [e('a', 20), e('a', 7), e('a', 2), e('a', 10), e('a', 8)]);
      d.endInput();
      const want =
        a.kind === 'sliding'
          ? [r('a', -5, 5, [2]), r('a', 0, 10, [2, 7, 8]), r('a', 5, 15, [7, 8, 10]), r('a', 10, 20, [10]), r('a', 15, 25, [20]), r('a', 20, 30, [20])]
          : [r('a', 2, 30, [2, 7, 8, 10, 20])];
      assert.deepEqual(canonical(out.values), want, a.kind);
      await d.close();
    }
  });

  it('a result emitted by process is not changed by a later late element (allowedLateness)', async () => {
    for (const a of [windows.tumbling(1000), windows.sliding({ size: 1000, slide: 500 }), windows.session({ gap: 1000 })]) {
      const { d, input, out } = await harness((s) =>
        s
          .keyBy((x) => x.k)
          .window(a)
          .allowedLateness(10_000)
          .process((els) => els),
      );
      d.send(input, [e('a', 1), e('a', 2)]);
      d.advanceWatermark(1999);
      const first = out.values.map((v) => v.map((x) => x.t));
      d.send(input, [e('a', 3)]); // late, within lateness: re-fires with three elements
      assert.deepEqual(
        out.values.slice(0, first.length).map((v) => v.map((x) => x.t)),
        first,
        `${a.kind}: what was emitted before stays as it was`,
      );
      assert.ok(out.values.length > first.length, `${a.kind}: re-fired`);
      assert.deepEqual(out.values[out.values.length - 1].map((x) => x.t).sort(), [1, 2, 3]);
      await d.close();
    }
  });
});

// Not a window rule, but what the window tests rely on: sends split into batches behave the same.
describe('TestDriver batch splits', () => {
  it('send(..., { batchSize }) gives each batch its own watermark', async () => {
    const run = async (batchSize: number | undefined, input: TestInput<E>, out: TestOutput<R>, d: TestDriver) => {
      d.send(input, [e('a', 10), e('a', 1000), e('a', 20)], batchSize === undefined ? {} : { batchSize });
      d.endInput();
      return canonical(out.values);
    };
    const one = await harness(count(windows.tumbling(1000)), watermarks.ascending());
    assert.deepEqual(await run(undefined, one.input, one.out, one.d), [r('a', 0, 1000, 2), r('a', 1000, 2000, 1)]);
    const split = await harness(count(windows.tumbling(1000)), watermarks.ascending());
    // batches of one: 1000 moves W to 999 and fires [0,1000) before 20 arrives: 20 is dropped
    assert.deepEqual(await run(1, split.input, split.out, split.d), [r('a', 0, 1000, 1), r('a', 1000, 2000, 1)]);
    assert.equal(metric(split.d.metrics(), 'weir_late_records_total', { outcome: 'dropped' }), 1);
    await one.d.close();
    await split.d.close();
  });
});

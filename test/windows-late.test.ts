/**
 * Property: with disorder BEYOND the out-of-orderness bound and a random `allowedLateness`, no event
 * is lost. Each one is counted in the latest result of every window of it that was still alive when it
 * arrived, or it reaches `lateOutput`, or (without a late output) it is counted in
 * `weir_late_records_total{outcome="dropped"}`. Checked against the step-by-step reference model, and
 * for tumbling windows also against the offline model: last emitted count + late events = all events.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Pipeline, agg, sinks, sources, watermarks, type WindowResult } from '../src/index.js';
import { TestDriver, testInput, testOutput } from '../src/testing/index.js';
import {
  OperationalModel,
  boundedWatermarks,
  chunk,
  chunkEvery,
  expectedWindows,
  windowId,
  type Ev,
  type Key,
  type Result,
  type WindowSpec,
} from './reference-model.js';
import { assignerOf, idsAgg, metric, silent, type Out } from './window-harness.js';

// FC_NUM_RUNS=5000 for a deeper search.
const RUNS = Number(process.env.FC_NUM_RUNS ?? 300);

const specArbs: Record<WindowSpec['kind'], fc.Arbitrary<WindowSpec>> = {
  tumbling: fc.record({ kind: fc.constant('tumbling' as const), size: fc.oneof(fc.integer({ min: 1, max: 10 }), fc.integer({ min: 1, max: 40 })), offset: fc.integer({ min: -50, max: 50 }) }),
  sliding: fc
    .record({ slide: fc.integer({ min: 1, max: 10 }), times: fc.integer({ min: 1, max: 4 }), extra: fc.integer({ min: 0, max: 9 }), offset: fc.integer({ min: -50, max: 50 }) })
    .map(({ slide, times, extra, offset }) => ({ kind: 'sliding' as const, slide, size: slide * times + (extra % slide), offset })),
  session: fc.record({ kind: fc.constant('session' as const), gap: fc.oneof(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 30 })) }),
};

interface LateCase {
  spec: WindowSpec;
  bound: number;
  lateness: number;
  events: Ev[];
  batchSize: number;
  /** TestDriver batches; after some, a watermark injected by hand at `max seen + wm`. */
  splits: Array<{ n: number; wm: number | null }>;
}

/** A non-decreasing clock; each event `jitter` behind it, the jitter often far beyond the bound. */
const lateCaseArb = (spec: fc.Arbitrary<WindowSpec>): fc.Arbitrary<LateCase> =>
  fc
    .record({
      spec,
      bound: fc.integer({ min: 0, max: 10 }),
      lateness: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 10 }), fc.integer({ min: 0, max: 60 })),
      keys: fc.constantFrom<readonly Key[]>(['k'], ['a', 'b'], Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? i : `s${i}`))),
      start: fc.integer({ min: -100, max: 100 }),
      steps: fc.array(
        fc.record({
          dt: fc.integer({ min: 0, max: 6 }),
          jitter: fc.oneof(fc.integer({ min: 0, max: 10 }), fc.integer({ min: 0, max: 40 }), fc.integer({ min: 20, max: 120 })),
          key: fc.nat(),
        }),
        { minLength: 1, maxLength: 60, size: 'medium' },
      ),
      batchSize: fc.integer({ min: 1, max: 12 }),
      // Injected watermarks in half milliseconds: a watermark need not be a whole number.
      splits: fc.array(fc.record({ n: fc.integer({ min: 1, max: 8 }), wm: fc.option(fc.integer({ min: -120, max: 40 }).map((x) => x / 2), { freq: 3 }) }), { maxLength: 40 }),
    })
    .map(({ spec, bound, lateness, keys, start, steps, batchSize, splits }) => {
      let c = start;
      const events = steps.map((s, id) => {
        c += s.dt;
        return { key: keys[s.key % keys.length], ts: c - s.jitter, value: 1, id };
      });
      return { spec, bound, lateness, events, batchSize, splits };
    });

const sortedIds = (evs: readonly Ev[]) => evs.map((e) => e.id).sort((a, b) => a - b);

/** The engine's view: per window, the value it emitted last. */
function viewOf(values: readonly Out[]): Map<string, Result<unknown>> {
  const m = new Map<string, Result<unknown>>();
  for (const v of values) m.set(windowId(v.key, v.start, v.end), { key: v.key, start: v.start, end: v.end, value: v.value });
  return m;
}

function assertSameView(engine: Map<string, Result<unknown>>, model: Map<string, Result<unknown>>, what: string): void {
  const sorted = (m: Map<string, Result<unknown>>) => [...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  assert.deepEqual(sorted(engine), sorted(model), what);
}

function lateMetrics(samples: Parameters<typeof metric>[0]) {
  return {
    dropped: metric(samples, 'weir_late_records_total', { outcome: 'dropped' }),
    side: metric(samples, 'weir_late_records_total', { outcome: 'side_output' }),
    updated: metric(samples, 'weir_late_records_total', { outcome: 'updated' }),
  };
}

/**
 * TestDriver, id-collecting aggregate and a late output: after every batch the engine's view, its
 * late output and its late metrics equal the step-by-step model's.
 */
async function checkDriver(c: LateCase): Promise<void> {
  const p = new Pipeline({ name: 'late-driver', logger: silent });
  const input = testInput<Ev>();
  const out = testOutput<Out>('out');
  const late = testOutput<Ev>('late');
  p.source(input, { timestamp: (e) => e.ts, watermarks: watermarks.boundedOutOfOrderness(c.bound) })
    .keyBy((e) => e.key)
    .window(assignerOf(c.spec))
    .allowedLateness(c.lateness)
    .lateOutput(late)
    .aggregate(idsAgg)
    .sink(out);
  const d = await TestDriver.create(p);
  const model = new OperationalModel(c.spec, c.lateness, sortedIds);
  const batches = chunk(c.events, c.splits.map((x) => x.n));
  const wms = boundedWatermarks(batches, c.bound);
  let max = -Infinity;
  const step = (what: string) => {
    assertSameView(viewOf(out.values), model.view, `view ${what}`);
    assert.deepEqual(sortedIds(late.values), sortedIds(model.late), `late output ${what}`);
    const m = lateMetrics(d.metrics());
    assert.deepEqual(m, { dropped: 0, side: model.late.length, updated: model.updated }, `late metrics ${what}`);
  };
  for (let i = 0; i < batches.length; i++) {
    d.send(input, batches[i]);
    model.batch(batches[i]);
    model.advance(wms[i]);
    step(`after batch ${i} (watermark ${wms[i]})`);
    for (const x of batches[i]) max = Math.max(max, x.ts);
    const injected = c.splits[i]?.wm;
    if (injected !== undefined && injected !== null) {
      // By hand, anywhere around the data; ignored unless it moves forward (as by the engine).
      d.advanceWatermark(max + injected);
      model.advance(max + injected);
      step(`after watermark ${max + injected}`);
    }
  }
  d.endInput();
  model.advance(Infinity);
  step('after end of input');

  // A window fires once, and again only when a late element changed it: each emission of a window
  // holds strictly more elements than the one before. Every emission carries the timestamp end - 1.
  const previous = new Map<string, number[]>();
  out.values.forEach((v, i) => {
    const id = windowId(v.key, v.start, v.end);
    const before = previous.get(id);
    const now = v.value as number[];
    if (before !== undefined) {
      assert.ok(now.length > before.length && before.every((x) => now.includes(x)), `${id} re-fired with ${JSON.stringify(now)} after ${JSON.stringify(before)}`);
    }
    previous.set(id, now);
    assert.equal(out.timestamps[i], v.end - 1);
  });

  // Model-free: every event is in the latest result of some window, or late — never both, never neither.
  const emitted = new Set<number>();
  for (const r of viewOf(out.values).values()) for (const id of r.value as number[]) emitted.add(id);
  for (const e of late.values) assert.ok(!emitted.has(e.id), `event ${e.id} is both late and in a window`);
  assert.deepEqual([...emitted, ...late.values.map((e) => e.id)].sort((a, b) => a - b), sortedIds(c.events), 'every event is counted or late');
  await d.close();
}

/** `Pipeline.run()` with a count, with and without a late output. */
async function checkRun(c: LateCase): Promise<void> {
  const model = new OperationalModel(c.spec, c.lateness, (evs) => evs.length);
  // sources.array hands out batches of batchSize; the watermark follows each one.
  const batches = chunkEvery(c.events, c.batchSize);
  const wms = boundedWatermarks(batches, c.bound);
  for (let i = 0; i < batches.length; i++) {
    model.batch(batches[i]);
    model.advance(wms[i]);
  }
  model.advance(Infinity);

  for (const withLateOutput of [true, false]) {
    const out: WindowResult<Key, number>[] = [];
    const late: Ev[] = [];
    const p = new Pipeline({ name: 'late-run', logger: silent, batchSize: c.batchSize });
    let ws = p
      .source(sources.array(c.events), { timestamp: (e) => e.ts, watermarks: watermarks.boundedOutOfOrderness(c.bound) })
      .keyBy((e) => e.key)
      .window(assignerOf(c.spec))
      .allowedLateness(c.lateness);
    if (withLateOutput) ws = ws.lateOutput(sinks.collect(late));
    ws.aggregate(agg.count()).sink(sinks.collect(out));
    await p.run();
    const what = withLateOutput ? 'with lateOutput' : 'without lateOutput';
    const view = viewOf(out);
    assertSameView(view, model.view, `final view, ${what}`);
    const m = lateMetrics(p.metrics());
    if (withLateOutput) {
      assert.deepEqual(sortedIds(late), sortedIds(model.late), 'late output');
      assert.equal(m.side, model.late.length, 'side_output metric');
      assert.equal(m.dropped, 0, 'dropped metric');
      if (c.spec.kind === 'tumbling') {
        // Each event has one window: its last emitted count + its events in `late` = all its events.
        const lateIds = new Set(late.map((e) => e.id));
        for (const w of expectedWindows(c.spec, c.events)) {
          const emitted = (view.get(windowId(w.key, w.start, w.end))?.value as number | undefined) ?? 0;
          const lateHere = w.events.filter((e) => lateIds.has(e.id)).length;
          assert.equal(emitted + lateHere, w.events.length, `window ${windowId(w.key, w.start, w.end)}`);
        }
      }
    } else {
      assert.equal(m.dropped, model.late.length, 'dropped metric');
      assert.equal(m.side, 0, 'side_output metric');
    }
    assert.equal(m.updated, model.updated, `updated metric, ${what}`);
  }
}

const params = { numRuns: RUNS };

describe('late data is never lost', () => {
  for (const kind of ['tumbling', 'sliding', 'session'] as const) {
    it(`${kind} windows: TestDriver, per batch, against the step-by-step model`, async () => {
      await fc.assert(fc.asyncProperty(lateCaseArb(specArbs[kind]), checkDriver), params);
    });
    it(`${kind} windows: Pipeline.run(), late output or dropped metric`, async () => {
      await fc.assert(fc.asyncProperty(lateCaseArb(specArbs[kind]), checkRun), params);
    });
  }
});

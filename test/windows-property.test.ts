/**
 * Property: with disorder within the out-of-orderness bound (so no event is late), every window
 * operator emits exactly the naive model's windows — as a multiset, whatever the keys, timestamps,
 * disorder, aggregator and batch boundaries — and, step by step under the TestDriver, exactly those
 * whose `end - 1` the watermark has reached.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Pipeline, sinks, sources, watermarks } from '../src/index.js';
import { TestDriver, testInput, testOutput, type TestInput } from '../src/testing/index.js';
import { boundedWatermarks, canonical, chunk, expectedResults, type Ev, type Key, type WindowSpec } from './reference-model.js';
import { AGGS, assignerOf, silent, type AggCase, type Out } from './window-harness.js';

// FC_NUM_RUNS=5000 for a deeper search.
const RUNS = Number(process.env.FC_NUM_RUNS ?? 300);

/** A few keys, one key, or many keys of both types (`1` and `'1'` are different keys). */
const keyPoolArb: fc.Arbitrary<readonly Key[]> = fc.constantFrom<readonly Key[]>(
  ['k'],
  ['a', 'b', 'c'],
  [...Array.from({ length: 25 }, (_, i) => i), ...Array.from({ length: 25 }, (_, i) => String(i))],
);

const tumblingArb: fc.Arbitrary<WindowSpec> = fc.record({
  kind: fc.constant('tumbling' as const),
  size: fc.integer({ min: 1, max: 50 }),
  offset: fc.integer({ min: -60, max: 60 }),
});

const slidingArb: fc.Arbitrary<WindowSpec> = fc
  .record({
    slide: fc.integer({ min: 1, max: 20 }),
    times: fc.integer({ min: 1, max: 6 }),
    extra: fc.integer({ min: 0, max: 19 }),
    divides: fc.boolean(),
    offset: fc.integer({ min: -60, max: 60 }),
  })
  .map(({ slide, times, extra, divides, offset }) => ({
    kind: 'sliding' as const,
    slide,
    // slide divides size, or (usually) not: then slices are gcd(size, slide) wide.
    size: slide * times + (divides ? 0 : extra % slide),
    offset,
  }));

const sessionArb: fc.Arbitrary<WindowSpec> = fc.record({ kind: fc.constant('session' as const), gap: fc.integer({ min: 1, max: 40 }) });

/**
 * Events in disorder within `bound`: a non-decreasing clock `c`, each event at `c - jitter`,
 * `0 <= jitter <= bound`, so every event is at least `max seen so far - bound`: never late.
 * `strict` makes the clock strictly increasing, which keeps every event above `max - bound`: see the
 * session property for why.
 */
function eventsArb(bound: number, strict: boolean): fc.Arbitrary<Ev[]> {
  return fc
    .record({
      pool: keyPoolArb,
      // Around zero (negative timestamps too) or at today's epoch milliseconds.
      start: fc.oneof(fc.integer({ min: -200, max: 200 }), fc.integer({ min: 1_700_000_000_000, max: 1_800_000_000_000 })),
      steps: fc.array(
        fc.record({
          dt: fc.integer({ min: strict ? 1 : 0, max: 12 }),
          jitter: fc.integer({ min: 0, max: bound }),
          key: fc.nat(),
          value: fc.integer({ min: -50, max: 50 }),
        }),
        { maxLength: 60, size: 'medium' },
      ),
    })
    .map(({ pool, start, steps }) => {
      let c = start;
      return steps.map((s, id) => {
        c += s.dt;
        return { key: pool[s.key % pool.length], ts: c - s.jitter, value: s.value, id };
      });
    });
}

interface Case {
  spec: WindowSpec;
  bound: number;
  events: Ev[];
  agg: AggCase;
  batchSize: number;
  /** `batchSize` as the source's option (else the pipeline's). */
  perSource: boolean;
  splits: number[];
}

function caseArb(specArb: fc.Arbitrary<WindowSpec>, strict: boolean): fc.Arbitrary<Case> {
  return fc.integer({ min: 0, max: 25 }).chain((bound) =>
    fc.record({
      spec: specArb,
      bound: fc.constant(bound),
      events: eventsArb(bound, strict),
      agg: fc.constantFrom(...AGGS),
      batchSize: fc.oneof(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 100 })),
      perSource: fc.boolean(),
      splits: fc.array(fc.integer({ min: 1, max: 10 }), { maxLength: 30 }),
    }),
  );
}

function expected(c: Case): Out[] {
  return expectedResults(c.spec, c.events, c.agg.model).filter((r) => r.value !== undefined);
}

/** Through `Pipeline.run()` with `sources.array` and the case's batch size. */
async function viaRun(c: Case): Promise<Out[]> {
  const out: Out[] = [];
  const p = new Pipeline({ name: 'prop-run', logger: silent, ...(c.perSource ? {} : { batchSize: c.batchSize }) });
  const s = p.source(sources.array(c.events), {
    timestamp: (e) => e.ts,
    watermarks: watermarks.boundedOutOfOrderness(c.bound),
    ...(c.perSource ? { batchSize: c.batchSize } : {}),
  });
  c.agg.build(s.keyBy((e) => e.key).window(assignerOf(c.spec))).sink(sinks.collect(out));
  const r = await p.run();
  assert.equal(r.status, 'finished');
  return out;
}

/**
 * Through the TestDriver with the case's batch splits. After every batch, what was emitted is exactly
 * the model's windows with `end - 1 <= W` (W = max - bound - 1): nothing early, nothing held back.
 */
async function viaDriver(c: Case, want: Out[]): Promise<void> {
  const p = new Pipeline({ name: 'prop-driver', logger: silent });
  const input = testInput<Ev>();
  const out = testOutput<Out>();
  const s = p.source(input, { timestamp: (e) => e.ts, watermarks: watermarks.boundedOutOfOrderness(c.bound) });
  c.agg.build(s.keyBy((e) => e.key).window(assignerOf(c.spec))).sink(out);
  const d = await TestDriver.create(p);
  const batches = chunk(c.events, c.splits);
  const wms = boundedWatermarks(batches, c.bound);
  for (let i = 0; i < batches.length; i++) {
    d.send(input, batches[i]);
    const w = wms[i];
    assert.deepEqual(canonical(out.values), canonical(want.filter((r) => r.end - 1 <= w)), `after batch ${i} (watermark ${w})`);
  }
  d.endInput();
  assert.deepEqual(canonical(out.values), canonical(want), 'after end of input');
  // Each result carries the timestamp end - 1.
  out.values.forEach((v, i) => assert.equal(out.timestamps[i], v.end - 1));
  await d.close();
}

async function check(c: Case): Promise<void> {
  const want = expected(c);
  assert.deepEqual(canonical(await viaRun(c)), canonical(want), 'Pipeline.run()');
  await viaDriver(c, want);
}

interface UnionCase {
  spec: WindowSpec;
  bounds: [number, number];
  events: [Ev[], Ev[]];
  agg: AggCase;
  /** Which input sends its next `n` events, in turn. */
  order: Array<{ input: 0 | 1; n: number }>;
  firstToEnd: 0 | 1;
}

/** Two inputs, each in disorder within its own bound; ids are unique across both. */
const unionCaseArb: fc.Arbitrary<UnionCase> = fc
  .tuple(fc.integer({ min: 0, max: 25 }), fc.integer({ min: 0, max: 25 }), fc.oneof(tumblingArb, slidingArb, sessionArb))
  .chain(([b0, b1, spec]) =>
    fc.record({
      spec: fc.constant(spec),
      bounds: fc.constant<[number, number]>([b0, b1]),
      // Strict clocks (see the session property): harmless for tumbling and sliding windows.
      events: fc.tuple(eventsArb(b0, true), eventsArb(b1, true)).map(([a, b]): [Ev[], Ev[]] => [a, b.map((e) => ({ ...e, id: e.id + 1000 }))]),
      agg: fc.constantFrom(...AGGS),
      order: fc.array(fc.record({ input: fc.constantFrom<0 | 1>(0, 1), n: fc.integer({ min: 1, max: 8 }) }), { maxLength: 40 }),
      firstToEnd: fc.constantFrom<0 | 1>(0, 1),
    }),
  );

/**
 * The union's watermark is the minimum of its inputs': after every batch exactly the model's windows
 * with `end - 1 <= min(W0, W1)` have been emitted; after one input ends, those below the other's.
 */
async function checkUnion(c: UnionCase): Promise<void> {
  const all = [...c.events[0], ...c.events[1]];
  const want = expectedResults(c.spec, all, c.agg.model).filter((r) => r.value !== undefined);
  const p = new Pipeline({ name: 'prop-union', logger: silent });
  const inputs: [TestInput<Ev>, TestInput<Ev>] = [testInput<Ev>('in0'), testInput<Ev>('in1')];
  const out = testOutput<Out>();
  const [s0, s1] = inputs.map((input, i) => p.source(input, { timestamp: (e) => e.ts, watermarks: watermarks.boundedOutOfOrderness(c.bounds[i]) }));
  c.agg.build(s0.union(s1).keyBy((e) => e.key).window(assignerOf(c.spec))).sink(out);
  const d = await TestDriver.create(p);
  const pos = [0, 0];
  const max = [-Infinity, -Infinity];
  const wm = (i: number) => max[i] - c.bounds[i] - 1;
  const send = (i: 0 | 1, n: number) => {
    const batch = c.events[i].slice(pos[i], pos[i] + n);
    if (batch.length === 0) return;
    pos[i] += batch.length;
    for (const e of batch) max[i] = Math.max(max[i], e.ts);
    d.send(inputs[i], batch);
    const w = Math.min(wm(0), wm(1));
    assert.deepEqual(canonical(out.values), canonical(want.filter((r) => r.end - 1 <= w)), `after a batch of input ${i} (watermark ${w})`);
  };
  for (const { input, n } of c.order) send(input, n);
  send(0, Infinity);
  send(1, Infinity);
  d.endInput(inputs[c.firstToEnd]);
  const other = wm(1 - c.firstToEnd);
  assert.deepEqual(canonical(out.values), canonical(want.filter((r) => r.end - 1 <= other)), `input ${c.firstToEnd} ended`);
  d.endInput();
  assert.deepEqual(canonical(out.values), canonical(want), 'both ended');
  await d.close();
}

const params = { numRuns: RUNS };

describe('windows match the reference model (no late data)', () => {
  it('tumbling windows (random size and offset)', async () => {
    await fc.assert(fc.asyncProperty(caseArb(tumblingArb, false), check), params);
  });

  it('sliding windows (slide dividing the size or not)', async () => {
    await fc.assert(fc.asyncProperty(caseArb(slidingArb, false), check), params);
  });

  // The clock is strictly increasing here, so every event is > max - bound, i.e. at least W + 2. An
  // event at exactly W + 1 could touch a session [s, W + 1) that has already fired; with
  // allowedLateness 0 that session is gone and (as in Flink) the event opens a new one, which the
  // offline model cannot know. windows-late.test.ts and windows-semantics.test.ts cover that case.
  it('session windows (random gap)', async () => {
    await fc.assert(fc.asyncProperty(caseArb(sessionArb, true), check), params);
  });

  it('union of two inputs: windows fire when the minimum of the watermarks passes', async () => {
    await fc.assert(fc.asyncProperty(unionCaseArb, checkUnion), params);
  });
});

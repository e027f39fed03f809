/**
 * The drift operators (`.drift(ml.ks(...) | ml.psi(...))`) against a naive reference model that calls
 * `ml.stats.ks2` / `ml.stats.psi` on each window's exact sample: random streams, keyed and unkeyed,
 * every reference mode, time and count windows; seeded drift is flagged and its absence is not; sketched
 * windows stay within their stated bound; a job restored from checkpoints reports exactly what a
 * straight run reports; bad feature values and late records are never silently lost.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Pipeline, WeirError, ml, sinks, sources, watermarks, windows, type DeadLetter, type DriftReport, type DriftSpec, type KeyedDriftReport, type Stream } from '../src/index.js';
import { QuantileSketch } from '../src/ml/stats/quantile-sketch.js';
import { TestDriver, testInput, testOutput, type TestCheckpoint, type TestInput, type TestOutput } from '../src/testing/index.js';
import { buildDriftJob, type DriftJobArgs } from './fixtures/drift-parallel-job.js';
import { expectedReports, sortReports, type DriftEv, type Expected, type ModelReference, type ModelSpec, type ModelTest, type ModelWindow } from './drift-model.js';
import { boundedWatermarks, chunk } from './reference-model.js';
import { metric, silent } from './window-harness.js';

// FC_NUM_RUNS=2000 for a deeper search.
const RUNS = Number(process.env.FC_NUM_RUNS ?? 300);

type AnyReport = DriftReport & { readonly key?: unknown };

/** The engine's spec for a model spec (feature: the field `x`). */
function specOf(m: ModelSpec, sketch?: { k: number; exactLimit: number }): DriftSpec<DriftEv> {
  const window = m.window.kind === 'count' ? { count: m.window.count } : windows.tumbling(m.window.size, { offset: m.window.offset });
  const r = m.reference;
  const reference = r.kind === 'fixed' ? [...r.values] : r.kind === 'first-window' ? ('first-window' as const) : { trailing: r.n };
  const t = m.test;
  return t.test === 'ks'
    ? ml.ks({ feature: 'x', window, reference, alpha: t.alpha, alternative: t.alternative, ...(sketch ? { sketch } : {}) })
    : ml.psi({ feature: 'x', window, reference, bins: t.bins, thresholds: t.thresholds, ...(sketch ? { sketch } : {}) });
}

/** Adds the drift step, keyed by `key` or not. */
function attach(s: Stream<DriftEv>, m: ModelSpec, spec: DriftSpec<DriftEv>, lateOutput?: TestOutput<DriftEv>): Stream<AnyReport> {
  const opts = { name: 'drift', ...(lateOutput ? { lateOutput } : {}) };
  const out: Stream<DriftReport> | Stream<KeyedDriftReport<string>> = m.keyed ? s.keyBy((e) => e.key).drift(spec, opts) : s.drift(spec, opts);
  return out as unknown as Stream<AnyReport>;
}

/** What the model predicts of a report. */
function comparable(r: AnyReport): Expected {
  return {
    key: r.key as string | undefined,
    start: r.start,
    end: r.end,
    test: r.test,
    statistic: r.statistic,
    value: r.test === 'ks' ? r.pValue : r.psi,
    drifted: r.drifted,
    level: r.level,
    referenceSize: r.referenceSize,
    windowSize: r.windowSize,
  };
}

function assertExact(reports: readonly AnyReport[]): void {
  for (const r of reports) {
    assert.equal(r.approximate, false, 'small samples are tested exactly');
    assert.equal(r.rankError, 0);
    if (r.test === 'ks') assert.deepEqual(r.pValueRange, [r.pValue, r.pValue]);
  }
}

// ------------------------------------------------------------------------------------------ arbitraries

const valueArb = fc.oneof(fc.integer({ min: -4, max: 4 }), fc.double({ min: -100, max: 100, noNaN: true, noDefaultInfinity: true }));

const windowArb: fc.Arbitrary<ModelWindow> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('tumbling' as const), size: fc.integer({ min: 1, max: 40 }), offset: fc.integer({ min: -50, max: 50 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('count' as const), count: fc.integer({ min: 1, max: 8 }) }) },
);

const referenceArb: fc.Arbitrary<ModelReference> = fc.oneof(
  fc.record({ kind: fc.constant('fixed' as const), values: fc.array(valueArb, { minLength: 1, maxLength: 40 }) }),
  fc.constant({ kind: 'first-window' as const }),
  fc.record({ kind: fc.constant('trailing' as const), n: fc.integer({ min: 1, max: 3 }) }),
);

const testArb: fc.Arbitrary<ModelTest> = fc.oneof(
  fc.record({ test: fc.constant('ks' as const), alpha: fc.constantFrom(0.01, 0.05, 0.5), alternative: fc.constantFrom('two-sided' as const, 'less' as const, 'greater' as const) }),
  fc.record({
    test: fc.constant('psi' as const),
    bins: fc.integer({ min: 1, max: 8 }),
    thresholds: fc.constantFrom<readonly [number, number]>([0.1, 0.25], [0.05, 0.05], [0.5, 2]),
  }),
);

const specArb: fc.Arbitrary<ModelSpec> = fc.record({ keyed: fc.boolean(), window: windowArb, reference: referenceArb, test: testArb });

/** Events in disorder within `bound` (so none is late), as in the window properties. */
function eventsArb(bound: number): fc.Arbitrary<DriftEv[]> {
  return fc
    .record({
      pool: fc.constantFrom(['k'], ['a', 'b', 'c']),
      start: fc.oneof(fc.integer({ min: -200, max: 200 }), fc.integer({ min: 1_700_000_000_000, max: 1_800_000_000_000 })),
      steps: fc.array(fc.record({ dt: fc.integer({ min: 0, max: 6 }), jitter: fc.integer({ min: 0, max: bound }), key: fc.nat(), x: valueArb }), { maxLength: 120, size: 'medium' }),
    })
    .map(({ pool, start, steps }) => {
      let c = start;
      return steps.map((s, id) => {
        c += s.dt;
        return { key: pool[s.key % pool.length], ts: c - s.jitter, x: s.x, id };
      });
    });
}

interface Case {
  readonly spec: ModelSpec;
  readonly bound: number;
  readonly events: DriftEv[];
  readonly batchSize: number;
  readonly splits: number[];
}

const caseArb: fc.Arbitrary<Case> = fc.integer({ min: 0, max: 20 }).chain((bound) =>
  fc.record({
    spec: specArb,
    bound: fc.constant(bound),
    events: eventsArb(bound),
    batchSize: fc.oneof(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 200 })),
    splits: fc.array(fc.integer({ min: 1, max: 12 }), { maxLength: 30 }),
  }),
);

async function viaRun(c: Case): Promise<AnyReport[]> {
  const out: AnyReport[] = [];
  const p = new Pipeline({ name: 'drift-run', logger: silent, batchSize: c.batchSize });
  const s = p.source(sources.array(c.events), { timestamp: (e) => e.ts, watermarks: watermarks.boundedOutOfOrderness(c.bound) });
  attach(s, c.spec, specOf(c.spec)).sink(sinks.collect(out));
  const r = await p.run();
  assert.equal(r.status, 'finished');
  return out;
}

/** Step by step: after each batch, exactly the windows the watermark has passed (tumbling), or the full ones (count), are reported. */
async function viaDriver(c: Case, want: Expected[]): Promise<void> {
  const p = new Pipeline({ name: 'drift-driver', logger: silent });
  const input = testInput<DriftEv>();
  const out = testOutput<AnyReport>();
  const s = p.source(input, { timestamp: (e) => e.ts, watermarks: watermarks.boundedOutOfOrderness(c.bound) });
  attach(s, c.spec, specOf(c.spec)).sink(out);
  const d = await TestDriver.create(p);
  const batches = chunk(c.events, c.splits);
  const wms = boundedWatermarks(batches.map((b) => b.map((e) => ({ ...e, value: e.x }))), c.bound);
  let sent: DriftEv[] = [];
  for (let i = 0; i < batches.length; i++) {
    d.send(input, batches[i]);
    sent = sent.concat(batches[i]);
    const now = c.spec.window.kind === 'tumbling' ? want.filter((r) => r.end - 1 <= wms[i]) : expectedReports(sent, c.spec);
    assert.deepEqual(sortReports(out.values).map(comparable), now, `after batch ${i} (watermark ${wms[i]})`);
  }
  d.endInput();
  assert.deepEqual(sortReports(out.values).map(comparable), want, 'after end of input');
  if (c.spec.window.kind === 'tumbling') out.values.forEach((v, i) => assert.equal(out.timestamps[i], v.end - 1));
  await d.close();
}

// ------------------------------------------------------------------------------------------ seeded data

/** Seeded standard normals (LCG + Box–Muller). */
function normals(n: number, seed: number, shift = 0, scale = 1): number[] {
  // Scrambled, so that neighbouring seeds give unrelated streams.
  let s = Math.imul((seed ^ 0x9e3779b9) >>> 0, 0x85ebca6b) >>> 0 || 1;
  const u = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s + 0.5) / 4294967296;
  };
  const out: number[] = [];
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(u()));
    const t = 2 * Math.PI * u();
    out.push(r * Math.cos(t) * scale + shift);
    if (i + 1 < n) out.push(r * Math.sin(t) * scale + shift);
  }
  return out;
}

/** `windowsN` windows of `perWindow` values 1000 ms wide (per key), the second half shifted by `shift`σ. */
function driftingStream(keys: readonly string[], windowsN: number, perWindow: number, shift: number, seed: number): DriftEv[] {
  const events: DriftEv[] = [];
  let id = 0;
  for (let w = 0; w < windowsN; w++) {
    for (const [ki, key] of keys.entries()) {
      const xs = normals(perWindow, seed + 1000 * w + ki, w >= windowsN / 2 ? shift : 0);
      xs.forEach((x, i) => events.push({ key, ts: w * 1000 + Math.floor((i * 1000) / perWindow), x, id: id++ }));
    }
  }
  return events.sort((a, b) => a.ts - b.ts || a.id - b.id);
}

async function runAll(events: readonly DriftEv[], build: (s: Stream<DriftEv>) => Stream<AnyReport>, opts: { bound?: number } = {}): Promise<AnyReport[]> {
  const out: AnyReport[] = [];
  const p = new Pipeline({ name: 'drift-seeded', logger: silent });
  build(p.source(sources.array([...events]), { timestamp: (e) => e.ts, watermarks: watermarks.boundedOutOfOrderness(opts.bound ?? 0) })).sink(sinks.collect(out));
  await p.run();
  return sortReports(out);
}

// ------------------------------------------------------------------------------------------ tests

describe('drift operators: against the reference model', () => {
  it('property: every report is ml.stats.ks2 / ml.stats.psi on the exact window and reference samples (keyed and unkeyed, every reference mode, time and count windows)', async () => {
    await fc.assert(
      fc.asyncProperty(caseArb, async (c) => {
        const want = expectedReports(c.events, c.spec);
        const got = await viaRun(c);
        assertExact(got);
        assert.deepEqual(sortReports(got).map(comparable), want, 'Pipeline.run()');
        await viaDriver(c, want);
      }),
      { numRuns: RUNS },
    );
  });

  it('a first window is the reference and gets no report; a trailing reference waits for its n windows', async () => {
    const events: DriftEv[] = [0, 1, 2, 3].flatMap((w) => [1, 2, 3, 4].map((x, i) => ({ key: 'k', ts: w * 10 + i, x: x + w, id: w * 4 + i })));
    const first = await runAll(events, (s) => s.drift(ml.psi({ feature: 'x', reference: 'first-window', window: 10 })) as Stream<AnyReport>);
    assert.deepEqual(first.map((r) => r.start), [10, 20, 30]);
    const trailing = await runAll(events, (s) => s.drift(ml.ks({ feature: 'x', reference: { trailing: 2 }, window: 10 })) as Stream<AnyReport>);
    assert.deepEqual(trailing.map((r) => [r.start, r.referenceSize]), [[20, 8], [30, 8]]);
  });
});

describe('drift operators: detection on seeded data', () => {
  const reference = normals(5000, 7);
  const events = driftingStream(['k'], 20, 1000, 0.5, 11);

  it('KS flags every window after the injected shift and none before (fixed, first-window and trailing references)', async () => {
    for (const ref of [reference, 'first-window' as const, { trailing: 2 }]) {
      const reports = await runAll(events, (s) => s.drift(ml.ks({ feature: 'x', reference: ref, window: '1s', alpha: 0.001 })) as Stream<AnyReport>);
      const before = reports.filter((r) => r.start < 10_000);
      const after = reports.filter((r) => r.start >= 10_000);
      assert.ok(before.length >= 8 && after.length === 10, `${JSON.stringify(ref).slice(0, 30)}: ${reports.length} reports`);
      assert.deepEqual(before.filter((r) => r.drifted).map((r) => r.start), [], 'no drift before the shift');
      if (typeof ref === 'object' && 'trailing' in ref) {
        // A trailing reference catches up with the shift: the first windows after it drift, later ones are the new normal.
        assert.deepEqual(after.filter((r) => r.drifted).map((r) => r.start).slice(0, 2), [10_000, 11_000]);
        assert.deepEqual(after.filter((r) => r.start >= 13_000 && r.drifted).map((r) => r.start), []);
      } else {
        assert.deepEqual(after.filter((r) => !r.drifted).map((r) => r.start), [], 'drift after the shift');
      }
      for (const r of reports) assert.equal(r.approximate, false);
    }
  });

  it('PSI levels: none before the shift, moderate or major after; keyed streams report per key', async () => {
    const keyed = driftingStream(['a', 'b'], 20, 1000, 0.5, 21);
    const reports = await runAll(keyed, (s) => s.keyBy((e) => e.key).drift(ml.psi({ feature: 'x', reference, window: '1s', bins: 10, thresholds: [0.1, 0.25] })) as unknown as Stream<AnyReport>);
    assert.equal(reports.length, 40);
    for (const r of reports) {
      assert.ok(r.key === 'a' || r.key === 'b');
      if (r.start < 10_000) assert.equal(r.level, 'none', `key ${String(r.key)} window ${r.start}: psi ${r.statistic}`);
      else assert.notEqual(r.level, 'none', `key ${String(r.key)} window ${r.start}: psi ${r.statistic}`);
      assert.equal(r.drifted, r.level !== 'none');
    }
    const big = await runAll(driftingStream(['k'], 4, 1000, 2, 31), (s) => s.drift(ml.psi({ feature: 'x', reference, window: '1s' })) as Stream<AnyReport>);
    assert.deepEqual(big.map((r) => r.level), ['none', 'none', 'major', 'major']);
  });
});

describe('drift operators: large windows in bounded memory', () => {
  const k = 32;
  const exactLimit = 200;
  const events = driftingStream(['k'], 6, 3000, 0.2, 41);
  const exact: ModelSpec = { keyed: false, window: { kind: 'tumbling', size: 1000, offset: 0 }, reference: { kind: 'first-window' }, test: { test: 'ks', alpha: 0.05, alternative: 'two-sided' } };

  it('KS on sketches: the statistic is within the stated rankError of the exact one, for every reference mode', async () => {
    const fixedRef = normals(3000, 5);
    for (const reference of [{ kind: 'fixed', values: fixedRef }, { kind: 'first-window' }, { kind: 'trailing', n: 2 }] as ModelReference[]) {
      const m: ModelSpec = { ...exact, reference };
      const want = expectedReports(events, m);
      const got = await runAll(events, (s) => attach(s, m, specOf(m, { k, exactLimit })));
      assert.equal(got.length, want.length);
      got.forEach((r, i) => {
        assert.equal(r.approximate, true);
        assert.ok(r.rankError > 0);
        const nRef = want[i].referenceSize;
        const bound = QuantileSketch.epsilonBound(k, r.windowSize) + (reference.kind === 'fixed' ? 0 : QuantileSketch.epsilonBound(k, nRef));
        assert.ok(r.rankError <= bound + 1e-12, `rankError ${r.rankError} above the a-priori ${bound}`);
        assert.ok(Math.abs(r.statistic - want[i].statistic) <= r.rankError + 1e-12, `${reference.kind} window ${r.start}: D ${r.statistic} vs exact ${want[i].statistic} ± ${r.rankError}`);
        assert.equal(r.referenceSize, nRef);
        assert.equal(r.windowSize, want[i].windowSize);
        if (r.test === 'ks') assert.ok(r.pValueRange[0] <= r.pValue && r.pValue <= r.pValueRange[1]);
      });
    }
  });

  it('PSI with a fixed reference only counts bins: exact at any window size', async () => {
    const reference = normals(3000, 5);
    const m: ModelSpec = { ...exact, reference: { kind: 'fixed', values: reference }, test: { test: 'psi', bins: 10, thresholds: [0.1, 0.25] } };
    const got = await runAll(events, (s) => attach(s, m, specOf(m, { k, exactLimit })));
    assertExact(got);
    assert.deepEqual(got.map(comparable), expectedReports(events, m));
  });

  it('PSI against a sketched reference: approximate, within its bound, same verdict on clear drift', async () => {
    const shifted = driftingStream(['k'], 6, 3000, 1.5, 43);
    const m: ModelSpec = { ...exact, reference: { kind: 'first-window' }, test: { test: 'psi', bins: 10, thresholds: [0.1, 0.25] } };
    const want = expectedReports(shifted, m);
    const got = await runAll(shifted, (s) => attach(s, m, specOf(m, { k, exactLimit })));
    assert.equal(got.length, want.length);
    got.forEach((r, i) => {
      assert.equal(r.approximate, true);
      assert.ok(r.rankError > 0 && r.rankError <= 2 * QuantileSketch.epsilonBound(k, 3000) + 1e-12);
      assert.equal(r.level, want[i].level, `window ${r.start}: psi ${r.statistic} vs exact ${want[i].statistic}`);
    });
  });

  it('a sketch taken back from its checkpoint state answers, bounds and goes on exactly as the original', () => {
    const xs = normals(20_000, 9);
    const a = new QuantileSketch({ k: 16, exactLimit: 100 });
    a.addBatch(xs.slice(0, 7_777));
    const b = QuantileSketch.fromState(structuredClone(a.toState()));
    assert.deepEqual(b.toState(), a.toState());
    a.addBatch(xs.slice(7_777));
    b.addBatch(xs.slice(7_777));
    assert.deepEqual(b.toState(), a.toState());
    assert.equal(b.rankErrorBound(), a.rankErrorBound());
    for (const q of [0, 0.1, 0.5, 0.99, 1]) assert.equal(b.quantile(q), a.quantile(q));
    const small = new QuantileSketch({ k: 16, exactLimit: 100 });
    small.addBatch([3, 1, 2]);
    assert.deepEqual(QuantileSketch.fromState(small.toState()).sortedView().values, Float64Array.of(1, 2, 3));
    const bad = { ...a.toState(), n: a.count + 1 };
    assert.throws(() => QuantileSketch.fromState(bad), (e: unknown) => e instanceof WeirError && e.code === 'WEIR_INVALID_ARGUMENT');
  });

  it('a checkpointed sketch holds O(k log n) values, not the window', async () => {
    const p = new Pipeline({ name: 'drift-memory', logger: silent });
    const input = testInput<DriftEv>();
    p.source(input, { timestamp: (e) => e.ts, watermarks: watermarks.none() })
      .drift(ml.ks({ feature: 'x', reference: [0, 1], window: '1h', sketch: { k, exactLimit } }))
      .sink(testOutput<AnyReport>());
    const d = await TestDriver.create(p);
    const n = 100_000;
    const xs = normals(n, 3);
    d.send(input, xs.map((x, i) => ({ key: 'k', ts: i, x, id: i })), { batchSize: 4096 });
    const cp = d.checkpoint();
    await d.close();
    const entries = [...cp.operators.values()].flatMap((o) => o.entries).filter((e) => e.table === 'windows');
    assert.equal(entries.length, 1);
    const state = entries[0].value as { n: number; sample: { sketch: { levels: Float64Array[] } } };
    assert.equal(state.n, n);
    const stored = state.sample.sketch.levels.reduce((s, l) => s + l.length, 0);
    assert.ok(stored <= k * (Math.floor(Math.log2(n / k)) + 2), `stores ${stored} values for ${n}`);
  });
});

describe('drift operators: checkpoints', () => {
  type Step = { send: DriftEv[] } | { wm: number };
  const stepArb: fc.Arbitrary<Step> = fc.oneof(
    {
      weight: 5,
      arbitrary: fc
        .array(fc.record({ key: fc.constantFrom('a', 'b', 'c'), ts: fc.integer({ min: 0, max: 120 }), x: valueArb }), { minLength: 1, maxLength: 8 })
        .map((send) => ({ send: send.map((e, id) => ({ ...e, id })) })),
    },
    { weight: 2, arbitrary: fc.integer({ min: 0, max: 130 }).map((wm) => ({ wm })) },
  );
  const restorableSpecArb: fc.Arbitrary<ModelSpec> = fc.record({
    keyed: fc.boolean(),
    window: fc.oneof(fc.record({ kind: fc.constant('tumbling' as const), size: fc.integer({ min: 3, max: 30 }), offset: fc.integer({ min: 0, max: 10 }) }), fc.record({ kind: fc.constant('count' as const), count: fc.integer({ min: 1, max: 6 }) })),
    reference: referenceArb,
    test: testArb,
  });

  function build(m: ModelSpec, sketch: { k: number; exactLimit: number }): { p: Pipeline; input: TestInput<DriftEv>; out: TestOutput<AnyReport>; late: TestOutput<DriftEv> } {
    const p = new Pipeline({ name: 'drift-restore', logger: silent });
    const input = testInput<DriftEv>('events');
    const out = testOutput<AnyReport>('out');
    const late = testOutput<DriftEv>('late');
    attach(p.source(input, { timestamp: (e) => e.ts, watermarks: watermarks.none() }), m, specOf(m, sketch), late).sink(out);
    return { p, input, out, late };
  }
  const emitted = (job: { out: TestOutput<AnyReport>; late: TestOutput<DriftEv> }): string[] =>
    [...job.out.take().map((o) => `out ${JSON.stringify(o)}`), ...job.late.take().map((e) => `late ${JSON.stringify(e)}`)].sort();

  it('property: a job restored from its checkpoints, any number of times, reports exactly what a straight run reports, step by step', async () => {
    await fc.assert(
      fc.asyncProperty(
        restorableSpecArb,
        fc.constantFrom({ k: 4096, exactLimit: 10_000 }, { k: 8, exactLimit: 3 }),
        fc.array(stepArb, { minLength: 1, maxLength: 30 }),
        fc.array(fc.nat(), { maxLength: 4 }),
        fc.array(fc.nat(), { maxLength: 5 }),
        async (m, sketch, steps, rawCuts, rawMarks) => {
          const apply = (d: TestDriver, input: TestInput<DriftEv>, s: Step): void => ('send' in s ? d.send(input, s.send) : d.advanceWatermark(s.wm));
          const straight = build(m, sketch);
          const d0 = await TestDriver.create(straight.p);
          const expected: string[][] = [];
          for (const s of steps) {
            apply(d0, straight.input, s);
            expected.push(emitted(straight));
          }
          d0.endInput();
          expected.push(emitted(straight));
          await d0.close();

          const cuts = new Set(rawCuts.map((c) => c % (steps.length + 1)));
          const marks = new Set(rawMarks.map((c) => c % (steps.length + 1)));
          const actual: string[][] = [];
          let job = build(m, sketch);
          let d = await TestDriver.create(job.p);
          for (let i = 0; i < steps.length; i++) {
            if (marks.has(i) && !cuts.has(i)) d.checkpoint();
            if (cuts.has(i)) {
              const cp: TestCheckpoint = d.checkpoint();
              await d.close();
              job = build(m, sketch);
              d = await TestDriver.create(job.p, { restoreFrom: cp });
            }
            apply(d, job.input, steps[i]);
            actual.push(emitted(job));
          }
          d.endInput();
          actual.push(emitted(job));
          await d.close();
          assert.deepEqual(actual, expected);
        },
      ),
      { numRuns: RUNS },
    );
  });
});

describe('drift operators: parallelism and durable checkpoints', () => {
  const events = 12_000;
  const lines = async (file: string): Promise<string[]> => (await readFile(file, 'utf8').catch(() => '')).split('\n').filter((l) => l !== '').sort();

  it('keyed and unkeyed drift give the same reports on 2 worker threads, and stopped and restored (LevelDB) at parallelism 2 → 1 → 2', async () => {
    const tmp = await mkdtemp(path.join(tmpdir(), 'weir-drift-'));
    try {
      const one: DriftJobArgs = { parallelism: 1, events, out: path.join(tmp, 'one.jsonl') };
      await buildDriftJob(one).run();
      const want = await lines(one.out);
      const kinds = new Set(want.map((l) => JSON.parse(l) as AnyReport).map((r) => `${r.test}:${r.key === undefined ? 'all' : 'key'}:${r.drifted}`));
      assert.deepEqual([...kinds].sort(), ['ks:key:false', 'ks:key:true', 'psi:all:false', 'psi:all:true', 'psi:key:false', 'psi:key:true']);

      const two: DriftJobArgs = { parallelism: 2, events, out: path.join(tmp, 'two.jsonl') };
      await buildDriftJob(two).run();
      assert.deepEqual(await lines(two.out), want);

      const base = { events, out: path.join(tmp, 'rescaled.jsonl'), dir: path.join(tmp, 'state') };
      const steps = [2, 1, 2];
      const pauses = [3_800, 8_200, undefined];
      for (let i = 0; i < steps.length; i++) {
        let p!: Pipeline;
        p = buildDriftJob({ ...base, parallelism: steps[i], pauseAt: pauses[i] }, { onPause: () => void p.stop() });
        const r = await p.run();
        assert.equal(r.status, i < steps.length - 1 ? 'stopped' : 'finished');
      }
      assert.deepEqual(await lines(base.out), want);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });
});

describe('drift operators: bad records and late records', () => {
  /** As untyped input (JSONL) may bring it: `amount` is sometimes missing, null or a string. */
  interface Rec {
    card: string;
    ts: number;
    amount?: number | null;
  }
  const good = (ts: number, amount: number): Rec => ({ card: 'c1', ts, amount });

  it('bad feature values go to the dead letters with a reason naming the record, field and operator; the rest is reported', async () => {
    const bad: Rec[] = [
      { card: 'c1', ts: 5 },
      { card: 'c1', ts: 6, amount: NaN },
      { card: 'c1', ts: 7, amount: null },
      { card: 'c1', ts: 8, amount: 'twelve' as unknown as number },
      { card: 'c1', ts: 9, amount: Infinity },
    ];
    const records = [good(1, 1), good(2, 2), ...bad, good(11, 3), good(12, 4)];
    const letters: DeadLetter[] = [];
    const out: AnyReport[] = [];
    const p = new Pipeline({ name: 'drift-dlq', logger: silent });
    p.source(sources.array(records), { timestamp: (r) => r.ts, onError: { deadLetter: sinks.collect(letters) } })
      .keyBy((r) => r.card)
      .drift(ml.psi({ feature: 'amount', reference: [1, 2, 3, 4], window: 10 }), { name: 'amount-drift' })
      .sink(sinks.collect(out));
    await p.run();
    assert.equal(letters.length, bad.length);
    letters.forEach((l, i) => {
      assert.equal(l.code, 'WEIR_FEATURE_INVALID');
      assert.equal(l.step, 'amount-drift');
      assert.equal(l.record, bad[i]);
      assert.equal(l.timestamp, bad[i].ts);
      assert.match(l.reason, /field "amount"/);
      assert.match(l.reason, /amount-drift/);
      assert.match(l.reason, new RegExp(`"ts":${bad[i].ts}`), 'names the record');
    });
    assert.match(letters[0].reason, /missing/);
    assert.match(letters[1].reason, /NaN/);
    assert.match(letters[3].reason, /twelve/);
    assert.deepEqual(out.map((r) => [r.start, r.windowSize]), [[0, 2], [10, 2]]);
    assert.equal(metricOf(p, 'weir_dead_letters_total', { step: 'amount-drift' }), bad.length);
  });

  it('a feature function that throws or returns a non-number is reported the same way; under the fail policy the job fails with WEIR_FEATURE_INVALID', async () => {
    const letters: DeadLetter[] = [];
    const p = new Pipeline({ name: 'drift-dlq-fn', logger: silent });
    p.source(sources.array([good(1, 1), good(2, -1), good(3, 2)]), { timestamp: (r) => r.ts, onError: { deadLetter: sinks.collect(letters) } })
      .drift(
        ml.ks({
          feature: (r: Rec) => {
            if ((r.amount as number) < 0) throw new Error('negative amount');
            return r.amount === 2 ? undefined : (r.amount as number);
          },
          name: 'amount',
          reference: [1],
          window: 10,
        }),
      )
      .sink(sinks.collect<AnyReport>([]));
    await p.run();
    assert.deepEqual(letters.map((l) => l.code), ['WEIR_USER_FUNCTION_FAILED', 'WEIR_FEATURE_INVALID']);
    assert.match(letters[0].reason, /feature function of ks drift step drift:ks\(amount\) threw: negative amount/);
    assert.match(letters[1].reason, /feature "amount" \(a function\) of record .*"ts":3.* is undefined/);

    const failing = new Pipeline({ name: 'drift-fail', logger: silent });
    failing.source(sources.array([good(1, 1), { card: 'c1', ts: 2 }]), { timestamp: (r) => r.ts })
      .drift(ml.psi({ feature: 'amount', reference: [1, 2], window: 10 }))
      .sink(sinks.collect<AnyReport>([]));
    await assert.rejects(failing.run(), (e: unknown) => e instanceof WeirError && e.code === 'WEIR_FEATURE_INVALID' && e.step === 'drift:psi(amount)');
  });

  it('records too late for their window go to the late output, or are dropped and counted', async () => {
    for (const withLate of [true, false]) {
      const p = new Pipeline({ name: 'drift-late', logger: silent });
      const input = testInput<DriftEv>();
      const out = testOutput<AnyReport>();
      const late = testOutput<DriftEv>('late');
      p.source(input, { timestamp: (e) => e.ts, watermarks: watermarks.none() })
        .drift(ml.ks({ feature: 'x', reference: [1, 2, 3], window: 10 }), withLate ? { lateOutput: late } : {})
        .sink(out);
      const d = await TestDriver.create(p);
      d.send(input, [1, 2, 3].map((x) => ({ key: 'k', ts: x, x, id: x })));
      d.advanceWatermark(8);
      assert.equal(out.values.length, 0, 'the window [0, 10) fires at watermark 9, not before');
      d.advanceWatermark(9);
      assert.deepEqual(out.take().map((r) => [r.start, r.end, r.windowSize]), [[0, 10, 3]]);
      const tooLate = { key: 'k', ts: 4, x: 100, id: 9 };
      d.send(input, [tooLate, { key: 'k', ts: 10, x: 5, id: 10 }]);
      d.endInput();
      assert.deepEqual(out.take().map((r) => [r.start, r.windowSize]), [[10, 1]]);
      assert.deepEqual(late.values, withLate ? [tooLate] : []);
      assert.equal(metricOf(p, 'weir_late_records_total', { step: 'drift:ks(x)', outcome: withLate ? 'side_output' : 'dropped' }), 1);
      await d.close();
    }
  });
});

describe('drift operators: options', () => {
  it('rejects bad options with WEIR_INVALID_ARGUMENT naming the option', () => {
    const invalid = (re: RegExp) => (e: unknown) => e instanceof WeirError && e.code === 'WEIR_INVALID_ARGUMENT' && re.test(e.message);
    const base = { feature: 'x', reference: [1, 2, 3], window: '1m' } as const;
    assert.throws(() => ml.ks({ ...base, alpha: 1.5 }), invalid(/alpha/));
    assert.throws(() => ml.psi({ ...base, bins: 0 }), invalid(/bins/));
    assert.throws(() => ml.psi({ ...base, thresholds: [0.3, 0.1] }), invalid(/thresholds/));
    assert.throws(() => ml.ks({ ...base, reference: [] }), invalid(/reference/));
    assert.throws(() => ml.ks({ ...base, reference: [1, NaN] }), invalid(/reference\[1\]/));
    assert.throws(() => ml.ks({ ...base, reference: { trailing: 0 } }), invalid(/trailing/));
    assert.throws(() => ml.ks({ ...base, window: { count: 0 } }), invalid(/count/));
    assert.throws(() => ml.ks({ ...base, window: windows.sliding({ size: 10, slide: 5 }) as never }), invalid(/tumbling/));
    assert.throws(() => ml.ks({ ...base, sketch: { k: 7 } }), invalid(/sketch\.k/));
    assert.throws(() => ml.ks({ ...base, feature: '' }), invalid(/feature/));
  });
});

function metricOf(p: Pipeline, name: string, labels: Record<string, string>): number {
  return p.metrics().filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0);
}

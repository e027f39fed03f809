import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { LayersModel } from '@tensorflow/tfjs';
import { pino } from 'pino';
import { MemoryCheckpointStorage, Pipeline, WeirError, agg, ml, sinks, sources, watermarks, windows, type DeadLetter, type FeatureBatch, type ScoringModel, type Source, type Tf, type WindowResult } from '../src/index.js';
import { TestDriver, testInput, testOutput } from '../src/testing/index.js';
import type { ScoreCrashConfig } from './fixtures/score-crash-job.js';
import { runJob } from './killable-job.js';

const silent = pino({ level: 'silent' });

interface Row { id: number; a: number; b: number; c: number; d: number; ts: number }

/** Deterministic rows (an LCG), features in [-2, 2). */
function rowsOf(n: number, seed = 7): Row[] {
  let s = seed >>> 0;
  const u = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 4294967296) * 4 - 2;
  };
  return Array.from({ length: n }, (_, i) => ({ id: i, a: u(), b: u(), c: u(), d: u(), ts: i }));
}

/** The model's output for every row, by one direct predict (what scoring must reproduce). */
function directPredict(tf: Tf, model: LayersModel, rows: readonly Row[]): Float32Array {
  const x = tf.tensor2d(rows.map((r) => [r.a, r.b, r.c, r.d]), [rows.length, 4], 'float32');
  const y = model.predict(x) as ReturnType<typeof tf.tensor2d>;
  const out = y.dataSync() as Float32Array;
  x.dispose();
  y.dispose();
  return out;
}

function mlp(tf: Tf, outputs = 1): LayersModel {
  return tf.sequential({
    layers: [
      tf.layers.dense({ inputShape: [4], units: 8, activation: 'relu' }),
      tf.layers.dense({ units: outputs, activation: 'sigmoid' }),
    ],
  });
}

/** A promise resolved from outside. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** Calls `hook` after poll number `n` (the job is between batches then). */
function onPoll<T>(src: Source<T>, n: number, hook: () => void): Source<T> {
  let polls = 0;
  return { ...src, name: src.name, poll: (max) => (++polls === n ? (hook(), src.poll(max)) : src.poll(max)), savePosition: () => src.savePosition!(), seek: (p) => src.seek!(p) };
}

function metric(p: Pipeline, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const m of p.metrics()) {
    if (m.name !== name) continue;
    if (Object.entries(labels).every(([k, v]) => m.labels[k] === v)) sum += m.value;
  }
  return sum;
}

const FEATURES = ['a', 'b', 'c', 'd'] as const;

describe('ml scoring', () => {
  let tf: Tf;
  before(async () => {
    tf = (await ml.tfjs.resolve({ backend: 'cpu', logger: silent })).tf;
  });

  describe('results', () => {
    for (const batchSize of [1, 7, 256]) {
      it(`equal a direct model.predict, in order, with batchSize ${batchSize}`, async () => {
        const raw = mlp(tf);
        const model = await ml.tfjs.load(raw, { version: 'v1', logger: silent, backend: 'cpu' });
        const rows = rowsOf(1000);
        const expected = directPredict(tf, raw, rows);
        const out: { id: number; score: number; modelVersion: string }[] = [];
        const p = new Pipeline({ name: `score-${batchSize}`, batchSize: 100, logger: silent });
        p.source(sources.array(rows), { timestamp: (r) => r.ts })
          .score(model, { features: [...FEATURES], batchSize, name: 'scored' })
          .sink(sinks.collect(out));
        await p.run();
        assert.equal(out.length, rows.length);
        for (let i = 0; i < rows.length; i++) {
          assert.equal(out[i].id, i, 'order preserved');
          assert.equal(out[i].score, expected[i], `row ${i}`);
          assert.equal(out[i].modelVersion, 'v1');
        }
        // 10 source batches of 100: ceil(100 / batchSize) model calls each.
        const calls = 10 * Math.ceil(100 / batchSize);
        assert.equal(metric(p, 'weir_score_model_calls_total', { step: 'scored' }), calls);
        assert.equal(metric(p, 'weir_score_model_rows_total', { step: 'scored' }), 1000);
        assert.equal(metric(p, 'weir_score_records_total', { step: 'scored' }), 1000);
        assert.equal(metric(p, 'weir_score_batch_rows_bucket', { step: 'scored', le: '+Inf' }), calls);
        model.dispose();
      });
    }

    it('keep the original fields, add the output and version fields named in the options, and give vectors for several outputs', async () => {
      const raw = mlp(tf, 3);
      const model = await ml.tfjs.load<number[]>(raw, { version: 'multi', logger: silent });
      assert.equal(model.inputWidth, 4);
      assert.equal(model.outputWidth, 3);
      const rows = rowsOf(50);
      const expected = directPredict(tf, raw, rows);
      const out: { id: number; probs: number[]; v: string; a: number }[] = [];
      const p = new Pipeline({ name: 'score-vector', logger: silent });
      p.source(sources.array(rows), { timestamp: (r) => r.ts })
        .score(model, { features: (r) => [r.a, r.b, r.c, r.d], output: 'probs', versionField: 'v', batchSize: 16 })
        .sink(sinks.collect(out));
      await p.run();
      assert.equal(out.length, 50);
      for (let i = 0; i < 50; i++) {
        assert.deepEqual(out[i].probs, Array.from(expected.subarray(i * 3, i * 3 + 3)));
        assert.equal(out[i].v, 'multi');
        assert.equal(out[i].a, rows[i].a);
      }
      model.dispose();
    });
  });

  describe('micro-batching', () => {
    it('coalesces the batches queued behind a pending model call into one call, keeping the watermark between them in place', async () => {
      const calls: number[] = [];
      let gate = deferred();
      const model = ml.fn(async (batch) => {
        calls.push(batch.rows);
        await gate.promise;
        return Array.from({ length: batch.rows }, (_, i) => batch.data[i * batch.width]);
      }, { name: 'slow', version: 's1' });
      interface E { k: string; x: number; ts: number }
      const p = new Pipeline({ name: 'coalesce', logger: silent });
      const input = testInput<E>();
      const scored = testOutput<E & { score: number }>('scored');
      const counts = testOutput<WindowResult<string, number>>('counts');
      const s = p.source(input, { timestamp: (e) => e.ts, watermarks: watermarks.none() }).score(model, { features: ['x'], batchSize: 10 });
      s.sink(scored);
      s.keyBy((e) => e.k).window(windows.tumbling(1000)).aggregate(agg.count()).sink(counts);
      const d = await TestDriver.create(p);
      d.send(input, [{ k: 'a', x: 1, ts: 10 }, { k: 'a', x: 2, ts: 20 }]);
      d.send(input, [{ k: 'a', x: 3, ts: 30 }]);
      d.advanceWatermark(999); // must stay behind x=3
      d.send(input, [{ k: 'a', x: 4, ts: 1500 }, { k: 'a', x: 5, ts: 1600 }]);
      assert.equal(scored.values.length, 0, 'nothing out while the model call is pending');
      gate.resolve();
      await d.flush();
      assert.deepEqual(calls, [2, 3], 'the second call scored both batches queued behind the first');
      assert.deepEqual(scored.values.map((e) => [e.x, e.score]), [[1, 1], [2, 2], [3, 3], [4, 4], [5, 5]]);
      // x=3 (ts 30) reached the window before the watermark 999 fired it: counted, not late.
      assert.deepEqual(counts.take(), [{ key: 'a', start: 0, end: 1000, value: 3 }]);
      gate = deferred();
      gate.resolve();
      d.endInput();
      await d.flush();
      assert.deepEqual(counts.take(), [{ key: 'a', start: 1000, end: 2000, value: 2 }]);
      await d.close();
    });

    it('with maxLatency, gathers small batches until batchSize records or the latency is reached, whichever comes first', async () => {
      const calls: number[] = [];
      const model = ml.fn((batch) => {
        calls.push(batch.rows);
        return new Float32Array(batch.rows).fill(1);
      });
      const p = new Pipeline({ name: 'linger', logger: silent });
      const input = testInput<{ x: number }>();
      const out = testOutput<{ x: number; score: number }>();
      p.source(input, { watermarks: watermarks.none() }).score(model, { features: ['x'], batchSize: 10, maxLatency: 50 }).sink(out);
      const d = await TestDriver.create(p);
      const xs = (n: number, from: number): { x: number }[] => Array.from({ length: n }, (_, i) => ({ x: from + i }));
      d.send(input, xs(3, 0));
      d.send(input, xs(4, 3));
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(calls, [], 'lingering: 7 < batchSize and no time passed');
      d.advanceProcessingTime(49);
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(calls, []);
      d.advanceProcessingTime(1);
      await d.flush();
      assert.deepEqual(calls, [7], 'maxLatency reached: scored what was there');
      d.send(input, xs(6, 7));
      d.send(input, xs(4, 13)); // reaches batchSize: no wait
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(calls, [7, 10]);
      d.send(input, xs(12, 17)); // a batch of batchSize or more is never held (and scored batchSize rows per call)
      assert.deepEqual(calls, [7, 10, 10, 2]);
      d.send(input, xs(2, 29));
      await d.flush(); // a flush (as before a checkpoint or at the end) does not wait either
      assert.deepEqual(calls, [7, 10, 10, 2, 2]);
      assert.deepEqual(out.values.map((r) => r.x), Array.from({ length: 31 }, (_, i) => i));
      await d.close();
    });

    it('a TestDriver checkpoint waits for nothing: it refuses while the step holds records, and restores after a flush', async () => {
      const model = ml.fn(async (b) => new Float32Array(b.rows).fill(5), { version: 'a1' });
      const build = (): { p: Pipeline; input: ReturnType<typeof testInput<{ x: number }>>; out: ReturnType<typeof testOutput<{ x: number; score: number }>> } => {
        const p = new Pipeline({ name: 'driver-checkpoint', logger: silent });
        const input = testInput<{ x: number }>();
        const out = testOutput<{ x: number; score: number }>();
        p.source(input, { watermarks: watermarks.none() }).score(model, { features: ['x'], maxLatency: 100 }).sink(out);
        return { p, input, out };
      };
      const a = build();
      const d1 = await TestDriver.create(a.p);
      d1.send(a.input, [{ x: 1 }, { x: 2 }]);
      assert.throws(() => d1.checkpoint(), (e: unknown) => e instanceof WeirError && e.code === 'WEIR_JOB_STATE');
      await d1.flush();
      assert.deepEqual(a.out.values.map((r) => r.x), [1, 2]);
      const cp = d1.checkpoint();
      await d1.close();
      const b = build();
      const d2 = await TestDriver.create(b.p, { restoreFrom: cp });
      d2.send(b.input, [{ x: 3 }]);
      await d2.flush();
      assert.deepEqual(b.out.values.map((r) => [r.x, r.score]), [[3, 5]]);
      assert.equal(b.input.sent, 3, 'the input resumed after the two records of the checkpoint');
      await d2.close();
    });

    it('with maxLatency, a running job still emits every record, in order', async () => {
      const rows = rowsOf(5000);
      const out: { id: number }[] = [];
      const p = new Pipeline({ name: 'linger-run', batchSize: 37, logger: silent });
      const model = ml.fn((batch) => new Float32Array(batch.rows));
      p.source(sources.array(rows), { timestamp: (r) => r.ts })
        .filter((r) => r.id % 3 !== 0)
        .score(model, { features: [...FEATURES], batchSize: 128, maxLatency: '2ms', name: 's' })
        .sink(sinks.collect(out));
      await p.run();
      const ids = rows.filter((r) => r.id % 3 !== 0).map((r) => r.id);
      assert.deepEqual(out.map((r) => r.id), ids);
      const calls = metric(p, 'weir_score_model_calls_total', { step: 's' });
      assert.ok(calls < Math.ceil(5000 / 37), `small batches were coalesced (${calls} calls)`);
    });
  });

  it('keeps tf.memory().numTensors flat over 1,000,000 scored records', async () => {
    const raw = mlp(tf);
    const model = await ml.tfjs.load(raw, { logger: silent });
    const start = tf.memory().numTensors;
    let seen = 0;
    let maxTensors = 0;
    const p = new Pipeline({ name: 'tensors', batchSize: 8192, logger: silent });
    p.source(sources.generator((i) => ({ a: i % 7, b: 1, c: -1, d: (i % 13) / 13 }), { count: 1_000_000, seed: 1 }))
      .score(model, { features: [...FEATURES], batchSize: 2048 })
      .sink({
        name: 'count',
        write: (items) => {
          seen += items.length;
          maxTensors = Math.max(maxTensors, tf.memory().numTensors);
        },
      });
    await p.run();
    assert.equal(seen, 1_000_000);
    assert.equal(tf.memory().numTensors, start, 'no tensor left behind');
    assert.equal(maxTensors, start, 'none in flight between batches either');
    model.dispose();
  });

  describe('loading and saving', () => {
    let dir: string;
    before(async () => {
      dir = await mkdtemp(path.join(tmpdir(), 'weir-ml-'));
    });
    after(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('saves a LayersModel to a directory and loads it back from disk with the same predictions', async () => {
      const raw = mlp(tf);
      await ml.tfjs.save(raw, path.join(dir, 'layers'));
      assert.deepEqual((await readdir(path.join(dir, 'layers'))).sort(), ['model.json', 'weights.bin']);
      const loaded = await ml.tfjs.load(path.join(dir, 'layers'), { logger: silent });
      assert.equal(loaded.format, 'layers-model');
      assert.equal(loaded.inputWidth, 4);
      assert.equal(loaded.outputWidth, 1);
      assert.match(loaded.version, /^[0-9a-f]{12}$/, 'default version: a content hash');
      const again = await ml.tfjs.load(path.join(dir, 'layers', 'model.json'), { logger: silent });
      assert.equal(again.version, loaded.version, 'the same files, the same version');
      const rows = rowsOf(300);
      const expected = directPredict(tf, raw, rows);
      const out: { score: number }[] = [];
      const p = new Pipeline({ name: 'from-disk', logger: silent });
      p.source(sources.array(rows), { timestamp: (r) => r.ts }).score(loaded, { features: [...FEATURES], batchSize: 64 }).sink(sinks.collect(out));
      await p.run();
      assert.deepEqual(out.map((r) => r.score), Array.from(expected));
      // A version stored in the model's metadata wins over the hash.
      raw.setUserDefinedMetadata({ version: 'v9' });
      await ml.tfjs.save(raw, path.join(dir, 'layers-v9'));
      const v9 = await ml.tfjs.load(path.join(dir, 'layers-v9'), { logger: silent });
      assert.equal(v9.version, 'v9');
      for (const m of [loaded, again, v9]) m.dispose();
    });

    it('loads a GraphModel from disk (model.json + weight shard) and scores with it', async () => {
      const gdir = path.join(dir, 'graph');
      const W = [0.5, -1, 0.25, 2, -0.75, 0.1]; // [3, 2]
      const B = [0.3, -0.2];
      await writeGraphModel(gdir, W, B);
      const model = await ml.tfjs.load<number[]>(gdir, { logger: silent, version: 'g1' });
      assert.equal(model.format, 'graph-model');
      assert.equal(model.inputWidth, 3);
      assert.equal(model.outputWidth, 2, 'known after the warm-up predict');
      const rows = Array.from({ length: 40 }, (_, i) => ({ x: [i / 10, 1 - i / 20, (i % 3) - 1], ts: i }));
      const out: { score: number[] }[] = [];
      const p = new Pipeline({ name: 'graph', logger: silent });
      p.source(sources.array(rows), { timestamp: (r) => r.ts }).score(model, { features: (r) => r.x, batchSize: 16 }).sink(sinks.collect(out));
      await p.run();
      const sigmoid = (z: number): number => 1 / (1 + Math.exp(-z));
      rows.forEach((r, i) => {
        for (let j = 0; j < 2; j++) {
          const z = r.x[0] * W[j] + r.x[1] * W[2 + j] + r.x[2] * W[4 + j] + B[j];
          assert.ok(Math.abs(out[i].score[j] - sigmoid(z)) < 1e-6, `row ${i} output ${j}`);
        }
      });
      model.dispose();
    });

    it('fails to load with WEIR_MODEL_FAILED naming the file', async () => {
      await assert.rejects(ml.tfjs.load(path.join(dir, 'nope'), { logger: silent }), (e: unknown) => e instanceof WeirError && e.code === 'WEIR_MODEL_FAILED' && e.message.includes('nope'));
      await writeFile(path.join(dir, 'bad.json'), '{"modelTopology": {"class_name": "Sequential"}, "weightsManifest": [{"paths": ["missing.bin"], "weights": []}]}');
      await assert.rejects(ml.tfjs.load(path.join(dir, 'bad.json'), { logger: silent }), /WEIR_MODEL_FAILED.*missing\.bin/);
    });
  });

  describe('failures', () => {
    /** A model that fails while `state.fail` is set, and scores x * 10 otherwise. */
    function flaky(state: { fail: boolean; calls: number }): ScoringModel {
      return ml.fn((batch: FeatureBatch) => {
        state.calls++;
        if (state.fail) throw new Error('boom');
        return Array.from({ length: batch.rows }, (_, i) => batch.data[i] * 10);
      }, { name: 'flaky', version: 'f1' });
    }

    it('opens the breaker after consecutive failures, sends records to the side output meanwhile, and closes after the cool-down on success', async () => {
      const state = { fail: true, calls: 0 };
      const p = new Pipeline({ name: 'breaker', logger: silent });
      const input = testInput<{ x: number }>();
      const out = testOutput<{ x: number; score: number }>('out');
      const side = testOutput<{ x: number }>('side');
      p.source(input, { watermarks: watermarks.none() })
        .score(flaky(state), { features: ['x'], fallback: { sideOutput: side }, breaker: { failures: 2, coolDown: '1s' }, name: 'risk' })
        .sink(out);
      const d = await TestDriver.create(p);
      const breaker = (): number => metric(p, 'weir_score_breaker_state', { step: 'risk' });
      d.send(input, [{ x: 1 }, { x: 2 }]);
      assert.equal(breaker(), 0, 'one failure: still closed');
      d.send(input, [{ x: 3 }]);
      assert.equal(breaker(), 1, 'two consecutive failures: open');
      assert.equal(state.calls, 2);
      d.send(input, [{ x: 4 }]);
      assert.equal(state.calls, 2, 'open: the model is not called');
      assert.deepEqual(side.values, [{ x: 1 }, { x: 2 }, { x: 3 }, { x: 4 }]);
      assert.equal(out.values.length, 0);
      state.fail = false;
      d.advanceProcessingTime(999);
      d.send(input, [{ x: 5 }]);
      assert.equal(state.calls, 2, 'still cooling down');
      d.advanceProcessingTime(1);
      d.send(input, [{ x: 6 }]);
      assert.equal(state.calls, 3, 'half-open: one trial call');
      assert.equal(breaker(), 0, 'the trial succeeded: closed');
      d.send(input, [{ x: 7 }]);
      assert.deepEqual(out.values.map((r) => r.score), [60, 70]);
      assert.deepEqual(side.values.map((r) => r.x), [1, 2, 3, 4, 5]);
      assert.equal(metric(p, 'weir_score_fallback_total', { step: 'risk' }), 5);
      assert.equal(metric(p, 'weir_score_breaker_trips_total', { step: 'risk' }), 1);
      assert.equal(metric(p, 'weir_records_out_total', { step: 'fallback:risk' }), 5);
      await d.close();
    });

    it('a failed trial opens the breaker again; a default score is a fallback too', async () => {
      const state = { fail: true, calls: 0 };
      const p = new Pipeline({ name: 'breaker-score', logger: silent });
      const input = testInput<{ x: number }>();
      const out = testOutput<{ x: number; score: number; modelVersion: string }>('out');
      p.source(input, { watermarks: watermarks.none() })
        .score(flaky(state), { features: ['x'], fallback: { score: -1 }, breaker: { failures: 1, coolDown: 100 } })
        .sink(out);
      const d = await TestDriver.create(p);
      d.send(input, [{ x: 1 }]);
      d.advanceProcessingTime(100);
      d.send(input, [{ x: 2 }]); // trial fails
      d.send(input, [{ x: 3 }]); // open again: no call
      assert.equal(state.calls, 2);
      state.fail = false;
      d.advanceProcessingTime(100);
      d.send(input, [{ x: 4 }]);
      assert.deepEqual(out.values, [
        { x: 1, score: -1, modelVersion: 'fallback' },
        { x: 2, score: -1, modelVersion: 'fallback' },
        { x: 3, score: -1, modelVersion: 'fallback' },
        { x: 4, score: 40, modelVersion: 'f1' },
      ]);
      await d.close();
    });

    it('sends failed and bad-feature records to the dead letters with the reason, the field and the step', async () => {
      const state = { fail: false, calls: 0 };
      const dead: DeadLetter[] = [];
      const out: { id: number; score: number }[] = [];
      const p = new Pipeline({ name: 'dlq', batchSize: 5, logger: silent });
      const rows: { id: number; x?: unknown; ts: number }[] = [
        { id: 0, x: 1, ts: 0 },
        { id: 1, x: Number.NaN, ts: 1 },
        { id: 2, ts: 2 },
        { id: 3, x: 'seven', ts: 3 },
        { id: 4, x: 4, ts: 4 },
        { id: 5, x: 5, ts: 5 },
      ];
      const src = onPoll(sources.array(rows), 2, () => (state.fail = true));
      p.source(src, { timestamp: (r) => r.ts, onError: { deadLetter: sinks.collect(dead) } })
        .score(flaky(state) as ScoringModel, { features: ['x'] as never, name: 'risk' })
        .sink(sinks.collect(out));
      await p.run();
      assert.deepEqual(out.map((r) => [r.id, r.score]), [[0, 10], [4, 40]]);
      assert.deepEqual(dead.map((l) => [(l.record as { id: number }).id, l.code, l.step]), [
        [1, 'WEIR_FEATURE_INVALID', 'risk'],
        [2, 'WEIR_FEATURE_INVALID', 'risk'],
        [3, 'WEIR_FEATURE_INVALID', 'risk'],
        [5, 'WEIR_MODEL_FAILED', 'risk'],
      ]);
      assert.match(dead[0].reason, /field "x" is NaN/);
      assert.match(dead[1].reason, /field "x" is missing/);
      assert.match(dead[2].reason, /field "x" is a string.*not a number/);
      assert.match(dead[3].reason, /model flaky f1 failed: boom/);
      assert.equal(dead[3].timestamp, 5);
      assert.equal(metric(p, 'weir_score_invalid_features_total', { step: 'risk' }), 3);
    });

    it('rejects rows of the wrong length from a features function, and records whose features function throws', async () => {
      const dead: DeadLetter[] = [];
      const out: { id: number }[] = [];
      const p = new Pipeline({ name: 'dlq-fn', logger: silent });
      const model = ml.fn((b) => new Float32Array(b.rows), { inputWidth: 2 });
      const rows = [{ id: 0, f: [1, 2] }, { id: 1, f: [1, 2, 3] }, { id: 2, f: null }, { id: 3, f: [1, Infinity] }, { id: 4, f: [3, 4] }];
      p.source(sources.array(rows), { timestamp: () => 0, onError: { deadLetter: sinks.collect(dead) } })
        .score(model, { features: (r) => r.f!.map((v) => v), name: 'fn-features' })
        .sink(sinks.collect(out));
      await p.run();
      assert.deepEqual(out.map((r) => r.id), [0, 4]);
      assert.deepEqual(dead.map((l) => [l.code, l.reason.replace(/: .*/, '')]), [
        ['WEIR_FEATURE_INVALID', 'the features function returned 3 values, the model takes 2'],
        ['WEIR_USER_FUNCTION_FAILED', 'features function threw'],
        ['WEIR_FEATURE_INVALID', 'feature 1 is Infinity'],
      ]);
    });

    it('a features list of another width than the model takes is an error when the job starts', async () => {
      const model = await ml.tfjs.load(mlp(tf), { logger: silent });
      const p = new Pipeline({ name: 'width', logger: silent });
      p.source(sources.array(rowsOf(3)), { timestamp: (r) => r.ts }).score(model, { features: ['a', 'b', 'c'], name: 'w' }).sink(sinks.collect<unknown>([]));
      await assert.rejects(p.run(), (e: unknown) => e instanceof WeirError && e.code === 'WEIR_INVALID_ARGUMENT' && e.step === 'w' && /takes 4 features, but features names 3 fields/.test(e.message));
      const p2 = new Pipeline({ name: 'width-2', logger: silent });
      assert.throws(() => p2.source(sources.array([{ x: 1 }]), {}).score(model, { features: [] }), /WEIR_INVALID_ARGUMENT.*features: name at least one field/);
      assert.throws(() => p2.source(sources.array([{ x: 1 }]), {}).score(model, { features: ['x'], batchSize: 0 }), /batchSize must be a positive integer/);
      model.dispose();
    });

    it('without a fallback and a dead-letter policy, a failed model call fails the job with WEIR_MODEL_FAILED', async () => {
      const p = new Pipeline({ name: 'fail', logger: silent });
      p.source(sources.array([{ x: 1 }]), {}).score(flaky({ fail: true, calls: 0 }), { features: ['x'], name: 'risk' }).sink(sinks.collect<unknown>([]));
      await assert.rejects(p.run(), (e: unknown) => e instanceof WeirError && e.code === 'WEIR_MODEL_FAILED' && e.step === 'risk');
    });

    it('a model that fails to load trips the breaker; its loader is retried on the half-open trial', async () => {
      let attempts = 0;
      const ref = ml.models.ref(async () => {
        attempts++;
        if (attempts < 3) throw new Error(`disk not ready (${attempts})`);
        return ml.fn((b) => new Float32Array(b.rows).fill(1), { version: 'late' });
      });
      await ref.ready();
      assert.equal(ref.current, null);
      assert.match(String(ref.lastError), /disk not ready \(1\)/);
      const p = new Pipeline({ name: 'load-fail', logger: silent });
      const input = testInput<{ x: number }>();
      const out = testOutput<{ x: number; score: number; modelVersion: string }>();
      p.source(input, { watermarks: watermarks.none() }).score(ref, { features: ['x'], fallback: { score: 0 }, breaker: { failures: 1, coolDown: 10 } }).sink(out);
      const d = await TestDriver.create(p);
      d.send(input, [{ x: 1 }]); // reload fails (attempt 2): open
      await d.flush();
      d.send(input, [{ x: 2 }]); // open: no reload
      await d.flush();
      assert.equal(attempts, 2);
      d.advanceProcessingTime(10);
      d.send(input, [{ x: 3 }]); // half-open: reload succeeds (attempt 3), scored
      await d.flush();
      assert.deepEqual(out.values.map((r) => [r.x, r.score, r.modelVersion]), [[1, 0, 'fallback'], [2, 0, 'fallback'], [3, 1, 'late']]);
      await d.close();
    });
  });

  describe('model swap', () => {
    it('takes a new model version from the next batch on, without losing a record, and disposes the old one', async () => {
      let disposed = 0;
      const v = (version: string, score: number): ScoringModel => ml.fn((b) => new Float32Array(b.rows).fill(score), { version, dispose: () => disposed++ });
      const ref = ml.models.ref(v('v1', 1));
      const rows = rowsOf(2000);
      const out: { id: number; score: number; modelVersion: string }[] = [];
      const p = new Pipeline({ name: 'swap', batchSize: 100, logger: silent });
      const src = onPoll(sources.array(rows), 8, () => void ref.swap(v('v2', 2)));
      p.source(src, { timestamp: (r) => r.ts }).score(ref, { features: [...FEATURES], batchSize: 32 }).sink(sinks.collect(out));
      await p.run();
      assert.deepEqual(out.map((r) => r.id), rows.map((r) => r.id), 'every record, in order');
      const firstV2 = out.findIndex((r) => r.modelVersion === 'v2');
      assert.equal(firstV2, 700, 'the swap before the 8th poll applies from its batch on');
      assert.ok(out.every((r, i) => (i < firstV2 ? r.modelVersion === 'v1' && r.score === 1 : r.modelVersion === 'v2' && r.score === 2)));
      assert.equal(disposed, 1, 'v1 disposed');
    });

    it('lets a batch in flight finish with the model it started with, and disposes that model only then', async () => {
      const gate = deferred();
      let v1Disposed = false;
      const v1 = ml.fn(async (b) => {
        await gate.promise;
        return new Float32Array(b.rows).fill(1);
      }, { version: 'v1', dispose: () => (v1Disposed = true) });
      const ref = ml.models.ref(v1);
      const p = new Pipeline({ name: 'swap-in-flight', logger: silent });
      const input = testInput<{ x: number }>();
      const out = testOutput<{ x: number; modelVersion: string }>();
      p.source(input, { watermarks: watermarks.none() }).score(ref, { features: ['x'], batchSize: 1 }).sink(out);
      const d = await TestDriver.create(p);
      d.send(input, [{ x: 1 }, { x: 2 }]); // two calls of one row: the first is pending
      await ref.swap(ml.fn((b) => new Float32Array(b.rows).fill(2), { version: 'v2' }));
      assert.equal(v1Disposed, false, 'still in use');
      d.send(input, [{ x: 3 }]);
      gate.resolve();
      await d.flush();
      assert.equal(v1Disposed, true);
      assert.deepEqual(out.values.map((r) => [r.x, r.modelVersion]), [[1, 'v1'], [2, 'v1'], [3, 'v2']]);
      await d.close();
    });

    it('keeps the old model when loading the new one fails', async () => {
      const ref = ml.models.ref(ml.fn((b) => new Float32Array(b.rows), { version: 'v1' }));
      await assert.rejects(ref.swap(ml.tfjs.load('/does/not/exist', { logger: silent })), /WEIR_MODEL_FAILED/);
      assert.equal(ref.version, 'v1');
    });
  });

  it('ml.fn scores with any batched function: sync or async, flat or per-row results', async () => {
    const rows = rowsOf(100);
    const seen: number[] = [];
    const sum = ml.fn<number[]>(async (batch) => {
      seen.push(batch.rows);
      return batch.toArrays().map((r) => [r.reduce((a, b) => a + b, 0), r.length]);
    }, { name: 'sum', version: '3' });
    const out: { id: number; s: number[]; modelVersion: string }[] = [];
    const p = new Pipeline({ name: 'fn', batchSize: 30, logger: silent });
    p.source(sources.array(rows), { timestamp: (r) => r.ts }).score(sum, { features: [...FEATURES], output: 's', batchSize: 20 }).sink(sinks.collect(out));
    await p.run();
    assert.deepEqual(seen, [20, 10, 20, 10, 20, 10, 10]);
    rows.forEach((r, i) => {
      assert.ok(Math.abs(out[i].s[0] - (Math.fround(r.a) + Math.fround(r.b) + Math.fround(r.c) + Math.fround(r.d))) < 1e-5);
      assert.equal(out[i].s[1], 4);
      assert.equal(out[i].modelVersion, '3');
    });
    // A result of the wrong size is a failed call.
    const short = ml.fn((b) => new Float32Array(b.rows - 1));
    const dead: DeadLetter[] = [];
    const p2 = new Pipeline({ name: 'fn-short', logger: silent });
    p2.source(sources.array(rowsOf(5)), { timestamp: (r) => r.ts, onError: { deadLetter: sinks.collect(dead) } }).score(short, { features: [...FEATURES] }).sink(sinks.collect<unknown>([]));
    await p2.run();
    assert.equal(dead.length, 5);
    assert.match(dead[0].reason, /returned 4 scores for 5 rows/);
  });

  it('under checkpoints, a job stopped mid-way and resumed emits exactly what a straight run emits', async () => {
    const N = 6000;
    const make = (i: number): { id: number; a: number; b: number; c: number; d: number; ts: number } => ({ id: i, a: i % 5, b: (i * 7) % 11, c: 1, d: -1, ts: i });
    const build = (storage: MemoryCheckpointStorage | undefined, out: string[], stopAt?: number): Pipeline => {
      const p: Pipeline = new Pipeline({ name: 'score-resume', batchSize: 50, logger: silent, ...(storage ? { checkpoint: { storage, interval: '5ms' } } : {}) });
      // An asynchronous model with a little latency, and lingering: input waits inside the step when checkpoints come.
      const model = ml.fn(async (b) => {
        await new Promise((r) => setTimeout(r, 1));
        return Array.from({ length: b.rows }, (_, i) => b.data[i * 4] * 100 + b.data[i * 4 + 1]);
      }, { version: 'r1' });
      let src: Source<ReturnType<typeof make>> = sources.generator(make, { count: N, seed: 3 });
      if (stopAt !== undefined) src = onPoll(src, stopAt, () => void p.stop());
      p.source(src, { timestamp: (r) => r.ts, watermarks: watermarks.boundedOutOfOrderness(10) })
        .filter((r) => r.id % 4 !== 1)
        .score(model, { features: ['a', 'b', 'c', 'd'], batchSize: 64, maxLatency: '3ms' })
        .map((r) => `${r.id}:${r.score}:${r.modelVersion}`)
        .sink(sinks.collect(out));
      return p;
    };
    const straight: string[] = [];
    await build(undefined, straight).run();
    assert.equal(straight.length, N - N / 4);
    for (const stopAt of [5, 37, 90]) {
      const storage = new MemoryCheckpointStorage();
      const first: string[] = [];
      assert.equal((await build(storage, first, stopAt).run()).status, 'stopped');
      assert.ok(first.length < straight.length);
      const second: string[] = [];
      assert.equal((await build(storage, second).run()).status, 'finished');
      assert.deepEqual([...first, ...second], straight, `stopped at poll ${stopAt}`);
    }
  });

  it('killed with SIGKILL while records wait inside the step, a job resumed from its checkpoints writes exactly what a straight run writes', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'weir-score-crash-'));
    const job = fileURLToPath(new URL('./fixtures/score-crash-job.js', import.meta.url));
    const lines = async (file: string): Promise<string[]> => (await readFile(file, 'utf8')).split('\n').filter(Boolean).sort();
    try {
      const clean: ScoreCrashConfig = { dir: path.join(dir, 'clean'), target: path.join(dir, 'clean.jsonl'), events: 12_000 };
      assert.equal((await runJob(job, clean, { logLevel: 'silent' })).code, 0);
      const expected = await lines(clean.target);
      assert.ok(expected.length > 9000);
      const crashed: ScoreCrashConfig = { ...clean, dir: path.join(dir, 'crash'), target: path.join(dir, 'crash.jsonl') };
      let kills = 0;
      // Kills after 20, 60 and 110 polls (of ~300), then a run to the end.
      for (const afterPolls of [20, 60, 110, -1]) {
        const r = await runJob(job, crashed, { logLevel: 'silent', kill: afterPolls < 0 ? undefined : { afterPolls, extraMs: 3 } });
        if (r.signal === 'SIGKILL') kills++;
        else assert.equal(r.code, 0, `the job failed: ${r.stderr}`);
      }
      assert.ok(kills >= 2, `kills landed mid-run (${kills})`);
      assert.deepEqual(await lines(crashed.target), expected);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  describe('backends', () => {
    it('resolves tfjs-node-gpu → tfjs-node → wasm → cpu, skipping missing packages, and logs the device really used', async () => {
      const logs: { level: number; msg: string; obj: Record<string, unknown> }[] = [];
      const logger = pino({ level: 'debug' }, { write: (s: string) => { const o = JSON.parse(s) as Record<string, unknown>; logs.push({ level: o.level as number, msg: o.msg as string, obj: o }); } });
      const real = (await import('@tensorflow/tfjs')) as unknown as Tf;
      const notFound = (s: string): Error => Object.assign(new Error(`Cannot find package '${s}' imported from here`), { code: 'ERR_MODULE_NOT_FOUND' });
      // tfjs-node-gpu installed, but TensorFlow found no GPU: it runs on the CPU, silently, unless told.
      const fakeGpu = { ...real, setBackend: async () => true, ready: async () => undefined, enableProdMode: () => undefined, backend: () => ({ isGPUPackage: true, isUsingGpuDevice: false }) };
      const gpu = await ml.tfjs.resolve({ logger, importer: async (s) => (s === '@tensorflow/tfjs-node-gpu' ? fakeGpu : Promise.reject(notFound(s))) });
      assert.equal(gpu.package, '@tensorflow/tfjs-node-gpu');
      assert.equal(gpu.backend, 'tensorflow');
      assert.equal(gpu.device, 'cpu');
      assert.ok(logs.some((l) => l.level === 40 && /no usable GPU/.test(l.msg)), 'a warning says the GPU is not used');
      const withGpu = await ml.tfjs.resolve({ logger, importer: async (s) => (s === '@tensorflow/tfjs-node-gpu' ? { ...fakeGpu, backend: () => ({ isUsingGpuDevice: true }) } : Promise.reject(notFound(s))) });
      assert.equal(withGpu.device, 'gpu');
      // Neither native package: the wasm backend, with both skipped and said so.
      logs.length = 0;
      const wasm = await ml.tfjs.resolve({ logger, importer: (s) => (s.startsWith('@tensorflow/tfjs-node') ? Promise.reject(notFound(s)) : import(s)) });
      assert.equal(wasm.backend, 'wasm');
      assert.deepEqual(wasm.skipped, [{ package: '@tensorflow/tfjs-node-gpu', reason: 'not installed' }, { package: '@tensorflow/tfjs-node', reason: 'not installed' }]);
      assert.ok(logs.some((l) => l.msg === 'tfjs backend: wasm on cpu'));
      // A forced backend that is not there is an error, not a silent fallback.
      await assert.rejects(ml.tfjs.resolve({ backend: 'node', logger, importer: (s) => Promise.reject(notFound(s)) }), (e: unknown) => e instanceof WeirError && e.code === 'WEIR_ML_BACKEND_MISSING');
      await ml.tfjs.resolve({ backend: 'cpu', logger: silent });
    });

    it('the wasm backend initialises offline and scores like a direct predict on it', async () => {
      const rt = await ml.tfjs.resolve({ backend: 'wasm', logger: silent });
      assert.equal(rt.backend, 'wasm');
      assert.equal(rt.tf.getBackend(), 'wasm');
      try {
        const raw = mlp(rt.tf);
        const model = await ml.tfjs.load(raw, { backend: 'wasm', logger: silent });
        const rows = rowsOf(500);
        const expected = directPredict(rt.tf, raw, rows);
        const out: { score: number }[] = [];
        const p = new Pipeline({ name: 'wasm', logger: silent });
        p.source(sources.array(rows), { timestamp: (r) => r.ts }).score(model, { features: [...FEATURES], batchSize: 128 }).sink(sinks.collect(out));
        await p.run();
        out.forEach((r, i) => assert.ok(Math.abs(r.score - expected[i]) < 1e-6, `row ${i}`));
        model.dispose();
      } finally {
        await ml.tfjs.resolve({ backend: 'cpu', logger: silent });
      }
    });
  });
});

/**
 * Writes a GraphModel by hand (what tensorflowjs_converter produces for y = sigmoid(x·W + b)):
 * a GraphDef in JSON with a Placeholder, two Const weights, MatMul, BiasAdd and Sigmoid, and the
 * weights in one float32 shard.
 */
async function writeGraphModel(dir: string, W: number[], B: number[]): Promise<void> {
  const { mkdir } = await import('node:fs/promises');
  await mkdir(dir, { recursive: true });
  const f32 = { type: 'DT_FLOAT' };
  const modelJson = {
    format: 'graph-model',
    generatedBy: 'weir test',
    convertedBy: 'hand',
    modelTopology: {
      node: [
        { name: 'x', op: 'Placeholder', attr: { dtype: f32, shape: { shape: { dim: [{ size: '-1' }, { size: '3' }] } } } },
        { name: 'W', op: 'Const', attr: { dtype: f32, value: { tensor: { dtype: 'DT_FLOAT', tensorShape: { dim: [{ size: '3' }, { size: '2' }] } } } } },
        { name: 'b', op: 'Const', attr: { dtype: f32, value: { tensor: { dtype: 'DT_FLOAT', tensorShape: { dim: [{ size: '2' }] } } } } },
        { name: 'MatMul', op: 'MatMul', input: ['x', 'W'], attr: { T: f32, transpose_a: { b: false }, transpose_b: { b: false } } },
        { name: 'BiasAdd', op: 'BiasAdd', input: ['MatMul', 'b'], attr: { T: f32, data_format: { s: 'TkhXQw==' } } },
        { name: 'y', op: 'Sigmoid', input: ['BiasAdd'], attr: { T: f32 } },
      ],
      library: {},
      versions: { producer: 1 },
    },
    weightsManifest: [{ paths: ['group1-shard1of1.bin'], weights: [{ name: 'W', shape: [3, 2], dtype: 'float32' }, { name: 'b', shape: [2], dtype: 'float32' }] }],
  };
  await writeFile(path.join(dir, 'model.json'), JSON.stringify(modelJson));
  await writeFile(path.join(dir, 'group1-shard1of1.bin'), Buffer.from(new Float32Array([...W, ...B]).buffer));
}

/**
 * Worker threads (`parallelism: n`) and rescaling: a job run with n workers gives what it gives on
 * one thread, and a job stopped at a checkpoint and restarted with another parallelism (state
 * redistributed by key group) gives exactly what an uninterrupted run gives, with exactly-once output.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Pipeline, WeirError, sinks, sources, windows, agg } from '../src/index.js';
import { keyGroupRange, workerOfKeyGroup } from '../src/parallel/key-groups.js';
import { buildJob, type ParallelJobArgs } from './fixtures/parallel-job.js';

const EVENTS = 30_000;
let tmp: string;

before(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'weir-parallel-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function lines(file: string): Promise<string[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.split('\n').filter((l) => l !== '').sort();
}

/** Runs the job to the end; returns its sorted output lines. */
async function runToEnd(name: string, parallelism: number): Promise<{ sums: string[]; totals: string[] }> {
  const args: ParallelJobArgs = { parallelism, events: EVENTS, sums: path.join(tmp, `${name}-sums.jsonl`), totals: path.join(tmp, `${name}-totals.jsonl`) };
  await buildJob(args).run();
  return { sums: await lines(args.sums), totals: await lines(args.totals) };
}

let reference: { sums: string[]; totals: string[] };

describe('key groups', () => {
  it('each key group has exactly one owner, and owners own contiguous ranges', () => {
    for (const max of [1, 7, 128, 1000]) {
      for (let n = 1; n <= Math.min(max, 9); n++) {
        let next = 0;
        for (let w = 0; w < n; w++) {
          const { from, to } = keyGroupRange(w, n, max);
          assert.equal(from, next, `max ${max}, n ${n}, worker ${w}`);
          for (let g = from; g < to; g++) assert.equal(workerOfKeyGroup(g, n, max), w);
          next = to;
        }
        assert.equal(next, max);
      }
    }
  });
});

describe('parallelism', () => {
  before(async () => {
    reference = await runToEnd('reference', 1);
    assert.ok(reference.sums.length > 1000 && reference.totals.length > 1000, 'the reference run produced output');
  });

  for (const n of [2, 4]) {
    it(`${n} worker threads give the same output as one thread`, async () => {
      const got = await runToEnd(`p${n}`, n);
      assert.deepEqual(got.sums, reference.sums);
      assert.deepEqual(got.totals, reference.totals);
    });
  }

  for (const [state, steps] of [
    ['classic-level', [2, 3, 1]],
    ['rocksdb', [1, 4, 2]],
  ] as const) {
    it(`stopped and restored at parallelism ${steps.join(' → ')} (${state}): exactly the uninterrupted output`, async () => {
      const dir = path.join(tmp, `rescale-${state}`);
      const base = { events: EVENTS, dir, state, sums: path.join(tmp, `rescale-${state}-sums.jsonl`), totals: path.join(tmp, `rescale-${state}-totals.jsonl`) };
      // Pauses on batch boundaries (batchSize 200): the watermark moves once per batch, so a
      // timer sees the records of its batch; a restart must poll the same batches to compare.
      const pauses = [10_400, 21_000, undefined];
      for (let i = 0; i < steps.length; i++) {
        const args: ParallelJobArgs = { ...base, parallelism: steps[i], pauseAt: pauses[i] };
        let p!: Pipeline;
        p = buildJob(args, { onPause: () => void p.stop() });
        const r = await p.run();
        assert.equal(r.status, i < steps.length - 1 ? 'stopped' : 'finished');
        assert.ok(p.lastCheckpoint() !== null, 'a checkpoint was taken');
      }
      assert.deepEqual(await lines(base.sums), reference.sums);
      assert.deepEqual(await lines(base.totals), reference.totals);
    });
  }

  it('counts the workers’ records in the job’s metrics', async () => {
    const args: ParallelJobArgs = { parallelism: 3, events: 5000, sums: path.join(tmp, 'm-sums.jsonl'), totals: path.join(tmp, 'm-totals.jsonl') };
    const r = await buildJob(args).run();
    const inTotals = r.metrics.find((m) => m.name === 'weir_records_in_total' && m.labels.step === 'totals');
    assert.equal(inTotals?.value, 5000);
    const sinkIn = r.metrics.find((m) => m.name === 'weir_records_in_total' && m.labels.step === 'totals-out');
    assert.equal(sinkIn?.value, (await lines(args.totals)).length);
  });

  it('a failure in a worker fails the job with the operator’s error', async () => {
    const p = new Pipeline({ name: 'bad', parallelism: 2, workers: { module: new URL('./fixtures/parallel-failing-job.js', import.meta.url), export: 'build' } });
    const { build } = await import('./fixtures/parallel-failing-job.js');
    await assert.rejects(build(2).run(), (e: unknown) => e instanceof WeirError && e.code === 'WEIR_USER_FUNCTION_FAILED' && e.step === 'explode' && /boom at 77/.test(e.message));
    void p;
  });

  it('needs a workers module, and a plan it can split', async () => {
    assert.throws(() => new Pipeline({ name: 'x', parallelism: 2 }), (e: unknown) => e instanceof WeirError && e.code === 'WEIR_INVALID_ARGUMENT' && /workers/.test(e.message));
    assert.throws(() => new Pipeline({ name: 'x', parallelism: 0 }), (e: unknown) => e instanceof WeirError && e.code === 'WEIR_INVALID_ARGUMENT');
    const p = new Pipeline({ name: 'rekey', parallelism: 2, workers: { module: import.meta.url } });
    p.source(sources.array([{ k: 1, t: 1 }]), { timestamp: (e) => e.t })
      .keyBy((e) => e.k)
      .window(windows.tumbling(10))
      .aggregate(agg.count())
      .keyBy((r) => r.value)
      .window(windows.tumbling(10))
      .aggregate(agg.count())
      .sink(sinks.collect<unknown>([]));
    await assert.rejects(p.run(), (e: unknown) => e instanceof WeirError && e.code === 'WEIR_INVALID_PLAN' && /re-keying/.test(e.message));
  });

  it('a worker that cannot build the job fails the start clearly', async () => {
    const p = new Pipeline({ name: 'nobuild', parallelism: 2, workers: { module: import.meta.url, export: 'noSuchExport' } });
    p.source(sources.array([{ k: 1, t: 1 }]), { timestamp: (e) => e.t })
      .keyBy((e) => e.k)
      .window(windows.tumbling(10))
      .aggregate(agg.count())
      .sink(sinks.collect<unknown>([]));
    await assert.rejects(p.run(), (e: unknown) => e instanceof WeirError && e.code === 'WEIR_WORKER_FAILED' && /noSuchExport/.test(e.message));
  });
});

/**
 * State beyond `state: { cacheBytes }`: keyed process state spills to a store and comes back, one
 * batched read per input batch. The output equals the same job with everything in memory; changed
 * keys that were spilled still reach checkpoints (stop, restart, same output); and memory stays
 * within the budget while the state is several times larger.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Pipeline, sinks, state, type Collector, type PipelineOptions, type Source } from '../src/index.js';

interface Visit {
  key: string;
  i: number;
  amount: number;
}
interface Report {
  key: string;
  visits: number;
  sum: number;
  last: number;
}

/**
 * Visits `keys` keys round-robin, `rounds` times: between two visits of a key every other key is
 * visited once, so with a small budget each visit finds its key spilled. Resumable; pauses at `pauseAt`.
 */
function visits(keys: number, rounds: number, pauseAt?: number, onPause?: () => void): Source<Visit> {
  let i = 0;
  const end = keys * rounds;
  return {
    name: 'visits',
    poll(max) {
      if (i >= end) return null;
      if (pauseAt !== undefined && i >= pauseAt) {
        onPause?.();
        return [];
      }
      const n = Math.min(max, end - i, pauseAt === undefined ? Infinity : pauseAt - i);
      const out: Visit[] = new Array(n);
      for (let j = 0; j < n; j++, i++) out[j] = { key: `key-${(i * 7919) % keys}`, i, amount: (i * 31) % 97 };
      return out;
    },
    savePosition: () => i,
    seek(p) {
      i = p as number;
    },
  };
}

/** Per key: a list of its last 40 amounts, a visit count and a map of amounts seen; a report every 3rd visit. */
function build(opts: Partial<PipelineOptions>, source: Source<Visit>, out: Report[] | string, history = 40): Pipeline {
  const p = new Pipeline({ name: 'spill-job', batchSize: 500, ...opts });
  p.source(source, { timestamp: (v) => v.i })
    .keyBy((v) => v.key)
    .process(
      {
        state: { recent: state.list<number>(), visits: state.value(0), seen: state.map<number, number>() },
        processElement(v, ctx, o: Collector<Report>) {
          const recent = [...ctx.state.recent.get(), v.amount];
          if (recent.length > history) recent.shift();
          ctx.state.recent.update(recent);
          const n = ctx.state.visits.get() + 1;
          ctx.state.visits.set(n);
          ctx.state.seen.set(v.amount % 5, (ctx.state.seen.get(v.amount % 5) ?? 0) + 1);
          if (n % 3 === 0) o.emit({ key: ctx.key, visits: n, sum: recent.reduce((a, b) => a + b, 0), last: ctx.state.seen.size });
        },
      },
      { name: 'per-key' },
    )
    .sink(typeof out === 'string' ? sinks.jsonl<Report>(out, { exactlyOnce: true }) : sinks.collect(out));
  return p;
}

const sorted = (rows: readonly Report[]): string[] => rows.map((r) => JSON.stringify(r)).sort();
const metric = (p: Pipeline, name: string): number => p.metrics().find((m) => m.name === name)?.value ?? 0;

let tmp: string;
before(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'weir-spill-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('state beyond cacheBytes', () => {
  const KEYS = 20_000;
  const ROUNDS = 4;

  for (const backend of ['classic-level', 'rocksdb'] as const) {
    it(`spills and reads back (${backend}): same output as all in memory`, async () => {
      const expected: Report[] = [];
      await build({}, visits(KEYS, ROUNDS), expected).run();
      const got: Report[] = [];
      const spillDir = path.join(tmp, `spill-${backend}`);
      const p = build({ state: { backend, cacheBytes: 400_000, spillDir } }, visits(KEYS, ROUNDS), got);
      await p.run();
      assert.equal(got.length, KEYS * Math.floor(ROUNDS / 3));
      assert.deepEqual(sorted(got), sorted(expected));
      assert.ok(metric(p, 'weir_state_evicted_total') > KEYS, `keys were spilled (${metric(p, 'weir_state_evicted_total')})`);
      assert.ok(metric(p, 'weir_state_loaded_total') > KEYS, `keys were read back (${metric(p, 'weir_state_loaded_total')})`);
      assert.deepEqual(await readdir(spillDir).catch(() => []), [], 'the spill store is removed at the end');
    });
  }

  it('changed keys that were spilled reach the checkpoints: stopped and restarted, the output is the same', async () => {
    const expected: Report[] = [];
    await build({}, visits(KEYS, ROUNDS), expected).run();
    const dir = path.join(tmp, 'ckpt');
    const file = path.join(tmp, 'out.jsonl');
    for (const pauseAt of [23_500, 51_000, undefined]) {
      let p!: Pipeline;
      // A checkpoint every 20 ms: many of them fall between an eviction and the next visit.
      p = build({ state: { cacheBytes: 300_000 }, checkpoint: { dir, interval: '20ms' } }, visits(KEYS, ROUNDS, pauseAt, () => void p.stop()), file);
      await p.run();
      assert.ok(metric(p, 'weir_state_evicted_total') > 0);
    }
    const { readFile } = await import('node:fs/promises');
    const rows = (await readFile(file, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Report);
    assert.deepEqual(sorted(rows), sorted(expected));
  });

  it('memory stays within the budget: the job runs under a heap limit it cannot run under without one', async () => {
    // 200K keys of ~430 bytes of state each (~85 MB). Under a 64 MB heap limit, only with a budget.
    const budgetMb = 16;
    const spilled = await runMemoryJob(budgetMb);
    assert.equal(spilled.code, 0, `with a ${budgetMb} MB budget it finishes under the limit: ${spilled.stderr.slice(-500)}`);
    const r = JSON.parse(spilled.stdout) as { reports: number; peakLiveHeapMb: number; evicted: number; loaded: number };
    assert.equal(r.reports, 200_000);
    assert.ok(r.evicted > 200_000 && r.loaded > 200_000, `state went out and came back (${r.evicted} / ${r.loaded})`);
    // The live heap: the budget plus what any job holds (code, buffers, a batch in flight).
    assert.ok(r.peakLiveHeapMb <= budgetMb + 20, `peak live heap ${r.peakLiveHeapMb} MB with a ${budgetMb} MB budget`);
    const unbounded = await runMemoryJob(0);
    assert.notEqual(unbounded.code, 0, 'without a budget the same job runs out of heap');
    assert.match(unbounded.stderr, /heap out of memory|Allocation failed/);
  });
});

/** Runs test/fixtures/spill-memory-job.js in a child process with a 64 MB heap. */
function runMemoryJob(budgetMb: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const script = fileURLToPath(new URL('./fixtures/spill-memory-job.js', import.meta.url));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--max-old-space-size=64', '--expose-gc', script, String(budgetMb)], { env: { ...process.env, WEIR_LOG_LEVEL: 'silent' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { MemoryCheckpointStorage, Pipeline, agg, sinks, sources, state, watermarks, windows, type CheckpointStorage, type Source } from '../src/index.js';

interface Ev { k: number; t: number; v: number }

const N = 60_000;
const make = (i: number, rng: { int(n: number): number }): Ev => ({ k: rng.int(50), t: i * 3 + rng.int(40), v: rng.int(10) });

/** Stops the pipeline from inside the source after `polls` polls (mid-run, deterministically). */
function stopAfter<T>(src: Source<T>, polls: number, stop: () => void): Source<T> {
  let n = 0;
  return { ...src, name: src.name, poll: (max) => (++n === polls ? (stop(), src.poll(max)) : src.poll(max)), savePosition: () => src.savePosition!(), seek: (p) => src.seek!(p) };
}

function build(storage: CheckpointStorage | undefined, out: string[], stopAtPoll?: number): Pipeline {
  const p: Pipeline = new Pipeline({ name: 'resumable', batchSize: 500, ...(storage ? { checkpoint: { storage, interval: '20ms' } } : {}) });
  let src: Source<Ev> = sources.generator(make, { count: N, seed: 11 });
  if (stopAtPoll !== undefined) src = stopAfter(src, stopAtPoll, () => void p.stop());
  const keyed = p.source(src, { timestamp: (e) => e.t, watermarks: watermarks.boundedOutOfOrderness(50), name: 'events' }).keyBy((e) => e.k);
  const write = sinks.collect(out);
  keyed.window(windows.tumbling(1000)).aggregate(agg.count(), { name: 'counts' }).map((r) => `count ${r.key} ${r.start} ${r.value}`).sink(write);
  keyed.window(windows.sliding({ size: 3000, slide: 500 })).aggregate(agg.sum((e) => e.v), { name: 'sums' }).map((r) => `sum ${r.key} ${r.start} ${r.value}`).sink(write);
  keyed
    .process({
      state: { n: state.value(0) },
      processElement(_e, ctx) {
        const n = ctx.state.n.get() + 1;
        ctx.state.n.set(n);
        if (n % 100 === 0) return `hundred ${ctx.key} ${n}`;
      },
    }, { name: 'every-hundred' })
    .sink(write);
  return p;
}

const sorted = (xs: string[]) => [...xs].sort();

describe('checkpointed runs', () => {
  it('a job stopped mid-way and run again from its checkpoint emits exactly what one straight run emits', async () => {
    const straight: string[] = [];
    await build(undefined, straight).run();
    assert.ok(straight.length > 1000);

    for (const stopAt of [3, 40, 95]) {
      const storage = new MemoryCheckpointStorage();
      const first: string[] = [];
      const r1 = await build(storage, first, stopAt).run();
      assert.equal(r1.status, 'stopped');
      assert.ok(first.length < straight.length, 'the first run stopped before the end');
      const second: string[] = [];
      const r2 = await build(storage, second).run();
      assert.equal(r2.status, 'finished');
      assert.deepEqual(sorted([...first, ...second]), sorted(straight), `stopped at poll ${stopAt}`);
      // Run again after the end: nothing left to do, nothing emitted twice.
      const third: string[] = [];
      await build(storage, third).run();
      assert.deepEqual(third, []);
    }
  });

  it('an exactly-once jsonl sink holds each result once across a stop and a resume', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'weir-eo-'));
    try {
      const file = path.join(dir, 'out.jsonl');
      const job = (storage: CheckpointStorage, stopAt?: number): Pipeline => {
        const p: Pipeline = new Pipeline({ name: 'eo-jsonl', batchSize: 400, checkpoint: { storage, interval: '5ms' } });
        let src: Source<Ev> = sources.generator(make, { count: 20_000, seed: 5 });
        if (stopAt !== undefined) src = stopAfter(src, stopAt, () => void p.stop());
        p.source(src, { timestamp: (e) => e.t, watermarks: watermarks.boundedOutOfOrderness(50), name: 'events' })
          .keyBy((e) => e.k)
          .window(windows.sliding({ size: 2000, slide: 500 }))
          .aggregate(agg.count(), { name: 'counts' })
          .sink(sinks.jsonl(file, { exactlyOnce: true }), { name: 'out' });
        return p;
      };
      const straightStorage = new MemoryCheckpointStorage();
      await job(straightStorage).run();
      const expected = (await readFile(file, 'utf8')).split('\n').filter(Boolean).sort();
      await rm(file);
      await rm(`${file}.weir`, { recursive: true, force: true });

      const storage = new MemoryCheckpointStorage();
      assert.equal((await job(storage, 20).run()).status, 'stopped');
      const partial = (await readFile(file, 'utf8')).split('\n').filter(Boolean);
      assert.ok(partial.length > 0 && partial.length < expected.length);
      assert.equal((await job(storage).run()).status, 'finished');
      const actual = (await readFile(file, 'utf8')).split('\n').filter(Boolean).sort();
      assert.deepEqual(actual, expected);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses an exactly-once sink without checkpoints', async () => {
    const p = new Pipeline({ name: 'eo-without-checkpoints' });
    p.source(sources.array([1, 2])).sink(sinks.jsonl(path.join(tmpdir(), 'never.jsonl'), { exactlyOnce: true }), { name: 'out' });
    await assert.rejects(p.run(), /WEIR_INVALID_PLAN \[out\]: out is exactly-once/);
  });

  it('takes checkpoints periodically while the job runs', async () => {
    const storage = new MemoryCheckpointStorage();
    let polls = 0;
    const slow: Source<Ev> = {
      name: 'slow',
      async poll() {
        if (++polls > 12) return null;
        await sleep(10);
        return [{ k: 1, t: polls * 10, v: 1 }];
      },
      savePosition: () => polls,
      seek: (p) => void (polls = p as number),
    };
    const p = new Pipeline({ name: 'periodic', checkpoint: { storage, interval: '25ms' } });
    p.source(slow, { timestamp: (e) => e.t }).sink(sinks.collect<Ev>([]));
    await p.run();
    const done = p.metrics().find((m) => m.name === 'weir_checkpoints_total')!.value;
    assert.ok(done >= 2, `periodic checkpoints besides the final one: ${done - 1}`);
    const last = p.lastCheckpoint();
    assert.equal(last?.id, done, 'the last checkpoint is the final one');
    assert.ok(last.durationMs >= 0 && last.stateChanges >= 0);
    const cp = await storage.load();
    assert.equal(cp?.sources['source:slow'].position, 12, 'the last checkpoint holds the position after the last batch');
  });

  it('refuses to resume a source that cannot be replayed', async () => {
    const storage = new MemoryCheckpointStorage();
    const once = (async function* () {
      yield { k: 1, t: 1, v: 1 };
    })();
    const p1 = new Pipeline({ name: 'no-replay', checkpoint: { storage } });
    p1.source(sources.iterable(once), { timestamp: (e) => e.t, name: 'once' }).sink(sinks.collect<Ev>([]));
    await p1.run();
    const p2 = new Pipeline({ name: 'no-replay', checkpoint: { storage } });
    p2.source(sources.iterable(once), { timestamp: (e) => e.t, name: 'once' }).sink(sinks.collect<Ev>([]));
    await assert.rejects(p2.run(), /WEIR_SOURCE_FAILED \[once\]: cannot resume from checkpoint/);
  });
});

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Pipeline, WeirError, agg, sinks, sources, watermarks, windows, type Source } from '../src/index.js';
import { decodeTuple, encodeTuple } from '../src/state/store/key-codec.js';
import { openKvStore } from '../src/state/store/kv-store.js';

interface Ev { k: number; t: number }
const N = 30_000;
const make = (i: number, rng: { int(n: number): number }): Ev => ({ k: rng.int(20), t: i * 5 + rng.int(50) });

/** A generator source that, at poll `hold`, waits until the test lets it go (or stops the job at poll `stopAt`). */
function controlled(opts: { hold?: number; stopAt?: number; onHold?: () => Promise<void>; stop?: () => void }): Source<Ev> {
  const src = sources.generator(make, { count: N, seed: 23 });
  let polls = 0;
  return {
    name: 'events',
    poll(max) {
      polls++;
      if (polls === opts.stopAt) opts.stop?.();
      if (polls === opts.hold) return opts.onHold!().then(() => src.poll(max));
      return src.poll(max);
    },
    savePosition: () => src.savePosition!(),
    seek: (p) => src.seek!(p),
  };
}

function job(name: string, dir: string | undefined, out: string[], src: Source<Ev>, fromSavepoint?: string): Pipeline {
  const p = new Pipeline({ name, batchSize: 300, ...(dir ? { checkpoint: { dir, interval: '1h', fromSavepoint } } : {}) });
  p.source(src, { timestamp: (e) => e.t, watermarks: watermarks.boundedOutOfOrderness(60), name: 'events' })
    .keyBy((e) => e.k)
    .window(windows.sliding({ size: 2000, slide: 500 }))
    .aggregate(agg.count(), { name: 'counts' })
    .map((r) => `${r.key}/${r.start}/${r.value}`)
    .sink(sinks.collect(out), { name: 'out' });
  return p;
}

const sorted = (xs: string[]) => [...xs].sort();

describe('savepoints and bad checkpoints', () => {
  let dir = '';
  let straight: string[] = [];
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'weir-savepoints-'));
    straight = [];
    await job('straight', undefined, straight, sources.generator(make, { count: N, seed: 23 })).run();
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('a job started from a savepoint goes on from where the savepoint was taken', async () => {
    const spDir = path.join(dir, 'sp');
    const out1: string[] = [];
    let atSavepoint = -1;
    let p1: Pipeline;
    const src = controlled({
      hold: 30,
      onHold: async () => {
        // Nothing moves while the source is held: the savepoint is taken between two batches.
        await p1.savepoint(spDir);
        atSavepoint = out1.length;
      },
    });
    p1 = job('sp-job', path.join(dir, 'ckpt-1'), out1, src);
    await p1.run();
    assert.ok(atSavepoint > 0 && atSavepoint < out1.length, 'the first run went on after the savepoint');
    await assert.rejects(p1.savepoint(path.join(dir, 'too-late')), (e: unknown) => e instanceof WeirError && e.code === 'WEIR_JOB_STATE');

    // Another job (its own checkpoint dir) starting from the savepoint.
    const out2: string[] = [];
    await job('sp-job', path.join(dir, 'ckpt-2'), out2, sources.generator(make, { count: N, seed: 23 }), spDir).run();
    assert.deepEqual(sorted([...out1.slice(0, atSavepoint), ...out2]), sorted(straight));
  });

  it('falls back to the previous checkpoint when the newest is corrupt, never to an empty start', async () => {
    const ckpt = path.join(dir, 'ckpt-corrupt');
    const out1: string[] = [];
    let p1: Pipeline;
    p1 = job('fallback', ckpt, out1, controlled({ stopAt: 25, stop: () => void p1.stop() }));
    await p1.run(); // its last checkpoint: id 1
    const out2: string[] = [];
    let p2: Pipeline;
    p2 = job('fallback', ckpt, out2, controlled({ stopAt: 20, stop: () => void p2.stop() }));
    await p2.run(); // resumes from 1, stops at checkpoint 2
    assert.ok(out2.length > 0);

    // Corrupt checkpoint 2's manifest.
    const kv = await openKvStore(ckpt, 'classic-level');
    const key = encodeTuple(['m', 2]);
    const [text] = await kv.getMany([key]);
    assert.ok(text !== undefined, 'checkpoint 2 is there');
    await kv.batch([{ type: 'put', key, value: text.slice(0, -5) }]);
    await kv.close();

    // The next run resumes from checkpoint 1: it emits what run 2 and the rest would have.
    const out3: string[] = [];
    await job('fallback', ckpt, out3, controlled({})).run();
    assert.deepEqual(sorted([...out1, ...out3]), sorted(straight));
  });

  it('falls back to the previous checkpoint when a state blob of the newest is corrupt', async () => {
    const ckpt = path.join(dir, 'ckpt-corrupt-blob');
    const out1: string[] = [];
    let p1: Pipeline;
    p1 = job('blob', ckpt, out1, controlled({ stopAt: 25, stop: () => void p1.stop() }));
    await p1.run(); // checkpoint 1
    const out2: string[] = [];
    let p2: Pipeline;
    p2 = job('blob', ckpt, out2, controlled({ stopAt: 20, stop: () => void p2.stop() }));
    await p2.run(); // resumes from 1, stops at checkpoint 2
    assert.ok(out2.length > 0);

    // Flip one char of the body of a blob checkpoint 2 wrote (keys `c | operator | table | keyGroup | checkpoint | part`).
    const kv = await openKvStore(ckpt, 'classic-level');
    let target: [string, string] | undefined;
    const c = encodeTuple(['c']);
    for await (const chunk of kv.chunks({ gte: c, lt: `${c}\x08` })) {
      for (const [k, v] of chunk) if (decodeTuple(k)[4] === 2 && target === undefined) target = [k, v];
    }
    assert.ok(target !== undefined, 'checkpoint 2 wrote state');
    const [key, value] = target;
    const i = value.indexOf('\n') + 2;
    await kv.batch([{ type: 'put', key, value: value.slice(0, i) + (value[i] === '7' ? '8' : '7') + value.slice(i + 1) }]);
    await kv.close();

    // The next run resumes from checkpoint 1 (2's manifest is intact, its state is not).
    const out3: string[] = [];
    await job('blob', ckpt, out3, controlled({})).run();
    assert.deepEqual(sorted([...out1, ...out3]), sorted(straight));
  });

  it('refuses to start when every checkpoint is unusable', async () => {
    const ckpt = path.join(dir, 'ckpt-all-bad');
    let p1: Pipeline;
    p1 = job('all-bad', ckpt, [], controlled({ stopAt: 10, stop: () => void p1.stop() }));
    await p1.run();
    const kv = await openKvStore(ckpt, 'classic-level');
    const key = encodeTuple(['m', 1]);
    const [text] = await kv.getMany([key]);
    await kv.batch([{ type: 'put', key, value: `9${text!.slice(1)}` }]);
    await kv.close();
    await assert.rejects(job('all-bad', ckpt, [], controlled({})).run(), (e: unknown) => e instanceof WeirError && e.code === 'WEIR_NO_VALID_CHECKPOINT');
  });
});

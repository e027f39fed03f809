import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { Pipeline, WeirError, sinks, sources } from '../src/index.js';

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

async function waitFor(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail('timed out waiting');
    await sleep(2);
  }
}

describe('sources.iterable', () => {
  it('reads a sync generator: every record once, in order, in batches', async () => {
    let pulled = 0;
    let finalized = false;
    function* numbers(): Generator<number> {
      try {
        for (let i = 0; i < 10_000; i++) {
          pulled++;
          yield i;
        }
      } finally {
        finalized = true;
      }
    }
    const out: number[] = [];
    const p = new Pipeline({ name: 'iter-sync', batchSize: 300 });
    p.source(sources.iterable(numbers())).map((n) => n * 2).sink(sinks.collect(out));
    const result = await p.run();
    assert.equal(result.status, 'finished');
    assert.deepEqual(out, range(10_000).map((n) => n * 2));
    assert.equal(pulled, 10_000);
    assert.equal(finalized, true);
  });

  it('reads a sync iterable without a promise per batch', () => {
    const src = sources.iterable(new Set(['a', 'b', 'c']));
    const first = src.poll(2);
    assert.deepEqual(first, ['a', 'b']);
    assert.deepEqual(src.poll(2), ['c']);
    assert.equal(src.poll(2), null);
  });

  it('reads an async generator that awaits and sleeps between items: every record once, in order', async () => {
    async function* slow(): AsyncGenerator<{ i: number }> {
      for (let i = 0; i < 500; i++) {
        await Promise.resolve();
        if (i % 50 === 0) await sleep(3);
        yield { i };
      }
    }
    const out: number[] = [];
    const p = new Pipeline({ name: 'iter-async', batchSize: 64 });
    p.source(sources.iterable(slow())).map((r) => r.i).sink(sinks.collect(out));
    const result = await p.run();
    assert.equal(result.status, 'finished');
    assert.deepEqual(out, range(500));
  });

  it('reads a Node readable stream (an async iterable that is not a generator)', async () => {
    const out: string[] = [];
    const p = new Pipeline({ name: 'iter-stream' });
    const words = range(3000).map((i) => `w${i}`);
    p.source(sources.iterable<string>(Readable.from(words, { objectMode: true, highWaterMark: 16 }))).sink(sinks.collect(out));
    await p.run();
    assert.deepEqual(out, words);
  });

  it('fails the run with WEIR_SOURCE_FAILED when an async iterable throws mid-way', async () => {
    async function* failing(): AsyncGenerator<number> {
      for (let i = 0; i < 10; i++) {
        await sleep(1);
        yield i;
      }
      throw new Error('upstream broke at 10');
    }
    const out: number[] = [];
    const p = new Pipeline({ name: 'iter-async-throws' });
    p.source(sources.iterable(failing())).sink(sinks.collect(out));
    await assert.rejects(p.run(), (e: unknown) => {
      assert.ok(e instanceof WeirError);
      assert.equal(e.code, 'WEIR_SOURCE_FAILED');
      assert.match(e.message, /upstream broke at 10/);
      return true;
    });
    assert.deepEqual(out, range(10), 'what came before the failure was delivered, in order');
  });

  it('fails the run with WEIR_SOURCE_FAILED when a sync generator throws mid-way', async () => {
    function* failing(): Generator<number> {
      yield 1;
      yield 2;
      throw new Error('sync source broke');
    }
    const p = new Pipeline({ name: 'iter-sync-throws' });
    p.source(sources.iterable(failing())).sink(sinks.collect<number>([]));
    await assert.rejects(p.run(), (e: unknown) => e instanceof WeirError && e.code === 'WEIR_SOURCE_FAILED' && /sync source broke/.test(e.message));
  });

  it('stops an endless async iterable: run() resolves with status stopped and the generator is closed', async () => {
    let finalized = false;
    async function* endless(): AsyncGenerator<number> {
      try {
        for (let i = 0; ; i++) {
          if (i % 10 === 0) await sleep(1);
          yield i;
        }
      } finally {
        finalized = true;
      }
    }
    const out: number[] = [];
    const p = new Pipeline({ name: 'iter-endless' });
    p.source(sources.iterable(endless())).sink(sinks.collect(out));
    const running = p.run();
    await waitFor(() => out.length >= 200);
    await p.stop();
    const result = await running;
    assert.equal(result.status, 'stopped');
    assert.ok(out.length >= 200);
    assert.deepEqual(out, range(out.length), 'a gapless prefix, in order');
    const seen = out.length;
    // close() asks the generator to return; one parked on an await gets there at its next yield.
    await waitFor(() => finalized, 1000);
    await sleep(20);
    assert.equal(out.length, seen, 'nothing arrives after the run ended');
  });

  it('stops while an async iterable is parked on an await that never settles', async () => {
    async function* stalls(): AsyncGenerator<number> {
      yield 1;
      yield 2;
      await new Promise<never>(() => {});
      yield 3;
    }
    const out: number[] = [];
    const p = new Pipeline({ name: 'iter-stalled' });
    p.source(sources.iterable(stalls())).sink(sinks.collect(out));
    const running = p.run();
    await waitFor(() => out.length >= 2);
    const stopped = Date.now();
    await p.stop();
    const result = await running;
    assert.equal(result.status, 'stopped');
    assert.ok(Date.now() - stopped < 1500, 'stop() waits for a stalled iterable only briefly (close gives it 500 ms)');
    assert.deepEqual(out, [1, 2]);
  });
});

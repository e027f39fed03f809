import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pipeline, agg, sinks, sources, watermarks, windows, type Sink, type WindowResult } from '../src/index.js';

describe('job runtime', () => {
  it('chains map, filter, flatMap and union, keeping timestamps', async () => {
    const p = new Pipeline({ name: 'chain', batchSize: 3 });
    const out: { v: string; ts: number }[] = [];
    const a = p.source(sources.array([1, 2, 3, 4, 5]), { timestamp: (n) => n * 10, name: 'a' });
    const b = p.source(sources.array([100]), { timestamp: () => 7, name: 'b' });
    const timestamps: number[] = [];
    a.filter((n) => n % 2 === 1)
      .flatMap((n) => [n, -n])
      .union(b)
      .map((n) => String(n))
      .sink({
        name: 'rec',
        write(items, ts) {
          items.forEach((v, i) => out.push({ v, ts: ts[i] }));
          timestamps.push(...ts);
        },
      });
    await p.run();
    const sorted = out.sort((x, y) => x.ts - y.ts || x.v.localeCompare(y.v));
    assert.deepEqual(sorted, [
      { v: '100', ts: 7 },
      { v: '-1', ts: 10 },
      { v: '1', ts: 10 },
      { v: '-3', ts: 30 },
      { v: '3', ts: 30 },
      { v: '-5', ts: 50 },
      { v: '5', ts: 50 },
    ]);
  });

  it('waits for a slow sink: writes are in order and never overlap (backpressure)', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const seen: number[] = [];
    const slow: Sink<number> = {
      name: 'slow',
      async write(items) {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await sleep(2);
        seen.push(...items);
        inFlight--;
      },
    };
    let polledAhead = 0;
    const n = 2000;
    const src = sources.generator((i) => i, { count: n });
    const p = new Pipeline({ name: 'backpressure', batchSize: 100 });
    p.source({ name: 'counting', poll: (max) => {
      if (inFlight > 0) polledAhead++;
      return src.poll(max);
    } }).sink(slow);
    await p.run();
    assert.equal(maxInFlight, 1);
    assert.equal(polledAhead, 0, 'no batch is read while a write is in flight');
    assert.deepEqual(seen, Array.from({ length: n }, (_, i) => i));
  });

  it('stop() ends an endless job gracefully', async () => {
    const p = new Pipeline({ name: 'endless' });
    let count = 0;
    p.source(sources.generator((i) => i)).sink({ name: 'count', write: (items) => void (count += items.length) });
    const running = p.run();
    await sleep(50);
    await p.stop();
    const r = await running;
    assert.equal(r.status, 'stopped');
    assert.ok(count > 0);
    const inCount = p.metrics().find((m) => m.name === 'weir_records_in_total' && m.labels.step === 'sink:count')!.value;
    assert.equal(inCount, count);
  });

  it('an idle input stops holding back the watermark of a union', async () => {
    // `quiet` never produces; without idleness the union's watermark would stay at -Infinity.
    const results: WindowResult<string, number>[] = [];
    const p = new Pipeline({ name: 'idle-union' });
    const busy = p.source(sources.array(Array.from({ length: 50 }, (_, i) => ({ k: 'x', ts: i * 100 }))), {
      timestamp: (e) => e.ts,
      name: 'busy',
    });
    const neverEnding = (async function* () {
      await new Promise(() => {}); // parks forever
      yield { k: 'never', ts: 0 };
    })();
    const quiet = p.source(sources.iterable(neverEnding), {
      timestamp: (e) => e.ts,
      watermarks: watermarks.ascending({ idleTimeout: '50ms' }),
      name: 'quiet',
    });
    busy.union(quiet).keyBy((e) => e.k).window(windows.tumbling(1000)).aggregate(agg.count()).sink(sinks.collect(results));
    const running = p.run();
    // Up to 10 s on a loaded machine (CI runs test files side by side); usually ~100 ms.
    for (let i = 0; i < 1000 && results.length < 5; i++) await sleep(10);
    await p.stop();
    await running;
    // busy ended (+Infinity) and quiet is idle, so every window fires although quiet never spoke.
    assert.deepEqual(results.map((r) => [r.start, r.value]), [[0, 10], [1000, 10], [2000, 10], [3000, 10], [4000, 10]]);
    assert.equal(p.metrics().find((m) => m.labels.step === 'quiet' && m.name === 'weir_records_in_total')!.value, 0);
  });

  it('hands the results of a big end-of-input firing on in bounded batches', async () => {
    const sizes: number[] = [];
    const p = new Pipeline({ name: 'big-fire' });
    p.source(sources.generator((i) => ({ k: i, ts: i }), { count: 20_000 }), { timestamp: (e) => e.ts })
      .keyBy((e) => e.k)
      .window(windows.tumbling(1_000_000))
      .aggregate(agg.count())
      .sink({ name: 'sizes', write: (items) => void sizes.push(items.length) });
    await p.run();
    assert.equal(sizes.reduce((a, b) => a + b, 0), 20_000);
    assert.ok(sizes.length >= 5 && Math.max(...sizes) <= 4096, `batches: ${sizes.join(',')}`);
  });

  it('prints a progress line', async () => {
    const lines: string[] = [];
    const p = new Pipeline({ name: 'progress', progress: { interval: '10ms', write: (l) => lines.push(l) } });
    p.source(sources.generator((i) => i, { count: 10_000 })).sink({ name: 'null', write: () => {} });
    await p.run();
    const last = lines.at(-1)!;
    assert.match(last, /^\[progress\] .*in 10,000 +out 10,000/);
  });
});

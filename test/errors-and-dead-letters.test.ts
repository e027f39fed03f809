import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Pipeline, WeirError, agg, sinks, sources, windows, type DeadLetter } from '../src/index.js';

interface Ev { id: number; ts: unknown; v?: number; k?: string }

async function rejection(p: Pipeline): Promise<WeirError> {
  try {
    await p.run();
  } catch (e) {
    assert.ok(e instanceof WeirError, `expected a WeirError, got ${String(e)}`);
    return e;
  }
  assert.fail('the run should have failed');
}

describe('bad records', () => {
  it('fails on a timestamp that is not a finite number, naming the step and the record', async () => {
    const p = new Pipeline({ name: 'bad-ts' });
    p.source(sources.array<Ev>([{ id: 1, ts: 1 }, { id: 2, ts: 'soon' }]), { timestamp: (e) => e.ts as number, name: 'events' }).sink(sinks.collect<Ev>([]));
    const e = await rejection(p);
    assert.equal(e.code, 'WEIR_TIMESTAMP_INVALID');
    assert.equal(e.step, 'events');
    assert.deepEqual(e.record, { id: 2, ts: 'soon' });
    assert.match(e.message, /\[events\].*"soon".*"id":2/);
  });

  it('fails when a user function throws, naming the operator', async () => {
    const p = new Pipeline({ name: 'bad-map' });
    p.source(sources.array<Ev>([{ id: 1, ts: 1 }, { id: 2, ts: 2 }]), { timestamp: (e) => e.ts as number })
      .map((e) => {
        if (e.id === 2) throw new Error('boom');
        return e;
      }, { name: 'enrich' })
      .sink(sinks.collect<Ev>([]));
    const e = await rejection(p);
    assert.equal(e.code, 'WEIR_USER_FUNCTION_FAILED');
    assert.equal(e.step, 'enrich');
    assert.deepEqual(e.record, { id: 2, ts: 2 });
    assert.match(e.message, /boom/);
    assert.equal((e.cause as Error).message, 'boom');
  });

  it('sends every bad record to the dead-letter sink with its reason, and loses nothing', async () => {
    const dead: DeadLetter[] = [];
    const out: { key: string; value: number }[] = [];
    const input: Ev[] = [
      { id: 1, ts: 1, v: 1, k: 'a' },
      { id: 2, ts: NaN, v: 1, k: 'a' },
      { id: 3, ts: 2, v: -1, k: 'a' },
      { id: 4, ts: 3, v: 1 },
      { id: 5, ts: 4, v: 2, k: 'b' },
      { id: 6, ts: 5, v: 1, k: 'a' },
    ];
    const p = new Pipeline({ name: 'dlq' });
    p.source(sources.array(input), { timestamp: (e) => e.ts as number, onError: { deadLetter: sinks.collect(dead) }, name: 'events' })
      .filter((e) => {
        if (e.v! < 0) throw new RangeError('negative');
        return true;
      }, { name: 'positive' })
      .keyBy((e) => e.k as string)
      .window(windows.tumbling(100))
      .aggregate(agg.sum((e) => e.v!), { name: 'sum' })
      .sink(sinks.collect(out));
    const r = await p.run();
    assert.equal(r.status, 'finished');
    assert.deepEqual(out.sort((x, y) => x.key.localeCompare(y.key)), [
      { key: 'a', start: 0, end: 100, value: 2 },
      { key: 'b', start: 0, end: 100, value: 2 },
    ]);
    assert.deepEqual(dead.map((d) => [d.code, d.step, d.source, (d.record as Ev).id]), [
      ['WEIR_TIMESTAMP_INVALID', 'events', 'events', 2],
      ['WEIR_USER_FUNCTION_FAILED', 'positive', 'events', 3],
      ['WEIR_KEY_INVALID', 'sum', 'events', 4],
    ]);
    assert.match(dead[1].reason, /negative/);
    const summed = out.reduce((n, r) => n + r.value, 0);
    assert.equal(summed, 4, 'the good records, all of them, counted once');
    const counted = p.metrics().filter((m) => m.name === 'weir_dead_letters_total').reduce((s, m) => s + m.value, 0);
    assert.equal(counted, 3);
  });
});

describe('failures when a window fires', () => {
  const events = [
    { k: 'a', ts: 1 },
    { k: 'b', ts: 2 },
    { k: 'a', ts: 15 },
  ];
  it('fails with the window as the record when a window process function throws', async () => {
    const p = new Pipeline({ name: 'bad-window-fn' });
    p.source(sources.array(events), { timestamp: (e) => e.ts })
      .keyBy((e) => e.k)
      .window(windows.tumbling(10))
      .process((els, w) => {
        if (w.key === 'b') throw new Error('no b allowed');
        return els.length;
      }, { name: 'summarize' })
      .sink(sinks.collect<number>([]));
    const e = await rejection(p);
    assert.equal(e.code, 'WEIR_USER_FUNCTION_FAILED');
    assert.equal(e.step, 'summarize');
    assert.deepEqual(e.record, { key: 'b', start: 0, end: 10 });
    assert.match(e.message, /no b allowed/);
  });

  it('dead-letters a window whose merge throws and keeps the others', async () => {
    const dead: DeadLetter[] = [];
    const out: { key: string; start: number; value: number }[] = [];
    const fragile = {
      create: () => ({ n: 0 }),
      add: (a: { n: number }) => ({ n: a.n + 1 }),
      merge: (a: { n: number }, b: { n: number }) => {
        if (a.n + b.n > 1) throw new Error('merge overflow');
        return { n: a.n + b.n };
      },
      result: (a: { n: number }) => a.n,
    };
    const p = new Pipeline({ name: 'bad-merge' });
    p.source(sources.array(events), { timestamp: (e) => e.ts, onError: { deadLetter: sinks.collect(dead) } })
      .keyBy((e) => e.k)
      .window(windows.sliding({ size: 20, slide: 10 }))
      .aggregate(fragile, { name: 'fragile' })
      .sink(sinks.collect(out));
    await p.run();
    // a has one record in [0,10) and one in [10,20): merging them for [0,20) throws.
    assert.deepEqual(dead.map((d) => [d.step, d.record]), [['fragile', { key: 'a', start: 0, end: 20 }]]);
    assert.ok(out.every((r) => !(r.key === 'a' && r.start === 0)));
    assert.ok(out.some((r) => r.key === 'b' && r.start === 0 && r.value === 1));
  });
});

describe('plan and job errors', () => {
  it('refuses a pipeline without a sink', async () => {
    const p = new Pipeline({ name: 'no-sink' });
    p.source(sources.array([1]));
    const e = await rejection(p);
    assert.equal(e.code, 'WEIR_INVALID_PLAN');
  });

  it('refuses a stream that ends nowhere, naming the step', async () => {
    const p = new Pipeline({ name: 'dangling' });
    const s = p.source(sources.array([1]));
    s.sink(sinks.collect<number>([]));
    s.map((x) => x * 2, { name: 'doubled' });
    const e = await rejection(p);
    assert.equal(e.code, 'WEIR_INVALID_PLAN');
    assert.match(e.message, /doubled goes nowhere/);
  });

  it('gives default step names that are unique, and refuses duplicate names given by the user', () => {
    const p = new Pipeline({ name: 'names' });
    const a = p.source(sources.array([1]));
    const b = p.source(sources.array([2]));
    a.sink(sinks.collect<number>([]));
    b.sink(sinks.collect<number>([]));
    assert.deepEqual(p.plan.nodes.map((n) => n.name), ['source:array(1)', 'source:array(1)#1', 'sink:collect', 'sink:collect#3']);
    assert.throws(() => a.map((x) => x, { name: 'sink:collect' }), (e: unknown) => e instanceof WeirError && e.code === 'WEIR_INVALID_PLAN');
  });

  it('refuses to run twice and to extend a running pipeline', async () => {
    const p = new Pipeline({ name: 'twice' });
    const s = p.source(sources.array([1, 2]));
    s.sink(sinks.collect<number>([]));
    await p.run();
    assert.throws(() => p.run(), (e: unknown) => e instanceof WeirError && e.code === 'WEIR_JOB_STATE');
    assert.throws(() => s.map((x) => x + 1), (e: unknown) => e instanceof WeirError && e.code === 'WEIR_INVALID_PLAN');
  });

  it('rejects bad durations and window shapes up front', () => {
    assert.throws(() => windows.tumbling('5 minutes' as never), (e: unknown) => e instanceof WeirError && e.code === 'WEIR_INVALID_DURATION');
    assert.throws(() => windows.sliding({ size: '1m', slide: '2m' }), (e: unknown) => e instanceof WeirError && e.code === 'WEIR_INVALID_ARGUMENT');
    assert.throws(() => new Pipeline({ name: '' }), (e: unknown) => e instanceof WeirError && e.code === 'WEIR_INVALID_ARGUMENT');
  });

  it('fails the run when a sink cannot open, and closes what was opened', async () => {
    const p = new Pipeline({ name: 'bad-open' });
    let closed = 0;
    const s = p.source(sources.array([1, 2, 3]));
    s.sink({ name: 'fine', write: () => {}, close: () => void closed++ });
    s.sink({ name: 'broken', open: () => Promise.reject(new Error('no such table')), write: () => {} });
    const e = await rejection(p);
    assert.equal(e.code, 'WEIR_SINK_FAILED');
    assert.equal(e.step, 'sink:broken');
    assert.match(e.message, /no such table/);
    assert.equal(closed, 1);
  });

  it('fails the run when a sink fails, with the sink named', async () => {
    const p = new Pipeline({ name: 'bad-sink' });
    p.source(sources.array([1, 2, 3])).sink({ name: 'flaky', write: async () => Promise.reject(new Error('disk full')) });
    const e = await rejection(p);
    assert.equal(e.code, 'WEIR_SINK_FAILED');
    assert.equal(e.step, 'sink:flaky');
    assert.match(e.message, /disk full/);
  });
});

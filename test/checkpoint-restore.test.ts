import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Pipeline, agg, state, watermarks, windows, type Collector } from '../src/index.js';
import { TestDriver, testInput, testOutput, type TestCheckpoint, type TestInput, type TestOutput } from '../src/testing/index.js';

interface Ev { k: string; t: number; v: number }
type Out = { branch: string; data: unknown };

/** One job with every stateful operator: tumbling (with lateness and late output), sliding, sessions, a process function. */
function build(): { p: Pipeline; input: TestInput<Ev>; out: TestOutput<Out>; late: TestOutput<Ev> } {
  const p = new Pipeline({ name: 'restore-me' });
  const input = testInput<Ev>('events');
  const out = testOutput<Out>('out');
  const late = testOutput<Ev>('late');
  const events = p.source(input, { timestamp: (e) => e.t, watermarks: watermarks.none() });
  const keyed = events.keyBy((e) => e.k);
  const tumbling = keyed.window(windows.tumbling(10)).allowedLateness(5).lateOutput(late).aggregate(agg.sum((e) => e.v), { name: 'tumbling' });
  const sliding = keyed.window(windows.sliding({ size: 12, slide: 3 })).aggregate(agg.avg((e) => e.v), { name: 'sliding' });
  const sessions = keyed.window(windows.session({ gap: 4 })).allowedLateness(3).aggregate(agg.count(), { name: 'sessions' });
  const running = keyed.process(
    {
      state: { total: state.value(0), seen: state.list<number>(), byV: state.map<number, number>() },
      processElement(e, ctx, out: Collector<Out>) {
        ctx.state.total.set(ctx.state.total.get() + e.v);
        ctx.state.seen.add(e.t);
        ctx.state.byV.set(e.v, (ctx.state.byV.get(e.v) ?? 0) + 1);
        ctx.timers.eventTime(e.t + 7);
        ctx.timers.processingTime(ctx.timers.now() + 50);
      },
      onTimer(time, ctx, out) {
        out.emit({ branch: `timer-${ctx.timeDomain}`, data: [ctx.key, time, ctx.state.total.get(), ctx.state.seen.get().length, ctx.state.byV.size] });
        if (ctx.timeDomain === 'event') ctx.state.seen.update(ctx.state.seen.get().filter((t) => t > time - 10));
      },
    },
    { name: 'running' },
  );
  tumbling.map((r): Out => ({ branch: 'tumbling', data: r })).union(
    sliding.map((r): Out => ({ branch: 'sliding', data: r })),
    sessions.map((r): Out => ({ branch: 'sessions', data: r })),
    running,
  ).sink(out);
  return { p, input, out, late };
}

type Step = { send: Ev[] } | { wm: number } | { ptime: number };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 5, arbitrary: fc.array(fc.record({ k: fc.constantFrom('a', 'b', 'c'), t: fc.integer({ min: 0, max: 80 }), v: fc.integer({ min: -5, max: 9 }) }), { minLength: 1, maxLength: 6 }).map((send) => ({ send })) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 90 }).map((wm) => ({ wm })) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 60 }).map((ptime) => ({ ptime })) },
);

function apply(d: TestDriver, input: TestInput<Ev>, step: Step): void {
  if ('send' in step) d.send(input, step.send);
  else if ('wm' in step) d.advanceWatermark(step.wm);
  else d.advanceProcessingTime(step.ptime);
}

/** What one step emitted, in a canonical order: the order of results fired together is not part of the contract. */
function emitted(job: { out: TestOutput<Out>; late: TestOutput<Ev> }): string[] {
  return [...job.out.take().map((o) => `out ${JSON.stringify(o)}`), ...job.late.take().map((e) => `late ${JSON.stringify(e)}`)].sort();
}

describe('checkpoint and restore', () => {
  it('a job restarted from its checkpoints, any number of times, emits exactly what a straight run emits, step by step', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb, { minLength: 1, maxLength: 40 }), fc.array(fc.nat(), { maxLength: 4 }), fc.array(fc.nat(), { maxLength: 6 }), async (steps, rawCuts, rawMarks) => {
        // The straight run: what each step emitted.
        const straight = build();
        const d0 = await TestDriver.create(straight.p);
        const expected: string[][] = [];
        for (const s of steps) {
          apply(d0, straight.input, s);
          expected.push(emitted(straight));
        }
        d0.endInput();
        expected.push(emitted(straight));
        await d0.close();

        // The same steps, with a checkpoint + "crash" + restore into a fresh pipeline at each cut, and
        // checkpoints the job goes on after (incremental: the next one holds only what changed since).
        const cuts = new Set(rawCuts.map((c) => c % (steps.length + 1)));
        const marks = new Set(rawMarks.map((c) => c % (steps.length + 1)));
        const actual: string[][] = [];
        let job = build();
        let d = await TestDriver.create(job.p);
        let time = 0;
        for (let i = 0; i < steps.length; i++) {
          if (marks.has(i) && !cuts.has(i)) d.checkpoint();
          if (cuts.has(i)) {
            const cp: TestCheckpoint = d.checkpoint();
            await d.close();
            job = build();
            d = await TestDriver.create(job.p, { restoreFrom: cp, startTime: time });
          }
          apply(d, job.input, steps[i]);
          if ('ptime' in steps[i]) time += (steps[i] as { ptime: number }).ptime;
          actual.push(emitted(job));
        }
        d.endInput();
        actual.push(emitted(job));
        await d.close();

        assert.deepEqual(actual, expected);
      }),
      { numRuns: Number(process.env.FC_NUM_RUNS ?? 150) },
    );
  });

  it('restores the position of each input', async () => {
    const a = build();
    const d = await TestDriver.create(a.p);
    d.send(a.input, [{ k: 'a', t: 1, v: 1 }, { k: 'a', t: 2, v: 1 }]);
    const cp = d.checkpoint();
    await d.close();
    const b = build();
    const d2 = await TestDriver.create(b.p, { restoreFrom: cp });
    assert.equal(b.input.sent, 2);
    await d2.close();
  });
});

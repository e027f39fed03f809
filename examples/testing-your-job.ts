/**
 * Testing your own job with `weir/testing`: the TestDriver runs a pipeline by hand. You push records,
 * move the watermark and processing time, and read what came out; nothing depends on the wall clock.
 *
 * Put the job's topology in a function that takes its source, so production passes a real one
 * (`sources.jsonl(...)`, Kafka later) and a test passes a `testInput`.
 */
import assert from 'node:assert/strict';
import { Pipeline, agg, state, watermarks, windows, type Source, type WatermarkStrategy } from 'weir';
import { TestDriver, testInput, testOutput } from 'weir/testing';

interface Click {
  user: string;
  page: string;
  ts: number;
}
interface Reminder {
  user: string;
  cartAt: number;
}

const REMIND_AFTER = 30 * 60_000;

/** The job under test: clicks per user per minute, and a reminder 30 minutes after an abandoned cart. */
function cartJob(p: Pipeline, clicks: Source<Click>, opts: { watermarks?: WatermarkStrategy } = {}) {
  const stream = p.source(clicks, { timestamp: (c) => c.ts, watermarks: opts.watermarks ?? watermarks.boundedOutOfOrderness('5s') });
  const perMinute = stream.keyBy((c) => c.user).window(windows.tumbling('1m')).aggregate(agg.count(), { name: 'clicks-per-minute' });
  const reminders = stream.keyBy((c) => c.user).process(
    {
      // The processing time at which the reminder is due (0: none pending).
      state: { due: state.value(0), cartAt: state.value(0) },
      processElement(c, ctx): Reminder | void {
        if (c.page === '/cart') {
          const due = ctx.timers.now() + REMIND_AFTER;
          ctx.timers.processingTime(due);
          ctx.state.due.set(due);
          ctx.state.cartAt.set(c.ts);
        } else if (c.page === '/checkout' && ctx.state.due.get() !== 0) {
          ctx.timers.deleteProcessingTime(ctx.state.due.get());
          ctx.state.due.clear();
        }
      },
      onTimer(_time, ctx): Reminder | void {
        const cartAt = ctx.state.cartAt.get();
        ctx.state.due.clear();
        return { user: ctx.key, cartAt };
      },
    },
    { name: 'cart-reminder' },
  );
  return { perMinute, reminders };
}

/** A tiny test runner, so this file runs with plain `node` (use node:test or your runner of choice). */
async function check(name: string, body: () => Promise<void>): Promise<void> {
  await body();
  console.log(`ok  ${name}`);
}

await check('a window fires when the watermark reaches its end - 1, and a late click is counted as dropped', async () => {
  const p = new Pipeline({ name: 'cart-job-test' });
  const clicks = testInput<Click>('clicks');
  const counts = testOutput<{ key: string; start: number; end: number; value: number }>();
  // watermarks.none(): the test alone moves the watermark.
  cartJob(p, clicks, { watermarks: watermarks.none() }).perMinute.sink(counts);
  const d = await TestDriver.create(p);

  d.send(clicks, [
    { user: 'ann', page: '/home', ts: 1_000 },
    { user: 'ann', page: '/shoes', ts: 30_000 },
    { user: 'bob', page: '/home', ts: 65_000 },
  ]);
  d.advanceWatermark(59_998);
  assert.deepEqual(counts.take(), [], 'nothing before the watermark reaches 59 999');
  d.advanceWatermark(59_999);
  assert.deepEqual(counts.take(), [{ key: 'ann', start: 0, end: 60_000, value: 2 }]);

  d.send(clicks, [{ user: 'ann', page: '/late', ts: 40_000 }]); // its window has fired
  const late = d.metrics().find((m) => m.name === 'weir_late_records_total' && m.labels.outcome === 'dropped');
  assert.equal(late?.value, 1);

  d.endInput(); // +Infinity: every remaining window fires
  assert.deepEqual(counts.take(), [{ key: 'bob', start: 60_000, end: 120_000, value: 1 }]);
  await d.close();
});

await check('the bounded-out-of-orderness watermark of the real job fires windows as clicks arrive', async () => {
  const p = new Pipeline({ name: 'cart-job-watermarks' });
  const clicks = testInput<Click>('clicks');
  const counts = testOutput<{ key: string; value: number }>();
  cartJob(p, clicks).perMinute.sink(counts);
  const d = await TestDriver.create(p);

  d.send(clicks, [{ user: 'ann', page: '/home', ts: 10_000 }]);
  d.send(clicks, [{ user: 'ann', page: '/home', ts: 64_000 }]); // watermark 64 000 - 5 000 - 1: not yet
  assert.deepEqual(counts.take(), []);
  d.send(clicks, [{ user: 'cat', page: '/home', ts: 65_000 }]); // watermark 59 999: [0, 60 000) fires
  assert.deepEqual(counts.take(), [{ key: 'ann', start: 0, end: 60_000, value: 1 }]);
  await d.close();
});

await check('an abandoned cart gets a reminder after 30 minutes of processing time; a checkout cancels it', async () => {
  const p = new Pipeline({ name: 'cart-job-reminders' });
  const clicks = testInput<Click>('clicks');
  const reminders = testOutput<Reminder>();
  cartJob(p, clicks).reminders.sink(reminders);
  const d = await TestDriver.create(p, { startTime: 0 }); // processing time starts at 0 and moves only when told

  d.send(clicks, [
    { user: 'ann', page: '/cart', ts: 1_000 },
    { user: 'bob', page: '/cart', ts: 2_000 },
  ]);
  d.advanceProcessingTime(10 * 60_000);
  d.send(clicks, [{ user: 'bob', page: '/checkout', ts: 600_000 }]);
  d.advanceProcessingTime(REMIND_AFTER - 10 * 60_000 - 1);
  assert.deepEqual(reminders.take(), [], 'not due yet');
  d.advanceProcessingTime(1);
  assert.deepEqual(reminders.take(), [{ user: 'ann', cartAt: 1_000 }], 'ann only: bob checked out');
  d.advanceProcessingTime(60 * 60_000);
  assert.deepEqual(reminders.take(), []);
  await d.close();
});

console.log('all job tests passed');

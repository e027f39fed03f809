/**
 * card-features: a stream of card transactions becomes per-card features for a fraud model, plus
 * alerts. (`npm start` runs examples/fraud-scoring/, which scores such features with a model.)
 *
 *   transactions ─ filter ─ keyBy(card) ─┬─ sliding 5m/1m: avg amount ─── map ─────┐
 *                                        ├─ sliding 5m/1m: count + max ─ flatMap ──┴─ union ─ features
 *                                        └─ process: > $3,000 spent within 1 minute ─ alerts
 *   transactions too late for every window ─ late output
 *
 * The input is synthetic and seeded (examples/data/card-transactions.ts), so a run is deterministic:
 * `node dist/examples/card-features.js 7` runs seed 7 (default 42).
 */
import { Pipeline, agg, sinks, sources, state, watermarks, windows, type Aggregator, type Collector } from 'weir';
import { cardTransactions, type Txn } from './data/card-transactions.js';

const SEED = Number(process.argv[2] ?? 42);
const TRANSACTIONS = 500_000;
const ALERT_SPEND = 3_000; // dollars...
const ALERT_WITHIN = 60_000; // ...spent within this many ms of event time

/** One row for the feature store: a feature of a card over the 5 minutes before `windowEnd`. */
interface Feature {
  card: string;
  feature: 'avg_amount_5m' | 'txn_count_5m' | 'max_amount_5m';
  value: number;
  windowEnd: number;
}
interface Alert {
  card: string;
  at: number;
  spend: number;
  txns: number;
}

// A custom aggregator: count and max in one pass. `merge` lets the sliding window keep one
// accumulator per card per 1-minute slice and merge five of them per window, instead of adding
// every transaction to five windows.
const countAndMax: Aggregator<Txn, { count: number; max: number }, { count: number; max: number }> = {
  create: () => ({ count: 0, max: -Infinity }),
  add: (a, t) => {
    a.count += 1;
    a.max = Math.max(a.max, t.amount);
    return a;
  },
  merge: (a, b) => {
    a.count += b.count;
    a.max = Math.max(a.max, b.max);
    return a;
  },
  result: (a) => ({ count: a.count, max: a.max }),
};

const features: Feature[] = [];
const alerts: Alert[] = [];
const late: Txn[] = [];

const p = new Pipeline({ name: 'card-features', progress: { interval: '500ms' } });

const purchases = p
  .source(sources.generator(cardTransactions(), { count: TRANSACTIONS, seed: SEED }), {
    name: 'transactions',
    timestamp: (t) => t.ts,
    watermarks: watermarks.boundedOutOfOrderness('5s'), // transactions arrive up to 5 s out of order
  })
  .filter((t) => t.amount > 0, { name: 'purchases' }); // drop refunds and $0 card checks

const byCard = purchases.keyBy((t) => t.card).window(windows.sliding({ size: '5m', slide: '1m' }));

const avgAmount = byCard
  .lateOutput(sinks.collect(late, { name: 'late' })) // too late for every window: kept, not lost
  .aggregate(agg.avg((t) => t.amount), { name: 'avg-amount' })
  .map((r): Feature => ({ card: r.key, feature: 'avg_amount_5m', value: r.value, windowEnd: r.end }));

// The same windows again with the custom aggregator. Its late elements are the very ones above, so
// this window has no late output: it drops them and counts them in a metric.
const countMax = byCard.aggregate(countAndMax, { name: 'count-max' }).flatMap((r): Feature[] => [
  { card: r.key, feature: 'txn_count_5m', value: r.value.count, windowEnd: r.end },
  { card: r.key, feature: 'max_amount_5m', value: r.value.max, windowEnd: r.end },
]);

avgAmount.union(countMax).sink(sinks.collect(features, { name: 'features' }));

// Spend velocity: per card, the purchases of the last minute in list state. Each purchase sets an
// event-time timer at its own timestamp. The timer fires when the watermark passes that time, so
// every on-time purchase up to it has arrived: the sum does not depend on the arrival order.
purchases
  .keyBy((t) => t.card)
  .process(
    {
      state: { recent: state.list<{ ts: number; amount: number }>(), lastAlert: state.value(-Infinity) },
      processElement(t, ctx) {
        ctx.state.recent.add({ ts: t.ts, amount: t.amount });
        ctx.timers.eventTime(t.ts);
      },
      onTimer(time, ctx, out: Collector<Alert>) {
        let spend = 0;
        let txns = 0;
        let expired = 0;
        for (const r of ctx.state.recent.get()) {
          if (r.ts <= time - ALERT_WITHIN) expired++;
          else if (r.ts <= time) (spend += r.amount), txns++;
        }
        if (expired > 0) ctx.state.recent.update(ctx.state.recent.get().filter((r) => r.ts > time - ALERT_WITHIN)); // forget them
        // One alert per burst: not again within a minute of the last one.
        if (spend > ALERT_SPEND && time - ctx.state.lastAlert.get() > ALERT_WITHIN) {
          ctx.state.lastAlert.set(time);
          out.emit({ card: ctx.key, at: time, spend: Math.round(spend * 100) / 100, txns });
        }
      },
    },
    { name: 'spend-velocity' },
  )
  .sink(sinks.collect(alerts, { name: 'alerts' }));

const result = await p.run();

// ---- summary ----
const metric = (name: string, labels: Record<string, string>) =>
  result.metrics.filter((m) => m.name === name && Object.entries(labels).every(([k, v]) => m.labels[k] === v)).reduce((s, m) => s + m.value, 0);
const recordsIn = metric('weir_records_in_total', { step: 'transactions' });
const secs = result.durationMs / 1000;
const cards = new Set(features.map((f) => f.card)).size;
const money = (x: number) => `$${x.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
const clock = (t: number) => new Date(t).toISOString().slice(11, 19);
const n = (x: number) => x.toLocaleString('en-US');

console.log(`
card-features (seed ${SEED}): ${result.status}
  transactions in     ${n(recordsIn)}
  purchases           ${n(metric('weir_records_out_total', { step: 'purchases' }))} (refunds and $0 checks filtered out)
  feature rows        ${n(features.length)} (${n(features.length / 3)} card windows x 3 features, ${n(cards)} cards)
  alerts              ${n(alerts.length)}
  late transactions   ${n(late.length)} to the late output (count-max dropped and counted ${n(metric('weir_late_records_total', { step: 'count-max', outcome: 'dropped' }))})
  throughput          ${n(Math.round(recordsIn / secs))} records/s (${secs.toFixed(2)} s)`);

console.log(`\nfirst alerts (more than ${money(ALERT_SPEND)} within a minute):`);
for (const a of alerts.slice(0, 5)) console.log(`  ${clock(a.at)}  ${a.card}  ${money(a.spend)} in ${a.txns} purchases`);

// The features of the card with the biggest alert, before, during and after it: the burst shows.
const top = alerts.reduce<Alert | undefined>((best, a) => (best === undefined || a.spend > best.spend ? a : best), undefined);
if (top) {
  console.log(`\nfeatures of ${top.card} around its alert at ${clock(top.at)} (5-minute windows, every minute):`);
  console.log('  window               avg amount   count   max amount');
  const value = (end: number, name: Feature['feature']) => features.find((f) => f.card === top.card && f.windowEnd === end && f.feature === name)?.value ?? NaN;
  for (let end = Math.ceil(top.at / 60_000) * 60_000 - 60_000; end <= top.at + 360_000; end += 60_000) {
    const [avg, count, max] = [value(end, 'avg_amount_5m'), value(end, 'txn_count_5m'), value(end, 'max_amount_5m')];
    console.log(`  ${clock(end - 300_000)}-${clock(end)}   ${money(avg).padStart(9)}   ${String(count).padStart(5)}   ${money(max).padStart(10)}`);
  }
}

console.log('\nfirst late transactions (their windows had fired):');
for (const t of late.slice(0, 3)) console.log(`  #${t.id}  ${t.card}  ${money(t.amount)}  event time ${clock(t.ts)}`);

/**
 * Type-level tests of the drift DSL: compiled by tsc (a wrong `@ts-expect-error` fails the build),
 * never executed.
 */
import { Pipeline, ml, sinks, sources, windows, type DriftReport, type KeyedDriftReport, type Stream } from '../../src/index.js';

interface Txn {
  card: string;
  amount: number;
  merchant: string;
  ts: number;
  tip?: number;
}

type Equals<A, B> = (<X>() => X extends A ? 1 : 2) extends <X>() => X extends B ? 1 : 2 ? true : false;
function assertType<T extends true>(_?: T): void {}

const p = new Pipeline({ name: 'drift-types' });
const txns = p.source(sources.array<Txn>([]), { timestamp: (t) => t.ts });
const training = [1, 2, 3];

// A numeric field by name; unkeyed streams give DriftReport, keyed ones KeyedDriftReport<K>.
const byField = txns.drift(ml.ks({ feature: 'amount', reference: training, window: '1m', alpha: 0.01 }));
assertType<Equals<typeof byField, Stream<DriftReport>>>();
const perCard = txns.keyBy((t) => t.card).drift(ml.psi({ feature: 'amount', reference: 'first-window', window: windows.tumbling('1h') }));
assertType<Equals<typeof perCard, Stream<KeyedDriftReport<string>>>>();
perCard.map((r) => r.key.toUpperCase());
// An optional numeric field is fine (missing values go to the dead letters).
txns.drift(ml.psi({ feature: 'tip', reference: { trailing: 3 }, window: { count: 500 } }));
// A function feature: its parameter is the stream's record type.
txns.drift(ml.psi({ feature: (t) => Math.log1p(t.amount), reference: training, window: '5m', bins: 20, thresholds: [0.1, 0.2] }));
// KS and PSI reports share one type: their streams union.
byField.union(txns.drift(ml.psi({ feature: 'amount', reference: training, window: '1m' }))).sink(sinks.collect<DriftReport>([]));
// Narrowing by test.
byField.map((r) => (r.test === 'ks' ? r.pValue : r.psi));
// A reusable spec fits every stream with the field.
const amountDrift = ml.ks({ feature: 'amount', reference: training, window: '1m' });
txns.drift(amountDrift);
p.source(sources.array<{ amount: number; other: string }>([]), { timestamp: () => 0 }).drift(amountDrift);

// @ts-expect-error: no such field
txns.drift(ml.ks({ feature: 'amonut', reference: training, window: '1m' }));
// @ts-expect-error: not a numeric field
txns.drift(ml.ks({ feature: 'merchant', reference: training, window: '1m' }));
// @ts-expect-error: the function reads a field Txn does not have
txns.drift(ml.psi({ feature: (t) => t.price, reference: training, window: '1m' }));
// @ts-expect-error: a function feature must return a number
txns.drift(ml.psi({ feature: (t) => t.merchant, reference: training, window: '1m' }));
// @ts-expect-error: not a duration
txns.drift(ml.ks({ feature: 'amount', reference: training, window: '1 minute' }));
// @ts-expect-error: unknown reference mode
txns.drift(ml.ks({ feature: 'amount', reference: 'last-window', window: '1m' }));
// @ts-expect-error: the late output receives the stream's records
txns.drift(ml.ks({ feature: 'amount', reference: training, window: '1m' }), { lateOutput: sinks.collect<string>([]) });
// @ts-expect-error: unkeyed reports have no key
byField.map((r) => r.key);

/**
 * Type-level tests: compiled by tsc inside `npm test` (a wrong `@ts-expect-error` fails the build),
 * never executed. They pin how types flow through the DSL.
 */
import { Pipeline, agg, sinks, sources, state, windows, type Aggregator, type Collector, type Stream, type WindowResult } from '../../src/index.js';

interface Txn {
  card: string;
  amount: number;
  merchant: string;
  ts: number;
}

type Equals<A, B> = (<X>() => X extends A ? 1 : 2) extends <X>() => X extends B ? 1 : 2 ? true : false;
function assertType<T extends true>(_?: T): void {}

const p = new Pipeline({ name: 'types' });
const txns = p.source(sources.array<Txn>([]), { timestamp: (t) => t.ts });
assertType<Equals<typeof txns, Stream<Txn>>>();

// map changes the element type; filter with a type guard narrows it.
const amounts = txns.map((t) => t.amount);
assertType<Equals<typeof amounts, Stream<number>>>();
const withNote = txns.map((t) => ({ ...t, note: t.amount > 10 ? 'big' : undefined }));
const noted = withNote.filter((t): t is typeof t & { note: string } => t.note !== undefined);
noted.map((t) => t.note.toUpperCase());
// @ts-expect-error: without the guard, note may be undefined
withNote.map((t) => t.note.toUpperCase());
const words = txns.flatMap((t) => t.merchant.split(' '));
assertType<Equals<typeof words, Stream<string>>>();

// keyBy fixes the key type; the aggregator fixes the result type.
const byCard = txns.keyBy((t) => t.card).window(windows.tumbling('1m'));
const avg = byCard.aggregate(agg.avg((t) => t.amount));
assertType<Equals<typeof avg, Stream<WindowResult<string, number>>>>();
const counts = txns.keyBy((t) => t.amount > 10).window(windows.session({ gap: '30s' })).aggregate(agg.count());
assertType<Equals<typeof counts, Stream<WindowResult<boolean, number>>>>();
const biggest = byCard.reduce((a, b) => (a.amount >= b.amount ? a : b));
assertType<Equals<typeof biggest, Stream<WindowResult<string, Txn>>>>();
const summaries = byCard.process((elements, w) => (elements.length > 0 ? { card: w.key, n: elements.length } : undefined));
assertType<Equals<typeof summaries, Stream<{ card: string; n: number }>>>();

// A custom aggregator's result type flows through.
const spread: Aggregator<Txn, { lo: number; hi: number }, [number, number]> = {
  create: () => ({ lo: Infinity, hi: -Infinity }),
  add: (a, t) => ({ lo: Math.min(a.lo, t.amount), hi: Math.max(a.hi, t.amount) }),
  merge: (a, b) => ({ lo: Math.min(a.lo, b.lo), hi: Math.max(a.hi, b.hi) }),
  result: (a) => [a.lo, a.hi],
};
const spreads = byCard.aggregate(spread);
assertType<Equals<typeof spreads, Stream<WindowResult<string, [number, number]>>>>();

// A keyed process function's output type is inferred from what it returns; state handles are typed.
const alerts = txns.keyBy((t) => t.card).process({
  state: { total: state.value(0), recent: state.list<Txn>(), perMerchant: state.map<string, number>() },
  processElement(t, ctx) {
    const total: number = ctx.state.total.get() + t.amount;
    ctx.state.total.set(total);
    ctx.state.recent.add(t);
    ctx.state.perMerchant.set(t.merchant, (ctx.state.perMerchant.get(t.merchant) ?? 0) + 1);
    // @ts-expect-error: value state of number does not take a string
    ctx.state.total.set('x');
    // @ts-expect-error: list state of Txn does not take a number
    ctx.state.recent.add(1);
    // @ts-expect-error: undeclared state
    ctx.state.missing.get();
    const key: string = ctx.key;
    if (total > 100) return { card: key, total };
  },
});
assertType<Equals<typeof alerts, Stream<{ card: string; total: number }>>>();
// With out.emit only, the output type is given explicitly.
const emitted = txns.keyBy((t) => t.card).process<string>({
  processElement(t, _ctx, out) {
    out.emit(t.card);
    // @ts-expect-error: the declared output type is string
    out.emit(t.amount);
  },
});
assertType<Equals<typeof emitted, Stream<string>>>();
// With state and out.emit, annotate the collector: the output type comes from it, state stays inferred.
const counted = txns.keyBy((t) => t.card).process({
  state: { n: state.value(0) },
  processElement(t, ctx, out: Collector<[string, number]>) {
    ctx.state.n.set(ctx.state.n.get() + 1);
    out.emit([t.card, ctx.state.n.get()]);
    // @ts-expect-error: the collector takes tuples
    out.emit(t.card);
  },
});
assertType<Equals<typeof counted, Stream<[string, number]>>>();

// Sinks must accept the stream's type (contravariant: a sink of a supertype is fine).
const outAvg: WindowResult<string, number>[] = [];
avg.sink(sinks.collect(outAvg));
const anything: unknown[] = [];
avg.sink(sinks.collect(anything));
const wrong: WindowResult<string, string>[] = [];
// @ts-expect-error: a sink of the wrong type
avg.sink(sinks.collect(wrong));
const txnSink: Txn[] = [];
// @ts-expect-error: numbers are not transactions
amounts.sink(sinks.collect(txnSink));

// Wrong fields and wrong aggregate inputs are compile errors.
// @ts-expect-error: no such field
txns.map((t) => t.amout);
// @ts-expect-error: sum needs numbers
byCard.aggregate(agg.sum((t) => t.merchant));
// @ts-expect-error: avg needs numbers
byCard.aggregate(agg.avg((t) => t.card));
// @ts-expect-error: keys are primitives (objects would be compared by identity)
txns.keyBy((t) => ({ card: t.card }));
// @ts-expect-error: the late output receives the elements themselves
byCard.lateOutput(sinks.collect(outAvg));
// @ts-expect-error: a union needs streams of the same type
txns.union(amounts);
// @ts-expect-error: durations are ms or strings with a unit
windows.tumbling('5 minutes');
// @ts-expect-error: the timestamp function must return a number
p.source(sources.array<Txn>([]), { timestamp: (t) => t.card });

/**
 * Type-level tests of `score`: compiled by tsc (a wrong `@ts-expect-error` fails the build), never
 * executed. They pin what a scored record looks like and which features are accepted.
 */
import { Pipeline, ml, sinks, sources, type ScoringModel, type Stream } from '../../src/index.js';

interface Txn {
  card: string;
  amount: number;
  velocity: number;
  ts: number;
  tip?: number;
}

type Equals<A, B> = (<X>() => X extends A ? 1 : 2) extends <X>() => X extends B ? 1 : 2 ? true : false;
function assertType<T extends true>(_?: T): void {}

declare const model: ScoringModel;
declare const vectorModel: ScoringModel<number[]>;

const p = new Pipeline({ name: 'scoring-types' });
const txns = p.source(sources.array<Txn>([]), { timestamp: (t) => t.ts });

// Defaults: `score: number` and `modelVersion: string` are added, the record's fields stay.
const scored = txns.score(model, { features: ['amount', 'velocity'] });
scored.map((r) => r.card.toUpperCase() + r.score.toFixed(2) + r.modelVersion.length);
scored.keyBy((r) => r.card);

// Named output and version fields.
const fraud = txns.score(model, { features: ['amount'], output: 'fraud', versionField: 'v' });
fraud.map((r) => {
  const f: number = r.fraud;
  const v: string = r.v;
  // @ts-expect-error -- renamed: there is no `score` field
  void r.score;
  return f + v;
});

// A model with several outputs per row gives arrays.
const probs = txns.score(vectorModel, { features: (t) => [t.amount, Math.log1p(t.velocity)], output: 'probs' });
probs.map((r) => r.probs.reduce((a, b) => a + b, 0));
assertType<Equals<Parameters<Parameters<typeof probs.map>[0]>[0]['probs'], number[]>>();

// A scored stream still goes into a sink of the original record type (sinks are contravariant).
scored.sink(sinks.collect<Txn>([]));
const typed: Stream<Txn & { score: number; modelVersion: string }> = scored;
void typed;

// An optional numeric field may be named (a missing value goes to the dead letters).
txns.score(model, { features: ['tip'] });

// @ts-expect-error -- not a field of Txn
txns.score(model, { features: ['amuont'] });
// @ts-expect-error -- not a numeric field
txns.score(model, { features: ['card'] });
// @ts-expect-error -- the features function must return numbers
txns.score(model, { features: (t) => [t.card] });
// @ts-expect-error -- the fallback score has the model's score type
txns.score(model, { features: ['amount'], fallback: { score: 'none' } });
// @ts-expect-error -- a side output receives the original records
txns.score(model, { features: ['amount'], fallback: { sideOutput: sinks.collect<{ other: string }>([]) } });
txns.score(model, { features: ['amount'], fallback: { sideOutput: sinks.collect<Txn>([]) } });
txns.score(vectorModel, { features: ['amount'], fallback: { score: [0, 1] } });

// ml.fn: the declared score type flows through.
const fn = ml.fn<number[]>((b) => b.toArrays());
txns.score(fn, { features: ['amount'] }).map((r) => r.score.length);
// A swappable ref carries the score type too.
const ref = ml.models.ref(model);
txns.score(ref, { features: ['amount'] }).map((r) => r.score + 1);

/**
 * Shared plumbing of the window tests: engine assigners for a model {@link WindowSpec}, and the
 * aggregations under test, each paired with its naive answer over a window's events.
 */
import { pino } from 'pino';
import { agg, windows, type Aggregator, type MetricSample, type Stream, type WindowAssigner, type WindowedStream } from '../src/index.js';
import type { Ev, Key, WindowSpec } from './reference-model.js';

/** One silent logger for every pipeline of a test file. */
export const silent = pino({ level: 'silent' });

export function assignerOf(spec: WindowSpec): WindowAssigner {
  switch (spec.kind) {
    case 'tumbling':
      return windows.tumbling(spec.size, { offset: spec.offset });
    case 'sliding':
      return windows.sliding({ size: spec.size, slide: spec.slide, offset: spec.offset });
    case 'session':
      return windows.session({ gap: spec.gap });
  }
}

/** What a window step emits in these tests: a WindowResult-shaped record. */
export interface Out {
  readonly key: Key;
  readonly start: number;
  readonly end: number;
  readonly value: unknown;
}

const byNumber = (a: number, b: number) => a - b;

/** A mutating custom aggregator: the ids it has seen (merge appends `b` into `a`). */
export const idsAgg: Aggregator<Ev, { ids: number[] }, number[]> = {
  create: () => ({ ids: [] }),
  add: (a, e) => {
    a.ids.push(e.id);
    return a;
  },
  merge: (a, b) => {
    for (const id of b.ids) a.ids.push(id);
    return a;
  },
  result: (a) => [...a.ids].sort(byNumber),
};

/** An immutable custom aggregator: every call returns a fresh object, nothing is changed in place. */
const spreadAgg: Aggregator<Ev, { readonly n: number; readonly lo: number; readonly hi: number; readonly sq: number }, string> = {
  create: () => ({ n: 0, lo: Infinity, hi: -Infinity, sq: 0 }),
  add: (a, e) => ({ n: a.n + 1, lo: Math.min(a.lo, e.value), hi: Math.max(a.hi, e.value), sq: a.sq + e.value * e.value }),
  merge: (a, b) => ({ n: a.n + b.n, lo: Math.min(a.lo, b.lo), hi: Math.max(a.hi, b.hi), sq: a.sq + b.sq }),
  result: (a) => `${a.n}|${a.hi - a.lo}|${a.sq}`,
};

const sum = (evs: Ev[]) => evs.reduce((s, e) => s + e.value, 0);
/** The largest value; on ties the smallest id — so the answer does not depend on arrival order. */
const better = (a: Ev, b: Ev): Ev => (a.value > b.value || (a.value === b.value && a.id < b.id) ? a : b);

/** Widens a window step's stream to {@link Out} (Stream<T> is invariant in T). */
const asOut = <T extends Out>(s: Stream<T>): Stream<Out> => s as unknown as Stream<Out>;

/** An aggregation under test: how the engine is asked, and the naive answer (undefined: no output). */
export interface AggCase {
  readonly name: string;
  build(ws: WindowedStream<Key, Ev>): Stream<Out>;
  model(events: Ev[]): unknown;
}

export const AGGS: readonly AggCase[] = [
  { name: 'count', build: (ws) => asOut(ws.aggregate(agg.count())), model: (evs) => evs.length },
  { name: 'sum', build: (ws) => asOut(ws.aggregate(agg.sum((e: Ev) => e.value))), model: sum },
  { name: 'min', build: (ws) => asOut(ws.aggregate(agg.min((e: Ev) => e.value))), model: (evs) => Math.min(...evs.map((e) => e.value)) },
  { name: 'max', build: (ws) => asOut(ws.aggregate(agg.max((e: Ev) => e.value))), model: (evs) => Math.max(...evs.map((e) => e.value)) },
  { name: 'avg', build: (ws) => asOut(ws.aggregate(agg.avg((e: Ev) => e.value))), model: (evs) => sum(evs) / evs.length },
  { name: 'custom-ids', build: (ws) => asOut(ws.aggregate(idsAgg)), model: (evs) => evs.map((e) => e.id).sort(byNumber) },
  {
    name: 'custom-immutable',
    build: (ws) => asOut(ws.aggregate(spreadAgg)),
    model: (evs) => {
      const v = evs.map((e) => e.value);
      return `${v.length}|${Math.max(...v) - Math.min(...v)}|${v.reduce((s, x) => s + x * x, 0)}`;
    },
  },
  { name: 'reduce', build: (ws) => asOut(ws.reduce(better)), model: (evs) => evs.reduce(better) },
  {
    // Window `process`: all elements of the window; windows whose size is a multiple of 3 emit nothing.
    name: 'process',
    build: (ws) =>
      asOut(ws.process((els, w) => (els.length % 3 === 0 ? undefined : { key: w.key, start: w.start, end: w.end, value: els.map((e) => e.id).sort(byNumber) }))),
    model: (evs) => (evs.length % 3 === 0 ? undefined : evs.map((e) => e.id).sort(byNumber)),
  },
];

/** Sum of a metric over the samples whose labels include `labels`. */
export function metric(samples: readonly MetricSample[], name: string, labels: Record<string, string>): number {
  let total = 0;
  for (const s of samples) {
    if (s.name !== name) continue;
    if (Object.entries(labels).every(([k, v]) => s.labels[k] === v)) total += s.value;
  }
  return total;
}

/**
 * A naive reference model of the drift operators, written to be obviously correct rather than fast:
 * every event known up front, windows grouped by hand, and each window's exact sample handed to
 * `ml.stats.ks2` / `ml.stats.psi`. The drift tests compare the engine with it.
 */
import { ml } from '../src/index.js';

export interface DriftEv {
  readonly key: string;
  readonly ts: number;
  readonly x: number;
  readonly id: number;
}

export type ModelWindow = { readonly kind: 'tumbling'; readonly size: number; readonly offset: number } | { readonly kind: 'count'; readonly count: number };
export type ModelReference = { readonly kind: 'fixed'; readonly values: readonly number[] } | { readonly kind: 'first-window' } | { readonly kind: 'trailing'; readonly n: number };
export type ModelTest =
  | { readonly test: 'ks'; readonly alpha: number; readonly alternative: 'two-sided' | 'less' | 'greater' }
  | { readonly test: 'psi'; readonly bins: number; readonly thresholds: readonly [number, number] };

export interface ModelSpec {
  readonly keyed: boolean;
  readonly window: ModelWindow;
  readonly reference: ModelReference;
  readonly test: ModelTest;
}

/** The parts of a report the model predicts (what the comparison looks at). */
export interface Expected {
  readonly key: string | undefined;
  readonly start: number;
  readonly end: number;
  readonly test: 'ks' | 'psi';
  readonly statistic: number;
  /** KS p-value, or the PSI. */
  readonly value: number;
  readonly drifted: boolean;
  readonly level: 'none' | 'moderate' | 'major';
  readonly referenceSize: number;
  readonly windowSize: number;
}

const mod = (x: number, m: number): number => ((x % m) + m) % m;

interface Win {
  start: number;
  end: number;
  values: number[];
}

/** The windows of one key, in order: tumbling by start; count windows by arrival, full ones only. */
function windowsOf(events: readonly DriftEv[], w: ModelWindow): Win[] {
  if (w.kind === 'count') {
    const out: Win[] = [];
    for (let i = 0; i + w.count <= events.length; i += w.count) {
      const part = events.slice(i, i + w.count);
      const ts = part.map((e) => e.ts);
      out.push({ start: Math.min(...ts), end: Math.max(...ts) + 1, values: part.map((e) => e.x) });
    }
    return out;
  }
  const byStart = new Map<number, number[]>();
  for (const e of events) {
    const s = e.ts - mod(e.ts - w.offset, w.size);
    if (!byStart.has(s)) byStart.set(s, []);
    byStart.get(s)!.push(e.x);
  }
  return [...byStart.keys()].sort((a, b) => a - b).map((s) => ({ start: s, end: s + w.size, values: byStart.get(s)! }));
}

/** What a drift step over `events` (in stream order, none of them late) reports, sorted by key and start. */
export function expectedReports(events: readonly DriftEv[], spec: ModelSpec): Expected[] {
  const byKey = new Map<string, DriftEv[]>();
  for (const e of events) {
    const k = spec.keyed ? e.key : '';
    if (!byKey.has(k)) byKey.set(k, []);
    byKey.get(k)!.push(e);
  }
  const out: Expected[] = [];
  for (const [key, evs] of byKey) {
    const history: number[][] = [];
    for (const w of windowsOf(evs, spec.window)) {
      let reference: readonly number[] | undefined;
      const r = spec.reference;
      if (r.kind === 'fixed') reference = r.values;
      else if (r.kind === 'first-window') reference = history[0];
      else if (history.length >= r.n) reference = history.slice(-r.n).flat();
      history.push(w.values);
      if (reference === undefined) continue;
      out.push({ key: spec.keyed ? key : undefined, start: w.start, end: w.end, ...test(spec.test, reference, w.values), referenceSize: reference.length, windowSize: w.values.length });
    }
  }
  return sortReports(out);
}

function test(t: ModelTest, reference: readonly number[], window: readonly number[]): Pick<Expected, 'test' | 'statistic' | 'value' | 'drifted' | 'level'> {
  if (t.test === 'ks') {
    const r = ml.stats.ks2(reference, window, { alternative: t.alternative });
    const drifted = r.pValue < t.alpha;
    return { test: 'ks', statistic: r.statistic, value: r.pValue, drifted, level: drifted ? 'major' : 'none' };
  }
  const v = ml.stats.psi(reference, window, { bins: t.bins }).psi;
  const level = v >= t.thresholds[1] ? 'major' : v >= t.thresholds[0] ? 'moderate' : 'none';
  return { test: 'psi', statistic: v, value: v, drifted: level !== 'none', level };
}

/** Reports in a canonical order: by key, then window start. */
export function sortReports<R extends { key?: unknown; start: number }>(reports: readonly R[]): R[] {
  return [...reports].sort((a, b) => String(a.key ?? '').localeCompare(String(b.key ?? '')) || a.start - b.start);
}

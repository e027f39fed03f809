import { WeirError } from '../../errors.js';
import type { FeatureBatch } from './feature-batch.js';
import type { ModelOutput, ScoringModel } from './scoring-model.js';

/**
 * What a batched scorer returns for `rows` rows: one number per row (`Float32Array`, `number[]`, any
 * array-like of length `rows`), `rows × k` numbers row-major for `k` outputs per row, or one array of
 * `k` numbers per row.
 */
export type ScoreBatchResult = ArrayLike<number> | readonly ArrayLike<number>[];

/** Options of {@link fn}. */
export interface FnModelOptions {
  /** For logs and metrics (default `'fn'`). */
  name?: string;
  /** The version scored records carry (default `'1'`). */
  version?: string;
  /** Features per row the scorer expects (rows of another length go to the dead letters). */
  inputWidth?: number;
  /** Outputs per row, when known (else taken from the first result). */
  outputWidth?: number;
  /** Called when the model is disposed (a `ModelRef` replaced it). */
  dispose?: () => void;
}

/**
 * Makes any batched function a model for `score`: it gets a {@link FeatureBatch} (one
 * `Float32Array` of `rows × width` features) and returns the scores, synchronously or as a promise.
 * A throw or a rejection counts as a failed model call (circuit breaker, fallback), as does a result
 * of the wrong length.
 *
 * @example
 * const remote = ml.fn(async (batch) => {
 *   const res = await fetch(url, { method: 'POST', body: JSON.stringify(batch.toArrays()) });
 *   return (await res.json()) as number[];
 * }, { name: 'risk-service', version: '2024-06' });
 * stream.score(remote, { features: ['amount', 'velocity'], batchSize: 512, maxLatency: '20ms' })
 */
export function fn<S extends number | number[] = number>(
  score: (batch: FeatureBatch) => ScoreBatchResult | Promise<ScoreBatchResult>,
  opts: FnModelOptions = {},
): ScoringModel<S> {
  if (typeof score !== 'function') throw new WeirError('WEIR_INVALID_ARGUMENT', 'ml.fn: expected a function (batch) => scores');
  const name = opts.name ?? 'fn';
  const version = opts.version ?? '1';
  let width = opts.outputWidth;
  const onDispose = opts.dispose;
  const checked = (r: ScoreBatchResult, rows: number): ModelOutput => {
    const out = toOutput(r, rows, width, name);
    width ??= out.width;
    return out;
  };
  return {
    name,
    version,
    inputWidth: opts.inputWidth,
    get outputWidth() {
      return width;
    },
    predict(batch: FeatureBatch): ModelOutput | Promise<ModelOutput> {
      const r = score(batch);
      if (r instanceof Promise) return r.then((v) => checked(v, batch.rows));
      return checked(r, batch.rows);
    },
    dispose() {
      onDispose?.();
    },
  };
}

/** Checks a scorer's result against the batch and flattens it (arrays per row are copied into one). */
export function toOutput(r: ScoreBatchResult, rows: number, width: number | undefined, name: string): ModelOutput {
  if (r === null || typeof r !== 'object' || typeof (r as ArrayLike<unknown>).length !== 'number') {
    throw new Error(`${name} returned ${r === null ? 'null' : typeof r}, not an array of scores`);
  }
  const n = r.length;
  if (rows > 0 && n === rows && typeof r[0] === 'object' && r[0] !== null) {
    const perRow = r as readonly ArrayLike<number>[];
    const k = perRow[0].length;
    if (width !== undefined && k !== width) throw new Error(`${name} returned ${k} scores per row, expected ${width}`);
    const values = new Float64Array(rows * k);
    for (let i = 0; i < rows; i++) {
      const row = perRow[i];
      if (row === null || typeof row !== 'object' || row.length !== k) throw new Error(`${name}: row ${i} of its result has ${row?.length ?? 'no'} scores, expected ${k}`);
      for (let j = 0; j < k; j++) values[i * k + j] = row[j];
    }
    return { values, width: k };
  }
  const flat = r as ArrayLike<number>;
  if (rows === 0) return { values: flat, width: width ?? 1 };
  if (n % rows !== 0 || n === 0) throw new Error(`${name} returned ${n} scores for ${rows} rows`);
  const k = n / rows;
  if (width !== undefined && k !== width) throw new Error(`${name} returned ${k} scores per row, expected ${width}`);
  return { values: flat, width: k };
}

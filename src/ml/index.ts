import * as stats from './stats/index.js';
import { ks, psi } from './drift/index.js';
import { fn, models, tfjs } from './scoring/index.js';

/**
 * Machine learning inside the stream. Today: `ml.stats`, the drift statistics (two-sample
 * Kolmogorov–Smirnov as scipy's `ks_2samp`, PSI with reusable bins, a quantile sketch with a stated
 * error bound). Scoring and drift operators build on them.
 *
 * @example
 * import { ml } from 'weir';
 * const { statistic, pValue } = ml.stats.ks2(reference, window);
 * const { psi } = ml.stats.psi(reference, window, { bins: 10 });
 * // drift operators (docs/ml-drift.md):
 * txns.drift(ml.ks({ feature: 'amount', reference: training, window: '1m', alpha: 0.01 }));
 * txns.keyBy((t) => t.card).drift(ml.psi({ feature: 'amount', reference: 'first-window', window: '1h' }));
 * // batched model scoring (docs/ml-scoring.md):
 * const model = await ml.tfjs.load('./models/fraud');   // or ml.fn(async batch => scores), ml.models.ref(...)
 * txns.score(model, { features: ['amount', 'velocity'], output: 'fraud', batchSize: 256 });
 */
export const ml = { stats, ks, psi, tfjs, fn, models } as const;

import * as stats from './stats/index.js';

/**
 * Machine learning inside the stream. Today: `ml.stats`, the drift statistics (two-sample
 * Kolmogorov–Smirnov as scipy's `ks_2samp`, PSI with reusable bins, a quantile sketch with a stated
 * error bound). Scoring and drift operators build on them.
 *
 * @example
 * import { ml } from 'weir';
 * const { statistic, pValue } = ml.stats.ks2(reference, window);
 * const { psi } = ml.stats.psi(reference, window, { bins: 10 });
 */
export const ml = { stats } as const;

/**
 * Pure drift statistics, exported as `ml.stats`: the two-sample Kolmogorov–Smirnov test (as scipy's
 * `ks_2samp`), the Population Stability Index with reusable bins, and a quantile sketch with a
 * deterministic error bound for windows too large to keep.
 *
 * @example
 * import { ml } from 'weir';
 * ml.stats.ks2(reference, window).pValue;
 * ml.stats.psi(reference, window, { bins: 10 }).psi;
 */
export { ks2, ks2Sorted, ksPValue, ecdfDifference, KsReference, KS_MAX_AUTO_N } from './ks.js';
export type { Ks2Options, Ks2Result, KsAlternative, KsMethod, EcdfDifference } from './ks.js';
export { kolmogorovSf, kolmogorovCdf, smirnovSf } from './kolmogorov.js';
export { exactKsPValue, binomial } from './ks-exact.js';
export type { ExactAlternative } from './ks-exact.js';
export { psi, psiBins, psiFromCounts, psiBinIndex, quantileSorted, PsiAccumulator } from './psi.js';
export type { PsiOptions, PsiResult, PsiBins } from './psi.js';
export { QuantileSketch, ks2Sketch } from './quantile-sketch.js';
export type { QuantileSketchOptions, QuantileSketchState, Ks2SketchResult, SketchSortedView } from './quantile-sketch.js';
export { sortSample, roundHalfEven } from './sample.js';

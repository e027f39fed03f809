/**
 * Drift operators: `ml.ks(...)` and `ml.psi(...)` configure a `.drift(...)` step that compares each
 * window of a feature with a reference and emits one {@link DriftReport} per window (per key).
 *
 * @example
 * import { ml } from 'weir';
 * txns.drift(ml.psi({ feature: 'amount', reference: trainingAmounts, window: '1m' })).sink(sinks.console());
 */
export { ks, psi } from './drift-spec.js';
export type {
  DriftSpec,
  DriftOptions,
  KsDriftOptions,
  PsiDriftOptions,
  DriftStepOptions,
  DriftWindow,
  DriftReference,
  FeatureSelector,
  FeatureRecord,
} from './drift-spec.js';
export type { DriftReport, KsDriftReport, PsiDriftReport, KeyedDriftReport, DriftLevel } from './drift-report.js';

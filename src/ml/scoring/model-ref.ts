import { WeirError, messageOf } from '../../errors.js';
import { isScoringModel, type ScoringModel } from './scoring-model.js';

/** What a {@link ModelRef} starts from: a model, one being loaded, or a loader it can call again. */
export type ModelSource<S> = ScoringModel<S> | Promise<ScoringModel<S>> | (() => ScoringModel<S> | Promise<ScoringModel<S>>);

/** Options of {@link ModelRef}. */
export interface ModelRefOptions {
  /** Dispose a model once it has been replaced and no batch uses it any more (default true). */
  disposeReplaced?: boolean;
}

/**
 * A swappable handle on the model a `score` step uses: {@link swap} a new version in while the job
 * runs; each step picks it up at its next batch (a batch in flight finishes with the model it
 * started with), and every record says which version scored it. The replaced model is disposed once
 * no batch uses it.
 *
 * Made from a loader function, the ref can also load the model again: a step whose model failed to
 * load retries the loader when its circuit breaker lets a trial through.
 *
 * @example
 * const ref = ml.models.ref(() => ml.tfjs.load('./models/fraud-v1'));
 * stream.score(ref, { features: ['amount', 'velocity'], output: 'fraud' });
 * // later, without stopping the job:
 * await ref.swap(ml.tfjs.load('./models/fraud-v2'));
 */
export class ModelRef<S = number> {
  private model: ScoringModel<S> | null = null;
  private readonly uses = new Map<ScoringModel<S>, number>();
  private readonly retired = new Set<ScoringModel<S>>();
  private readonly loader: (() => ScoringModel<S> | Promise<ScoringModel<S>>) | null;
  private readonly disposeReplaced: boolean;
  private inFlight: Promise<unknown> | null = null;
  private requested = 0;
  private error: unknown = null;
  private swaps = 0;

  constructor(initial: ModelSource<S>, opts: ModelRefOptions = {}) {
    this.disposeReplaced = opts.disposeReplaced ?? true;
    if (typeof initial === 'function') {
      this.loader = initial;
      void this.reload().catch(() => undefined); // kept in lastError
    } else {
      this.loader = null;
      void this.swap(initial).catch(() => undefined);
    }
  }

  /** The model new batches use, or null while none could be loaded yet. */
  get current(): ScoringModel<S> | null {
    return this.model;
  }

  /** The version of {@link current}. */
  get version(): string | undefined {
    return this.model?.version;
  }

  /** Why the last load failed (null once one succeeds). */
  get lastError(): unknown {
    return this.error;
  }

  /** How many times a model was swapped in (the first load counts). */
  get generation(): number {
    return this.swaps;
  }

  /** Whether {@link reload} can load the model again (the ref was made from a loader). */
  get canReload(): boolean {
    return this.loader !== null;
  }

  /** Resolves once no load is in flight (never rejects: a failure is in {@link lastError}). */
  async ready(): Promise<void> {
    while (this.inFlight !== null) await this.inFlight.catch(() => undefined);
  }

  /**
   * Replaces the model (or, given a promise, once it resolves). Resolves with the new model; rejects
   * with a `WEIR_MODEL_FAILED` error when the promise rejects, and the old model stays. When two
   * swaps overlap, the one asked for last wins.
   */
  swap(next: ScoringModel<S> | Promise<ScoringModel<S>>): Promise<ScoringModel<S>> {
    const seq = ++this.requested;
    if (!(next instanceof Promise)) return Promise.resolve(this.install(next, seq));
    const p = next.then(
      (m) => this.install(m, seq),
      (e: unknown) => {
        const err = e instanceof WeirError ? e : new WeirError('WEIR_MODEL_FAILED', `model load failed: ${messageOf(e)}`, { cause: e });
        if (seq === this.requested) this.error = err;
        throw err;
      },
    );
    const settled = p.then(
      () => undefined,
      () => undefined,
    );
    this.inFlight = settled;
    void settled.then(() => {
      if (this.inFlight === settled) this.inFlight = null;
    });
    return p;
  }

  /** Calls the loader again and swaps its model in (refs made from a loader only). */
  reload(): Promise<ScoringModel<S>> {
    if (this.loader === null) return Promise.reject(new WeirError('WEIR_INVALID_ARGUMENT', 'this ModelRef was made from a model, not a loader function: it cannot reload'));
    let next: ScoringModel<S> | Promise<ScoringModel<S>>;
    try {
      next = this.loader();
    } catch (e) {
      next = Promise.reject(e);
    }
    return this.swap(next instanceof Promise ? next : Promise.resolve(next));
  }

  /** The model for one batch, counted as in use until {@link release} (null: none loaded). */
  acquire(): ScoringModel<S> | null {
    const m = this.model;
    if (m !== null) this.uses.set(m, (this.uses.get(m) ?? 0) + 1);
    return m;
  }

  /** The batch that acquired `m` is done with it; a replaced model nobody uses is disposed. */
  release(m: ScoringModel<S>): void {
    const n = (this.uses.get(m) ?? 1) - 1;
    if (n > 0) {
      this.uses.set(m, n);
      return;
    }
    this.uses.delete(m);
    if (this.retired.delete(m)) m.dispose();
  }

  /** Disposes the current model and every replaced one not in use (the ref is empty afterwards). */
  dispose(): void {
    const m = this.model;
    this.model = null;
    if (m !== null) this.retire(m, true);
    for (const r of this.retired) if (!this.uses.has(r)) {
      this.retired.delete(r);
      r.dispose();
    }
  }

  private install(m: ScoringModel<S>, seq: number): ScoringModel<S> {
    if (!isScoringModel(m)) throw new WeirError('WEIR_INVALID_ARGUMENT', 'ModelRef: not a scoring model (use ml.tfjs.load, ml.tfjs.fromModel or ml.fn)');
    if (seq !== this.requested) {
      // A later swap was asked for: this one is already out of date.
      if (m !== this.model && this.disposeReplaced) this.retire(m, true);
      return m;
    }
    const old = this.model;
    this.model = m;
    this.error = null;
    this.swaps++;
    if (old !== null && old !== m) this.retire(old, this.disposeReplaced);
    return m;
  }

  private retire(m: ScoringModel<S>, dispose: boolean): void {
    if (!dispose) return;
    if (this.uses.has(m)) this.retired.add(m);
    else m.dispose();
  }
}

/** The ref behind a `score` step: the user's own, or one made around a model (or a promise of one). */
export function toModelRef<S>(model: ScoringModel<S> | ModelRef<S> | Promise<ScoringModel<S>>): ModelRef<S> {
  if (model instanceof ModelRef) return model;
  if (model instanceof Promise || isScoringModel(model)) return new ModelRef(model, { disposeReplaced: false });
  throw new WeirError('WEIR_INVALID_ARGUMENT', 'score: the model is not a scoring model (use ml.tfjs.load, ml.tfjs.fromModel, ml.fn or ml.models.ref)');
}

/**
 * The references of a drift operator: one fixed sample for every key, or per key the first window
 * (`'first-window'`) or the last n windows (`{ trailing: n }`), with their checkpoint state.
 */
import type { SnapshotWriter } from '../../checkpoint/snapshot.js';
import type { PsiBins } from '../stats/psi.js';
import { DriftSample, type DriftSampleState } from './drift-sample.js';
import type { DriftConfig } from './drift-spec.js';
import { ReferenceSample } from './reference-sample.js';
import type { WindowSlot } from './window-slot.js';

/** The checkpoint table of per-key references. */
export const REFERENCE_TABLE = 'reference';

/** A key's reference as checkpoints store it: its window samples, oldest first. */
export interface KeyReferenceState {
  readonly samples: readonly DriftSampleState[];
}

interface KeyReference {
  /** The windows that make it, oldest first (one for 'first-window'). */
  readonly samples: DriftSample[];
  /** Built from `samples` when first needed; dropped when they change. */
  ready: ReferenceSample | null;
}

/**
 * Per key: which reference a firing window is tested against, and what its windows leave behind.
 * The operator calls {@link referenceFor} then {@link windowFired} for each window, in window order.
 *
 * @example
 * const ref = refs.referenceFor(key);   // null: no reference yet, no report
 * refs.windowFired(key, slot);
 */
export class DriftReferences {
  private readonly fixed: ReferenceSample | null;
  private readonly byKey = new Map<unknown, KeyReference>();
  /** Keys whose reference changed since the last snapshot (null: not tracked). */
  private dirty: Set<unknown> | null = null;
  private readonly k: number;
  private readonly exactLimit: number;
  private readonly trailing: number;
  private readonly psi: DriftConfig['psi'];

  constructor(config: DriftConfig) {
    const r = config.reference;
    this.k = config.k;
    this.exactLimit = config.exactLimit;
    this.psi = config.psi;
    this.fixed = r.kind === 'fixed' ? ReferenceSample.ofSorted(r.sorted, config.k, r.bins) : null;
    this.trailing = r.kind === 'trailing' ? r.windows : 0;
  }

  /** Track changes for incremental checkpoints. */
  track(): void {
    this.dirty ??= new Set();
  }

  /** The reference a window of `key` is tested against, or null while it has none (no report). */
  referenceFor(key: unknown): ReferenceSample | null {
    if (this.fixed !== null) return this.fixed;
    const r = this.byKey.get(key);
    if (r === undefined) return null;
    if (this.trailing > 0 && r.samples.length < this.trailing) return null;
    return (r.ready ??= ReferenceSample.ofSamples(r.samples, this.k));
  }

  /**
   * The PSI bins a new window of `key` can count into, or null when it must keep its values (KS; no
   * reference yet; trailing references, whose bins change with every window).
   */
  binsFor(key: unknown): PsiBins | null {
    const psi = this.psi;
    if (psi === null || this.trailing > 0) return null;
    const ref = this.referenceFor(key);
    return ref === null ? null : ref.psiBins(psi.bins, psi.epsilon);
  }

  /** A window of `key` was tested (or not): 'first-window' keeps the first; trailing keeps the last n. */
  windowFired(key: unknown, slot: WindowSlot): void {
    if (this.fixed !== null || slot.sample === null) return;
    const r = this.byKey.get(key);
    if (this.trailing === 0 && r !== undefined) return;
    slot.sample.trim();
    if (r === undefined) {
      this.byKey.set(key, { samples: [slot.sample], ready: null });
    } else {
      r.samples.push(slot.sample);
      if (r.samples.length > this.trailing) r.samples.shift();
      r.ready = null;
    }
    this.dirty?.add(key);
  }

  /** Number of keys with a reference of their own. */
  get size(): number {
    return this.byKey.size;
  }

  /** Writes the references that changed since the last snapshot. */
  snapshot(out: SnapshotWriter): void {
    if (this.dirty === null) return;
    for (const key of this.dirty) {
      const r = this.byKey.get(key);
      if (r === undefined) out.delete(REFERENCE_TABLE, 0, key);
      else out.put(REFERENCE_TABLE, 0, key, { samples: r.samples.map((s) => s.toState()) } satisfies KeyReferenceState);
    }
    this.dirty.clear();
  }

  /** Takes back one key's reference from a checkpoint. */
  restore(key: unknown, state: KeyReferenceState): void {
    const samples = state.samples.map((s) => DriftSample.fromState(s, this.k, this.exactLimit));
    if (this.trailing > 0 && samples.length > this.trailing) samples.splice(0, samples.length - this.trailing);
    if (samples.length > 0) this.byKey.set(key, { samples, ready: null });
  }
}

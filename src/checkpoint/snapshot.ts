import { encodeValue } from '../state/store/value-codec.js';

/**
 * What a checkpoint holds, independent of where it is stored: per operator, keyed state entries
 * `(table, namespace, key) → value` and a little metadata (watermarks); per source, its position and
 * watermark state. Operators write only what changed since their last snapshot (incremental); a
 * store merges the changes into the full state it restores from.
 */

/** The format version of snapshots and of what stores keep; a store refuses one it does not know. */
export const SNAPSHOT_FORMAT = 1;

/** One change of keyed state: `value === undefined` deletes the entry. Values are already encoded. */
export interface StateChange {
  readonly table: string;
  readonly ns: number;
  readonly key: unknown;
  /** The value as stored (`encodeValue`), or undefined for a delete. */
  readonly value: string | undefined;
}

/** One entry of restored keyed state (decoded). */
export interface StateEntry {
  readonly table: string;
  readonly ns: number;
  readonly key: unknown;
  readonly value: unknown;
}

/**
 * Where an operator writes its snapshot. `put` encodes the value at once (accumulators are mutable:
 * the snapshot must be what they were between the two batches, not what they become later).
 */
export class SnapshotWriter {
  readonly changes: StateChange[] = [];
  meta: unknown = undefined;

  put(table: string, ns: number, key: unknown, value: unknown): void {
    this.changes.push({ table, ns, key, value: encodeValue(value) });
  }

  /** A value encoded already (by {@link encodeValue}): a changed key that was spilled out of memory. */
  putEncoded(table: string, ns: number, key: unknown, encoded: string): void {
    this.changes.push({ table, ns, key, value: encoded });
  }

  delete(table: string, ns: number, key: unknown): void {
    this.changes.push({ table, ns, key, value: undefined });
  }
}

/** An operator's part of a checkpoint. */
export interface OperatorSnapshot {
  readonly changes: readonly StateChange[];
  /** Operator metadata (its own watermark, ...), JSON-like. */
  readonly meta: unknown;
  /** The runtime node's input watermarks and combined watermark. */
  readonly watermarks: { readonly inputs: readonly number[]; readonly combined: number };
}

/** A source's part of a checkpoint. */
export interface SourceSnapshot {
  /** Where to resume reading (what `Source.position()` returned), or undefined if it cannot resume. */
  readonly position: unknown;
  /** Its watermark generator's state and the last watermark it emitted (per split, for sources with splits). */
  readonly watermark: {
    readonly generator: unknown;
    readonly emitted: number;
    readonly splits?: Readonly<Record<string, { readonly generator: unknown; readonly emitted: number }>>;
  };
}

/** Everything one checkpoint adds: the changes since the previous one, and positions. */
export interface CheckpointDelta {
  readonly format: typeof SNAPSHOT_FORMAT;
  readonly id: number;
  readonly time: number;
  readonly operators: Readonly<Record<string, OperatorSnapshot>>;
  readonly sources: Readonly<Record<string, SourceSnapshot>>;
}

/** What a job restores from: the full state as of one checkpoint. */
export interface RestoredCheckpoint {
  readonly id: number;
  readonly operators: ReadonlyMap<string, { entries: StateEntry[]; meta: unknown; watermarks: OperatorSnapshot['watermarks'] }>;
  readonly sources: Readonly<Record<string, SourceSnapshot>>;
}

/** A whole checkpoint as one delta of puts (to write it into an empty store: savepoints, seeding). */
export function fullDelta(cp: RestoredCheckpoint): CheckpointDelta {
  const operators: Record<string, OperatorSnapshot> = {};
  for (const [name, op] of cp.operators) {
    operators[name] = {
      changes: op.entries.map((e) => ({ table: e.table, ns: e.ns, key: e.key, value: encodeValue(e.value) })),
      meta: op.meta,
      watermarks: op.watermarks,
    };
  }
  return { format: SNAPSHOT_FORMAT, id: cp.id, time: Date.now(), operators, sources: cp.sources };
}

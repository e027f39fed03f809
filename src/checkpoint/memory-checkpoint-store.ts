import { WeirError } from '../errors.js';
import { decodeValue } from '../state/store/value-codec.js';
import type { CommitHandle } from '../sinks/transactional-sink.js';
import type { CheckpointStorage, StoredCheckpoint } from './checkpoint-coordinator.js';
import { SNAPSHOT_FORMAT, fullDelta, type CheckpointDelta, type OperatorSnapshot, type RestoredCheckpoint, type SourceSnapshot, type StateEntry } from './snapshot.js';

interface OperatorState {
  entries: Map<string, { table: string; ns: number; key: unknown; value: string }>;
  meta: unknown;
  watermarks: OperatorSnapshot['watermarks'];
}

/** A key for the merged map: tables, namespaces and keys are primitives. */
function entryId(table: string, ns: number, key: unknown): string {
  return `${table}\u0000${ns}\u0000${typeof key}\u0000${String(key)}`;
}

/**
 * Keeps checkpoints in memory by merging each incremental delta into the full state, as the durable
 * store does on disk. Used by `weir/testing` (checkpoint-and-restart in a test) and as the reference
 * the durable stores are compared with.
 */
export class MemoryCheckpointStore {
  private operators = new Map<string, OperatorState>();
  private sources: Record<string, SourceSnapshot> = {};
  private lastId = 0;

  /** A store that holds `cp` as its last checkpoint (to go on checkpointing after a restore). */
  static from(cp: RestoredCheckpoint): MemoryCheckpointStore {
    const store = new MemoryCheckpointStore();
    store.write(fullDelta(cp));
    return store;
  }

  /** Applies one checkpoint's changes. */
  write(delta: CheckpointDelta): void {
    if (delta.format !== SNAPSHOT_FORMAT) throw new WeirError('WEIR_INTERNAL', `snapshot format ${String(delta.format)} is not ${SNAPSHOT_FORMAT}`);
    for (const [name, snap] of Object.entries(delta.operators)) {
      let op = this.operators.get(name);
      if (!op) this.operators.set(name, (op = { entries: new Map(), meta: undefined, watermarks: snap.watermarks }));
      for (const c of snap.changes) {
        const id = entryId(c.table, c.ns, c.key);
        if (c.value === undefined) op.entries.delete(id);
        else op.entries.set(id, { table: c.table, ns: c.ns, key: c.key, value: c.value });
      }
      op.meta = snap.meta;
      op.watermarks = snap.watermarks;
    }
    this.sources = { ...this.sources, ...delta.sources };
    this.lastId = delta.id;
  }

  /** The full state as of the last checkpoint written, or null if none was. */
  latest(): RestoredCheckpoint | null {
    if (this.lastId === 0) return null;
    const operators = new Map<string, { entries: StateEntry[]; meta: unknown; watermarks: OperatorSnapshot['watermarks'] }>();
    for (const [name, op] of this.operators) {
      const entries: StateEntry[] = [];
      for (const e of op.entries.values()) entries.push({ table: e.table, ns: e.ns, key: e.key, value: decodeValue(e.value) });
      operators.set(name, { entries, meta: op.meta, watermarks: op.watermarks });
    }
    return { id: this.lastId, operators, sources: this.sources };
  }

  /** The id of the last checkpoint written (0: none). */
  get lastCheckpointId(): number {
    return this.lastId;
  }

  /** Number of live state entries (all operators). */
  get size(): number {
    let n = 0;
    for (const op of this.operators.values()) n += op.entries.size;
    return n;
  }
}

/**
 * Checkpoint storage in memory (a {@link CheckpointStorage} that lives as long as the process):
 * for tests of the coordinator and of jobs that restart in-process. Nothing survives a crash.
 */
export class MemoryCheckpointStorage implements CheckpointStorage {
  private readonly store = new MemoryCheckpointStore();
  private sinks: Record<string, CommitHandle[]> = {};

  async load(): Promise<StoredCheckpoint | null> {
    const cp = this.store.latest();
    return cp ? { ...cp, sinks: this.sinks } : null;
  }

  nextId(): number {
    return this.store.lastCheckpointId + 1;
  }

  async read(id: number): Promise<StoredCheckpoint> {
    const cp = this.store.latest();
    if (!cp || cp.id !== id) throw new WeirError('WEIR_CHECKPOINT_FAILED', `checkpoint ${id} is not the last one kept in memory`);
    return { ...cp, sinks: this.sinks };
  }

  async writeFull(cp: StoredCheckpoint): Promise<void> {
    this.store.write(fullDelta(cp));
    this.sinks = { ...cp.sinks } as Record<string, CommitHandle[]>;
  }

  async write(delta: CheckpointDelta, sinks: Record<string, CommitHandle[]>): Promise<void> {
    this.store.write(delta);
    this.sinks = sinks;
  }

  async close(): Promise<void> {}
}

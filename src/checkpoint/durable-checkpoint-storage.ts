import type { Logger } from 'pino';
import type { CommitHandle } from '../sinks/transactional-sink.js';
import { keyGroupOf, type KeyPart } from '../state/store/key-codec.js';
import { openKvStore, type KvStoreKind } from '../state/store/kv-store.js';
import type { GroupChanges } from '../state/store/state-blob.js';
import { decodeValue } from '../state/store/value-codec.js';
import { WeirError } from '../errors.js';
import { VersionedState, type CheckpointWriter, type Manifest, type VersionedStateOptions } from '../state/store/versioned-state.js';
import type { CheckpointStorage, StoredCheckpoint } from './checkpoint-coordinator.js';
import { fullDelta, type CheckpointDelta, type OperatorSnapshot, type SourceSnapshot, type StateEntry } from './snapshot.js';

/** Options of {@link DurableCheckpointStorage.open}. */
export interface DurableCheckpointOptions {
  /** How many checkpoints to keep (default 3): older ones are dropped and their state garbage-collected. */
  retain?: number;
  /** Number of key groups (fixed for the life of a job's state; default 128). */
  maxParallelism?: number;
  /** Tuning of the store's blobs and compaction (tests make them small). */
  store?: VersionedStateOptions;
  logger: Logger;
}

/** Which part of a checkpoint's keyed state to read. */
export interface ReadOptions {
  /**
   * Only the key groups `[from, to)` (of every operator and table): what a task owns when the job is
   * restored at another parallelism. Manifest, sources and sinks come whole.
   */
  readonly keyGroups?: { readonly from: number; readonly to: number };
}

/** What a manifest keeps per operator. */
interface OperatorManifest {
  meta: unknown;
  watermarks: OperatorSnapshot['watermarks'];
}

/**
 * Checkpoints on the LSM state store (LevelDB through classic-level, or RocksDB): each checkpoint is
 * one atomic write batch of its manifest (source positions, watermarks, the sinks' handles) and, per
 * key group it changed, one blob of the changes (or of the group's whole contents, when its chain of
 * changes has grown: see VersionedState). Restoring reads the newest intact checkpoint's state as of
 * its id; a corrupt or unknown-format manifest, or a corrupt blob of its state, is logged and the
 * previous one used, never an empty start. State is placed by key group, so a job restored with
 * another parallelism can read the groups it owns (`keyGroups`).
 */
export class DurableCheckpointStorage implements CheckpointStorage {
  private constructor(
    private readonly state: VersionedState,
    private readonly retain: number,
    private readonly maxParallelism: number,
    private readonly logger: Logger,
  ) {}

  /** Opens (or creates) the store in `dir`. */
  static async open(dir: string, kind: KvStoreKind, opts: DurableCheckpointOptions): Promise<DurableCheckpointStorage> {
    const kv = await openKvStore(dir, kind);
    try {
      const state = await VersionedState.open(kv, opts.store);
      return new DurableCheckpointStorage(state, opts.retain ?? 3, opts.maxParallelism ?? 128, opts.logger);
    } catch (e) {
      await kv.close();
      throw e;
    }
  }

  /**
   * The newest checkpoint whose manifest and state read back intact (older ones are tried in turn;
   * each one skipped is logged), or null on a fresh store; from then on the storage continues from it.
   */
  async load(options: ReadOptions = {}): Promise<StoredCheckpoint | null> {
    const found = await this.latestReadable(options);
    await this.state.resumeFrom(found?.manifest.id ?? null);
    return found?.value ?? null;
  }

  /** The newest intact checkpoint, read only (a savepoint's directory is not changed by starting from it). */
  async readLatest(options: ReadOptions = {}): Promise<StoredCheckpoint | null> {
    return (await this.latestReadable(options))?.value ?? null;
  }

  async read(id: number, options: ReadOptions = {}): Promise<StoredCheckpoint> {
    const found = (await this.state.manifests()).find((m) => m.id === id);
    if (!found || found.status !== 'valid') throw new WeirError('WEIR_CHECKPOINT_FAILED', `checkpoint ${id} is not in ${this.state.store.location} or is unusable`);
    return this.readManifest(found.manifest, options);
  }

  async writeFull(cp: StoredCheckpoint): Promise<void> {
    await this.write(fullDelta(cp), { ...cp.sinks } as Record<string, CommitHandle[]>);
  }

  private async readManifest(manifest: Manifest, options: ReadOptions): Promise<StoredCheckpoint> {
    const operators = new Map<string, { entries: StateEntry[]; meta: unknown; watermarks: OperatorSnapshot['watermarks'] }>();
    for (const [name, m] of Object.entries(manifest.operators as Record<string, OperatorManifest>)) {
      operators.set(name, { entries: [], meta: m.meta, watermarks: m.watermarks });
    }
    const range = options.keyGroups === undefined ? {} : { keyGroups: options.keyGroups };
    for await (const g of this.state.readGroups(manifest.id, range)) {
      let op = operators.get(g.operator);
      if (!op) operators.set(g.operator, (op = { entries: [], meta: undefined, watermarks: { inputs: [], combined: -Infinity } }));
      const entries = op.entries;
      const table = g.table;
      g.forEach((ns, key, value) => entries.push({ table, ns: ns as number, key, value: decodeValue(value) }));
    }
    return {
      id: manifest.id,
      operators,
      sources: manifest.sources as Record<string, SourceSnapshot>,
      sinks: manifest.sinks as Record<string, CommitHandle[]>,
    };
  }

  /** The newest checkpoint that reads back whole; the ones skipped on the way are logged. */
  private latestReadable(options: ReadOptions): Promise<{ manifest: Manifest; value: StoredCheckpoint } | undefined> {
    return this.state.latestReadable(
      (skipped) => this.logger.error({ checkpoint: skipped.id, reason: skipped.reason, err: skipped.error }, 'checkpoint unusable: falling back to the previous one'),
      (manifest) => this.readManifest(manifest, options),
    );
  }

  nextId(): number {
    return this.state.nextCheckpointId;
  }

  /**
   * The newest checkpoint older than `id` that reads back whole, or null; the storage continues from
   * it (`id` and later ones are given up). A sink's transaction of checkpoint `id` never committed.
   */
  async fallBack(id: number): Promise<StoredCheckpoint | null> {
    const older = (await this.state.manifests()).filter((m) => m.id < id).sort((a, b) => b.id - a.id);
    for (const m of older) {
      if (m.status !== 'valid') continue;
      try {
        const cp = await this.readManifest(m.manifest, {});
        await this.state.resumeFrom(m.id);
        return cp;
      } catch (e) {
        this.logger.error({ checkpoint: m.id, err: e }, 'checkpoint unusable: falling back to the previous one');
      }
    }
    await this.state.resumeFrom(null);
    return null;
  }

  async write(delta: CheckpointDelta, sinks: Record<string, CommitHandle[]>): Promise<{ bytes: number }> {
    const operators: Record<string, OperatorManifest> = {};
    for (const [name, op] of Object.entries(delta.operators)) operators[name] = { meta: op.meta, watermarks: op.watermarks };
    const w = this.state.beginCheckpoint(delta.id);
    try {
      this.addChanges(w, delta);
    } catch (e) {
      w.abort();
      throw e;
    }
    const stats = await w.commit({ time: delta.time, sources: delta.sources, sinks, operators });
    await this.state.retain(this.retain);
    return { bytes: stats.bytes };
  }

  /** The delta's changes, by (operator, table, key group). */
  private addChanges(w: CheckpointWriter, delta: CheckpointDelta): void {
    const groups = this.maxParallelism;
    for (const [operator, op] of Object.entries(delta.operators)) {
      const byTable = new Map<string, (GroupChanges | undefined)[]>();
      let table: string | undefined;
      let slots: (GroupChanges | undefined)[] = [];
      for (const c of op.changes) {
        if (c.table !== table) {
          table = c.table;
          let s = byTable.get(table);
          if (s === undefined) byTable.set(table, (s = new Array<GroupChanges | undefined>(groups)));
          slots = s;
        }
        const key = c.key as KeyPart;
        const keyGroup = keyGroupOf(key, groups);
        const g = slots[keyGroup] ?? (slots[keyGroup] = w.group(operator, table, keyGroup));
        if (c.value === undefined) g.delete(c.ns, key);
        else g.put(c.ns, key, c.value);
      }
    }
  }

  async close(): Promise<void> {
    await this.state.close();
  }
}

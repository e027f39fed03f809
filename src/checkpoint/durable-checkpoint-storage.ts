import type { Logger } from 'pino';
import type { CommitHandle } from '../sinks/transactional-sink.js';
import { keyGroupOf, type KeyPart } from '../state/store/key-codec.js';
import { openKvStore, type KvStoreKind } from '../state/store/kv-store.js';
import { WeirError } from '../errors.js';
import { VersionedState, type Manifest, type StateWrite } from '../state/store/versioned-state.js';
import type { CheckpointStorage, StoredCheckpoint } from './checkpoint-coordinator.js';
import { fullDelta, type CheckpointDelta, type OperatorSnapshot, type SourceSnapshot, type StateEntry } from './snapshot.js';

/** Options of {@link DurableCheckpointStorage.open}. */
export interface DurableCheckpointOptions {
  /** How many checkpoints to keep (default 3): older ones are dropped and their state garbage-collected. */
  retain?: number;
  /** Number of key groups (fixed for the life of a job's state; default 128). */
  maxParallelism?: number;
  logger: Logger;
}

/** What a manifest keeps per operator. */
interface OperatorManifest {
  meta: unknown;
  watermarks: OperatorSnapshot['watermarks'];
}

/**
 * Checkpoints on the LSM state store (LevelDB through classic-level, or RocksDB): each checkpoint is
 * one atomic write batch of the changed state entries (new versions, tombstones for deletes) and its
 * manifest (source positions, watermarks, the sinks' handles). Restoring reads the newest intact
 * checkpoint's state as of its id; a corrupt or unknown-format manifest is logged and the previous one
 * used, never an empty start. Entries are placed by key group, so a job restored with another
 * parallelism can read the groups it owns.
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
      const state = await VersionedState.open(kv);
      return new DurableCheckpointStorage(state, opts.retain ?? 3, opts.maxParallelism ?? 128, opts.logger);
    } catch (e) {
      await kv.close();
      throw e;
    }
  }

  async load(): Promise<StoredCheckpoint | null> {
    const manifest = await this.latestValid();
    await this.state.resumeFrom(manifest?.id ?? null);
    return manifest ? this.readManifest(manifest) : null;
  }

  /** The newest intact checkpoint, read only (a savepoint's directory is not changed by starting from it). */
  async readLatest(): Promise<StoredCheckpoint | null> {
    const manifest = await this.latestValid();
    return manifest ? this.readManifest(manifest) : null;
  }

  async read(id: number): Promise<StoredCheckpoint> {
    const found = (await this.state.manifests()).find((m) => m.id === id);
    if (!found || found.status !== 'valid') throw new WeirError('WEIR_CHECKPOINT_FAILED', `checkpoint ${id} is not in ${this.state.store.location} or is unusable`);
    return this.readManifest(found.manifest);
  }

  async writeFull(cp: StoredCheckpoint): Promise<void> {
    await this.write(fullDelta(cp), { ...cp.sinks } as Record<string, CommitHandle[]>);
  }

  private async readManifest(manifest: Manifest): Promise<StoredCheckpoint> {
    const operators = new Map<string, { entries: StateEntry[]; meta: unknown; watermarks: OperatorSnapshot['watermarks'] }>();
    for (const [name, m] of Object.entries(manifest.operators as Record<string, OperatorManifest>)) {
      operators.set(name, { entries: [], meta: m.meta, watermarks: m.watermarks });
    }
    for await (const chunk of this.state.readAsOf(manifest.id)) {
      for (const e of chunk) {
        let op = operators.get(e.operator);
        if (!op) operators.set(e.operator, (op = { entries: [], meta: undefined, watermarks: { inputs: [], combined: -Infinity } }));
        op.entries.push({ table: e.table, ns: e.namespace as number, key: e.key, value: e.value });
      }
    }
    return {
      id: manifest.id,
      operators,
      sources: manifest.sources as Record<string, SourceSnapshot>,
      sinks: manifest.sinks as Record<string, CommitHandle[]>,
    };
  }

  /** The newest intact manifest; the ones skipped on the way are logged. */
  private latestValid(): Promise<Manifest | undefined> {
    return this.state.latestValidManifest((skipped) =>
      this.logger.error({ checkpoint: skipped.id, reason: skipped.reason, err: skipped.error }, 'checkpoint unusable: falling back to the previous one'),
    );
  }

  nextId(): number {
    return this.state.nextCheckpointId;
  }

  async write(delta: CheckpointDelta, sinks: Record<string, CommitHandle[]>): Promise<{ bytes: number }> {
    const operators: Record<string, OperatorManifest> = {};
    for (const [name, op] of Object.entries(delta.operators)) operators[name] = { meta: op.meta, watermarks: op.watermarks };
    const stats = await this.state.writeCheckpoint(delta.id, this.entries(delta), { time: delta.time, sources: delta.sources, sinks, operators });
    await this.state.retain(this.retain);
    return { bytes: stats.bytes };
  }

  private *entries(delta: CheckpointDelta): Generator<StateWrite> {
    const groups = this.maxParallelism;
    for (const [operator, op] of Object.entries(delta.operators)) {
      for (const c of op.changes) {
        const key = c.key as KeyPart;
        const keyGroup = keyGroupOf(key, groups);
        if (c.value === undefined) yield { operator, table: c.table, keyGroup, namespace: c.ns, key, deleted: true };
        else yield { operator, table: c.table, keyGroup, namespace: c.ns, key, encoded: c.value };
      }
    }
  }

  async close(): Promise<void> {
    await this.state.close();
  }
}

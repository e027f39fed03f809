import type { Logger } from 'pino';
import { WeirError, messageOf } from '../errors.js';
import type { Counter } from '../observability/metrics.js';
import type { Job } from '../runtime/job.js';
import type { SinkNode } from '../runtime/sink-node.js';
import { isTransactional, type CommitHandle, type TransactionalSink } from '../sinks/transactional-sink.js';
import type { CheckpointDelta, RestoredCheckpoint } from './snapshot.js';
import type { ChangelogBatch } from '../kafka/kafka-changelog-storage.js';
import type { Sink } from '../sinks/sink.js';
import type { Source } from '../sources/source.js';

/** A checkpoint as a storage returns it: the full state, plus the sinks' pre-committed handles. */
export interface StoredCheckpoint extends RestoredCheckpoint {
  readonly sinks: Readonly<Record<string, readonly CommitHandle[]>>;
}

/** Where checkpoints go: one atomic write per checkpoint; the newest intact one comes back. */
export interface CheckpointStorage {
  /**
   * The newest intact checkpoint, or null when there is none; from then on the storage continues
   * from it (later checkpoints it skipped as corrupt are given up).
   */
  load(): Promise<StoredCheckpoint | null>;
  /** The id the next checkpoint must have: above every id ever written (sinks number epochs by it). */
  nextId(): number;
  /** The full state of checkpoint `id` (one this storage holds), without changing anything. */
  read(id: number): Promise<StoredCheckpoint>;
  /** Writes a whole checkpoint (all its state, not a delta): a savepoint, or the base a restore from one starts with. */
  writeFull(cp: StoredCheckpoint): Promise<void>;
  /**
   * Stores one checkpoint atomically: state changes, source positions, the sinks' handles. May return
   * the bytes it wrote (keys, values and the manifest).
   */
  write(delta: CheckpointDelta, sinks: Record<string, CommitHandle[]>): Promise<{ bytes: number } | void>;
  /**
   * The newest usable checkpoint older than `id`, or null when there is none; from then on the
   * storage continues from it (`id` and everything after it are given up). Used when a sink's
   * transaction of checkpoint `id` turns out never to have committed.
   */
  fallBack?(id: number): Promise<StoredCheckpoint | null>;
  /**
   * Before the job opens (storages that depend on the job's sources and sinks, as `kafkaChangelog`):
   * check the job's shape and hook into it.
   */
  attach?(parts: { sources: readonly { name: string; source: Source<unknown> }[]; sinks: readonly { name: string; sink: Sink<unknown> }[] }, logger: Logger): void;
  /** State records an exactly-once sink commits in the checkpoint's own transaction (`kafkaChangelog`), if any. */
  changelogFor?(delta: CheckpointDelta): ChangelogBatch | undefined;
  /** False when this process may no longer commit (its Kafka partitions moved to another since the job started). */
  mayCommit?(): boolean;
  close(): Promise<void>;
}

/** One checkpoint's figures, as logged and exposed. */
export interface CheckpointStats {
  readonly id: number;
  readonly durationMs: number;
  readonly stateChanges: number;
  readonly bytes: number;
}

/**
 * Takes the job's checkpoints: every `intervalMs`, and a last one when the input ends or the job stops.
 *
 * A checkpoint is taken between two batches (a timer callback never runs inside one: the task is
 * synchronous), so no record is in flight: the snapshot is the operators' changed state, the
 * watermarks and the sources' positions after the last batch they handed over. At the same moment
 * each exactly-once sink gets `preCommit(id)` queued behind the writes before it. When the handles
 * are in, the checkpoint is written as one atomic batch; once that is durable, the sinks commit.
 * Checkpoints never overlap: a due one waits for the previous.
 */
export class CheckpointCoordinator {
  private nextId = 1;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private failure: unknown = null;
  private closed = false;
  private readonly sinks: { node: SinkNode; sink: TransactionalSink<unknown> }[];
  /** The last checkpoint's figures. */
  last: CheckpointStats | null = null;

  constructor(
    private readonly job: Job,
    private readonly storage: CheckpointStorage,
    private readonly intervalMs: number,
    private readonly logger: Logger,
    private readonly counters: { completed: Counter; bytes: Counter },
  ) {
    this.sinks = job.compiled.sinks.flatMap((node) => (isTransactional(node.sink) ? [{ node, sink: node.sink }] : []));
  }

  /**
   * Before the job runs: restores the newest checkpoint (state, timers, watermarks, source positions)
   * and lets each exactly-once sink commit what that checkpoint pre-committed and abort the rest.
   * Without a checkpoint, `fromSavepoint` (if given) is where the job starts: its state is written into
   * this storage first, as the base later checkpoints build on. Returns the restored id (0: none).
   */
  async recover(fromSavepoint?: () => Promise<StoredCheckpoint | null>): Promise<number> {
    let cp = await this.storage.load();
    if (!cp && fromSavepoint) {
      cp = await fromSavepoint();
      if (cp) {
        await this.storage.writeFull(cp);
        this.logger.info({ savepoint: cp.id }, 'starting from a savepoint');
      }
    }
    cp = await this.skipLostTransactions(cp);
    this.nextId = this.storage.nextId();
    if (cp) {
      await this.job.restore(cp);
      this.logger.info({ checkpoint: cp.id }, 'restored from checkpoint');
      // Only a restart recovers: on a fresh start a sink's first write starts its output afresh.
      for (const { node, sink } of this.sinks) await node.after(() => sink.recover(cp.sinks[node.name] ?? []));
    }
    return cp?.id ?? 0;
  }

  /**
   * A checkpoint whose transaction in a sink that cannot commit after a restart (Kafka) never
   * committed is given up for the one before it, whose transaction did (a checkpoint starts only
   * after the previous one committed); the job then replays from there.
   */
  private async skipLostTransactions(cp: StoredCheckpoint | null): Promise<StoredCheckpoint | null> {
    while (cp) {
      let lost: { sink: string; epochs: number[] } | null = null;
      for (const { node, sink } of this.sinks) {
        if (!sink.lostHandles) continue;
        const epochs = await sink.lostHandles(cp.sinks[node.name] ?? []);
        if (epochs.length > 0) {
          lost = { sink: node.name, epochs };
          break;
        }
      }
      if (lost === null) return cp;
      if (!this.storage.fallBack) {
        throw new WeirError('WEIR_SINK_TRANSACTION_LOST', `checkpoint ${cp.id}: the transaction of ${lost.sink} never committed, and this checkpoint storage keeps no older checkpoint to replay from`, { step: lost.sink });
      }
      this.logger.warn({ checkpoint: cp.id, sink: lost.sink, epochs: lost.epochs }, 'the transaction of this checkpoint never committed: restoring the one before it and replaying');
      cp = await this.storage.fallBack(cp.id);
    }
    return cp;
  }

  /** Starts the periodic checkpoints. */
  start(): void {
    this.timer = setInterval(() => {
      if (this.running !== null || this.failure !== null) return;
      this.exclusive().catch((e: unknown) => this.job.fail(e));
    }, this.intervalMs);
    this.timer.unref();
  }

  /** Stops the timer, waits for a checkpoint in flight, then takes a last one (the end of input or a stop). */
  async finish(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    while (this.running) await this.running;
    this.throwIfFailed();
    await this.exclusive();
    this.throwIfFailed();
  }

  /**
   * Takes a checkpoint now (after the one in flight, if any) and hands its full state to `write`
   * (a savepoint: a self-contained copy a job can later start from). Returns the checkpoint's id.
   */
  async savepoint(write: (cp: StoredCheckpoint) => Promise<void>): Promise<number> {
    while (this.running) await this.running;
    if (this.closed) throw new WeirError('WEIR_JOB_STATE', 'savepoint: the job is no longer running');
    this.throwIfFailed();
    const id = this.nextId;
    await this.exclusive();
    await write(await this.storage.read(id));
    return id;
  }

  /** Takes a checkpoint while nothing else may (call it only when none is running). */
  private exclusive(): Promise<void> {
    const p = this.checkpoint();
    this.running = p.then(
      () => undefined,
      () => undefined,
    );
    void this.running.then(() => (this.running = null));
    return p;
  }

  /** Stops the timer without a last checkpoint (the job failed, or it is over): no checkpoint after this. */
  stopTimer(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** The first failure of a periodic checkpoint, thrown where the job can see it. */
  throwIfFailed(): void {
    if (this.failure !== null) throw this.failure;
  }

  private async checkpoint(): Promise<void> {
    const id = this.nextId++;
    const started = performance.now();
    try {
      // Between two batches, nothing in flight. With worker threads the sources wait meanwhile and
      // the workers' output after their snapshot is held back until the pre-commits are queued.
      const snap = this.job.snapshot(id);
      const delta = snap instanceof Promise ? await snap : snap;
      const changelog = this.storage.changelogFor?.(delta);
      const pending = this.sinks.map(({ node, sink }) => node.after(() => sink.preCommit(id, { sources: delta.sources, changelog })));
      this.job.snapshotTaken();
      // Asynchronous part: processing goes on meanwhile.
      const handles = await Promise.all(pending);
      const bySink: Record<string, CommitHandle[]> = {};
      this.sinks.forEach(({ node }, i) => (bySink[node.name] = [handles[i]]));
      const written = await this.storage.write(delta, bySink);
      // A member whose partitions moved must not commit: another process owns them (and their output) now.
      if (this.storage.mayCommit && !this.storage.mayCommit()) {
        throw new WeirError('WEIR_REBALANCED', `checkpoint ${id} not committed: the Kafka group moved this process's partitions since the job started`);
      }
      // Sinks that cannot commit after a restart (Kafka) first: if the job dies before they commit, no
      // other sink has committed this checkpoint either, and the job can replay it (skipLostTransactions).
      const first = this.sinks.map((s, i) => ({ ...s, handle: handles[i] })).filter((s) => s.sink.lostHandles !== undefined);
      for (const { node, sink, handle } of first) await node.after(() => sink.commit(handle));
      await Promise.all(this.sinks.map(({ node, sink }, i) => (sink.lostHandles !== undefined ? undefined : node.after(() => sink.commit(handles[i])))));
      await this.job.checkpointComplete(delta);
      let changes = 0;
      let valueBytes = 0;
      for (const op of Object.values(delta.operators)) {
        changes += op.changes.length;
        for (const c of op.changes) valueBytes += c.value?.length ?? 0;
      }
      const bytes = written ? written.bytes : valueBytes;
      this.last = { id, durationMs: performance.now() - started, stateChanges: changes, bytes };
      this.counters.completed.value++;
      this.counters.bytes.value += bytes;
      this.logger.info(this.last, 'checkpoint complete');
    } catch (e) {
      const err = e instanceof WeirError ? e : new WeirError('WEIR_CHECKPOINT_FAILED', `checkpoint ${id} failed: ${messageOf(e)}`, { cause: e });
      this.failure ??= err;
      this.logger.error({ err, checkpoint: id }, 'checkpoint failed');
      throw err;
    }
  }
}

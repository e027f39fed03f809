import type { Logger } from 'pino';
import { rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { isMainThread, workerData } from 'node:worker_threads';
import { CheckpointCoordinator, type CheckpointStats, type CheckpointStorage, type StoredCheckpoint } from './checkpoint/checkpoint-coordinator.js';
import { DurableCheckpointStorage } from './checkpoint/durable-checkpoint-storage.js';
import { isTransactional } from './sinks/transactional-sink.js';
import { isRepartitionWriter } from './kafka/repartition.js';
import { WeirError } from './errors.js';
import type { Placement } from './graph/compile.js';
import { Plan } from './graph/plan.js';
import { checkParallelism, DEFAULT_MAX_PARALLELISM } from './parallel/key-groups.js';
import { RemoteStage } from './parallel/remote-stage.js';
import { planShape, splitPlan } from './parallel/split-plan.js';
import { defaultLogger } from './observability/logger.js';
import { MetricsRegistry, type MetricSample } from './observability/metrics.js';
import { ProgressReporter } from './observability/progress-reporter.js';
import { Job, type JobOutcome } from './runtime/job.js';
import type { TimestampFn } from './runtime/source-node.js';
import type { DeadLetter, Sink } from './sinks/sink.js';
import type { Source } from './sources/source.js';
import { MemoryStateBackend, type StateBackend } from './state/state-backend.js';
import { Stream } from './stream.js';
import { systemClock, type Clock } from './time/clock.js';
import { toMillis, type Duration } from './time/duration.js';
import { watermarks as wm, type WatermarkStrategy } from './time/watermark-strategy.js';

/** Options of a {@link Pipeline}. */
export interface PipelineOptions {
  /** The job's name, in logs and metrics. */
  name: string;
  /**
   * Where checkpoints keep the job's state: `'classic-level'` (LevelDB, the default with `checkpoint`)
   * or `'rocksdb'` (needs the optional @nxtedition/rocksdb). Operators work on an in-memory write-back
   * cache either way; `'memory'` means no durable store (no checkpoints). The object form also sets a
   * memory budget for keyed state, see {@link StateStoreOptions}.
   * @example state: { backend: 'rocksdb', cacheBytes: 256 * 1024 * 1024 }
   */
  state?: StateBackendKind | StateStoreOptions;
  /** Records per source poll (default 1024). Bigger batches: more throughput, more latency. */
  batchSize?: number;
  /** A pino logger (default: pino at `WEIR_LOG_LEVEL` or `info`, on stderr). */
  logger?: Logger;
  /** Processing-time clock (default: the wall clock). Tests inject one. */
  clock?: Clock;
  /**
   * Print a progress line to stderr while the job runs (records in/out, rate, watermark).
   * `true` = every second.
   */
  progress?: boolean | { interval: Duration; write?: (line: string) => void };
  /**
   * Take checkpoints, and resume from the last one on the next run: state, timers, watermarks and
   * source positions come back, exactly-once sinks commit what it pre-committed. Omitted: no
   * checkpoints (state lives in memory and is gone with the process).
   */
  checkpoint?: CheckpointOptions;
  /**
   * How many worker threads run the keyed steps (default 1: everything on the calling thread). Each
   * worker owns a range of key groups; the main thread runs the sources, the steps before the first
   * keyed one and the sinks. A job restored from a checkpoint may use another parallelism: its state
   * is redistributed by key group. Needs {@link PipelineOptions.workers}; records crossing threads
   * must be structured-cloneable (plain data).
   * @example new Pipeline({ name: 'clicks', parallelism: 4, workers: { module: import.meta.url, export: 'buildJob' } })
   */
  parallelism?: number;
  /**
   * Where worker threads get the same pipeline (with `parallelism > 1`): each imports `module` (a
   * file URL or path, usually `import.meta.url`) and calls its function export `export` (default
   * `'default'`) with `args`; the function must build and return this pipeline (same name, same
   * steps), without running it or doing anything else (it runs once per thread).
   */
  workers?: WorkerOptions;
  /**
   * The number of key groups keyed state is split into (default 128): the most workers the job's
   * state can ever be spread over. Fixed for the life of a job's checkpoints.
   */
  maxParallelism?: number;
}

/** Options of {@link PipelineOptions.workers}. */
export interface WorkerOptions {
  /** The module that builds the pipeline: a file URL (`import.meta.url`) or a path. */
  module: string | URL;
  /** The name of its function export that builds it (default `'default'`). */
  export?: string;
  /** What the function is called with in each worker (structured-cloned). */
  args?: unknown;
}

/** A state store: LevelDB (classic-level), RocksDB, or none. */
export type StateBackendKind = 'memory' | 'classic-level' | 'rocksdb';

/** The object form of {@link PipelineOptions.state}. */
export interface StateStoreOptions {
  /** The store (default `'classic-level'`). */
  backend?: StateBackendKind;
  /**
   * About how many bytes of keyed `process` state each operator (per worker thread) keeps in memory.
   * Beyond it, the least recently used keys are written to a spill store (of `backend`'s kind; LevelDB
   * when `backend` is `'memory'` is not allowed) and read back, one batched read per input batch, when
   * records for them come again. Checkpoints still hold every key. Without it, all state stays in
   * memory. Keys with pending timers and states with a TTL always stay in memory. The estimate is
   * based on the encoded size of values (×2, plus ~160 bytes per key).
   */
  cacheBytes?: number;
  /** Where spill stores go (default: a directory under the OS temp dir, removed when the job ends). */
  spillDir?: string;
}

/** Options of checkpointing ({@link PipelineOptions.checkpoint}). */
export interface CheckpointOptions {
  /** The state store's directory (default `./.weir/<job name>`). Run the job again with the same one to resume. */
  dir?: string;
  /** How often (default 1 s). A last checkpoint is also taken at the end of input and on `stop()`. */
  interval?: Duration;
  /** @deprecated spelling of `interval` in ms, as in DESIGN.md's first sketch. */
  intervalMs?: number;
  /** How many checkpoints to keep (default 3): if the newest is unusable, the job falls back to an older one. */
  retain?: number;
  /**
   * Start from this savepoint (a directory `p.savepoint(dir)` wrote) when `dir` holds no checkpoint
   * yet. Once the job has checkpoints of its own, a restart resumes from those.
   */
  fromSavepoint?: string;
  /**
   * Where checkpoints go. Advanced: by default weir keeps them in its state store under `dir`; a
   * storage of your own (or `MemoryCheckpointStorage` in tests) goes here.
   */
  storage?: CheckpointStorage;
}

/** Options of {@link Pipeline.source}. */
export interface SourceOptions<T> {
  /** Event time of a record, epoch ms (a fraction is dropped). Without it, records get the processing time they arrived at. */
  timestamp?: TimestampFn<T>;
  /** Watermark strategy (default: `ascending()` with a timestamp function, else ingestion-time). */
  watermarks?: WatermarkStrategy;
  /**
   * What to do with a record that cannot be processed downstream of this source (bad timestamp, a
   * user function that throws, a bad key): `'fail'` the job (default) or send it to a dead-letter sink
   * with the reason.
   */
  onError?: 'fail' | { deadLetter: Sink<DeadLetter> };
  /** Step name (default `source#id`). */
  name?: string;
  /** Records per poll for this source. */
  batchSize?: number;
}

/** What {@link Pipeline.run} resolves to. */
export interface RunResult extends JobOutcome {
  /** Counters at the end of the run. */
  readonly metrics: MetricSample[];
}

/**
 * A streaming job: build its topology with {@link Pipeline.source} and the stream DSL, then `run()`.
 *
 * @example
 * const p = new Pipeline({ name: 'card-features' });
 * p.source(sources.array(events), { timestamp: e => e.ts, watermarks: watermarks.boundedOutOfOrderness('5s') })
 *  .keyBy(e => e.card)
 *  .window(windows.tumbling('1m'))
 *  .aggregate(agg.sum(e => e.amount))
 *  .sink(sinks.collect(out));
 * await p.run();
 */
export class Pipeline {
  readonly name: string;
  /** @internal */ readonly plan = new Plan();
  /** @internal */ readonly options: Readonly<PipelineOptions>;
  private readonly registry = new MetricsRegistry();
  private job: Job | null = null;
  private running: Promise<RunResult> | null = null;
  /** `stop()` was called (a job started again after a rebalance stops at once). */
  private stopRequested = false;

  constructor(options: PipelineOptions) {
    if (!options || typeof options.name !== 'string' || options.name === '') {
      throw new WeirError('WEIR_INVALID_ARGUMENT', 'Pipeline needs a name: new Pipeline({ name: "my-job" })');
    }
    const backend = backendOf(options.state);
    if (backend !== undefined && !['memory', 'classic-level', 'rocksdb'].includes(backend)) {
      throw new WeirError('WEIR_INVALID_ARGUMENT', `state ${JSON.stringify(backend)}: use 'memory', 'classic-level' or 'rocksdb'`);
    }
    if (options.checkpoint && backend === 'memory' && !options.checkpoint.storage) {
      throw new WeirError('WEIR_INVALID_ARGUMENT', "checkpoints need a durable state store: state 'classic-level' (the default) or 'rocksdb', not 'memory'");
    }
    const cacheBytes = typeof options.state === 'object' ? options.state.cacheBytes : undefined;
    if (cacheBytes !== undefined && !(Number.isFinite(cacheBytes) && cacheBytes > 0)) {
      throw new WeirError('WEIR_INVALID_ARGUMENT', `state.cacheBytes must be a positive number of bytes, got ${cacheBytes}`);
    }
    if (cacheBytes !== undefined && backend === 'memory') {
      throw new WeirError('WEIR_INVALID_ARGUMENT', "state.cacheBytes spills keyed state to a store: use backend 'classic-level' (the default) or 'rocksdb', not 'memory'");
    }
    if (options.batchSize !== undefined && !(Number.isInteger(options.batchSize) && options.batchSize > 0)) {
      throw new WeirError('WEIR_INVALID_ARGUMENT', `batchSize must be a positive integer, got ${options.batchSize}`);
    }
    checkParallelism(options.parallelism ?? 1, options.maxParallelism ?? DEFAULT_MAX_PARALLELISM);
    if ((options.parallelism ?? 1) > 1 && !options.workers?.module) {
      throw new WeirError('WEIR_INVALID_ARGUMENT', "parallelism > 1 needs `workers: { module: import.meta.url, export: 'buildJob' }`: each worker thread builds the same pipeline with that function");
    }
    this.name = options.name;
    this.options = Object.freeze({ ...options });
  }

  /**
   * Adds a source; returns its stream.
   * @example p.source(sources.jsonl('events.jsonl'), { timestamp: e => e.ts, watermarks: watermarks.boundedOutOfOrderness('5s') })
   */
  source<T>(source: Source<T>, opts: SourceOptions<T> = {}): Stream<T> {
    if (!source || typeof source.poll !== 'function') throw new WeirError('WEIR_INVALID_ARGUMENT', 'source: expected a Source (an object with poll(max))');
    const deadLetter = opts.onError === undefined || opts.onError === 'fail' ? undefined : opts.onError.deadLetter;
    const id = this.plan.add({
      kind: 'source',
      inputs: [],
      source: source as Source<unknown>,
      timestamp: opts.timestamp as TimestampFn<unknown> | undefined,
      watermarks: opts.watermarks ?? wm.ascending(),
      deadLetter,
      batchSize: opts.batchSize,
      name: opts.name,
      label: `source:${source.name}`,
    });
    return new Stream<T>(this.plan, id);
  }

  /**
   * Runs the job. With bounded sources it resolves once the end of input (`+Infinity` watermark) has
   * fired every window and the sinks are flushed; it rejects with a {@link WeirError} on failure.
   */
  run(): Promise<RunResult> {
    if (!isMainThread && (workerData as { weir?: unknown } | null)?.weir !== undefined) {
      throw new WeirError('WEIR_JOB_STATE', `run() called in a weir worker thread: the workers' build function must only build pipeline ${this.name}, not run it`);
    }
    if (this.running) throw new WeirError('WEIR_JOB_STATE', `pipeline ${this.name} is already running or has run`);
    this.running = this.execute();
    return this.running;
  }

  /** Stops gracefully: sources stop, in-flight writes finish, sinks close. Resolves when `run()` does. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.stopRequested = true;
    this.job?.stop();
    await this.running.then(
      () => undefined,
      () => undefined,
    );
  }

  /**
   * Writes a savepoint into `dir` (a new, empty directory): a checkpoint taken now, copied whole, that
   * a job (this one, changed, or another version of it) can start from with
   * `checkpoint: { fromSavepoint: dir }`. Only while the job runs with `checkpoint`.
   * @example const { id } = await p.savepoint('./savepoints/before-upgrade');
   */
  async savepoint(dir: string): Promise<{ id: number; dir: string }> {
    const coordinator = this.job?.coordinator;
    if (!coordinator) throw new WeirError('WEIR_JOB_STATE', `savepoint: pipeline ${this.name} is not running with checkpoints`);
    const kind = this.storeKind();
    const logger = this.job!.env.logger.child({ component: 'savepoint' });
    const id = await coordinator.savepoint(async (cp) => {
      const target = await DurableCheckpointStorage.open(dir, kind, { maxParallelism: this.maxParallelism(), logger });
      try {
        if (target.nextId() !== 1) throw new WeirError('WEIR_INVALID_ARGUMENT', `savepoint: ${dir} already holds checkpoints; give an empty directory`);
        await target.writeFull(cp);
      } finally {
        await target.close();
      }
    });
    logger.info({ savepoint: id, dir }, 'savepoint written');
    return { id, dir };
  }

  private async readSavepoint(dir: string, kind: 'classic-level' | 'rocksdb', logger: Logger): Promise<StoredCheckpoint> {
    const sp = await DurableCheckpointStorage.open(dir, kind, { maxParallelism: this.maxParallelism(), logger });
    try {
      const cp = await sp.readLatest();
      if (!cp) throw new WeirError('WEIR_INVALID_ARGUMENT', `fromSavepoint: ${dir} holds no usable savepoint`);
      return cp;
    } finally {
      await sp.close();
    }
  }

  /**
   * The last completed checkpoint's figures (id, duration, state changes, bytes written), or null
   * before the first one or without `checkpoint`. Counters: `weir_checkpoints_total`,
   * `weir_checkpoint_bytes_total` in {@link Pipeline.metrics}.
   * @example setInterval(() => console.log(p.lastCheckpoint()), 10_000)
   */
  lastCheckpoint(): CheckpointStats | null {
    return this.job?.coordinator?.last ?? null;
  }

  /** The job's counters now (records in/out per step, late records, dead letters). */
  metrics(): MetricSample[] {
    return this.registry.snapshot();
  }

  /** @internal Builds the job (the test driver uses this too). */
  createJob(
    overrides: {
      clock?: Clock;
      logger?: Logger;
      allowDangling?: boolean;
      checkpointing?: boolean;
      placement?: Placement;
      remote?: RemoteStage;
      afterProcessingTime?: () => void;
      /** In a worker thread: its index (for the logs). */
      worker?: number;
    } = {},
  ): Job {
    this.plan.seal();
    const base = overrides.logger ?? this.options.logger ?? defaultLogger(this.name);
    const logger = overrides.worker === undefined ? base : base.child({ worker: overrides.worker });
    return new Job(this.plan, {
      name: this.name,
      logger,
      clock: overrides.clock ?? this.options.clock ?? systemClock,
      metrics: this.registry,
      state: this.stateBackend(overrides.worker),
      batchSize: this.options.batchSize ?? 1024,
      allowDangling: overrides.allowDangling,
      checkpointing: overrides.checkpointing,
      placement: overrides.placement,
      remote: overrides.remote,
      afterProcessingTime: overrides.afterProcessingTime,
    });
  }

  /** With `parallelism > 1`: the job's main-thread part, wired to its workers (started by `open()`). */
  private createParallelJob(checkpointing: boolean): Job {
    this.plan.seal();
    const remote = splitPlan(this.plan);
    const w = this.options.workers!;
    const module = w.module instanceof URL ? w.module.href : w.module.startsWith('file:') ? w.module : pathToFileURL(path.resolve(w.module)).href;
    const stage = new RemoteStage(
      {
        weir: 1,
        module,
        export: w.export ?? 'default',
        args: w.args,
        job: this.name,
        parallelism: this.options.parallelism!,
        maxParallelism: this.maxParallelism(),
        shape: planShape(this.plan),
        checkpointing,
      },
      this.plan.nodes.filter((n) => remote.has(n.id)).map((n) => n.name),
    );
    return this.createJob({ checkpointing, remote: stage, placement: { role: 'main', remote, exchange: (node, port) => stage.exchange(node, port) } });
  }

  private maxParallelism(): number {
    return this.options.maxParallelism ?? DEFAULT_MAX_PARALLELISM;
  }

  /** The LSM store checkpoints and savepoints go to. */
  private storeKind(): 'classic-level' | 'rocksdb' {
    return backendOf(this.options.state) === 'rocksdb' ? 'rocksdb' : 'classic-level';
  }

  private stateBackend(worker: number | undefined): StateBackend {
    const st = this.options.state;
    const base = this.spillBase();
    if (typeof st !== 'object' || st.cacheBytes === undefined || base === undefined) return new MemoryStateBackend();
    return new MemoryStateBackend({ cacheBytes: st.cacheBytes, dir: path.join(base, worker === undefined ? 'main' : `worker-${worker}`), kind: this.storeKind() });
  }

  /** Where this job's spill stores go (`state: { cacheBytes }`), or undefined without a budget. */
  private spillBase(): string | undefined {
    const st = this.options.state;
    if (typeof st !== 'object' || st.cacheBytes === undefined) return undefined;
    return st.spillDir ?? path.join(os.tmpdir(), `weir-spill-${this.name.replace(/[^A-Za-z0-9_.-]/g, '_')}-${process.pid}`);
  }

  /** At the end: removes the spill stores' directories (the whole default one; a given `spillDir` itself stays). */
  private async removeSpillDirs(): Promise<void> {
    const base = this.spillBase();
    if (base === undefined) return;
    const st = this.options.state as StateStoreOptions;
    if (st.spillDir === undefined) {
      await rm(base, { recursive: true, force: true });
      return;
    }
    const threads = ['main', ...Array.from({ length: this.options.parallelism ?? 1 }, (_, i) => `worker-${i}`)];
    for (const t of threads) await rm(path.join(base, t), { recursive: true, force: true });
  }

  /**
   * Runs the job; with a storage that restarts on rebalance (`kafkaChangelog`), runs it again each
   * time the Kafka group moves partitions (`WEIR_REBALANCED`), on the partitions this process now owns.
   */
  private async execute(): Promise<RunResult> {
    const storage = this.options.checkpoint?.storage as (CheckpointStorage & { restartsOnRebalance?: boolean }) | undefined;
    if (storage?.restartsOnRebalance !== true) return this.executeOnce();
    try {
      for (;;) {
        try {
          return await this.executeOnce();
        } catch (e) {
          if (!(e instanceof WeirError && e.code === 'WEIR_REBALANCED') || this.stopRequested) throw e;
          this.registry.counter('weir_rebalances_total').value++;
          this.job?.env.logger.warn({ reason: e.message }, 'the Kafka group rebalanced: starting the job again on the partitions this process owns now');
        }
      }
    } finally {
      await storage.close();
    }
  }

  private async executeOnce(): Promise<RunResult> {
    const checkpoint = this.options.checkpoint;
    const checkpointing = checkpoint !== undefined;
    const job = (this.job = (this.options.parallelism ?? 1) > 1 ? this.createParallelJob(checkpointing) : this.createJob({ checkpointing }));
    if (!checkpoint) {
      const eo = job.compiled.sinks.find((s) => isTransactional(s.sink));
      if (eo) throw new WeirError('WEIR_INVALID_PLAN', `${eo.name} is exactly-once: it commits at checkpoints, so the pipeline needs \`checkpoint\``, { step: eo.name });
    }
    const through = job.compiled.sinks.find((s) => isRepartitionWriter(s.sink));
    const eos = job.compiled.sinks.find((s) => isTransactional(s.sink));
    if (through && eos) {
      throw new WeirError(
        'WEIR_INVALID_PLAN',
        `${eos.name} is exactly-once, but ${through.name} repartitions through Kafka at least once: kafkajs's read_committed lets aborted writes of other processes through, so the records read back could repeat. Use at-least-once sinks with \`through\`, or key the input topic by the stream's key`,
        { step: through.name },
      );
    }
    const progress = this.progressReporter(job);
    let ownStorage: DurableCheckpointStorage | undefined;
    job.env.logger.info({ job: this.name, sources: job.compiled.sources.length, operators: job.compiled.operators.length }, 'job starting');
    try {
      try {
        checkpoint?.storage?.attach?.(
          {
            sources: job.compiled.sources.map((s) => ({ name: s.node.name, source: s.plan.source })),
            sinks: job.compiled.sinks.map((s) => ({ name: s.name, sink: s.sink })),
          },
          job.env.logger.child({ component: 'checkpoints' }),
        );
        await job.open();
        if (this.stopRequested) job.stop();
        if (checkpoint) {
          const logger = job.env.logger.child({ component: 'checkpoints' });
          if (!checkpoint.storage) {
            const kind = this.storeKind();
            const dir = checkpoint.dir ?? path.join('.weir', this.name);
            ownStorage = await DurableCheckpointStorage.open(dir, kind, { retain: checkpoint.retain, maxParallelism: this.maxParallelism(), logger });
          }
          const storage = checkpoint.storage ?? ownStorage!;
          const interval = toMillis(checkpoint.interval ?? checkpoint.intervalMs ?? 1000, 'checkpoint.interval');
          const coordinator = new CheckpointCoordinator(job, storage, interval, logger, {
            completed: this.registry.counter('weir_checkpoints_total'),
            bytes: this.registry.counter('weir_checkpoint_bytes_total'),
          });
          const kind = this.storeKind();
          const fromSavepoint = checkpoint.fromSavepoint;
          await coordinator.recover(fromSavepoint === undefined ? undefined : () => this.readSavepoint(fromSavepoint, kind, logger));
          job.coordinator = coordinator;
        }
      } catch (e) {
        await job.dispose();
        throw e;
      }
      progress?.start();
      const outcome = await job.run();
      job.env.logger.info({ job: this.name, ...outcome }, 'job done');
      return { ...outcome, metrics: this.registry.snapshot() };
    } finally {
      progress?.stop();
      await ownStorage?.close();
      await this.removeSpillDirs();
    }
  }

  private progressReporter(job: Job): ProgressReporter | null {
    const p = this.options.progress;
    if (!p) return null;
    const interval = p === true ? 1000 : toMillis(p.interval, 'progress.interval');
    const write = p === true || !p.write ? (line: string) => process.stderr.write(`${line}\n`) : p.write;
    return new ProgressReporter(this.name, job, this.registry, interval, write);
  }
}

/** The store named by a `state` option, in either form. */
function backendOf(state: PipelineOptions['state']): StateBackendKind | undefined {
  return typeof state === 'object' && state !== null ? (state.backend ?? 'classic-level') : state;
}

import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Pipeline, state, type Source } from '../../src/index.js';
import { collectingLogger, dirBytes, runScenario, type TargetCheck } from '../lib/scenario-runner.js';

/**
 * One checkpoint of 1M dirty keys, and the recovery of 1M keys, on classic-level and rocksdb.
 *
 * The measured run: a keyed `process` function sets a value state (a number) for N distinct string
 * keys (N = the scenario's event count: 1M), one record per key, then calls `p.stop()`; the stop
 * takes the only checkpoint (the periodic interval is 1 h), with N dirty keys. Its duration is the
 * coordinator's (`checkpoint complete` log line: snapshot, encoding, the synced write batch, the
 * retain/GC step); `stopToRunEndMs` is the same seen from outside (stop() to run() resolving).
 *
 * Then the recovery, in a fresh node process (a restart: a new heap, nothing JIT-compiled): a second
 * pipeline on the same directory, same graph, whose source resumes where the checkpoint left it;
 * `recoveryMs` is the time from its `run()` call to its first record reaching the process function:
 * opening the job and the store (LevelDB/RocksDB replay their log), reading the newest manifest,
 * reading the state as of it and restoring it into the operator, seeking the source. The job then
 * reads each of the N keys once more and checks its restored value (a wrong or missing one fails
 * the scenario). The store's size on disk per key is taken after the checkpoint and after the
 * recovery (whose reopen turned the log into a table file).
 */

const NAME = 'checkpoint-1m-dirty';
const STATES = ['classic-level', 'rocksdb'] as const;
type State = (typeof STATES)[number];

function stateOf(args: Readonly<Record<string, string>>): State {
  const s = (args.state ?? 'classic-level') as State;
  if (!STATES.includes(s)) throw new Error(`--state=${args.state}: use ${STATES.join(', ')}`);
  return s;
}

/** Key `i` of `n`: distinct strings, in a scattered order (as benchmarks/store/store-bench.ts). */
const keyOf = (i: number): string => `card-${(i * 2654435761) % 4294967296}`;
const valueOf = (i: number): number => i % 977;

interface KeyRecord {
  readonly i: number;
  readonly k: string;
  readonly v: number;
}

/**
 * Records `i` = 0, 1, ... for key `keyOf(i % n)`; `[]` (nothing yet) once `i` reaches `pauseAt`,
 * the end of input at `endAt`. Resumable: its position is `i`.
 */
function keySource(n: number, pauseAt: number, endAt: number): Source<KeyRecord> {
  let i = 0;
  return {
    name: 'keys',
    poll(max) {
      if (i >= endAt) return null;
      if (i >= pauseAt) return [];
      const m = Math.min(max, pauseAt - i);
      const batch = new Array<KeyRecord>(m);
      for (let j = 0; j < m; j++, i++) batch[j] = { i, k: keyOf(i % n), v: valueOf(i % n) };
      return batch;
    },
    savePosition: () => i,
    seek(position) {
      if (typeof position !== 'number') throw new Error(`keys: cannot resume from ${JSON.stringify(position)}`);
      i = position;
    },
  };
}

/** What the recovery process prints. */
interface Recovery {
  readonly keys: number;
  /** run() called → first record in the process function, ms. */
  readonly recoveryMs: number;
  /** run() called → the coordinator's `restored from checkpoint` log line (the state is back in the operator), ms. */
  readonly restoredMs: number;
  /** Reading the N keys again and checking their values, ms. */
  readonly verifyMs: number;
  readonly checked: number;
  readonly wrong: number;
  readonly peakRssMb: number;
}

/** The recovery side, in its own process: `node checkpoint-1m-dirty.js --recover-from=DIR --state=S --keys=N`. */
async function recover(dir: string, kind: State, n: number): Promise<Recovery> {
  const log = collectingLogger((msg) => msg === 'restored from checkpoint');
  const p = new Pipeline({ name: NAME, state: kind, checkpoint: { dir, interval: '1h' }, logger: log.logger, batchSize: 1024 });
  let checked = 0;
  let wrong = 0;
  let firstAt = NaN;
  p.source(keySource(n, 2 * n, 2 * n))
    .keyBy((e) => e.k)
    .process({
      state: { v: state.value(-1) },
      processElement(e, ctx) {
        if (checked === 0) firstAt = performance.now();
        checked++;
        if (ctx.state.v.get() !== e.v) wrong++;
      },
    })
    .sink({ name: 'none', write() {} });
  const t0 = performance.now();
  await p.run();
  const t1 = performance.now();
  const restored = log.lines.find((l) => l.record.msg === 'restored from checkpoint');
  if (!restored) throw new Error(`${NAME}: the second run did not restore a checkpoint`);
  return {
    keys: n,
    recoveryMs: Math.round(firstAt - t0),
    restoredMs: Math.round(restored.at - t0),
    verifyMs: Math.round(t1 - firstAt),
    checked,
    wrong,
    peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
  };
}

const arg = (name: string): string | undefined => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const recoverFrom = arg('recover-from');

if (recoverFrom !== undefined) {
  process.stdout.write(`${JSON.stringify(await recover(recoverFrom, stateOf({ state: arg('state') ?? '' }), Number(arg('keys'))))}\n`);
} else {
  let stopAt = NaN;
  await runScenario({
    name: NAME,
    events: { full: 1_000_000, quick: 2_000 },
    variants: STATES.map((s) => ({ state: s })),
    options: (args) => ({ state: stateOf(args), checkpoint: { interval: '1h' } }),
    build(p, { events, wrap, sink }) {
      let seen = 0;
      stopAt = NaN;
      p.source(wrap(keySource(events, events, Infinity)))
        .keyBy((e) => e.k)
        .process({
          state: { v: state.value(0) },
          processElement(e, ctx) {
            ctx.state.v.set(e.v);
            if (++seen === events) {
              stopAt = performance.now();
              void p.stop();
            }
          },
        })
        .sink(sink);
    },
    async after({ args, events, dir, checkpoints, runEndedAt }) {
      if (!dir || !checkpoints) throw new Error(`${NAME}: no checkpoint directory`);
      if (checkpoints.count !== 1) throw new Error(`${NAME}: expected one checkpoint (the stop's), got ${checkpoints.count}`);
      const bytesAfterCheckpoint = dirBytes(dir);
      const self = fileURLToPath(import.meta.url);
      // The same node flags (--cpu-prof of `npm run bench -- --profile`...).
      const out = execFileSync(process.execPath, [...process.execArgv, self, `--recover-from=${dir}`, `--state=${stateOf(args)}`, `--keys=${events}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
      const r = JSON.parse(out.trim().split('\n').at(-1)!) as Recovery;
      if (r.checked !== events || r.wrong !== 0) throw new Error(`${NAME}: the recovery checked ${r.checked} of ${events} keys, ${r.wrong} restored wrong`);
      const bytesAfterRecovery = dirBytes(dir);
      const checks: TargetCheck[] = [
        { name: 'checkpoint of all keys dirty', value: checkpoints.lastMs, max: 1000, unit: 'ms', ok: checkpoints.lastMs <= 1000 },
        { name: 'recovery of all keys', value: r.recoveryMs, max: 2000, unit: 'ms', ok: r.recoveryMs <= 2000 },
      ];
      const perKey = (b: number) => (b / events).toFixed(1);
      return {
        checks,
        notes: [
          `recovery: ${r.restoredMs} ms to the state restored (job and store open, manifest, read as of it, into the operator), ${r.recoveryMs - r.restoredMs} ms more to the first record`,
          `state on disk: ${perKey(bytesAfterCheckpoint)} B/key after the checkpoint, ${perKey(bytesAfterRecovery)} B/key once the recovery reopened the store`,
        ],
        extra: {
          keys: events,
          checkpointMs: checkpoints.lastMs,
          stopToRunEndMs: Math.round(runEndedAt - stopAt),
          stateChanges: checkpoints.stateChanges,
          recoveryMs: r.recoveryMs,
          restoredMs: r.restoredMs,
          verifyMs: r.verifyMs,
          recoveryPeakRssMb: r.peakRssMb,
          bytesOnDiskAfterCheckpoint: bytesAfterCheckpoint,
          bytesPerKeyAfterCheckpoint: Number((bytesAfterCheckpoint / events).toFixed(1)),
          bytesOnDiskAfterRecovery: bytesAfterRecovery,
          bytesPerKeyAfterRecovery: Number((bytesAfterRecovery / events).toFixed(1)),
        },
      };
    },
    config: (args) => ({
      query: 'records | keyBy(k) | process(value state := v), then p.stop()',
      source: 'one record per key { k: "card-<n>", v: number }',
      state: stateOf(args),
      checkpoint: 'only the one stop() takes (interval 1 h)',
      recovery: 'a fresh process: run() until its first record, then every key checked',
    }),
  });
}

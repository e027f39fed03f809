/**
 * Exactly-once under SIGKILL: the job of test/fixtures/crash-job.ts runs in a child process, is killed
 * at random moments several times and restarted with the same command each time, until it finishes.
 * Its output must equal a failure-free run's (as a multiset): for classic-level and rocksdb state, and
 * for the exactly-once jsonl and PostgreSQL sinks.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Random } from '../src/index.js';
import type { CrashJobConfig } from './fixtures/crash-job.js';
import { runJob, type JobExit, type Kill } from './killable-job.js';

const job = fileURLToPath(new URL('./fixtures/crash-job.js', import.meta.url));
const PG_URL = process.env.WEIR_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test';
const EVENTS = 60_000;

/** Runs the job once (killed with SIGKILL after `kill.afterPolls` polls, when given). */
function runOnce(cfg: CrashJobConfig, kill?: Kill): Promise<JobExit> {
  return runJob(job, cfg, { logLevel: 'silent', kill });
}

/**
 * Kills and restarts the job at random moments until it finishes by itself; returns how many kills
 * landed. With `parallelisms`, run k uses the k-th (cyclically): a restart at another parallelism.
 */
async function runWithCrashes(cfg: CrashJobConfig, seed: number, parallelisms?: readonly number[]): Promise<number> {
  const rng = new Random(seed);
  let kills = 0;
  for (let attempt = 0; attempt < 40; attempt++) {
    // Four kills at random moments (the whole run polls ~230 times), then let it run to the end.
    const kill = kills < 4 ? { afterPolls: 3 + rng.int(40), extraMs: rng.int(15) } : undefined;
    const run = parallelisms ? { ...cfg, parallelism: parallelisms[attempt % parallelisms.length] } : cfg;
    const r = await runOnce(run, kill);
    if (r.signal === 'SIGKILL') {
      kills++;
      continue;
    }
    assert.equal(r.code, 0, `the job failed: ${r.stderr}`);
    return kills;
  }
  assert.fail('the job never finished');
}

async function jsonlRows(file: string): Promise<string[]> {
  return (await readFile(file, 'utf8')).split('\n').filter(Boolean).sort();
}

for (const state of ['classic-level', 'rocksdb'] as const) {
  describe(`crash recovery with ${state} state`, () => {
    let dir = '';
    before(async () => {
      dir = await mkdtemp(path.join(tmpdir(), `weir-crash-${state}-`));
    });
    after(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('jsonl exactly-once: killed with SIGKILL several times, the output equals a failure-free run', async () => {
      const clean: CrashJobConfig = { dir: path.join(dir, 'clean-ckpt'), state, sink: 'jsonl', target: path.join(dir, 'clean.jsonl'), events: EVENTS };
      assert.equal((await runOnce(clean)).code, 0);
      const expected = await jsonlRows(clean.target);
      assert.ok(expected.length > 1000);
      const crashed: CrashJobConfig = { ...clean, dir: path.join(dir, 'crash-ckpt'), target: path.join(dir, 'crash.jsonl') };
      const kills = await runWithCrashes(crashed, 7);
      assert.equal(kills, 4, 'four kills landed mid-run');
      assert.deepEqual(await jsonlRows(crashed.target), expected);
      if (state !== 'classic-level') return;
      // The same job with its window in worker threads, restarted at another parallelism each time.
      const rescaled: CrashJobConfig = { ...clean, dir: path.join(dir, 'rescale-ckpt'), target: path.join(dir, 'rescale.jsonl') };
      assert.equal(await runWithCrashes(rescaled, 23, [2, 3, 1, 4]), 4, 'four kills landed mid-run');
      assert.deepEqual(await jsonlRows(rescaled.target), expected);
    });

    it('postgres exactly-once: killed with SIGKILL several times, the table equals a failure-free run', async (t) => {
      const pg = (await import('pg')).default;
      const pool = new pg.Pool({ connectionString: PG_URL, max: 1, connectionTimeoutMillis: 3000 });
      try {
        await pool.query('select 1');
      } catch (e) {
        await pool.end();
        const why = `PostgreSQL at ${PG_URL} is unreachable (${(e as Error).message})`;
        if (process.env.CI === 'true') assert.fail(why);
        console.log(`!!! SKIPPED: ${why}`);
        t.skip(why);
        return;
      }
      const schema = `weir_crash_${state.replace('-', '_')}_${process.pid}`;
      try {
        await pool.query(`create schema ${schema}`);
        for (const table of ['clean', 'crash']) await pool.query(`create table ${schema}.${table} (key int, start bigint, count int)`);
        const base = { state, sink: 'postgres' as const, events: EVENTS, connection: PG_URL, schema };
        assert.equal((await runOnce({ ...base, dir: path.join(dir, 'pg-clean'), target: 'clean' })).code, 0);
        const kills = await runWithCrashes({ ...base, dir: path.join(dir, 'pg-crash'), target: 'crash' }, 11);
        assert.equal(kills, 4, 'four kills landed mid-run');
        const rows = async (table: string) => (await pool.query(`select key, start, count from ${schema}.${table} order by key, start, count`)).rows;
        const expected = await rows('clean');
        assert.ok(expected.length > 1000);
        assert.deepEqual(await rows('crash'), expected);
      } finally {
        await pool.query(`drop schema if exists ${schema} cascade`);
        await pool.end();
      }
    });
  });
}

/**
 * A job that survives `kill -9`: checkpoints on LevelDB and an exactly-once JSONL sink.
 *
 * The parent starts the job in a child process, kills it with SIGKILL a few times while it runs,
 * starts it again with the same command each time (it resumes from its last checkpoint), and finally
 * checks the output against a run that was never killed: every window result once, none lost.
 *
 *   node dist/examples/survive-a-crash.js
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pipeline, agg, sinks, sources, watermarks, windows } from 'weir';

const [, , role, dir, out] = process.argv;

if (role === 'job') {
  // The job: 300K clicks, a count per user and 10-second window, every result to out.jsonl exactly once.
  const p = new Pipeline({ name: 'clicks-per-user', state: 'classic-level', checkpoint: { dir, interval: '50ms' } });
  const clicks = sources.generator((i, rng) => ({ user: `u${rng.int(200)}`, ts: i * 3 + rng.int(100) }), { count: 300_000, seed: 1 });
  // Tell the parent how far we are (it kills us after some batches), and go a little slower.
  let polls = 0;
  const reported: typeof clicks = {
    ...clicks,
    poll: async (max) => {
      process.stdout.write(`batch ${++polls}\n`);
      if (polls % 8 === 0) await new Promise((r) => setTimeout(r, 2));
      return clicks.poll(max);
    },
  };
  p.source(reported, { timestamp: (c) => c.ts, watermarks: watermarks.boundedOutOfOrderness('200ms') })
    .keyBy((c) => c.user)
    .window(windows.tumbling('10s'))
    .aggregate(agg.count())
    .sink(sinks.jsonl(out, { exactlyOnce: true }), { name: 'counts' });
  await p.run();
} else {
  const self = fileURLToPath(import.meta.url);
  const work = mkdtempSync(path.join(tmpdir(), 'weir-crash-demo-'));
  /** Runs the job; with `killAfter`, kills it with SIGKILL once it has read that many batches. */
  const run = (ckpt: string, file: string, killAfter?: number) =>
    new Promise<'killed' | 'done'>((resolve, reject) => {
      const child = spawn(process.execPath, [self, 'job', ckpt, file], { stdio: ['ignore', 'pipe', 'inherit'] });
      let batches = 0;
      child.stdout.on('data', (d: Buffer) => {
        batches += d.toString().split('\n').length - 1;
        if (killAfter !== undefined && batches >= killAfter) child.kill('SIGKILL');
      });
      child.on('exit', (code, signal) => (signal === 'SIGKILL' ? resolve('killed') : code === 0 ? resolve('done') : reject(new Error(`job exited ${code}`))));
    });
  const lines = (file: string) => readFileSync(file, 'utf8').split('\n').filter(Boolean).sort();
  try {
    await run(path.join(work, 'clean'), path.join(work, 'clean.jsonl'));
    const crashed = path.join(work, 'crashed.jsonl');
    let kills = 0;
    for (const killAfter of [40, 25, 60, undefined]) {
      const how = await run(path.join(work, 'ckpt'), crashed, killAfter);
      if (how === 'killed') kills++;
      console.log(how === 'killed' ? `run ${kills}: killed with SIGKILL after ${killAfter} batches` : `last run: resumed from its checkpoint and finished`);
    }
    const expected = lines(path.join(work, 'clean.jsonl'));
    const actual = lines(crashed);
    const same = expected.length === actual.length && expected.every((l, i) => l === actual[i]);
    console.log(`${actual.length} window results after ${kills} kills; a run never killed has ${expected.length}: ${same ? 'identical, each exactly once' : 'DIFFERENT'}`);
    if (!same) process.exitCode = 1;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

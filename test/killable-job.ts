/**
 * Runs a job script in a child process (`node <script> <JSON config>`), optionally killing it with
 * SIGKILL once it has polled its source `afterPolls` times (the crash fixtures print a line per poll)
 * plus `extraMs`. Counting polls rather than milliseconds makes the kills land mid-run on a fast
 * machine and a slow one alike. Used by the crash tests.
 */
import { spawn } from 'node:child_process';

/** How a run ended. */
export interface JobExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/** When to kill: after this many polls, and this many more ms. */
export interface Kill {
  afterPolls: number;
  extraMs: number;
}

export function runJob(script: string, config: unknown, opts: { logLevel: string; kill?: Kill }): Promise<JobExit> {
  const { kill } = opts;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, JSON.stringify(config)], { env: { ...process.env, WEIR_LOG_LEVEL: opts.logLevel }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let polls = 0;
    let timer: NodeJS.Timeout | undefined;
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      for (let i = 0; i < d.length; i++) if (d[i] === 10) polls++;
      if (kill && timer === undefined && polls >= kill.afterPolls) timer = setTimeout(() => child.kill('SIGKILL'), kill.extraMs);
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stderr });
    });
  });
}

/**
 * The Kafka broker for tests: `await kafkaBrokers(t)` gives `{ brokers: ['127.0.0.1:19092'], stop }`.
 *
 * - `KAFKA_BROKERS` set (comma-separated host:port): those brokers are used as they are; nothing is
 *   started or stopped.
 * - Otherwise the real single-node broker of scripts/kafka/broker.mjs is used: started if it does not
 *   run (jars fetched by Maven the first time), on behalf of this process, which holds a lease on it.
 *   The lease goes at `stop()`, or when the process is about to exit, or (crash) when a keeper process
 *   sees this pid dead. A broker the tests started is stopped when its last lease goes; a broker
 *   started by `npm run kafka:start` is never stopped by tests. See docs/kafka.md.
 * - When no broker can be had: under CI=true it throws (the test fails); otherwise it warns on stderr,
 *   skips `t` with the reason, and returns null (the caller returns).
 *
 * The first call in a process starts/joins the broker; later calls reuse that (or its failure).
 */
import { spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel } from 'kafkajs';

export interface KafkaBrokers {
  /** host:port list for kafkajs `brokers`. */
  brokers: string[];
  /** Where the brokers came from: `KAFKA_BROKERS`, or the test broker of scripts/kafka/broker.mjs. */
  source: 'env' | 'script';
  /** This process is done with the broker (idempotent). The broker stops if the tests started it and no other process uses it. */
  stop(): Promise<void>;
}

type Acquired = { ok: true; brokers: string[]; source: 'env' | 'script'; leaseFile: string | null } | { ok: false; why: string };

const ACQUIRE_TIMEOUT_MS = Number(process.env.KAFKA_ACQUIRE_TIMEOUT_MS ?? 15 * 60_000);

let acquiring: Promise<Acquired> | null = null;
let held: Extract<Acquired, { ok: true }> | null = null;
let releasing: Promise<void> | null = null;
let hooksInstalled = false;

/** scripts/kafka/broker.mjs, found upward from this file (it runs from dist/test/ or .build-*\/test/). */
function brokerScript(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = path.join(dir, 'scripts', 'kafka', 'broker.mjs');
    if (existsSync(candidate)) return candidate;
    const up = path.dirname(dir);
    if (up === dir) throw new Error('scripts/kafka/broker.mjs not found above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}

function runScript(args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [brokerScript(), ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      stderr += `\n(killed after ${timeoutMs} ms)`;
      child.kill('SIGTERM');
    }, timeoutMs);
    child.once('error', (e) => {
      stderr += `\n${e.message}`;
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

async function reachable(brokers: string[]): Promise<string | null> {
  const admin = new Kafka({ clientId: 'weir-test-probe', brokers, logLevel: logLevel.NOTHING, connectionTimeout: 3000, retry: { retries: 2 } }).admin();
  try {
    await admin.connect();
    await admin.describeCluster();
    return null;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

async function acquire(): Promise<Acquired> {
  const fromEnv = process.env.KAFKA_BROKERS?.split(',').map((s) => s.trim()).filter(Boolean) ?? [];
  if (fromEnv.length > 0) {
    const err = await reachable(fromEnv);
    if (err !== null) return { ok: false, why: `KAFKA_BROKERS=${fromEnv.join(',')} is unreachable (${err})` };
    return { ok: true, brokers: fromEnv, source: 'env', leaseFile: null };
  }
  let r: Awaited<ReturnType<typeof runScript>>;
  try {
    r = await runScript(['acquire', '--lease', String(process.pid)], ACQUIRE_TIMEOUT_MS);
  } catch (e) {
    return { ok: false, why: e instanceof Error ? e.message : String(e) };
  }
  const last = r.stdout.trim().split('\n').pop() ?? '';
  if (r.code !== 0 || !last.startsWith('{')) {
    const why = r.stderr.trim().split('\n').slice(-30).join('\n').replace(/^\[kafka\] /gm, '') || `broker.mjs acquire exited with ${r.code}`;
    return { ok: false, why };
  }
  const info = JSON.parse(last) as { brokers: string[]; leaseFile: string };
  return { ok: true, brokers: info.brokers, source: 'script', leaseFile: info.leaseFile };
}

async function release(): Promise<void> {
  const h = held;
  held = null;
  acquiring = null;
  if (h === null || h.source !== 'script') return;
  const r = await runScript(['release', '--lease', String(process.pid)], 60_000);
  if (r.code !== 0) process.stderr.write(`[kafka] releasing the test broker failed:\n${r.stderr}\n`);
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  // The process is done (its event loop drained): release the lease, which stops a broker the
  // tests started once no other process holds one. Async work is fine in 'beforeExit'.
  process.on('beforeExit', () => {
    if (held !== null && releasing === null) releasing = release().finally(() => (releasing = null));
  });
  // process.exit() or a crash-free exit without 'beforeExit': at least drop the lease file;
  // the keeper then stops the broker once no live process holds a lease.
  process.on('exit', () => {
    if (held?.leaseFile) rmSync(held.leaseFile, { force: true });
  });
}

/**
 * The brokers to test against, or null when there are none and the test was skipped (never under CI=true:
 * there it throws). Pass the test context so that it is skipped loudly with the reason.
 */
export async function kafkaBrokers(t?: { skip(message?: string): void }): Promise<KafkaBrokers | null> {
  if (releasing !== null) await releasing;
  acquiring ??= acquire();
  const got = await acquiring;
  if (!got.ok) {
    const why = `Kafka broker unavailable: ${got.why}`;
    if (process.env.CI === 'true') throw new Error(`${why}\n(CI=true: the Kafka tests must run)`);
    console.warn(`\n!!! SKIPPED: ${why}\n`);
    t?.skip(why.split('\n')[0]);
    return null;
  }
  held = got;
  installHooks();
  const handle = got;
  return {
    brokers: [...got.brokers],
    source: got.source,
    async stop() {
      if (held !== handle) return;
      await release();
    },
  };
}

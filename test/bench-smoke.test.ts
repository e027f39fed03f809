import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

// Proves the benchmark scenarios run and report; it asserts no speed (see benchmarks/README.md).
const exec = promisify(execFile);
const benchDir = fileURLToPath(new URL('../benchmarks/', import.meta.url));
const scenariosDir = path.join(benchDir, 'scenarios');
const scenarios = readdirSync(scenariosDir)
  .filter((f) => f.endsWith('.js'))
  .map((f) => f.slice(0, -3));
const env = { ...process.env, WEIR_BENCH_QUICK: '1', WEIR_LOG_LEVEL: 'silent' };

async function runScenario(name: string, args: string[] = []): Promise<Record<string, unknown>> {
  const { stdout } = await exec(process.execPath, [path.join(scenariosDir, `${name}.js`), ...args], { env, timeout: 60_000 });
  const lines = stdout.trim().split('\n');
  assert.equal(lines.length, 1, `${name} prints one JSON line, got: ${stdout}`);
  return JSON.parse(lines[0]) as Record<string, unknown>;
}

describe('benchmarks (quick mode)', () => {
  it('has the scenarios of the issue', () => {
    for (const s of ['q0', 'q5', 'q5-slide-sweep', 'q5-slide-sweep-auctions', 'q11', 'keyed-tumbling-100k', 'keyed-tumbling-1m-checkpointed', 'checkpoint-1m-dirty']) assert.ok(scenarios.includes(s), s);
  });

  for (const name of scenarios) {
    it(`${name} runs and prints its figures`, async () => {
      const variants = JSON.parse((await exec(process.execPath, [path.join(scenariosDir, `${name}.js`), '--variants'], { env })).stdout) as Record<string, string>[];
      assert.ok(Array.isArray(variants) && variants.length >= 1);
      // The first and the last variant (the sweep's ends).
      for (const v of new Set([variants[0], variants[variants.length - 1]])) {
        const args = Object.entries(v).map(([k, val]) => `--${k}=${val}`);
        const r = await runScenario(name, args);
        assert.equal(r.scenario, name);
        assert.equal(r.quick, true);
        assert.ok((r.events as number) > 0);
        assert.ok((r.eventsPerSec as number) > 0, 'positive throughput');
        assert.ok((r.wallMs as number) > 0);
        const lat = r.latencyMs as { p50: number; p99: number; max: number };
        assert.ok(lat.p50 >= 0 && lat.p99 >= lat.p50 && lat.max >= lat.p99);
        assert.ok((r.peakRssMb as number) > 0);
        assert.ok((r.batches as number) >= 1);
        assert.equal(typeof r.config, 'object');
        assert.equal(typeof r.recordsOut, 'object');
        // Scenarios on a durable store report their checkpoints (count, durations, bytes on disk).
        if (v.state !== undefined && v.state !== 'memory') {
          const c = r.checkpoints as { count: number; durationsMs: number[]; diskBytes: number };
          assert.ok(c.count >= 1 && c.durationsMs.length === c.count, 'checkpoints counted and timed');
          assert.ok(c.diskBytes > 0, 'store size on disk');
        }
        for (const check of (r.checks ?? []) as { value: number; max: number }[]) assert.ok(Number.isFinite(check.value) && check.max > 0);
      }
    });
  }

  it('the runner prints the environment and a table, writes JSON and compares with a baseline', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'weir-bench-'));
    try {
      const baseline = {
        environment: { commit: 'abc', date: '2020-01-01' },
        quick: true,
        results: [{ scenario: 'q0', variant: '', eventsPerSec: 1000, latencyMs: { p50: 1, p99: 1, max: 1 } }],
      };
      writeFileSync(path.join(dir, 'baseline.json'), JSON.stringify(baseline));
      const { stdout } = await exec(process.execPath, [path.join(benchDir, 'run.js'), 'q0', 'q5-slide-sweep', '--quick'], {
        env: { ...env, WEIR_BENCH_RESULTS_DIR: dir },
        timeout: 120_000,
      });
      assert.match(stdout, /node v\d+/);
      assert.match(stdout, /\d+ cores/);
      assert.match(stdout, /events\/s/);
      assert.match(stdout, /vs baseline/);
      assert.match(stdout, /q5-slide-sweep: .* drop/);
      const report = JSON.parse(readFileSync(path.join(dir, 'quick.tmp.json'), 'utf8'));
      assert.equal(report.quick, true);
      assert.deepEqual(
        report.results.map((r: { scenario: string; variant: string }) => `${r.scenario}:${r.variant}`),
        ['q0:', 'q5-slide-sweep:slide=2s', 'q5-slide-sweep:slide=1s', 'q5-slide-sweep:slide=500ms', 'q5-slide-sweep:slide=200ms', 'q5-slide-sweep:slide=100ms'],
      );
      assert.equal(report.slideSweeps[0].scenario, 'q5-slide-sweep');
      assert.equal(typeof report.slideSweeps[0].dropPct, 'number');
      assert.ok(report.environment.node.startsWith('v'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the runner rejects an unknown scenario', async () => {
    await assert.rejects(exec(process.execPath, [path.join(benchDir, 'run.js'), 'no-such-scenario', '--quick'], { env }), /unknown scenario/);
  });
});

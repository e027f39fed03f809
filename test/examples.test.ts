/**
 * Runs every example in examples/ (compiled: dist/examples/*.js) in a fresh process and checks what it
 * prints. main's figures are checked against a naive recomputation from the same seeded data.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { Random } from '../src/index.js';
import { BURST_MERCHANTS, cardTransactions, type Txn } from '../examples/data/card-transactions.js';
import { kafkaBrokers } from './kafka-broker.js';

const EXAMPLES = new URL('../examples/', import.meta.url);
const CHECKED = ['main.js', 'quick-start.js', 'sessions.js', 'late-data.js', 'testing-your-job.js', 'survive-a-crash.js', 'kafka-card-totals.js'];

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runExample(file: string, args: string[] = [], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [fileURLToPath(new URL(file, EXAMPLES)), ...args],
      { env: { ...process.env, WEIR_LOG_LEVEL: 'silent', ...env }, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

function assertOk(r: Run, file: string): void {
  assert.equal(r.code, 0, `${file} exited with ${r.code}\n${r.stderr}`);
  assert.ok(r.stdout.trim().length > 0, `${file} printed nothing`);
}

describe('examples', () => {
  const files = readdirSync(EXAMPLES).filter((f) => f.endsWith('.js'));

  it('are all built', () => {
    for (const f of CHECKED) assert.ok(files.includes(f), `dist/examples/${f} is missing`);
  });

  for (const file of files.filter((f) => !CHECKED.includes(f))) {
    it(`${file} runs and prints something`, { timeout: 90_000 }, async () => assertOk(await runExample(file), file));
  }

  it('survive-a-crash: killed three times with SIGKILL, the job still writes each result exactly once', { timeout: 90_000 }, async () => {
    const r = await runExample('survive-a-crash.js');
    assertOk(r, 'survive-a-crash.js');
    assert.equal(r.stdout.match(/killed with SIGKILL/g)?.length, 3);
    const m = /^(\d+) window results after 3 kills; a run never killed has (\d+): identical, each exactly once$/m.exec(r.stdout);
    assert.ok(m, r.stdout);
    assert.equal(m[1], m[2]);
    assert.ok(Number(m[1]) > 1000);
  });

  it('kafka-card-totals: Kafka in and out exactly once, the totals read back match the input', { timeout: 120_000 }, async (t) => {
    const broker = await kafkaBrokers(t);
    if (broker === null) return;
    try {
      const r = await runExample('kafka-card-totals.js', [], { KAFKA_BROKERS: broker.brokers.join(',') });
      assertOk(r, 'kafka-card-totals');
      const written = /totals written\s+(\d+)/.exec(r.stdout);
      const read = /read back \(read_committed\)\s+(\d+)/.exec(r.stdout);
      const spend = /spend in totals\s+([\d.]+) \(input: ([\d.]+)\)/.exec(r.stdout);
      const purchases = /= (\d+) of (\d+)$/m.exec(r.stdout);
      assert.ok(written && read && spend && purchases, r.stdout);
      assert.ok(Number(written[1]) > 1000, r.stdout);
      assert.equal(read[1], written[1], 'every total read back once');
      assert.equal(spend[1], spend[2], 'the totals add up to the input');
      assert.equal(purchases[1], purchases[2], 'every purchase is in a total or counted late');
    } finally {
      await broker.stop();
    }
  });

  it("quick-start is the README's quick start", () => {
    const readme = readRepoFile('README.md');
    const block = /^## Quick start$[\s\S]*?^```ts\n([\s\S]*?)^```$/m.exec(readme);
    assert.ok(block, 'no ```ts block under "## Quick start" in README.md');
    const source = readRepoFile('examples/quick-start.ts').replace(/^\/\/.*\n/, ''); // its first line says what it is
    assert.equal(block[1], source);
  });

  it('quick-start prints page views per user per minute', { timeout: 90_000 }, async () => {
    const r = await runExample('quick-start.js');
    assertOk(r, 'quick-start');
    assert.deepEqual(
      r.stdout.trim().split('\n').map((l) => JSON.parse(l)),
      [
        { key: 'ann', start: 0, end: 60_000, value: 2 },
        { key: 'bob', start: 0, end: 60_000, value: 1 },
        { key: 'bob', start: 60_000, end: 120_000, value: 1 },
      ],
    );
  });

  it('sessions: the out-of-order click bridges two sessions into one', { timeout: 90_000 }, async () => {
    const r = await runExample('sessions.js');
    assertOk(r, 'sessions');
    const [withBridge, without] = r.stdout.split('without');
    const sessions = (text: string) => text.split('\n').filter((l) => /^\s+(alice|bob)\s/.test(l)).map((l) => l.trim().replace(/\s+/g, ' '));
    assert.deepEqual(sessions(withBridge), [
      'bob 12:00:02-12:00:16 2 clicks home > pricing',
      'alice 12:00:00-12:00:39 6 clicks home > search > product/42 > reviews/42 > cart > checkout',
      'bob 12:00:40-12:00:54 2 clicks docs > signup',
    ]);
    assert.deepEqual(sessions(without), [
      'bob 12:00:02-12:00:16 2 clicks home > pricing',
      'alice 12:00:00-12:00:19 3 clicks home > search > product/42',
      'alice 12:00:25-12:00:39 2 clicks cart > checkout',
      'bob 12:00:40-12:00:54 2 clicks docs > signup',
    ]);
  });

  it('late-data: a late reading within the allowed lateness re-fires its window; a later one goes to the late output', { timeout: 90_000 }, async () => {
    const r = await runExample('late-data.js');
    assertOk(r, 'late-data');
    const lines = r.stdout.split('\n').map((l) => l.trim().replace(/\s+/g, ' '));
    const results = lines.filter((l) => /^(result|update) /.test(l));
    assert.deepEqual(results, [
      'result boiler [12:00:00, 12:01:00) avg 20.50 C',
      'update boiler [12:00:00, 12:01:00) avg 21.33 C',
      'result boiler [12:01:00, 12:02:00) avg 22.25 C',
      'result boiler [12:02:00, 12:03:00) avg 24.00 C',
    ]);
    assert.ok(lines.includes('boiler 19.0 C at 12:00:55'), r.stdout);
    assert.ok(lines.includes('side_output 1') && lines.includes('updated 1') && lines.includes('dropped 0'), r.stdout);
  });

  it('testing-your-job: its assertions pass', { timeout: 90_000 }, async () => {
    const r = await runExample('testing-your-job.js');
    assertOk(r, 'testing-your-job');
    assert.equal(r.stdout.split('\n').filter((l) => l.startsWith('ok ')).length, 3, r.stdout);
    assert.match(r.stdout, /all job tests passed/);
  });

  describe('main (card-features)', () => {
    let first: Run;
    const figure = (label: string): number => {
      const m = new RegExp(`^\\s+${label}\\s+([\\d,]+)`, 'm').exec(first.stdout);
      assert.ok(m, `no "${label}" in\n${first.stdout}`);
      return Number(m[1].replaceAll(',', ''));
    };

    it('runs, prints a progress line and a summary', { timeout: 90_000 }, async () => {
      first = await runExample('main.js');
      assertOk(first, 'main');
      assert.match(first.stderr, /\[card-features\] .* in [\d,]+ .* rec\/s/, 'a progress line on stderr');
      assert.match(first.stdout, /card-features \(seed 42\): finished/);
      assert.match(first.stdout, /throughput\s+[\d,]+ records\/s/);
    });

    it('its figures match a naive recomputation from the same seeded data', () => {
      assert.ok(first, 'main did not run');
      const expected = recompute(500_000, 42);
      assert.equal(figure('transactions in'), 500_000);
      assert.equal(figure('purchases'), expected.purchases);
      assert.equal(figure('late transactions'), expected.late);
      assert.ok(expected.late > 0);
      assert.match(first.stdout, new RegExp(`count-max dropped and counted ${expected.late.toLocaleString('en-US')}\\)`));
      assert.equal(figure('feature rows'), expected.windows.size * 3);
      assert.match(first.stdout, new RegExp(`\\(${expected.windows.size.toLocaleString('en-US')} card windows x 3 features, 400 cards\\)`));
      // Every fraud burst (6 big purchases within seconds) raises one alert; normal spending hardly ever does.
      const alerts = figure('alerts');
      const bursts = Math.ceil(expected.burstPurchases / 6);
      assert.ok(alerts >= bursts * 0.9 && alerts <= bursts * 1.1 + 2, `alerts ${alerts}, bursts ${bursts}`);

      // The feature table of the top alert: every row is the card's non-late purchases in that window.
      const head = /features of (card-\d+) around its alert/.exec(first.stdout);
      assert.ok(head, first.stdout);
      const rows = [...first.stdout.matchAll(/^\s+(\d\d):(\d\d):00-\d\d:\d\d:00\s+\$([\d,.]+)\s+(\d+)\s+\$([\d,.]+)$/gm)];
      assert.ok(rows.length >= 5, first.stdout);
      for (const row of rows) {
        const start = Date.UTC(2024, 2, 1, Number(row[1]), Number(row[2]));
        const inWindow: Txn[] = expected.onTime.filter((t) => t.card === head[1] && t.ts >= start && t.ts < start + 300_000);
        const sum = inWindow.reduce((s, t) => s + t.amount, 0);
        assert.equal(Number(row[4]), inWindow.length, row[0]);
        assert.ok(Math.abs(Number(row[3].replaceAll(',', '')) - sum / inWindow.length) <= 0.005 + 1e-9, row[0]);
        assert.equal(Number(row[5].replaceAll(',', '')), Math.max(...inWindow.map((t) => t.amount)), row[0]);
      }
      const alert = /^\s+\d\d:\d\d:\d\d\s+card-\d+\s+\$([\d,.]+) in (\d+) purchases$/m.exec(first.stdout);
      assert.ok(alert && Number(alert[1].replaceAll(',', '')) > 3000, first.stdout);
    });

    it('is deterministic: a second run prints the same (but for the timing)', { timeout: 90_000 }, async () => {
      assert.ok(first, 'main did not run');
      const second = await runExample('main.js');
      assertOk(second, 'main');
      const stable = (s: string) => s.replace(/^\s+throughput.*$/m, '');
      assert.equal(stable(second.stdout), stable(first.stdout));
    });
  });
});

/** A file of the repository, found from this file upwards (tests run from dist/test/). */
function readRepoFile(path: string): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    if (existsSync(join(dir, path))) return readFileSync(join(dir, path), 'utf8');
    if (dirname(dir) === dir) throw new Error(`${path} not found above ${fileURLToPath(import.meta.url)}`);
  }
}

/**
 * The figures of examples/main.ts from first principles: per-record watermark (max timestamp so far
 * - 5 s - 1), a purchase is late when the last 5-minute window containing it (slide 1 minute) ended
 * at or before the watermark. The data keeps far enough from the edges for per-batch watermarks to agree.
 */
function recompute(count: number, seed: number) {
  const make = cardTransactions();
  const rng = new Random(seed);
  let max = -Infinity;
  let purchases = 0;
  let late = 0;
  let burstPurchases = 0;
  const onTime: Txn[] = [];
  const windows = new Set<string>();
  for (let i = 0; i < count; i++) {
    const t = make(i, rng);
    const wm = max - 5000 - 1;
    if (t.ts > max) max = t.ts;
    if (!(t.amount > 0)) continue;
    purchases++;
    if (BURST_MERCHANTS.includes(t.merchant)) burstPurchases++;
    const lastStart = t.ts - (t.ts % 60_000);
    if (lastStart + 300_000 - 1 <= wm) {
      late++;
      continue;
    }
    onTime.push(t);
    for (let s = lastStart; s > lastStart - 300_000; s -= 60_000) windows.add(`${t.card}@${s}`);
  }
  return { purchases, late, onTime, windows, burstPurchases };
}

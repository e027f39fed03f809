/**
 * Runs every example in examples/ (compiled: dist/examples/*.js, and the fraud-scoring folder's main.js)
 * in a fresh process and checks what it prints. card-features' figures are checked against a naive
 * recomputation from the same seeded data; fraud-scoring's against the files it writes.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { FeatureBatch, Random, ml } from '../src/index.js';
import { BURST_MERCHANTS, cardTransactions, type Txn } from '../examples/data/card-transactions.js';
import { FEATURE_NAMES, featureRow, type CardWindow } from '../examples/fraud-scoring/features.js';
import { kafkaBrokers } from './kafka-broker.js';

const EXAMPLES = new URL('../examples/', import.meta.url);
const CHECKED = ['card-features.js', 'quick-start.js', 'sessions.js', 'late-data.js', 'testing-your-job.js', 'survive-a-crash.js', 'kafka-card-totals.js'];

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
    assert.ok(existsSync(new URL('fraud-scoring/main.js', EXAMPLES)), 'dist/examples/fraud-scoring/main.js is missing');
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

  describe('card-features', () => {
    let first: Run;
    const figure = (label: string): number => {
      const m = new RegExp(`^\\s+${label}\\s+([\\d,]+)`, 'm').exec(first.stdout);
      assert.ok(m, `no "${label}" in\n${first.stdout}`);
      return Number(m[1].replaceAll(',', ''));
    };

    it('runs, prints a progress line and a summary', { timeout: 90_000 }, async () => {
      first = await runExample('card-features.js');
      assertOk(first, 'card-features');
      assert.match(first.stderr, /\[card-features\] .* in [\d,]+ .* rec\/s/, 'a progress line on stderr');
      assert.match(first.stdout, /card-features \(seed 42\): finished/);
      assert.match(first.stdout, /throughput\s+[\d,]+ records\/s/);
    });

    it('its figures match a naive recomputation from the same seeded data', () => {
      assert.ok(first, 'card-features did not run');
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
      assert.ok(first, 'card-features did not run');
      const second = await runExample('card-features.js');
      assertOk(second, 'card-features');
      const stable = (s: string) => s.replace(/^\s+throughput.*$/m, '');
      assert.equal(stable(second.stdout), stable(first.stdout));
    });
  });

  describe('fraud-scoring (npm start)', () => {
    const dirs: string[] = [];
    const tempDir = () => {
      const d = mkdtempSync(join(tmpdir(), 'weir-fraud-'));
      dirs.push(d);
      return d;
    };
    after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

    let first: Run;
    let dir: string;
    const text = (label: string): string => {
      const m = new RegExp(`^\\s+${label}\\s+(.*)$`, 'm').exec(first.stdout);
      assert.ok(m, `no "${label}" in\n${first.stdout}`);
      return m[1];
    };
    const num = (s: string) => Number(s.replaceAll(',', ''));
    const jsonl = <T>(file: string): T[] =>
      readFileSync(join(dir, file), 'utf8')
        .split('\n')
        .filter((l) => l.length > 0)
        .map((l) => JSON.parse(l) as T);
    type Scored = CardWindow & { fraudScore: number; modelVersion: string };
    /** The injection time, from the summary (the data's day: 2024-03-01). */
    const injectedAt = (): number => {
      const m = /^(\d\d):(\d\d):(\d\d) /.exec(text('drift injected'));
      assert.ok(m, first.stdout);
      return Date.UTC(2024, 2, 1, Number(m[1]), Number(m[2]), Number(m[3]));
    };

    it('runs, prints a progress line and a summary', { timeout: 90_000 }, async () => {
      dir = tempDir();
      first = await runExample('fraud-scoring/main.js', ['42', dir]);
      assertOk(first, 'fraud-scoring');
      assert.match(first.stderr, /\[fraud-scoring\] .* in [\d,]+ .* rec\/s/, 'a progress line on stderr');
      assert.match(first.stdout, /^fraud-scoring \(seed 42\): finished$/m);
      assert.match(text('throughput'), /^[\d,]+ scored records\/s, [\d,]+ transactions\/s/);
      assert.match(text('backend'), /^(wasm|cpu|tensorflow) \(@tensorflow\//);
      assert.equal(num(/^([\d,]+) live/.exec(text('transactions'))![1]), 300_000);
    });

    it('raises alerts, most of them real frauds (precision and recall as printed)', () => {
      assert.ok(first, 'fraud-scoring did not run');
      const scored = jsonl<Scored>('scores.jsonl');
      const count = (ws: Scored[]) => {
        const alerts = ws.filter((w) => w.fraudScore >= 0.5);
        const hits = alerts.filter((w) => w.fraudTxns > 0).length;
        const fraud = ws.filter((w) => w.fraudTxns > 0).length;
        return { alerts: alerts.length, hits, fraud, precision: hits / alerts.length, recall: hits / fraud };
      };
      const n = (x: number) => x.toLocaleString('en-US');
      const pct = (a: number, b: number) => `${((100 * a) / b).toFixed(1)}%`;
      const all = count(scored);
      assert.ok(all.alerts > 0 && all.fraud > 50, `alerts ${all.alerts}, fraud windows ${all.fraud}`);
      assert.equal(text('alerts'), `${n(all.alerts)} (score >= 0.5), ${n(all.hits)} real fraud: precision ${pct(all.hits, all.alerts)}, recall ${pct(all.hits, all.fraud)} (${n(all.fraud)} fraud windows)`);
      // Before the drift the model is good; after it, prices are up and normal spending looks like fraud more often.
      const t = injectedAt();
      const before = count(scored.filter((w) => w.end <= t));
      assert.equal(text('before drift'), `${n(before.alerts)} alerts: precision ${pct(before.hits, before.alerts)}, recall ${pct(before.hits, before.fraud)}`);
      assert.ok(before.precision >= 0.8 && before.recall >= 0.8, text('before drift'));
      assert.ok(all.precision >= 0.2 && all.recall >= 0.8, text('alerts'));
      const bursts = /^(\d+) of (\d+) caught$/.exec(text('fraud bursts'));
      assert.ok(bursts && Number(bursts[2]) > 10 && Number(bursts[1]) >= 0.8 * Number(bursts[2]), text('fraud bursts'));
    });

    it('flags drift from the injection on, and not before', () => {
      assert.ok(first, 'fraud-scoring did not run');
      const t = injectedAt();
      const reports = jsonl<{ test: 'ks' | 'psi'; start: number; end: number; drifted: boolean; windowSize: number }>('drift.jsonl');
      for (const test of ['ks', 'psi'] as const) {
        const rs = reports.filter((r) => r.test === test);
        const early = rs.filter((r) => r.start < t);
        const late = rs.filter((r) => r.start >= t);
        assert.ok(early.length >= 3 && late.length >= 3, `${test}: ${early.length} windows before the injection, ${late.length} after`);
        assert.deepEqual(early.filter((r) => r.drifted), [], `${test} flagged a window before the injection`);
        assert.ok(late.every((r) => r.drifted), `${test} missed the drift: ${JSON.stringify(late)}`);
        assert.ok(rs.every((r) => r.end - r.start === 600_000 && r.windowSize > 0));
      }
      const flagged = reports.filter((r) => r.drifted).sort((a, b) => a.start - b.start);
      assert.equal(flagged[0].start, t, 'the first flagged window starts at the injection');
      assert.equal(text('drift reports'), `${reports.length}: ${flagged.length} flagged, 0 before the injection`);
      const clock = new Date(t).toISOString().slice(11, 19);
      assert.match(text('KS avg amount'), new RegExp(`windows flagged, first ${clock}-`));
      assert.match(text('PSI max amount'), new RegExp(`windows flagged, first ${clock}-`));
    });

    it('writes each scored record exactly once, and the alerts', () => {
      assert.ok(first, 'fraud-scoring did not run');
      const scored = jsonl<Scored>('scores.jsonl');
      const version = /^version ([0-9a-f]+) /.exec(text('loaded back'))![1];
      assert.equal(scored.length, num(/^([\d,]+) card windows$/.exec(text('records scored'))![1]));
      assert.ok(scored.length > 30_000, `${scored.length} scored`);
      assert.equal(new Set(scored.map((w) => `${w.card}@${w.start}`)).size, scored.length, 'a card window scored twice');
      for (const w of scored) {
        assert.ok(w.fraudScore >= 0 && w.fraudScore <= 1 && w.end - w.start === 300_000 && w.txns > 0, JSON.stringify(w));
        assert.equal(w.modelVersion, version);
      }
      const alerts = jsonl<{ card: string; windowEnd: number; fraudScore: number }>('alerts.jsonl');
      const flagged = new Set(scored.filter((w) => w.fraudScore >= 0.5).map((w) => `${w.card}@${w.end}`));
      assert.equal(alerts.length, flagged.size);
      assert.equal(new Set(alerts.map((a) => `${a.card}@${a.windowEnd}`)).size, alerts.length, 'an alert written twice');
      for (const a of alerts) assert.ok(flagged.has(`${a.card}@${a.windowEnd}`), JSON.stringify(a));
      assert.match(text('outputs'), new RegExp(`scores.jsonl ${scored.length.toLocaleString('en-US')} lines, alerts.jsonl ${alerts.length.toLocaleString('en-US')}, drift.jsonl \\d+ \\(exactly once\\)`));
      assert.ok(readdirSync(join(dir, 'checkpoints')).length > 0, 'no checkpoints');
    });

    it('saved the model to disk; loaded back, it gives the scores the job wrote', { timeout: 60_000 }, async () => {
      assert.ok(first, 'fraud-scoring did not run');
      assert.deepEqual(readdirSync(join(dir, 'model')).sort(), ['model.json', 'weights.bin']);
      const model = await ml.tfjs.load(join(dir, 'model'));
      try {
        assert.match(text('loaded back'), new RegExp(`^version ${model.version} \\(layers-model, ${FEATURE_NAMES.length} features\\)$`));
        const sample = jsonl<Scored>('scores.jsonl').filter((_, i) => i % 97 === 0);
        const rows = new Float32Array(sample.flatMap(featureRow));
        const out = await model.predict(new FeatureBatch(rows, sample.length, FEATURE_NAMES.length));
        assert.equal(out.width, 1);
        sample.forEach((w, i) => assert.ok(Math.abs(out.values[i] - w.fraudScore) < 1e-5, `${w.card}@${w.start}: ${out.values[i]} vs ${w.fraudScore}`));
      } finally {
        model.dispose();
      }
    });

    it('is deterministic: a second run prints the same (but for the timing and its directory)', { timeout: 90_000 }, async () => {
      assert.ok(first, 'fraud-scoring did not run');
      const other = tempDir();
      const second = await runExample('fraud-scoring/main.js', ['42', other]);
      assertOk(second, 'fraud-scoring');
      const stable = (s: string, d: string) => s.replaceAll(d, '<dir>').replace(/^\s+(throughput|run time)\s.*$/gm, '');
      assert.equal(stable(second.stdout, other), stable(first.stdout, dir));
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
 * The figures of examples/card-features.ts from first principles: per-record watermark (max timestamp so far
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

import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { Pipeline, WeirError, sinks, sources, systemClock, type DeadLetter, type SourceContext } from '../src/index.js';

interface Rec { id: number; name: string }

let dir = '';
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'weir-jsonl-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

let fileCount = 0;
/** A fresh path in the temp dir. */
function tmp(name: string): string {
  return join(dir, `${++fileCount}-${name}`);
}

/** A name with multi-byte UTF-8 characters, so chunk boundaries also fall inside characters. */
function nameOf(i: number): string {
  return `n${i}${'é€😀'.slice(0, i % 4)}`;
}

function isWeirError(code: string, ...fragments: (string | RegExp)[]): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(e instanceof WeirError, `expected a WeirError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    for (const f of fragments) {
      if (typeof f === 'string') assert.ok(e.message.includes(f), `message ${JSON.stringify(e.message)} lacks ${JSON.stringify(f)}`);
      else assert.match(e.message, f);
    }
    return true;
  };
}

function stubContext(rejected: unknown[][]): SourceContext {
  return {
    name: 'stub',
    logger: pino({ level: 'silent' }),
    clock: systemClock,
    signal: new AbortController().signal,
    reject: (raw, reason, cause) => void rejected.push([raw, reason, cause]),
  };
}

describe('sources.jsonl and sinks.jsonl', () => {
  it('round-trips a small file through map, line for line', async () => {
    const input = tmp('in.jsonl');
    const output = tmp('out.jsonl');
    await writeFile(input, '{"id":1,"name":"a"}\n{"id":2,"name":"b"}\n\n{"id":3,"name":"c"}');
    const p = new Pipeline({ name: 'jsonl-roundtrip' });
    p.source(sources.jsonl<Rec>(input))
      .map((r) => ({ id: r.id * 10, upper: r.name.toUpperCase() }))
      .sink(sinks.jsonl(output));
    const result = await p.run();
    assert.equal(result.status, 'finished');
    assert.equal(await readFile(output, 'utf8'), '{"id":10,"upper":"A"}\n{"id":20,"upper":"B"}\n{"id":30,"upper":"C"}\n');
  });

  it('reads a large CRLF file in small chunks: every record once, in order, lines split across chunks', async () => {
    const n = 200_000;
    const input = tmp('big.jsonl');
    const output = tmp('big-out.jsonl');
    let text = '';
    for (let i = 0; i < n; i++) {
      text += `${JSON.stringify({ id: i, name: nameOf(i) })}\r\n`;
      if (i % 5000 === 0) text += '\r\n'; // blank lines are skipped
    }
    const long = 'x'.repeat(3000); // one line spanning several 256-byte chunks
    text += `{"id":${n},"name":"${long}"}`; // and no line ending at the end of the file
    await writeFile(input, text);
    const size = (await stat(input)).size;

    const got: Rec[] = [];
    const src = sources.jsonl<Rec>(input, { highWaterMark: 256 });
    const p = new Pipeline({ name: 'jsonl-big' });
    const s = p.source(src);
    s.sink(sinks.collect(got));
    s.map((r) => r.id).sink(sinks.jsonl(output));
    await p.run();

    assert.equal(got.length, n + 1);
    for (let i = 0; i < n; i++) {
      if (got[i].id !== i || got[i].name !== nameOf(i)) assert.fail(`record ${i} is ${JSON.stringify(got[i])}`);
    }
    assert.equal(got[n].name, long);
    assert.equal(src.bytesRead, size);
    assert.equal(src.position, size);
    assert.equal(src.lines, n + 1 + Math.ceil(n / 5000));

    const out = await readFile(output, 'utf8');
    const lines = out.split('\n');
    assert.equal(lines.pop(), '', 'the output ends with a newline');
    assert.equal(lines.length, n + 1);
    for (let i = 0; i <= n; i++) if (lines[i] !== String(i)) assert.fail(`output line ${i + 1} is ${lines[i]}`);
  });

  it('streams: the first poll returns long before the file has been read', async () => {
    const input = tmp('stream.jsonl');
    let text = '';
    for (let i = 0; i < 100_000; i++) text += `{"id":${i},"name":"${nameOf(i)}"}\n`;
    await writeFile(input, text);
    const size = (await stat(input)).size;

    const src = sources.jsonl<Rec>(input, { highWaterMark: 4096 });
    const rejected: unknown[][] = [];
    await src.open?.(stubContext(rejected));
    const first = await src.poll(10);
    assert.deepEqual(first?.map((r) => r.id), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.ok(src.bytesRead > 0 && src.bytesRead <= 4096, `read ${src.bytesRead} bytes of ${size}`);
    assert.ok(src.position < src.bytesRead, `position ${src.position}`);
    assert.equal(src.position, Buffer.byteLength(text.split('\n').slice(0, 10).join('\n')) + 1);
    // Complete lines already buffered come back without a promise.
    const second = src.poll(10);
    assert.ok(Array.isArray(second), 'a buffered batch is returned synchronously');
    assert.deepEqual((second as Rec[]).map((r) => r.id), [10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
    assert.ok(src.bytesRead < size / 100);
    await src.close?.();
    assert.equal(await src.poll(10), null, 'a closed source is at its end');
    assert.deepEqual(rejected, []);
  });

  it('fails the job with WEIR_DECODE_FAILED naming the file and line of a bad line (default policy)', async () => {
    const input = tmp('bad.jsonl');
    await writeFile(input, '{"id":1,"name":"a"}\r\n{"id":2,"name":"b"}\r\n{oops\r\n{"id":4,"name":"d"}\r\n');
    const got: Rec[] = [];
    const p = new Pipeline({ name: 'jsonl-bad-default' });
    p.source(sources.jsonl<Rec>(input)).sink(sinks.collect(got));
    await assert.rejects(p.run(), isWeirError('WEIR_DECODE_FAILED', input, /line 3\b/, /JSON/));
    assert.deepEqual(got.map((r) => r.id), [1, 2], 'the lines before the bad one go out; nothing after it');
  });

  it('sends bad lines to the dead-letter sink and goes on', async () => {
    const input = tmp('bad-dlq.jsonl');
    await writeFile(input, ['{"id":1,"name":"a"}', '{oops', '', '{"id":2,"name":"b"}', '[1,', '{"id":3,"name":"c"}'].join('\r\n'));
    const got: Rec[] = [];
    const dlq: DeadLetter[] = [];
    const p = new Pipeline({ name: 'jsonl-bad-dlq' });
    p.source(sources.jsonl<Rec>(input), { onError: { deadLetter: sinks.collect(dlq) } }).sink(sinks.collect(got));
    const result = await p.run();
    assert.equal(result.status, 'finished');
    assert.deepEqual(got.map((r) => r.id), [1, 2, 3]);
    assert.equal(dlq.length, 2);
    assert.deepEqual(dlq.map((d) => d.record), [{ line: 2, text: '{oops' }, { line: 5, text: '[1,' }]);
    for (const [i, line] of [2, 5].entries()) {
      assert.equal(dlq[i].code, 'WEIR_DECODE_FAILED');
      assert.match(dlq[i].reason, new RegExp(`line ${line}\\b`));
      assert.ok(dlq[i].reason.includes(input), dlq[i].reason);
      assert.match(dlq[i].reason, /JSON/);
    }
  });

  it('treats a throwing parse function as a decode failure', async () => {
    const input = tmp('parse.jsonl');
    await writeFile(input, '{"id":1,"name":"a"}\n{"id":"two","name":"b"}\n{"id":3,"name":"c"}\n');
    const parse = (v: unknown, line: number): Rec & { line: number } => {
      const r = v as Rec;
      if (typeof r.id !== 'number') throw new Error(`id must be a number, got ${JSON.stringify(r.id)}`);
      return { ...r, line };
    };
    const got: (Rec & { line: number })[] = [];
    const dlq: DeadLetter[] = [];
    const p = new Pipeline({ name: 'jsonl-parse' });
    p.source(sources.jsonl(input, { parse }), { onError: { deadLetter: sinks.collect(dlq) } }).sink(sinks.collect(got));
    await p.run();
    assert.deepEqual(got, [{ id: 1, name: 'a', line: 1 }, { id: 3, name: 'c', line: 3 }]);
    assert.equal(dlq.length, 1);
    assert.equal(dlq[0].code, 'WEIR_DECODE_FAILED');
    assert.deepEqual(dlq[0].record, { line: 2, text: '{"id":"two","name":"b"}' });
    assert.match(dlq[0].reason, /line 2\b/);
    assert.match(dlq[0].reason, /id must be a number, got "two"/);

    const p2 = new Pipeline({ name: 'jsonl-parse-fail' });
    p2.source(sources.jsonl(input, { parse })).sink(sinks.collect<unknown>([]));
    await assert.rejects(p2.run(), isWeirError('WEIR_DECODE_FAILED', input, /line 2\b/, 'id must be a number'));
  });

  it('fails the run with a message naming a missing input file', async () => {
    const missing = join(dir, 'no-such-dir', 'missing.jsonl');
    const p = new Pipeline({ name: 'jsonl-missing' });
    p.source(sources.jsonl(missing)).sink(sinks.collect<unknown>([]));
    await assert.rejects(p.run(), isWeirError('WEIR_SOURCE_FAILED', missing, /no such file/));
  });

  it('fails the run with a message naming the path when the output directory does not exist', async () => {
    const nowhere = join(dir, 'no-such-dir', 'out.jsonl');
    const p = new Pipeline({ name: 'jsonl-sink-missing-dir' });
    p.source(sources.array([1, 2, 3])).sink(sinks.jsonl(nowhere));
    await assert.rejects(p.run(), isWeirError('WEIR_SINK_FAILED', nowhere, /does not exist/));
  });

  it('truncates by default and appends with append: true, using format when given', async () => {
    const output = tmp('append.jsonl');
    await writeFile(output, 'old\n');
    const run = async (items: number[], append: boolean): Promise<void> => {
      const p = new Pipeline({ name: 'jsonl-append' });
      p.source(sources.array(items)).sink(sinks.jsonl(output, { append, format: (n) => `{"n":${n}}` }));
      await p.run();
    };
    await run([1, 2], false);
    assert.equal(await readFile(output, 'utf8'), '{"n":1}\n{"n":2}\n');
    await run([3], true);
    await run([4, 5], true);
    assert.equal(await readFile(output, 'utf8'), '{"n":1}\n{"n":2}\n{"n":3}\n{"n":4}\n{"n":5}\n');
  });

  it('returns a promise from write only when the file stream is full (backpressure)', async () => {
    const output = tmp('bp.jsonl');
    const sink = sinks.jsonl<{ i: number; pad: string }>(output);
    await sink.open?.({ name: 'bp', logger: pino({ level: 'silent' }) });
    const small = sink.write([{ i: 0, pad: '' }], [0]);
    assert.equal(small, undefined, 'a small write returns nothing');
    const big = Array.from({ length: 2000 }, (_, k) => ({ i: k + 1, pad: 'p'.repeat(50) }));
    const pending = sink.write(big, []);
    assert.ok(pending instanceof Promise, 'a write past the stream buffer returns a promise');
    await pending;
    await sink.close?.();
    const lines = (await readFile(output, 'utf8')).trimEnd().split('\n');
    assert.equal(lines.length, 2001);
    assert.deepEqual(JSON.parse(lines[2000]), { i: 2000, pad: 'p'.repeat(50) });
  });

  it('completes a big job whose sink writes wait for drain, with the whole file written in order', async () => {
    const output = tmp('big-sink.jsonl');
    const n = 150_000;
    const items = Array.from({ length: n }, (_, i) => ({ i, pad: 'q'.repeat(i % 40) }));
    const p = new Pipeline({ name: 'jsonl-big-sink', batchSize: 4096 });
    p.source(sources.array(items)).sink(sinks.jsonl(output));
    await p.run();
    const lines = (await readFile(output, 'utf8')).split('\n');
    assert.equal(lines.pop(), '');
    assert.equal(lines.length, n);
    for (let i = 0; i < n; i++) {
      const r = JSON.parse(lines[i]) as { i: number; pad: string };
      if (r.i !== i || r.pad.length !== i % 40) assert.fail(`line ${i + 1} is ${lines[i]}`);
    }
  });

  it('rejects records JSON.stringify cannot render instead of writing "undefined"', async () => {
    const output = tmp('undef.jsonl');
    const p = new Pipeline({ name: 'jsonl-undefined' });
    p.source(sources.array<unknown>([1, undefined, 3])).sink(sinks.jsonl(output));
    await assert.rejects(p.run(), isWeirError('WEIR_SINK_FAILED', /returned undefined/));
  });
});

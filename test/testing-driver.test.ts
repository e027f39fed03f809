import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Pipeline, agg, watermarks, windows, type WindowResult } from '../src/index.js';
import { TestDriver, testInput, testOutput } from '../src/testing/index.js';

interface Click { user: string; ts: number }

describe('TestDriver', () => {
  it('fires a tumbling window when the watermark reaches end - 1, not before', async () => {
    const p = new Pipeline({ name: 'driver-tumbling' });
    const input = testInput<Click>();
    const out = testOutput<WindowResult<string, number>>();
    p.source(input, { timestamp: (c) => c.ts, watermarks: watermarks.none() })
      .keyBy((c) => c.user)
      .window(windows.tumbling(1000))
      .aggregate(agg.count())
      .sink(out);
    const d = await TestDriver.create(p);
    d.send(input, [{ user: 'a', ts: 10 }, { user: 'a', ts: 999 }, { user: 'b', ts: 1000 }]);
    d.advanceWatermark(998);
    assert.deepEqual(out.take(), []);
    d.advanceWatermark(999);
    assert.deepEqual(out.take(), [{ key: 'a', start: 0, end: 1000, value: 2 }]);
    assert.deepEqual(out.timestamps, [999]);
    d.endInput();
    assert.deepEqual(out.take(), [{ key: 'b', start: 1000, end: 2000, value: 1 }]);
    await d.close();
  });
});

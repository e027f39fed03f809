/**
 * Per-split watermarks (Kafka partitions): the source's watermark is the minimum over the splits
 * that are not idle; a split without records holds it back until its idle timeout; splits leave with
 * the assignment; the state survives a checkpoint.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock, watermarks, type Duration } from '../src/index.js';
import { MetricsRegistry } from '../src/observability/metrics.js';
import { FailingErrorHandler } from '../src/runtime/error-handler.js';
import { Output, type Receiver } from '../src/runtime/runtime-node.js';
import { SourceNode } from '../src/runtime/source-node.js';

/** A source node over `{ ts }` records with splits, and what it emitted downstream. */
function node(idleTimeout?: Duration) {
  const clock = new ManualClock(1_000);
  const metrics = new MetricsRegistry();
  const out = new Output<{ ts: number }>(metrics.counter('out'));
  const seen = { watermarks: [] as number[], idle: [] as boolean[] };
  const receiver: Receiver = {
    receiveBatch: () => undefined,
    receiveWatermark: (wm) => void seen.watermarks.push(wm),
    receiveIdle: (idle) => void seen.idle.push(idle),
  };
  out.connect(receiver, 0);
  const strategy = watermarks.boundedOutOfOrderness(0, idleTimeout === undefined ? undefined : { idleTimeout });
  const n = new SourceNode<{ ts: number }>('s', (r) => r.ts, strategy.create(), out, new FailingErrorHandler('s'), clock, metrics.counter('in'), () => strategy.create(), strategy.idleTimeoutMs);
  return { n, clock, seen };
}

describe('source splits', () => {
  it('emits the minimum over splits; a split without records holds it back until it is idle', () => {
    const { n, clock, seen } = node('10s');
    n.setSplits(['t:0', 't:1']);
    n.push([{ ts: 5_000 }], 't:0');
    assert.deepEqual(seen.watermarks, [], 't:1 has no watermark yet');
    n.push([{ ts: 3_000 }], 't:1');
    assert.deepEqual(seen.watermarks, [2_999]);
    n.push([{ ts: 9_000 }], 't:1');
    assert.deepEqual(seen.watermarks, [2_999, 4_999], 'the minimum: t:0 at 4 999');
    clock.advance(5_000);
    n.push([{ ts: 12_000 }], 't:1');
    clock.advance(6_000);
    n.checkIdleness();
    assert.deepEqual(seen.watermarks, [2_999, 4_999, 11_999], 't:0 went idle: t:1 alone decides');
    assert.deepEqual(seen.idle, []);
    clock.advance(11_000);
    n.checkIdleness();
    assert.deepEqual(seen.idle, [true], 'every split idle: the source is idle');
    n.push([{ ts: 6_000 }], 't:0');
    assert.deepEqual(seen.idle, [true, false]);
    assert.deepEqual(seen.watermarks, [2_999, 4_999, 11_999], 'never backwards');
  });

  it('without an idle timeout a quiet split holds the watermark back; a split that leaves the assignment does not', () => {
    const { n, clock, seen } = node();
    n.setSplits(['t:0', 't:1']);
    n.push([{ ts: 5_000 }], 't:0');
    clock.advance(3_600_000);
    n.checkIdleness();
    assert.deepEqual(seen.watermarks, []);
    n.setSplits(['t:0']);
    assert.deepEqual(seen.watermarks, [4_999]);
  });

  it('keeps each split’s watermark state in a checkpoint', () => {
    const a = node();
    a.n.setSplits(['t:0', 't:1']);
    a.n.push([{ ts: 5_000 }], 't:0');
    a.n.push([{ ts: 8_000 }], 't:1');
    const saved = a.n.snapshotWatermark();
    assert.deepEqual(saved.splits, { 't:0': { generator: 5_000, emitted: 4_999 }, 't:1': { generator: 8_000, emitted: 7_999 } });
    const b = node();
    b.n.restoreWatermark(saved);
    b.n.push([{ ts: 1_000 }], 't:1');
    b.n.push([{ ts: 9_000 }], 't:0');
    assert.deepEqual(b.seen.watermarks, [7_999], 't:1 kept its 7 999; the minimum moved from 4 999 to 7 999');
  });
});

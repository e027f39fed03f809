import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NexmarkGenerator, Pipeline, WeirError, agg, sinks, sources, windows, type NexmarkBid, type NexmarkEvent, type Source, type WindowResult } from '../src/index.js';
import { silentLogger } from '../src/observability/logger.js';

function take<T>(source: Source<T>, batch = 1000): T[] {
  const out: T[] = [];
  for (;;) {
    const b = source.poll(batch);
    if (b === null) return out;
    assert.ok(Array.isArray(b), 'poll must return an array synchronously');
    out.push(...b);
  }
}

describe('sources.nexmark', () => {
  it('emits persons, auctions and bids exactly 1 : 3 : 46 over 50k events', () => {
    const events = take(sources.nexmark({ events: 50_000 }));
    assert.equal(events.length, 50_000);
    const counts = { person: 0, auction: 0, bid: 0 };
    for (const e of events) counts[e.kind]++;
    assert.deepEqual(counts, { person: 1000, auction: 3000, bid: 46_000 });
  });

  it('is deterministic per seed', () => {
    const a = take(sources.nexmark({ events: 5000, seed: 42 }), 333);
    const b = take(sources.nexmark({ events: 5000, seed: 42 }), 1024);
    assert.deepEqual(a, b);
    const c = take(sources.nexmark({ events: 5000, seed: 43 }));
    assert.notDeepEqual(a, c);
    // Same ids and times, other content.
    assert.deepEqual(
      a.map((e) => [e.kind, e.dateTime]),
      c.map((e) => [e.kind, e.dateTime]),
    );
  });

  it('refers only to persons and auctions already generated', () => {
    const persons = new Set<number>();
    const auctions = new Set<number>();
    let nextPerson = 1000;
    let nextAuction = 1000;
    let hotAuctionBids = 0;
    let hotBidderBids = 0;
    let bids = 0;
    for (const e of take(sources.nexmark({ events: 200_000, seed: 7 }))) {
      if (e.kind === 'person') {
        assert.equal(e.id, nextPerson++);
        persons.add(e.id);
      } else if (e.kind === 'auction') {
        assert.equal(e.id, nextAuction++);
        assert.ok(persons.has(e.seller), `auction ${e.id}: seller ${e.seller} not generated yet`);
        auctions.add(e.id);
      } else {
        bids++;
        assert.ok(auctions.has(e.auction), `bid: auction ${e.auction} not generated yet`);
        assert.ok(persons.has(e.bidder), `bid: bidder ${e.bidder} not generated yet`);
        if ((e.auction - 1000) % 100 === 0) hotAuctionBids++;
        if ((e.bidder - 1000) % 100 === 1) hotBidderBids++;
      }
    }
    // hotAuctionRatio 2: about half the bids go to the hot auction of the current batch.
    assert.ok(hotAuctionBids / bids > 0.45 && hotAuctionBids / bids < 0.6, `hot auction share ${hotAuctionBids / bids}`);
    // hotBiddersRatio 4: about three quarters by the hot bidder of the current batch of persons.
    assert.ok(hotBidderBids / bids > 0.7 && hotBidderBids / bids < 0.8, `hot bidder share ${hotBidderBids / bids}`);
  });

  it('recent auctions get the cold bids: within numInFlightAuctions of the newest', () => {
    let lastAuction = 0;
    for (const e of take(sources.nexmark({ events: 100_000, numInFlightAuctions: 20 }))) {
      if (e.kind === 'auction') lastAuction = e.id;
      else if (e.kind === 'bid' && (e.auction - 1000) % 100 !== 0) assert.ok(e.auction >= lastAuction - 20 && e.auction <= lastAuction);
    }
  });

  it('derives timestamps from the event number and the rate, non-decreasing when in order', () => {
    const base = 1_700_000_000_000;
    for (const eps of [1, 3, 1000, 7_000_000, 10_000_000]) {
      const events = take(sources.nexmark({ events: 20_000, eventsPerSecond: eps, baseTime: base }), 777);
      events.forEach((e, n) => assert.equal(e.dateTime, base + Math.floor((n * 1000) / eps), `eps ${eps}, event ${n}`));
    }
    const dflt = take(sources.nexmark({ events: 100_000 }));
    for (let i = 1; i < dflt.length; i++) assert.ok(dflt[i].dateTime >= dflt[i - 1].dateTime);
    // 10M events/s by default: 10_000 events per ms.
    assert.equal(dflt[99_999].dateTime, 9);
  });

  it('outOfOrderGroupSize permutes events within groups: same events, bounded disorder', () => {
    const group = 1000;
    const inOrder = take(sources.nexmark({ events: 10_000, eventsPerSecond: 1000 }));
    const shuffled = take(sources.nexmark({ events: 10_000, eventsPerSecond: 1000, outOfOrderGroupSize: group }));
    let back = 0;
    let maxSeen = -Infinity;
    for (const e of shuffled) {
      if (e.dateTime < maxSeen) {
        back++;
        assert.ok(maxSeen - e.dateTime < group, 'disorder is bounded by the group');
      }
      maxSeen = Math.max(maxSeen, e.dateTime);
    }
    assert.ok(back > 1000, `expected out-of-order events, got ${back}`);
    const key = (e: NexmarkEvent) => JSON.stringify(e);
    assert.deepEqual(shuffled.map(key).sort(), inOrder.map(key).sort());
  });

  it('kinds keeps the full stream numbering: the bids are the same bids', () => {
    const all = take(sources.nexmark({ events: 20_000, seed: 3 }));
    const bids = take(sources.nexmark({ events: 5000, seed: 3, kinds: ['bid'] }));
    assert.equal(bids.length, 5000);
    assert.deepEqual(bids, all.filter((e) => e.kind === 'bid').slice(0, 5000));
    const auctions = take(sources.nexmark({ events: 600, seed: 3, kinds: ['auction', 'person'] }));
    assert.deepEqual(auctions, all.filter((e) => e.kind !== 'bid').slice(0, 600));
    // The element type narrows with kinds.
    const typed: Source<NexmarkBid> = sources.nexmark({ kinds: ['bid'], events: 1 });
    assert.equal(take(typed)[0].kind, 'bid');
  });

  it('has the Nexmark fields with the right types', () => {
    const events = take(sources.nexmark({ events: 5000, extraBytes: 40 }));
    const isInt = (v: unknown) => typeof v === 'number' && Number.isInteger(v);
    for (const e of events) {
      assert.ok(isInt(e.dateTime));
      assert.equal(e.extra.length, 40);
      if (e.kind === 'person') {
        assert.ok(isInt(e.id));
        assert.match(e.name, /^[A-Z][a-z]+ [A-Z][a-z]+$/);
        assert.match(e.emailAddress, /^.+@.+\.com$/);
        assert.match(e.creditCard, /^\d{4} \d{4} \d{4} \d{4}$/);
        assert.equal(typeof e.city, 'string');
        assert.match(e.state, /^[A-Z]{2}$/);
      } else if (e.kind === 'auction') {
        for (const f of [e.id, e.initialBid, e.reserve, e.expires, e.seller, e.category]) assert.ok(isInt(f));
        assert.ok(e.reserve >= e.initialBid && e.initialBid >= 100);
        assert.ok(e.expires > e.dateTime);
        assert.ok(e.category >= 10 && e.category < 15);
        assert.ok(e.itemName.length > 0 && e.description.length > 0);
      } else {
        for (const f of [e.auction, e.bidder, e.price]) assert.ok(isInt(f));
        assert.ok(e.price >= 100 && e.price <= 100_000_000, `price ${e.price}`);
        assert.ok(e.channel.length > 0);
        assert.match(e.url, /^https:\/\/www\.nexmark\.com\//);
      }
    }
    const channels = new Set(events.filter((e) => e.kind === 'bid').map((b) => (b as NexmarkBid).channel));
    for (const hot of ['Google', 'Facebook', 'Baidu', 'Apple']) assert.ok(channels.has(hot));
    assert.ok(channels.size > 100);
  });

  it('ends bounded sources with null and stays unbounded without events', () => {
    const s = sources.nexmark({ events: 10, kinds: ['person'] });
    assert.equal(s.poll(100)!.length, 10);
    assert.equal(s.poll(100), null);
    const g = new NexmarkGenerator();
    for (let i = 0; i < 5; i++) assert.equal(g.next(1000).length, 1000);
    assert.equal(g.count, 5000);
    assert.equal(g.done, false);
  });

  it('rejects bad options', () => {
    const bad = [{ events: -1 }, { events: 1.5 }, { eventsPerSecond: 0 }, { kinds: [] }, { kinds: ['ask'] }, { outOfOrderGroupSize: 0 }, { outOfOrderGroupSize: 953 }, { hotAuctionRatio: 0 }, { extraBytes: -1 }];
    for (const opts of bad) {
      assert.throws(
        () => sources.nexmark(opts as never),
        (e: unknown) => e instanceof WeirError && e.code === 'WEIR_INVALID_ARGUMENT',
        JSON.stringify(opts),
      );
    }
  });

  it('feeds a pipeline: bids per auction on tumbling windows', async () => {
    const out: WindowResult<number, number>[] = [];
    const p = new Pipeline({ name: 'nexmark-count', logger: silentLogger() });
    p.source(sources.nexmark({ kinds: ['bid'], events: 46_000, eventsPerSecond: 10_000 }), { timestamp: (b) => b.dateTime })
      .keyBy((b) => b.auction)
      .window(windows.tumbling('1s'))
      .aggregate(agg.count())
      .sink(sinks.collect(out));
    await p.run();
    assert.equal(
      out.reduce((s, r) => s + r.value, 0),
      46_000,
    );
    assert.ok(out.every((r) => r.end - r.start === 1000));
  });
});

// The README's quick start: page views per user per minute.
import { Pipeline, agg, sinks, sources, watermarks, windows } from 'weir';

const clicks = [
  { user: 'ann', page: '/home', ts: 1_000 },
  { user: 'bob', page: '/home', ts: 2_500 },
  { user: 'ann', page: '/health', ts: 3_000 },
  { user: 'ann', page: '/cart', ts: 59_000 },
  { user: 'bob', page: '/docs', ts: 61_000 },
];

const p = new Pipeline({ name: 'quick-start' });
p.source(sources.array(clicks), { timestamp: (c) => c.ts, watermarks: watermarks.boundedOutOfOrderness('5s') })
  .filter((c) => c.page !== '/health')
  .keyBy((c) => c.user)
  .window(windows.tumbling('1m'))
  .aggregate(agg.count())
  .sink(sinks.console()); // {"key":"ann","start":0,"end":60000,"value":2} ...
await p.run();

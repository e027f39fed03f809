/**
 * Session windows over click events: a user's clicks form one session until the user pauses for
 * 10 seconds or more. Sessions of a key that overlap or touch merge, so a click that arrives out of
 * order can bridge two sessions into one. The job runs twice, with and without that click.
 */
import { Pipeline, sinks, sources, watermarks, windows } from 'weir';

interface Click {
  user: string;
  page: string;
  ts: number;
}

const T0 = Date.UTC(2024, 2, 1, 12, 0, 0);
const at = (seconds: number) => T0 + seconds * 1000;
const clock = (t: number) => new Date(t).toISOString().slice(11, 19);

// In arrival order. alice pauses from 0:09 to 0:25: two sessions, until her click at 0:17 (a slow
// mobile upload) arrives after the 0:25 one and fills the gap.
const BRIDGE: Click = { user: 'alice', page: 'reviews/42', ts: at(17) };
const clicks: Click[] = [
  { user: 'alice', page: 'home', ts: at(0) },
  { user: 'bob', page: 'home', ts: at(2) },
  { user: 'alice', page: 'search', ts: at(4) },
  { user: 'bob', page: 'pricing', ts: at(6) },
  { user: 'alice', page: 'product/42', ts: at(9) },
  { user: 'alice', page: 'cart', ts: at(25) },
  BRIDGE,
  { user: 'alice', page: 'checkout', ts: at(29) },
  { user: 'bob', page: 'docs', ts: at(40) }, // bob was away 34 s: a new session
  { user: 'bob', page: 'signup', ts: at(44) },
];

async function sessionize(input: Click[]): Promise<void> {
  const p = new Pipeline({ name: 'sessions' });
  p.source(sources.array(input), {
    timestamp: (c) => c.ts,
    watermarks: watermarks.boundedOutOfOrderness('10s'),
    batchSize: 1, // one click per batch: the watermark moves after each click, as in a live stream
  })
    .keyBy((c) => c.user)
    .window(windows.session({ gap: '10s' }))
    // A session's clicks, in event-time order (they arrive in arrival order).
    .process((cs, w) => ({ user: w.key, start: w.start, end: w.end, pages: [...cs].sort((a, b) => a.ts - b.ts).map((c) => c.page) }))
    .sink(sinks.console({ format: (s) => `  ${s.user.padEnd(6)} ${clock(s.start)}-${clock(s.end)}  ${s.pages.length} clicks  ${s.pages.join(' > ')}` }));
  await p.run();
}

console.log('sessions (10 s gap), in the order they closed:');
await sessionize(clicks);
console.log(`\nthe same clicks without alice's late click at ${clock(BRIDGE.ts)}:`);
await sessionize(clicks.filter((c) => c !== BRIDGE));

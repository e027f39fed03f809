/**
 * Late data: one-minute average temperatures with 30 s of allowed lateness.
 *
 * - A reading that arrives after its window fired, but within the allowed lateness, updates the
 *   window, which fires again with the new result.
 * - A reading later than that goes to the late output: it is not lost, and it is counted.
 */
import { Pipeline, agg, sinks, sources, watermarks, windows, type WindowResult } from 'weir';

interface Reading {
  sensor: string;
  celsius: number;
  ts: number;
}

const T0 = Date.UTC(2024, 2, 1, 12, 0, 0);
const at = (m: number, s: number) => T0 + m * 60_000 + s * 1000;
const clock = (t: number) => new Date(t).toISOString().slice(11, 19);

// In arrival order; the watermark trails the largest timestamp by 5 s.
const readings: Reading[] = [
  { sensor: 'boiler', celsius: 20.0, ts: at(0, 10) },
  { sensor: 'boiler', celsius: 21.0, ts: at(0, 40) },
  { sensor: 'boiler', celsius: 22.0, ts: at(1, 7) }, // watermark 12:01:01.999: [12:00, 12:01) fires
  { sensor: 'boiler', celsius: 23.0, ts: at(0, 50) }, // late, within 30 s: [12:00, 12:01) fires again
  { sensor: 'boiler', celsius: 22.5, ts: at(1, 40) }, // watermark 12:01:34.999: past 12:00:59.999 + 30 s, closed for good
  { sensor: 'boiler', celsius: 19.0, ts: at(0, 55) }, // too late: to the late output
  { sensor: 'boiler', celsius: 24.0, ts: at(2, 5) },
];

const late: Reading[] = [];
const fired = new Set<number>();
const show = (r: WindowResult<string, number>) => {
  const again = fired.has(r.start);
  fired.add(r.start);
  return `  ${again ? 'update ' : 'result '} ${r.key} [${clock(r.start)}, ${clock(r.end)})  avg ${r.value.toFixed(2)} C`;
};

const p = new Pipeline({ name: 'late-data' });
p.source(sources.array(readings), { timestamp: (r) => r.ts, watermarks: watermarks.boundedOutOfOrderness('5s'), batchSize: 1 })
  .keyBy((r) => r.sensor)
  .window(windows.tumbling('1m'))
  .allowedLateness('30s')
  .lateOutput(sinks.collect(late))
  .aggregate(agg.avg((r) => r.celsius), { name: 'avg-per-minute' })
  .sink(sinks.console({ format: show }));

console.log('window results as they fire:');
const { metrics } = await p.run();

console.log('\nlate output:');
for (const r of late) console.log(`  ${r.sensor} ${r.celsius.toFixed(1)} C at ${clock(r.ts)}`);
console.log('\nlate records by outcome (metric weir_late_records_total):');
for (const m of metrics.filter((m) => m.name === 'weir_late_records_total')) console.log(`  ${m.labels.outcome.padEnd(12)} ${m.value}`);

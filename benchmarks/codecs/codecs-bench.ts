/**
 * Codec micro-benchmark (standalone, not a pipeline scenario):
 *
 *   node <build>/benchmarks/codecs/codecs-bench.js [--quick]
 *
 * Encode and decode records/s of each codec for a 10-field payment record (2 longs, 5 strings, a
 * double, an int, a boolean; an enum where the format has one), over 10 000 distinct records, single
 * thread. Also avsc's and protobufjs's own calls alone, to show what the codec layer adds (header,
 * exact longs, verification, plain-object mapping). Each figure is the best of ROUNDS rounds, the
 * rounds of all codecs interleaved, so a busy machine skews them less.
 *
 * Prints the environment, a table, then one JSON line with every figure.
 */
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import avro from 'avsc';
import protobuf from 'protobufjs';
import { codecs, type Codec } from '../../src/codecs/index.js';

const QUICK = process.argv.includes('--quick') || process.env.WEIR_BENCH_QUICK === '1';
const MS = QUICK ? 100 : 300;
const ROUNDS = QUICK ? 2 : 7;
const N = 10_000;

interface Payment {
  id: number;
  ts: number;
  card: string;
  merchant: string;
  amount: number;
  currency: string;
  country: string;
  mcc: number;
  online: boolean;
  channel: 'POS' | 'WEB' | 'APP';
}

/** Seeded records, so runs are comparable. */
function payments(n: number): Payment[] {
  let s = 12345;
  const next = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
  const channels = ['POS', 'WEB', 'APP'] as const;
  return Array.from({ length: n }, (_, i) => ({
    id: 1_000_000_000_000 + i,
    ts: 1_700_000_000_000 + Math.floor(next() * 86_400_000),
    card: `card-${Math.floor(next() * 1e6).toString(36).padStart(6, '0')}`,
    merchant: `merchant ${Math.floor(next() * 5000)}`,
    amount: Math.round(next() * 100_000) / 100,
    currency: next() < 0.7 ? 'EUR' : 'USD',
    country: ['FR', 'DE', 'US', 'GB', 'ES'][Math.floor(next() * 5)],
    mcc: 5000 + Math.floor(next() * 999),
    online: next() < 0.4,
    channel: channels[Math.floor(next() * 3)],
  }));
}

const avroSchema = {
  type: 'record',
  name: 'Payment',
  namespace: 'bench',
  fields: [
    { name: 'id', type: 'long' },
    { name: 'ts', type: 'long' },
    { name: 'card', type: 'string' },
    { name: 'merchant', type: 'string' },
    { name: 'amount', type: 'double' },
    { name: 'currency', type: 'string' },
    { name: 'country', type: 'string' },
    { name: 'mcc', type: 'int' },
    { name: 'online', type: 'boolean' },
    { name: 'channel', type: { type: 'enum', name: 'Channel', symbols: ['POS', 'WEB', 'APP'] } },
  ],
};
const proto = `
syntax = "proto3";
package bench;
enum Channel { POS = 0; WEB = 1; APP = 2; }
message Payment {
  int64 id = 1; int64 ts = 2; string card = 3; string merchant = 4; double amount = 5;
  string currency = 6; string country = 7; int32 mcc = 8; bool online = 9; Channel channel = 10;
}`;

interface Row {
  readonly codec: string;
  encode: number;
  decode: number;
  readonly bytes: number;
}
const rows: Row[] = [];
/** One round of every codec, in turn. */
const rounds: (() => void)[] = [];

/** Runs `fn` repeatedly for about `ms` (after a warm-up) and returns calls per second. */
function rate(fn: () => void, ms: number): number {
  const warmEnd = performance.now() + Math.min(300, ms / 3);
  while (performance.now() < warmEnd) fn();
  let calls = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    fn();
    calls++;
    now = performance.now();
  }
  return (calls * 1000) / (now - start);
}

let sink = 0;
function measure<T>(name: string, records: readonly T[], encode: (v: T) => Uint8Array, decode: (b: Uint8Array) => unknown): void {
  const encoded = records.map(encode);
  const row: Row = { codec: name, encode: 0, decode: 0, bytes: encoded.reduce((n, b) => n + b.length, 0) / encoded.length };
  rows.push(row);
  rounds.push(() => {
    const enc = rate(() => {
      for (let i = 0; i < records.length; i++) sink += encode(records[i]).length;
    }, MS) * records.length;
    const dec = rate(() => {
      for (let i = 0; i < encoded.length; i++) if (decode(encoded[i]) === undefined) sink++;
    }, MS) * encoded.length;
    row.encode = Math.max(row.encode, enc);
    row.decode = Math.max(row.decode, dec);
  });
}

function measureCodec<T>(name: string, codec: Codec<T>, records: readonly T[]): void {
  // Round-trip check first: a benchmark of a broken codec is worth nothing.
  const back = codec.decode(codec.encode(records[0])) as Record<string, unknown>;
  for (const [k, v] of Object.entries(records[0] as Record<string, unknown>)) {
    if (String(back[k]) !== String(v)) throw new Error(`${name}: field ${k} came back as ${String(back[k])}, not ${String(v)}`);
  }
  measure(name, records, (v) => codec.encode(v), (b) => codec.decode(b));
}

const data = payments(N);
const registry = codecs.schemaRegistry.memory({ isolated: true });

measureCodec('json', codecs.json<Payment>(), data);
measureCodec('json + fields check (both ways)', codecs.json<Payment>({
  fields: { id: 'integer', ts: 'integer', card: 'string', merchant: 'string', amount: 'number', currency: 'string', country: 'string', mcc: 'integer', online: 'boolean', channel: 'string' },
}), data);
measureCodec('avro (Confluent framing, exact longs)', codecs.avro<Payment>({ schema: avroSchema, registry }), data);
measureCodec('avro raw (no header)', codecs.avro<Payment>({ schema: avroSchema, wireFormat: 'raw' }), data);
const pbRecords = data as unknown as Payment[];
measureCodec('protobuf (verify, longs as strings)', codecs.protobuf<Payment>({ type: 'bench.Payment', proto }), pbRecords);
measureCodec('protobuf (verify, longs as numbers)', codecs.protobuf<Payment>({ type: 'bench.Payment', proto, longs: 'number' }), pbRecords);
measureCodec('protobuf (no verify, longs as numbers)', codecs.protobuf<Payment>({ type: 'bench.Payment', proto, longs: 'number', verify: false }), pbRecords);
measureCodec('string (JSON text, for scale)', codecs.string(), data.map((d) => JSON.stringify(d)));

// The libraries alone, for what the codec layer costs.
{
  const t = avro.Type.forSchema(avroSchema as Parameters<typeof avro.Type.forSchema>[0]);
  measure('(avsc toBuffer/fromBuffer alone, native longs)', data, (v) => t.toBuffer(v), (b) => t.fromBuffer(b as Buffer));
  const pt = protobuf.parse(proto).root.lookupType('bench.Payment');
  const conv = { longs: Number, enums: String, defaults: true };
  measure('(protobufjs fromObject+encode / decode+toObject alone)', data, (v) => pt.encode(pt.fromObject(v as unknown as Record<string, unknown>)).finish(), (b) => pt.toObject(pt.decode(b), conv));
}

for (let r = 0; r < ROUNDS; r++) for (const round of rounds) round();

// ---------------------------------------------------------------- report
const cpu = os.cpus()[0]?.model ?? 'unknown cpu';
console.log(`node ${process.version} (V8 ${process.versions.v8}), ${os.platform()} ${os.arch()}, ${cpu}, ${os.cpus().length} cores, load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}${QUICK ? ' — QUICK run, figures not comparable' : ''}`);
console.log(`10-field payment record, ${N.toLocaleString('en')} distinct records, single thread, best of ${ROUNDS} rounds`);
const fmt = (v: number): string => (v >= 1e6 ? `${(v / 1e6).toFixed(2)}M` : `${(v / 1e3).toFixed(0)}k`);
const width = Math.max(...rows.map((r) => r.codec.length));
console.log(`${'codec'.padEnd(width)}  ${'encode/s'.padStart(9)}  ${'decode/s'.padStart(9)}  bytes`);
for (const r of rows) console.log(`${r.codec.padEnd(width)}  ${fmt(r.encode).padStart(9)}  ${fmt(r.decode).padStart(9)}  ${r.bytes.toFixed(0).padStart(5)}`);
console.log(JSON.stringify({ bench: 'codecs', quick: QUICK, node: process.version, cpu, rows, sink: sink > 0 }));

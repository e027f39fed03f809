/**
 * Micro-benchmark of the durable-state store layer (not a test, not part of `npm run bench`'s
 * pipeline scenarios): one checkpoint of N dirty keys, then recovery of them, per LSM backend.
 *
 *   node dist/benchmarks/store/store-bench.js                 # classic-level and rocksdb, 1M keys, each in a fresh process
 *   node dist/benchmarks/store/store-bench.js rocksdb --keys=100000
 *
 * Figures: checkpoint = `writeCheckpoint` of N dirty keys (encode + one synced atomic batch);
 * reopen = opening the store again (LevelDB/RocksDB replay their log); read = `readAsOf` streaming
 * every key back, decoded; bytes/key = the directory's size after the reopen, over N.
 * Targets (issue 3): checkpoint of 1M dirty keys <= 1 s, recovery of 1M keys <= 2 s.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { keyGroupOf } from '../../src/state/store/key-codec.js';
import { openKvStore, type KvStoreKind } from '../../src/state/store/kv-store.js';
import { VersionedState, type StateWrite } from '../../src/state/store/versioned-state.js';

interface Result {
  kind: KvStoreKind;
  keys: number;
  checkpointMs: number;
  reopenMs: number;
  readMs: number;
  recoveryMs: number;
  bytesPerKey: number;
  bytesPerKeyAfterWrite: number;
}

const args = process.argv.slice(2);
const keys = Number(args.find((a) => a.startsWith('--keys='))?.slice(7) ?? 1_000_000);
const kinds = args.filter((a) => !a.startsWith('--')) as KvStoreKind[];

function dirBytes(dir: string): number {
  let n = 0;
  for (const f of readdirSync(dir)) n += statSync(join(dir, f)).size;
  return n;
}

async function one(kind: KvStoreKind): Promise<Result> {
  const dir = mkdtempSync(join(tmpdir(), `weir-store-bench-${kind}-`));
  try {
    const entries: StateWrite[] = new Array(keys);
    for (let i = 0; i < keys; i++) {
      const key = `card-${(i * 2654435761) % 4294967296}`;
      entries[i] = { operator: 'window#1', table: 'acc', keyGroup: keyGroupOf(key, 128), namespace: 1_700_000_040_000, key, value: i % 977 };
    }
    let store = await openKvStore(dir, kind);
    let vs = await VersionedState.open(store);
    let t = performance.now();
    await vs.writeCheckpoint(1, entries, { time: Date.now(), sources: { s: { offset: keys } }, sinks: {}, operators: {} });
    const checkpointMs = performance.now() - t;
    await vs.close();
    const bytesAfterWrite = dirBytes(dir);

    t = performance.now();
    store = await openKvStore(dir, kind);
    vs = await VersionedState.open(store);
    const reopenMs = performance.now() - t;
    const m = await vs.latestValidManifest(() => undefined);
    t = performance.now();
    let n = 0;
    for await (const chunk of vs.readAsOf(m!.id)) n += chunk.length;
    const readMs = performance.now() - t;
    if (n !== keys) throw new Error(`read ${n} keys, wrote ${keys}`);
    await vs.close();
    return {
      kind,
      keys,
      checkpointMs: Math.round(checkpointMs),
      reopenMs: Math.round(reopenMs),
      readMs: Math.round(readMs),
      recoveryMs: Math.round(reopenMs + readMs),
      bytesPerKey: Math.round((dirBytes(dir) / keys) * 10) / 10,
      bytesPerKeyAfterWrite: Math.round((bytesAfterWrite / keys) * 10) / 10,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (kinds.length === 1) {
  console.log(JSON.stringify(await one(kinds[0])));
} else {
  const self = fileURLToPath(import.meta.url);
  console.log(`node ${process.version}, ${cpus()[0]?.model ?? '?'} x${cpus().length}, ${Math.round(totalmem() / 2 ** 30)} GiB; ${keys} keys`);
  const rows: Result[] = [];
  for (const kind of ['classic-level', 'rocksdb'] as const) {
    const r = spawnSync(process.execPath, [self, kind, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    const line = r.stdout.trim().split('\n').at(-1);
    if (r.status !== 0 || !line) {
      console.log(`${kind}: failed (exit ${r.status})`);
      continue;
    }
    rows.push(JSON.parse(line) as Result);
  }
  console.table(rows);
  console.log(JSON.stringify(rows));
}

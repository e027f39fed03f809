/**
 * Keyed state stored as blobs per key group (src/state/store/versioned-state.ts, state-blob.ts):
 * the blob codec, delta chains with compaction and garbage collection checked against a reference
 * model by search, reading key-group ranges, and corrupt blobs falling back to an older checkpoint.
 * Runs against the in-memory store and classic-level (and rocksdb when it loads).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import zlib from 'node:zlib';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { pino } from 'pino';
import { WeirError } from '../src/errors.js';
import { DurableCheckpointStorage } from '../src/checkpoint/durable-checkpoint-storage.js';
import { SNAPSHOT_FORMAT, type CheckpointDelta } from '../src/checkpoint/snapshot.js';
import { decodeTuple, encodeTuple, keyGroupOf, type KeyPart } from '../src/state/store/key-codec.js';
import { openKvStore, type KvStore, type KvStoreKind } from '../src/state/store/kv-store.js';
import { openMemoryKvStore } from '../src/state/store/memory-kv-store.js';
import { crc32, crc32Js, encodeBlobPart } from '../src/state/store/state-blob.js';
import { encodeValue } from '../src/state/store/value-codec.js';
import { VersionedState, type ManifestInput, type SkippedManifest, type StateRange, type StateWrite, type VersionedStateOptions } from '../src/state/store/versioned-state.js';

const tmpRoot = mkdtempSync(join(tmpdir(), 'weir-state-blobs-'));
after(() => rmSync(tmpRoot, { recursive: true, force: true }));
let seq = 0;

const isCode = (code: string) => (e: unknown) => e instanceof WeirError && e.code === code;
const MANIFEST: ManifestInput = { time: 1, sources: {}, sinks: {}, operators: {} };

interface Backend {
  readonly name: string;
  open(location: string): Promise<KvStore>;
  fresh(): string;
}
const backends: Backend[] = [
  { name: 'memory', open: async (n) => openMemoryKvStore(n), fresh: () => `state-blobs-${process.pid}-${seq++}` },
  { name: 'classic-level', open: (d) => openKvStore(d, 'classic-level'), fresh: () => join(tmpRoot, `classic-${seq++}`) },
];
try {
  await (await openKvStore(join(tmpRoot, 'probe'), 'rocksdb')).close();
  backends.push({ name: 'rocksdb', open: (d) => openKvStore(d, 'rocksdb'), fresh: () => join(tmpRoot, `rocksdb-${seq++}`) });
} catch {
  // test/state-store.test.ts says loudly (and fails under CI) when rocksdb cannot load.
}

/** Identity of an entry in the model: its address, as a tuple encoding. */
const addr = (w: { operator: string; table: string; keyGroup: number; namespace: KeyPart; key: KeyPart }): string => encodeTuple([w.operator, w.table, w.keyGroup, w.namespace, w.key]);

/** The state as of `id` read back, keyed like the model; a key read twice fails. */
async function readMap(vs: VersionedState, id: number, range: StateRange = {}): Promise<Map<string, unknown>> {
  const out = new Map<string, unknown>();
  for await (const chunk of vs.readAsOf(id, range)) {
    for (const e of chunk) {
      const a = addr(e);
      assert.ok(!out.has(a), `an entry is read once (${JSON.stringify(decodeTuple(a).map(String))})`);
      out.set(a, e.value);
    }
  }
  return out;
}

/** The blobs stored, from their records: [group id, checkpoint id, kind]. */
async function storedBlobs(store: KvStore): Promise<{ group: string; id: number; kind: string }[]> {
  const out: { group: string; id: number; kind: string }[] = [];
  const i = encodeTuple(['i']);
  for await (const chunk of store.chunks({ gte: i, lt: i + '\x08' })) {
    for (const [k, v] of chunk) {
      const t = decodeTuple(k);
      out.push({ group: JSON.stringify(t.slice(1, 4).map(String)), id: t[4] as number, kind: v.split(' ')[0] });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

describe('blob codec', () => {
  it('CRC-32 in JavaScript equals zlib’s, for strings (UTF-8) and bytes', { skip: typeof (zlib as { crc32?: unknown }).crc32 !== 'function' && 'zlib.crc32 needs Node >= 20.15' }, () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), fc.integer({ min: 0, max: 2 ** 32 - 1 }), (s, init) => {
        assert.equal(crc32Js(s, init), crc32(s, init));
        const b = Buffer.from(s, 'utf8');
        assert.equal(crc32Js(b, init), crc32(b, init));
      }),
    );
  });

  for (const backend of backends) {
    it(`${backend.name}: any key, namespace and value round-trips through a blob`, async () => {
      const part: fc.Arbitrary<KeyPart> = fc.oneof(
        fc.string({ unit: 'binary', maxLength: 8 }),
        fc.string({ unit: fc.constantFrom('"', '\\', '\n', '\0', '\u2028', '\uD800', '\uDC00', '😀', 'é', 'a', '\x7f', '\x1f'), maxLength: 6 }),
        fc.double({ noNaN: true }),
        fc.integer(),
        fc.bigInt({ min: -(2n ** 100n), max: 2n ** 100n }),
        fc.boolean(),
        fc.array(fc.oneof(fc.string({ maxLength: 3 }), fc.integer()), { maxLength: 3 }),
      );
      const value = fc.oneof(fc.jsonValue(), fc.string({ unit: 'binary', maxLength: 20 }), fc.double(), fc.constant(undefined), fc.constant(new Map([['m', 1]])), fc.bigInt());
      const store = await backend.open(backend.fresh());
      // Tiny parts: entries spread over many parts.
      const vs = await VersionedState.open(store, { partChars: 64, readBatchChars: 100 });
      let id = 0;
      try {
        await fc.assert(
          fc.asyncProperty(fc.array(fc.record({ ns: part, key: part, value, kg: fc.integer({ min: 0, max: 2 }) }), { maxLength: 12 }), async (entries) => {
            const model = new Map<string, unknown>();
            const writes: StateWrite[] = entries.map((e) => ({ operator: 'op', table: 't', keyGroup: e.kg, namespace: e.ns, key: e.key, value: e.value }));
            for (const w of writes) model.set(addr(w), w.value);
            // Each run is a fresh start: everything before is given up.
            await vs.resumeFrom(null);
            id = vs.nextCheckpointId;
            await vs.writeCheckpoint(id, writes, MANIFEST);
            const got = await readMap(vs, id);
            assert.deepStrictEqual(got, model);
          }),
          { numRuns: backend.name === 'memory' ? 300 : 60 },
        );
      } finally {
        await vs.close();
      }
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Delta chains, compaction and GC against a model

const OPERATORS = ['a', 'b'];
const TABLES = ['t', 'u'];
const KEYS: KeyPart[] = ['k1', 'k2', 'k"3', 'k\\4', 'é5', 6, 7n, ['t', 8], true];
const NAMESPACES: KeyPart[] = [0, 1, 'w'];

type Op =
  | { readonly t: 'checkpoint'; readonly writes: readonly StateWrite[] }
  | { readonly t: 'retain'; readonly n: number; readonly budget: number }
  | { readonly t: 'reopen'; readonly back: number };

const writeArb: fc.Arbitrary<StateWrite> = fc
  .record({
    operator: fc.constantFrom(...OPERATORS),
    table: fc.constantFrom(...TABLES),
    keyGroup: fc.integer({ min: 0, max: 3 }),
    namespace: fc.constantFrom(...NAMESPACES),
    key: fc.constantFrom(...KEYS),
    del: fc.boolean(),
    value: fc.oneof(fc.integer(), fc.string({ maxLength: 30 }), fc.record({ sum: fc.integer(), pad: fc.string({ maxLength: 40 }) }).map((r) => ({ sum: r.sum, pad: r.pad }))),
  })
  .map(({ del, value, ...a }) => (del ? { ...a, deleted: true } : { ...a, value }));

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.array(writeArb, { maxLength: 25 }).map((writes) => ({ t: 'checkpoint' as const, writes })) },
  { weight: 2, arbitrary: fc.record({ n: fc.integer({ min: 1, max: 3 }), budget: fc.constantFrom(3, 10, 1_000_000) }).map((r) => ({ t: 'retain' as const, ...r })) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 2 }).map((back) => ({ t: 'reopen' as const, back })) },
);

const optionsArb: fc.Arbitrary<VersionedStateOptions> = fc.record({
  maxDeltas: fc.integer({ min: 1, max: 4 }),
  partChars: fc.constantFrom(40, 200, 1 << 20),
  minCompactChars: fc.constantFrom(0, 100, 1e9),
  compactBudgetChars: fc.constantFrom(0, 300, 1 << 25),
  readBatchChars: fc.constantFrom(50, 1 << 20),
});

/**
 * Which stored blobs some retained checkpoint reads: per group, those from the newest full blob
 * <= r up to the newest blob <= r, for each retained r (abandoned ids never count).
 */
function needed(blobs: { group: string; id: number; kind: string }[], retained: readonly number[], abandoned: ReadonlySet<number>): Set<string> {
  const out = new Set<string>();
  const byGroup = new Map<string, { id: number; kind: string }[]>();
  for (const b of blobs) if (!abandoned.has(b.id)) (byGroup.get(b.group) ?? byGroup.set(b.group, []).get(b.group)!).push(b);
  for (const [group, list] of byGroup) {
    list.sort((x, y) => x.id - y.id);
    for (const r of retained) {
      for (let i = list.length - 1; i >= 0; i--) {
        if (list[i].id > r) continue;
        out.add(`${group}@${list[i].id}`);
        if (list[i].kind !== 'd') break;
      }
    }
  }
  return out;
}

let compactions = 0;

for (const backend of backends) {
  describe(`delta chains, compaction and GC: ${backend.name}`, () => {
    it('reads every retained checkpoint (whole and by key-group range) as the model says; GC leaves only what they read', async () => {
      await fc.assert(
        fc.asyncProperty(optionsArb, fc.array(opArb, { minLength: 1, maxLength: backend.name === 'memory' ? 30 : 14 }), fc.integer({ min: 0, max: 4 }), async (options, ops, from) => {
          const loc = backend.fresh();
          let store = await backend.open(loc);
          let vs = await VersionedState.open(store, options);
          await vs.resumeFrom(null);
          /** Model: the state as of each checkpoint the store holds, and the ids given up. */
          const states = new Map<number, Map<string, unknown>>();
          const abandoned = new Set<number>();
          let head: number | null = null;
          try {
            for (const op of ops) {
              if (op.t === 'checkpoint') {
                const id = vs.nextCheckpointId;
                const next = new Map(head === null ? [] : states.get(head)!);
                for (const w of op.writes) w.deleted ? next.delete(addr(w)) : next.set(addr(w), w.value);
                const stats = await vs.writeCheckpoint(id, op.writes, { ...MANIFEST, time: id });
                compactions += stats.compacted;
                states.set(id, next);
                head = id;
              } else if (op.t === 'retain') {
                await vs.retain(op.n, { budget: op.budget });
                const ids = [...states.keys()].sort((x, y) => x - y);
                for (const id of ids.slice(0, Math.max(0, ids.length - op.n))) states.delete(id);
              } else {
                // A restart: the catalog is rebuilt from the store; resume from the newest or an older retained checkpoint.
                await vs.close();
                store = await backend.open(loc);
                vs = await VersionedState.open(store, options);
                const ids = [...states.keys()].sort((x, y) => x - y);
                const to = ids.length === 0 ? null : ids[Math.max(0, ids.length - 1 - op.back)];
                await vs.resumeFrom(to);
                for (let id = (to ?? 0) + 1; id < vs.nextCheckpointId; id++) abandoned.add(id);
                for (const id of ids) if (to === null || id > to) states.delete(id);
                head = to;
              }
              for (const [id, model] of states) assert.deepStrictEqual(await readMap(vs, id), model, `as of checkpoint ${id}`);
            }
            // A key-group range of every operator and table, and one of a table.
            for (const [id, model] of states) {
              const range = { from, to: from + 2 };
              const inRange = (a: string) => {
                const kg = decodeTuple(a)[2] as number;
                return kg >= range.from && kg < range.to;
              };
              assert.deepStrictEqual(await readMap(vs, id, { keyGroups: range }), new Map([...model].filter(([a]) => inRange(a))));
              assert.deepStrictEqual(
                await readMap(vs, id, { operator: 'b', table: 'u', keyGroups: range }),
                new Map([...model].filter(([a]) => inRange(a) && decodeTuple(a)[0] === 'b' && decodeTuple(a)[1] === 'u')),
              );
            }
            // A full GC leaves only blobs some retained checkpoint reads.
            const retained = [...states.keys()].sort((x, y) => x - y);
            if (retained.length > 0) {
              while (!(await vs.retain(retained.length)).cycleComplete);
              const blobs = await storedBlobs(store);
              const want = needed(blobs, retained, abandoned);
              for (const b of blobs) assert.ok(want.has(`${b.group}@${b.id}`), `blob ${b.group}@${b.id} (${b.kind}) is read by a retained checkpoint (${retained.join(', ')})`);
              for (const [id, model] of states) assert.deepStrictEqual(await readMap(vs, id), model, `as of checkpoint ${id} after GC`);
            }
          } finally {
            await vs.close();
          }
        }),
        { numRuns: backend.name === 'memory' ? 150 : 25 },
      );
      assert.ok(compactions > 0, 'the runs compacted some chains');
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Corrupt blobs

describe('corrupt blobs', () => {
  const w = (key: string, value: unknown): StateWrite => ({ operator: 'op', table: 't', keyGroup: keyGroupOf(key, 4), namespace: 0, key, value });
  const keys = Array.from({ length: 40 }, (_, i) => `key-${i}`);
  const groupOf = (k: string) => keyGroupOf(k, 4);

  /** Checkpoints 1 (all keys), 2 (the keys of group g), 3 (an empty checkpoint); returns the store, state and g. */
  async function three(backend: Backend): Promise<{ store: KvStore; vs: VersionedState; g: number; loc: string }> {
    const loc = backend.fresh();
    const store = await backend.open(loc);
    const vs = await VersionedState.open(store);
    await vs.writeCheckpoint(1, keys.map((k, i) => w(k, i)), MANIFEST);
    const g = groupOf(keys[0]);
    await vs.writeCheckpoint(2, keys.filter((k) => groupOf(k) === g).map((k) => w(k, `two ${k}`)), MANIFEST);
    await vs.writeCheckpoint(3, [], MANIFEST);
    return { store, vs, g, loc };
  }
  const partKey = (g: number, id: number, part = 0) => encodeTuple(['c', 'op', 't', g, id, part]);
  const recordKey = (g: number, id: number) => encodeTuple(['i', 'op', 't', g, id]);
  const readAll = async (vs: VersionedState, id: number) => {
    const n: unknown[] = [];
    for await (const c of vs.readAsOf(id)) n.push(...c);
    return n;
  };

  for (const backend of backends) {
    it(`${backend.name}: a flipped digit fails the checksum; recovery falls back to the checkpoint before the blob`, async () => {
      const { store, vs, g } = await three(backend);
      const [text] = await store.getMany([partKey(g, 2)]);
      assert.ok(text !== undefined);
      const i = text.indexOf('two key-') + 8; // a digit of a value
      await store.batch([{ type: 'put', key: partKey(g, 2), value: text.slice(0, i) + (text[i] === '1' ? '2' : '1') + text.slice(i + 1) }]);
      const bad = new RegExp(`checkpoint 3: the state of op/t key group ${g} is corrupt: part 1/1 of its blob of checkpoint 2: it fails its checksum`);
      await assert.rejects(readAll(vs, 3), (e: unknown) => isCode('WEIR_CHECKPOINT_INVALID')(e) && bad.test((e as Error).message));
      await assert.rejects(readAll(vs, 2), isCode('WEIR_CHECKPOINT_INVALID'));
      assert.equal((await readAll(vs, 1)).length, 40);
      const skipped: SkippedManifest[] = [];
      const found = await vs.latestReadable((s) => skipped.push(s), async (m) => (await readAll(vs, m.id)).length);
      assert.deepEqual([found?.manifest.id, found?.value], [1, 40]);
      assert.deepEqual(skipped.map((s) => [s.id, s.reason, s.error.code]), [
        [3, 'corrupt-state', 'WEIR_CHECKPOINT_INVALID'],
        [2, 'corrupt-state', 'WEIR_CHECKPOINT_INVALID'],
      ]);
      // Resuming from 1 gives 2 and 3 up: a new checkpoint builds on 1, never on the corrupt blob.
      await vs.resumeFrom(1);
      await vs.writeCheckpoint(4, [w(keys[0], 'four')], MANIFEST);
      const four = await readAll(vs, 4);
      assert.equal(four.length, 40);
      while (!(await vs.retain(3)).cycleComplete);
      assert.deepEqual(await store.getMany([partKey(g, 2)]), [undefined]);
      await vs.close();
    });

    it(`${backend.name}: a missing part, a misplaced part, bad JSON under a good checksum, a wrong count, an unreadable record`, async () => {
      const cases: [string, (store: KvStore, g: number) => Promise<void>, RegExp][] = [
        ['missing', (s, g) => s.batch([{ type: 'del', key: partKey(g, 2) }]), /part 1\/1 of its blob of checkpoint 2 is missing/],
        [
          'misplaced',
          async (s, g) => {
            const [one] = await s.getMany([partKey(g, 1)]);
            await s.batch([{ type: 'put', key: partKey(g, 2), value: one! }]);
          },
          /its header \("n 1 0 [0-9a-f]+"\) is not that of part 1 of a d blob of checkpoint 2/,
        ],
        ['bad JSON', (s, g) => s.batch([{ type: 'put', key: partKey(g, 2), value: encodeBlobPart('d', 2, 0, '[0,"key-0",') }]), /it cannot be parsed/],
        ['not entries', (s, g) => s.batch([{ type: 'put', key: partKey(g, 2), value: encodeBlobPart('d', 2, 0, '[0,"key-0"]') }]), /it is not a list of entries/],
        [
          'count',
          async (s, g) => {
            const [rec] = await s.getMany([recordKey(g, 2)]);
            const f = rec!.split(' ');
            await s.batch([{ type: 'put', key: recordKey(g, 2), value: [f[0], f[1], String(Number(f[2]) + 1), f[3]].join(' ') }]);
          },
          /its blob of checkpoint 2 holds \d+ entries, its record says \d+/,
        ],
        ['record', (s, g) => s.batch([{ type: 'put', key: recordKey(g, 2), value: 'garbage' }]), /the record of its blob of checkpoint 2 cannot be read/],
      ];
      for (const [what, damage, message] of cases) {
        const { store, vs, g, loc } = await three(backend);
        await damage(store, g);
        // Reopened: the catalog of blobs is read from the records again.
        await vs.close();
        const again = await VersionedState.open(await backend.open(loc));
        await assert.rejects(readAll(again, 3), (e: unknown) => isCode('WEIR_CHECKPOINT_INVALID')(e) && message.test((e as Error).message), what);
        assert.equal((await readAll(again, 1)).length, 40, what);
        await again.close();
      }
    });

    it(`${backend.name}: when every retained checkpoint reads a corrupt blob, recovery refuses to start empty`, async () => {
      const { store, vs, g } = await three(backend);
      const [text] = await store.getMany([partKey(g, 1)]);
      await store.batch([{ type: 'put', key: partKey(g, 1), value: text!.slice(0, -3) }]);
      await assert.rejects(
        vs.latestReadable(() => undefined, (m) => readAll(vs, m.id)),
        (e: unknown) => isCode('WEIR_NO_VALID_CHECKPOINT')(e) && /3 \(corrupt-state\), 2 \(corrupt-state\), 1 \(corrupt-state\)/.test((e as Error).message),
      );
      await vs.close();
    });
  }
});

describe('stores of the earlier layout', () => {
  it('a store written one entry per key (manifest format 1) is refused with a clear error, never read as empty', async () => {
    const store = openMemoryKvStore(`state-blobs-v1-${process.pid}`);
    // What weir with the per-key layout wrote: versioned entries under `s` and a format-1 manifest.
    const payload = encodeValue({ id: 1, time: 1, sources: {}, sinks: {}, operators: {} });
    const checksum = createHash('sha256').update('1').update('\n').update(payload).digest('hex');
    await store.batch([
      { type: 'put', key: encodeTuple(['s', 'op', 't', 0, 0, 'k', 1]), value: 'n1' },
      { type: 'put', key: encodeTuple(['m', 1]), value: `1\n${checksum}\n${payload}` },
      { type: 'put', key: encodeTuple(['x', 'meta']), value: encodeValue({ maxId: 1, abandoned: [], gcCursor: null, gcCycle: 0 }) },
    ]);
    const vs = await VersionedState.open(store);
    const skipped: SkippedManifest[] = [];
    await assert.rejects(vs.latestValidManifest((s) => skipped.push(s)), isCode('WEIR_NO_VALID_CHECKPOINT'));
    assert.deepEqual(skipped.map((s) => [s.id, s.reason]), [[1, 'unknown-format']]);
    assert.match(skipped[0].error.message, /manifest has format 1, this weir reads format 2 \(written by an older weir/);
    assert.equal(vs.nextCheckpointId, 2);
    await vs.close();
  });
});

// ---------------------------------------------------------------------------------------------
// DurableCheckpointStorage on top

describe('durable checkpoint storage', () => {
  const logger = pino({ level: 'silent' });
  const delta = (id: number, changes: { key: string; value: unknown }[]): CheckpointDelta => ({
    format: SNAPSHOT_FORMAT,
    id,
    time: id,
    sources: { src: { position: id, watermark: { generator: null, emitted: id } } },
    operators: {
      op: {
        changes: changes.map((c) => ({ table: 'v', ns: 0, key: c.key, value: c.value === undefined ? undefined : encodeValue(c.value) })),
        meta: { id },
        watermarks: { inputs: [id], combined: id },
      },
    },
  });
  const keys = Array.from({ length: 200 }, (_, i) => `card-${i}`);

  for (const kind of ['classic-level', 'rocksdb'] as KvStoreKind[]) {
    if (!backends.some((b) => b.name === kind)) continue;
    it(`${kind}: restores the newest readable checkpoint, or only the key groups asked for`, async () => {
      const dir = join(tmpRoot, `dcs-${seq++}`);
      let s = await DurableCheckpointStorage.open(dir, kind, { logger, maxParallelism: 8, store: { maxDeltas: 1 } });
      assert.equal(await s.load(), null);
      await s.write(delta(1, keys.map((key, i) => ({ key, value: i }))), {});
      await s.write(delta(2, keys.slice(0, 50).map((key) => ({ key, value: undefined }))), {});
      await s.write(delta(3, keys.slice(0, 10).map((key) => ({ key, value: 'back' }))), {}); // compacts the groups it touches
      await s.close();
      s = await DurableCheckpointStorage.open(dir, kind, { logger, maxParallelism: 8 });
      const cp = (await s.load())!;
      assert.equal(cp.id, 3);
      const entries = cp.operators.get('op')!.entries;
      const expected = new Map<string, unknown>(keys.map((k, i) => [k, i < 10 ? 'back' : i < 50 ? undefined : i]).filter(([, v]) => v !== undefined) as [string, unknown][]);
      assert.deepStrictEqual(new Map(entries.map((e) => [e.key as string, e.value])), expected);
      assert.deepEqual(cp.operators.get('op')!.meta, { id: 3 });
      const part = await s.read(3, { keyGroups: { from: 2, to: 5 } });
      const owned = [...expected].filter(([k]) => keyGroupOf(k, 8) >= 2 && keyGroupOf(k, 8) < 5);
      assert.ok(owned.length > 0 && owned.length < expected.size);
      assert.deepStrictEqual(new Map(part.operators.get('op')!.entries.map((e) => [e.key as string, e.value])), new Map(owned));
      await s.close();
    });
  }
});

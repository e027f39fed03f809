/**
 * Reads a topic with Kafka's own Java client at read_committed (test/fixtures/java/CommittedReader.java,
 * compiled on first use against the broker's jars in kafka-broker/lib, fetched by
 * scripts/kafka/broker.mjs when missing). The exactly-once tests check
 * their output with it rather than with kafkajs, whose read_committed filtering lets records of
 * aborted transactions through when several are interleaved (docs/kafka.md).
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

const run = promisify(execFile);

/** The repository root: the folder above this file's that holds scripts/kafka. */
function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(dir, 'scripts', 'kafka', 'broker.mjs'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error('scripts/kafka/broker.mjs not found above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}

let compiled: Promise<{ classpath: string }> | null = null;

/** Compiles the reader once per process (and only when the class is older than its source). */
function compile(): Promise<{ classpath: string }> {
  compiled ??= (async () => {
    const root = repoRoot();
    const lib = path.join(process.env.KAFKA_CACHE_DIR ?? path.join(root, 'kafka-broker'), 'lib');
    // The broker may run from another checkout (or KAFKA_BROKERS): fetch the jars here if need be.
    if (!existsSync(lib)) await run(process.execPath, [path.join(root, 'scripts', 'kafka', 'broker.mjs'), 'fetch'], { timeout: 15 * 60_000 });
    if (!existsSync(lib)) throw new Error(`the Kafka jars are not in ${lib} after fetching them (node scripts/kafka/broker.mjs fetch)`);
    const source = path.join(root, 'test', 'fixtures', 'java', 'CommittedReader.java');
    const out = path.join(tmpdir(), 'weir-kafka-java');
    mkdirSync(out, { recursive: true });
    const cls = path.join(out, 'CommittedReader.class');
    if (!existsSync(cls) || statSync(cls).mtimeMs < statSync(source).mtimeMs) {
      await run('javac', ['-cp', `${lib}/*`, '-d', out, source]);
    }
    return { classpath: `${lib}/*${path.delimiter}${out}` };
  })();
  return compiled;
}

/** Every committed record of `topic` as `key<TAB>value` lines, sorted. */
export async function committedRecords(brokers: readonly string[], topic: string): Promise<string[]> {
  const { classpath } = await compile();
  const { stdout } = await run('java', ['-cp', classpath, 'CommittedReader', brokers.join(','), topic], { maxBuffer: 256 * 2 ** 20 });
  return stdout.split('\n').filter((l) => l !== '').sort();
}

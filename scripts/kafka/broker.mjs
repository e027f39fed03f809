#!/usr/bin/env node
// A real single-node Apache Kafka broker (KRaft, combined broker+controller) for weir's tests,
// assembled from Maven Central jars. No Kafka tarball, no docker. See docs/kafka.md.
//
//   node scripts/kafka/broker.mjs start     start it (idempotent), wait until it serves    (npm run kafka:start)
//   node scripts/kafka/broker.mjs stop      stop it: SIGTERM, SIGKILL after a timeout       (npm run kafka:stop)
//   node scripts/kafka/broker.mjs status    print what runs (exit 0 when it serves, 3 when not)
//   node scripts/kafka/broker.mjs fetch     only fetch the jars (Maven) into the cache
//   node scripts/kafka/broker.mjs acquire --lease PID   for test/kafka-broker.ts: start it if needed, on behalf of PID
//   node scripts/kafka/broker.mjs release --lease PID   for test/kafka-broker.ts: PID is done with it
//
// Coordination (several test processes, several shells, even several checkouts of the repo):
// everything about one broker lives in its run dir, which is keyed by the port, not by the checkout:
// $KAFKA_RUN_DIR, default <os tmpdir>/weir-kafka-<port>. Every command runs under a lock (an
// atomic mkdir of <run>/lock holding the owner's pid; a lock whose owner died is broken).
// A broker started by `start` belongs to the user (owner "manual") and runs until `stop`.
// A broker started by `acquire` belongs to the tests (owner "tests"): each test process holds
// a lease (<run>/leases/<pid>), `release` stops the broker when the last live lease goes, and
// a small detached keeper process stops it when every lease holder has died without releasing.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  closeSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, renameSync, rmSync, statSync, writeFileSync,
} from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(import.meta.url);
const HERE = path.dirname(SCRIPT);
const ROOT = path.resolve(HERE, '..', '..');
const env = process.env;

function intEnv(name, dflt) {
  const v = env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name}=${v} is not a positive integer`);
  return n;
}

const HOST = '127.0.0.1';
const PORT = intEnv('KAFKA_PORT', 19092);
const CONTROLLER_PORT = intEnv('KAFKA_CONTROLLER_PORT', PORT + 1);
const CACHE = path.resolve(env.KAFKA_CACHE_DIR || path.join(ROOT, 'kafka-broker'));
const LIB = path.join(CACHE, 'lib');
const POM = path.join(HERE, 'pom.xml');
const RUN = path.resolve(env.KAFKA_RUN_DIR || path.join(os.tmpdir(), `weir-kafka-${PORT}`));
const DATA = path.join(RUN, 'data');
const LOG = path.join(RUN, 'kafka.log');
const PID_FILE = path.join(RUN, 'kafka.pid');
const OWNER_FILE = path.join(RUN, 'owner');
const KEEPER_PID_FILE = path.join(RUN, 'keeper.pid');
const LEASES = path.join(RUN, 'leases');
const LOCK = path.join(RUN, 'lock');
const START_TIMEOUT_MS = intEnv('KAFKA_START_TIMEOUT_MS', 60_000);
const STOP_TIMEOUT_MS = intEnv('KAFKA_STOP_TIMEOUT_MS', 20_000);
const FETCH_TIMEOUT_MS = intEnv('KAFKA_FETCH_TIMEOUT_MS', 600_000);
const LOCK_TIMEOUT_MS = intEnv('KAFKA_LOCK_TIMEOUT_MS', FETCH_TIMEOUT_MS + START_TIMEOUT_MS + STOP_TIMEOUT_MS);
const KEEPER_GRACE_MS = intEnv('KAFKA_KEEPER_GRACE_MS', 2_000);
const HEAP_OPTS = (env.KAFKA_HEAP_OPTS || '-Xms128m -Xmx512m').split(/\s+/).filter(Boolean);
// bin/kafka-run-class.sh's KAFKA_JVM_PERFORMANCE_OPTS, plus IPv4
const JVM_OPTS = [
  '-server', '-XX:+UseG1GC', '-XX:MaxGCPauseMillis=20', '-XX:InitiatingHeapOccupancyPercent=35',
  '-XX:+ExplicitGCInvokesConcurrent', '-XX:MaxInlineLevel=15', '-Djava.awt.headless=true', '-Djava.net.preferIPv4Stack=true',
];
const JAVA = env.JAVA || (env.JAVA_HOME ? path.join(env.JAVA_HOME, 'bin', 'java') : 'java');
const MVN = env.MVN || 'mvn';
// any 16-byte UUID in Kafka's base64 form; the data dir is fresh on every start, so it never has to match an old one
const CLUSTER_ID = env.KAFKA_CLUSTER_ID || 'd2Vpci1rYWZrYS10ZXN0cw';
const READY_LINE = 'Kafka Server started';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const say = (msg) => process.stderr.write(`[kafka] ${msg}\n`);

// ---------------------------------------------------------------------------------------------
// processes

function alive(pid) {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
}

/** The command line of pid, or null when it cannot be read (no /proc and no ps). */
function commandLine(pid) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    const r = spawnSync('ps', ['-o', 'command=', '-p', String(pid)], { encoding: 'utf8' });
    return r.status === 0 ? r.stdout : null;
  }
}

/** pid is alive and is the broker of this run dir (guards against a recycled pid). */
function isOurBroker(pid) {
  if (!alive(pid)) return false;
  const cmd = commandLine(pid);
  return cmd === null || (cmd.includes('kafka.Kafka') && cmd.includes(path.join(RUN, 'server.properties')));
}

function readInt(file) {
  try {
    const n = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}

function readText(file) {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return null;
  }
}

/** Whether broker `pid` runs on the jars in `lib` (true when its command line cannot be read). */
function runsOn(pid, lib) {
  const cmd = commandLine(pid);
  return cmd === null || cmd.includes(lib);
}

/** The broker's pid when a live broker of this run dir is recorded, else null. */
function brokerPid() {
  const pid = readInt(PID_FILE);
  return pid !== null && isOurBroker(pid) ? pid : null;
}

// ---------------------------------------------------------------------------------------------
// lock: mkdir is atomic; the owner's pid inside lets a waiter break the lock of a dead owner

async function withLock(fn) {
  mkdirSync(RUN, { recursive: true });
  const deadline = Date.now() + LOCK_TIMEOUT_MS;
  let told = false;
  for (;;) {
    try {
      mkdirSync(LOCK);
      writeFileSync(path.join(LOCK, 'owner'), String(process.pid));
      break;
    } catch (e) {
      if (e.code !== 'EEXIST') throw e;
    }
    const owner = readInt(path.join(LOCK, 'owner'));
    let age = 0;
    try {
      age = Date.now() - statSync(LOCK).mtimeMs;
    } catch {
      continue; // just released
    }
    if (owner === null ? age > 5_000 : !alive(owner)) {
      // stale: move it aside (atomic) and retry
      const aside = `${LOCK}.stale-${process.pid}-${Date.now()}`;
      try {
        renameSync(LOCK, aside);
        say(`broke a stale lock (its owner, pid ${owner}, is gone)`);
      } catch {
        /* somebody else broke it first */
      }
      rmSync(aside, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${LOCK_TIMEOUT_MS} ms waiting for ${LOCK} (held by pid ${owner})`);
    if (!told && age > 2_000) {
      say(`waiting for pid ${owner} (it holds ${LOCK}; starting or stopping the broker)`);
      told = true;
    }
    await sleep(100);
  }
  try {
    return await fn();
  } finally {
    rmSync(LOCK, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// leases (one file per test process using a tests-owned broker)

function liveLeases() {
  let names = [];
  try {
    names = readdirSync(LEASES);
  } catch {
    return [];
  }
  const live = [];
  for (const n of names) {
    const pid = Number(n);
    if (Number.isInteger(pid) && alive(pid)) live.push(pid);
    else rmSync(path.join(LEASES, n), { force: true });
  }
  return live;
}

// ---------------------------------------------------------------------------------------------
// jars

function fileHash(file) {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

function run(cmd, args, timeoutMs) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
  if (r.error && r.error.code === 'ENOENT') return { ok: false, missing: true, out: `${cmd}: command not found` };
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  if (r.error) return { ok: false, out: `${out}\n${r.error.message}` };
  return { ok: r.status === 0, out };
}

function tail(text, lines = 40) {
  return text.split('\n').filter((l) => l.trim() !== '').slice(-lines).join('\n');
}

/** Fetches the broker jars into <cache>/lib unless a complete fetch for this pom.xml is there. */
function fetchJars() {
  const stamp = path.join(LIB, '.fetched');
  const want = fileHash(POM);
  if (readText(stamp) === want) return false;
  const t0 = Date.now();
  say(`fetching the Kafka broker jars with Maven into ${LIB} (first time: ~46 MB from Maven Central)`);
  mkdirSync(CACHE, { recursive: true });
  const tmp = `${LIB}.tmp-${process.pid}`;
  for (const f of readdirSync(CACHE)) {
    const m = /^lib\.tmp-(\d+)$/.exec(f); // left by an interrupted fetch
    if (m && (Number(m[1]) === process.pid || !alive(Number(m[1])))) rmSync(path.join(CACHE, f), { recursive: true, force: true });
  }
  const extra = (env.KAFKA_MVN_ARGS || '').split(/\s+/).filter(Boolean);
  const args = ['-B', '-ntp', '-q', '-Dstyle.color=never', '-f', POM, 'dependency:copy-dependencies', `-Dkafka.lib.dir=${tmp}`, ...extra];
  let r = run(MVN, args, FETCH_TIMEOUT_MS);
  if (r.missing) throw new Error(`Maven is needed to fetch the Kafka jars: "${MVN}" not found (install Maven, or set MVN)`);
  if (!r.ok) {
    // no network? a warm ~/.m2 may still have everything
    const offline = run(MVN, ['-o', ...args], FETCH_TIMEOUT_MS);
    if (!offline.ok) {
      rmSync(tmp, { recursive: true, force: true });
      throw new Error(`mvn dependency:copy-dependencies failed:\n${tail(r.out)}`);
    }
    r = offline;
  }
  if (!readdirSync(tmp).some((f) => /^kafka_2\.13-.*\.jar$/.test(f))) throw new Error(`Maven put no kafka_2.13 jar into ${tmp}`);
  writeFileSync(path.join(tmp, '.fetched'), want);
  rmSync(LIB, { recursive: true, force: true });
  renameSync(tmp, LIB);
  say(`fetched ${readdirSync(LIB).length - 1} jars in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return true;
}

// ---------------------------------------------------------------------------------------------
// config

function serverProperties() {
  return `# written by scripts/kafka/broker.mjs (weir test broker); regenerated on every start
# ---- one combined KRaft node on loopback ----
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@${HOST}:${CONTROLLER_PORT}
listeners=PLAINTEXT://${HOST}:${PORT},CONTROLLER://${HOST}:${CONTROLLER_PORT}
advertised.listeners=PLAINTEXT://${HOST}:${PORT}
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=${DATA}

# ---- topics ----
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=true
delete.topic.enable=true

# ---- internal topics: replication factor 1 on one node (the defaults 3 / 2 never become available) ----
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
# 1 partition instead of 50: the first group join / first InitProducerId is fast
offsets.topic.num.partitions=1
transaction.state.log.num.partitions=1

# ---- test speed ----
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000
# a dead member's open transaction is aborted soon after transaction.timeout.ms (default: 10 s after)
transaction.abort.timed.out.transaction.cleanup.interval.ms=1000

# ---- small footprint ----
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.cleaner.dedupe.buffer.size=16777216
`;
}

function log4jProperties(level) {
  return `log4j.rootLogger=${level}, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.org.apache.kafka=WARN
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.controller=WARN
# keeps "Kafka Server started" (kafka.server.KafkaRaftServer), the readiness line
log4j.logger.kafka.server.KafkaRaftServer=INFO
`;
}

// ---------------------------------------------------------------------------------------------
// probing

function tcpOpen(port, timeoutMs = 1_000) {
  return new Promise((resolve) => {
    const s = net.connect({ host: HOST, port });
    const done = (v) => {
      s.destroy();
      resolve(v);
    };
    s.setTimeout(timeoutMs, () => done(true)); // something accepted or is hanging: treat as taken
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** The broker answers Kafka requests (kafkajs describeCluster); falls back to TCP when kafkajs is not installed. */
async function serves(timeoutMs = 3_000) {
  let kafkajs;
  try {
    kafkajs = await import('kafkajs');
  } catch {
    return tcpOpen(PORT, timeoutMs);
  }
  const { Kafka, logLevel } = kafkajs.default ?? kafkajs;
  const kafka = new Kafka({
    clientId: 'weir-kafka-probe',
    brokers: [`${HOST}:${PORT}`],
    logLevel: logLevel.NOTHING,
    connectionTimeout: Math.min(timeoutMs, 1_000),
    requestTimeout: timeoutMs,
    retry: { retries: 0 },
  });
  const admin = kafka.admin();
  try {
    await admin.connect();
    const c = await admin.describeCluster();
    return c.brokers.length > 0;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

function logTail(lines = 60) {
  try {
    return tail(readFileSync(LOG, 'utf8'), lines);
  } catch {
    return '(no broker log)';
  }
}

function logHas(line) {
  try {
    const fd = openSync(LOG, 'r');
    try {
      const size = fstatSync(fd).size;
      const buf = Buffer.alloc(Math.min(size, 256 * 1024));
      readSync(fd, buf, 0, buf.length, size - buf.length);
      return buf.toString('utf8').includes(line);
    } finally {
      closeSync(fd);
    }
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// start / stop (callers hold the lock)

function writeOwner(owner) {
  writeFileSync(OWNER_FILE, owner);
}

function clearRunFiles() {
  for (const f of [PID_FILE, OWNER_FILE]) rmSync(f, { force: true });
}

/** Stops the recorded broker if it runs: SIGTERM, then SIGKILL after STOP_TIMEOUT_MS. */
async function stopBroker() {
  const pid = readInt(PID_FILE);
  if (pid === null || !isOurBroker(pid)) {
    clearRunFiles();
    return false;
  }
  const t0 = Date.now();
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    /* gone */
  }
  while (alive(pid) && Date.now() - t0 < STOP_TIMEOUT_MS) await sleep(100);
  if (alive(pid)) {
    say(`broker pid ${pid} still alive after ${STOP_TIMEOUT_MS} ms: SIGKILL`);
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
    while (alive(pid) && Date.now() - t0 < STOP_TIMEOUT_MS + 10_000) await sleep(100);
  }
  clearRunFiles();
  say(`stopped the broker (pid ${pid}) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return true;
}

/** Starts the keeper of broker `pid` unless it runs (keeper.pid holds "<keeper pid> <broker pid>"). */
function spawnKeeper(pid) {
  const [k, b] = (readText(KEEPER_PID_FILE) ?? '').split(' ').map(Number);
  if (b === pid && alive(k)) return;
  const fd = openSync(path.join(RUN, 'keeper.log'), 'a');
  const child = spawn(process.execPath, [SCRIPT, '__keeper', String(pid)], { detached: true, stdio: ['ignore', fd, fd], env });
  closeSync(fd);
  writeFileSync(KEEPER_PID_FILE, `${child.pid} ${pid}`);
  child.unref();
}

/**
 * Makes sure the broker runs and serves. Returns { started } (false: it was already running).
 * A broker started here belongs to `owner`; `start` on a tests-owned broker makes it the user's.
 */
async function ensureRunning(owner) {
  const running = brokerPid();
  if (running !== null) {
    if (await serves()) {
      if (owner === 'manual') writeOwner('manual');
      else if (readText(OWNER_FILE) === 'tests') spawnKeeper(running); // its keeper may have died
      return { started: false, pid: running };
    }
    say(`broker pid ${running} is alive but does not answer: restarting it`);
    await stopBroker();
  }
  clearRunFiles();
  for (const p of [PORT, CONTROLLER_PORT]) {
    if (await tcpOpen(p)) {
      throw new Error(
        `${HOST}:${p} is taken by another program (no broker of ${RUN} runs). ` +
          `Stop it, or pick free ports with KAFKA_PORT / KAFKA_CONTROLLER_PORT.`,
      );
    }
  }
  const tFetch = Date.now();
  const fetched = fetchJars();
  const fetchMs = Date.now() - tFetch;
  const t0 = Date.now();
  // fresh data dir on every start: nothing stale from a killed run
  rmSync(DATA, { recursive: true, force: true });
  mkdirSync(DATA, { recursive: true });
  writeFileSync(path.join(RUN, 'server.properties'), serverProperties());
  writeFileSync(path.join(RUN, 'log4j.properties'), log4jProperties('INFO'));
  writeFileSync(path.join(RUN, 'log4j-tools.properties'), log4jProperties('WARN'));
  const cp = path.join(LIB, '*');
  const fmt = run(
    JAVA,
    ['-Xmx256m', `-Dlog4j.configuration=file:${path.join(RUN, 'log4j-tools.properties')}`, '-cp', cp,
      'kafka.tools.StorageTool', 'format', '-t', CLUSTER_ID, '-c', path.join(RUN, 'server.properties'), '--ignore-formatted'],
    60_000,
  );
  if (fmt.missing) throw new Error(`Java 17+ is needed to run the Kafka broker: "${JAVA}" not found (install a JDK, or set JAVA_HOME)`);
  if (!fmt.ok) throw new Error(`kafka.tools.StorageTool format failed:\n${tail(fmt.out)}`);

  const fd = openSync(LOG, 'w');
  const child = spawn(
    JAVA,
    [...HEAP_OPTS, ...JVM_OPTS, `-Dlog4j.configuration=file:${path.join(RUN, 'log4j.properties')}`, '-cp', cp,
      'kafka.Kafka', path.join(RUN, 'server.properties')],
    { detached: true, stdio: ['ignore', fd, fd] },
  );
  closeSync(fd);
  const pid = child.pid;
  let exit = null;
  child.once('exit', (code, signal) => (exit = signal ?? `code ${code}`));
  child.once('error', (e) => (exit = e.message));
  child.unref();
  if (pid === undefined) throw new Error(`could not start ${JAVA}`);
  writeFileSync(PID_FILE, String(pid));
  writeOwner(owner);
  // now, not once it serves: should this process die mid-start, the keeper still stops the broker
  if (owner === 'tests') spawnKeeper(pid);

  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (exit !== null || !alive(pid)) {
      clearRunFiles();
      throw new Error(`the Kafka broker exited during startup (${exit ?? 'gone'}); ${LOG} ends with:\n${logTail()}`);
    }
    if (logHas(READY_LINE) && (await serves())) break;
    if (Date.now() > deadline) {
      const t = logTail();
      await stopBroker();
      throw new Error(`the Kafka broker did not serve within ${START_TIMEOUT_MS} ms; ${LOG} ends with:\n${t}`);
    }
    await sleep(100);
  }
  const startMs = Date.now() - t0;
  say(`broker up on ${HOST}:${PORT} (pid ${pid}) in ${(startMs / 1000).toFixed(1)} s` + (fetched ? ` after a ${(fetchMs / 1000).toFixed(1)} s jar fetch` : '') + `; log: ${LOG}`);
  return { started: true, pid, startMs, fetchMs: fetched ? fetchMs : 0 };
}

// ---------------------------------------------------------------------------------------------
// keeper: stops a tests-owned broker once no live process holds a lease (all of them died)

async function keeper(pid) {
  let emptySince = null;
  for (;;) {
    await sleep(500);
    if (!alive(pid) || readInt(PID_FILE) !== pid) return; // stopped (or replaced) by someone else
    if (readText(OWNER_FILE) !== 'tests') return; // the user took it over with `start`
    if (liveLeases().length > 0) {
      emptySince = null;
      continue;
    }
    emptySince ??= Date.now();
    if (Date.now() - emptySince < KEEPER_GRACE_MS) continue;
    const stopped = await withLock(async () => {
      if (readInt(PID_FILE) !== pid || readText(OWNER_FILE) !== 'tests' || liveLeases().length > 0) return false;
      say(`keeper: no live test process holds a lease: stopping broker pid ${pid}`);
      return stopBroker();
    });
    if (stopped || !alive(pid)) return;
    emptySince = null;
  }
}

// ---------------------------------------------------------------------------------------------
// CLI

function leaseArg(argv) {
  const i = argv.indexOf('--lease');
  const pid = i >= 0 ? Number(argv[i + 1]) : NaN;
  if (!Number.isInteger(pid) || pid <= 0) throw new Error('expected --lease <pid>');
  return pid;
}

async function main(argv) {
  const cmd = argv[0];
  const brokers = [`${HOST}:${PORT}`];
  switch (cmd) {
    case 'fetch': {
      await withLock(async () => {
        const pid = brokerPid();
        // Refuse only to replace the jars a running broker uses (one started from another checkout uses its own).
        if (pid !== null && runsOn(pid, LIB) && readText(path.join(LIB, '.fetched')) !== fileHash(POM)) {
          throw new Error('the jars must be fetched again (pom.xml changed) but a broker runs on them: stop it first');
        }
        fetchJars();
      });
      say(`jars in ${LIB}`);
      return 0;
    }
    case 'start': {
      const r = await withLock(() => ensureRunning('manual'));
      if (!r.started) say(`already running on ${HOST}:${PORT} (pid ${r.pid}); log: ${LOG}`);
      process.stdout.write(`KAFKA_BROKERS=${brokers.join(',')}\n`);
      return 0;
    }
    case 'stop': {
      const stopped = await withLock(() => stopBroker());
      if (!stopped) say(`no broker running for ${RUN}`);
      return 0;
    }
    case 'status': {
      const pid = brokerPid();
      const ok = pid !== null && (await serves());
      const owner = readText(OWNER_FILE);
      const leases = liveLeases();
      process.stdout.write(
        pid === null
          ? `not running (run dir ${RUN})\n`
          : `pid ${pid} on ${HOST}:${PORT}, ${ok ? 'serving' : 'NOT serving'}, owner ${owner}` +
              (leases.length ? `, leased by ${leases.join(' ')}` : '') + `\nlog: ${LOG}\n`,
      );
      return ok ? 0 : 3;
    }
    case 'acquire': {
      const lease = leaseArg(argv);
      const r = await withLock(async () => {
        mkdirSync(LEASES, { recursive: true });
        writeFileSync(path.join(LEASES, String(lease)), '');
        try {
          return await ensureRunning('tests');
        } catch (e) {
          rmSync(path.join(LEASES, String(lease)), { force: true });
          throw e;
        }
      });
      const owner = readText(OWNER_FILE);
      process.stdout.write(`${JSON.stringify({ brokers, leaseFile: path.join(LEASES, String(lease)), owner, ...r })}\n`);
      return 0;
    }
    case 'release': {
      const lease = leaseArg(argv);
      await withLock(async () => {
        rmSync(path.join(LEASES, String(lease)), { force: true });
        if (readText(OWNER_FILE) === 'tests' && liveLeases().length === 0) await stopBroker();
      });
      return 0;
    }
    case '__keeper': {
      await keeper(Number(argv[1]));
      if (Number((readText(KEEPER_PID_FILE) ?? '').split(' ')[0]) === process.pid) rmSync(KEEPER_PID_FILE, { force: true });
      return 0;
    }
    default:
      process.stderr.write('usage: node scripts/kafka/broker.mjs start|stop|status|fetch|acquire --lease PID|release --lease PID\n');
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`[kafka] ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);

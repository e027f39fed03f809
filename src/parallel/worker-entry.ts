import { parentPort, workerData } from 'node:worker_threads';
import { WeirError, messageOf } from '../errors.js';
import type { Sink } from '../sinks/sink.js';
import type { Job } from '../runtime/job.js';
import { RuntimeNode } from '../runtime/runtime-node.js';
import { Pipeline } from '../pipeline.js';
import type { FromWorker, SinkBatch, ToWorker, WorkerData } from './messages.js';
import { planShape, splitPlan } from './split-plan.js';
import { toWire } from './wire-error.js';

/**
 * A worker thread of a job with `parallelism > 1`: imports the job's module, builds the same
 * pipeline with its export, compiles the keyed part of it (see split-plan.ts), and then does what the
 * main thread's messages say, in order: restore state, process batches, watermarks and idleness,
 * snapshot at a barrier, close at the end. What it produces for a sink is sent back in one message per
 * message handled (which also answers a batch, for flow control).
 */

const data = workerData as WorkerData;
const port = parentPort!;
const outbox: SinkBatch[] = [];
let failed = false;

function post(m: FromWorker): void {
  port.postMessage(m);
}

/** Sends what is in the outbox (and the count of batches handled, `ack`). */
function flush(ack: number): void {
  if (outbox.length === 0 && ack === 0) return;
  post({ t: 'out', batches: outbox.splice(0), ack });
}

function fail(e: unknown): void {
  if (failed) return;
  failed = true;
  outbox.length = 0;
  post({ t: 'failed', error: toWire(e) });
}

/** Stands in for the sink named `name`: its records go to the main thread. */
function forward(name: string): Sink<unknown> {
  return {
    name,
    write(items, timestamps) {
      outbox.push([name, items, timestamps]);
    },
  };
}

async function build(): Promise<Job> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(data.module)) as Record<string, unknown>;
  } catch (e) {
    throw new WeirError('WEIR_WORKER_FAILED', `worker ${data.index} failed to start: cannot import ${data.module}: ${messageOf(e)}`, { cause: e });
  }
  const fn = mod[data.export];
  if (typeof fn !== 'function') throw new WeirError('WEIR_WORKER_FAILED', `worker ${data.index} failed to start: ${data.module} has no function export ${JSON.stringify(data.export)}`);
  const p: unknown = await (fn as (args: unknown) => unknown)(data.args);
  if (!(p instanceof Pipeline)) {
    throw new WeirError('WEIR_WORKER_FAILED', `worker ${data.index} failed to start: ${data.export}() returned ${p === null ? 'null' : typeof p}, not a Pipeline (of this copy of weir)`);
  }
  if (p.name !== data.job) throw new WeirError('WEIR_WORKER_FAILED', `worker ${data.index} failed to start: ${data.export}() built job ${JSON.stringify(p.name)}, not ${JSON.stringify(data.job)}`);
  p.plan.seal();
  if (planShape(p.plan) !== data.shape) {
    throw new WeirError('WEIR_WORKER_FAILED', `worker ${data.index} failed to start: the pipeline it built differs from the main thread's (keep ${data.export}() free of anything that differs per thread)`);
  }
  const job = p.createJob({
    checkpointing: data.checkpointing,
    placement: { role: 'worker', remote: splitPlan(p.plan), forward },
    afterProcessingTime: () => flush(0),
    worker: data.index,
  });
  await job.open();
  return job;
}

/** The keyed operator named `name`, which takes input from the main thread. */
function operator(job: Job, name: string): RuntimeNode {
  const node = job.compiled.byName.get(name);
  if (!(node instanceof RuntimeNode)) throw new WeirError('WEIR_INTERNAL', `worker ${data.index}: no operator ${name}`);
  return node;
}

/** Handles one message; input an operator queued (spilled state being read back) is done before it returns. */
async function handle(job: Job, m: ToWorker): Promise<void> {
  switch (m.t) {
    case 'batch':
      operator(job, m.node).receiveBatch(m.items, m.ts, m.port);
      if (job.hasPendingNodes) await job.settleNodes();
      flush(1);
      return;
    case 'wm':
      operator(job, m.node).receiveWatermark(m.wm, m.port);
      if (job.hasPendingNodes) await job.settleNodes();
      flush(0);
      return;
    case 'idle':
      operator(job, m.node).receiveIdle(m.idle, m.port);
      if (job.hasPendingNodes) await job.settleNodes();
      flush(0);
      return;
    case 'barrier': {
      flush(0);
      const delta = job.snapshotLocal(m.id);
      post({ t: 'snapshot', id: m.id, operators: { ...delta.operators }, metrics: job.env.metrics.snapshot() });
      return;
    }
    case 'restore':
      await job.restore({ id: 0, operators: new Map(Object.entries(m.operators)), sources: {} });
      post({ t: 'restored' });
      return;
    case 'end':
      for (const n of job.compiled.operators) await n.operator.close?.();
      flush(0);
      post({ t: 'ended', metrics: job.env.metrics.snapshot() });
      return;
    case 'close': {
      const errors: unknown[] = [];
      await job.disposeOperators(errors);
      if (errors.length > 0) throw errors[0];
      post({ t: 'closed' });
      return;
    }
  }
}

/** Messages are handled one at a time, in order: a message waits for the one before it. */
const inbox: ToWorker[] = [];
let pumping = false;

async function pump(job: Job): Promise<void> {
  pumping = true;
  try {
    while (inbox.length > 0 && !failed) await handle(job, inbox.shift()!);
  } catch (e) {
    fail(e);
  } finally {
    pumping = false;
  }
}

build().then(
  (job) => {
    port.on('message', (m: ToWorker) => {
      if (failed) return;
      inbox.push(m);
      if (!pumping) void pump(job);
    });
    post({ t: 'ready' });
  },
  (e: unknown) => fail(e),
);

import type { Logger } from 'pino';
import { WeirError } from '../errors.js';
import type { MetricsRegistry } from '../observability/metrics.js';
import { ScoreOperator } from '../ml/scoring/score-operator.js';
import { KeyedProcessOperator } from '../operators/keyed-process-operator.js';
import { FilterOperator, FlatMapOperator, MapOperator, UnionOperator } from '../operators/stateless-operators.js';
import { DeadLetterErrorHandler, FailingErrorHandler, type ErrorHandler } from '../runtime/error-handler.js';
import type { Operator, ProcessingTimeService } from '../runtime/operator.js';
import { Output, RuntimeNode, type Receiver } from '../runtime/runtime-node.js';
import { SinkNode } from '../runtime/sink-node.js';
import { SourceNode } from '../runtime/source-node.js';
import type { DeadLetter, Sink } from '../sinks/sink.js';
import type { StateBackend } from '../state/state-backend.js';
import type { Clock } from '../time/clock.js';
import { SessionWindowOperator } from '../windows/session-window-operator.js';
import { SlicingWindowOperator } from '../windows/slicing-window-operator.js';
import { DriftOperator } from '../ml/drift/drift-operator.js';
import type { DriftPlan, Plan, PlanNode, SourcePlan, WindowPlan } from './plan.js';

/** What compiling needs from the job. */
export interface CompileEnv {
  readonly logger: Logger;
  readonly clock: Clock;
  readonly metrics: MetricsRegistry;
  readonly state: StateBackend;
  /** Processing-time service of one operator. */
  processingTime(node: RuntimeNode): ProcessingTimeService;
  /** A sink node started an async write. */
  onSinkPending(node: SinkNode): void;
  /** An operator node queued input while its state is read back (see `Operator.prefetch`). */
  onNodePending?(node: RuntimeNode): void;
  /** An operator node holds small batches back for more (see `Operator.coalesce`). */
  onNodeLinger?(node: RuntimeNode): void;
  /** Accept streams that end nowhere (test drivers running part of a job). */
  readonly allowDangling?: boolean;
  /** With `parallelism > 1`: which part of the plan this thread runs (absent: all of it). */
  readonly placement?: Placement;
}

/**
 * How a plan is split between the main thread and its worker threads (`parallelism > 1`): the keyed
 * operators and everything after them up to the sinks (`remote`) run in every worker, each on its key
 * groups; sources, the stateless steps before the first keyed operator, and the sinks run on the main
 * thread. Both sides compile the same plan, so step and sink names match.
 */
export type Placement =
  | {
      readonly role: 'main';
      readonly remote: ReadonlySet<number>;
      /** Where a local stream going into remote node `node` (at input `port`) is sent: an exchange. */
      exchange(node: PlanNode, port: number): Receiver;
    }
  | {
      readonly role: 'worker';
      readonly remote: ReadonlySet<number>;
      /** What stands in for the sink named `name` in a worker: it forwards to the main thread. */
      forward(name: string): Sink<unknown>;
    };

/** A source plan node with its runtime head. */
export interface CompiledSource {
  readonly plan: SourcePlan;
  readonly node: SourceNode<unknown>;
}

/** The runnable form of a plan: operators chained into one task, in topological order. */
export interface CompiledJob {
  readonly sources: readonly CompiledSource[];
  readonly operators: readonly RuntimeNode[];
  readonly sinks: readonly SinkNode[];
  /** Every step name → the receiver of its output (the test driver reads them). */
  readonly byName: ReadonlyMap<string, RuntimeNode | SinkNode | SourceNode<unknown>>;
}

/**
 * Turns the frozen plan into runtime nodes: one {@link SourceNode} per source, one {@link RuntimeNode}
 * per operator, one {@link SinkNode} per distinct sink object (main, late and dead-letter sinks), and
 * wires outputs to inputs. Each operator gets the error policy of the sources upstream of it: fail if
 * any of them fails, else their dead-letter sink.
 */
export function compile(plan: Plan, env: CompileEnv): CompiledJob {
  plan.validate({ allowDangling: env.allowDangling });
  const nodes = plan.nodes;
  const sinkNodes = new Map<Sink<unknown>, SinkNode>();
  const outputs: Output<unknown>[] = [];
  const receivers: (Receiver | undefined)[] = [];
  const sources: CompiledSource[] = [];
  const operators: RuntimeNode[] = [];
  const byName = new Map<string, RuntimeNode | SinkNode | SourceNode<unknown>>();
  const upstreamSources = nodes.map(() => new Set<number>());

  const placement = env.placement;
  const sinkNodeOf = (sink: Sink<unknown>, name: string): SinkNode => {
    let s = sinkNodes.get(sink);
    if (!s) {
      const target = placement?.role === 'worker' ? placement.forward(name) : sink;
      s = new SinkNode(name, target, env.metrics.counter('weir_records_in_total', { step: name }), env.onSinkPending);
      sinkNodes.set(sink, s);
    }
    return s;
  };

  const errorHandlerOf = (node: PlanNode): ErrorHandler => {
    const ups = [...upstreamSources[node.id]].map((i) => nodes[i] as SourcePlan);
    if (ups.length === 0 || ups.some((s) => s.deadLetter === undefined)) return new FailingErrorHandler(node.name);
    const src = ups[0];
    const dlq = sinkNodeOf(src.deadLetter as Sink<unknown>, `dead-letter:${src.name}`);
    const counter = env.metrics.counter('weir_dead_letters_total', { step: node.name });
    return new DeadLetterErrorHandler(node.name, src.name, (l: DeadLetter) => dlq.receiveBatch([l], [l.timestamp ?? 0], 0), counter);
  };

  for (const node of nodes) {
    for (const i of node.inputs) for (const s of upstreamSources[i]) upstreamSources[node.id].add(s);
    if (node.kind === 'source') upstreamSources[node.id].add(node.id);

    const out = new Output<unknown>(env.metrics.counter('weir_records_out_total', { step: node.name }));
    outputs[node.id] = out;
    const recordsIn = env.metrics.counter('weir_records_in_total', { step: node.name });

    // Not run on this thread (another one runs it): only its sinks are registered, so that both
    // sides name every sink alike.
    const elsewhere = placement !== undefined && node.kind !== 'sink' && placement.remote.has(node.id) === (placement.role === 'main');
    if (elsewhere) {
      errorHandlerOf(node);
      if ((node.kind === 'window' || node.kind === 'drift') && node.lateOutput) sinkNodeOf(node.lateOutput, `late:${node.name}`);
      if (node.kind === 'score' && node.sideOutput) sinkNodeOf(node.sideOutput, `fallback:${node.name}`);
      if (placement.role === 'main') {
        node.inputs.forEach((input, port) => {
          if (!placement.remote.has(input)) outputs[input].connect(placement.exchange(node, port), port);
        });
      }
      continue;
    }

    if (node.kind === 'source') {
      const strategy = node.watermarks;
      const sn = new SourceNode<unknown>(node.name, node.timestamp, strategy.create(), out, errorHandlerOf(node), env.clock, recordsIn, () => strategy.create(), strategy.idleTimeoutMs);
      sources.push({ plan: node, node: sn });
      byName.set(node.name, sn);
      continue;
    }

    let receiver: Receiver;
    if (node.kind === 'sink') {
      const sn = sinkNodeOf(node.sink, node.name);
      receiver = sn;
      byName.set(node.name, sn);
    } else {
      const rn = new RuntimeNode(node.name, operatorOf(node, env, sinkNodeOf), node.inputs.length, out, recordsIn, errorHandlerOf(node), env.onNodePending);
      if (rn.operator.coalesce !== undefined && rn.operator.coalesce.lingerMs > 0) rn.enableLinger(env.processingTime(rn), env.onNodeLinger);
      operators.push(rn);
      receiver = rn;
      byName.set(node.name, rn);
    }
    receivers[node.id] = receiver;
    // A worker's inputs from the main thread arrive as messages (the worker task feeds them in).
    node.inputs.forEach((input, port) => outputs[input].connect(receiver, port));
  }
  return { sources, operators, sinks: [...sinkNodes.values()], byName };
}

function operatorOf(node: Exclude<PlanNode, { kind: 'source' | 'sink' }>, env: CompileEnv, sinkNodeOf: (s: Sink<unknown>, name: string) => SinkNode): Operator<unknown, unknown> {
  switch (node.kind) {
    case 'map':
      return new MapOperator(node.fn);
    case 'filter':
      return new FilterOperator(node.fn);
    case 'flatMap':
      return new FlatMapOperator(node.fn);
    case 'union':
      return new UnionOperator();
    case 'process':
      return new KeyedProcessOperator(node.fn, node.key, env.state);
    case 'window':
      return windowOperatorOf(node, env, sinkNodeOf);
    case 'drift':
      return driftOperatorOf(node, env, sinkNodeOf);
    case 'score':
      return new ScoreOperator(node.spec, node.sideOutput ? scoreFallbackOutput(node.sideOutput, `fallback:${node.name}`, env, sinkNodeOf) : null);
  }
}

/** The output a `score` step sends its fallback records to, wired to the side-output sink. */
function scoreFallbackOutput(sink: Sink<unknown>, name: string, env: CompileEnv, sinkNodeOf: (s: Sink<unknown>, name: string) => SinkNode): Output<unknown> {
  const out = new Output<unknown>(env.metrics.counter('weir_records_out_total', { step: name }));
  out.connect(sinkNodeOf(sink, name), 0);
  return out;
}

function windowOperatorOf(node: WindowPlan, env: CompileEnv, sinkNodeOf: (s: Sink<unknown>, name: string) => SinkNode): Operator<unknown, unknown> {
  let lateOutput: Output<unknown> | undefined;
  if (node.lateOutput) {
    const lateName = `late:${node.name}`;
    lateOutput = new Output<unknown>(env.metrics.counter('weir_records_out_total', { step: lateName }));
    lateOutput.connect(sinkNodeOf(node.lateOutput, lateName), 0);
  }
  const config = {
    key: node.key,
    aggregator: node.aggregator,
    allowedLateness: node.allowedLateness,
    project: node.project,
    lateOutput,
    state: env.state,
  };
  const a = node.assigner;
  switch (a.kind) {
    case 'tumbling':
    case 'sliding':
      return new SlicingWindowOperator(a, config);
    case 'session':
      return new SessionWindowOperator(a, config);
    default:
      throw new WeirError('WEIR_INVALID_ARGUMENT', `unknown window assigner ${JSON.stringify(a)}`, { step: node.name });
  }
}

function lateOutputOf(node: WindowPlan | DriftPlan, env: CompileEnv, sinkNodeOf: (s: Sink<unknown>, name: string) => SinkNode): Output<unknown> | undefined {
  if (!node.lateOutput) return undefined;
  const lateName = `late:${node.name}`;
  const lateOutput = new Output<unknown>(env.metrics.counter('weir_records_out_total', { step: lateName }));
  lateOutput.connect(sinkNodeOf(node.lateOutput, lateName), 0);
  return lateOutput;
}

function driftOperatorOf(node: DriftPlan, env: CompileEnv, sinkNodeOf: (s: Sink<unknown>, name: string) => SinkNode): Operator<unknown, unknown> {
  return new DriftOperator({
    config: node.spec.config,
    read: node.spec.read,
    key: node.keyed ? node.key : undefined,
    lateOutput: lateOutputOf(node, env, sinkNodeOf),
  });
}

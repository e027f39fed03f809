import { WeirError } from '../errors.js';
import type { KeyedProcessFunction, StateSpec } from '../operators/keyed-process-function.js';
import type { ScoreSpec } from '../ml/scoring/score-spec.js';
import type { TimestampFn } from '../runtime/source-node.js';
import type { DeadLetter, Sink } from '../sinks/sink.js';
import type { Source } from '../sources/source.js';
import type { WatermarkStrategy } from '../time/watermark-strategy.js';
import type { Aggregator } from '../windows/aggregator.js';
import type { WindowAssigner, WindowInfo } from '../windows/window-assigner.js';
import type { DriftSpec } from '../ml/drift/drift-spec.js';

/** A key selector. */
export type KeyFn<T, K> = (record: T) => K;

interface Base {
  readonly id: number;
  readonly name: string;
  readonly inputs: readonly number[];
}
export interface SourcePlan extends Base {
  readonly kind: 'source';
  readonly source: Source<unknown>;
  readonly timestamp: TimestampFn<unknown> | undefined;
  readonly watermarks: WatermarkStrategy;
  readonly deadLetter: Sink<DeadLetter> | undefined;
  readonly batchSize: number | undefined;
}
export interface MapPlan extends Base { readonly kind: 'map'; readonly fn: (r: unknown) => unknown }
export interface FilterPlan extends Base { readonly kind: 'filter'; readonly fn: (r: unknown) => boolean }
export interface FlatMapPlan extends Base { readonly kind: 'flatMap'; readonly fn: (r: unknown) => Iterable<unknown> }
export interface UnionPlan extends Base { readonly kind: 'union' }
export interface WindowPlan extends Base {
  readonly kind: 'window';
  readonly key: KeyFn<unknown, unknown>;
  readonly assigner: WindowAssigner;
  readonly aggregator: Aggregator<unknown, unknown, unknown>;
  readonly allowedLateness: number;
  readonly lateOutput: Sink<unknown> | undefined;
  /** Turns (window, aggregate result) into the output; absent: a WindowResult. */
  readonly project: ((window: WindowInfo<unknown>, result: unknown) => unknown) | undefined;
}
export interface ProcessPlan extends Base {
  readonly kind: 'process';
  readonly key: KeyFn<unknown, unknown>;
  readonly fn: KeyedProcessFunction<unknown, unknown, unknown, StateSpec>;
}
export interface SinkPlan extends Base { readonly kind: 'sink'; readonly sink: Sink<unknown> }

/** `.drift(ml.ks(...) | ml.psi(...))`: drift reports per window (per key when `keyed`). */
export interface DriftPlan extends Base {
  readonly kind: 'drift';
  /** The key function; for an unkeyed stream a constant (one drift for the whole stream, one owner with parallelism). */
  readonly key: KeyFn<unknown, unknown>;
  readonly keyed: boolean;
  readonly spec: DriftSpec<unknown>;
  readonly lateOutput: Sink<unknown> | undefined;
}
/** `.score(model, ...)`: micro-batched model scoring; `sideOutput` receives fallback records when so configured. */
export interface ScorePlan extends Base {
  readonly kind: 'score';
  readonly spec: ScoreSpec;
  readonly sideOutput: Sink<unknown> | undefined;
}
/** One node of the logical plan: frozen data, built by the DSL, compiled into a job by the runtime. */
export type PlanNode = SourcePlan | MapPlan | FilterPlan | FlatMapPlan | UnionPlan | WindowPlan | ProcessPlan | SinkPlan | DriftPlan | ScorePlan;

/**
 * A node as the DSL hands it over: `name` is the user's (must be unique); without one, `label` (or the
 * kind) is the default, made unique by appending `#id` when it is taken.
 */
type Unbuilt<N extends PlanNode> = N extends PlanNode ? Omit<N, 'id' | 'name'> & { name?: string | undefined; label?: string } : never;

/** The logical plan of one pipeline: nodes in creation order (which is a topological order). */
export class Plan {
  private readonly list: PlanNode[] = [];
  private sealed = false;

  get nodes(): readonly PlanNode[] {
    return this.list;
  }

  /** Adds a node; returns its id. */
  add(node: Unbuilt<PlanNode>): number {
    if (this.sealed) throw new WeirError('WEIR_INVALID_PLAN', 'the pipeline is running or has run: streams cannot be extended any more');
    const id = this.list.length;
    const taken = (n: string): boolean => this.list.some((other) => other.name === n);
    let name: string;
    if (node.name !== undefined) {
      name = node.name;
      if (taken(name)) throw new WeirError('WEIR_INVALID_PLAN', `two steps are named ${JSON.stringify(name)}: names must be unique`);
    } else {
      name = node.label ?? `${node.kind}#${id}`;
      if (taken(name)) name = `${name}#${id}`;
    }
    for (const i of node.inputs) {
      if (!(i >= 0 && i < id)) throw new WeirError('WEIR_INTERNAL', `node ${name} has an unknown input ${i}`);
    }
    const { label: _label, ...rest } = node;
    const built = Object.freeze({ ...rest, id, name }) as PlanNode;
    this.list.push(built);
    return id;
  }

  /** No more nodes after this. */
  seal(): void {
    this.sealed = true;
  }

  /**
   * Checks the plan can run: it has a source and a sink, and every stream ends in a sink (unless
   * `allowDangling`: a test may drive one branch of a job and ignore the others).
   */
  validate(opts: { allowDangling?: boolean } = {}): void {
    const sources = this.list.filter((n) => n.kind === 'source');
    if (sources.length === 0) throw new WeirError('WEIR_INVALID_PLAN', 'the pipeline has no source: add one with p.source(...)');
    if (!this.list.some((n) => n.kind === 'sink')) throw new WeirError('WEIR_INVALID_PLAN', 'the pipeline has no sink: end a stream with .sink(...)');
    if (opts.allowDangling) return;
    const consumed = new Set<number>();
    for (const n of this.list) for (const i of n.inputs) consumed.add(i);
    const dangling = this.list.filter((n) => n.kind !== 'sink' && !consumed.has(n.id));
    if (dangling.length > 0) {
      const names = dangling.map((n) => n.name).join(', ');
      throw new WeirError('WEIR_INVALID_PLAN', `the output of ${names} goes nowhere: end every stream with .sink(...)`);
    }
  }
}

import { WeirError } from '../errors.js';
import type { KeyedProcessFunction, StateSpec } from '../operators/keyed-process-function.js';
import type { TimestampFn } from '../runtime/source-node.js';
import type { DeadLetter, Sink } from '../sinks/sink.js';
import type { Source } from '../sources/source.js';
import type { WatermarkStrategy } from '../time/watermark-strategy.js';
import type { Aggregator } from '../windows/aggregator.js';
import type { WindowAssigner, WindowInfo } from '../windows/window-assigner.js';

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

/** One node of the logical plan: frozen data, built by the DSL, compiled into a job by the runtime. */
export type PlanNode = SourcePlan | MapPlan | FilterPlan | FlatMapPlan | UnionPlan | WindowPlan | ProcessPlan | SinkPlan;

type Unbuilt<N extends PlanNode> = N extends PlanNode ? Omit<N, 'id' | 'name'> & { name?: string | undefined } : never;

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
    const name = node.name ?? `${node.kind}#${id}`;
    for (const i of node.inputs) {
      if (!(i >= 0 && i < id)) throw new WeirError('WEIR_INTERNAL', `node ${name} has an unknown input ${i}`);
    }
    if (this.list.some((n) => n.name === name)) throw new WeirError('WEIR_INVALID_PLAN', `two steps are named ${JSON.stringify(name)}: names must be unique`);
    const built = Object.freeze({ ...node, id, name }) as PlanNode;
    this.list.push(built);
    return id;
  }

  /** No more nodes after this. */
  seal(): void {
    this.sealed = true;
  }

  /** Checks the plan can run: it has a source and a sink, and every source reaches a sink. */
  validate(): void {
    const sources = this.list.filter((n) => n.kind === 'source');
    if (sources.length === 0) throw new WeirError('WEIR_INVALID_PLAN', 'the pipeline has no source: add one with p.source(...)');
    if (!this.list.some((n) => n.kind === 'sink')) throw new WeirError('WEIR_INVALID_PLAN', 'the pipeline has no sink: end a stream with .sink(...)');
  }
}

import { WeirError } from '../errors.js';
import type { Plan, PlanNode } from '../graph/plan.js';

/**
 * Which plan nodes run in the worker threads of a job with `parallelism > 1`: every keyed operator
 * (`keyBy().window()`, `keyBy().process()`, `.drift()`: an unkeyed drift is keyed by a constant, so
 * one worker sees the whole stream) and every step after one, up to the sinks. The main
 * thread runs the sources, the stateless steps before the first keyed operator, and the sinks; the
 * records going into a keyed operator are sent to the worker that owns their key group.
 *
 * Not supported yet (a clear error rather than wrong results): a keyed operator after another one
 * (re-keying needs an exchange between workers), and a stream after a keyed operator that meets a
 * stream from before one (a `union` across the split).
 */
export function splitPlan(plan: Plan): Set<number> {
  const remote = new Set<number>();
  const nodes = plan.nodes;
  for (const node of nodes) {
    if (node.kind === 'sink' || node.kind === 'source') continue;
    const keyed = node.kind === 'window' || node.kind === 'process' || node.kind === 'drift';
    const fromRemote = node.inputs.filter((i) => remote.has(i));
    if (keyed && fromRemote.length > 0) {
      throw unsupported(node, 'it is keyed and comes after another keyed step (re-keying between workers is not supported yet)');
    }
    if (!keyed && fromRemote.length > 0 && fromRemote.length < node.inputs.length) {
      throw unsupported(node, 'it joins a stream after a keyed step with one before it');
    }
    if (keyed || fromRemote.length > 0) remote.add(node.id);
  }
  if (remote.size === 0) {
    throw new WeirError('WEIR_INVALID_PLAN', 'parallelism > 1 needs a keyed step (keyBy().window() or keyBy().process()): the work is split by key');
  }
  return remote;
}

function unsupported(node: PlanNode, why: string): WeirError {
  return new WeirError('WEIR_INVALID_PLAN', `${node.name} cannot run with parallelism > 1: ${why}; run this job with parallelism 1`, { step: node.name });
}

/** A short fingerprint of a plan's shape (names, kinds, inputs): the workers check they built the same job. */
export function planShape(plan: Plan): string {
  return plan.nodes.map((n) => `${n.name}:${n.kind}<${n.inputs.join(',')}>`).join(' ');
}

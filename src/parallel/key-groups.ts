import { WeirError } from '../errors.js';

/**
 * Key groups, as Flink has them: keyed state is split into `maxParallelism` groups by a hash of the
 * key (`keyGroupOf` in the state store), and each of `parallelism` workers owns one contiguous range
 * of groups. The number of groups is fixed for the life of a job's state; the parallelism is not, so
 * a job restored with another parallelism hands each worker the groups it now owns.
 */

/** The default number of key groups (the most workers a job's state can ever be split over). */
export const DEFAULT_MAX_PARALLELISM = 128;

/**
 * The worker that owns key group `group`.
 * @example workerOfKeyGroup(100, 4, 128) // 3
 */
export function workerOfKeyGroup(group: number, parallelism: number, maxParallelism: number): number {
  return Math.floor((group * parallelism) / maxParallelism);
}

/**
 * The key groups `[from, to)` worker `index` owns: exactly those for which {@link workerOfKeyGroup}
 * gives `index`.
 * @example keyGroupRange(1, 3, 128) // { from: 43, to: 86 }
 */
export function keyGroupRange(index: number, parallelism: number, maxParallelism: number): { from: number; to: number } {
  return { from: Math.ceil((index * maxParallelism) / parallelism), to: Math.ceil(((index + 1) * maxParallelism) / parallelism) };
}

/** Checks a `parallelism` option: a whole number from 1 to `maxParallelism`. */
export function checkParallelism(parallelism: number, maxParallelism: number): void {
  if (!Number.isInteger(parallelism) || parallelism < 1 || parallelism > maxParallelism) {
    throw new WeirError('WEIR_INVALID_ARGUMENT', `parallelism must be a whole number from 1 to ${maxParallelism} (the number of key groups), got ${parallelism}`);
  }
}

/**
 * weir/testing — test your own jobs deterministically.
 * @example import { TestDriver, testInput, testOutput } from 'weir/testing';
 */
export { TestDriver, testInput, testOutput, type TestInput, type TestOutput, type TestDriverOptions, type TestCheckpoint } from './test-driver.js';
export { ManualClock } from '../time/clock.js';

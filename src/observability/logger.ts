import { pino, type Logger } from 'pino';

/**
 * The logger a job uses when none is given: pino at `WEIR_LOG_LEVEL` (default `info`), to stderr so
 * a job's stdout stays its output.
 */
export function defaultLogger(name: string): Logger {
  const level = process.env.WEIR_LOG_LEVEL ?? 'info';
  return pino({ name, level }, pino.destination(2));
}

/** A logger that drops everything (what `weir/testing` uses). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

import type { Clock } from '../../time/clock.js';

/** Where a {@link CircuitBreaker} stands. */
export type BreakerState = 'closed' | 'open' | 'half-open';

/**
 * The circuit breaker of a `score` step: **closed** (the model is called) → **open** after
 * `failures` consecutive failures (no calls: records get the fallback) → **half-open** once
 * `coolDownMs` of processing time passed (the next batch is a trial) → closed again on a success,
 * open again (for another cool-down) on a failure.
 */
export class CircuitBreaker {
  private current: BreakerState = 'closed';
  private consecutive = 0;
  private openedAt = 0;
  /** Times it opened. */
  trips = 0;

  constructor(
    private readonly failures: number,
    private readonly coolDownMs: number,
    private readonly clock: Clock,
    /** Told of every change of state. */
    private readonly onChange: (state: BreakerState) => void = () => undefined,
  ) {}

  get state(): BreakerState {
    return this.current;
  }

  /** Whether the model may be called now (moves an open breaker whose cool-down is over to half-open). */
  allow(): boolean {
    if (this.current === 'open') {
      if (this.clock.now() - this.openedAt < this.coolDownMs) return false;
      this.set('half-open');
    }
    return true;
  }

  /** A model call succeeded. */
  success(): void {
    this.consecutive = 0;
    if (this.current !== 'closed') this.set('closed');
  }

  /** A model call (or load) failed. */
  failure(): void {
    this.consecutive++;
    if (this.current === 'half-open' || (this.current === 'closed' && this.consecutive >= this.failures)) {
      this.openedAt = this.clock.now();
      this.trips++;
      this.set('open');
    }
  }

  private set(s: BreakerState): void {
    this.current = s;
    this.onChange(s);
  }
}

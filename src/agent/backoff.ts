import type { Rng } from '../util/random';

export interface BackoffOptions {
  /** First delay, ms. */
  initialMs: number;
  /** Largest delay, ms. */
  capMs: number;
  /** Fraction of each delay drawn at random (0 = fixed, 1 = anywhere from 0 to the full delay). */
  jitter: number;
}

/**
 * Exponential reconnect backoff with jitter. The base doubles per failure up to
 * the cap; the delay is drawn from [base * (1 - jitter), base], so a fleet of
 * routers that lost the same SC at the same moment spreads out instead of
 * returning in lock-step, and no delay ever exceeds the cap.
 */
export class Backoff {
  private failures = 0;

  constructor(
    private opts: BackoffOptions,
    private readonly rng: Rng,
  ) {}

  /** New timings (config reload); the failure count stays. */
  configure(opts: BackoffOptions): void {
    this.opts = opts;
  }

  /** The delay before the next attempt; counts one more failure. */
  next(): number {
    const base = Math.min(this.opts.capMs, this.opts.initialMs * 2 ** Math.min(this.failures, 52));
    this.failures++;
    return base * (1 - this.opts.jitter * this.rng());
  }

  /** Call when a connection has come fully up. */
  reset(): void {
    this.failures = 0;
  }

  get attempts(): number {
    return this.failures;
  }
}

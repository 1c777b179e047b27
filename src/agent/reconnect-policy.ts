import type { Rng } from '../util/random';
import { Backoff, type BackoffOptions } from './backoff';

/**
 * The Supervisor's reconnect policy as a pure core: after an attempt ended, which
 * SC to dial next and how long to wait first. Randomness (jitter) is an input;
 * there is no clock in here: the agent arms the wait it is told.
 *
 * The whole policy, one rule per line, first match wins:
 *
 * | the attempt ended because                                | next SC  | wait before dialling                 |
 * |----------------------------------------------------------|----------|--------------------------------------|
 * | the operator asked (reconnect, up) or config changed     | same     | none; the backoff starts over        |
 * | the WAN address changed / a route to the SC came back    | same     | none                                 |
 * | SC said "try another" (StopCCN/CDN error 7), one not yet asked since the last success | next | none |
 * | SC said "try another" and every SC has said it           | next     | backoff                              |
 * | no route / socket / SC unreachable (transport)           | next     | backoff                              |
 * | it will not fix itself (login or secret refused, version)| same     | max(backoff, cap x PERMANENT_FLOOR)  |
 * | anything else (timeouts, peer StopCCN/CDN, LCP dead)     | same     | backoff                              |
 *
 * backoff: initial x 2^failures, capped, then reduced by up to `jitter` of itself at
 * random, so routers that lost the same SC do not come back in lock-step. A
 * connection that came fully up resets it.
 */

export type ReconnectSettings = BackoffOptions;

/** What the Supervisor knows about why an attempt ended. */
export interface EndedBecause {
  layer: string;
  /** Retrying unchanged will not help. */
  permanent?: boolean;
  /** The SC asked us to try another SC. */
  retryElsewhere?: boolean;
}

export interface RetryDecision {
  /** Index into the SC list for the next dial (the caller takes it modulo the list's length). */
  scIndex: number;
  delayMs: number;
  /** Which rule applied, for the log line. */
  rule: 'try-another-now' | 'try-another-backoff' | 'unreachable' | 'will-not-fix-itself' | 'backoff';
}

/** A failure that will not fix itself waits at least this share of the cap (so the SC is not hammered). */
export const PERMANENT_FLOOR = 0.25;

export class ReconnectPolicy {
  private readonly backoff: Backoff;
  private capMs: number;
  private scIndex = 0;
  /** "Try another" answers in a row since the last success or other failure. */
  private elsewhereInARow = 0;

  constructor(settings: ReconnectSettings, random: Rng) {
    this.backoff = new Backoff(settings, random);
    this.capMs = settings.capMs;
  }

  /** The SC to dial now (index into the list). */
  get sc(): number {
    return this.scIndex;
  }

  get attempts(): number {
    return this.backoff.attempts;
  }

  /** New timings (config reload); the failure count stays. */
  configure(s: ReconnectSettings): void {
    this.backoff.configure(s);
    this.capMs = s.capMs;
  }

  /** The connection came fully up: the next failure starts from the initial delay. */
  up(): void {
    this.backoff.reset();
    this.elsewhereInARow = 0;
  }

  /** Operator or config asked for a fresh start: dial at once, backoff from the beginning. */
  reset(): void {
    this.backoff.reset();
  }

  /** An attempt failed; `scCount` is how many SCs the list has now. */
  failed(why: EndedBecause, scCount: number): RetryDecision {
    const elsewhere = why.retryElsewhere === true;
    const unreachable = why.layer === 'transport';
    if (elsewhere || unreachable) this.scIndex++;
    this.elsewhereInARow = elsewhere ? this.elsewhereInARow + 1 : 0;
    if (elsewhere && this.elsewhereInARow < scCount) return { scIndex: this.scIndex, delayMs: 0, rule: 'try-another-now' };
    const delay = this.backoff.next();
    if (why.permanent) return { scIndex: this.scIndex, delayMs: Math.max(delay, this.capMs * PERMANENT_FLOOR), rule: 'will-not-fix-itself' };
    return { scIndex: this.scIndex, delayMs: delay, rule: elsewhere ? 'try-another-backoff' : unreachable ? 'unreachable' : 'backoff' };
  }
}

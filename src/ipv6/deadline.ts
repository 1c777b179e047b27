import { startTimer, stopTimer, type TimerAction } from '../core/actions';
import { clampTimer } from './backoff';

/**
 * Lifetimes are tracked as absolute deadlines on the injected clock, and one
 * core timer is kept armed for the earliest of them. Because timers are clamped
 * to what setTimeout can hold (about 24.8 days; an RA's valid lifetime is often
 * 30 days), a timer may fire before anything is due: the core then simply
 * re-arms for the earliest deadline again.
 */

/** Seconds (with 0xffffffff meaning infinity) to an absolute deadline. */
export function deadlineFrom(now: number, seconds: number): number {
  return seconds === 0xffffffff ? Number.POSITIVE_INFINITY : now + seconds * 1000;
}

/** Remaining whole seconds until `deadline`, 0xffffffff for infinity. */
export function secondsUntil(now: number, deadline: number): number {
  if (deadline === Number.POSITIVE_INFINITY) return 0xffffffff;
  return Math.max(0, Math.ceil((deadline - now) / 1000));
}

/** Timer action keeping `timer` armed for the earliest finite deadline, or stopped. */
export function armFor(timer: string, now: number, deadlines: Iterable<number>): TimerAction {
  let earliest = Number.POSITIVE_INFINITY;
  for (const d of deadlines) if (d < earliest) earliest = d;
  return earliest === Number.POSITIVE_INFINITY ? stopTimer(timer) : startTimer(timer, clampTimer(earliest - now));
}

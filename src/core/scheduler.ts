import type { TimerAction } from './actions';

/**
 * Runs the timer actions of one core. `RealScheduler` uses Node timers;
 * the tests' FakeClock implements the same interface so a day of protocol
 * traffic runs in milliseconds.
 */
export interface Scheduler {
  now(): number;
  set(key: string, ms: number, fire: () => void): void;
  clear(key: string): void;
  /** Number of armed timers; used by soak tests to assert nothing leaks. */
  size(): number;
  /** Disarms every timer. */
  clearAll(): void;
}

/** setTimeout's longest wait; a longer (or non-finite) delay would fire after 1 ms instead. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The delay actually armed for `ms`: at most MAX_TIMER_MS, so a huge lifetime from the
 * network fires late rather than at once (the cores re-arm for what is still due), and
 * a NaN (a bug upstream) waits the longest rather than spinning.
 */
export function clampDelay(ms: number): number {
  if (Number.isNaN(ms)) return MAX_TIMER_MS;
  return Math.min(MAX_TIMER_MS, Math.max(0, ms));
}

export class RealScheduler implements Scheduler {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly origin = performance.now();

  now(): number {
    return performance.now() - this.origin;
  }

  set(key: string, ms: number, fire: () => void): void {
    this.clear(key);
    const t = setTimeout(() => {
      this.timers.delete(key);
      fire();
    }, clampDelay(ms));
    this.timers.set(key, t);
  }

  clear(key: string): void {
    const t = this.timers.get(key);
    if (t !== undefined) {
      clearTimeout(t);
      this.timers.delete(key);
    }
  }

  clearAll(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  size(): number {
    return this.timers.size;
  }
}

/**
 * Applies a core's timer actions to a scheduler, namespacing the timer names with
 * `prefix` so that several cores can share one scheduler.
 */
export function applyTimer(
  s: Scheduler,
  prefix: string,
  a: TimerAction,
  fire: (timer: string) => void,
): void {
  const key = `${prefix}:${a.timer}`;
  if (a.type === 'timer-stop') s.clear(key);
  else s.set(key, a.ms, () => fire(a.timer));
}

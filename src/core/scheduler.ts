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

/**
 * A view of a scheduler that remembers the keys set through it, so that its owner
 * can clear some of its own timers (by a predicate on the key) or all of them
 * without touching anyone else's.
 */
export class TrackedScheduler implements Scheduler {
  private readonly keys = new Set<string>();

  constructor(private readonly inner: Scheduler) {}

  now(): number {
    return this.inner.now();
  }

  set(key: string, ms: number, fire: () => void): void {
    this.keys.add(key);
    this.inner.set(key, ms, () => {
      this.keys.delete(key);
      fire();
    });
  }

  clear(key: string): void {
    this.keys.delete(key);
    this.inner.clear(key);
  }

  clearWhere(pred: (key: string) => boolean): void {
    for (const k of [...this.keys]) if (pred(k)) this.clear(k);
  }

  clearAll(): void {
    for (const k of this.keys) this.inner.clear(k);
    this.keys.clear();
  }

  size(): number {
    return this.keys.size;
  }
}

import type { Scheduler } from '../../src/core/scheduler';

/**
 * A deterministic scheduler: time moves only when the test calls `advance`.
 * Timers due at the same instant fire in the order they were armed.
 */
export class FakeClock implements Scheduler {
  private t = 0;
  private seq = 0;
  private readonly timers = new Map<string, { at: number; seq: number; fire: () => void }>();

  now(): number {
    return this.t;
  }

  set(key: string, ms: number, fire: () => void): void {
    this.timers.set(key, { at: this.t + ms, seq: this.seq++, fire });
  }

  clear(key: string): void {
    this.timers.delete(key);
  }

  size(): number {
    return this.timers.size;
  }

  clearAll(): void {
    this.timers.clear();
  }

  /** When the next timer is due, or undefined if none is armed. */
  nextDue(): number | undefined {
    let best: number | undefined;
    for (const v of this.timers.values()) if (best === undefined || v.at < best) best = v.at;
    return best;
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let key: string | undefined;
      let best: { at: number; seq: number; fire: () => void } | undefined;
      for (const [k, v] of this.timers) {
        if (v.at > end) continue;
        if (!best || v.at < best.at || (v.at === best.at && v.seq < best.seq)) {
          best = v;
          key = k;
        }
      }
      if (!best || key === undefined) break;
      this.timers.delete(key);
      this.t = best.at;
      best.fire();
    }
    this.t = end;
  }
}

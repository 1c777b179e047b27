import type { Logger } from '../log';

/**
 * Drops at the I/O edges (a TUN write the kernel refuses, a send the firewall
 * rejects, a batch call that throws): each is counted under a named reason that
 * `softwire status` shows, and logged at most once per reason per interval, so a
 * flood of hostile datagrams neither kills the packet path nor floods the log.
 */
export class DropLog {
  readonly counts: Record<string, number> = {};
  private readonly lastLogged = new Map<string, number>();

  constructor(
    private readonly log: Logger,
    /** Monotonic ms; the caller's clock, so tests control the rate limit. */
    private readonly now: () => number,
    private readonly everyMs = 60_000,
  ) {}

  /** Counts one drop (or `n`); logs it unless this reason was logged within the interval. */
  count(reason: string, err?: unknown, n = 1): void {
    this.counts[reason] = (this.counts[reason] ?? 0) + n;
    const t = this.now();
    const last = this.lastLogged.get(reason);
    if (last !== undefined && t - last < this.everyMs) return;
    this.lastLogged.set(reason, t);
    this.log.warn({ reason, count: this.counts[reason], err: err === undefined ? undefined : errorMessage(err) }, 'dropped at an I/O edge (logged once a minute per reason)');
  }
}

/** The errno name of a system error (EINVAL, EPERM, ...), or 'error'. */
export function errorCode(e: unknown): string {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[A-Z0-9_]{2,24}$/.test(code) ? code : 'error';
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Runs one I/O call; if it throws, the error is counted under `${reason}.${errno}`
 * and `fallback` is returned instead. This is the one place an edge's exception
 * stops: nothing from a socket or device escapes into the event loop.
 */
export function guarded<T>(drops: DropLog, reason: string, fallback: T, call: () => T): T {
  try {
    return call();
  } catch (e) {
    drops.count(`${reason}.${errorCode(e)}`, e);
    return fallback;
  }
}

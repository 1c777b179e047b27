/**
 * LCP Echo keepalive and round-trip measurement (RFC 1661 5.8, RFC 5571 5.1.2).
 *
 * Every `intervalMs` an Echo-Request goes out carrying our magic; a reply with the
 * same Identifier gives a round-trip sample (time comes in as the `now` argument, so
 * the core stays sans-I/O). After `failures` requests in a row go unanswered, the
 * next tick reports the peer dead.
 *
 * Defaults: 30 s interval (RFC 5571 5.1.2) and 3 failures, pppd's usual
 * `lcp-echo-failure`, so a dead SC is noticed after 90-120 s, inside the 240 s
 * l2tpns itself waits. Only Echo-Replies count as liveness by default: a reply proves
 * both directions work, while inbound traffic alone does not prove the SC hears us.
 * `anyTrafficIsLiveness` (pppd's lcp-echo-adaptive) makes any received frame reset
 * the miss count instead.
 */
import { type StartTimer, type StopTimer, startTimer, stopTimer } from '../core/actions';
import { CODE, type ControlPacket, PROTO } from './frame';
import { buildEchoRequest } from './lcp';

export interface EchoConfig {
  intervalMs?: number;
  failures?: number;
  anyTrafficIsLiveness?: boolean;
}

export const DEFAULT_ECHO: Required<EchoConfig> = { intervalMs: 30_000, failures: 3, anyTrafficIsLiveness: false };

export type EchoOutput =
  | { type: 'send'; protocol: number; bytes: Buffer }
  | StartTimer
  | StopTimer
  | { type: 'down'; reason: 'echo-timeout' };

export interface EchoStatus {
  lastRttMs: number | null;
  smoothedRttMs: number | null;
  sent: number;
  replies: number;
  outstanding: number;
}

/** Smoothing gain of the RTT average, as TCP's SRTT (RFC 6298). */
const ALPHA = 1 / 8;

export class EchoKeepalive {
  readonly timer = 'echo';
  private readonly cfg: Required<EchoConfig>;
  private running = false;
  private id = 0;
  private missed = 0;
  private readonly pending = new Map<number, number>();
  private st: EchoStatus = { lastRttMs: null, smoothedRttMs: null, sent: 0, replies: 0, outstanding: 0 };

  constructor(cfg: EchoConfig = {}) {
    this.cfg = { ...DEFAULT_ECHO, ...cfg };
    if (!(this.cfg.intervalMs > 0) || !(this.cfg.failures >= 1))
      throw new RangeError('echo interval and failure count must be positive');
  }

  get status(): EchoStatus {
    return { ...this.st, outstanding: this.missed };
  }

  start(): EchoOutput[] {
    this.running = true;
    this.missed = 0;
    this.pending.clear();
    return [startTimer(this.timer, this.cfg.intervalMs)];
  }

  stop(): EchoOutput[] {
    if (!this.running) return [];
    this.running = false;
    this.pending.clear();
    return [stopTimer(this.timer)];
  }

  /** The echo timer fired: report death or send the next request. */
  tick(magic: number, now: number): EchoOutput[] {
    if (!this.running) return [];
    if (this.missed >= this.cfg.failures) {
      this.running = false;
      return [{ type: 'down', reason: 'echo-timeout' }];
    }
    this.id = (this.id + 1) & 0xff;
    this.pending.set(this.id, now);
    // Identifiers wrap at 256; only the recent ones can still be answered.
    if (this.pending.size > 16) this.pending.delete(this.pending.keys().next().value as number);
    this.missed++;
    this.st.sent++;
    return [
      { type: 'send', protocol: PROTO.LCP, bytes: buildEchoRequest(this.id, magic) },
      startTimer(this.timer, this.cfg.intervalMs),
    ];
  }

  /** An Echo-Reply arrived (in LCP Opened). */
  reply(pkt: ControlPacket, now: number): void {
    if (!this.running || pkt.code !== CODE.ECHO_REPLY) return;
    const sentAt = this.pending.get(pkt.id);
    if (sentAt === undefined) return;
    this.pending.delete(pkt.id);
    const rtt = Math.max(0, now - sentAt);
    this.st.lastRttMs = rtt;
    this.st.smoothedRttMs = this.st.smoothedRttMs === null ? rtt : this.st.smoothedRttMs + ALPHA * (rtt - this.st.smoothedRttMs);
    this.st.replies++;
    this.missed = 0;
  }

  /** Any frame arrived from the peer. */
  traffic(): void {
    if (this.cfg.anyTrafficIsLiveness) this.missed = 0;
  }
}

/**
 * Checks an LCP echo interval against RFC 5571 5.1.2: at least 10 s and at most the
 * lesser of the HELLO interval and 60 s. A HELLO interval of 0 means HELLO is off.
 * Returns an error message, or undefined when the value is valid.
 */
export function validateEchoInterval(seconds: number, helloSeconds: number): string | undefined {
  if (!Number.isFinite(seconds)) return `LCP echo interval must be a number of seconds, got ${seconds}`;
  const max = helloSeconds > 0 ? Math.min(helloSeconds, 60) : 60;
  if (seconds < 10) return `LCP echo interval ${seconds}s is below the RFC 5571 5.1.2 minimum of 10s`;
  if (seconds > max) {
    const why = helloSeconds > 0 && helloSeconds < 60 ? `the HELLO interval (${helloSeconds}s)` : '60s';
    return `LCP echo interval ${seconds}s exceeds the RFC 5571 5.1.2 maximum of ${max}s (the lesser of the HELLO interval and 60s; here ${why})`;
  }
  return undefined;
}

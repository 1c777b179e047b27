import { startTimer, stopTimer, type TimerAction } from '../core/actions';
import { UNSPECIFIED } from './address';
import { type Rng, randomDelay, Retransmission } from './backoff';
import { buildRouterSolicitation } from './nd';

/**
 * Router Solicitation sender (RFC 4861 6.3.7, RFC 7559).
 *
 * Default: RFC 7559 behaviour. After a random delay of up to
 * MAX_RTR_SOLICITATION_DELAY, solicit, then keep soliciting with the RFC 8415
 * backoff (first gap ~RTR_SOLICITATION_INTERVAL, doubling, capped at
 * MAX_RTR_SOLICITATION_INTERVAL = 1 h) until an RA arrives. We chose this because
 * a softwire that misses its one unsolicited RA (l2tpns sends it once when IPV6CP
 * opens and is otherwise not periodic) would otherwise have no IPv6 until something
 * else prompts the concentrator. `{ maxSolicitations: 3, backoff: false }` gives
 * the classic RFC 4861 schedule: three RSs 4 s apart, then 'rs-gave-up' 4 s later.
 */

export const MAX_RTR_SOLICITATION_DELAY_MS = 1000;
export const RTR_SOLICITATION_INTERVAL_MS = 4000;
export const MAX_RTR_SOLICITATIONS = 3;
export const MAX_RTR_SOLICITATION_INTERVAL_MS = 3600_000;

export interface RouterSolicitorOptions {
  rng: Rng;
  /** Our link-local address; '::' before we have one. */
  source?: string;
  /** Only on links with link-layer addresses; never on PPP. */
  sourceLinkLayer?: Uint8Array;
  maxDelayMs?: number;
  intervalMs?: number;
  /** 0 = unlimited (RFC 7559). */
  maxSolicitations?: number;
  /** Exponential backoff (RFC 7559) rather than a fixed interval. */
  backoff?: boolean;
  maxIntervalMs?: number;
}

export type RsAction = TimerAction | { type: 'send'; packet: Uint8Array } | { type: 'rs-gave-up'; sent: number };

export type RsState = 'idle' | 'delaying' | 'soliciting' | 'done' | 'gave-up';

export const RS_TIMER = 'rs';

export class RouterSolicitor {
  private st: RsState = 'idle';
  private retrans: Retransmission | undefined;
  private sentCount = 0;
  private final = false;
  private readonly o: Required<Omit<RouterSolicitorOptions, 'sourceLinkLayer'>> & { sourceLinkLayer?: Uint8Array };

  constructor(options: RouterSolicitorOptions) {
    this.o = {
      source: UNSPECIFIED,
      maxDelayMs: MAX_RTR_SOLICITATION_DELAY_MS,
      intervalMs: RTR_SOLICITATION_INTERVAL_MS,
      maxSolicitations: 0,
      backoff: true,
      maxIntervalMs: MAX_RTR_SOLICITATION_INTERVAL_MS,
      ...options,
    };
  }

  get state(): RsState {
    return this.st;
  }

  get sent(): number {
    return this.sentCount;
  }

  /** Begins (or restarts, e.g. after the link came back) soliciting. */
  start(): RsAction[] {
    this.st = 'delaying';
    this.sentCount = 0;
    this.final = false;
    this.retrans = new Retransmission(
      { irt: this.o.intervalMs, mrt: this.o.maxIntervalMs, mrc: this.o.maxSolicitations, mrd: 0 },
      this.o.rng,
    );
    return [startTimer(RS_TIMER, randomDelay(this.o.rng, this.o.maxDelayMs))];
  }

  /** A valid RA arrived (the caller has checked it with parseNdPacket). */
  raReceived(): RsAction[] {
    if (this.st !== 'delaying' && this.st !== 'soliciting') return [];
    this.st = 'done';
    return [stopTimer(RS_TIMER)];
  }

  stop(): RsAction[] {
    const running = this.st === 'delaying' || this.st === 'soliciting';
    this.st = 'idle';
    return running ? [stopTimer(RS_TIMER)] : [];
  }

  timerFired(timer: string): RsAction[] {
    if (timer !== RS_TIMER || (this.st !== 'delaying' && this.st !== 'soliciting')) return [];
    if (this.final) {
      this.st = 'gave-up';
      return [{ type: 'rs-gave-up', sent: this.sentCount }];
    }
    this.st = 'soliciting';
    this.sentCount++;
    const packet = buildRouterSolicitation(this.o.source, this.o.sourceLinkLayer);
    let ms: number;
    if (this.o.backoff) {
      const w = this.retrans!.next();
      ms = w.ms;
      this.final = w.final;
    } else {
      ms = this.o.intervalMs;
      this.final = this.o.maxSolicitations > 0 && this.sentCount >= this.o.maxSolicitations;
    }
    return [{ type: 'send', packet }, startTimer(RS_TIMER, ms)];
  }
}

import { isTimerAction } from '../core/actions';
import { applyTimer, type Scheduler } from '../core/scheduler';
import { Ipv6DecodeError } from '../ipv6/errors';
import { decodeNdMessage, ICMPV6_RS, ND_HOP_LIMIT } from '../ipv6/nd';
import { ALL_ROUTERS, type Icmp6Message, Icmp6Socket } from '../platform/icmp6-socket';
import {
  FINAL_TIMER,
  PERIODIC_TIMER,
  type RaAction,
  type RaContent,
  RaCore,
  type RaCoreOptions,
  SOLICITED_TIMER,
} from './ra-core';

/**
 * Runs one RaCore on a LAN interface: a raw ICMPv6 socket bound to the
 * interface hears Router Solicitations (it joins ff02::2 and lets only type 133
 * through the kernel filter) and carries the RAs out. The kernel picks the
 * link-local source and we send with hop limit 255 (RFC 4861 6.1.2 makes hosts
 * drop anything else).
 */

/** The part of Icmp6Socket this edge uses, so tests can stand in for it. */
export interface RaSocket {
  joinGroup(group: string): void;
  setTypeFilter(types: readonly number[] | null): void;
  onMessage(cb: (m: Icmp6Message) => void, onError?: (e: Error) => void): void;
  send(message: Uint8Array, address: string, scopeId?: number): boolean;
  close(): void;
}

export interface RaSenderOptions extends Omit<RaCoreOptions, 'clock'> {
  scheduler: Scheduler;
  /** Opens the socket; Icmp6Socket.open by default. */
  openSocket?: (ifname: string) => RaSocket;
  /** Socket errors and dropped messages; the sender keeps running. */
  onWarning?: (message: string) => void;
}

export interface RaSenderCounters {
  sent: number;
  sendFailures: number;
  solicitations: number;
  invalid: number;
}

export class RaSender {
  private readonly core: RaCore;
  private readonly sock: RaSocket;
  private readonly timerPrefix: string;
  private stopping: Promise<void> | undefined;
  private onStopped: (() => void) | undefined;
  private closed = false;
  readonly counters: RaSenderCounters = { sent: 0, sendFailures: 0, solicitations: 0, invalid: 0 };

  constructor(
    readonly ifname: string,
    private readonly o: RaSenderOptions,
  ) {
    this.core = new RaCore({ ...o, clock: () => o.scheduler.now() });
    this.timerPrefix = `ra:${ifname}`;
    this.sock = (o.openSocket ?? Icmp6Socket.open)(ifname);
    try {
      this.sock.setTypeFilter([ICMPV6_RS]);
      this.sock.joinGroup(ALL_ROUTERS);
      this.sock.onMessage(
        (m) => this.received(m),
        (e) => this.warn(`RA socket on ${ifname}: ${e.message}`),
      );
    } catch (e) {
      this.sock.close();
      throw e;
    }
  }

  get state(): RaCore['state'] {
    return this.core.state;
  }

  /** Current or changed content; the first call starts advertising. */
  update(content: RaContent): void {
    if (!this.closed) this.run(this.core.update(content));
  }

  /**
   * Sends the final RAs (router lifetime 0) and closes the socket once they are
   * out. Resolves when done; safe to call twice. `now`: see RaCore.stop.
   */
  stop(opts: { now?: boolean } = {}): Promise<void> {
    if (this.stopping) return this.stopping;
    this.stopping = new Promise<void>((resolve) => {
      this.onStopped = resolve;
    });
    if (this.closed) this.close();
    else this.run(this.core.stop(opts));
    return this.stopping;
  }

  /** Closes at once, without final RAs (e.g. the interface went away). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const t of [PERIODIC_TIMER, SOLICITED_TIMER, FINAL_TIMER]) this.o.scheduler.clear(`${this.timerPrefix}:${t}`);
    this.sock.close();
    this.onStopped?.();
  }

  private received(m: Icmp6Message): void {
    if (m.type !== ICMPV6_RS) return;
    // RFC 4861 6.1.1: hop limit 255, code 0, sane options, no SLLA from ::.
    try {
      if (m.hopLimit !== ND_HOP_LIMIT) throw new Ipv6DecodeError('invalid', 'hop limit');
      const msg = decodeNdMessage(m.data);
      if (msg.kind !== 'rs') throw new Ipv6DecodeError('invalid', 'not an RS');
      if (m.from === '::' && msg.options.sourceLinkLayer) throw new Ipv6DecodeError('invalid', 'SLLA from ::');
    } catch (e) {
      if (!(e instanceof Ipv6DecodeError)) throw e;
      this.counters.invalid++;
      return;
    }
    this.counters.solicitations++;
    this.run(this.core.solicitation(m.from));
  }

  private run(actions: RaAction[]): void {
    for (const a of actions) {
      if (this.closed) return;
      if (isTimerAction(a)) {
        applyTimer(this.o.scheduler, this.timerPrefix, a, (t) => this.run(this.core.timerFired(t)));
      } else if (a.type === 'send') {
        let ok = false;
        try {
          ok = this.sock.send(a.icmp, a.dst);
        } catch (e) {
          this.warn(`RA on ${this.ifname} not sent: ${(e as Error).message}`);
        }
        if (ok) this.counters.sent++;
        else this.counters.sendFailures++;
      } else if (a.type === 'stopped') {
        this.close();
      }
    }
  }

  private warn(message: string): void {
    this.o.onWarning?.(message);
  }
}

import { startTimer, stopTimer, type TimerAction } from '../core/actions';
import { isUnspecified } from './address';
import type { Rng } from './backoff';
import { buildDadSolicitation, type NdPacket } from './nd';

/**
 * Duplicate Address Detection (RFC 4862 5.4) on the PPP link, for any address the
 * agent takes: SLAAC addresses (slaac.ts) and DHCPv6 IA_NA addresses (RFC 5571 5.3:
 * DAD MUST be performed in both cases; RFC 8415 18.2.8: a duplicate is Declined).
 * The kernel does no DAD on the TUN (it is NOARP), so the agent probes itself.
 *
 * Probes carry an RFC 3971 Nonce so that our own probe looped back is not taken as
 * a duplicate (RFC 7527). Sans-I/O: timers are named `dad:<address>`.
 */

export const RETRANS_TIMER_MS = 1000;
export const DAD_TIMER_PREFIX = 'dad:';

export interface DadOptions {
  rng: Rng;
  /** DupAddrDetectTransmits (RFC 4862 5.1); default 1. */
  transmits?: number;
  /** RetransTimer between probes (RFC 4861 10); default 1000 ms, an RA may change it. */
  retransMs?: number;
  nonce?: boolean;
}

export type DadAction =
  | TimerAction
  | { type: 'send'; packet: Uint8Array }
  | { type: 'dad-passed'; address: string }
  | { type: 'dad-failed'; address: string };

interface Probe {
  sent: number;
  nonce?: Uint8Array;
}

export class Dad {
  private readonly probes = new Map<string, Probe>();
  private readonly transmits: number;
  private readonly nonce: boolean;
  private retransMs: number;

  constructor(private readonly o: DadOptions) {
    this.transmits = o.transmits ?? 1;
    this.nonce = o.nonce ?? true;
    this.retransMs = o.retransMs ?? RETRANS_TIMER_MS;
  }

  /** RFC 4861 6.3.4: an RA's Retrans Timer spaces later probes. */
  setRetransMs(ms: number): void {
    this.retransMs = ms;
  }

  isTentative(address: string): boolean {
    return this.probes.has(address);
  }

  /** Starts DAD on `address`; with transmits 0 it passes at once. */
  start(address: string): DadAction[] {
    if (this.probes.has(address)) return [];
    if (this.transmits <= 0) return [{ type: 'dad-passed', address }];
    const p: Probe = { sent: 0 };
    this.probes.set(address, p);
    return this.probe(address, p);
  }

  /** Stops DAD on `address` without a verdict (the address went away). */
  cancel(address: string): TimerAction[] {
    if (!this.probes.delete(address)) return [];
    return [stopTimer(DAD_TIMER_PREFIX + address)];
  }

  /** Stops everything (link down). */
  stop(): TimerAction[] {
    const out = [...this.probes.keys()].map((a) => stopTimer(DAD_TIMER_PREFIX + a));
    this.probes.clear();
    return out;
  }

  /**
   * An NS or NA from the link. Another node probing the same tentative address (an
   * NS from ::, RFC 4862 5.4.3) or defending it (an NA, 5.4.4) makes it a duplicate;
   * a probe carrying our own nonce is ours, looped back.
   */
  handle(nd: NdPacket): DadAction[] {
    const m = nd.message;
    if (m.kind === 'ns') {
      if (!isUnspecified(nd.ip.src)) return [];
      return this.duplicateIf(m.target, m.options.nonce);
    }
    if (m.kind === 'na') return this.duplicateIf(m.target, undefined);
    return [];
  }

  timerFired(timer: string): DadAction[] {
    if (!timer.startsWith(DAD_TIMER_PREFIX)) return [];
    const address = timer.slice(DAD_TIMER_PREFIX.length);
    const p = this.probes.get(address);
    if (!p) return [];
    if (p.sent < this.transmits) return this.probe(address, p);
    this.probes.delete(address);
    return [{ type: 'dad-passed', address }];
  }

  private probe(address: string, p: Probe): DadAction[] {
    p.sent++;
    if (this.nonce) {
      p.nonce = new Uint8Array(6);
      for (let i = 0; i < 6; i++) p.nonce[i] = Math.floor(this.o.rng() * 256) & 0xff;
    }
    return [{ type: 'send', packet: buildDadSolicitation(address, p.nonce) }, startTimer(DAD_TIMER_PREFIX + address, this.retransMs)];
  }

  private duplicateIf(target: string, nonce: Uint8Array | undefined): DadAction[] {
    const p = this.probes.get(target);
    if (!p) return [];
    if (nonce && p.nonce && nonce.length === p.nonce.length && nonce.every((x, i) => x === p.nonce![i])) return [];
    this.probes.delete(target);
    return [stopTimer(DAD_TIMER_PREFIX + target), { type: 'dad-failed', address: target }];
  }
}

export type LeaseDadAction =
  | TimerAction
  | { type: 'send'; packet: Uint8Array }
  /** Put the address in the kernel (again); optimistic: preferred lifetime 0 while DAD runs (RFC 4429 2.1). */
  | { type: 'install'; address: string; validLifetime: number; preferredLifetime: number; optimistic: boolean }
  | { type: 'uninstall'; address: string }
  /** DAD found it duplicate: the DHCPv6 client must Decline it (RFC 8415 18.2.8). */
  | { type: 'decline'; address: string };

interface LeaseEntry {
  state: 'tentative' | 'ok';
  validUntil: number;
  preferredUntil: number;
  installed: boolean;
}

const INFINITE = 0xffffffff;

/**
 * DAD for DHCPv6 IA_NA addresses (RFC 5571 5.3, RFC 8415 18.2.8): each new lease is
 * probed before it is used, or used at once as Optimistic (RFC 4429) with
 * `optimistic`; a duplicate is uninstalled and handed back for Decline. Renewed
 * lifetimes of an address already checked are installed directly.
 */
export class LeaseDad {
  private readonly dad: Dad;
  private readonly leases = new Map<string, LeaseEntry>();

  constructor(private readonly o: DadOptions & { clock: () => number; optimistic?: boolean }) {
    this.dad = new Dad(o);
  }

  status(): { address: string; state: 'tentative' | 'optimistic' | 'ok' }[] {
    return [...this.leases].map(([address, e]) => ({ address, state: e.state === 'ok' ? 'ok' : this.o.optimistic ? 'optimistic' : 'tentative' }));
  }

  /** The DHCPv6 client reported a lease (new or renewed); lifetimes in seconds. */
  leased(address: string, validLifetime: number, preferredLifetime: number): LeaseDadAction[] {
    const now = this.o.clock();
    const until = (s: number) => (s === INFINITE ? Number.POSITIVE_INFINITY : now + s * 1000);
    const known = this.leases.get(address);
    const e: LeaseEntry = known ?? { state: 'tentative', validUntil: 0, preferredUntil: 0, installed: false };
    e.validUntil = until(validLifetime);
    e.preferredUntil = until(preferredLifetime);
    this.leases.set(address, e);
    if (e.state === 'ok') return [this.install(address, e, false)];
    const out: LeaseDadAction[] = [];
    if (this.o.optimistic) out.push(this.install(address, e, true));
    if (!known) out.push(...this.fromDad(this.dad.start(address)));
    return out;
  }

  /** The lease ended (expired, withdrawn, released, declined): stop probing; uninstall if installed. */
  removed(address: string): LeaseDadAction[] {
    const e = this.leases.get(address);
    if (!e) return [];
    this.leases.delete(address);
    return [...this.dad.cancel(address), ...(e.installed ? [{ type: 'uninstall' as const, address }] : [])];
  }

  receive(nd: NdPacket): LeaseDadAction[] {
    return this.fromDad(this.dad.handle(nd));
  }

  timerFired(timer: string): LeaseDadAction[] {
    return this.fromDad(this.dad.timerFired(timer));
  }

  stop(): LeaseDadAction[] {
    this.leases.clear();
    return this.dad.stop();
  }

  private install(address: string, e: LeaseEntry, optimistic: boolean): LeaseDadAction {
    e.installed = true;
    const now = this.o.clock();
    const secs = (t: number) => (Number.isFinite(t) ? Math.max(0, Math.round((t - now) / 1000)) : INFINITE);
    return { type: 'install', address, validLifetime: secs(e.validUntil), preferredLifetime: optimistic ? 0 : secs(e.preferredUntil), optimistic };
  }

  private fromDad(actions: DadAction[]): LeaseDadAction[] {
    const out: LeaseDadAction[] = [];
    for (const d of actions) {
      if (d.type === 'send' || d.type === 'timer-start' || d.type === 'timer-stop') {
        out.push(d);
        continue;
      }
      const e = this.leases.get(d.address);
      if (!e) continue;
      if (d.type === 'dad-passed') {
        e.state = 'ok';
        out.push(this.install(d.address, e, false));
        continue;
      }
      this.leases.delete(d.address);
      if (e.installed) out.push({ type: 'uninstall', address: d.address });
      out.push({ type: 'decline', address: d.address });
    }
    return out;
  }
}

import { startTimer, stopTimer, type TimerAction } from '../core/actions';
import { addressFromPrefix, isLinkLocal, isMulticast, isUnspecified, maskPrefix, parseAddress } from './address';
import type { Rng } from './backoff';
import { armFor, deadlineFrom, secondsUntil } from './deadline';
import { Ipv6DecodeError } from './errors';
import { buildDadSolicitation, type NdPacket, parseNdPacket, type RouterAdvertisement } from './nd';
import type { Ipv6Header } from './packet';

/**
 * Host-side processing of Router Advertisements on the PPP link: default router,
 * SLAAC addresses (RFC 4862 5.5.3) with Duplicate Address Detection (5.4),
 * RDNSS/DNSSL (RFC 8106 5.3) and the MTU option. The interface identifier is the
 * one IPV6CP negotiated; l2tpns drops traffic from any other (see notes).
 */

export const RETRANS_TIMER_MS = 1000;
/** RFC 4862 5.5.3 e): valid lifetimes are not cut below two hours by an unauthenticated RA. */
export const TWO_HOURS_S = 7200;
export const EXPIRE_TIMER = 'expire';
const DAD_TIMER_PREFIX = 'dad:';
const MIN_IPV6_MTU = 1280;

export interface SlaacOptions {
  /** 8-byte interface identifier from IPV6CP. */
  iid: Uint8Array;
  /** Monotonic milliseconds (the edge's Scheduler.now). */
  clock: () => number;
  rng: Rng;
  /** DupAddrDetectTransmits; 0 turns DAD off. */
  dadTransmits?: number;
  retransTimerMs?: number;
  /** Largest MTU an RA may set (the link's MTU); default 65535. */
  linkMtu?: number;
  maxAddresses?: number;
  maxDnsServers?: number;
  maxSearchDomains?: number;
  /** Send an RFC 3971 Nonce in DAD probes so a looped-back probe is not taken as a duplicate (RFC 7527). */
  dadNonce?: boolean;
}

export interface AddressAction {
  type: 'address';
  address: string;
  prefix: string;
  prefixLength: number;
  /** Remaining seconds; 0xffffffff = infinite. */
  validLifetime: number;
  preferredLifetime: number;
}

export type SlaacAction =
  | TimerAction
  | { type: 'send'; packet: Uint8Array }
  | AddressAction
  | { type: 'address-removed'; address: string; prefix: string; prefixLength: number; reason: 'expired' | 'stopped' }
  | { type: 'dad-failed'; address: string; prefix: string; prefixLength: number }
  | { type: 'default-route'; present: boolean; router?: string; lifetime: number }
  | { type: 'dns'; servers: string[]; search: string[] }
  | { type: 'mtu'; mtu: number }
  | { type: 'ra-flags'; managed: boolean; other: boolean };

type AddrState = 'tentative' | 'preferred' | 'deprecated' | 'duplicate';

interface SlaacAddress {
  address: string;
  prefix: string;
  state: AddrState;
  validUntil: number;
  preferredUntil: number;
  dadSent: number;
  nonce?: Uint8Array;
}

export interface SlaacStatus {
  managed?: boolean;
  other?: boolean;
  router?: { address: string; lifetime: number };
  addresses: { address: string; prefix: string; state: AddrState; validLifetime: number; preferredLifetime: number }[];
  dns: { servers: string[]; search: string[] };
  mtu?: number;
  counters: { ra: number; invalid: number; ignoredPrefixes: number; dadFailures: number };
  /**
   * What was dropped or ignored, by a stable reason: 'nd-<decode reason>' for packets
   * that are not valid ND, 'ra-prefix-*' for Prefix Information we will not use,
   * 'ra-mtu-out-of-range', 'ra-retrans-timer-out-of-range', 'ra-rdnss-bad-server'.
   */
  drops: Record<string, number>;
}

/** A DNS server address nobody can be told to use: multicast, unspecified, loopback. */
function unusableServer(a: string): boolean {
  return isMulticast(a) || isUnspecified(a) || a === '::1';
}

/** Why a /64 from an autonomous Prefix Information option cannot form an address, if it cannot. */
function prefixProblem(p: { prefix: string; prefixLength: number; validLifetime: number; preferredLifetime: number }): string | undefined {
  // RFC 4862 5.5.3 b) and c), and d): only a /64 fits our 64-bit identifier.
  if (isLinkLocal(p.prefix)) return 'ra-prefix-link-local';
  if (p.preferredLifetime > p.validLifetime) return 'ra-prefix-lifetimes';
  if (p.prefixLength !== 64) return 'ra-prefix-length';
  // Not global unicast (RFC 4291 2.4): an address formed from these would be unroutable
  // at best, and ::/64 holds the unspecified, loopback and IPv4-mapped addresses.
  if (isMulticast(p.prefix)) return 'ra-prefix-multicast';
  if (parseAddress(p.prefix).subarray(0, 8).every((x) => x === 0)) return 'ra-prefix-reserved';
  return undefined;
}

export class Slaac {
  private readonly o: Required<SlaacOptions>;
  private flags: { managed: boolean; other: boolean } | undefined;
  private router: { address: string; until: number } | undefined;
  private readonly addrs = new Map<string, SlaacAddress>();
  private readonly servers = new Map<string, number>();
  private readonly search = new Map<string, number>();
  private mtu: number | undefined;
  private retransMs: number;
  private readonly counters = { ra: 0, invalid: 0, ignoredPrefixes: 0, dadFailures: 0 };
  private readonly drops: Record<string, number> = {};

  constructor(options: SlaacOptions) {
    if (options.iid.length !== 8) throw new RangeError('interface identifier must be 8 bytes');
    this.o = {
      dadTransmits: 1,
      retransTimerMs: RETRANS_TIMER_MS,
      linkMtu: 65535,
      maxAddresses: 16,
      maxDnsServers: 8,
      maxSearchDomains: 8,
      dadNonce: true,
      ...options,
    };
    this.retransMs = this.o.retransTimerMs;
  }

  /** The link's MTU changed (issue 16 item 3): later RA MTU options are checked against it. */
  setLinkMtu(mtu: number): void {
    this.o.linkMtu = mtu;
  }

  /** Feeds an IPv6 packet from the link; anything that is not valid ND is counted and dropped. */
  receive(packet: Uint8Array): SlaacAction[] {
    let nd: NdPacket;
    try {
      nd = parseNdPacket(packet);
    } catch (e) {
      if (!(e instanceof Ipv6DecodeError)) throw e;
      this.counters.invalid++;
      this.drop(`nd-${e.reason}`);
      return [];
    }
    return this.handle(nd);
  }

  /** Same as `receive` for a packet the caller already parsed with parseNdPacket. */
  handle(nd: NdPacket): SlaacAction[] {
    switch (nd.message.kind) {
      case 'ra':
        return this.handleRa(nd.ip, nd.message);
      case 'ns':
        // Someone else probing the same tentative address (RFC 4862 5.4.3); a probe
        // carrying our own nonce is our own, looped back.
        if (!isUnspecified(nd.ip.src)) return [];
        return this.duplicateIf(nd.message.target, nd.message.options.nonce);
      case 'na':
        return this.duplicateIf(nd.message.target, undefined);
      default:
        return [];
    }
  }

  private handleRa(ip: Ipv6Header, ra: RouterAdvertisement): SlaacAction[] {
    const now = this.o.clock();
    const out: SlaacAction[] = [];
    this.counters.ra++;
    if (!this.flags || this.flags.managed !== ra.managed || this.flags.other !== ra.other) {
      this.flags = { managed: ra.managed, other: ra.other };
      out.push({ type: 'ra-flags', ...this.flags });
    }

    if (ra.routerLifetime > 0) {
      const changed = this.router?.address !== ip.src;
      this.router = { address: ip.src, until: now + ra.routerLifetime * 1000 };
      if (changed) out.push({ type: 'default-route', present: true, router: ip.src, lifetime: ra.routerLifetime });
    } else if (this.router?.address === ip.src) {
      this.router = undefined;
      out.push({ type: 'default-route', present: false, router: ip.src, lifetime: 0 });
    }

    // RFC 4861 6.3.4: a non-zero Retrans Timer replaces ours (used for DAD spacing); bounded to something sane.
    if (ra.retransTimer > 0 && ra.retransTimer <= 60_000) this.retransMs = ra.retransTimer;
    else if (ra.retransTimer > 60_000) this.drop('ra-retrans-timer-out-of-range');

    const mtu = ra.options.mtu;
    if (mtu !== undefined && (mtu < MIN_IPV6_MTU || mtu > this.o.linkMtu)) this.drop('ra-mtu-out-of-range');
    else if (mtu !== undefined && mtu !== this.mtu) {
      this.mtu = mtu;
      out.push({ type: 'mtu', mtu });
    }

    for (const p of ra.options.prefixes) {
      // RFC 4862 5.5.3 a): a prefix without A is on-link information only.
      if (!p.autonomous) continue;
      const problem = prefixProblem(p);
      if (problem) {
        this.counters.ignoredPrefixes++;
        this.drop(problem);
        continue;
      }
      const prefix = maskPrefix(p.prefix, 64);
      const address = addressFromPrefix(prefix, this.o.iid);
      const known = this.addrs.get(address);
      if (known) {
        this.updateLifetimes(known, now, p.validLifetime, p.preferredLifetime);
        if (known.state === 'preferred' || known.state === 'deprecated') {
          known.state = known.preferredUntil > now ? 'preferred' : 'deprecated';
          out.push(this.addressAction(known, now));
        }
        continue;
      }
      if (p.validLifetime === 0) continue;
      if (this.addrs.size >= this.o.maxAddresses) {
        this.counters.ignoredPrefixes++;
        this.drop('ra-prefix-limit');
        continue;
      }
      const a: SlaacAddress = {
        address,
        prefix,
        state: 'tentative',
        validUntil: deadlineFrom(now, p.validLifetime),
        preferredUntil: deadlineFrom(now, p.preferredLifetime),
        dadSent: 0,
      };
      this.addrs.set(address, a);
      out.push(...(this.o.dadTransmits > 0 ? this.probe(a) : this.dadPassed(a, now)));
    }

    let dnsChanged = false;
    for (const r of ra.options.rdnss) {
      const usable = r.servers.filter((a) => !unusableServer(a));
      if (usable.length < r.servers.length) this.drop('ra-rdnss-bad-server', r.servers.length - usable.length);
      dnsChanged = this.refresh(this.servers, usable, r.lifetime, now, this.o.maxDnsServers) || dnsChanged;
    }
    for (const s of ra.options.dnssl)
      dnsChanged = this.refresh(this.search, s.domains, s.lifetime, now, this.o.maxSearchDomains) || dnsChanged;
    if (dnsChanged) out.push(this.dnsAction());

    out.push(this.armExpiry(now));
    return out;
  }

  /** RFC 4862 5.5.3 e): preferred lifetime always follows the RA; valid lifetime obeys the two-hour rule. */
  private updateLifetimes(a: SlaacAddress, now: number, valid: number, preferred: number): void {
    const remaining = a.validUntil - now;
    if (valid > TWO_HOURS_S || deadlineFrom(now, valid) > a.validUntil) a.validUntil = deadlineFrom(now, valid);
    else if (remaining > TWO_HOURS_S * 1000) a.validUntil = now + TWO_HOURS_S * 1000;
    a.preferredUntil = Math.min(deadlineFrom(now, preferred), a.validUntil);
  }

  /** Adds or refreshes entries with one lifetime; lifetime 0 removes them. Returns whether the set changed. */
  private refresh(map: Map<string, number>, items: string[], lifetime: number, now: number, max: number): boolean {
    let changed = false;
    for (const item of items) {
      if (lifetime === 0) {
        changed = map.delete(item) || changed;
      } else if (map.has(item) || map.size < max) {
        if (!map.has(item)) changed = true;
        map.set(item, deadlineFrom(now, lifetime));
      }
    }
    return changed;
  }

  private probe(a: SlaacAddress): SlaacAction[] {
    a.dadSent++;
    if (this.o.dadNonce) {
      a.nonce = new Uint8Array(6);
      for (let i = 0; i < 6; i++) a.nonce[i] = Math.floor(this.o.rng() * 256) & 0xff;
    }
    return [
      { type: 'send', packet: buildDadSolicitation(a.address, a.nonce) },
      startTimer(DAD_TIMER_PREFIX + a.address, this.retransMs),
    ];
  }

  private dadPassed(a: SlaacAddress, now: number): SlaacAction[] {
    a.state = a.preferredUntil > now ? 'preferred' : 'deprecated';
    a.nonce = undefined;
    return [this.addressAction(a, now)];
  }

  private duplicateIf(target: string, nonce: Uint8Array | undefined): SlaacAction[] {
    const a = this.addrs.get(target);
    if (a?.state !== 'tentative') return [];
    if (nonce && a.nonce && nonce.length === a.nonce.length && nonce.every((x, i) => x === a.nonce![i])) return [];
    // Kept (as 'duplicate') until its valid lifetime ends so that later RAs do not start DAD again.
    a.state = 'duplicate';
    this.counters.dadFailures++;
    return [
      stopTimer(DAD_TIMER_PREFIX + a.address),
      { type: 'dad-failed', address: a.address, prefix: a.prefix, prefixLength: 64 },
    ];
  }

  timerFired(timer: string): SlaacAction[] {
    const now = this.o.clock();
    if (timer.startsWith(DAD_TIMER_PREFIX)) {
      const a = this.addrs.get(timer.slice(DAD_TIMER_PREFIX.length));
      if (a?.state !== 'tentative') return [];
      return a.dadSent < this.o.dadTransmits ? this.probe(a) : this.dadPassed(a, now);
    }
    if (timer !== EXPIRE_TIMER) return [];
    const out: SlaacAction[] = [];
    for (const a of [...this.addrs.values()]) {
      if (a.validUntil <= now) {
        this.addrs.delete(a.address);
        if (a.state === 'tentative') out.push(stopTimer(DAD_TIMER_PREFIX + a.address));
        if (a.state === 'preferred' || a.state === 'deprecated') {
          out.push({ type: 'address-removed', address: a.address, prefix: a.prefix, prefixLength: 64, reason: 'expired' });
        }
      } else if (a.state === 'preferred' && a.preferredUntil <= now) {
        a.state = 'deprecated';
        out.push(this.addressAction(a, now));
      }
    }
    if (this.router && this.router.until <= now) {
      out.push({ type: 'default-route', present: false, router: this.router.address, lifetime: 0 });
      this.router = undefined;
    }
    let dnsChanged = false;
    for (const map of [this.servers, this.search]) {
      for (const [k, until] of [...map]) {
        if (until <= now) {
          map.delete(k);
          dnsChanged = true;
        }
      }
    }
    if (dnsChanged) out.push(this.dnsAction());
    out.push(this.armExpiry(now));
    return out;
  }

  /** Link down: forget everything and report what the agent must undo. */
  stop(): SlaacAction[] {
    const out: SlaacAction[] = [stopTimer(EXPIRE_TIMER)];
    for (const a of this.addrs.values()) {
      if (a.state === 'tentative') out.push(stopTimer(DAD_TIMER_PREFIX + a.address));
      if (a.state === 'preferred' || a.state === 'deprecated') {
        out.push({ type: 'address-removed', address: a.address, prefix: a.prefix, prefixLength: 64, reason: 'stopped' });
      }
    }
    this.addrs.clear();
    if (this.router) out.push({ type: 'default-route', present: false, router: this.router.address, lifetime: 0 });
    this.router = undefined;
    if (this.servers.size + this.search.size > 0) {
      this.servers.clear();
      this.search.clear();
      out.push(this.dnsAction());
    }
    this.flags = undefined;
    this.mtu = undefined;
    this.retransMs = this.o.retransTimerMs;
    return out;
  }

  status(): SlaacStatus {
    const now = this.o.clock();
    return {
      ...(this.flags ?? {}),
      ...(this.router ? { router: { address: this.router.address, lifetime: secondsUntil(now, this.router.until) } } : {}),
      addresses: [...this.addrs.values()].map((a) => ({
        address: a.address,
        prefix: a.prefix,
        state: a.state,
        validLifetime: secondsUntil(now, a.validUntil),
        preferredLifetime: secondsUntil(now, a.preferredUntil),
      })),
      dns: { servers: [...this.servers.keys()], search: [...this.search.keys()] },
      ...(this.mtu !== undefined ? { mtu: this.mtu } : {}),
      counters: { ...this.counters },
      drops: { ...this.drops },
    };
  }

  private drop(reason: string, n = 1): void {
    this.drops[reason] = (this.drops[reason] ?? 0) + n;
  }

  private addressAction(a: SlaacAddress, now: number): AddressAction {
    return {
      type: 'address',
      address: a.address,
      prefix: a.prefix,
      prefixLength: 64,
      validLifetime: secondsUntil(now, a.validUntil),
      preferredLifetime: a.state === 'deprecated' ? 0 : secondsUntil(now, a.preferredUntil),
    };
  }

  private dnsAction(): SlaacAction {
    return { type: 'dns', servers: [...this.servers.keys()], search: [...this.search.keys()] };
  }

  private armExpiry(now: number): TimerAction {
    const deadlines: number[] = [...this.servers.values(), ...this.search.values()];
    if (this.router) deadlines.push(this.router.until);
    for (const a of this.addrs.values()) {
      deadlines.push(a.validUntil);
      if (a.state === 'preferred') deadlines.push(a.preferredUntil);
    }
    return armFor(EXPIRE_TIMER, now, deadlines);
  }
}

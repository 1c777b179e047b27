import { stopTimer, type TimerAction } from '../core/actions';
import { addressFromPrefix, isLinkLocal, isMulticast, isUnspecified, maskPrefix, parseAddress } from './address';
import type { Rng } from './backoff';
import { armFor, deadlineFrom, secondsUntil } from './deadline';
import { Ipv6DecodeError } from './errors';
import { DAD_TIMER_PREFIX, Dad, type DadAction } from './dad';
import { type NdPacket, parseNdPacket, type RouterAdvertisement } from './nd';
import type { Ipv6Header } from './packet';

/**
 * Host-side processing of Router Advertisements on the PPP link: default router,
 * SLAAC addresses (RFC 4862 5.5.3) with Duplicate Address Detection (5.4, dad.ts),
 * RDNSS/DNSSL (RFC 8106 5.3) and the MTU option. The interface identifier is the
 * one IPV6CP negotiated; l2tpns drops traffic from any other (see notes).
 *
 * With `optimistic` (RFC 4429) a new address is reported at once, marked optimistic,
 * while DAD runs, and again when DAD passes; a duplicate is then reported removed.
 * The agent installs an optimistic address as deprecated (preferred lifetime 0):
 * RFC 4429 2.1 has other components treat Optimistic like Deprecated, so the kernel
 * picks it as a source only when no preferred address fits. The other limits of
 * RFC 4429 3.3 concern Neighbor Solicitations with a link-layer address option and
 * Override NAs, which a PPP link (the TUN is NOARP) never sends.
 */

export const RETRANS_TIMER_MS = 1000;
/** RFC 4862 5.5.3 e): valid lifetimes are not cut below two hours by an unauthenticated RA. */
export const TWO_HOURS_S = 7200;
export const EXPIRE_TIMER = 'expire';
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
  /** Optimistic DAD (RFC 4429): report a new address at once, marked optimistic, while DAD runs. */
  optimistic?: boolean;
}

export interface AddressAction {
  type: 'address';
  address: string;
  prefix: string;
  prefixLength: number;
  /** Remaining seconds; 0xffffffff = infinite. */
  validLifetime: number;
  preferredLifetime: number;
  /** RFC 4429: DAD still runs; install it as deprecated until it is reported again without this. */
  optimistic?: true;
}

export type SlaacAction =
  | TimerAction
  | { type: 'send'; packet: Uint8Array }
  | AddressAction
  | { type: 'address-removed'; address: string; prefix: string; prefixLength: number; reason: 'expired' | 'stopped' | 'duplicate' }
  | { type: 'dad-failed'; address: string; prefix: string; prefixLength: number }
  | { type: 'default-route'; present: boolean; router?: string; lifetime: number }
  | { type: 'dns'; servers: string[]; search: string[] }
  | { type: 'mtu'; mtu: number }
  | { type: 'ra-flags'; managed: boolean; other: boolean };

type AddrState = 'tentative' | 'optimistic' | 'preferred' | 'deprecated' | 'duplicate';

interface SlaacAddress {
  address: string;
  prefix: string;
  state: AddrState;
  validUntil: number;
  preferredUntil: number;
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
  private readonly dad: Dad;
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
      optimistic: false,
      ...options,
    };
    this.dad = this.newDad();
  }

  private newDad(): Dad {
    return new Dad({ rng: this.o.rng, transmits: this.o.dadTransmits, retransMs: this.o.retransTimerMs, nonce: this.o.dadNonce });
  }

  /** Whether `address` is one of ours while DAD runs on it. */
  private probing(a: SlaacAddress | undefined): a is SlaacAddress {
    return a?.state === 'tentative' || a?.state === 'optimistic';
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
      case 'na':
        return this.fromDad(this.dad.handle(nd), this.o.clock());
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
    if (ra.retransTimer > 0 && ra.retransTimer <= 60_000) this.dad.setRetransMs(ra.retransTimer);
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
        if (known.state === 'preferred' || known.state === 'deprecated' || known.state === 'optimistic') {
          if (known.state === 'optimistic') {
            out.push(this.addressAction(known, now));
            continue;
          }
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
      };
      this.addrs.set(address, a);
      if (this.o.optimistic && this.o.dadTransmits > 0) {
        a.state = 'optimistic';
        out.push(this.addressAction(a, now));
      }
      out.push(...this.fromDad(this.dad.start(address), now));
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

  /** Carries out the DAD core's actions and applies its verdicts to our addresses. */
  private fromDad(actions: DadAction[], now: number): SlaacAction[] {
    const out: SlaacAction[] = [];
    for (const d of actions) {
      if (d.type !== 'dad-passed' && d.type !== 'dad-failed') {
        out.push(d);
        continue;
      }
      const a = this.addrs.get(d.address);
      if (!this.probing(a)) continue;
      if (d.type === 'dad-passed') {
        a.state = a.preferredUntil > now ? 'preferred' : 'deprecated';
        out.push(this.addressAction(a, now));
        continue;
      }
      // Kept (as 'duplicate') until its valid lifetime ends so that later RAs do not start DAD again.
      const wasInstalled = a.state === 'optimistic';
      a.state = 'duplicate';
      this.counters.dadFailures++;
      if (wasInstalled) out.push({ type: 'address-removed', address: a.address, prefix: a.prefix, prefixLength: 64, reason: 'duplicate' });
      out.push({ type: 'dad-failed', address: a.address, prefix: a.prefix, prefixLength: 64 });
    }
    return out;
  }

  timerFired(timer: string): SlaacAction[] {
    const now = this.o.clock();
    if (timer.startsWith(DAD_TIMER_PREFIX)) return this.fromDad(this.dad.timerFired(timer), now);
    if (timer !== EXPIRE_TIMER) return [];
    const out: SlaacAction[] = [];
    for (const a of [...this.addrs.values()]) {
      if (a.validUntil <= now) {
        this.addrs.delete(a.address);
        if (this.probing(a)) out.push(...this.dad.cancel(a.address));
        if (a.state === 'preferred' || a.state === 'deprecated' || a.state === 'optimistic') {
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
    out.push(...this.dad.stop());
    for (const a of this.addrs.values()) {
      if (a.state === 'preferred' || a.state === 'deprecated' || a.state === 'optimistic') {
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
    this.dad.setRetransMs(this.o.retransTimerMs);
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
      ...(a.state === 'optimistic' ? { optimistic: true as const } : {}),
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

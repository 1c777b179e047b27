import { startTimer, stopTimer, type TimerAction } from '../core/actions';
import { ALL_NODES, canonical, formatPrefix, maskPrefix } from '../ipv6/address';
import { isValidDomainName } from '../ipv6/dnsname';
import { emptyOptions, encodeNdMessage, INFINITE_LIFETIME, type PrefixInformation, type RouterAdvertisement } from '../ipv6/nd';
import type { Rng } from '../util/random';

/**
 * The built-in LAN Router Advertisement sender for one interface (RFC 4861
 * 6.2.x router behaviour, RFC 8106 RDNSS/DNSSL, RFC 7084 L-13 and RFC 9096
 * lifetimes). Sans-I/O: inputs are method calls, outputs are `send` actions
 * (bare ICMPv6 for a raw socket; the kernel fills in source, hop limit 255 and
 * checksum) and timers.
 *
 * Schedule. Unsolicited RAs go out at uniformly random intervals between
 * MinRtrAdvInterval and MaxRtrAdvInterval; the first MAX_INITIAL_RTR_ADVERTISEMENTS
 * after start, and again after any change of what is announced, are at most
 * MAX_INITIAL_RTR_ADVERT_INTERVAL apart so hosts learn quickly (6.2.4). An RS is
 * answered by a multicast RA after a random delay up to MAX_RA_DELAY_TIME, never
 * sooner than MIN_DELAY_BETWEEN_RAS after the previous multicast RA, and
 * solicitations that arrive while an answer is pending share it (6.2.6). Every
 * multicast RA restarts the periodic timer.
 *
 * Lifetimes. Prefix lifetimes are stored as deadlines and announced as what
 * remains of the lease (never longer than the lease, RFC 9096), capped by default at
 * ND_PREFERRED_LIMIT / ND_VALID_LIMIT (RFC 9096) so that hosts recover from a flash
 * renumbering within 45/90 minutes.
 *
 * Deprecation (our choice, per RFC 7084 L-13 as revised by RFC 9096): a prefix
 * that leaves the announced set stays in the next `deprecationRas` RAs with
 * preferred lifetime 0 and valid lifetime min(remaining lease, ND_VALID_LIMIT),
 * counting down in real time. Preferred 0 makes hosts stop choosing the old
 * address for new connections at once. We do not announce valid 0: RFC 4862
 * 5.5.3 (e) has hosts ignore a valid lifetime under two hours for an address
 * they hold, so 0 buys nothing over the capped value and the capped value keeps
 * existing connections alive while the old prefix may still be routed. A change
 * restarts the fast initial schedule, so the deprecation reaches hosts within
 * about half a minute even if one RA is lost.
 *
 * Stop: `finalRas` multicast RAs with router lifetime 0 (6.2.5), every prefix
 * deprecated and RDNSS/DNSSL lifetimes 0 (RFC 8106 5.1: stop using them), spaced
 * by MIN_DELAY_BETWEEN_RAS, then a `stopped` action.
 */

export const MAX_INITIAL_RTR_ADVERT_INTERVAL_MS = 16_000;
export const MAX_INITIAL_RTR_ADVERTISEMENTS = 3;
export const MAX_FINAL_RTR_ADVERTISEMENTS = 3;
export const MIN_DELAY_BETWEEN_RAS_MS = 3_000;
export const MAX_RA_DELAY_TIME_MS = 500;
/** RFC 9096 recommended caps for announced prefix lifetimes (seconds). */
export const ND_PREFERRED_LIMIT = 2700;
export const ND_VALID_LIMIT = 5400;
/** RDNSS/DNSSL options hold at most this many entries (bounds the RA size). */
export const MAX_DNS_SERVERS = 8;
export const MAX_DNS_DOMAINS = 8;
const MIN_MTU = 1280;

/** One prefix to announce; lifetimes in seconds remaining now (0xffffffff = infinite). */
export interface RaPrefix {
  prefix: string;
  length: number;
  preferredLifetime: number;
  validLifetime: number;
}

export interface RaContent {
  prefixes: RaPrefix[];
  dns: string[];
  domains: string[];
  /** The softwire MTU; no MTU option when undefined or 0. */
  mtu?: number;
  /** False announces router lifetime 0: the softwire has no default route to offer. */
  defaultRoute: boolean;
}

export interface RaCoreOptions {
  rng: Rng;
  /** Milliseconds, monotonic; drives the lifetime count-down. */
  clock: () => number;
  minIntervalS?: number;
  maxIntervalS?: number;
  routerLifetimeS?: number;
  managed?: boolean;
  other?: boolean;
  curHopLimit?: number;
  /** RDNSS/DNSSL lifetime; default 3 x MaxRtrAdvInterval (RFC 8106 5.1). */
  dnsLifetimeS?: number;
  /** Caps on announced prefix lifetimes (RFC 9096); INFINITE_LIFETIME disables a cap. */
  preferredLimitS?: number;
  validLimitS?: number;
  /** How many RAs still carry a prefix after it was withdrawn. */
  deprecationRas?: number;
  /** Final RAs on stop (1..MAX_FINAL_RTR_ADVERTISEMENTS). */
  finalRas?: number;
}

export type RaAction = TimerAction | { type: 'send'; dst: string; icmp: Uint8Array } | { type: 'stopped' };

export type RaState = 'idle' | 'advertising' | 'stopping' | 'stopped';

export const PERIODIC_TIMER = 'periodic';
export const SOLICITED_TIMER = 'solicited';
export const FINAL_TIMER = 'final';

interface Announced {
  prefix: string;
  length: number;
  /** Absolute deadlines in ms; Infinity for an infinite lifetime. */
  preferredUntil: number;
  validUntil: number;
}

interface Deprecated {
  prefix: string;
  length: number;
  validUntil: number;
  /** RAs that will still carry it. */
  remaining: number;
}

type Required_ = Required<Omit<RaCoreOptions, 'rng' | 'clock'>>;

export function validateRaOptions(o: Omit<RaCoreOptions, 'rng' | 'clock'>): Required_ {
  const maxIntervalS = o.maxIntervalS ?? 600;
  // RFC 4861 6.2.1 default: 0.33 x MaxRtrAdvInterval, i.e. 200 s with the default 600 s.
  const minIntervalS = o.minIntervalS ?? (o.maxIntervalS === undefined ? 200 : Math.max(3, Math.round(0.33 * maxIntervalS)));
  const r: Required_ = {
    minIntervalS,
    maxIntervalS,
    routerLifetimeS: o.routerLifetimeS ?? 1800,
    managed: o.managed ?? false,
    other: o.other ?? false,
    curHopLimit: o.curHopLimit ?? 64,
    dnsLifetimeS: o.dnsLifetimeS ?? 3 * maxIntervalS,
    preferredLimitS: o.preferredLimitS ?? ND_PREFERRED_LIMIT,
    validLimitS: o.validLimitS ?? ND_VALID_LIMIT,
    deprecationRas: o.deprecationRas ?? 3,
    finalRas: o.finalRas ?? 1,
  };
  // RFC 4861 6.2.1 bounds.
  if (!(maxIntervalS >= 4 && maxIntervalS <= 1800)) throw new RangeError(`MaxRtrAdvInterval ${maxIntervalS} is not 4..1800 s`);
  if (!(minIntervalS >= 3 && minIntervalS <= 0.75 * maxIntervalS))
    throw new RangeError(`MinRtrAdvInterval ${minIntervalS} is not 3..${0.75 * maxIntervalS} s`);
  const rl = r.routerLifetimeS;
  if (!(Number.isInteger(rl) && (rl === 0 || (rl >= maxIntervalS && rl <= 9000))))
    throw new RangeError(`router lifetime ${rl} is not 0 or ${maxIntervalS}..9000 s`);
  if (!(Number.isInteger(r.curHopLimit) && r.curHopLimit >= 0 && r.curHopLimit <= 255))
    throw new RangeError(`hop limit ${r.curHopLimit}`);
  for (const [name, v] of [
    ['DNS lifetime', r.dnsLifetimeS],
    ['preferred limit', r.preferredLimitS],
    ['valid limit', r.validLimitS],
  ] as const) {
    if (!(Number.isInteger(v) && v >= 0 && v <= INFINITE_LIFETIME)) throw new RangeError(`${name} ${v}`);
  }
  if (!(Number.isInteger(r.deprecationRas) && r.deprecationRas >= 0 && r.deprecationRas <= 100))
    throw new RangeError(`deprecationRas ${r.deprecationRas}`);
  if (!(Number.isInteger(r.finalRas) && r.finalRas >= 1 && r.finalRas <= MAX_FINAL_RTR_ADVERTISEMENTS))
    throw new RangeError(`finalRas ${r.finalRas} is not 1..${MAX_FINAL_RTR_ADVERTISEMENTS}`);
  return r;
}

function unit(rng: Rng): number {
  const x = rng();
  return Number.isFinite(x) ? Math.min(Math.max(x, 0), 1) : 0;
}

function deadline(now: number, lifetimeS: number): number {
  return lifetimeS >= INFINITE_LIFETIME ? Number.POSITIVE_INFINITY : now + lifetimeS * 1000;
}

/** Seconds left until `until`, capped; INFINITE_LIFETIME only when both are infinite. */
function remainingS(now: number, until: number, capS: number): number {
  const left = until === Number.POSITIVE_INFINITY ? INFINITE_LIFETIME : Math.max(0, Math.floor((until - now) / 1000));
  return Math.min(left, capS);
}

function contentKey(c: RaContent): string {
  // Lifetimes are left out: a lease renewal is not a change hosts must hear about early.
  const prefixes = c.prefixes.map((p) => formatPrefix(p)).sort();
  return JSON.stringify([prefixes, c.dns, c.domains, c.mtu ?? 0, c.defaultRoute]);
}

export class RaCore {
  private st: RaState = 'idle';
  private readonly o: Required_;
  private content: RaContent | undefined;
  private key = '';
  private announced: Announced[] = [];
  private deprecated = new Map<string, Deprecated>();
  private lastMulticastAt: number | undefined;
  /** RAs left in the fast initial schedule. */
  private initialLeft = MAX_INITIAL_RTR_ADVERTISEMENTS;
  private periodicAt: number | undefined;
  private solicitedAt: number | undefined;
  private finalLeft = 0;
  readonly counters = { sent: 0, solicited: 0, solicitations: 0 };

  constructor(private readonly opts: RaCoreOptions) {
    this.o = validateRaOptions(opts);
  }

  get state(): RaState {
    return this.st;
  }

  /** Prefixes currently carried as deprecated, for status and tests. */
  get deprecatedPrefixes(): string[] {
    return [...this.deprecated.keys()];
  }

  /** New content (the first call starts advertising). */
  update(content: RaContent): RaAction[] {
    if (this.st === 'stopping' || this.st === 'stopped') return [];
    const now = this.opts.clock();
    const clean = sanitize(content);
    const next: Announced[] = clean.prefixes.map((p) => ({
      prefix: p.prefix,
      length: p.length,
      preferredUntil: deadline(now, Math.min(p.preferredLifetime, p.validLifetime)),
      validUntil: deadline(now, p.validLifetime),
    }));
    const nextKeys = new Set(next.map((p) => formatPrefix(p)));
    for (const old of this.announced) {
      const k = formatPrefix(old);
      if (nextKeys.has(k) || this.o.deprecationRas === 0) continue;
      const validUntil = Math.min(old.validUntil, now + this.o.validLimitS * 1000);
      if (validUntil <= now) continue;
      this.deprecated.set(k, { prefix: old.prefix, length: old.length, validUntil, remaining: this.o.deprecationRas });
    }
    for (const k of nextKeys) this.deprecated.delete(k);
    this.announced = next;
    this.content = clean;
    const key = contentKey(clean);
    const changed = key !== this.key;
    this.key = key;
    if (this.st === 'idle') {
      this.st = 'advertising';
      this.initialLeft = MAX_INITIAL_RTR_ADVERTISEMENTS;
      return this.schedulePeriodic(now, 0);
    }
    if (!changed) return [];
    // RFC 4861 6.2.4: changed information may be sent with the initial fast schedule.
    this.initialLeft = MAX_INITIAL_RTR_ADVERTISEMENTS;
    return this.schedulePeriodic(now, 0);
  }

  /** A valid Router Solicitation arrived (the edge has checked hop limit and format). */
  solicitation(_from: string): RaAction[] {
    this.counters.solicitations++;
    if (this.st !== 'advertising') return [];
    const now = this.opts.clock();
    const delay = unit(this.opts.rng) * MAX_RA_DELAY_TIME_MS;
    let at = now + delay;
    if (this.lastMulticastAt !== undefined && now - this.lastMulticastAt < MIN_DELAY_BETWEEN_RAS_MS) {
      at = this.lastMulticastAt + MIN_DELAY_BETWEEN_RAS_MS + delay;
    }
    // An answer already on its way, or a periodic RA due sooner, serves this RS too.
    if (this.solicitedAt !== undefined || (this.periodicAt !== undefined && this.periodicAt <= at)) return [];
    this.solicitedAt = at;
    return [startTimer(SOLICITED_TIMER, Math.ceil(at - now))];
  }

  timerFired(name: string): RaAction[] {
    const now = this.opts.clock();
    switch (name) {
      case PERIODIC_TIMER:
        if (this.st !== 'advertising') return [];
        this.periodicAt = undefined;
        return this.sendMulticast(now);
      case SOLICITED_TIMER:
        if (this.st !== 'advertising') return [];
        this.solicitedAt = undefined;
        this.counters.solicited++;
        return this.sendMulticast(now);
      case FINAL_TIMER:
        if (this.st !== 'stopping') return [];
        return this.sendFinal(now);
      default:
        return [];
    }
  }

  /**
   * Withdraws the router: final RAs with router lifetime 0, then `stopped`.
   * With `now`, the first final RA goes out at once even within
   * MIN_DELAY_BETWEEN_RAS of the previous RA: the caller is tearing down under a
   * deadline (the agent has 3 s to exit), and one RA early cannot flood the link,
   * whereas none at all leaves hosts routing to us for the whole router lifetime.
   */
  stop(opts: { now?: boolean } = {}): RaAction[] {
    if (this.st === 'stopping' || this.st === 'stopped') return [];
    const wasIdle = this.st === 'idle' || this.counters.sent === 0;
    const now = this.opts.clock();
    const out: RaAction[] = [stopTimer(PERIODIC_TIMER), stopTimer(SOLICITED_TIMER)];
    this.periodicAt = undefined;
    this.solicitedAt = undefined;
    if (wasIdle) {
      // Nobody heard us as a router; there is nothing to withdraw.
      this.st = 'stopped';
      out.push({ type: 'stopped' });
      return out;
    }
    this.st = 'stopping';
    for (const p of this.announced) {
      const k = formatPrefix(p);
      const validUntil = Math.min(p.validUntil, now + this.o.validLimitS * 1000);
      this.deprecated.set(k, { prefix: p.prefix, length: p.length, validUntil, remaining: this.o.finalRas });
    }
    this.announced = [];
    this.finalLeft = this.o.finalRas;
    const wait = this.lastMulticastAt === undefined || opts.now ? 0 : this.lastMulticastAt + MIN_DELAY_BETWEEN_RAS_MS - now;
    if (wait > 0) return [...out, startTimer(FINAL_TIMER, Math.ceil(wait))];
    return [...out, ...this.sendFinal(now)];
  }

  private sendFinal(now: number): RaAction[] {
    const out: RaAction[] = [this.send(now, true)];
    this.finalLeft--;
    if (this.finalLeft > 0) out.push(startTimer(FINAL_TIMER, MIN_DELAY_BETWEEN_RAS_MS));
    else {
      this.st = 'stopped';
      out.push({ type: 'stopped' });
    }
    return out;
  }

  /** Sends now if the rate limit allows, else re-arms the periodic timer for when it does. */
  private sendMulticast(now: number): RaAction[] {
    if (this.lastMulticastAt !== undefined && now - this.lastMulticastAt < MIN_DELAY_BETWEEN_RAS_MS) {
      return this.schedulePeriodic(now, 0);
    }
    const out: RaAction[] = [this.send(now, false)];
    if (this.solicitedAt !== undefined) {
      this.solicitedAt = undefined;
      out.push(stopTimer(SOLICITED_TIMER));
    }
    if (this.initialLeft > 0) this.initialLeft--;
    return [...out, ...this.schedulePeriodic(now, this.nextIntervalMs())];
  }

  /** Arms the periodic timer `ms` from now, never within MIN_DELAY_BETWEEN_RAS of the last RA. */
  private schedulePeriodic(now: number, ms: number): RaAction[] {
    let at = now + ms;
    if (this.lastMulticastAt !== undefined) at = Math.max(at, this.lastMulticastAt + MIN_DELAY_BETWEEN_RAS_MS);
    this.periodicAt = at;
    return [startTimer(PERIODIC_TIMER, Math.ceil(at - now))];
  }

  private nextIntervalMs(): number {
    const { minIntervalS, maxIntervalS } = this.o;
    const ms = (minIntervalS + unit(this.opts.rng) * (maxIntervalS - minIntervalS)) * 1000;
    return this.initialLeft > 0 ? Math.min(ms, MAX_INITIAL_RTR_ADVERT_INTERVAL_MS) : ms;
  }

  private send(now: number, final: boolean): RaAction {
    const icmp = encodeNdMessage(this.build(now, final));
    this.lastMulticastAt = now;
    this.counters.sent++;
    // Each deprecated prefix rides in a limited number of RAs.
    for (const [k, d] of this.deprecated) {
      d.remaining--;
      if (d.remaining <= 0 || d.validUntil <= now) this.deprecated.delete(k);
    }
    return { type: 'send', dst: ALL_NODES, icmp };
  }

  /** The RA as it would be sent now (exposed for status and tests). */
  build(now = this.opts.clock(), final = false): RouterAdvertisement {
    const c = this.content ?? { prefixes: [], dns: [], domains: [], defaultRoute: false };
    const prefixes: PrefixInformation[] = [];
    for (const p of this.announced) {
      const validLifetime = remainingS(now, p.validUntil, this.o.validLimitS);
      if (validLifetime === 0) continue; // the lease ran out; announcing 0 would be a withdrawal we did not decide
      prefixes.push({
        prefix: p.prefix,
        prefixLength: p.length,
        onLink: true,
        autonomous: true,
        validLifetime,
        preferredLifetime: Math.min(remainingS(now, p.preferredUntil, this.o.preferredLimitS), validLifetime),
      });
    }
    for (const d of this.deprecated.values()) {
      const validLifetime = remainingS(now, d.validUntil, this.o.validLimitS);
      if (validLifetime === 0) continue;
      const pio = { prefix: d.prefix, prefixLength: d.length, onLink: true, autonomous: true };
      prefixes.push({ ...pio, validLifetime, preferredLifetime: 0 });
    }
    const dnsLifetime = final ? 0 : this.o.dnsLifetimeS;
    const options = emptyOptions({ prefixes });
    if (c.mtu) options.mtu = c.mtu;
    if (c.dns.length > 0) options.rdnss.push({ lifetime: dnsLifetime, servers: c.dns });
    if (c.domains.length > 0) options.dnssl.push({ lifetime: dnsLifetime, domains: c.domains });
    return {
      kind: 'ra',
      curHopLimit: this.o.curHopLimit,
      managed: this.o.managed,
      other: this.o.other,
      routerLifetime: final || !c.defaultRoute ? 0 : this.o.routerLifetimeS,
      reachableTime: 0,
      retransTimer: 0,
      options,
    };
  }
}

/**
 * Keeps only what can be encoded safely: canonical IPv6 servers (no link-local
 * scope text, at most MAX_DNS_SERVERS), valid domain names, an MTU of at least
 * 1280, prefixes with sane lengths and lifetimes. Invalid entries are dropped
 * rather than thrown so a bad DNS string from upstream cannot stop the LAN RAs.
 */
function sanitize(c: RaContent): RaContent {
  const dns: string[] = [];
  for (const s of c.dns) {
    try {
      const a = canonical(s);
      if (!dns.includes(a) && dns.length < MAX_DNS_SERVERS) dns.push(a);
    } catch {
      /* not an IPv6 address (an IPv4 server cannot go in RDNSS) */
    }
  }
  const domains = [...new Set(c.domains.filter((d) => typeof d === 'string' && isValidDomainName(d)))].slice(0, MAX_DNS_DOMAINS);
  const okLifetime = (v: number) => Number.isInteger(v) && v >= 0 && v <= INFINITE_LIFETIME;
  const prefixes: RaPrefix[] = [];
  for (const p of c.prefixes) {
    if (!Number.isInteger(p.length) || p.length < 1 || p.length > 128) continue;
    if (!okLifetime(p.preferredLifetime) || !okLifetime(p.validLifetime)) continue;
    let prefix: string;
    try {
      prefix = maskPrefix(p.prefix, p.length);
    } catch {
      continue;
    }
    if (!prefixes.some((q) => q.prefix === prefix && q.length === p.length)) prefixes.push({ ...p, prefix });
  }
  const mtu = c.mtu !== undefined && Number.isInteger(c.mtu) && c.mtu >= MIN_MTU && c.mtu <= 0xffffffff ? c.mtu : undefined;
  return { prefixes, dns, domains, mtu, defaultRoute: c.defaultRoute === true };
}

import { startTimer, stopTimer, type TimerAction } from '../core/actions';
import { ALL_DHCP_RELAY_AGENTS_AND_SERVERS, isLinkLocal, isMulticast, isUnspecified, parseAddress, type Prefix } from './address';
import { clampTimer, type NextWait, type RetransParams, type Rng, randomDelay, Retransmission } from './backoff';
import { armFor, deadlineFrom, secondsUntil } from './deadline';
import {
  DHCP6_CLIENT_PORT,
  DHCP6_SERVER_PORT,
  type Dhcp6Message,
  decodeDhcp6,
  duidEquals,
  emptyMessage,
  encodeDhcp6,
  formatDuid,
  type IaNa,
  type IaPd,
  MESSAGE_NAMES,
  MSG_ADVERTISE,
  MSG_DECLINE,
  MSG_INFORMATION_REQUEST,
  MSG_REBIND,
  MSG_RECONFIGURE,
  MSG_RELEASE,
  MSG_RENEW,
  MSG_REPLY,
  MSG_REQUEST,
  MSG_SOLICIT,
  OPT_DNS_SERVERS,
  OPT_DOMAIN_LIST,
  OPT_INF_MAX_RT,
  OPT_INFORMATION_REFRESH_TIME,
  OPT_SOL_MAX_RT,
  STATUS_NAMES,
  STATUS_NO_ADDRS_AVAIL,
  STATUS_NO_BINDING,
  STATUS_NO_PREFIX_AVAIL,
  STATUS_NOT_ON_LINK,
  STATUS_SUCCESS,
  type StatusCode,
} from './dhcpv6';
import { Ipv6DecodeError } from './errors';
import { buildUdp6, parseUdp6 } from './packet';

/**
 * DHCPv6 client core (RFC 8415) for the softwire: prefix delegation (IA_PD) as an
 * RFC 7084 CE router, optional IA_NA, or stateless Information-request for a host.
 *
 * Choices worth knowing:
 * - Replies are accepted from any IPv6 source: on the point-to-point link only the
 *   concentrator can answer, and l2tpns answers from fe02::1:2. Matching is by
 *   transaction id and by our DUID in the Client Identifier; a Server Identifier
 *   must be present.
 * - A lease the server leaves out of an IA in its Reply, returns with lifetime 0,
 *   or marks NoPrefixAvail/NoAddrsAvail (at IA or lease level) is withdrawn at
 *   once. RFC 8415 18.2.10.1 would keep an omitted lease until it expires, but a
 *   LAN that keeps advertising a prefix the ISP no longer routes is broken for
 *   hours (openwrt/odhcp6c#61).
 * - After a failed attempt (Request timed out, nothing granted) the next Solicit
 *   waits on a backoff that survives across attempts, so a server that keeps
 *   saying NoPrefixAvail is not hammered.
 * - The last delegated prefix is sent as a hint in Solicit (RFC 5571 7, RFC 8415
 *   18.2.1) and exposed in status() so the agent can persist it.
 */

export const SOL_MAX_DELAY = 1000;
export const SOL_TIMEOUT = 1000;
export const SOL_MAX_RT = 3600_000;
export const REQ_TIMEOUT = 1000;
export const REQ_MAX_RT = 30_000;
export const REQ_MAX_RC = 10;
export const REN_TIMEOUT = 10_000;
export const REN_MAX_RT = 600_000;
export const REB_TIMEOUT = 10_000;
export const REB_MAX_RT = 600_000;
export const INF_MAX_DELAY = 1000;
export const INF_TIMEOUT = 1000;
export const INF_MAX_RT = 3600_000;
export const REL_TIMEOUT = 1000;
export const REL_MAX_RC = 4;
export const DEC_TIMEOUT = 1000;
export const DEC_MAX_RC = 4;
/** RFC 8415 21.23: default and minimum Information Refresh Time, seconds. */
export const IRT_DEFAULT = 86400;
export const IRT_MINIMUM = 600;

export const TX_TIMER = 'tx';
export const RENEW_TIMER = 'renew';
export const REBIND_TIMER = 'rebind';
export const EXPIRE_TIMER = 'expire';
export const REFRESH_TIMER = 'refresh';

const CLIENT_HOP_LIMIT = 1;
const INFINITY = 0xffffffff;

export interface Dhcp6ClientOptions {
  duid: Uint8Array;
  /** Our link-local address on the PPP link (from the IPV6CP interface identifier). */
  linkLocal: string;
  clock: () => number;
  rng: Rng;
  /** 'stateful' (IA_PD / IA_NA) or 'stateless' (Information-request only). */
  mode?: 'stateful' | 'stateless';
  requestPrefix?: boolean;
  /** Prefix length hint, e.g. 56; sent as ::/len when there is no previous prefix. */
  prefixLengthHint?: number;
  /** The prefix delegated last time (persisted by the agent), sent as a hint. */
  previousPrefix?: Prefix;
  /** IA_NA: never, always, or once an RA with the M flag has been seen. */
  requestAddress?: 'never' | 'always' | 'if-managed';
  rapidCommit?: boolean;
  iaid?: number;
  requestDns?: boolean;
  /** Random initial delay before the first Solicit / Information-request. */
  initialDelay?: boolean;
  /** Give up soliciting after this many Solicits (0 = never; RFC 8415 default). */
  solicitMaxRc?: number;
  requestMaxRc?: number;
  releaseMaxRc?: number;
  maxPrefixes?: number;
  maxAddresses?: number;
}

export type Dhcp6State =
  | 'idle'
  | 'soliciting'
  | 'requesting'
  | 'bound'
  | 'renewing'
  | 'rebinding'
  | 'informing'
  | 'informed'
  | 'declining'
  | 'releasing'
  | 'released'
  | 'stopped'
  | 'failed';

export interface PrefixAction {
  type: 'prefix';
  prefix: string;
  length: number;
  /** Remaining seconds; 0xffffffff = infinite. */
  preferredLifetime: number;
  validLifetime: number;
  /** Seconds until Renew / Rebind; 0xffffffff = never. */
  t1: number;
  t2: number;
  iaid: number;
}

export interface Dhcp6AddressAction {
  type: 'address';
  address: string;
  prefixLength: 128;
  preferredLifetime: number;
  validLifetime: number;
  iaid: number;
}

export type RemovalReason = 'expired' | 'withdrawn' | 'replaced' | 'released' | 'stopped' | 'declined';

export type Dhcp6Action =
  | TimerAction
  | { type: 'send'; packet: Uint8Array }
  | PrefixAction
  | { type: 'prefix-removed'; prefix: string; length: number; reason: RemovalReason }
  | Dhcp6AddressAction
  | { type: 'address-removed'; address: string; reason: RemovalReason }
  | { type: 'dns'; servers: string[]; domains: string[] }
  | { type: 'released'; acknowledged: boolean }
  | { type: 'failed'; reason: string; terminal: boolean };

type IaKind = 'na' | 'pd';

interface Lease {
  kind: IaKind;
  /** Address, or prefix base. */
  address: string;
  length: number;
  preferredUntil: number;
  validUntil: number;
}

interface Binding {
  kind: IaKind;
  iaid: number;
  leases: Map<string, Lease>;
  renewAt: number;
  rebindAt: number;
}

interface Exchange {
  type: number;
  xid: number;
  retrans: Retransmission;
  startedAt?: number;
  final: boolean;
}

export interface Dhcp6Status {
  state: Dhcp6State;
  server?: string;
  xid?: number;
  prefixes: { prefix: string; length: number; preferredLifetime: number; validLifetime: number }[];
  addresses: { address: string; preferredLifetime: number; validLifetime: number }[];
  dns: { servers: string[]; domains: string[] };
  /** Seconds until Renew / Rebind when bound. */
  renewIn?: number;
  rebindIn?: number;
  /** Prefix to persist and hint next time. */
  hintPrefix?: Prefix;
  lastStatus?: { code: number; name: string; message: string; where: string };
  counters: { sent: Record<string, number>; received: number; ignored: Record<string, number> };
}

function leaseKey(kind: IaKind, address: string, length: number): string {
  return `${kind}:${address}/${length}`;
}

export class Dhcp6Client {
  private readonly o: Required<Omit<Dhcp6ClientOptions, 'previousPrefix' | 'prefixLengthHint'>> &
    Pick<Dhcp6ClientOptions, 'prefixLengthHint'>;
  private st: Dhcp6State = 'idle';
  private ex: Exchange | undefined;
  private delayedFirst = false;
  /** Advertise collection during the first RT of a Solicit. */
  private collecting = false;
  private best: { msg: Dhcp6Message; preference: number; offers: number } | undefined;
  private offered: Dhcp6Message | undefined;
  private serverId: Uint8Array | undefined;
  private readonly bindings = new Map<IaKind, Binding>();
  private releasing: Lease[] = [];
  /** Addresses being Declined (RFC 8415 18.2.8), and those never to be taken again from this server. */
  private declining: Lease[] = [];
  private readonly declined = new Set<string>();
  private dns = { servers: [] as string[], domains: [] as string[] };
  private hint: Prefix | undefined;
  private managed = false;
  private solMaxRt = SOL_MAX_RT;
  private infMaxRt = INF_MAX_RT;
  private retry: Retransmission;
  private lastStatus: Dhcp6Status['lastStatus'];
  private readonly counters = { sent: {} as Record<string, number>, received: 0, ignored: {} as Record<string, number> };

  constructor(options: Dhcp6ClientOptions) {
    const { previousPrefix, ...rest } = options;
    this.o = {
      mode: 'stateful',
      requestPrefix: true,
      requestAddress: 'if-managed',
      rapidCommit: false,
      iaid: 1,
      requestDns: true,
      initialDelay: true,
      solicitMaxRc: 0,
      requestMaxRc: REQ_MAX_RC,
      releaseMaxRc: REL_MAX_RC,
      maxPrefixes: 5,
      maxAddresses: 4,
      ...rest,
    };
    this.hint = previousPrefix;
    this.retry = this.newRetry();
  }

  get state(): Dhcp6State {
    return this.st;
  }

  // ------------------------------------------------------------ inputs

  /**
   * Starts the client. `mode` and `solicitMaxRc` override the options from now on:
   * a host picks them from the RA's M and O flags (hostDhcp6Mode).
   */
  start(o: { mode?: 'stateful' | 'stateless'; solicitMaxRc?: number } = {}): Dhcp6Action[] {
    if (this.st !== 'idle' && this.st !== 'stopped' && this.st !== 'released' && this.st !== 'failed') return [];
    if (o.mode) this.o.mode = o.mode;
    if (o.solicitMaxRc !== undefined) this.o.solicitMaxRc = o.solicitMaxRc;
    if (this.o.mode === 'stateless') return this.beginInform(this.o.initialDelay);
    return this.beginSolicit(this.o.initialDelay ? randomDelay(this.o.rng, SOL_MAX_DELAY) : 0);
  }

  /** Router Advertisement flags; M=1 makes 'if-managed' include IA_NA from the next exchange on. */
  raFlags(managed: boolean): void {
    this.managed = managed;
  }

  /** An IPv6 packet addressed to UDP port 546 from the PPP link. */
  receive(packet: Uint8Array): Dhcp6Action[] {
    let msg: Dhcp6Message;
    try {
      const udp = parseUdp6(packet);
      if (udp.dstPort !== DHCP6_CLIENT_PORT) return this.ignore('wrong-port');
      msg = decodeDhcp6(udp.payload);
    } catch (e) {
      if (!(e instanceof Ipv6DecodeError)) throw e;
      return this.ignore('malformed');
    }
    return this.receiveMessage(msg);
  }

  receiveMessage(m: Dhcp6Message): Dhcp6Action[] {
    this.counters.received++;
    const ex = this.ex;
    if (m.type === MSG_RECONFIGURE) return this.ignore('reconfigure');
    // A reply while we wait for nothing answers a transaction we never started (or one long over).
    if (!ex || this.delayedFirst) return this.ignore('no-transaction');
    if (m.xid !== ex.xid) return this.ignore('wrong-xid');
    if (m.type !== MSG_ADVERTISE && m.type !== MSG_REPLY) return this.ignore('unexpected-type');
    if (!m.serverId) return this.ignore('no-server-id');
    // RFC 8415 16.10: a client that sent a Client Identifier needs it back; for an
    // Information-request we only insist that a returned one is ours.
    const stateless = ex.type === MSG_INFORMATION_REQUEST;
    if ((m.clientId || !stateless) && !duidEquals(m.clientId, this.o.duid)) return this.ignore('wrong-client-id');
    this.takeMaxRt(m);
    switch (this.st) {
      case 'soliciting':
        if (m.type === MSG_ADVERTISE) return this.onAdvertise(m);
        if (this.o.rapidCommit && m.rapidCommit) return this.onReply(m);
        return this.ignore('unexpected-type');
      case 'requesting':
      case 'renewing':
      case 'rebinding':
        return m.type === MSG_REPLY ? this.onReply(m) : this.ignore('unexpected-type');
      case 'informing':
        return m.type === MSG_REPLY ? this.onInfoReply(m) : this.ignore('unexpected-type');
      case 'releasing':
        return m.type === MSG_REPLY ? this.finishRelease(true) : this.ignore('unexpected-type');
      case 'declining':
        return m.type === MSG_REPLY ? this.finishDecline() : this.ignore('unexpected-type');
      default:
        return this.ignore('unexpected');
    }
  }

  timerFired(timer: string): Dhcp6Action[] {
    const now = this.o.clock();
    switch (timer) {
      case TX_TIMER:
        return this.onTxTimer();
      case RENEW_TIMER:
        if (this.st !== 'bound') return [];
        if (this.renewAt() > now) return [this.armRenew(now)];
        return this.beginRenewOrRebind(MSG_RENEW);
      case REBIND_TIMER:
        if (this.st !== 'bound' && this.st !== 'renewing') return [];
        if (this.rebindAt() > now) return [this.armRebind(now)];
        return this.beginRenewOrRebind(MSG_REBIND);
      case EXPIRE_TIMER:
        return this.onExpire(now);
      case REFRESH_TIMER:
        return this.st === 'informed' ? this.beginInform(false) : [];
      default:
        return [];
    }
  }

  /**
   * Orderly shutdown: stop using the leases, send Release (bounded by REL_MAX_RC)
   * and report 'released' when the server answers or the retries run out.
   */
  release(): Dhcp6Action[] {
    const leases = this.allLeases();
    const out: Dhcp6Action[] = [...this.stopTimers(), ...this.dropAll('released'), ...this.clearDns()];
    if (leases.length === 0 || !this.serverId) {
      this.st = 'released';
      this.ex = undefined;
      out.push({ type: 'released', acknowledged: false });
      return out;
    }
    this.releasing = leases;
    this.st = 'releasing';
    out.push(...this.beginExchange(MSG_RELEASE, { irt: REL_TIMEOUT, mrt: 0, mrc: this.o.releaseMaxRc, mrd: 0 }, 0));
    return out;
  }

  /**
   * DAD found `address` (one of our IA_NA leases) duplicate: stop using it and tell
   * the server with Decline (RFC 8415 18.2.8), bounded by DEC_MAX_RC; then Solicit
   * again, on the backoff, if nothing else is left. The address is not taken again.
   */
  decline(address: string): Dhcp6Action[] {
    const b = this.bindings.get('na');
    const key = leaseKey('na', address, 128);
    const lease = b?.leases.get(key);
    if (!b || !lease || this.st === 'releasing') return [];
    b.leases.delete(key);
    if (b.leases.size === 0) this.bindings.delete('na');
    this.declined.add(address);
    const out: Dhcp6Action[] = [this.removed(lease, 'declined')];
    this.declining.push(lease);
    if (this.st === 'declining' || !this.serverId) return [...out, ...(this.st === 'declining' ? [] : this.afterDecline())];
    this.st = 'declining';
    out.push(stopTimer(TX_TIMER), ...this.beginExchange(MSG_DECLINE, { irt: DEC_TIMEOUT, mrt: 0, mrc: DEC_MAX_RC, mrd: 0 }, 0));
    return out;
  }

  /** Link gone: forget everything at once, without talking to the server. */
  stop(): Dhcp6Action[] {
    const out = [...this.stopTimers(), ...this.dropAll('stopped'), ...this.clearDns()];
    this.ex = undefined;
    this.st = 'stopped';
    this.serverId = undefined;
    this.retry = this.newRetry();
    return out;
  }

  status(): Dhcp6Status {
    const now = this.o.clock();
    const leases = this.allLeases();
    const bound = this.st === 'bound' || this.st === 'renewing' || this.st === 'rebinding';
    return {
      state: this.st,
      ...(this.serverId ? { server: formatDuid(this.serverId) } : {}),
      ...(this.ex ? { xid: this.ex.xid } : {}),
      prefixes: leases
        .filter((l) => l.kind === 'pd')
        .map((l) => ({
          prefix: l.address,
          length: l.length,
          preferredLifetime: secondsUntil(now, l.preferredUntil),
          validLifetime: secondsUntil(now, l.validUntil),
        })),
      addresses: leases
        .filter((l) => l.kind === 'na')
        .map((l) => ({
          address: l.address,
          preferredLifetime: secondsUntil(now, l.preferredUntil),
          validLifetime: secondsUntil(now, l.validUntil),
        })),
      dns: { servers: [...this.dns.servers], domains: [...this.dns.domains] },
      ...(bound ? { renewIn: secondsUntil(now, this.renewAt()), rebindIn: secondsUntil(now, this.rebindAt()) } : {}),
      ...(this.hint ? { hintPrefix: { ...this.hint } } : {}),
      ...(this.lastStatus ? { lastStatus: { ...this.lastStatus } } : {}),
      counters: { sent: { ...this.counters.sent }, received: this.counters.received, ignored: { ...this.counters.ignored } },
    };
  }

  // ------------------------------------------------------------ exchanges

  private newRetry(): Retransmission {
    return new Retransmission({ irt: SOL_TIMEOUT, mrt: SOL_MAX_RT, mrc: 0, mrd: 0 }, this.o.rng);
  }

  private beginExchange(type: number, params: RetransParams, delayMs: number, firstRandPositive = false): Dhcp6Action[] {
    this.ex = {
      type,
      xid: Math.floor(this.o.rng() * 0x1000000) & 0xffffff,
      retrans: new Retransmission(params, this.o.rng, firstRandPositive),
      final: false,
    };
    if (delayMs > 0) {
      this.delayedFirst = true;
      return [startTimer(TX_TIMER, delayMs)];
    }
    this.delayedFirst = false;
    return this.transmit();
  }

  private beginSolicit(delayMs: number): Dhcp6Action[] {
    this.st = 'soliciting';
    this.collecting = true;
    this.best = undefined;
    this.offered = undefined;
    this.serverId = undefined;
    return this.beginExchange(
      MSG_SOLICIT,
      { irt: SOL_TIMEOUT, mrt: this.solMaxRt, mrc: this.o.solicitMaxRc, mrd: 0 },
      delayMs,
      true,
    );
  }

  /** After a failed attempt: solicit again, later each time. */
  private retrySolicit(reason: string): Dhcp6Action[] {
    const wait: NextWait = this.retry.next();
    return [{ type: 'failed', reason, terminal: false }, ...this.beginSolicit(Math.max(1, wait.ms))];
  }

  private beginRequest(advertise: Dhcp6Message | undefined, serverId: Uint8Array): Dhcp6Action[] {
    this.st = 'requesting';
    this.offered = advertise;
    this.serverId = serverId;
    this.best = undefined;
    return this.beginExchange(MSG_REQUEST, { irt: REQ_TIMEOUT, mrt: REQ_MAX_RT, mrc: this.o.requestMaxRc, mrd: 0 }, 0);
  }

  private beginRenewOrRebind(type: number): Dhcp6Action[] {
    const now = this.o.clock();
    const out: Dhcp6Action[] = [];
    if (type === MSG_RENEW) {
      this.st = 'renewing';
      out.push(...this.beginExchange(MSG_RENEW, { irt: REN_TIMEOUT, mrt: REN_MAX_RT, mrc: 0, mrd: 0 }, 0));
      out.push(this.armRebind(now));
    } else {
      this.st = 'rebinding';
      out.push(stopTimer(RENEW_TIMER), stopTimer(REBIND_TIMER));
      out.push(...this.beginExchange(MSG_REBIND, { irt: REB_TIMEOUT, mrt: REB_MAX_RT, mrc: 0, mrd: 0 }, 0));
    }
    return out;
  }

  private beginInform(delay: boolean): Dhcp6Action[] {
    this.st = 'informing';
    const ms = delay ? randomDelay(this.o.rng, INF_MAX_DELAY) : 0;
    return this.beginExchange(MSG_INFORMATION_REQUEST, { irt: INF_TIMEOUT, mrt: this.infMaxRt, mrc: 0, mrd: 0 }, ms);
  }

  private onTxTimer(): Dhcp6Action[] {
    const ex = this.ex;
    if (!ex) return [];
    if (this.delayedFirst) {
      this.delayedFirst = false;
      return this.transmit();
    }
    if (this.st === 'soliciting' && this.collecting) {
      // RFC 8415 18.2.1: the first RT is over; take the best Advertise collected so far.
      this.collecting = false;
      if (this.best) return this.beginRequest(this.best.msg, this.best.msg.serverId!);
    }
    if (!ex.final) return this.transmit();
    switch (this.st) {
      case 'soliciting':
        this.ex = undefined;
        this.st = 'failed';
        return [{ type: 'failed', reason: 'no-server', terminal: true }];
      case 'requesting':
        return this.retrySolicit('request-timeout');
      case 'releasing':
        return this.finishRelease(false);
      case 'declining':
        this.ex = undefined;
        return this.afterDecline();
      default:
        return this.transmit();
    }
  }

  private transmit(): Dhcp6Action[] {
    const ex = this.ex!;
    const now = this.o.clock();
    ex.startedAt ??= now;
    const msg = this.buildMessage(ex.type, ex.xid, Math.min(0xffff, Math.round((now - ex.startedAt) / 10)));
    const packet = buildUdp6({
      src: this.o.linkLocal,
      dst: ALL_DHCP_RELAY_AGENTS_AND_SERVERS,
      srcPort: DHCP6_CLIENT_PORT,
      dstPort: DHCP6_SERVER_PORT,
      hopLimit: CLIENT_HOP_LIMIT,
      payload: encodeDhcp6(msg),
    });
    const name = MESSAGE_NAMES[ex.type] ?? String(ex.type);
    this.counters.sent[name] = (this.counters.sent[name] ?? 0) + 1;
    const wait = ex.retrans.next();
    ex.final = wait.final;
    return [{ type: 'send', packet }, startTimer(TX_TIMER, clampTimer(wait.ms))];
  }

  private wantsAddress(): boolean {
    return this.o.requestAddress === 'always' || (this.o.requestAddress === 'if-managed' && this.managed);
  }

  private buildMessage(type: number, xid: number, elapsedTime: number): Dhcp6Message {
    const m = emptyMessage(type, xid, { clientId: this.o.duid, elapsedTime });
    if (type === MSG_REQUEST || type === MSG_RENEW || type === MSG_RELEASE || type === MSG_DECLINE) m.serverId = this.serverId;
    if (type === MSG_DECLINE) {
      // RFC 8415 18.2.8: only the IA_NA with the declined addresses, lifetimes 0.
      const addresses = this.declining.map((l) => ({ address: l.address, preferredLifetime: 0, validLifetime: 0, unknown: [] }));
      m.iaNa.push({ iaid: this.o.iaid, t1: 0, t2: 0, addresses, unknown: [] });
      return m;
    }
    const dns = this.o.requestDns ? [OPT_DNS_SERVERS, OPT_DOMAIN_LIST] : [];
    if (type === MSG_INFORMATION_REQUEST) {
      m.oro = [...dns, OPT_INF_MAX_RT, OPT_INFORMATION_REFRESH_TIME];
      return m;
    }
    if (type !== MSG_RELEASE) m.oro = [...dns, OPT_SOL_MAX_RT];
    if (type === MSG_SOLICIT && this.o.rapidCommit) m.rapidCommit = true;
    const leases = type === MSG_RELEASE ? this.releasing : this.allLeases();
    const offer = type === MSG_REQUEST ? this.offered : undefined;
    const iaid = this.o.iaid;
    const wantPd = this.o.requestPrefix && type !== MSG_RELEASE;
    const wantNa = this.wantsAddress() && type !== MSG_RELEASE;
    // Lifetimes and T1/T2 are zero in client messages (RFC 8415 21.4, 21.6, 21.21).
    const pdLeases = offer
      ? (offer.iaPd.find((ia) => ia.iaid === iaid)?.prefixes ?? [])
          .filter((p) => this.ok(p.status))
          .map((p) => ({ address: p.prefix, length: p.prefixLength }))
      : leases.filter((l) => l.kind === 'pd');
    if (wantPd || pdLeases.length > 0) {
      let prefixes = pdLeases.map((l) => ({
        prefix: l.address,
        prefixLength: l.length,
        preferredLifetime: 0,
        validLifetime: 0,
        unknown: [],
      }));
      if (prefixes.length === 0 && type === MSG_SOLICIT) {
        if (this.hint)
          prefixes = [
            { prefix: this.hint.prefix, prefixLength: this.hint.length, preferredLifetime: 0, validLifetime: 0, unknown: [] },
          ];
        else if (this.o.prefixLengthHint)
          prefixes = [
            { prefix: '::', prefixLength: this.o.prefixLengthHint, preferredLifetime: 0, validLifetime: 0, unknown: [] },
          ];
      }
      m.iaPd.push({ iaid, t1: 0, t2: 0, prefixes, unknown: [] });
    }
    const naLeases = offer
      ? (offer.iaNa.find((ia) => ia.iaid === iaid)?.addresses ?? [])
          .filter((a) => this.ok(a.status) && !this.declined.has(a.address))
          .map((a) => ({ address: a.address }))
      : leases.filter((l) => l.kind === 'na');
    if (wantNa || naLeases.length > 0) {
      const addresses = naLeases.map((l) => ({ address: l.address, preferredLifetime: 0, validLifetime: 0, unknown: [] }));
      m.iaNa.push({ iaid, t1: 0, t2: 0, addresses, unknown: [] });
    }
    return m;
  }

  // ------------------------------------------------------------ replies

  private ignore(reason: string): Dhcp6Action[] {
    const ig = this.counters.ignored;
    // Status codes come from the wire: bound the number of distinct keys.
    const key = reason in ig || Object.keys(ig).length < MAX_IGNORE_KEYS ? reason : 'other';
    ig[key] = (ig[key] ?? 0) + 1;
    return [];
  }

  private noteStatus(s: StatusCode | undefined, where: string): void {
    if (s && s.code !== STATUS_SUCCESS)
      this.lastStatus = { code: s.code, name: STATUS_NAMES[s.code] ?? `status ${s.code}`, message: s.message, where };
  }

  /** RFC 8415 18.2.9: SOL_MAX_RT / INF_MAX_RT between 60 and 86400 s are honoured. */
  private takeMaxRt(m: Dhcp6Message): void {
    if (m.solMaxRt !== undefined && m.solMaxRt >= 60 && m.solMaxRt <= 86400) this.solMaxRt = m.solMaxRt * 1000;
    if (m.infMaxRt !== undefined && m.infMaxRt >= 60 && m.infMaxRt <= 86400) this.infMaxRt = m.infMaxRt * 1000;
  }

  private ok(s: StatusCode | undefined): boolean {
    return !s || s.code === STATUS_SUCCESS;
  }

  /** How many usable leases a message offers for our IAs. */
  private offers(m: Dhcp6Message): number {
    if (!this.ok(m.status)) return 0;
    let n = 0;
    for (const ia of m.iaPd) {
      if (ia.iaid !== this.o.iaid || !this.ok(ia.status) || !this.timersSane(ia)) continue;
      n += ia.prefixes.filter(
        (p) => this.ok(p.status) && p.validLifetime > 0 && p.preferredLifetime <= p.validLifetime && !leaseProblem('pd', p.prefix, p.prefixLength),
      ).length;
    }
    for (const ia of m.iaNa) {
      if (ia.iaid !== this.o.iaid || !this.ok(ia.status) || !this.timersSane(ia)) continue;
      n += ia.addresses.filter(
        (a) =>
          this.ok(a.status) &&
          a.validLifetime > 0 &&
          a.preferredLifetime <= a.validLifetime &&
          !leaseProblem('na', a.address, 128) &&
          !this.declined.has(a.address),
      ).length;
    }
    return n;
  }

  private timersSane(ia: IaNa | IaPd): boolean {
    return !(ia.t1 > 0 && ia.t2 > 0 && ia.t1 > ia.t2);
  }

  private onAdvertise(m: Dhcp6Message): Dhcp6Action[] {
    this.noteStatus(m.status, 'advertise');
    for (const ia of [...m.iaPd, ...m.iaNa]) this.noteStatus(ia.status, 'advertise IA');
    const offers = this.offers(m);
    // RFC 8415 18.2.9: an Advertise with nothing in it is ignored; Solicit goes on with its backoff.
    if (offers === 0) return this.ignore('advertise-without-leases');
    const preference = m.preference ?? 0;
    if (preference === 255 || !this.collecting) return this.beginRequest(m, m.serverId!);
    if (!this.best || preference > this.best.preference || (preference === this.best.preference && offers > this.best.offers)) {
      this.best = { msg: m, preference, offers };
    }
    return [];
  }

  private onReply(m: Dhcp6Message): Dhcp6Action[] {
    const now = this.o.clock();
    const st = this.st;
    this.noteStatus(m.status, 'reply');
    const code = m.status?.code ?? STATUS_SUCCESS;
    if (code === STATUS_NOT_ON_LINK) {
      const out: Dhcp6Action[] = [...this.stopLeaseTimers(), ...this.dropAll('withdrawn')];
      out.push(...this.retrySolicit('not-on-link'));
      return out;
    }
    if (code !== STATUS_SUCCESS && code !== STATUS_NO_ADDRS_AVAIL && code !== STATUS_NO_PREFIX_AVAIL) {
      // UnspecFail, UseMulticast (we always multicast) and unknown codes: keep
      // retransmitting on the current backoff, which limits rate and duration.
      return this.ignore(`status-${STATUS_NAMES[code] ?? code}`);
    }
    const fresh = st === 'soliciting' || st === 'requesting';
    this.serverId = m.serverId;
    const out: Dhcp6Action[] = [];
    let needRequest = false;
    for (const kind of ['pd', 'na'] as const) {
      const ias: (IaPd | IaNa)[] = kind === 'pd' ? m.iaPd : m.iaNa;
      const ia = ias.find((x) => x.iaid === this.o.iaid);
      const binding = this.bindings.get(kind);
      if (ia) this.noteStatus(ia.status, `reply IA_${kind.toUpperCase()}`);
      // A message-level NoAddrsAvail/NoPrefixAvail grants nothing to any IA.
      if (code !== STATUS_SUCCESS) {
        out.push(...this.applyIa(kind, ia ?? { iaid: this.o.iaid, t1: 0, t2: 0, prefixes: [], unknown: [] }, false, now));
        continue;
      }
      if (ia && !this.timersSane(ia)) this.ignore('ia-t1-after-t2');
      if (!ia || !this.timersSane(ia)) {
        // Left out of a Renew/Rebind reply: keep it for now. Left out of a fresh
        // binding: the server no longer knows it.
        if (binding && fresh)
          out.push(...this.applyIa(kind, { iaid: this.o.iaid, t1: 0, t2: 0, prefixes: [], unknown: [] }, false, now));
        else if (binding) this.postpone(binding, now);
        continue;
      }
      const iaCode = ia.status?.code ?? STATUS_SUCCESS;
      if (iaCode === STATUS_NO_BINDING && !fresh) {
        needRequest = true;
        continue;
      }
      out.push(...this.applyIa(kind, ia, iaCode === STATUS_SUCCESS, now));
    }
    if (needRequest) {
      out.push(...this.beginRequest(undefined, m.serverId!));
      return out;
    }
    if (m.dnsServers || m.domainList)
      out.push(...this.setDns(m.dnsServers ?? this.dns.servers, m.domainList ?? this.dns.domains));
    if (this.allLeases().length === 0) {
      out.push(...this.stopLeaseTimers());
      const reason =
        code === STATUS_NO_ADDRS_AVAIL || code === STATUS_NO_PREFIX_AVAIL
          ? STATUS_NAMES[code]!
          : (this.lastStatus?.name ?? 'no-leases');
      out.push(...this.retrySolicit(reason));
      return out;
    }
    this.st = 'bound';
    this.ex = undefined;
    this.retry = this.newRetry();
    out.push(stopTimer(TX_TIMER), this.armRenew(now), this.armRebind(now), this.armExpire(now));
    return out;
  }

  /** Brings one binding in line with the IA from a Reply, reporting each change. */
  private applyIa(kind: IaKind, ia: IaPd | IaNa, iaOk: boolean, now: number): Dhcp6Action[] {
    const out: Dhcp6Action[] = [];
    const old = this.bindings.get(kind);
    const binding: Binding = { kind, iaid: ia.iaid, leases: new Map(), renewAt: INFINITY, rebindAt: INFINITY };
    const offered = iaOk
      ? 'prefixes' in ia
        ? ia.prefixes.map((p) => ({
            address: p.prefix,
            length: p.prefixLength,
            pref: p.preferredLifetime,
            valid: p.validLifetime,
            status: p.status,
          }))
        : ia.addresses.map((a) => ({
            address: a.address,
            length: 128,
            pref: a.preferredLifetime,
            valid: a.validLifetime,
            status: a.status,
          }))
      : [];
    const max = kind === 'pd' ? this.o.maxPrefixes : this.o.maxAddresses;
    for (const l of offered) {
      this.noteStatus(l.status, kind === 'pd' ? 'reply IAPREFIX' : 'reply IAADDR');
      if (!this.ok(l.status) || l.valid === 0) continue;
      if (l.pref > l.valid) {
        this.ignore('lease-preferred-after-valid');
        continue;
      }
      const problem = leaseProblem(kind, l.address, l.length);
      if (problem) {
        this.ignore(problem);
        continue;
      }
      if (kind === 'na' && this.declined.has(l.address)) {
        this.ignore('na-address-declined');
        continue;
      }
      if (binding.leases.size >= max) {
        this.ignore('lease-limit');
        continue;
      }
      const lease: Lease = {
        kind,
        address: l.address,
        length: l.length,
        preferredUntil: deadlineFrom(now, l.pref),
        validUntil: deadlineFrom(now, l.valid),
      };
      binding.leases.set(leaseKey(kind, l.address, l.length), lease);
    }
    // Whatever we held and the server did not grant again is withdrawn now (see the class comment).
    const granted = binding.leases.size > 0;
    for (const [key, lease] of old?.leases ?? []) {
      if (!binding.leases.has(key)) out.push(this.removed(lease, granted ? 'replaced' : 'withdrawn'));
    }
    if (!granted) {
      this.bindings.delete(kind);
      return out;
    }
    const shortestPref = Math.min(...[...binding.leases.values()].map((l) => l.preferredUntil - now));
    // T1/T2 of 0 leave the timing to us: 0.5 and 0.8 of the shortest preferred
    // lifetime (RFC 8415 18.2.4), but never so soon that a deprecated lease makes us spin.
    const derived = (f: number) => Math.max(REN_TIMEOUT, f * shortestPref);
    const t1 = ia.t1 === INFINITY ? Number.POSITIVE_INFINITY : ia.t1 > 0 ? ia.t1 * 1000 : derived(0.5);
    const t2 = ia.t2 === INFINITY ? Number.POSITIVE_INFINITY : ia.t2 > 0 ? ia.t2 * 1000 : Math.max(t1, derived(0.8));
    binding.renewAt = now + Math.min(t1, t2);
    binding.rebindAt = now + t2;
    this.bindings.set(kind, binding);
    for (const lease of binding.leases.values()) {
      if (kind === 'pd') {
        this.hint = { prefix: lease.address, length: lease.length };
        out.push({
          type: 'prefix',
          prefix: lease.address,
          length: lease.length,
          preferredLifetime: secondsUntil(now, lease.preferredUntil),
          validLifetime: secondsUntil(now, lease.validUntil),
          t1: secondsUntil(now, binding.renewAt),
          t2: secondsUntil(now, binding.rebindAt),
          iaid: binding.iaid,
        });
      } else {
        out.push({
          type: 'address',
          address: lease.address,
          prefixLength: 128,
          preferredLifetime: secondsUntil(now, lease.preferredUntil),
          validLifetime: secondsUntil(now, lease.validUntil),
          iaid: binding.iaid,
        });
      }
    }
    return out;
  }

  /** An IA the server left out of a Renew/Rebind Reply: keep it, and try again after its T1/T2 interval. */
  private postpone(b: Binding, now: number): void {
    const leases = [...b.leases.values()];
    const shortestPref = Math.min(...leases.map((l) => l.preferredUntil - now));
    const step = Number.isFinite(shortestPref) && shortestPref > 0 ? 0.5 * shortestPref : REN_TIMEOUT;
    if (b.renewAt <= now) b.renewAt = now + step;
    if (b.rebindAt <= now) b.rebindAt = now + 1.6 * step;
  }

  private onInfoReply(m: Dhcp6Message): Dhcp6Action[] {
    this.noteStatus(m.status, 'reply');
    if (!this.ok(m.status)) return this.ignore(`status-${STATUS_NAMES[m.status!.code] ?? m.status!.code}`);
    this.st = 'informed';
    this.ex = undefined;
    const refresh = Math.max(IRT_MINIMUM, m.informationRefreshTime ?? IRT_DEFAULT);
    const out: Dhcp6Action[] = [stopTimer(TX_TIMER)];
    out.push(...this.setDns(m.dnsServers ?? [], m.domainList ?? []));
    if (refresh !== INFINITY) out.push(startTimer(REFRESH_TIMER, clampTimer(refresh * 1000)));
    return out;
  }

  private finishDecline(): Dhcp6Action[] {
    this.ex = undefined;
    return [stopTimer(TX_TIMER), ...this.afterDecline()];
  }

  /** The Decline is over (answered or not): carry on with what is left, or Solicit again. */
  private afterDecline(): Dhcp6Action[] {
    this.declining = [];
    const now = this.o.clock();
    if (this.allLeases().length > 0) {
      this.st = 'bound';
      return [this.armRenew(now), this.armRebind(now), this.armExpire(now)];
    }
    return [...this.stopLeaseTimers(), ...this.retrySolicit('declined')];
  }

  private finishRelease(acknowledged: boolean): Dhcp6Action[] {
    this.releasing = [];
    this.ex = undefined;
    this.serverId = undefined;
    this.st = 'released';
    return [stopTimer(TX_TIMER), { type: 'released', acknowledged }];
  }

  // ------------------------------------------------------------ leases and timers

  private onExpire(now: number): Dhcp6Action[] {
    const out: Dhcp6Action[] = [];
    for (const [kind, b] of this.bindings) {
      for (const [key, lease] of b.leases) {
        if (lease.validUntil <= now) {
          b.leases.delete(key);
          out.push(this.removed(lease, 'expired'));
        }
      }
      if (b.leases.size === 0) this.bindings.delete(kind);
    }
    const active = this.st === 'bound' || this.st === 'renewing' || this.st === 'rebinding';
    if (active && this.bindings.size === 0) {
      out.push(stopTimer(RENEW_TIMER), stopTimer(REBIND_TIMER), stopTimer(EXPIRE_TIMER));
      out.push(...this.retrySolicit('expired'));
      return out;
    }
    out.push(this.armExpire(now));
    return out;
  }

  private removed(lease: Lease, reason: RemovalReason): Dhcp6Action {
    return lease.kind === 'pd'
      ? { type: 'prefix-removed', prefix: lease.address, length: lease.length, reason }
      : { type: 'address-removed', address: lease.address, reason };
  }

  private allLeases(): Lease[] {
    return [...this.bindings.values()].flatMap((b) => [...b.leases.values()]);
  }

  private dropAll(reason: RemovalReason): Dhcp6Action[] {
    const out = this.allLeases().map((l) => this.removed(l, reason));
    this.bindings.clear();
    return out;
  }

  private renewAt(): number {
    return Math.min(...[...this.bindings.values()].map((b) => b.renewAt));
  }

  private rebindAt(): number {
    return Math.min(...[...this.bindings.values()].map((b) => b.rebindAt));
  }

  private armRenew(now: number): TimerAction {
    return armFor(RENEW_TIMER, now, [this.renewAt()]);
  }

  private armRebind(now: number): TimerAction {
    return armFor(REBIND_TIMER, now, [this.rebindAt()]);
  }

  private armExpire(now: number): TimerAction {
    return armFor(
      EXPIRE_TIMER,
      now,
      this.allLeases().map((l) => l.validUntil),
    );
  }

  private stopLeaseTimers(): TimerAction[] {
    return [stopTimer(RENEW_TIMER), stopTimer(REBIND_TIMER), stopTimer(EXPIRE_TIMER)];
  }

  private stopTimers(): TimerAction[] {
    return [stopTimer(TX_TIMER), stopTimer(REFRESH_TIMER), ...this.stopLeaseTimers()];
  }

  private setDns(offered: string[], domains: string[]): Dhcp6Action[] {
    const servers = offered.filter((a) => !(isMulticast(a) || isUnspecified(a) || a === '::1'));
    if (servers.length < offered.length) this.ignore('dns-bad-server');
    const same = (a: string[], b: string[]) => a.length === b.length && a.every((x, i) => x === b[i]);
    if (same(servers, this.dns.servers) && same(domains, this.dns.domains)) return [];
    this.dns = { servers: [...servers], domains: [...domains] };
    return [{ type: 'dns', servers: [...servers], domains: [...domains] }];
  }

  private clearDns(): Dhcp6Action[] {
    return this.setDns([], []);
  }
}

const MAX_IGNORE_KEYS = 64;

/** Shortest delegated prefix we take: no end site is given more than an ISP's own allocation. */
export const MIN_DELEGATED_PREFIX_LENGTH = 32;

/**
 * Why a delegated prefix or an IA_NA address cannot be used, if it cannot. A prefix
 * longer than /64 numbers no LAN (RFC 7084 L-2); a very short one would have us pin an
 * unreachable route over a large part of the Internet; neither may be link-local,
 * multicast or inside ::/64 (unspecified, loopback, IPv4-mapped).
 */
export function leaseProblem(kind: 'pd' | 'na', address: string, length: number): string | undefined {
  const what = kind === 'pd' ? 'pd-prefix' : 'na-address';
  if (kind === 'pd' && (length > 64 || length < MIN_DELEGATED_PREFIX_LENGTH)) return 'pd-prefix-length';
  if (isMulticast(address)) return `${what}-multicast`;
  if (isLinkLocal(address)) return `${what}-link-local`;
  if (isUnspecified(address) || parseAddress(address).subarray(0, 8).every((x) => x === 0)) return `${what}-reserved`;
  return undefined;
}

/** What a host asks DHCPv6 for, from the M and O flags of the SC's RA (issue 16 item 1). */
export type HostDhcp6Mode = 'address' | 'information' | 'probe';

/**
 * M=1: Solicit and Request an IA_NA address (RFC 5571 5.3: the SI MUST send a
 * Request when the RA has M set). O=1 alone: Information-request (RFC 8415 18.2.6).
 * Neither: RFC 4861 says nothing is on offer, but RFC 5571 5.4.1 says an SI that
 * speaks DHCPv6 SHOULD Solicit to see whether more is available; that probe is
 * bounded (HOST_PROBE_SOLICITS) so a silent SC is not solicited for ever.
 */
export function hostDhcp6Mode(managed: boolean, other: boolean): HostDhcp6Mode {
  if (managed) return 'address';
  if (other) return 'information';
  return 'probe';
}

/** Solicits sent when M=O=0 before the host gives up on DHCPv6 for this link. */
export const HOST_PROBE_SOLICITS = 3;

import type { Config } from '../config/schema';
import type { Secrets } from '../config/load';
import type { TimerAction } from '../core/actions';
import { Lac, type LacAction } from '../l2tp/lac';
import { PppLink, type LinkAction, type IpcpLinkResult } from '../ppp/link';
import { PROTO } from '../ppp/frame';
import { earlyResendMs } from '../ppp/automaton';
import { classifyControl, linkLocalFromIid, type Prefix } from '../ipv6/packet';
import { Slaac, type SlaacAction } from '../ipv6/slaac';
import { RouterSolicitor, type RsAction } from '../ipv6/rs';
import { Dhcp6Client, type Dhcp6Action, HOST_PROBE_SOLICITS, hostDhcp6Mode } from '../ipv6/dhcp6-client';
import { LeaseDad, type LeaseDadAction } from '../ipv6/dad';
import { parseNdPacket } from '../ipv6/nd';
import { Ipv6DecodeError } from '../ipv6/errors';
import { classifyAuthCdn } from '../l2tp/result-codes';
import { MtuPlan, tunSlotSize } from '../core/mtu-plan';
import { DataCounters } from '../dataplane/counters';
import { parseEndpointKey } from '../io/udp-socket';
import { type Phase, SessionCore, type SessionInput } from './session-core';
import type { AttemptAction, AttemptInput, ConnectionEvent, DownInfo, Layer, LogLevel, Provision, Settle } from './attempt-types';

/**
 * One attempt at a softwire as a pure core: the L2TP tunnel and session, the PPP
 * link over it, and once the NCPs are up RS, SLAAC, DHCPv6 (IA_NA/IA_PD) and DAD
 * for leased addresses, the MTU plan, the setup deadlines and "up = usable"
 * (SessionCore), and the goodbyes at stop. Inputs come with `now` (monotonic ms);
 * the answer is a list of typed actions (attempt-types.ts) for a driver
 * (connection.ts) to carry out. Randomness arrives in the options; no clock,
 * timer, socket or kernel in here, so every transition runs on a fake clock.
 */

/** Longest a cleared tunnel keeps its socket to retransmit StopCCN and answer the SC (RFC 2661 5.7 linger) after the next dial began. */
export const RETIRE_CAP_MS = 40_000;
/** Stop: how long the DHCPv6 Release and the LCP Terminate are each waited for (l2tpns ignores Release). */
const RELEASE_WAIT_MS = 400;
const TERMINATE_WAIT_MS = 500;

/** The layer a setup phase that overran is reported under. */
const PHASE_LAYER: Record<Phase, Layer> = { tunnel: 'tunnel', session: 'session', lcp: 'ppp', auth: 'auth', ncp: 'ppp' };

export interface AttemptOptions {
  config: Config;
  secrets: Secrets;
  duid: Uint8Array;
  previousPrefix?: Prefix;
  /** Softwire MTU (TUN MTU and LCP MRU). */
  mtu: number;
  /** The SC as dialled ("address:port" is what its datagrams normally come from). */
  sc: { address: string; port: number };
  /** Uniform in [0, 1): jitter and delays of RS, SLAAC/DAD and DHCPv6. */
  random: () => number;
  /** Random bytes: tunnel and session IDs, LCP magic, CHAP. */
  randomBytes: (n: number) => Uint8Array;
}

type Core = 'l2tp' | 'ppp' | 'rs' | 'slaac' | 'dhcp6' | 'dad';
const CORES: readonly Core[] = ['l2tp', 'ppp', 'rs', 'slaac', 'dhcp6', 'dad'];
type StopStage = 'release' | 'terminate' | 'stopccn';

export class Attempt {
  readonly lac: Lac;
  private ppp: PppLink | null = null;
  private rs: RouterSolicitor | null = null;
  private slaac: Slaac | null = null;
  private dhcp: Dhcp6Client | null = null;
  /** Issue 16 item 2: DAD (and Optimistic use, item 10) for DHCPv6 IA_NA addresses. */
  private leaseDad: LeaseDad | null = null;
  /** Host mode: the DHCPv6 exchange is the bounded M=O=0 probe, not one the RA announced. */
  private dhcpProbe = false;
  private linkLocalAddr: string | null = null;
  /** The source the L2TP core locked onto ("address:port"), once it did. */
  private peerFrom: string | null = null;
  private ipv4Result: IpcpLinkResult | null = null;
  /** The TUN: asked for (an NCP came up), open, or neither. */
  private tun: 'none' | 'opening' | 'open' = 'none';
  /** NCPs that came up while the TUN was opening: set up once it is. */
  private pendingNcp: { ipv6cp?: { ourIid: Buffer; peerIid: Buffer }; ipcp?: IpcpLinkResult } = {};
  private readonly setup: SessionCore;
  readonly mtuPlan: MtuPlan;
  private sequencingSeen = false;
  /** Data path counters (shared with the driver's fast path) and the cores' exceptions as drops. */
  readonly counters = new DataCounters();
  /** Time of open(); tunnel+session setup time bounds the PPP round trip (issue 16 item 9). */
  private dialledAt = 0;
  private now = 0;
  private finished = false;
  private stopStage: StopStage | null = null;
  private retired = false;
  private closed = false;
  /** Why this attempt is being cleared, sent in our StopCCN (set when a phase deadline expires). */
  private closeCode: { result: number; error?: number; message?: string } | null = null;
  private readonly armed = new Set<string>();
  private out: AttemptAction[] = [];
  private readonly clock = () => this.now;

  constructor(private readonly o: AttemptOptions) {
    const c = o.config;
    this.mtuPlan = new MtuPlan({ base: o.mtu, derived: !c.mtu });
    this.setup = new SessionCore({
      deadlines: { tunnel: c.sccrpTimeout * 1000, session: c.icrpTimeout * 1000, lcp: c.lcpTimeout * 1000, auth: c.authTimeout * 1000, ncp: c.ncpTimeout * 1000 },
      provisionWaitMs: c.provisionWait * 1000,
      mode: c.mode,
      needIpv6: c.ncp !== 'ipv4',
      needIpv4: c.ncp !== 'ipv6',
    });
    this.lac = new Lac({
      hostName: c.hostname,
      vendorName: 'softwire',
      secret: o.secrets.tunnelSecret,
      helloIntervalMs: c.helloInterval * 1000,
      channel: { initialTimeoutMs: c.retransmitInitial * 1000, maxTimeoutMs: c.retransmitCap * 1000, maxRetries: c.retransmitRetries },
      random: o.randomBytes,
    });
  }

  /** One input; the actions to carry out, in order. */
  input(ev: AttemptInput, now: number): AttemptAction[] {
    this.now = now;
    this.out = [];
    if (!this.closed) this.dispatch(ev);
    return this.out;
  }

  private dispatch(ev: AttemptInput): void {
    switch (ev.type) {
      case 'open':
        this.dialledAt = this.now;
        this.emit({ type: 'progress', layer: 'tunnel', message: `dialling ${this.o.sc.address}:${this.o.sc.port}` });
        this.feed({ type: 'dialed' });
        return this.run('l2tp', () => this.lac.open(), this.onLac);
      case 'datagram':
        return this.run('l2tp', () => this.lac.receive(ev.bytes, ev.from), this.onLac);
      case 'tun-packet':
        return this.fromTun(ev.packet);
      case 'timer':
        return this.timer(ev.key);
      case 'tun-opened':
        return this.tunOpened();
      case 'tun-failed':
        this.tun = 'none';
        return this.fail({ layer: 'ppp', reason: `cannot open TUN device ${this.o.config.tunDevice}: ${ev.message}` });
      case 'settled':
        return this.settled(ev.what, ev.globalAddress);
      case 'stop':
        return this.stop(ev.release, ev.budgetMs);
    }
  }

  // ------------------------------------------------------------ plumbing

  private push(a: AttemptAction): void {
    this.out.push(a);
  }
  private emit(event: ConnectionEvent): void {
    this.push({ type: 'event', event });
  }
  private log(level: LogLevel, msg: string, data: Record<string, unknown> = {}): void {
    this.push({ type: 'log', level, msg, data });
  }
  private install(op: Provision): void {
    this.push({ type: 'install', op });
  }
  private settle(what: Settle): void {
    this.push({ type: 'settle', what });
  }
  private arm(key: string, ms: number): void {
    this.armed.add(key);
    this.push({ type: 'arm', key, at: this.now + ms });
  }
  private cancel(key: string): void {
    if (this.armed.delete(key)) this.push({ type: 'cancel', key });
  }

  /** A protocol core's timer action, under the core's name. */
  private coreTimer(core: Core, a: TimerAction): void {
    if (a.type === 'timer-start') this.arm(`${core}:${a.timer}`, a.ms);
    else this.cancel(`${core}:${a.timer}`);
  }

  /** Runs one protocol core's input and routes its actions to that core's typed handler; a core that throws loses the input, counted. */
  private run<A>(core: Core, input: () => readonly A[], handle: (a: A) => void): void {
    if (this.retired && core !== 'l2tp') return;
    if (this.finished && core !== 'l2tp' && core !== 'ppp' && core !== 'dhcp6') return;
    let actions: readonly A[];
    try {
      actions = input();
    } catch {
      this.counters.drops[`${core}-exception`] = (this.counters.drops[`${core}-exception`] ?? 0) + 1;
      this.log('error', 'protocol core threw; input dropped', { core });
      return;
    }
    for (const a of actions) {
      try {
        handle(a);
      } catch {
        // A bug in the wiring for this one action: counted, the rest still runs.
        this.counters.drops[`${core}-action-exception`] = (this.counters.drops[`${core}-action-exception`] ?? 0) + 1;
      }
    }
    if (core === 'ppp' && this.ppp) this.feed({ type: 'ppp-phase', phase: this.ppp.phase });
    if (core === 'dhcp6' && this.dhcp) this.dnsPending(this.dhcp);
    if (core === 'l2tp' && this.stopStage === 'stopccn' && this.lac.status().tunnel.unacknowledged === 0) this.stopNext();
  }

  private timer(key: string): void {
    this.armed.delete(key);
    const i = key.indexOf(':');
    const owner = key.slice(0, i);
    const name = key.slice(i + 1);
    if (owner === 'setup') return this.feed({ type: 'timer' });
    if (owner === 'stop') return name === 'budget' ? this.retire() : this.stopNext();
    if (owner === 'retire') return this.close();
    const core = CORES.find((c) => c === owner);
    if (core) this.coreTimers[core](name);
  }

  /** Each protocol core's timers, routed back to it. */
  private readonly coreTimers: Record<Core, (name: string) => void> = {
    l2tp: (n) => this.run('l2tp', () => this.lac.timerFired(n), this.onLac),
    ppp: (n) => this.run('ppp', () => this.ppp?.timerFired(n, this.now) ?? [], this.onPpp),
    rs: (n) => this.run('rs', () => this.rs?.timerFired(n) ?? [], this.onRs),
    slaac: (n) => this.run('slaac', () => this.slaac?.timerFired(n) ?? [], this.onSlaac),
    dhcp6: (n) => this.run('dhcp6', () => this.dhcp?.timerFired(n) ?? [], this.onDhcp),
    dad: (n) => this.run('dad', () => this.leaseDad?.timerFired(n) ?? [], this.onLeaseDad),
  };

  /** One input to the setup core (phases, deadlines, "up"). */
  private feed(ev: SessionInput): void {
    if (this.finished) return;
    for (const a of this.setup.input(ev, this.now)) {
      switch (a.type) {
        case 'arm':
          this.arm('setup:deadline', a.at - this.now);
          break;
        case 'disarm':
          this.cancel('setup:deadline');
          break;
        case 'expired':
          // StopCCN result 2 (general error) with the reason, so the SC's log says why we left.
          this.closeCode = { result: 2, error: 0, message: a.message };
          this.fail({ layer: PHASE_LAYER[a.phase], reason: a.message });
          break;
        case 'up':
          if (a.degraded) this.log('warn', 'up, degraded', { degraded: a.degraded });
          this.emit({ type: 'up', degraded: a.degraded });
          break;
        case 'degraded':
          this.emit({ type: 'degraded', reason: a.reason });
          break;
      }
    }
  }

  private settled(what: Settle, globalAddress: boolean): void {
    switch (what) {
      case 'address':
        return this.feed({ type: 'address', present: globalAddress });
      case 'default-route':
      case 'no-default-route':
        return this.feed({ type: 'default-route', present: what === 'default-route' });
      case 'prefix':
        return this.feed({ type: 'prefix', present: true });
      case 'ipv4':
        return this.feed({ type: 'ipv4-ready' });
    }
  }

  /** Whether a DHCPv6 exchange that may bring DNS is still running ("up" waits for it). */
  private dnsPending(dhcp: Dhcp6Client): void {
    const ds = dhcp.status();
    const st = ds.state;
    // A host's M=O=0 probe (issue 16 item 1) asks a server the SC did not announce: "up" does not wait for it.
    // Nor does a Solicit the server already answered with no lease (RFC 8415 18.2.9: that Advertise, and
    // its DNS, is ignored): it keeps soliciting for an IA_NA on its backoff but will not bring DNS soon.
    const leaseless = st === 'soliciting' && (ds.counters.ignored['advertise-without-leases'] ?? 0) > 0;
    const probing = this.dhcpProbe && st === 'soliciting';
    this.feed({ type: 'dns-pending', pending: !probing && !leaseless && (st === 'soliciting' || st === 'requesting' || st === 'informing') });
  }

  private fail(info: DownInfo): void {
    if (this.finished) return;
    this.finished = true;
    this.emit({ type: 'down', info });
  }

  // ------------------------------------------------------------------ L2TP

  private readonly onLac = (a: LacAction): void => {
    switch (a.type) {
      case 'timer-start':
      case 'timer-stop':
        return this.coreTimer('l2tp', a);
      case 'send':
        return this.push({ type: 'send', bytes: a.bytes });
      case 'peer-address':
        this.peerFrom = a.from;
        this.push({ type: 'retarget', from: a.from });
        if (a.from !== `${this.o.sc.address}:${this.o.sc.port}`) this.log('info', 'SC answers from another port or address; following it', { from: a.from });
        return;
      case 'tunnel-up': {
        // Issue 16 item 7: another address of the SC only with tunnel authentication (the transport admits it only then; belt and braces).
        const from = this.peerFrom === null ? this.o.sc.address : parseEndpointKey(this.peerFrom).address;
        if (from !== this.o.sc.address && !a.info.authenticated) {
          return this.fail({ layer: 'tunnel', reason: `the SC answered from ${from} without tunnel authentication` });
        }
        const i = a.info;
        this.emit({
          type: 'progress',
          layer: 'tunnel',
          message: `tunnel up (local id ${i.localTunnelId}, SC id ${i.remoteTunnelId}, SC "${i.peerHostName}"${i.authenticated ? ', authenticated' : ''})`,
        });
        return this.feed({ type: 'tunnel-up' });
      }
      case 'session-up':
        this.emit({ type: 'progress', layer: 'session', message: `session up (local id ${a.info.localSessionId}, SC id ${a.info.remoteSessionId})` });
        this.feed({ type: 'session-up' });
        return this.startPpp();
      case 'frame':
        this.checkSequencing();
        if (this.ppp) {
          const ppp = this.ppp;
          this.run('ppp', () => ppp.receive(Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength), this.now), this.onPpp);
        }
        return;
      case 'down':
        return this.l2tpDown(a);
      case 'closed':
        // Teardown over (acknowledged, linger spent): a retired attempt lets go of its socket.
        if (this.retired) this.close();
        return;
    }
  };

  private l2tpDown(a: Extract<LacAction, { type: 'down' }>): void {
    const layer = a.layer === 'tunnel' ? 'tunnel' : 'session';
    const detail = [a.message, a.resultCode !== undefined ? `result ${a.resultCode}` : '', a.errorCode !== undefined ? `error ${a.errorCode}` : ''].filter(Boolean).join(', ');
    // Some SCs (l2tpns among them) answer a rejected login with a CDN alone, no CHAP
    // Failure or PAP Nak. Issue 16 item 6: the CDN's codes tell a rejected login from
    // a temporary problem (result 4 and the like), which is retried.
    if (layer === 'session' && a.reason === 'peer-cdn' && this.ppp?.phase === 'authenticate') {
      const v = classifyAuthCdn(a.resultCode, a.errorCode);
      if (v.kind === 'auth-rejected') {
        return this.fail({ layer: 'auth', reason: `authentication failed: the SC closed the session during authentication (${detail})`, permanent: true });
      }
      return this.fail({
        layer: 'session',
        reason: `the SC closed the session during authentication, not a login rejection (${detail})`,
        permanent: v.kind === 'permanent',
        retryElsewhere: v.kind === 'transient' && v.retryElsewhere,
      });
    }
    this.fail({ layer, reason: `${a.reason}${detail ? ` (${detail})` : ''}`, permanent: a.permanent || a.reason === 'auth-failed', retryElsewhere: a.retryElsewhere });
  }

  // ------------------------------------------------------------------- PPP

  private startPpp(): void {
    const c = this.o.config;
    const allow = c.auth === 'chap' ? (['chap-md5'] as const) : c.auth === 'pap' ? (['pap'] as const) : undefined;
    const pw = this.o.secrets.password;
    const creds = c.user && pw !== undefined ? { username: c.user, password: pw, ...(allow ? { allow: [...allow] } : {}) } : undefined;
    const ppp = new PppLink({
      randomBytes: (n) => Buffer.from(this.o.randomBytes(n)),
      mru: this.o.mtu,
      credentials: creds,
      policy: c.ncp,
      echo: { intervalMs: c.lcpEchoInterval * 1000, failures: c.lcpEchoFailure, anyTrafficIsLiveness: false },
      ipv4Traffic: c.ncp !== 'ipv6' || c.ipv4DefaultRoute,
      // Issue 16 item 9: the SC's first Configure-Request while ours is unanswered means ours
      // was lost; resend after the tunnel+session setup time (at least two round trips).
      automaton: { peerRequestResendMs: earlyResendMs(this.now - this.dialledAt) },
    });
    this.ppp = ppp;
    this.run('ppp', () => ppp.lowerUp(this.now), this.onPpp);
  }

  private readonly onPpp = (a: LinkAction): void => {
    switch (a.type) {
      case 'timer-start':
      case 'timer-stop':
        return this.coreTimer('ppp', a);
      case 'send':
        this.sendFrame(a.frame);
        return;
      case 'auth-ok':
        return this.emit({ type: 'progress', layer: 'auth', message: `authenticated with ${a.protocol}${a.message ? `: ${a.message}` : ''}` });
      case 'auth-failed':
        return this.fail({ layer: 'auth', reason: `authentication failed: ${a.message}`, permanent: true });
      case 'ncp-up':
        if (a.ncp === 'ipv6cp') this.pendingNcp.ipv6cp = { ourIid: a.result.ourIid, peerIid: a.result.peerIid };
        else this.pendingNcp.ipcp = a.result;
        this.feed({ type: 'ncp-up', ncp: a.ncp });
        return this.openTun();
      case 'ncp-down':
        // After stop() or a failure the NCPs close as a consequence: a warning only when one goes down by itself.
        return this.log(this.finished ? 'info' : 'warn', 'NCP down', { ncp: a.ncp, reason: a.reason });
      case 'data':
        return this.fromPeer(a.protocol, a.payload);
      case 'down':
        return this.fail({ layer: 'ppp', reason: a.reason });
      case 'closed':
        if (this.stopStage === 'terminate') this.stopNext();
        if (!this.finished) this.fail({ layer: 'ppp', reason: a.reason });
        return;
    }
  };

  private sendFrame(frame: Uint8Array): boolean {
    const bytes = this.lac.sendFrame(frame);
    if (bytes) this.push({ type: 'send', bytes });
    return bytes !== undefined;
  }

  // -------------------------------------------------------------- data path

  /** An NCP is up: the TUN first (IPCP not carrying traffic needs none), then what each NCP that came up brings. */
  private openTun(): void {
    const { ipv6cp, ipcp } = this.pendingNcp;
    if (ipv6cp || ipcp?.carryTraffic) {
      if (this.tun === 'opening') return;
      if (this.tun === 'none') {
        this.tun = 'opening';
        return this.push({ type: 'open-tun', slotSize: tunSlotSize(this.mtuPlan.ceiling), mtu: this.mtuPlan.mtu });
      }
    }
    this.pendingNcp = {};
    if (ipv6cp) this.ipv6cpUp(ipv6cp.ourIid, ipv6cp.peerIid);
    if (ipcp) this.ipcpUp(ipcp);
  }

  private tunOpened(): void {
    if (this.tun !== 'opening') return;
    this.tun = 'open';
    if (this.finished) this.pendingNcp = {};
    else this.openTun();
  }

  /** A packet the kernel routed into the softwire, framed by the cores (no fast path, or sequenced data). */
  private fromTun(pkt: Uint8Array): void {
    const version = pkt.length ? pkt[0]! >> 4 : 0;
    const protocol = version === 6 ? PROTO.IPV6 : version === 4 ? PROTO.IPV4 : 0;
    if (protocol === 0 || !this.ppp) return this.counters.drop('tx', 'bad-version');
    const frame = this.ppp.sendData(protocol, pkt);
    if (!frame) return this.counters.drop('tx', version === 6 ? 'ipv6-not-open' : 'ipv4-not-carried');
    if (!this.sendFrame(frame)) return this.counters.drop('tx', 'no-session');
    this.counters.txPackets++;
    this.counters.txOctets += pkt.length;
  }

  /** A packet from the SC that the fast path left to the cores: ours to handle (RA, DHCPv6, ND for DAD) or the kernel's. */
  private fromPeer(protocol: number, payload: Buffer): void {
    if (protocol === PROTO.IPV6) {
      switch (classifyControl(payload)) {
        case 'ra':
          this.counters.toCores++;
          return this.run('slaac', () => this.slaac?.receive(payload) ?? [], this.onSlaac);
        case 'dhcpv6-client':
          this.counters.toCores++;
          return this.run('dhcp6', () => this.dhcp?.receive(payload) ?? [], this.onDhcp);
        case 'ns':
        case 'na':
          // DAD watches both; the kernel still answers the SC's own neighbour probes.
          this.counters.toCores++;
          this.run('slaac', () => this.slaac?.receive(payload) ?? [], this.onSlaac);
          this.run('dad', () => this.leaseNd(payload), this.onLeaseDad);
          break;
        default:
          break;
      }
    }
    if (this.tun !== 'open') return this.counters.drop('rx', 'no-tun');
    this.push({ type: 'tun-write', packet: payload });
  }

  /** Sends an IPv6 packet the agent built (RS, NS, DHCPv6) over the PPP link. */
  private sendIpv6(packet: Uint8Array): void {
    const frame = this.ppp?.sendData(PROTO.IPV6, packet);
    if (!frame || !this.sendFrame(frame)) this.counters.drop('tx', 'ipv6-control-not-sent');
  }

  // ------------------------------------------------------------------- MTU

  /** LCP is open once an NCP is up: the SC's MRU bounds what we may send (issue 16 item 3). */
  private takeScMru(): void {
    this.applyMtu(this.mtuPlan.setScMru(this.ppp?.status().negotiated.peerMru));
  }

  /** The SC started (or stopped) sequencing data: 4 more header bytes per packet. */
  private checkSequencing(): void {
    const on = this.lac.dataHeader()?.sequencing ?? false;
    if (on === this.sequencingSeen) return;
    this.sequencingSeen = on;
    this.applyMtu(this.mtuPlan.setSequencing(on));
  }

  /** A new MTU goes to the TUN, the MSS clamp, SLAAC's ceiling and the LAN's RAs (the installer's). */
  private applyMtu(mtu: number | undefined): void {
    if (mtu === undefined) return;
    this.log('info', 'softwire MTU changed', { mtu, limitedBy: this.mtuPlan.limitedBy });
    this.push({ type: 'set-mtu', mtu });
    this.slaac?.setLinkMtu(this.mtuPlan.linkMtu);
    if (this.tun === 'open') this.install({ type: 'tun-mtu', mtu });
  }

  // ------------------------------------------------------------------ IPv6

  private ipv6cpUp(ourIid: Buffer, peerIid: Buffer): void {
    const c = this.o.config;
    const ll = linkLocalFromIid(ourIid);
    this.linkLocalAddr = ll;
    this.emit({ type: 'progress', layer: 'ipv6', message: `IPV6CP up: link-local ${ll}, SC ${linkLocalFromIid(peerIid)}` });
    this.takeScMru();
    this.install({ type: 'tun-up', mtu: this.mtuPlan.mtu, linkLocal: ll });
    const rng = this.o.random;
    const clock = this.clock;
    // Issue 16 item 10: Optimistic DAD (RFC 4429) for SLAAC and DHCPv6 addresses.
    this.slaac = new Slaac({ iid: ourIid, clock, rng, linkMtu: this.mtuPlan.linkMtu, optimistic: c.optimisticDad });
    this.leaseDad = new LeaseDad({ rng, clock, optimistic: c.optimisticDad });
    // Issue 16 item 10: no random delay before the first RS (RFC 4861 6.3.7's SHOULD spreads
    // many hosts starting on one link; a PPP link has one, and reconnects are already
    // jittered). l2tpns's one RA at IPV6CP open can arrive before our IPV6CP is open
    // and be lost, so the RS is what brings the RA: at once, not 0-1 s later.
    const rs = new RouterSolicitor({ rng, source: ll, maxDelayMs: 0 });
    this.rs = rs;
    const dhcp = new Dhcp6Client({
      duid: this.o.duid,
      linkLocal: ll,
      clock,
      rng,
      mode: c.mode === 'router' ? 'stateful' : 'stateless',
      requestPrefix: c.mode === 'router',
      prefixLengthHint: c.prefixLengthHint || undefined,
      previousPrefix: this.o.previousPrefix,
      // Issue 16 item 1: a host asks for IA_NA whenever it solicits (hostDhcp picks when).
      requestAddress: c.mode === 'router' ? 'if-managed' : 'always',
      rapidCommit: c.rapidCommit,
      requestDns: true,
      // l2tpns ignores Release; two tries keep shutdown inside its 3 s budget.
      releaseMaxRc: 1,
    });
    this.dhcp = dhcp;
    this.run('rs', () => rs.start(), this.onRs);
    // RFC 7084 WPD-2: a router solicits IA_PD whatever the RA's M/O flags say.
    if (c.mode === 'router') this.run('dhcp6', () => dhcp.start(), this.onDhcp);
  }

  private readonly onRs = (a: RsAction): void => {
    switch (a.type) {
      case 'timer-start':
      case 'timer-stop':
        return this.coreTimer('rs', a);
      case 'send':
        return this.sendIpv6(a.packet);
      case 'rs-gave-up':
        return this.log('warn', 'no Router Advertisement after soliciting', { sent: a.sent });
    }
  };

  private readonly onSlaac = (a: SlaacAction): void => {
    switch (a.type) {
      case 'timer-start':
      case 'timer-stop':
        return this.coreTimer('slaac', a);
      case 'send':
        return this.sendIpv6(a.packet);
      case 'ra-flags':
        this.run('rs', () => this.rs?.raReceived() ?? [], this.onRs);
        this.dhcp?.raFlags(a.managed);
        if (this.o.config.mode === 'host') this.hostDhcp(a.managed, a.other);
        return;
      case 'address':
        // Optimistic (RFC 4429 2.1): deprecated in the kernel until DAD passes, so a preferred address wins source selection.
        this.emit({ type: 'progress', layer: 'ipv6', message: `address ${a.address}/${a.prefixLength} (SLAAC${a.optimistic ? ', optimistic while DAD runs' : ''})` });
        this.install({ type: 'address', source: 'slaac', address: a.address, prefixLength: 64, validLifetime: a.validLifetime, preferredLifetime: a.optimistic ? 0 : a.preferredLifetime });
        // An Optimistic address counts as usable (RFC 4429 3.1: it may be used while DAD runs), so "up" need not wait for DAD.
        return this.settle('address');
      case 'address-removed':
        if (a.reason === 'duplicate') this.log('error', 'optimistic SLAAC address is a duplicate; removed', { address: a.address });
        this.install({ type: 'remove-address', source: 'slaac', address: a.address, prefixLength: 64 });
        return this.settle('address');
      case 'dad-failed':
        return this.log('error', 'duplicate address detected on the softwire; address not used', { address: a.address });
      case 'default-route':
        this.install({ type: 'default-route', present: a.present });
        return this.settle(a.present ? 'default-route' : 'no-default-route');
      case 'dns':
        return this.install({ type: 'dns', source: 'ra', servers: a.servers, search: a.search });
      case 'mtu':
        this.log('info', 'RA MTU option', { mtu: a.mtu });
        return this.applyMtu(this.mtuPlan.setRaMtu(a.mtu));
    }
  };

  private readonly onDhcp = (a: Dhcp6Action): void => {
    switch (a.type) {
      case 'timer-start':
      case 'timer-stop':
        return this.coreTimer('dhcp6', a);
      case 'send':
        return this.sendIpv6(a.packet);
      case 'prefix':
        this.emit({ type: 'progress', layer: 'ipv6', message: `delegated prefix ${a.prefix}/${a.length}` });
        this.emit({ type: 'prefix', prefix: { prefix: a.prefix, length: a.length } });
        this.install({ type: 'delegated-prefix', prefix: a.prefix, length: a.length, preferredLifetime: a.preferredLifetime, validLifetime: a.validLifetime });
        // The installer's LAN hook numbers and advertises the LANs inside its queue.
        return this.settle('prefix');
      case 'prefix-removed':
        this.log('info', 'delegated prefix removed', { prefix: a.prefix, length: a.length, reason: a.reason });
        this.install({ type: 'no-delegated-prefix' });
        return this.feed({ type: 'prefix', present: false });
      case 'address':
        // Issue 16 item 2: DAD before use (or Optimistic use while it runs); LeaseDad installs.
        return this.run('dad', () => this.leaseDad?.leased(a.address, a.validLifetime, a.preferredLifetime) ?? [], this.onLeaseDad);
      case 'address-removed':
        return this.run('dad', () => this.leaseDad?.removed(a.address) ?? [], this.onLeaseDad);
      case 'dns':
        return this.install({ type: 'dns', source: 'dhcp6', servers: a.servers, search: a.domains });
      case 'released':
        if (this.stopStage === 'release') this.stopNext();
        return;
      case 'failed':
        return this.log('warn', 'DHCPv6', { reason: a.reason, terminal: a.terminal });
    }
  };

  /** Host mode: what to ask DHCPv6 for follows the RA's M and O flags (hostDhcp6Mode; issue 16 items 1, 2). */
  private hostDhcp(managed: boolean, other: boolean): void {
    const dhcp = this.dhcp;
    if (!dhcp) return;
    const want = hostDhcp6Mode(managed, other);
    const st = dhcp.state;
    const idle = st === 'idle' || st === 'stopped' || st === 'failed' || st === 'released';
    const holding = st === 'requesting' || st === 'bound' || st === 'renewing' || st === 'rebinding' || st === 'declining';
    if (want !== 'probe') this.dhcpProbe = false;
    if (want === 'address') {
      if (holding) return;
      if (!idle) this.run('dhcp6', () => dhcp.stop(), this.onDhcp);
      this.run('dhcp6', () => dhcp.start({ mode: 'stateful', solicitMaxRc: 0 }), this.onDhcp);
    } else if (want === 'information') {
      // A binding (or a Solicit under way) brings the DNS too.
      if (!idle) return;
      this.run('dhcp6', () => dhcp.start({ mode: 'stateless' }), this.onDhcp);
    } else if (st === 'idle') {
      this.dhcpProbe = true;
      this.run('dhcp6', () => dhcp.start({ mode: 'stateful', solicitMaxRc: HOST_PROBE_SOLICITS }), this.onDhcp);
    }
  }

  private leaseNd(payload: Buffer): LeaseDadAction[] {
    if (!this.leaseDad) return [];
    try {
      return this.leaseDad.receive(parseNdPacket(payload));
    } catch (e) {
      if (e instanceof Ipv6DecodeError) return []; // counted by SLAAC, which saw the same packet
      throw e;
    }
  }

  private readonly onLeaseDad = (a: LeaseDadAction): void => {
    switch (a.type) {
      case 'timer-start':
      case 'timer-stop':
        return this.coreTimer('dad', a);
      case 'send':
        return this.sendIpv6(a.packet);
      case 'install':
        this.emit({ type: 'progress', layer: 'ipv6', message: `address ${a.address}/128 (DHCPv6${a.optimistic ? ', optimistic while DAD runs' : ''})` });
        this.install({ type: 'address', source: 'dhcp6', address: a.address, prefixLength: 128, validLifetime: a.validLifetime, preferredLifetime: a.preferredLifetime });
        // Host mode with M=1 (no SLAAC): the IA_NA address is the global address "up" waits for; Optimistic counts (RFC 4429 3.1).
        return this.settle('address');
      case 'uninstall':
        this.install({ type: 'remove-address', source: 'dhcp6', address: a.address, prefixLength: 128 });
        return this.settle('address');
      case 'decline':
        this.log('error', 'DHCPv6 address is a duplicate on the softwire; declining it (RFC 8415 18.2.8)', { address: a.address });
        return this.run('dhcp6', () => this.dhcp?.decline(a.address) ?? [], this.onDhcp);
    }
  };

  // ------------------------------------------------------------------ IPv4

  private ipcpUp(r: IpcpLinkResult): void {
    this.ipv4Result = r;
    this.emit({
      type: 'progress',
      layer: 'ipv4',
      message: `IPCP up: ${r.address} peer ${r.peer}${r.dns.length ? ` dns ${r.dns.join(' ')}` : ''}${r.carryTraffic ? '' : ' (IPv4 not routed: IPv6 softwire)'}`,
    });
    if (r.carryTraffic) {
      this.takeScMru();
      this.install({ type: 'tun-up', mtu: this.mtuPlan.mtu, linkLocal: null });
      this.install({ type: 'ipv4', address: r.address, peer: r.peer, dns: r.dns });
    }
    // Usable once the TUN, its address and routes are in the kernel.
    this.settle('ipv4');
  }

  // -------------------------------------------------------------- teardown

  /**
   * Graceful stop within `budgetMs`: DHCPv6 Release, LCP Terminate, then StopCCN,
   * each waited for briefly, in that order. Then everything above L2TP ends
   * (`stopped`); the tunnel's own end runs on until the L2TP core reports `closed`
   * (our StopCCN acknowledged, or the linger after the SC's StopCCN spent; RFC
   * 2661 5.7) or RETIRE_CAP_MS, so the StopCCN is retransmitted (RFC 2661 5.8).
   */
  private stop(release: boolean, budgetMs: number): void {
    if (this.stopStage !== null || this.retired) return;
    const wasUp = !this.finished;
    this.finished = true;
    this.arm('stop:budget', budgetMs);
    // Releasing the prefix is for leaving; a reconnect wants the same prefix back (the LAN keeps it meanwhile).
    const dhcp = this.dhcp;
    if (wasUp && release && dhcp && dhcp.status().state !== 'idle') {
      this.stopStage = 'release';
      this.arm('stop:wait', RELEASE_WAIT_MS);
      return this.run('dhcp6', () => dhcp.release(), this.onDhcp);
    }
    this.stopStage = 'release';
    this.stopNext(wasUp);
  }

  /** The current goodbye is over (answered, or its wait spent): the next one. */
  private stopNext(wasUp = true): void {
    const stage = this.stopStage;
    if (stage === null || this.retired) return;
    this.cancel('stop:wait');
    const ppp = this.ppp;
    if (stage === 'release' && wasUp && ppp && ppp.phase !== 'dead') {
      this.stopStage = 'terminate';
      this.arm('stop:wait', TERMINATE_WAIT_MS);
      return this.run('ppp', () => ppp.close('administrative shutdown', this.now), this.onPpp);
    }
    if (stage === 'release' || stage === 'terminate') {
      this.stopStage = 'stopccn';
      const t = this.lac.status().tunnel.state;
      if (t === 'established' || t === 'wait-ctl-reply') this.run('l2tp', () => this.lac.close(this.closeCode ?? undefined), this.onLac);
      // Until the SC acknowledges our StopCCN (retransmitted by the core as RFC 2661 5.8 says), or the budget ends.
      const tt = this.lac.status().tunnel;
      if (tt.state === 'closing' && tt.unacknowledged > 0) return;
    }
    this.retire();
  }

  /** Everything above L2TP ends now; L2TP keeps its socket until the core says `closed` or the cap. */
  private retire(): void {
    if (this.retired) return;
    this.retired = true;
    this.finished = true;
    this.stopStage = null;
    this.tun = 'none';
    this.push({ type: 'close-tun' });
    // Only L2TP runs on: the other cores' timers would fire into nothing.
    for (const k of [...this.armed]) if (!k.startsWith('l2tp:')) this.cancel(k);
    this.push({ type: 'stopped' });
    const t = this.lac.status().tunnel.state;
    if (t === 'closed' || t === 'idle') return this.close();
    // A bound, whatever the core does: the longest linger is one retransmission cycle.
    this.arm('retire:cap', RETIRE_CAP_MS);
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    this.finished = true;
    for (const k of [...this.armed]) this.cancel(k);
    this.push({ type: 'closed' });
  }

  // ----------------------------------------------------------------- status

  get linkLocal(): string | null {
    return this.linkLocalAddr;
  }

  /** The PPP link's protocols a fast path may carry (false before PPP or after retiring). */
  canCarry(protocol: number): boolean {
    return !this.retired && (this.ppp?.canCarry(protocol) ?? false);
  }

  /** What status shows of this attempt, from the cores (times are monotonic ms). */
  status() {
    return {
      lac: this.lac.status(),
      ppp: this.ppp?.status() ?? null,
      ipv4: this.ipv4Result,
      mtu: { mtu: this.mtuPlan.mtu, limitedBy: this.mtuPlan.limitedBy },
      setup: this.setup.status(),
      slaacDrops: this.slaac?.status().drops ?? null,
      dhcpIgnored: this.dhcp?.status().counters.ignored ?? null,
      dhcpState: this.dhcp?.state ?? null,
      stopping: this.stopStage,
      retired: this.retired,
      closed: this.closed,
    };
  }
}

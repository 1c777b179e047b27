import type { Config } from '../config/schema';
import type { Secrets } from '../config/load';
import type { TimerAction } from '../core/actions';
import { Lac, type LacAction } from '../l2tp/lac';
import { PppLink, type LinkAction, type IpcpLinkResult } from '../ppp/link';
import { PROTO } from '../ppp/frame';
import { earlyResendMs } from '../ppp/automaton';
import { classifyControl, linkLocalFromIid, type Prefix } from '../ipv6/packet';
import { classifyAuthCdn } from '../l2tp/result-codes';
import { MtuPlan, tunSlotSize } from '../core/mtu-plan';
import { DataCounters } from '../dataplane/counters';
import { parseEndpointKey } from '../io/udp-socket';
import { type Phase, SessionCore, type SessionInput } from './session-core';
import { type Ipv6Host, Ipv6Provisioning } from './attempt-ipv6';
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
  /** RS, SLAAC, DHCPv6 and lease DAD, once IPV6CP is up. */
  private ipv6: Ipv6Provisioning | null = null;
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
    } catch (e) {
      this.counters.drops[`${core}-exception`] = (this.counters.drops[`${core}-exception`] ?? 0) + 1;
      this.log('error', 'protocol core threw; input dropped', { core, err: e instanceof Error ? e.message : String(e) });
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
    if (core === 'dhcp6') this.ipv6?.dnsPending();
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
    rs: (n) => this.ipv6?.timers.rs(n),
    slaac: (n) => this.ipv6?.timers.slaac(n),
    dhcp6: (n) => this.ipv6?.timers.dhcp6(n),
    dad: (n) => this.ipv6?.timers.dad(n),
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
      const kind = classifyControl(payload);
      if (kind === 'ra' || kind === 'dhcpv6-client' || kind === 'ns' || kind === 'na') {
        this.counters.toCores++;
        this.ipv6?.receive(kind, payload);
        // RA and DHCPv6 are ours; the kernel still answers the SC's own neighbour probes.
        if (kind === 'ra' || kind === 'dhcpv6-client') return;
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
    this.ipv6?.setLinkMtu(this.mtuPlan.linkMtu);
    if (this.tun === 'open') this.install({ type: 'tun-mtu', mtu });
  }

  // ------------------------------------------------------------------ IPv6

  private ipv6cpUp(ourIid: Buffer, peerIid: Buffer): void {
    const ll = linkLocalFromIid(ourIid);
    this.linkLocalAddr = ll;
    this.emit({ type: 'progress', layer: 'ipv6', message: `IPV6CP up: link-local ${ll}, SC ${linkLocalFromIid(peerIid)}` });
    this.takeScMru();
    this.install({ type: 'tun-up', mtu: this.mtuPlan.mtu, linkLocal: ll });
    const o = this.o;
    this.ipv6 = new Ipv6Provisioning(
      { config: o.config, duid: o.duid, previousPrefix: o.previousPrefix, random: o.random, clock: this.clock, ourIid, linkLocal: ll, linkMtu: this.mtuPlan.linkMtu },
      this.ipv6Host,
    );
    this.ipv6.start();
  }

  /** The hooks the IPv6 part reaches the outside through. */
  private readonly ipv6Host: Ipv6Host = {
    run: (core, input, handle) => this.run(core, input, handle),
    timer: (core, a) => this.coreTimer(core, a),
    sendIpv6: (p) => this.sendIpv6(p),
    emit: (ev) => this.emit(ev),
    log: (level, msg, data) => this.log(level, msg, data),
    install: (op) => this.install(op),
    settle: (what) => this.settle(what),
    feed: (ev) => this.feed(ev),
    raMtu: (mtu) => this.applyMtu(this.mtuPlan.setRaMtu(mtu)),
    released: () => {
      if (this.stopStage === 'release') this.stopNext();
    },
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
    const ipv6 = this.ipv6;
    if (wasUp && release && ipv6?.releasable) {
      this.stopStage = 'release';
      this.arm('stop:wait', RELEASE_WAIT_MS);
      return ipv6.release();
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
      ...(this.ipv6?.status() ?? { slaacDrops: null, dhcpIgnored: null }),
      stopping: this.stopStage,
      retired: this.retired,
      closed: this.closed,
    };
  }
}

import { randomBytes } from 'node:crypto';
import type { Config } from '../config/schema';
import type { Secrets } from '../config/load';
import { applyTimer, type Scheduler, TrackedScheduler } from '../core/scheduler';
import { isTimerAction, type TimerAction } from '../core/actions';
import { Lac, type LacAction } from '../l2tp/lac';
import { PppLink, type LinkAction, type IpcpLinkResult } from '../ppp/link';
import { PROTO } from '../ppp/frame';
import { classifyControl, linkLocalFromIid, type Prefix } from '../ipv6/packet';
import { Slaac, type SlaacAction } from '../ipv6/slaac';
import { RouterSolicitor, type RsAction } from '../ipv6/rs';
import { Dhcp6Client, type Dhcp6Action, HOST_PROBE_SOLICITS, hostDhcp6Mode } from '../ipv6/dhcp6-client';
import { LeaseDad, type LeaseDadAction } from '../ipv6/dad';
import { parseNdPacket } from '../ipv6/nd';
import { Ipv6DecodeError } from '../ipv6/errors';
import { earlyResendMs } from '../ppp/automaton';
import { classifyAuthCdn } from '../l2tp/result-codes';
import { MtuPlan, tunSlotSize } from '../core/mtu-plan';
import type { Logger } from '../log';
import type { DatagramTransport, Endpoint } from '../io/udp-socket';
import { DataCounters } from '../dataplane/counters';
import { Dataplane, type FrameTun, type TunBatch } from '../dataplane/dataplane';
import type { TunLike } from '../io/tun';
import { NativeUdpTransport } from '../dataplane/udp';
import { type OffloadEdge, offloadStatus } from '../dataplane/offloads';
import { Installer } from './installer';
import { DropLog, guarded } from '../io/drops';
import { type Milestone, type Phase, SessionCore, type SessionInput } from './session-core';
import type { Status } from './status';

/**
 * One attempt at a softwire: a tunnel, its session, the PPP link over it and
 * what gets provisioned once the NCPs are up. It wires the sans-I/O cores to
 * each other and to the edges (UDP, TUN, netlink). A Connection is used once:
 * after it reports `down`, the agent builds a new one.
 */

/** IPv4 + UDP + L2TP (no optional fields) + PPP (FF 03 + protocol): RFC 5571 5.2.1 gives 1460 on a 1500 link. */
export const OVERHEAD_IPV4 = 20 + 8 + 8 + 4;
export const OVERHEAD_IPV6 = 40 + 8 + 8 + 4;

/** The layer a setup phase that overran is reported under. */
const PHASE_LAYER: Record<Phase, Layer> = { tunnel: 'tunnel', session: 'session', lcp: 'ppp', auth: 'auth', ncp: 'ppp' };

/** Longest a cleared tunnel keeps its socket to retransmit StopCCN and answer the SC (RFC 2661 5.7 linger) after the next dial began. */
const RETIRE_CAP_MS = 40_000;

export type Layer = 'transport' | 'tunnel' | 'session' | 'ppp' | 'auth' | 'ipv6' | 'ipv4' | 'wan' | 'ipsec';

export interface DownInfo {
  layer: Layer;
  reason: string;
  /** Retrying unchanged will not help (bad credentials, bad secret, protocol version). */
  permanent?: boolean;
  /** The SC asked us to try another SC. */
  retryElsewhere?: boolean;
}

export type ConnectionEvent =
  | { type: 'progress'; layer: Layer; message: string }
  /** The link is usable (see session-core.ts); `degraded` names what the SC did not provide in time. */
  | { type: 'up'; degraded?: string | null }
  /** While up, what is missing changed. */
  | { type: 'degraded'; reason: string | null }
  | { type: 'prefix'; prefix: Prefix }
  | { type: 'down'; info: DownInfo };

export type { TunLike } from '../io/tun';

export interface ConnectionDeps {
  config: Config;
  secrets: Secrets;
  log: Logger;
  scheduler: Scheduler;
  transport: DatagramTransport;
  /** Opens the TUN device when the first NCP comes up; receive slots of slotSize bytes (issue 16 item 3). */
  openTun: (name: string, opts?: { slotSize?: number }) => TunLike;
  installer: Installer;
  duid: Uint8Array;
  previousPrefix?: Prefix;
  /** Softwire MTU (TUN MTU and LCP MRU). */
  mtu: number;
  emit: (ev: ConnectionEvent) => void;
}

type Core = 'l2tp' | 'ppp' | 'rs' | 'slaac' | 'dhcp6' | 'dad';

export class Connection {
  private readonly lac: Lac;
  private ppp: PppLink | null = null;
  private tun: TunLike | null = null;
  private dataplane: Dataplane | null = null;
  private rs: RouterSolicitor | null = null;
  private slaac: Slaac | null = null;
  private dhcp: Dhcp6Client | null = null;
  /** Issue 16 item 2: DAD (and Optimistic use, item 10) for DHCPv6 IA_NA addresses. */
  private leaseDad: LeaseDad | null = null;
  /** Host mode: the DHCPv6 exchange is the bounded M=O=0 probe, not one the RA announced. */
  private dhcpProbe = false;
  private linkLocal: string | null = null;
  private finished = false;
  /** Scheduler time of start(); tunnel+session setup time bounds the round trip (issue 16 item 9). */
  private dialledAt = 0;
  private ipv4: IpcpLinkResult | null = null;
  /** Phases, their deadlines and when the link is usable: the pure core this driver feeds. */
  private readonly setup: SessionCore;
  private released: (() => void) | null = null;
  private pppClosed: (() => void) | null = null;
  readonly counters = new DataCounters();
  /** Issue 16 item 3: the MTU from the WAN/config, the SC's MRU, sequencing and the RA. */
  private readonly mtuPlan: MtuPlan;
  private sequencingSeen = false;
  private readonly log: Logger;
  /** This connection's timers (every core's, the setup deadline, the stop waits). */
  private readonly sched: TrackedScheduler;
  /** Exceptions the edges threw (TUN, UDP, the data fast path): counted as io.*, never fatal. */
  private readonly io: DropLog;

  constructor(
    readonly sc: Endpoint,
    private readonly d: ConnectionDeps,
  ) {
    this.log = d.log;
    this.sched = new TrackedScheduler(d.scheduler);
    this.io = new DropLog(d.log, () => this.sched.now());
    const c = d.config;
    this.mtuPlan = new MtuPlan({ base: d.mtu, derived: !c.mtu });
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
      secret: d.secrets.tunnelSecret,
      helloIntervalMs: c.helloInterval * 1000,
      channel: {
        initialTimeoutMs: c.retransmitInitial * 1000,
        maxTimeoutMs: c.retransmitCap * 1000,
        maxRetries: c.retransmitRetries,
      },
    });
    d.transport.onDatagram((data, from) => this.run('l2tp', () => this.lac.receive(data, from)));
  }

  /** The local address the tunnel runs from. */
  localAddress(): string {
    return this.d.transport.local.address;
  }

  start(): void {
    this.dialledAt = this.sched.now();
    this.d.emit({ type: 'progress', layer: 'tunnel', message: `dialling ${this.sc.address}:${this.sc.port}` });
    this.feed({ type: 'dialed' });
    this.run('l2tp', () => this.lac.open());
  }

  /** One input to the setup core, and its actions carried out. */
  private feed(ev: SessionInput): void {
    if (this.finished) return;
    const sched = this.sched;
    for (const a of this.setup.input(ev, sched.now())) {
      switch (a.type) {
        case 'arm':
          sched.set('setup:deadline', a.at - sched.now(), () => this.feed({ type: 'timer' }));
          break;
        case 'disarm':
          sched.clear('setup:deadline');
          break;
        case 'expired':
          // StopCCN result 2 (general error) with the reason, so the SC's log says why we left.
          this.closeCode = { result: 2, error: 0, message: a.message };
          this.fail({ layer: PHASE_LAYER[a.phase], reason: a.message });
          break;
        case 'up':
          if (a.degraded) this.log.warn({ degraded: a.degraded }, 'up, degraded');
          this.d.emit({ type: 'up', degraded: a.degraded });
          break;
        case 'degraded':
          this.d.emit({ type: 'degraded', reason: a.reason });
          break;
      }
    }
  }

  /** Feeds `ev` once the installer has put into the kernel what was queued before it. */
  private feedWhenSettled(ev: () => SessionInput): void {
    void this.d.installer.settled().then(() => this.feed(ev()));
  }

  private hasGlobalAddress(): boolean {
    return this.d.installer.ipv6Status('').address !== null;
  }

  // ------------------------------------------------------------ action plumbing

  /** Runs one core input and carries out its actions; nothing thrown escapes into the event loop. */
  private run(core: Core, input: () => readonly { type: string }[]): void {
    if (this.disposed || (this.retired && core !== 'l2tp')) return;
    if (this.finished && core !== 'l2tp' && core !== 'ppp' && core !== 'dhcp6') return;
    let actions: readonly { type: string }[];
    try {
      actions = input();
    } catch (e) {
      this.count(`${core}-exception`);
      this.log.error({ err: e, core }, 'protocol core threw; input dropped');
      return;
    }
    for (const a of actions) {
      try {
        if (isTimerAction(a)) applyTimer(this.sched, core, a as TimerAction, (t) => this.timer(core, t));
        else this.act(core, a);
      } catch (e) {
        // An edge that threw while carrying out an action: counted, the rest still runs.
        this.io.count(`${core}-action-exception`, e);
      }
    }
    if (core === 'ppp' && this.ppp) this.feed({ type: 'ppp-phase', phase: this.ppp.phase });
    if (core === 'dhcp6' && this.dhcp) {
      const ds = this.dhcp.status();
      const st = ds.state;
      // A host's M=O=0 probe (issue 16 item 1) asks a server the SC did not announce: "up" does not wait for it.
      // Nor does a Solicit the server already answered with no lease (RFC 8415 18.2.9: that Advertise, and
      // its DNS, is ignored): it keeps soliciting for an IA_NA on its backoff but will not bring DNS soon.
      const leaseless = st === 'soliciting' && (ds.counters.ignored['advertise-without-leases'] ?? 0) > 0;
      const probing = this.dhcpProbe && st === 'soliciting';
      this.feed({ type: 'dns-pending', pending: !probing && !leaseless && (st === 'soliciting' || st === 'requesting' || st === 'informing') });
    }
    if (core === 'l2tp' && this.acked && this.lac.status().tunnel.unacknowledged === 0) {
      const done = this.acked;
      this.acked = null;
      done();
    }
  }

  private timer(core: Core, name: string): void {
    const now = this.sched.now();
    switch (core) {
      case 'l2tp':
        return this.run(core, () => this.lac.timerFired(name));
      case 'ppp':
        return this.run(core, () => this.ppp?.timerFired(name, now) ?? []);
      case 'rs':
        return this.run(core, () => this.rs?.timerFired(name) ?? []);
      case 'slaac':
        return this.run(core, () => this.slaac?.timerFired(name) ?? []);
      case 'dhcp6':
        return this.run(core, () => this.dhcp?.timerFired(name) ?? []);
      case 'dad':
        return this.run(core, () => this.leaseDad?.timerFired(name) ?? []);
    }
  }

  private act(core: Core, a: { type: string }): void {
    switch (core) {
      case 'l2tp':
        return this.onLac(a as LacAction);
      case 'ppp':
        return this.onPpp(a as LinkAction);
      case 'rs':
        return this.onRs(a as RsAction);
      case 'slaac':
        return this.onSlaac(a as SlaacAction);
      case 'dhcp6':
        return this.onDhcp(a as Dhcp6Action);
      case 'dad':
        return this.onLeaseDad(a as LeaseDadAction);
    }
  }

  private count(reason: string): void {
    this.counters.drops[reason] = (this.counters.drops[reason] ?? 0) + 1;
  }

  /** Every datagram we send goes out here: a send the kernel refuses (EPERM from a firewall rule) is a drop, not an exception. */
  private sendUdp(bytes: Uint8Array): void {
    guarded(this.io, 'udp-send', undefined, () => this.d.transport.send(bytes));
  }

  // ------------------------------------------------------------------ L2TP

  private onLac(a: LacAction): void {
    switch (a.type) {
      case 'send':
        this.sendUdp(a.bytes);
        return;
      case 'peer-address':
        this.d.transport.retarget(a.from);
        if (a.from !== `${this.sc.address}:${this.sc.port}`) this.log.info({ from: a.from }, 'SC answers from another port or address; following it');
        return;
      case 'tunnel-up':
        // Issue 16 item 7: another address of the SC only with tunnel authentication (the transport admits it only then; belt and braces).
        if (this.d.transport.remote.address !== this.sc.address && !a.info.authenticated) {
          this.fail({ layer: 'tunnel', reason: `the SC answered from ${this.d.transport.remote.address} without tunnel authentication` });
          return;
        }
        this.d.emit({
          type: 'progress',
          layer: 'tunnel',
          message: `tunnel up (local id ${a.info.localTunnelId}, SC id ${a.info.remoteTunnelId}, SC "${a.info.peerHostName}"${a.info.authenticated ? ', authenticated' : ''})`,
        });
        this.feed({ type: 'tunnel-up' });
        return;
      case 'session-up':
        this.d.emit({ type: 'progress', layer: 'session', message: `session up (local id ${a.info.localSessionId}, SC id ${a.info.remoteSessionId})` });
        this.feed({ type: 'session-up' });
        this.startPpp();
        return;
      case 'frame':
        this.checkSequencing();
        if (this.ppp) this.run('ppp', () => this.ppp!.receive(Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength), this.sched.now()));
        return;
      case 'down': {
        const layer = a.layer === 'tunnel' ? 'tunnel' : 'session';
        const detail = [a.message, a.resultCode !== undefined ? `result ${a.resultCode}` : '', a.errorCode !== undefined ? `error ${a.errorCode}` : '']
          .filter(Boolean)
          .join(', ');
        // Some SCs (l2tpns among them) answer a rejected login with a CDN alone, no CHAP
        // Failure or PAP Nak. Issue 16 item 6: the CDN's codes tell a rejected login from
        // a temporary problem (result 4 and the like), which is retried.
        if (layer === 'session' && a.reason === 'peer-cdn' && this.ppp?.phase === 'authenticate') {
          const v = classifyAuthCdn(a.resultCode, a.errorCode);
          if (v.kind === 'auth-rejected') {
            this.fail({ layer: 'auth', reason: `authentication failed: the SC closed the session during authentication (${detail})`, permanent: true });
            return;
          }
          this.fail({
            layer: 'session',
            reason: `the SC closed the session during authentication, not a login rejection (${detail})`,
            permanent: v.kind === 'permanent',
            retryElsewhere: v.kind === 'transient' && v.retryElsewhere,
          });
          return;
        }
        this.fail({
          layer,
          reason: `${a.reason}${detail ? ` (${detail})` : ''}`,
          permanent: a.permanent || a.reason === 'auth-failed',
          retryElsewhere: a.retryElsewhere,
        });
        return;
      }
      case 'closed':
        // Teardown over (acknowledged, linger spent): a retired connection lets go of its socket.
        if (this.retired) this.dispose();
        return;
    }
  }

  // ------------------------------------------------------------------- PPP

  private startPpp(): void {
    const c = this.d.config;
    const allow = c.auth === 'chap' ? (['chap-md5'] as const) : c.auth === 'pap' ? (['pap'] as const) : undefined;
    const creds =
      c.user && this.d.secrets.password !== undefined
        ? { username: c.user, password: this.d.secrets.password, ...(allow ? { allow: [...allow] } : {}) }
        : undefined;
    this.ppp = new PppLink({
      randomBytes: (n) => randomBytes(n),
      mru: this.d.mtu,
      credentials: creds,
      policy: c.ncp,
      echo: { intervalMs: c.lcpEchoInterval * 1000, failures: c.lcpEchoFailure, anyTrafficIsLiveness: false },
      ipv4Traffic: c.ncp !== 'ipv6' || c.ipv4DefaultRoute,
      // Issue 16 item 9: the SC's first Configure-Request while ours is unanswered means ours
      // was lost; resend after the tunnel+session setup time (at least two round trips).
      automaton: { peerRequestResendMs: earlyResendMs(this.sched.now() - this.dialledAt) },
    });
    this.run('ppp', () => this.ppp!.lowerUp(this.sched.now()));
  }

  private onPpp(a: LinkAction): void {
    switch (a.type) {
      case 'send': {
        const bytes = this.lac.sendFrame(a.frame);
        if (bytes) this.sendUdp(bytes);
        return;
      }
      case 'auth-ok':
        this.d.emit({ type: 'progress', layer: 'auth', message: `authenticated with ${a.protocol}${a.message ? `: ${a.message}` : ''}` });
        return;
      case 'auth-failed':
        this.fail({ layer: 'auth', reason: `authentication failed: ${a.message}`, permanent: true });
        return;
      case 'ncp-up':
        if (a.ncp === 'ipv6cp') this.ipv6cpUp(a.result.ourIid, a.result.peerIid);
        else this.ipcpUp(a.result);
        this.feed({ type: 'ncp-up', ncp: a.ncp });
        return;
      case 'ncp-down':
        // After stop() or a failure the NCPs close as a consequence: a warning only when one goes down by itself.
        if (this.finished) this.log.info({ ncp: a.ncp, reason: a.reason }, 'NCP down');
        else this.log.warn({ ncp: a.ncp, reason: a.reason }, 'NCP down');
        return;
      case 'data':
        this.fromPeer(a.protocol, a.payload);
        return;
      case 'down':
        this.fail({ layer: 'ppp', reason: a.reason });
        return;
      case 'closed':
        this.pppClosed?.();
        if (!this.finished) this.fail({ layer: 'ppp', reason: a.reason });
        return;
    }
  }

  // -------------------------------------------------------------- data path

  private ensureTun(): TunLike | null {
    if (this.tun) return this.tun;
    let tun: TunLike;
    try {
      tun = this.d.openTun(this.d.config.tunDevice, { slotSize: tunSlotSize(this.mtuPlan.ceiling) });
    } catch (e) {
      this.fail({ layer: 'ppp', reason: `cannot open TUN device ${this.d.config.tunDevice}: ${(e as Error).message}` });
      return null;
    }
    this.tun = tun;
    const transport = this.d.transport;
    // The fast path needs both native edges; with Node's dgram socket every packet goes through the cores.
    if (tun.writeFrames && transport instanceof NativeUdpTransport) {
      const dp = new Dataplane({
        tun: tun as FrameTun,
        udp: transport,
        lac: this.lac,
        ppp: { canCarry: (p) => this.ppp?.canCarry(p) ?? false },
        mtu: this.mtuPlan.mtu,
        counters: this.counters,
      });
      this.dataplane = dp;
      // The fast path runs inside the socket's receive callback: whatever it throws stops here.
      const io = this.io;
      transport.setSink({
        begin: () => guarded(io, 'dataplane-rx', undefined, () => dp.begin()),
        take: (buf, off, len) => guarded(io, 'dataplane-rx', true, () => dp.take(buf, off, len)),
        flush: (buf) => guarded(io, 'dataplane-rx', undefined, () => dp.flush(buf)),
      });
    }
    const dp = this.dataplane;
    tun.onPackets(
      (batch) => {
        if (dp && batch.buffer && guarded(this.io, 'dataplane-tx', true, () => dp.fromTun(batch as TunBatch))) return;
        for (let i = 0; i < batch.count; i++) guarded(this.io, 'tun-rx', undefined, () => this.fromTun(batch.packet(i)));
      },
      (e) => this.io.count('tun-read', e),
    );
    return tun;
  }

  /** A packet the kernel routed into the softwire, framed by the cores (no fast path, or sequenced data). */
  private fromTun(pkt: Uint8Array): void {
    const version = pkt[0]! >> 4;
    const protocol = version === 6 ? PROTO.IPV6 : version === 4 ? PROTO.IPV4 : 0;
    if (protocol === 0 || !this.ppp) {
      this.counters.drop('tx', 'bad-version');
      return;
    }
    const frame = this.ppp.sendData(protocol, pkt);
    if (!frame) {
      this.counters.drop('tx', version === 6 ? 'ipv6-not-open' : 'ipv4-not-carried');
      return;
    }
    const bytes = this.lac.sendFrame(frame);
    if (!bytes) {
      this.counters.drop('tx', 'no-session');
      return;
    }
    this.counters.txPackets++;
    this.counters.txOctets += pkt.length;
    this.sendUdp(bytes);
  }

  /** A packet from the SC that the fast path left to the cores: ours to handle (RA, DHCPv6, ND for DAD) or the kernel's. */
  private fromPeer(protocol: number, payload: Buffer): void {
    if (protocol === PROTO.IPV6) {
      const kind = classifyControl(payload);
      switch (kind) {
        case 'ra':
          this.counters.toCores++;
          this.run('slaac', () => this.slaac?.receive(payload) ?? []);
          return;
        case 'dhcpv6-client':
          this.counters.toCores++;
          this.run('dhcp6', () => this.dhcp?.receive(payload) ?? []);
          return;
        case 'ns':
        case 'na':
          // DAD watches both; the kernel still answers the SC's own neighbour probes.
          this.counters.toCores++;
          this.run('slaac', () => this.slaac?.receive(payload) ?? []);
          this.run('dad', () => this.leaseNd(payload));
          break;
        default:
          break;
      }
    }
    if (!this.tun) {
      this.counters.drop('rx', 'no-tun');
      return;
    }
    // The kernel refuses what is not a well-formed IP packet (EINVAL): a hostile frame, counted as io.tun-write.EINVAL.
    const tun = this.tun;
    const written = guarded(this.io, 'tun-write', null, () => tun.write(payload));
    if (written === null) return;
    if (!written) {
      this.counters.drop('rx', 'tun-queue-full');
      return;
    }
    this.counters.rxPackets++;
    this.counters.rxOctets += payload.length;
  }

  /** Sends an IPv6 packet the agent built (RS, NS, DHCPv6) over the PPP link. */
  private sendIpv6(packet: Uint8Array): void {
    const frame = this.ppp?.sendData(PROTO.IPV6, packet);
    const bytes = frame ? this.lac.sendFrame(frame) : undefined;
    if (bytes) this.sendUdp(bytes);
    else this.counters.drop('tx', 'ipv6-control-not-sent');
  }

  // ------------------------------------------------------------------ IPv6

  private ipv6cpUp(ourIid: Buffer, peerIid: Buffer): void {
    const tun = this.ensureTun();
    if (!tun) return;
    const c = this.d.config;
    this.linkLocal = linkLocalFromIid(ourIid);
    this.d.emit({ type: 'progress', layer: 'ipv6', message: `IPV6CP up: link-local ${this.linkLocal}, SC ${linkLocalFromIid(peerIid)}` });
    this.takeScMru();
    this.d.installer.tunUp(tun.name, this.mtuPlan.mtu, this.linkLocal);
    const rng = Math.random;
    const clock = () => this.sched.now();
    // Issue 16 item 10: Optimistic DAD (RFC 4429) for SLAAC and DHCPv6 addresses.
    this.slaac = new Slaac({ iid: ourIid, clock, rng, linkMtu: this.mtuPlan.linkMtu, optimistic: c.optimisticDad });
    this.leaseDad = new LeaseDad({ rng, clock, optimistic: c.optimisticDad });
    // Issue 16 item 10: no random delay before the first RS (RFC 4861 6.3.7's SHOULD spreads
    // many hosts starting on one link; a PPP link has one, and reconnects are already
    // jittered). l2tpns's one RA at IPV6CP open can arrive before our IPV6CP is open
    // and be lost, so the RS is what brings the RA: at once, not 0-1 s later.
    this.rs = new RouterSolicitor({ rng, source: this.linkLocal, maxDelayMs: 0 });
    this.dhcp = new Dhcp6Client({
      duid: this.d.duid,
      linkLocal: this.linkLocal,
      clock,
      rng,
      mode: c.mode === 'router' ? 'stateful' : 'stateless',
      requestPrefix: c.mode === 'router',
      prefixLengthHint: c.prefixLengthHint || undefined,
      previousPrefix: this.d.previousPrefix,
      // Issue 16 item 1: a host asks for IA_NA whenever it solicits (hostDhcp6 picks when).
      requestAddress: c.mode === 'router' ? 'if-managed' : 'always',
      rapidCommit: c.rapidCommit,
      requestDns: true,
      // l2tpns ignores Release; two tries keep shutdown inside its 3 s budget.
      releaseMaxRc: 1,
    });
    this.run('rs', () => this.rs!.start());
    // RFC 7084 WPD-2: a router solicits IA_PD whatever the RA's M/O flags say.
    if (c.mode === 'router') this.run('dhcp6', () => this.dhcp!.start());
  }

  private onRs(a: RsAction): void {
    if (a.type === 'send') this.sendIpv6(a.packet);
    else if (a.type === 'rs-gave-up') this.log.warn({ sent: a.sent }, 'no Router Advertisement after soliciting');
  }

  private onSlaac(a: SlaacAction): void {
    const ins = this.d.installer;
    switch (a.type) {
      case 'send':
        this.sendIpv6(a.packet);
        return;
      case 'ra-flags':
        this.run('rs', () => this.rs?.raReceived() ?? []);
        this.dhcp?.raFlags(a.managed);
        if (this.d.config.mode === 'host') this.hostDhcp(a.managed, a.other);
        return;
      case 'address':
        // Optimistic (RFC 4429 2.1): deprecated in the kernel until DAD passes, so a preferred address wins source selection.
        this.d.emit({ type: 'progress', layer: 'ipv6', message: `address ${a.address}/${a.prefixLength} (SLAAC${a.optimistic ? ', optimistic while DAD runs' : ''})` });
        ins.address('slaac', a.address, 64, a.validLifetime, a.optimistic ? 0 : a.preferredLifetime);
        // An Optimistic address counts as usable (RFC 4429 3.1: it may be used while DAD runs), so "up" need not wait for DAD.
        this.feedWhenSettled(() => ({ type: 'address', present: this.hasGlobalAddress() }));
        return;
      case 'address-removed':
        if (a.reason === 'duplicate') this.log.error({ address: a.address }, 'optimistic SLAAC address is a duplicate; removed');
        ins.removeAddress('slaac', a.address, 64);
        this.feedWhenSettled(() => ({ type: 'address', present: this.hasGlobalAddress() }));
        return;
      case 'dad-failed':
        this.log.error({ address: a.address }, 'duplicate address detected on the softwire; address not used');
        return;
      case 'default-route':
        ins.defaultRoute6(a.present);
        this.feedWhenSettled(() => ({ type: 'default-route', present: a.present }));
        return;
      case 'dns':
        ins.dns('ra', a.servers, a.search);
        return;
      case 'mtu':
        this.log.info({ mtu: a.mtu }, 'RA MTU option');
        this.applyMtu(this.mtuPlan.setRaMtu(a.mtu));
        return;
    }
  }

  private onDhcp(a: Dhcp6Action): void {
    const ins = this.d.installer;
    switch (a.type) {
      case 'send':
        this.sendIpv6(a.packet);
        return;
      case 'prefix':
        this.d.emit({ type: 'progress', layer: 'ipv6', message: `delegated prefix ${a.prefix}/${a.length}` });
        this.d.emit({ type: 'prefix', prefix: { prefix: a.prefix, length: a.length } });
        ins.delegatedPrefix({ prefix: a.prefix, length: a.length, preferredLifetime: a.preferredLifetime, validLifetime: a.validLifetime });
        // The installer's LAN hook numbers and advertises the LANs inside its queue.
        this.feedWhenSettled(() => ({ type: 'prefix', present: true }));
        return;
      case 'prefix-removed':
        this.log.info({ prefix: a.prefix, length: a.length, reason: a.reason }, 'delegated prefix removed');
        ins.delegatedPrefix(null);
        this.feed({ type: 'prefix', present: false });
        return;
      case 'address':
        // Issue 16 item 2: DAD before use (or Optimistic use while it runs); LeaseDad installs.
        this.run('dad', () => this.leaseDad?.leased(a.address, a.validLifetime, a.preferredLifetime) ?? []);
        return;
      case 'address-removed':
        this.run('dad', () => this.leaseDad?.removed(a.address) ?? []);
        return;
      case 'dns':
        ins.dns('dhcp6', a.servers, a.domains);
        return;
      case 'released':
        this.released?.();
        return;
      case 'failed':
        this.log.warn({ reason: a.reason, terminal: a.terminal }, 'DHCPv6');
        return;
    }
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

  /** A new MTU goes to the TUN, the MSS clamp, SLAAC's ceiling and the LAN's RAs. */
  private applyMtu(mtu: number | undefined): void {
    if (mtu === undefined) return;
    this.log.info({ mtu, limitedBy: this.mtuPlan.limitedBy }, 'softwire MTU changed');
    this.dataplane?.setMtu(mtu);
    this.slaac?.setLinkMtu(this.mtuPlan.linkMtu);
    if (this.tun) this.d.installer.tunMtu(mtu);
  }

  // ------------------------------------------------------- host DHCPv6 (issue 16 items 1, 2)

  /** Host mode: what to ask DHCPv6 for follows the RA's M and O flags (hostDhcp6Mode). */
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
      if (!idle) this.run('dhcp6', () => dhcp.stop());
      this.run('dhcp6', () => dhcp.start({ mode: 'stateful', solicitMaxRc: 0 }));
    } else if (want === 'information') {
      // A binding (or a Solicit under way) brings the DNS too.
      if (!idle) return;
      this.run('dhcp6', () => dhcp.start({ mode: 'stateless' }));
    } else if (st === 'idle') {
      this.dhcpProbe = true;
      this.run('dhcp6', () => dhcp.start({ mode: 'stateful', solicitMaxRc: HOST_PROBE_SOLICITS }));
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

  private onLeaseDad(a: LeaseDadAction): void {
    const ins = this.d.installer;
    switch (a.type) {
      case 'send':
        this.sendIpv6(a.packet);
        return;
      case 'install':
        this.d.emit({ type: 'progress', layer: 'ipv6', message: `address ${a.address}/128 (DHCPv6${a.optimistic ? ', optimistic while DAD runs' : ''})` });
        ins.address('dhcp6', a.address, 128, a.validLifetime, a.preferredLifetime);
        // Host mode with M=1 (no SLAAC): the IA_NA address is the global address "up" waits for; Optimistic counts (RFC 4429 3.1).
        this.feedWhenSettled(() => ({ type: 'address', present: this.hasGlobalAddress() }));
        return;
      case 'uninstall':
        ins.removeAddress('dhcp6', a.address, 128);
        this.feedWhenSettled(() => ({ type: 'address', present: this.hasGlobalAddress() }));
        return;
      case 'decline':
        this.log.error({ address: a.address }, 'DHCPv6 address is a duplicate on the softwire; declining it (RFC 8415 18.2.8)');
        this.run('dhcp6', () => this.dhcp?.decline(a.address) ?? []);
        return;
    }
  }

  // ------------------------------------------------------------------ IPv4

  private ipcpUp(r: IpcpLinkResult): void {
    this.ipv4 = r;
    this.d.emit({
      type: 'progress',
      layer: 'ipv4',
      message: `IPCP up: ${r.address} peer ${r.peer}${r.dns.length ? ` dns ${r.dns.join(' ')}` : ''}${r.carryTraffic ? '' : ' (IPv4 not routed: IPv6 softwire)'}`,
    });
    if (r.carryTraffic) {
      const tun = this.ensureTun();
      if (!tun) return;
      this.takeScMru();
      this.d.installer.tunUp(tun.name, this.mtuPlan.mtu, null);
      this.d.installer.ipv4(r.address, r.peer, r.dns);
    }
    // Usable once the TUN, its address and routes are in the kernel.
    this.feedWhenSettled(() => ({ type: 'ipv4-ready' }));
  }

  // -------------------------------------------------------------- teardown

  private fail(info: DownInfo): void {
    if (this.finished) return;
    this.finished = true;
    this.d.emit({ type: 'down', info });
  }

  /**
   * Graceful stop, bounded by `budgetMs`: DHCPv6 Release, LCP Terminate, CDN and
   * StopCCN go out in that order, each waited for briefly, and the TUN is closed so
   * the next attempt can open it. The tunnel's own end outlives the returned promise:
   * until the L2TP core reports `closed` (our StopCCN acknowledged, or the linger
   * after the SC's StopCCN spent; RFC 2661 5.7) the socket stays open to retransmit
   * and to answer the SC's retransmissions with ZLBs, while the agent may already
   * dial again on a new socket. `onReleased` fires when that is over.
   */
  async stop(budgetMs = 2000, opts: { release?: boolean } = {}): Promise<void> {
    const wasUp = !this.finished;
    this.finished = true;
    const sched = this.sched;
    const deadline = sched.now() + budgetMs;
    let seq = 0;
    /** Waits for `arm`'s signal, at most `ms` and never past the deadline; the timer is the connection's own. */
    const wait = (ms: number, arm: (done: () => void) => void) =>
      new Promise<void>((res) => {
        const key = `stop:${seq++}`;
        let over = false;
        const done = () => {
          if (over) return;
          over = true;
          sched.clear(key);
          res();
        };
        sched.set(key, Math.max(0, Math.min(ms, deadline - sched.now())), done);
        arm(done);
      });
    try {
      // Releasing the prefix is for leaving; a reconnect wants the same prefix back (the LAN keeps it meanwhile).
      if (wasUp && opts.release !== false && this.dhcp && this.dhcp.status().state !== 'idle') {
        await wait(400, (done) => {
          this.released = done;
          this.run('dhcp6', () => this.dhcp!.release());
        });
      }
      if (wasUp && this.ppp && this.ppp.phase !== 'dead') {
        await wait(500, (done) => {
          this.pppClosed = done;
          this.run('ppp', () => this.ppp!.close('administrative shutdown', sched.now()));
        });
      }
      const t = this.lac.status().tunnel.state;
      if (t === 'established' || t === 'wait-ctl-reply') this.run('l2tp', () => this.lac.close(this.closeCode ?? undefined));
      // Until the SC acknowledges our StopCCN (retransmitted by the core as RFC 2661 5.8 says), or the budget ends.
      if (this.lac.status().tunnel.state === 'closing' && this.lac.status().tunnel.unacknowledged > 0) {
        await wait(Number.POSITIVE_INFINITY, (done) => (this.acked = done));
      }
    } finally {
      this.retire();
    }
  }

  /** Why this attempt is being cleared, sent in our StopCCN (set when a phase deadline expires). */
  private closeCode: { result: number; error?: number; message?: string } | null = null;
  /** Called once our StopCCN is acknowledged. */
  private acked: (() => void) | null = null;
  private retired = false;
  private releasedCb: (() => void) | null = null;
  private disposed = false;

  /** Notified when the tunnel's end is over and the socket closed (at once if it already is). */
  onReleased(cb: () => void): void {
    if (this.disposed) cb();
    else this.releasedCb = cb;
  }

  /** Everything above L2TP ends now; L2TP keeps its socket until the core says `closed` or the cap. */
  private retire(): void {
    if (this.retired || this.disposed) return;
    this.retired = true;
    this.closeTun();
    // Only L2TP runs on: the other cores' timers would fire into nothing.
    this.sched.clearWhere((k) => !k.startsWith('l2tp:'));
    const t = this.lac.status().tunnel.state;
    if (t === 'closed' || t === 'idle') {
      this.dispose();
      return;
    }
    // A bound, whatever the core does: the longest linger is one retransmission cycle.
    this.sched.set('retire:cap', RETIRE_CAP_MS, () => this.dispose());
  }

  private closeTun(): void {
    this.dataplane = null;
    try {
      this.tun?.close();
    } catch {
      /* already closed */
    }
    this.tun = null;
  }

  /** Releases timers, TUN and socket at once (no goodbyes); installed state is the installer's to clear. */
  dispose(): void {
    this.finished = true;
    this.retired = true;
    this.sched.clearAll();
    this.closeTun();
    if (!this.disposed) {
      this.disposed = true;
      guarded(this.io, 'udp-close', undefined, () => this.d.transport.close());
      const cb = this.releasedCb;
      this.releasedCb = null;
      cb?.();
    }
  }

  // ----------------------------------------------------------------- status

  fillStatus(s: Status): void {
    const l = this.lac.status();
    s.sc = { address: this.d.transport.remote.address, port: this.d.transport.remote.port };
    s.local = this.d.transport.local;
    s.tunnel = { localId: l.tunnel.localId, remoteId: l.tunnel.remoteId ?? 0, state: l.tunnel.state };
    s.session = l.session.localId !== undefined ? { localId: l.session.localId, remoteId: l.session.remoteId ?? 0, state: l.session.state } : null;
    const { drops: l2drops, ...l2 } = l.counters;
    s.counters.l2tp = { ...l2 };
    s.counters.drops = {
      ...prefixKeys('l2tp', l2drops),
      ...prefixKeys('transport', this.d.transport.drops),
      ...prefixKeys('data', this.counters.drops),
      ...prefixKeys('io', this.io.counts),
    };
    const off = offloadStatus(this.tun as OffloadEdge | null, this.d.transport as OffloadEdge);
    s.counters.data = { ...this.counters.snapshot(), truncatedDrops: this.tun?.truncatedDrops ?? 0, ...off.counters };
    s.offloads = off.offloads;
    s.mtu = { mtu: this.mtuPlan.mtu, limitedBy: this.mtuPlan.limitedBy };
    if (this.ppp) {
      const p = this.ppp.status();
      s.ppp = {
        lcp: p.lcp,
        ncp: { ipv6cp: p.ipv6cp, ipcp: p.ipcp },
        auth: p.auth ? `${p.auth.protocol} ${p.auth.state}` : 'none',
        mru: p.negotiated.peerMru || null,
        echoRttMs: p.echo.lastRttMs ?? null,
      };
      const { drops: pdrops, ...pc } = p.counters;
      s.counters.ppp = { ...pc };
      Object.assign(s.counters.drops, prefixKeys('ppp', pdrops));
    }
    if (this.ipv4) s.ipv4 = { address: this.ipv4.address, peer: this.ipv4.peer, dns: this.ipv4.dns, carryTraffic: this.ipv4.carryTraffic };
    if (this.linkLocal) {
      s.ipv6 = this.d.installer.ipv6Status(this.linkLocal);
    }
    // RA/ND and DHCPv6 the cores refused: without these, hostile or broken SC-side packets vanish unseen.
    if (this.slaac) Object.assign(s.counters.drops, prefixKeys('ipv6', this.slaac.status().drops));
    if (this.dhcp) Object.assign(s.counters.drops, prefixKeys('dhcp6', this.dhcp.status().counters.ignored));
    const st = this.setup.status();
    // Monotonic milestones as wall-clock times, so a user sees where the setup time went.
    const nowMono = this.sched.now();
    const wall = Date.now();
    const iso = (t: number | null) => (t === null ? null : new Date(wall - (nowMono - t)).toISOString());
    s.phases = Object.fromEntries(Object.entries(st.at).map(([k, v]) => [k, iso(v)])) as Record<Milestone, string | null>;
    s.degraded = st.degraded;
  }
}

function prefixKeys(p: string, o: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(o)) out[`${p}.${k}`] = v;
  return out;
}

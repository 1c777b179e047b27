import { spawn } from 'node:child_process';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { type Secrets, explicitKeys, parseScAddress } from '../config/load';
import type { Config } from '../config/schema';
import { RealScheduler, type Scheduler } from '../core/scheduler';
import type { Prefix } from '../ipv6/packet';
import type { Logger } from '../log';
import type { Netlink } from '../platform/netlink';
import type { Sysctl } from '../platform/sysctl';
import type { Rng } from '../util/random';
import { ReconnectPolicy } from './reconnect-policy';
import { Connection, type ConnectionEvent, type DownInfo, OVERHEAD_IPV4, OVERHEAD_IPV6, type TunLike } from './connection';
import { ControlServer, type ControlReply, type ControlRequest } from './control';
import { Installer, type InstallerHooks } from './installer';
import { type EffectiveKeepalive, effectiveKeepalive } from './keepalive';
import { type AgentState, type KeepaliveStatus, type Status, emptyStatus } from './status';
import { openDataTransport } from '../dataplane/udp';
import { Nat44 } from '../ipv4/nat44';
import { Dhcpv4Server } from '../lan/dhcpv4-server';
import { type Endpoint, sourceAddressFor } from '../io/udp-socket';
import type { IpsecGuard } from '../ipsec/guard';
import { rename, writeFile } from 'node:fs/promises';
import { SdpOfferer } from '../sdp/offerer';

/**
 * The agent's lifecycle: dial, keep the softwire up, and when any layer fails,
 * tear down what sits above it and dial again after a jittered backoff. SCs are
 * tried in turn. A WAN address change redials at once from the new address.
 */

/** What the agent needs of one softwire attempt; `Connection` in production, a fake in unit tests. */
export interface ConnectionLike {
  readonly sc: Endpoint;
  start(): void;
  /** Goodbyes within `budgetMs`, then release everything; `release: false` keeps the DHCPv6 lease (a reconnect). */
  stop(budgetMs: number, opts?: { release?: boolean }): Promise<void>;
  /** Release at once, no goodbyes. */
  dispose(): void;
  /**
   * After stop() the tunnel may still hold its socket to retransmit StopCCN and answer
   * the SC's retransmissions (RFC 2661 5.7); `cb` runs when it let go.
   */
  onReleased?(cb: () => void): void;
  localAddress(): string;
  fillStatus(s: Status): void;
}

export interface DialRequest {
  sc: Endpoint;
  local: string;
  mtu: number;
  installer: Installer;
  previousPrefix?: Prefix;
  log: Logger;
  emit: (ev: ConnectionEvent) => void;
  /** HELLO/Echo timers for this dial: the configured ones, or NAT-safe ones when the local address is private/shared. */
  keepalive: EffectiveKeepalive;
}

export interface AgentDeps {
  config: Config;
  secrets: Secrets;
  log: Logger;
  netlink: Netlink;
  sysctl: Sysctl;
  openTun: (name: string, opts?: { slotSize?: number }) => TunLike;
  /** DHCPv6 DUID and the last delegated prefix, kept across restarts. */
  duid: Uint8Array;
  previousPrefix?: Prefix;
  /** Called when a new prefix is delegated, to persist it. */
  savePrefix?: (p: Prefix) => void;
  installerHooks?: InstallerHooks;
  /** SC endpoints from an SDP answer, used instead of config.sc. */
  scOverride?: Endpoint[];
  /** Progress lines for humans (the demo); logs carry the same. */
  onProgress?: (line: string) => void;
  /** Timers of the agent itself (backoff, WAN debounce, waits); a FakeClock in tests. */
  scheduler?: Scheduler;
  /** Backoff jitter source. */
  rng?: Rng;
  /** The local address the kernel would use towards the SC; rejects when there is no route. */
  sourceAddress?: (sc: Endpoint) => Promise<string>;
  /** Builds one connection attempt; rejects if the transport cannot be opened. */
  dial?: (r: DialRequest) => Promise<ConnectionLike>;
  /** IPsec step 0 (RFC 5571 5, RFC 3193) when `ipsec` is on; see src/ipsec/guard.ts. */
  ipsec?: IpsecGuard;
}

type Outcome = { kind: 'down'; info: DownInfo } | { kind: 'stop' } | { kind: 'reconnect'; why: string } | { kind: 'admin-down' };

/** Which remembered outcome wins when several arrive while nobody waits. */
const RANK: Record<Outcome['kind'], number> = { down: 0, reconnect: 1, 'admin-down': 2, stop: 3 };

/** Longest a graceful stop may take before what is left is released without goodbyes (the 3 s promise minus margin). */
const STOP_BUDGET_MS = 2900;
/** A graceful stop's share of it: room for one StopCCN retransmission (due 1 s after the first) after Release and LCP Terminate. */
const GRACEFUL_STOP_MS = 2400;

export class Agent {
  private stateNow: AgentState = 'down';
  private since = new Date();
  private conn: ConnectionLike | null = null;
  /** Cleared attempts still finishing their tunnel's goodbye in the background (see ConnectionLike.onReleased). */
  private readonly retiring = new Set<ConnectionLike>();
  private installer: Installer | null = null;
  private stopping = false;
  private adminDown = false;
  private wake: ((o: Outcome) => void) | null = null;
  /** An outcome that arrived while the loop was between waits (e.g. stop during DNS resolution). */
  private pending: Outcome | null = null;
  private readonly waiters = new Set<{ state: AgentState; done: (reached: boolean) => void }>();
  private waiterSeq = 0;
  /** Which SC next and how long to wait: the pure policy core (reconnect-policy.ts). */
  private policy: ReconnectPolicy;
  private lastEndpoints: Endpoint[] = [];
  private reconnects = 0;
  private lastError: Status['lastError'] = null;
  /** The failure the loop is backing off from; a WAN change may cut the wait short. */
  private retryAfter: DownInfo | null = null;
  private control: ControlServer | null = null;
  private unsubscribe: (() => void) | null = null;
  private wanCheckArmed = false;
  private lastPrefix: Prefix | undefined;
  /** A reconnect kept the LAN numbered (and its DNS) from the last lease; released on stop, admin-down or lease expiry. */
  private lanHeld = false;
  private lastDns = '';
  /** Issue 16 item 8: offers for sdpOfferFile, made from the bound tunnel socket. */
  private readonly offerer = new SdpOfferer(new Date());
  private readonly log: Logger;
  /** Child loggers of the running attempt: pino children keep the level they were made with. */
  private attemptLogs: Logger[] = [];
  private readonly sched: Scheduler;
  private loop: Promise<void> | null = null;
  private forceEnd: (() => void) | null = null;
  private stopped: Promise<void> | null = null;
  private notifyRunning = false;
  private notifyPending = false;
  /**
   * While an attempt is torn down its addresses, prefix and DNS disappear one by one
   * while the state still reads "up"; a receiver such as netifd must not be told that
   * half-removed picture. The state change after the teardown notifies instead.
   */
  private tearingDown = false;
  private keepalive: KeepaliveStatus | null = null;
  /** One for the agent's life: its lease table must outlive a reconnect, or a restarted server would hand out leased addresses. */
  private dhcpv4: Dhcpv4Server | undefined;

  constructor(private d: AgentDeps) {
    this.log = d.log;
    this.lastPrefix = d.previousPrefix;
    this.sched = d.scheduler ?? new RealScheduler();
    this.policy = new ReconnectPolicy(reconnectSettings(d.config), d.rng ?? Math.random);
  }

  get state(): AgentState {
    return this.stateNow;
  }

  private setState(s: AgentState): void {
    if (s === this.stateNow) return;
    this.stateNow = s;
    this.since = new Date();
    this.log.info({ state: s }, `softwire ${s}`);
    for (const w of [...this.waiters]) if (w.state === s) w.done(true);
    this.notify();
  }

  /**
   * Runs the notify command with the current state. One run at a time; changes
   * that arrive meanwhile are merged into a single run after it, so the
   * receiver (e.g. netifd) sees updates in order and is never flooded.
   */
  notify(): void {
    const cmd = this.d.config.notifyCommand;
    // While stopping, the receiver is the one stopping us (netifd refuses notifies
    // during its teardown) and our exit is the news; a last "down" would only be refused.
    if (!cmd || this.tearingDown || this.stopping) return;
    if (this.notifyRunning) {
      this.notifyPending = true;
      return;
    }
    this.notifyRunning = true;
    this.notifyPending = false;
    const state = this.stateNow;
    const done = () => {
      this.notifyRunning = false;
      if (this.notifyPending) this.notify();
    };
    try {
      const p = spawn(cmd, [state], { stdio: 'ignore', env: process.env });
      const timer = setTimeout(() => p.kill('SIGKILL'), 30_000);
      p.on('error', (e) => {
        clearTimeout(timer);
        this.log.warn({ cmd, err: e.message }, 'notify command failed to start');
        done();
      });
      p.on('exit', (code) => {
        clearTimeout(timer);
        // One still running when we are told to stop reaches a receiver that is tearing
        // down (netifd answers PERMISSION_DENIED): expected, not worth a warning.
        if (code && this.stopping) this.log.info({ cmd, code }, 'notify command refused while stopping');
        else if (code) this.log.warn({ cmd, code }, 'notify command failed');
        done();
      });
    } catch (e) {
      this.log.warn({ cmd, err: (e as Error).message }, 'notify command failed to start');
      done();
    }
  }

  private progress(layer: string, message: string): void {
    this.log.info({ layer }, message);
    this.d.onProgress?.(`${layer}: ${message}`);
  }

  /** Starts the control socket and the WAN watch, then keeps the softwire up until stop(). */
  async run(): Promise<void> {
    this.control = await ControlServer.listen(this.d.config.controlSocket, (req) => this.request(req));
    this.unsubscribe = this.d.netlink.subscribe((ev) => {
      if (ev.kind === 'address-added' || ev.kind === 'address-removed' || ev.kind === 'link-changed' || ev.kind === 'overrun') this.scheduleWanCheck();
    });
    const forced = new Promise<void>((res) => (this.forceEnd = res));
    this.loop = this.runLoop();
    await Promise.race([this.loop, forced]);
  }

  private async runLoop(): Promise<void> {
    while (!this.stopping) {
      if (this.adminDown) {
        this.setState('down');
        const o = await this.waitOutcome(Number.POSITIVE_INFINITY);
        if (o.kind === 'stop') break;
        continue;
      }
      const outcome = await this.attempt();
      if (outcome.kind === 'stop') break;
      if (outcome.kind === 'admin-down') continue;
      this.reconnects++;
      if (outcome.kind === 'reconnect') {
        this.progress('agent', `reconnecting now: ${outcome.why}`);
        continue;
      }
      const info = outcome.info;
      this.lastError = { at: new Date().toISOString(), layer: info.layer, message: info.reason };
      const { delayMs: delay, rule } = this.policy.failed(info, this.lastEndpoints.length);
      this.setState('connecting');
      const why = rule === 'will-not-fix-itself' ? ' (the SC\'s answer will not change by itself: waiting at least a quarter of the reconnect cap)' : '';
      this.progress('agent', `${info.layer} down: ${info.reason}; retrying in ${(delay / 1000).toFixed(1)} s${why}`);
      this.retryAfter = info;
      const o = await this.waitOutcome(delay);
      this.retryAfter = null;
      if (o.kind === 'stop') break;
      if (o.kind === 'reconnect' && o.why !== 'backoff elapsed') this.progress('agent', `retrying now: ${o.why}`);
    }
    this.setState('down');
  }

  /**
   * Delivers an outcome to whatever the loop is waiting on. When it waits on
   * nothing (resolving names, opening sockets, tearing down), a stop, admin-down
   * or reconnect is remembered for the next wait so that it is not lost; a
   * connection's own `down` is not, as it belongs to the attempt just ended.
   */
  private signal(o: Outcome): void {
    if (this.stopping && o.kind !== 'stop') return;
    if (this.wake) {
      this.wake(o);
      return;
    }
    if (o.kind === 'down') return;
    if (!this.pending || RANK[o.kind] >= RANK[this.pending.kind]) this.pending = o;
  }

  private takePending(): Outcome | null {
    const p = this.pending;
    this.pending = null;
    return p;
  }

  /** Waits `ms` or until something wakes the loop (stop, up, reconnect, WAN change, connection down). */
  private waitOutcome(ms: number): Promise<Outcome> {
    const p = this.takePending();
    if (p) return Promise.resolve(p);
    return new Promise((res) => {
      const finish = (o: Outcome) => {
        this.sched.clear('agent:wait');
        this.wake = null;
        res(o);
      };
      if (Number.isFinite(ms)) this.sched.set('agent:wait', ms, () => finish({ kind: 'reconnect', why: 'backoff elapsed' }));
      this.wake = finish;
    });
  }

  private async endpoints(): Promise<Endpoint[]> {
    // Issue 16 item 8: an SDP answer's c= may be a DNS name (RFC 8866 5.7); it is resolved like a configured one.
    const sources = this.d.scOverride?.length ? this.d.scOverride.map((e) => ({ host: e.address, port: e.port })) : this.d.config.sc.map((s) => parseScAddress(s));
    const out: Endpoint[] = [];
    for (const { host, port } of sources) {
      if (isIP(host)) out.push({ address: host, port });
      else {
        try {
          for (const a of await lookup(host, { all: true })) out.push({ address: a.address, port });
        } catch (e) {
          this.log.warn({ host, err: (e as Error).message }, 'cannot resolve SC name');
        }
      }
    }
    return out;
  }

  private mtuFor(sc: Endpoint, wanMtu: number): number {
    if (this.d.config.mtu) return this.d.config.mtu;
    return wanMtu - (isIP(sc.address) === 6 ? OVERHEAD_IPV6 : OVERHEAD_IPV4);
  }

  private async wanMtu(local: string): Promise<number> {
    try {
      const addrs = await this.d.netlink.listAddresses();
      const a = addrs.find((x) => x.address === local);
      if (a) return (await this.d.netlink.getLink(a.ifindex)).mtu;
    } catch {
      /* fall through */
    }
    return 1500;
  }

  /** Rejects when the kernel has no route to the SC (also when the lookup yields the unspecified address, as it does on a downed link). */
  private async sourceAddress(sc: Endpoint): Promise<string> {
    const a = await (this.d.sourceAddress ?? sourceAddressFor)(sc);
    if (a === '0.0.0.0' || a === '::') throw new Error('no source address (no route)');
    return a;
  }

  private async dialUdp(r: DialRequest): Promise<ConnectionLike> {
    // Issue 16 item 7: an SCCRP from another SC address is admitted only with a tunnel secret (the LAC's Challenge proves it).
    const acceptOtherAddress = this.d.config.scAnswerFromOtherAddress && this.d.secrets.tunnelSecret !== undefined;
    if (this.d.config.scAnswerFromOtherAddress && !acceptOtherAddress) this.log.warn('scAnswerFromOtherAddress needs tunnelSecret: only the dialled address is answered');
    const transport = await openDataTransport(r.sc, r.local, { acceptOtherAddress, offload: this.d.config.offloads });
    // Issue 16 item 8: bound first, so the offer names the real address and port; a new one after a WAN change (draft 6).
    const offer = this.d.config.sdpOfferFile ? this.offerer.bound(transport.local.address, transport.local.port) : undefined;
    if (offer && this.d.config.sdpOfferFile) {
      const file = this.d.config.sdpOfferFile;
      try {
        await writeFile(`${file}.tmp`, offer, { mode: 0o644 });
        await rename(`${file}.tmp`, file);
        this.log.info({ file, local: `${transport.local.address}:${transport.local.port}` }, 'SDP offer written');
      } catch (e) {
        this.log.error({ file, err: (e as Error).message }, 'cannot write the SDP offer');
      }
    }
    return new Connection(r.sc, {
      config: { ...this.d.config, helloInterval: r.keepalive.helloInterval, lcpEchoInterval: r.keepalive.lcpEchoInterval },
      secrets: this.d.secrets,
      log: r.log,
      scheduler: new RealScheduler(),
      transport,
      openTun: this.d.openTun,
      installer: r.installer,
      duid: this.d.duid,
      previousPrefix: r.previousPrefix,
      mtu: r.mtu,
      emit: r.emit,
    });
  }

  /** The installer hooks plus a notify when the DNS servers change (the notify receiver re-reads status). */
  private hooks(): InstallerHooks {
    const h = this.d.installerHooks ?? {};
    return {
      ...h,
      onDns: async (dns) => {
        await h.onDns?.(dns);
        const key = JSON.stringify(dns);
        if (key === this.lastDns) return;
        this.lastDns = key;
        this.notify();
      },
    };
  }

  /** One connection attempt, from dialling until it goes down (or is stopped). */
  private async attempt(): Promise<Outcome> {
    this.setState('connecting');
    // This dial is the reconnect anyone asked for so far.
    if (this.pending?.kind === 'reconnect') this.pending = null;
    const eps = await this.endpoints();
    this.lastEndpoints = eps;
    if (eps.length === 0) return this.takePending() ?? { kind: 'down', info: { layer: 'transport', reason: 'no SC address could be resolved' } };
    const sc = eps[this.policy.sc % eps.length]!;
    let local: string;
    try {
      local = await this.sourceAddress(sc);
    } catch (e) {
      return this.takePending() ?? { kind: 'down', info: { layer: 'transport', reason: `no route to ${sc.address}: ${(e as Error).message}` } };
    }
    // --- IPsec step 0 (RFC 5571 5, RFC 3193): the SA must be up before the SCCRQ; its ESP costs MTU (5.2.1) ---
    let ipsecOverhead = 0;
    if (this.d.ipsec) {
      this.progress('ipsec', `bringing up the IPsec SA with ${sc.address}`);
      const r = await this.d.ipsec.up(sc, local, this.d.config.ipsecTimeout * 1000);
      if (!r.ok) {
        await this.d.ipsec.down();
        return this.takePending() ?? { kind: 'down', info: { layer: 'ipsec', reason: r.reason, permanent: r.permanent } };
      }
      ipsecOverhead = r.overhead;
      this.d.ipsec.onLost((reason) => this.signal({ kind: 'down', info: { layer: 'ipsec', reason } }));
    }
    // --- end IPsec step 0 ---
    const mtu = this.mtuFor(sc, await this.wanMtu(local)) - (this.d.config.mtu ? 0 : ipsecOverhead);
    const c = this.d.config;
    const keepalive = this.keepaliveFor(local);
    const installerLog = this.log.child({ part: 'installer' });
    const connLog = this.log.child({ sc: `${sc.address}:${sc.port}` });
    this.attemptLogs = [installerLog, connLog];
    const installer = new Installer(
      this.d.netlink,
      this.d.sysctl,
      installerLog,
      { routeMetric: c.routeMetric, ipv4DefaultRoute: c.ncp !== 'ipv6' || c.ipv4DefaultRoute, scAddress: sc.address, provision: c.provision, nat44: this.nat44For(c), dhcpv4: this.dhcpv4For(c) },
      this.hooks(),
    );
    let live = true;
    const emit = (ev: ConnectionEvent) => {
      // A connection being torn down may still report; only the live one moves the agent.
      if (!live && (ev.type === 'up' || ev.type === 'down')) return;
      this.onConnectionEvent(ev);
    };
    let conn: ConnectionLike;
    try {
      conn = await (this.d.dial ?? ((r: DialRequest) => this.dialUdp(r)))({ sc, local, mtu, installer, previousPrefix: this.lastPrefix, log: connLog, emit, keepalive });
    } catch (e) {
      await this.d.ipsec?.down(); // IPsec teardown (dial failed)
      return this.takePending() ?? { kind: 'down', info: { layer: 'transport', reason: `cannot reach ${sc.address}:${sc.port}: ${(e as Error).message}` } };
    }
    this.conn = conn;
    this.installer = installer;
    const early = this.takePending();
    let o: Outcome;
    if (early) {
      o = early;
      conn.dispose();
    } else {
      const outcome = this.waitOutcome(Number.POSITIVE_INFINITY);
      this.progress('agent', `dialling SC ${sc.address}:${sc.port} from ${local} (MTU ${mtu})`);
      conn.start();
      o = await outcome;
      live = false;
      this.tearingDown = true;
      // Goodbyes only make sense while the far end may still hear them.
      const graceful = o.kind === 'stop' || o.kind === 'admin-down' || (o.kind === 'reconnect' && !o.why.startsWith('WAN'));
      try {
        await conn.stop(graceful ? GRACEFUL_STOP_MS : o.kind === 'down' ? 300 : 150, { release: o.kind === 'stop' || o.kind === 'admin-down' });
      } catch (e) {
        this.log.warn({ err: (e as Error).message }, 'connection teardown failed; clearing what it installed');
        conn.dispose();
      }
      if (conn.onReleased) {
        this.retiring.add(conn);
        conn.onReleased(() => this.retiring.delete(conn));
      }
    }
    live = false;
    this.tearingDown = true;
    try {
      // A reconnect keeps the LAN: if the same prefix comes back in time, LAN hosts see nothing.
      const hold = o.kind === 'down' || o.kind === 'reconnect';
      const { heldForS } = await installer.clear({ holdLan: hold });
      if (heldForS > 0) this.holdLan(heldForS);
      else if (!hold) await this.releaseLan();
    } finally {
      this.tearingDown = false;
    }
    if (this.d.ipsec && this.retiring.delete(conn)) {
      // A tunnel still lingering to retransmit StopCCN would, once the SA and its policies are
      // gone, put L2TP on the wire in cleartext, which an IPsec SC drops anyway: it ends here.
      conn.dispose();
    }
    await this.d.ipsec?.down(); // IPsec teardown: after the L2TP goodbyes, which still ride the SA
    this.conn = null;
    this.installer = null;
    this.attemptLogs = [];
    return o;
  }

  /** Keeps the LAN numbered from the last lease for at most its remaining valid lifetime. */
  private holdLan(forS: number): void {
    this.lanHeld = true;
    this.d.installerHooks?.onLanHeld?.();
    this.log.info({ validForS: Math.round(forS) }, 'reconnecting: the LAN keeps its prefix while the lease is valid');
    this.sched.set('agent:lan-hold', Math.min(forS * 1000, 2 ** 31 - 1), () => void this.releaseLan());
  }

  /** Withdraws a held LAN numbering and its DNS (stop, admin-down, or the lease ran out before a prefix came back). */
  private async releaseLan(): Promise<void> {
    this.sched.clear('agent:lan-hold');
    if (!this.lanHeld) return;
    this.lanHeld = false;
    const h = this.d.installerHooks ?? {};
    try {
      await h.onPrefix?.(null);
      await h.onDns?.({ servers: [], domains: [] });
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'withdrawing the held LAN failed');
    }
  }

  /**
   * Router role with IPv4 routed into the softwire: the LAN goes out behind the one
   * IPCP address. Not with netifd provisioning (OpenWrt's firewall masquerades) nor
   * in host mode (no LAN to translate).
   */
  private dhcpv4For(c: Config): Dhcpv4Server | undefined {
    const ipv4Routed = c.ncp !== 'ipv6' || c.ipv4DefaultRoute;
    const lan = c.lan[0]?.ifname;
    // The same conditions as NAT44; load.ts warns when dhcpv4 is set and one fails.
    if (c.mode !== 'router' || !c.dhcpv4 || !ipv4Routed || c.provision === 'netifd' || !lan) return undefined;
    if (!this.dhcpv4) {
      // Node's dgram cannot bind to one interface, so one server serves one LAN.
      if (c.lan.length > 1) this.log.warn({ lan }, 'dhcpv4: only the first lan interface is served');
      this.dhcpv4 = new Dhcpv4Server({ lan, netlink: this.d.netlink, log: this.log.child({ part: 'dhcpv4' }) });
    }
    return this.dhcpv4;
  }

  private nat44For(c: Config): Nat44 | undefined {
    const ipv4Routed = c.ncp !== 'ipv6' || c.ipv4DefaultRoute;
    if (c.mode !== 'router' || !c.nat44 || !ipv4Routed || c.provision === 'netifd') return undefined;
    return new Nat44({ tun: c.tunDevice, lan: c.lan.map((l) => l.ifname) });
  }

  /** Timers for a dial from `local`; the reason is logged when it changes, not on every redial. */
  private keepaliveFor(local: string): EffectiveKeepalive {
    const c = this.d.config;
    const k = effectiveKeepalive(c, explicitKeys(c), local);
    if (k.reason !== this.keepalive?.reason) {
      this.log.info({ helloInterval: k.helloInterval, lcpEchoInterval: k.lcpEchoInterval, natSafe: k.natSafe }, `keepalive: ${k.reason}`);
    }
    this.keepalive = { ...k, lcpEchoFailure: c.lcpEchoFailure, deadTimeS: k.lcpEchoInterval * (c.lcpEchoFailure + 1) };
    return k;
  }

  private onConnectionEvent(ev: ConnectionEvent): void {
    switch (ev.type) {
      case 'progress':
        this.progress(ev.layer, ev.message);
        if (this.stateNow === 'up' && (ev.layer === 'ipv6' || ev.layer === 'ipv4')) this.notify();
        return;
      case 'up':
        this.policy.up();
        this.setState('up');
        return;
      case 'degraded':
        // The notify receiver re-reads status, which now says what is missing (or no longer).
        if (this.stateNow === 'up') this.notify();
        return;
      case 'prefix':
        // A new lease owns the LAN now (same prefix: kept as is; another: the old one deprecated by the provisioner).
        this.lanHeld = false;
        this.sched.clear('agent:lan-hold');
        this.lastPrefix = ev.prefix;
        this.d.savePrefix?.(ev.prefix);
        this.notify();
        return;
      case 'down':
        this.signal({ kind: 'down', info: ev.info });
        return;
    }
  }

  /** Debounced: netlink sends bursts of events for one change. */
  private scheduleWanCheck(): void {
    if (this.wanCheckArmed || this.stopping) return;
    if (!this.conn && !this.retryAfter) return;
    this.wanCheckArmed = true;
    this.sched.set('agent:wan-check', 100, () => {
      this.wanCheckArmed = false;
      void this.checkWan();
    });
  }

  private async checkWan(): Promise<void> {
    const conn = this.conn;
    if (!conn) return this.checkWanWhileWaiting();
    const was = conn.localAddress();
    // No route to the SC any more counts as a change too.
    const now = await this.sourceAddress(conn.sc).catch(() => null);
    if (this.conn !== conn) return;
    if (now !== was) {
      this.progress('wan', `local address changed from ${was} to ${now ?? '(none)'}`);
      this.signal({ kind: 'reconnect', why: `WAN address changed from ${was} to ${now ?? '(none)'}` });
    }
  }

  /**
   * Backing off because the SC was unreachable from here (no route, no
   * address): once the WAN offers a route again, dial now rather than sit out
   * the rest of the backoff. Other failures keep their backoff.
   */
  private async checkWanWhileWaiting(tries = 0): Promise<void> {
    const info = this.retryAfter;
    if (!info || (info.layer !== 'transport' && info.layer !== 'wan') || this.lastEndpoints.length === 0) return;
    const sc = this.lastEndpoints[this.policy.sc % this.lastEndpoints.length]!;
    const now = await this.sourceAddress(sc).catch(() => null);
    if (this.retryAfter !== info) return;
    if (now) this.signal({ kind: 'reconnect', why: `WAN has a route to ${sc.address} again (from ${now})` });
    // The kernel adds the connected route a moment after the link event (and we do not
    // watch route events): look again shortly before giving up on this event.
    else if (tries < 4) this.sched.set('agent:wan-recheck', 250 * (tries + 1), () => void this.checkWanWhileWaiting(tries + 1));
  }

  status(): Status {
    const s = emptyStatus(this.since);
    s.state = this.stateNow;
    s.reconnects = this.reconnects;
    s.lastError = this.lastError;
    s.keepalive = this.keepalive ? { ...this.keepalive } : null;
    this.conn?.fillStatus(s);
    if (this.d.ipsec) s.ipsec = this.d.ipsec.status();
    if (this.installer) s.counters.drops = { ...s.counters.drops, ...prefixed('kernel', this.installer.errors) };
    return s;
  }

  private waitFor(state: AgentState, timeoutMs: number): Promise<boolean> {
    if (this.stateNow === state) return Promise.resolve(true);
    const key = `agent:waiter:${this.waiterSeq++}`;
    return new Promise((res) => {
      const w = {
        state,
        done: (reached: boolean) => {
          this.sched.clear(key);
          this.waiters.delete(w);
          res(reached);
        },
      };
      this.sched.set(key, timeoutMs, () => w.done(false));
      this.waiters.add(w);
    });
  }

  /** Answers one control-socket request (status, up, down, reconnect, wait). */
  async request(req: ControlRequest): Promise<ControlReply> {
    this.log.debug({ cmd: req.cmd }, 'control request');
    switch (req.cmd) {
      case 'status':
        return { ok: true, status: this.status() };
      case 'up':
        if (!this.adminDown) return { ok: true, message: `already ${this.stateNow === 'up' ? 'up' : 'enabled'}` };
        this.adminDown = false;
        this.policy.reset();
        this.signal({ kind: 'reconnect', why: 'administratively up' });
        return { ok: true, message: 'bringing the softwire up' };
      case 'down':
        if (this.adminDown) return { ok: true, message: 'already down' };
        this.adminDown = true;
        this.signal({ kind: 'admin-down' });
        return { ok: true, message: 'taking the softwire down' };
      case 'reconnect':
        this.adminDown = false;
        this.policy.reset();
        this.signal({ kind: 'reconnect', why: 'requested by operator' });
        return { ok: true, message: 'reconnecting' };
      case 'wait': {
        const state = req.state;
        if (state !== 'up' && state !== 'down' && state !== 'connecting') return { ok: false, error: 'wait: state must be up, down or connecting' };
        const ms = typeof req.timeoutMs === 'number' && req.timeoutMs >= 0 ? Math.min(req.timeoutMs, 24 * 3600_000) : 30_000;
        if (await this.waitFor(state, ms)) return { ok: true, state };
        return { ok: false, error: 'timeout', state: this.stateNow } as ControlReply;
      }
      default:
        return { ok: false, error: `unknown command "${req.cmd}"` };
    }
  }

  /** Applies a reloaded config; returns whether the change needed a reconnect. */
  reload(config: Config, secrets: Secrets): boolean {
    const old = this.d.config;
    const oldSecrets = this.d.secrets;
    this.d = { ...this.d, config, secrets };
    const live = new Set<keyof Config>(['logLevel', 'reconnectInitial', 'reconnectCap', 'reconnectJitter', 'controlSocket', 'notifyCommand']);
    const changed = (Object.keys(config) as (keyof Config)[]).filter((k) => JSON.stringify(config[k]) !== JSON.stringify(old[k]));
    // Writing a timer down at its default value leaves Config equal but ends the NAT-safe adaptation (keepalive.ts).
    for (const k of ['helloInterval', 'lcpEchoInterval'] as const) {
      if (!changed.includes(k) && explicitKeys(config).has(k) !== explicitKeys(old).has(k)) changed.push(k);
    }
    const secretsChanged = JSON.stringify(secrets) !== JSON.stringify(oldSecrets);
    if (changed.includes('logLevel')) {
      this.log.level = config.logLevel;
      for (const l of this.attemptLogs) l.level = config.logLevel;
    }
    if (changed.some((k) => k === 'reconnectInitial' || k === 'reconnectCap' || k === 'reconnectJitter')) this.policy.configure(reconnectSettings(config));
    if (changed.includes('controlSocket')) void this.moveControl(config.controlSocket);
    const needs = secretsChanged || changed.some((k) => !live.has(k));
    this.log.info({ changed, secretsChanged }, needs ? 'configuration reloaded; reconnecting' : 'configuration reloaded');
    if (needs && !this.adminDown) this.signal({ kind: 'reconnect', why: 'configuration changed' });
    return needs;
  }

  private async moveControl(path: string): Promise<void> {
    try {
      const next = await ControlServer.listen(path, (req) => this.request(req));
      const old = this.control;
      this.control = next;
      await old?.close();
      this.log.info({ path }, 'control socket moved');
    } catch (e) {
      this.log.error({ path, err: (e as Error).message }, 'cannot move the control socket; keeping the old one');
    }
  }

  /** Graceful shutdown: goodbyes to the SC and removal of everything installed. Idempotent. */
  stop(): Promise<void> {
    if (this.stopped) return this.stopped;
    this.stopping = true;
    this.stopped = (async () => {
      this.signal({ kind: 'stop' });
      // The run loop's attempt() does the goodbyes and cleanup; give it the budget, then cut it short.
      if (this.loop) {
        const inTime = await new Promise<boolean>((res) => {
          this.sched.set('agent:stop', STOP_BUDGET_MS, () => res(false));
          void this.loop!.then(() => {
            this.sched.clear('agent:stop');
            res(true);
          });
        });
        if (!inTime) {
          this.log.warn('shutdown budget spent; releasing what is left without goodbyes');
          this.conn?.dispose();
          await this.installer?.clear();
          await this.d.ipsec?.down(); // IPsec teardown when the stop budget ran out
          this.tearingDown = false;
          this.setState('down');
        }
      }
      this.sched.clear('agent:wan-check');
      this.sched.clear('agent:wan-recheck');
      // Pending waits end unanswered rather than keep the process alive on their timers.
      for (const w of [...this.waiters]) w.done(this.stateNow === w.state);
      await this.releaseLan();
      // A tunnel still saying goodbye in the background ends with the process.
      for (const c of [...this.retiring]) c.dispose();
      this.retiring.clear();
      this.unsubscribe?.();
      await this.control?.close().catch((e: Error) => this.log.warn({ err: e.message }, 'control socket close failed'));
      this.forceEnd?.();
    })();
    return this.stopped;
  }
}

function reconnectSettings(c: Config) {
  return { initialMs: c.reconnectInitial * 1000, capMs: c.reconnectCap * 1000, jitter: c.reconnectJitter };
}

function prefixed(p: string, o: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [`${p}.${k}`, v]));
}

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
import type { ReconnectSettings } from './reconnect-policy';
import { Supervisor, type SupervisorInput, type SupervisorOutput, needsReconnect } from './supervisor';
import { Connection, type ConnectionEvent, OVERHEAD_IPV4, OVERHEAD_IPV6, type TunLike } from './connection';
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
 * The agent: the driver of the Supervisor core (supervisor.ts), which decides the
 * lifecycle (dial, keep up, back off, redial, stop). This class carries out its
 * outputs (DNS, route lookups, IPsec, dials, teardowns, timers, the notify command)
 * and feeds their results back in; it owns the control socket and the WAN watch.
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

type FeedInput = SupervisorInput extends infer I ? (I extends SupervisorInput ? Omit<I, 'now'> : never) : never;

/** The attempt the Supervisor is running: its connection (once dialled) and what it installs. */
interface Current {
  id: number;
  conn: ConnectionLike;
  installer: Installer;
}

export class Agent {
  private readonly sup: Supervisor;
  /** Wall-clock ms at the scheduler's zero: the Supervisor's `now` moves with the scheduler (a FakeClock in tests). */
  private readonly epoch: number;
  private readonly inbox: FeedInput[] = [];
  private draining = false;
  private reply = '';
  private current: Current | null = null;
  /** Cleared attempts still finishing their tunnel's goodbye in the background (see ConnectionLike.onReleased). */
  private readonly retiring = new Set<ConnectionLike>();
  private readonly waiters = new Set<{ state: AgentState; done: (reached: boolean) => void }>();
  private waiterSeq = 0;
  private control: ControlServer | null = null;
  private unsubscribe: (() => void) | null = null;
  private lastPrefix: Prefix | undefined;
  private lastDns = '';
  /** IPsec operations in order (a new SA only after the old one is down). */
  private ipsecChain: Promise<unknown> = Promise.resolve();
  /** LAN releases in flight; stop waits for them. */
  private lanChain: Promise<void> = Promise.resolve();
  /** Issue 16 item 8: offers for sdpOfferFile, made from the bound tunnel socket. */
  private readonly offerer = new SdpOfferer(new Date());
  private readonly log: Logger;
  /** Child loggers of the running attempt: pino children keep the level they were made with. */
  private attemptLogs: Logger[] = [];
  private readonly sched: Scheduler;
  private readonly ended: Promise<void>;
  private markEnded!: () => void;
  private stopAsked = false;
  private notifyRunning = false;
  private notifyPending = false;
  private keepalive: KeepaliveStatus | null = null;
  /** One for the agent's life: its lease table must outlive a reconnect, or a restarted server would hand out leased addresses. */
  private dhcpv4: Dhcpv4Server | undefined;

  constructor(private d: AgentDeps) {
    this.log = d.log;
    this.lastPrefix = d.previousPrefix;
    this.sched = d.scheduler ?? new RealScheduler();
    this.epoch = Date.now() - this.sched.now();
    this.sup = new Supervisor({ reconnect: reconnectSettings(d.config), random: d.rng ?? Math.random, ipsec: d.ipsec !== undefined, now: this.now() });
    this.ended = new Promise((res) => (this.markEnded = res));
  }

  get state(): AgentState {
    return this.sup.state;
  }

  private now(): number {
    return this.epoch + this.sched.now();
  }

  /** Hands one input to the Supervisor and carries out what it answers; inputs raised meanwhile queue behind. */
  private feed(i: FeedInput): void {
    this.inbox.push(i);
    if (this.draining) return;
    this.draining = true;
    try {
      for (let next = this.inbox.shift(); next; next = this.inbox.shift()) {
        for (const o of this.sup.handle({ ...next, now: this.now() } as SupervisorInput)) this.carry(o);
      }
    } finally {
      this.draining = false;
    }
  }

  private carry(o: SupervisorOutput): void {
    const g = this.d.ipsec;
    const c = this.current && 'id' in o && this.current.id === o.id ? this.current : null;
    switch (o.type) {
      case 'resolve-endpoints':
        return void this.endpoints().then((endpoints) => this.feed({ type: 'resolved', endpoints }));
      case 'check-source':
        return void Promise.resolve()
          .then(() => (this.d.sourceAddress ?? sourceAddressFor)(o.sc))
          .then(
            (address) => this.feed({ type: 'source-address', token: o.token, address }),
            (e: Error) => this.feed({ type: 'source-address', token: o.token, address: null, error: e.message }),
          );
      case 'ipsec-up':
        return void this.ipsecOp(async (g) => {
          const r = await g.up(o.sc, o.local, this.d.config.ipsecTimeout * 1000);
          if (r.ok) g.onLost((reason) => this.feed({ type: 'ipsec-lost', reason }));
          return r;
        }).then(
          (result) => this.feed({ type: 'ipsec-up', result: result ?? { ok: false, reason: 'no IPsec guard' } }),
          (e: Error) => this.feed({ type: 'ipsec-up', result: { ok: false, reason: e.message } }),
        );
      case 'ipsec-down':
        return void this.ipsecOp((g) => g.down()).catch((e: Error) => this.log.warn({ err: e.message }, 'IPsec teardown failed'));
      case 'dial':
        return void this.dial(o.id, o.sc, o.local, o.ipsecOverhead);
      case 'start-connection':
        return c?.conn.start();
      case 'dispose-connection':
        return c?.conn.dispose();
      case 'stop-connection':
        return void this.stopConnection(o.id, o.budgetMs, o.release);
      case 'clear-installer':
        return void this.clearInstaller(o.id, o.holdLan);
      case 'end-attempt':
        // A tunnel still lingering to retransmit StopCCN would, once the SA and its policies are
        // gone, put L2TP on the wire in cleartext, which an IPsec SC drops anyway: it ends here.
        if (c && g && this.retiring.delete(c.conn)) c.conn.dispose();
        if (c) this.current = null;
        this.attemptLogs = [];
        return;
      case 'hold-lan':
        this.d.installerHooks?.onLanHeld?.();
        return this.log.info({ validForS: Math.round(o.forS) }, 'reconnecting: the LAN keeps its prefix while the lease is valid');
      case 'release-lan':
        this.lanChain = this.lanChain.then(() => this.releaseLan());
        return;
      case 'save-prefix':
        this.lastPrefix = o.prefix;
        return this.d.savePrefix?.(o.prefix);
      case 'set-state':
        this.log.info({ state: o.state }, `softwire ${o.state}`);
        for (const w of [...this.waiters]) if (w.state === o.state) w.done(true);
        return;
      case 'notify':
        return this.runNotify(o.state);
      case 'arm-timer':
        return this.sched.set(`agent:${o.key}`, Math.max(0, o.at - this.now()), () => this.feed({ type: 'timer', key: o.key }));
      case 'cancel-timer':
        return this.sched.clear(`agent:${o.key}`);
      case 'log':
        return this.log[o.level](o.fields ?? {}, o.message);
      case 'progress':
        this.log.info({ layer: o.layer }, o.message);
        return this.d.onProgress?.(`${o.layer}: ${o.message}`);
      case 'forced-cleanup':
        return void this.forcedCleanup();
      case 'reply':
        this.reply = o.message;
        return;
      case 'done':
        return void this.finish();
    }
  }

  private ipsecOp<T>(f: (g: IpsecGuard) => Promise<T>): Promise<T | undefined> {
    const g = this.d.ipsec;
    const p = this.ipsecChain.then(() => (g ? f(g) : undefined));
    this.ipsecChain = p.catch(() => undefined);
    return p;
  }

  /**
   * Runs the notify command with the state. One run at a time; changes that arrive
   * meanwhile are merged into a single run after it, so the receiver (e.g. netifd)
   * sees updates in order and is never flooded. When to notify is the Supervisor's.
   */
  notify(): void {
    this.feed({ type: 'notify-request' });
  }

  private runNotify(state: AgentState): void {
    const cmd = this.d.config.notifyCommand;
    if (!cmd) return;
    if (this.notifyRunning) {
      this.notifyPending = true;
      return;
    }
    this.notifyRunning = true;
    this.notifyPending = false;
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
        if (code && this.sup.stopping) this.log.info({ cmd, code }, 'notify command refused while stopping');
        else if (code) this.log.warn({ cmd, code }, 'notify command failed');
        done();
      });
    } catch (e) {
      this.log.warn({ cmd, err: (e as Error).message }, 'notify command failed to start');
      done();
    }
  }

  /** Starts the control socket and the WAN watch, then keeps the softwire up until stop(). */
  async run(): Promise<void> {
    const control = await ControlServer.listen(this.d.config.controlSocket, (req) => this.request(req));
    if (this.sup.finished) return control.close(); // stopped while the socket was opening
    this.control = control;
    this.unsubscribe = this.d.netlink.subscribe((ev) => {
      if (ev.kind === 'address-added' || ev.kind === 'address-removed' || ev.kind === 'link-changed' || ev.kind === 'overrun') this.feed({ type: 'wan-event' });
    });
    this.feed({ type: 'start' });
    await this.ended;
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

  private async dial(id: number, sc: Endpoint, local: string, ipsecOverhead: number): Promise<void> {
    try {
      const c = this.d.config;
      const mtu = (c.mtu ? c.mtu : (await this.wanMtu(local)) - (isIP(sc.address) === 6 ? OVERHEAD_IPV6 : OVERHEAD_IPV4) - ipsecOverhead);
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
      const emit = (ev: ConnectionEvent) => this.connectionEvent(id, ev);
      const r: DialRequest = { sc, local, mtu, installer, previousPrefix: this.lastPrefix, log: connLog, emit, keepalive };
      const conn = await (this.d.dial ? this.d.dial(r) : this.dialUdp(r));
      this.current = { id, conn, installer };
      this.feed({ type: 'dialled', id, mtu });
    } catch (e) {
      this.feed({ type: 'dial-failed', id, reason: (e as Error).message });
    }
  }

  private connectionEvent(id: number, ev: ConnectionEvent): void {
    if (ev.type === 'progress') this.feed({ type: 'connection-progress', id, layer: ev.layer, message: ev.message });
    else if (ev.type === 'up') this.feed({ type: 'connection-up', id });
    else if (ev.type === 'degraded') this.feed({ type: 'connection-degraded', id });
    else if (ev.type === 'prefix') this.feed({ type: 'connection-prefix', id, prefix: ev.prefix });
    else if (ev.type === 'down') this.feed({ type: 'connection-down', id, info: ev.info });
  }

  private async stopConnection(id: number, budgetMs: number, release: boolean): Promise<void> {
    const conn = this.current?.id === id ? this.current.conn : null;
    if (conn) {
      try {
        await conn.stop(budgetMs, { release });
      } catch (e) {
        this.log.warn({ err: (e as Error).message }, 'connection teardown failed; clearing what it installed');
        conn.dispose();
      }
      if (conn.onReleased) {
        this.retiring.add(conn);
        conn.onReleased(() => this.retiring.delete(conn));
      }
    }
    this.feed({ type: 'connection-stopped', id });
  }

  private async clearInstaller(id: number, holdLan: boolean): Promise<void> {
    let heldForS = 0;
    try {
      if (this.current?.id === id) heldForS = (await this.current.installer.clear({ holdLan })).heldForS;
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'clearing what the connection installed failed');
    }
    this.feed({ type: 'teardown-done', id, heldForS });
  }

  /** The stop budget is spent: release what is left without goodbyes. */
  private async forcedCleanup(): Promise<void> {
    const c = this.current;
    try {
      c?.conn.dispose();
      await c?.installer.clear();
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'clearing what the connection installed failed');
    }
    if (this.d.ipsec) await this.ipsecOp((g) => g.down()).catch(() => undefined); // IPsec teardown when the stop budget ran out
    this.feed({ type: 'forced-cleanup-done' });
  }

  /** Stopped: answer what waits, let go of what is left, and end run(). */
  private async finish(): Promise<void> {
    // Pending waits end unanswered rather than keep the process alive on their timers.
    for (const w of [...this.waiters]) w.done(this.sup.state === w.state);
    await this.lanChain;
    await this.ipsecChain;
    // A tunnel still saying goodbye in the background ends with the process.
    for (const c of [...this.retiring]) c.dispose();
    this.retiring.clear();
    this.unsubscribe?.();
    await this.control?.close().catch((e: Error) => this.log.warn({ err: e.message }, 'control socket close failed'));
    this.markEnded();
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

  /** Withdraws a held LAN numbering and its DNS. */
  private async releaseLan(): Promise<void> {
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

  status(): Status {
    const s = emptyStatus(new Date(this.sup.since));
    s.state = this.sup.state;
    s.reconnects = this.sup.reconnects;
    const e = this.sup.lastError;
    s.lastError = e ? { at: new Date(e.at).toISOString(), layer: e.layer, message: e.message } : null;
    s.keepalive = this.keepalive ? { ...this.keepalive } : null;
    this.current?.conn.fillStatus(s);
    if (this.d.ipsec) s.ipsec = this.d.ipsec.status();
    if (this.current) s.counters.drops = { ...s.counters.drops, ...prefixed('kernel', this.current.installer.errors) };
    return s;
  }

  private waitFor(state: AgentState, timeoutMs: number): Promise<boolean> {
    if (this.sup.state === state) return Promise.resolve(true);
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
      case 'down':
      case 'reconnect':
        this.reply = '';
        this.feed({ type: 'admin', cmd: req.cmd });
        return { ok: true, message: this.reply };
      case 'wait': {
        const state = req.state;
        if (state !== 'up' && state !== 'down' && state !== 'connecting') return { ok: false, error: 'wait: state must be up, down or connecting' };
        const ms = typeof req.timeoutMs === 'number' && req.timeoutMs >= 0 ? Math.min(req.timeoutMs, 24 * 3600_000) : 30_000;
        if (await this.waitFor(state, ms)) return { ok: true, state };
        return { ok: false, error: 'timeout', state: this.sup.state } as ControlReply;
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
    if (changed.includes('controlSocket')) void this.moveControl(config.controlSocket);
    this.feed({ type: 'reload', changed, secretsChanged, reconnect: reconnectSettings(config) });
    return needsReconnect(changed, secretsChanged);
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

  /** Graceful shutdown: goodbyes to the SC and removal of everything installed, within the stop budget. Idempotent. */
  stop(): Promise<void> {
    if (!this.stopAsked) {
      this.stopAsked = true;
      this.feed({ type: 'stop' });
    }
    return this.ended;
  }
}

function reconnectSettings(c: Config): ReconnectSettings {
  return { initialMs: c.reconnectInitial * 1000, capMs: c.reconnectCap * 1000, jitter: c.reconnectJitter };
}

function prefixed(p: string, o: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [`${p}.${k}`, v]));
}

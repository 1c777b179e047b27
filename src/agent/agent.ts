import { spawn } from 'node:child_process';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { type Secrets, parseScAddress } from '../config/load';
import type { Config } from '../config/schema';
import { RealScheduler } from '../core/scheduler';
import type { Prefix } from '../ipv6/packet';
import type { Logger } from '../log';
import type { Netlink } from '../platform/netlink';
import type { Sysctl } from '../platform/sysctl';
import { Backoff } from './backoff';
import { Connection, type ConnectionEvent, type DownInfo, OVERHEAD_IPV4, OVERHEAD_IPV6, type TunLike } from './connection';
import { ControlServer, type ControlReply, type ControlRequest } from './control';
import { Installer, type InstallerHooks } from './installer';
import { type AgentState, type Status, emptyStatus } from './status';
import { type Endpoint, UdpTransport, sourceAddressFor } from './transport';

/**
 * The agent's lifecycle: dial, keep the softwire up, and when any layer fails,
 * tear down what sits above it and dial again after a jittered backoff. SCs are
 * tried in turn. A WAN address change redials at once from the new address.
 */

export interface AgentDeps {
  config: Config;
  secrets: Secrets;
  log: Logger;
  netlink: Netlink;
  sysctl: Sysctl;
  openTun: (name: string) => TunLike;
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
}

type Outcome = { kind: 'down'; info: DownInfo } | { kind: 'stop' } | { kind: 'reconnect'; why: string } | { kind: 'admin-down' };

export class Agent {
  private stateNow: AgentState = 'down';
  private since = new Date();
  private conn: Connection | null = null;
  private installer: Installer | null = null;
  private stopping = false;
  private adminDown = false;
  private wake: ((o: Outcome) => void) | null = null;
  private readonly waiters = new Set<{ state: AgentState; done: () => void }>();
  private readonly backoff: Backoff;
  private scIndex = 0;
  private reconnects = 0;
  private lastError: Status['lastError'] = null;
  private control: ControlServer | null = null;
  private unsubscribe: (() => void) | null = null;
  private wanCheck: NodeJS.Timeout | null = null;
  private lastPrefix: Prefix | undefined;
  private readonly log: Logger;
  private stopped: Promise<void> | null = null;
  private notifyRunning = false;
  private notifyPending = false;

  constructor(private d: AgentDeps) {
    this.log = d.log;
    this.lastPrefix = d.previousPrefix;
    const c = d.config;
    this.backoff = new Backoff({ initialMs: c.reconnectInitial * 1000, capMs: c.reconnectCap * 1000, jitter: c.reconnectJitter });
  }

  get state(): AgentState {
    return this.stateNow;
  }

  private setState(s: AgentState): void {
    if (s === this.stateNow) return;
    this.stateNow = s;
    this.since = new Date();
    this.log.info({ state: s }, `softwire ${s}`);
    for (const w of [...this.waiters]) if (w.state === s) w.done();
    this.notify();
  }

  /**
   * Runs the notify command with the current state. One run at a time; changes
   * that arrive meanwhile are merged into a single run after it, so the
   * receiver (e.g. netifd) sees updates in order and is never flooded.
   */
  notify(): void {
    const cmd = this.d.config.notifyCommand;
    if (!cmd) return;
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
        if (code) this.log.warn({ cmd, code }, 'notify command failed');
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
    this.control = await ControlServer.listen(this.d.config.controlSocket, (req) => this.handle(req));
    this.unsubscribe = this.d.netlink.subscribe((ev) => {
      if (ev.kind === 'address-added' || ev.kind === 'address-removed' || ev.kind === 'link-changed' || ev.kind === 'overrun') this.scheduleWanCheck();
    });
    while (!this.stopping) {
      if (this.adminDown) {
        this.setState('down');
        const o = await this.sleep(Number.POSITIVE_INFINITY);
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
      if (info.retryElsewhere || info.layer === 'transport') this.scIndex++;
      let delay = this.backoff.next();
      // A rejected login or tunnel secret will not fix itself: wait at least the cap/4 so we do not hammer the SC.
      if (info.permanent) delay = Math.max(delay, (this.d.config.reconnectCap * 1000) / 4);
      this.setState('connecting');
      this.progress('agent', `${info.layer} down: ${info.reason}; retrying in ${(delay / 1000).toFixed(1)} s`);
      const o = await this.sleep(delay);
      if (o.kind === 'stop') break;
    }
    this.setState('down');
  }

  /** Waits `ms` or until something wakes the loop (stop, up, reconnect, WAN change). */
  private sleep(ms: number): Promise<Outcome> {
    return new Promise((res) => {
      const t = Number.isFinite(ms) ? setTimeout(() => finish({ kind: 'reconnect', why: 'backoff elapsed' }), ms) : null;
      const finish = (o: Outcome) => {
        if (t) clearTimeout(t);
        this.wake = null;
        res(o);
      };
      this.wake = finish;
    });
  }

  private async endpoints(): Promise<Endpoint[]> {
    if (this.d.scOverride?.length) return this.d.scOverride;
    const out: Endpoint[] = [];
    for (const s of this.d.config.sc) {
      const { host, port } = parseScAddress(s);
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

  /** One connection attempt, from dialling until it goes down (or is stopped). */
  private async attempt(): Promise<Outcome> {
    this.setState('connecting');
    const eps = await this.endpoints();
    if (eps.length === 0) return { kind: 'down', info: { layer: 'transport', reason: 'no SC address could be resolved' } };
    const sc = eps[this.scIndex % eps.length]!;
    let transport: UdpTransport;
    let local: string;
    try {
      local = await sourceAddressFor(sc);
      transport = await UdpTransport.open(sc, local);
    } catch (e) {
      return { kind: 'down', info: { layer: 'transport', reason: `cannot reach ${sc.address}:${sc.port}: ${(e as Error).message}` } };
    }
    const mtu = this.mtuFor(sc, await this.wanMtu(local));
    const c = this.d.config;
    const installer = new Installer(
      this.d.netlink,
      this.d.sysctl,
      this.log.child({ part: 'installer' }),
      {
        routeMetric: c.routeMetric,
        ipv4DefaultRoute: c.ncp !== 'ipv6' || c.ipv4DefaultRoute,
      },
      this.d.installerHooks,
    );
    this.installer = installer;
    const outcome = new Promise<Outcome>((res) => {
      this.wake = (o) => {
        this.wake = null;
        res(o);
      };
    });
    const emit = (ev: ConnectionEvent) => this.onConnectionEvent(ev);
    const conn = new Connection(sc, {
      config: c,
      secrets: this.d.secrets,
      log: this.log.child({ sc: `${sc.address}:${sc.port}` }),
      scheduler: new RealScheduler(),
      transport,
      openTun: this.d.openTun,
      installer,
      duid: this.d.duid,
      previousPrefix: this.lastPrefix,
      mtu,
      emit,
    });
    this.conn = conn;
    this.progress('agent', `dialling SC ${sc.address}:${sc.port} from ${local} (MTU ${mtu})`);
    conn.start();
    const o = await outcome;
    // Goodbyes only make sense while the far end may still hear them.
    const graceful = o.kind === 'stop' || o.kind === 'admin-down' || (o.kind === 'reconnect' && !o.why.startsWith('WAN'));
    if (graceful) await conn.stop(2000);
    else await conn.stop(o.kind === 'down' ? 300 : 150);
    await installer.clear();
    this.conn = null;
    this.installer = null;
    return o;
  }

  private onConnectionEvent(ev: ConnectionEvent): void {
    switch (ev.type) {
      case 'progress':
        this.progress(ev.layer, ev.message);
        if (this.stateNow === 'up' && (ev.layer === 'ipv6' || ev.layer === 'ipv4')) this.notify();
        return;
      case 'up':
        this.backoff.reset();
        this.setState('up');
        return;
      case 'prefix':
        this.lastPrefix = ev.prefix;
        this.d.savePrefix?.(ev.prefix);
        this.notify();
        return;
      case 'down':
        this.wake?.({ kind: 'down', info: ev.info });
        return;
    }
  }

  /** Debounced: netlink sends bursts of events for one change. */
  private scheduleWanCheck(): void {
    if (this.wanCheck || !this.conn) return;
    this.wanCheck = setTimeout(() => {
      this.wanCheck = null;
      void this.checkWan();
    }, 100);
  }

  private async checkWan(): Promise<void> {
    const conn = this.conn;
    if (!conn) return;
    const was = conn.localAddress();
    // No route to the SC any more counts as a change too.
    const now = await sourceAddressFor(conn.sc).catch(() => null);
    if (this.conn !== conn) return;
    if (now !== was) {
      this.progress('wan', `local address changed from ${was} to ${now ?? '(none)'}`);
      this.wake?.({ kind: 'reconnect', why: `WAN address changed from ${was} to ${now ?? '(none)'}` });
    }
  }

  status(): Status {
    const s = emptyStatus(this.since);
    s.state = this.stateNow;
    s.reconnects = this.reconnects;
    s.lastError = this.lastError;
    this.conn?.fillStatus(s);
    if (this.installer) s.counters.drops = { ...s.counters.drops, ...prefixed('kernel', this.installer.errors) };
    return s;
  }

  private waitFor(state: AgentState, timeoutMs: number): Promise<boolean> {
    if (this.stateNow === state) return Promise.resolve(true);
    return new Promise((res) => {
      const w = {
        state,
        done: () => {
          clearTimeout(t);
          this.waiters.delete(w);
          res(true);
        },
      };
      const t = setTimeout(() => {
        this.waiters.delete(w);
        res(false);
      }, timeoutMs);
      this.waiters.add(w);
    });
  }

  private async handle(req: ControlRequest): Promise<ControlReply> {
    switch (req.cmd) {
      case 'status':
        return { ok: true, status: this.status() };
      case 'up':
        if (!this.adminDown) return { ok: true, message: `already ${this.stateNow === 'up' ? 'up' : 'enabled'}` };
        this.adminDown = false;
        this.backoff.reset();
        this.wake?.({ kind: 'reconnect', why: 'administratively up' });
        return { ok: true, message: 'bringing the softwire up' };
      case 'down':
        if (this.adminDown) return { ok: true, message: 'already down' };
        this.adminDown = true;
        this.wake?.({ kind: 'admin-down' });
        return { ok: true, message: 'taking the softwire down' };
      case 'reconnect':
        this.adminDown = false;
        this.backoff.reset();
        this.wake?.({ kind: 'reconnect', why: 'requested by operator' });
        return { ok: true, message: 'reconnecting' };
      case 'wait': {
        const state = req.state;
        if (state !== 'up' && state !== 'down' && state !== 'connecting') return { ok: false, error: 'wait: state must be up, down or connecting' };
        const ms = typeof req.timeoutMs === 'number' && req.timeoutMs >= 0 ? Math.min(req.timeoutMs, 24 * 3600_000) : 30_000;
        return (await this.waitFor(state, ms)) ? { ok: true, state } : { ok: false, error: 'timeout' };
      }
      default:
        return { ok: false, error: `unknown command "${req.cmd}"` };
    }
  }

  /** Applies a reloaded config; returns whether the change needed a reconnect. */
  reload(config: Config, secrets: Secrets): boolean {
    const old = this.d.config;
    this.d = { ...this.d, config, secrets };
    const live = new Set(['logLevel', 'reconnectInitial', 'reconnectCap', 'reconnectJitter', 'controlSocket']);
    const changed = (Object.keys(config) as (keyof Config)[]).filter((k) => JSON.stringify(config[k]) !== JSON.stringify(old[k]));
    const secretsChanged = JSON.stringify(secrets) !== JSON.stringify(this.d.secrets);
    if (changed.includes('logLevel')) this.log.level = config.logLevel;
    const needs = secretsChanged || changed.some((k) => !live.has(k));
    this.log.info({ changed }, needs ? 'configuration reloaded; reconnecting' : 'configuration reloaded');
    if (needs) this.wake?.({ kind: 'reconnect', why: 'configuration changed' });
    return needs;
  }

  /** Graceful shutdown: goodbyes to the SC and removal of everything installed. Idempotent. */
  stop(): Promise<void> {
    if (this.stopped) return this.stopped;
    this.stopping = true;
    this.stopped = (async () => {
      this.wake?.({ kind: 'stop' });
      // The run loop's attempt() does the goodbyes and cleanup; wait for it to finish.
      const end = Date.now() + 2800;
      while ((this.conn || this.installer) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
      if (this.wanCheck) clearTimeout(this.wanCheck);
      this.unsubscribe?.();
      await this.control?.close();
    })();
    return this.stopped;
  }
}

function prefixed(p: string, o: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [`${p}.${k}`, v]));
}

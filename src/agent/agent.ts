import type { Secrets } from '../config/load';
import { explicitKeys } from '../config/load';
import type { Config } from '../config/schema';
import { RealScheduler, type Scheduler } from '../core/scheduler';
import type { Endpoint } from '../io/udp-socket';
import { sourceAddressFor } from '../io/udp-socket';
import type { IpsecGuard } from '../ipsec/guard';
import type { Prefix } from '../ipv6/packet';
import type { Logger } from '../log';
import type { Rng } from '../util/random';
import type { ConnectionEvent } from './connection';
import { ControlServer, type ControlReply, type ControlRequest } from './control';
import { type ConnectionLike, type DialRequest, Dialer, type DialerDeps } from './dialer';
import type { Installer, InstallerHooks } from './installer';
import { NotifyCommand } from './notify-command';
import type { ReconnectSettings } from './reconnect-policy';
import { type AgentState, type Status, emptyStatus } from './status';
import { Supervisor, type SupervisorInput, type SupervisorOutput, needsReconnect } from './supervisor';

/**
 * The agent: the driver of the Supervisor core (supervisor.ts), which decides the
 * lifecycle (dial, keep up, back off, redial, stop). This class carries out its
 * outputs (DNS, route lookups, IPsec, dials, teardowns, timers, the notify command)
 * and feeds their results back in; it owns the control socket and the WAN watch.
 */

export type { ConnectionLike, DialRequest };

export interface AgentDeps extends DialerDeps {
  /** The last delegated prefix, kept across restarts (with the DHCPv6 DUID). */
  previousPrefix?: Prefix;
  /** Called when a new prefix is delegated, to persist it. */
  savePrefix?: (p: Prefix) => void;
  installerHooks?: InstallerHooks;
  /** Progress lines for humans (the demo); logs carry the same. */
  onProgress?: (line: string) => void;
  /** Timers of the agent itself (backoff, WAN debounce, waits); a FakeClock in tests. */
  scheduler?: Scheduler;
  /** Backoff jitter source. */
  rng?: Rng;
  /** The local address the kernel would use towards the SC; rejects when there is no route. */
  sourceAddress?: (sc: Endpoint) => Promise<string>;
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

/** Longest the last releases after the Supervisor's "done" may take (LAN withdrawal, IPsec teardown). */
export const FINISH_MS = 1500;

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
  private readonly dialer = new Dialer(() => this.d);
  private readonly log: Logger;
  /** Child loggers of the running attempt: pino children keep the level they were made with. */
  private attemptLogs: Logger[] = [];
  private readonly sched: Scheduler;
  private readonly ended: Promise<void>;
  private markEnded!: () => void;
  private stopAsked = false;
  private readonly notifier: NotifyCommand;

  constructor(private d: AgentDeps) {
    this.log = d.log;
    this.lastPrefix = d.previousPrefix;
    this.sched = d.scheduler ?? new RealScheduler();
    this.epoch = Date.now() - this.sched.now();
    this.sup = new Supervisor({ reconnect: reconnectSettings(d.config), random: d.rng ?? Math.random, ipsec: d.ipsec !== undefined, now: this.now() });
    this.ended = new Promise((res) => (this.markEnded = res));
    this.notifier = new NotifyCommand(d.log, () => this.notify(), () => this.sup.stopping);
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
        for (const o of this.sup.handle({ ...next, now: this.now() } as SupervisorInput)) this.carrySafely(o);
      }
    } finally {
      this.draining = false;
    }
  }

  /** An effect that throws must not end the agent (nor leave the inbox stuck): a connection that cannot start is down. */
  private carrySafely(o: SupervisorOutput): void {
    try {
      this.carry(o);
    } catch (e) {
      this.log.error({ effect: o.type, err: (e as Error).message }, 'agent effect failed');
      if (o.type === 'start-connection') this.feed({ type: 'connection-down', id: o.id, info: { layer: 'transport', reason: `cannot start: ${(e as Error).message}` } });
    }
  }

  private carry(o: SupervisorOutput): void {
    const g = this.d.ipsec;
    const c = this.current && 'id' in o && this.current.id === o.id ? this.current : null;
    switch (o.type) {
      case 'resolve-endpoints':
        return void this.dialer.endpoints().then((endpoints) => this.feed({ type: 'resolved', endpoints }));
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
        return void this.ipsecDown().catch((e: Error) => this.log.warn({ err: e.message }, 'IPsec teardown failed'));
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
        return this.notifier.run(this.d.config.notifyCommand ?? '', o.state, () => this.status());
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

  /** An SA negotiation; it starts once every earlier IPsec operation has finished (a teardown's cleanup must not undo it). */
  private ipsecOp<T>(f: (g: IpsecGuard) => Promise<T>): Promise<T | undefined> {
    const g = this.d.ipsec;
    const p = this.ipsecChain.then(() => (g ? f(g) : undefined));
    this.ipsecChain = p.catch(() => undefined);
    return p;
  }

  /**
   * The SA's teardown starts at once, not after a negotiation still running: down() is
   * what cancels that negotiation (the guard terminates it in charon), which could
   * otherwise hold a stop for the whole ipsecTimeout. Later operations wait for both.
   */
  private ipsecDown(): Promise<void> {
    const g = this.d.ipsec;
    if (!g) return Promise.resolve();
    const p = g.down();
    const prior = this.ipsecChain;
    this.ipsecChain = Promise.all([prior, p.catch(() => undefined)]);
    return p;
  }

  /** Asks for a notify-command run (the Supervisor decides whether one may go now). */
  notify(): void {
    this.feed({ type: 'notify-request' });
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

  private async dial(id: number, sc: Endpoint, local: string, ipsecOverhead: number): Promise<void> {
    try {
      const a = await this.dialer.dial(sc, local, ipsecOverhead, this.lastPrefix, this.hooks(), (ev) => this.connectionEvent(id, ev));
      this.attemptLogs = a.logs;
      this.current = { id, conn: a.conn, installer: a.installer };
      this.feed({ type: 'dialled', id, mtu: a.mtu });
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
    await this.ipsecDown().catch(() => undefined); // IPsec teardown when the stop budget ran out
    this.feed({ type: 'forced-cleanup-done' });
  }

  /** Stopped: answer what waits, let go of what is left, and end run(). */
  private async finish(): Promise<void> {
    // Pending waits end unanswered rather than keep the process alive on their timers.
    for (const w of [...this.waiters]) w.done(this.sup.state === w.state);
    // The last releases (LAN withdrawal, SA teardown) get a deadline of their own: a kernel
    // or charon that never answers must not keep a stopped agent alive.
    const inTime = await new Promise<boolean>((res) => {
      this.sched.set('agent:finish', FINISH_MS, () => res(false));
      void Promise.all([this.lanChain, this.ipsecChain]).then(() => {
        this.sched.clear('agent:finish');
        res(true);
      });
    });
    if (!inTime) this.log.warn({ deadlineMs: FINISH_MS }, 'the last releases (LAN withdrawal, IPsec teardown) did not finish in time; leaving them');
    // A tunnel still saying goodbye in the background ends with the process.
    for (const c of [...this.retiring]) c.dispose();
    this.retiring.clear();
    this.unsubscribe?.();
    await this.control?.close().catch((e: Error) => this.log.warn({ err: e.message }, 'control socket close failed'));
    this.markEnded();
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

  status(): Status {
    const s = emptyStatus(new Date(this.sup.since));
    s.state = this.sup.state;
    s.reconnects = this.sup.reconnects;
    const e = this.sup.lastError;
    s.lastError = e ? { at: new Date(e.at).toISOString(), layer: e.layer, message: e.message } : null;
    s.keepalive = this.dialer.keepalive ? { ...this.dialer.keepalive } : null;
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

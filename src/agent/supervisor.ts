import type { Prefix } from '../ipv6/packet';
import type { Endpoint } from '../io/udp-socket';
import type { Rng } from '../util/random';
import type { DownInfo } from './attempt-types';
import { ReconnectPolicy, type ReconnectSettings } from './reconnect-policy';
import type { AgentState } from './status';

/**
 * The Supervisor: the agent's lifecycle as a pure core. It dials, keeps the
 * softwire up, and when any layer fails, has the attempt torn down and dials again
 * after the reconnect policy's wait (reconnect-policy.ts). SCs are tried in turn;
 * a WAN address change redials at once from the new address. No clock, timer,
 * socket or promise in here: every input carries `now`, every effect is an output
 * whose result comes back as an input (agent.ts is the driver).
 *
 * One attempt: resolve the SC names -> ask the kernel for our source address ->
 * (IPsec SA up) -> dial -> start -> ... an outcome ends it -> stop the connection
 * (goodbyes within a budget) -> clear what it installed -> next round.
 *
 * An outcome that arrives while nothing waits for one (resolving, dialling, tearing
 * down) is remembered, the strongest first (stop > admin-down > reconnect), so that
 * a stop during DNS resolution is not lost; a connection's own `down` is not
 * remembered, as it belongs to the attempt just ended.
 */

export type Outcome = { kind: 'down'; info: DownInfo } | { kind: 'stop' } | { kind: 'reconnect'; why: string } | { kind: 'admin-down' };

/** Which remembered outcome wins when several arrive while nobody waits. */
export const RANK: Record<Outcome['kind'], number> = { down: 0, reconnect: 1, 'admin-down': 2, stop: 3 };

/** Longest a graceful stop may take before what is left is released without goodbyes (the 3 s promise minus margin). */
export const STOP_BUDGET_MS = 2900;
/** A graceful stop's share of it: room for one StopCCN retransmission (due 1 s after the first) after Release and LCP Terminate. */
export const GRACEFUL_STOP_MS = 2400;
/** What the release without goodbyes may take once the stop budget is spent (netlink answers at once, or times out later than this). */
export const FORCED_CLEANUP_MS = 1500;
/** Goodbye budget of a connection that failed by itself (its far end is likely gone). */
export const FAILED_STOP_MS = 300;
/** Goodbye budget after a WAN change: the old address cannot be heard any more. */
export const WAN_STOP_MS = 150;
/** Netlink sends bursts of events for one change: look once, this long after the first. */
export const WAN_DEBOUNCE_MS = 100;
/** The kernel adds the connected route a moment after the link event (we do not watch routes): look again 250 ms x try. */
export const WAN_RECHECK_MS = 250;
export const WAN_RECHECK_TRIES = 4;
/** Keys that apply without a reconnect on reload. */
export const LIVE_KEYS: ReadonlySet<string> = new Set(['logLevel', 'reconnectInitial', 'reconnectCap', 'reconnectJitter', 'controlSocket', 'notifyCommand']);

export type TimerKey = 'wait' | 'wan-check' | 'wan-recheck' | 'lan-hold' | 'stop' | 'forced';

export type IpsecResult = { ok: true; overhead: number } | { ok: false; reason: string; permanent?: boolean };

export type SupervisorInput = { now: number } & (
  | { type: 'start' }
  | { type: 'resolved'; endpoints: Endpoint[] }
  /** The kernel's source address towards `sc` (token from check-source), or null with why not. */
  | { type: 'source-address'; token: number; address: string | null; error?: string }
  | { type: 'ipsec-up'; result: IpsecResult }
  | { type: 'ipsec-lost'; reason: string }
  | { type: 'dialled'; id: number; mtu: number }
  | { type: 'dial-failed'; id: number; reason: string }
  | { type: 'connection-up'; id: number }
  | { type: 'connection-degraded'; id: number }
  | { type: 'connection-progress'; id: number; layer: string; message: string }
  | { type: 'connection-prefix'; id: number; prefix: Prefix }
  | { type: 'connection-down'; id: number; info: DownInfo }
  | { type: 'connection-stopped'; id: number }
  | { type: 'teardown-done'; id: number; heldForS: number }
  /** A netlink address/link change (or overrun). */
  | { type: 'wan-event' }
  | { type: 'admin'; cmd: 'up' | 'down' | 'reconnect' }
  | { type: 'reload'; changed: string[]; secretsChanged: boolean; reconnect: ReconnectSettings }
  /** Something the notify receiver reads changed (DNS servers), or the operator asked. */
  | { type: 'notify-request' }
  | { type: 'stop' }
  | { type: 'forced-cleanup-done' }
  | { type: 'timer'; key: TimerKey }
);

export type SupervisorOutput =
  | { type: 'resolve-endpoints' }
  | { type: 'check-source'; token: number; sc: Endpoint }
  | { type: 'ipsec-up'; sc: Endpoint; local: string }
  | { type: 'ipsec-down' }
  | { type: 'dial'; id: number; sc: Endpoint; local: string; ipsecOverhead: number }
  | { type: 'start-connection'; id: number }
  | { type: 'dispose-connection'; id: number }
  | { type: 'stop-connection'; id: number; budgetMs: number; release: boolean; graceful: boolean }
  | { type: 'clear-installer'; id: number; holdLan: boolean }
  /** The attempt is over: its connection and installer are no longer the agent's. */
  | { type: 'end-attempt'; id: number }
  | { type: 'hold-lan'; forS: number }
  | { type: 'release-lan' }
  | { type: 'save-prefix'; prefix: Prefix }
  | { type: 'set-state'; state: AgentState; since: number }
  | { type: 'notify'; state: AgentState }
  | { type: 'arm-timer'; key: TimerKey; at: number }
  | { type: 'cancel-timer'; key: TimerKey }
  | { type: 'log'; level: 'info' | 'warn'; message: string; fields?: Record<string, unknown> }
  | { type: 'progress'; layer: string; message: string }
  /** The stop budget is spent: release what is left without goodbyes, then answer forced-cleanup-done. */
  | { type: 'forced-cleanup' }
  | { type: 'reply'; message: string }
  /** Stopped: nothing of ours runs any more. */
  | { type: 'done' };

export interface SupervisorOptions {
  reconnect: ReconnectSettings;
  random: Rng;
  /** IPsec step 0 (RFC 5571 5) before every dial. */
  ipsec: boolean;
  now: number;
}

type Attempt = { id: number; sc: Endpoint; local: string };
type Phase =
  | { name: 'idle' }
  | { name: 'resolving' }
  | { name: 'source'; sc: Endpoint; token: number }
  | { name: 'ipsec'; sc: Endpoint; local: string }
  | { name: 'dialling'; a: Attempt }
  | { name: 'running'; a: Attempt }
  | { name: 'stopping-conn'; a: Attempt; o: Outcome }
  | { name: 'clearing'; a: Attempt; o: Outcome }
  | { name: 'backoff'; info: DownInfo; gen: number }
  | { name: 'admin-down' }
  | { name: 'forced' }
  | { name: 'done' };

/** Whether a reload with these changes needs a new attempt. */
export function needsReconnect(changed: readonly string[], secretsChanged: boolean): boolean {
  return secretsChanged || changed.some((k) => !LIVE_KEYS.has(k));
}

/** The kernel answers the unspecified address on a downed link: that is no route too. */
function usable(a: string | null): string | null {
  return a === null || a === '0.0.0.0' || a === '::' ? null : a;
}

export class Supervisor {
  private phase: Phase = { name: 'idle' };
  private stateNow: AgentState = 'down';
  private sinceAt: number;
  private adminDownNow = false;
  private stoppingNow = false;
  private pending: Outcome | null = null;
  private readonly policy: ReconnectPolicy;
  private endpoints: Endpoint[] = [];
  private reconnectCount = 0;
  private lastErr: { at: number; layer: string; message: string } | null = null;
  private tearingDown = false;
  private lanHeld = false;
  private wanCheckArmed = false;
  private recheckTries = 0;
  private seq = 0;
  /** Outstanding WAN source-address queries: token -> what it checks. */
  private readonly wanQueries = new Map<number, { attempt: number } | { gen: number; tries: number }>();
  private readonly timers = new Map<TimerKey, number>();
  private out: SupervisorOutput[] = [];
  private now = 0;

  constructor(private readonly opts: SupervisorOptions) {
    this.sinceAt = opts.now;
    this.policy = new ReconnectPolicy(opts.reconnect, opts.random);
  }

  get state(): AgentState {
    return this.stateNow;
  }
  get since(): number {
    return this.sinceAt;
  }
  get reconnects(): number {
    return this.reconnectCount;
  }
  get lastError(): { at: number; layer: string; message: string } | null {
    return this.lastErr;
  }
  get adminDown(): boolean {
    return this.adminDownNow;
  }
  get stopping(): boolean {
    return this.stoppingNow;
  }
  get finished(): boolean {
    return this.phase.name === 'done';
  }
  /** The phase name, for tests and logs. */
  get phaseName(): Phase['name'] {
    return this.phase.name;
  }

  handle(input: SupervisorInput): SupervisorOutput[] {
    this.out = [];
    this.now = input.now;
    this.step(input);
    return this.out;
  }

  private step(i: SupervisorInput): void {
    const p = this.phase;
    switch (i.type) {
      case 'start':
        if (p.name === 'idle' && !this.stoppingNow) this.nextRound();
        return;
      case 'resolved':
        if (p.name !== 'resolving') return;
        this.endpoints = i.endpoints;
        if (i.endpoints.length === 0) return this.ended({ layer: 'transport', reason: 'no SC address could be resolved' });
        return this.checkSource(i.endpoints[this.policy.sc % i.endpoints.length]!);
      case 'source-address':
        if (p.name === 'source' && p.token === i.token) return this.sourceFound(p.sc, usable(i.address), i.error);
        return this.wanChecked(i.token, usable(i.address));
      case 'ipsec-up':
        if (p.name !== 'ipsec') return;
        if (i.result.ok) return this.dial(p.sc, p.local, i.result.overhead);
        this.emit({ type: 'ipsec-down' });
        return this.ended({ layer: 'ipsec', reason: i.result.reason, permanent: i.result.permanent });
      case 'ipsec-lost':
        if (p.name === 'running') this.signal({ kind: 'down', info: { layer: 'ipsec', reason: i.reason } });
        return;
      case 'dialled':
        return this.dialled(i.id, i.mtu);
      case 'dial-failed':
        if (p.name !== 'dialling' || p.a.id !== i.id) return;
        if (this.opts.ipsec) this.emit({ type: 'ipsec-down' });
        return this.ended({ layer: 'transport', reason: `cannot reach ${p.a.sc.address}:${p.a.sc.port}: ${i.reason}` });
      case 'connection-up':
        if (!this.live(i.id)) return;
        this.policy.up();
        return this.setState('up');
      case 'connection-degraded':
        // The notify receiver re-reads status, which now says what is missing (or no longer).
        if (this.stateNow === 'up') this.notify();
        return;
      case 'connection-progress':
        this.emit({ type: 'progress', layer: i.layer, message: i.message });
        if (this.stateNow === 'up' && (i.layer === 'ipv6' || i.layer === 'ipv4')) this.notify();
        return;
      case 'connection-prefix':
        // A new lease owns the LAN now (same prefix: kept as is; another: the old one deprecated by the provisioner).
        this.lanHeld = false;
        this.cancel('lan-hold');
        this.emit({ type: 'save-prefix', prefix: i.prefix });
        return this.notify();
      case 'connection-down':
        if (this.live(i.id)) this.signal({ kind: 'down', info: i.info });
        return;
      case 'connection-stopped':
        if (p.name !== 'stopping-conn' || p.a.id !== i.id) return;
        return this.clear(p.a, p.o);
      case 'teardown-done':
        if (p.name === 'clearing' && p.a.id === i.id) return this.cleared(p.a, p.o, i.heldForS);
        return;
      case 'wan-event':
        return this.wanEvent();
      case 'admin':
        return this.admin(i.cmd);
      case 'reload': {
        this.policy.configure(i.reconnect);
        const needs = needsReconnect(i.changed, i.secretsChanged);
        this.log('info', needs ? 'configuration reloaded; reconnecting' : 'configuration reloaded', { changed: i.changed, secretsChanged: i.secretsChanged });
        if (needs && !this.adminDownNow) this.signal({ kind: 'reconnect', why: 'configuration changed' });
        return;
      }
      case 'notify-request':
        return this.notify();
      case 'stop':
        return this.stop();
      case 'forced-cleanup-done':
        return this.forcedDone();
      case 'timer':
        if (!this.timers.has(i.key)) return;
        this.timers.delete(i.key);
        return this.timer(i.key);
    }
  }

  // --- the round: the agent's run loop, one step per input ---

  /** Top of the loop: an administratively down softwire waits for "up"; otherwise a new attempt. */
  private nextRound(): void {
    if (this.stoppingNow) return this.finish();
    if (this.adminDownNow) {
      // A LAN held over a reconnect is withdrawn too when the operator takes the softwire down during the backoff.
      this.releaseLan();
      this.setState('down');
      this.phase = { name: 'admin-down' };
      return this.waitFor(Number.POSITIVE_INFINITY);
    }
    this.setState('connecting');
    // This dial is the reconnect anyone asked for so far.
    if (this.pending?.kind === 'reconnect') this.pending = null;
    this.phase = { name: 'resolving' };
    this.emit({ type: 'resolve-endpoints' });
  }

  private checkSource(sc: Endpoint): void {
    const token = ++this.seq;
    this.phase = { name: 'source', sc, token };
    this.emit({ type: 'check-source', token, sc });
  }

  private sourceFound(sc: Endpoint, local: string | null, error = 'no source address (no route)'): void {
    if (!local) return this.ended({ layer: 'transport', reason: `no route to ${sc.address}: ${error}` });
    if (!this.opts.ipsec) return this.dial(sc, local, 0);
    this.emit({ type: 'progress', layer: 'ipsec', message: `bringing up the IPsec SA with ${sc.address}` });
    this.phase = { name: 'ipsec', sc, local };
    this.emit({ type: 'ipsec-up', sc, local });
  }

  private dial(sc: Endpoint, local: string, ipsecOverhead: number): void {
    const a = { id: ++this.seq, sc, local };
    this.phase = { name: 'dialling', a };
    this.emit({ type: 'dial', id: a.id, sc, local, ipsecOverhead });
  }

  private dialled(id: number, mtu: number): void {
    const p = this.phase;
    if (p.name !== 'dialling' || p.a.id !== id) {
      // A dial that completed after the stop budget was spent: nobody wants it.
      this.emit({ type: 'dispose-connection', id });
      return this.emit({ type: 'end-attempt', id });
    }
    const early = this.takePending();
    if (early) {
      this.emit({ type: 'dispose-connection', id });
      return this.clear(p.a, early);
    }
    this.phase = { name: 'running', a: p.a };
    this.emit({ type: 'progress', layer: 'agent', message: `dialling SC ${p.a.sc.address}:${p.a.sc.port} from ${p.a.local} (MTU ${mtu})` });
    this.emit({ type: 'start-connection', id });
  }

  /** The running attempt's outcome: goodbyes only make sense while the far end may still hear them. */
  private teardown(a: Attempt, o: Outcome): void {
    this.tearingDown = true;
    const graceful = o.kind === 'stop' || o.kind === 'admin-down' || (o.kind === 'reconnect' && !o.why.startsWith('WAN'));
    const budgetMs = graceful ? GRACEFUL_STOP_MS : o.kind === 'down' ? FAILED_STOP_MS : WAN_STOP_MS;
    this.phase = { name: 'stopping-conn', a, o };
    this.emit({ type: 'stop-connection', id: a.id, budgetMs, release: o.kind === 'stop' || o.kind === 'admin-down', graceful });
  }

  /** A reconnect keeps the LAN: if the same prefix comes back in time, LAN hosts see nothing. */
  private clear(a: Attempt, o: Outcome): void {
    this.tearingDown = true;
    this.phase = { name: 'clearing', a, o };
    this.emit({ type: 'clear-installer', id: a.id, holdLan: o.kind === 'down' || o.kind === 'reconnect' });
  }

  private cleared(a: Attempt, o: Outcome, heldForS: number): void {
    if (heldForS > 0) this.holdLan(heldForS);
    else if (o.kind === 'stop' || o.kind === 'admin-down') this.releaseLan();
    this.tearingDown = false;
    this.emit({ type: 'end-attempt', id: a.id });
    // IPsec teardown: after the L2TP goodbyes, which still ride the SA.
    if (this.opts.ipsec) this.emit({ type: 'ipsec-down' });
    this.attemptEnded(o);
  }

  /** An attempt that ended before it had a connection: what was asked meanwhile wins over its failure. */
  private ended(info: DownInfo): void {
    this.attemptEnded(this.takePending() ?? { kind: 'down', info });
  }

  private attemptEnded(o: Outcome): void {
    if (o.kind === 'stop') return this.finish();
    if (o.kind === 'admin-down') return this.nextRound();
    this.reconnectCount++;
    if (o.kind === 'reconnect') {
      this.emit({ type: 'progress', layer: 'agent', message: `reconnecting now: ${o.why}` });
      return this.nextRound();
    }
    const info = o.info;
    this.lastErr = { at: this.now, layer: info.layer, message: info.reason };
    const { delayMs, rule } = this.policy.failed(info, this.endpoints.length);
    this.setState('connecting');
    const why = rule === 'will-not-fix-itself' ? " (the SC's answer will not change by itself: waiting at least a quarter of the reconnect cap)" : '';
    this.emit({ type: 'progress', layer: 'agent', message: `${info.layer} down: ${info.reason}; retrying in ${(delayMs / 1000).toFixed(1)} s${why}` });
    this.phase = { name: 'backoff', info, gen: ++this.seq };
    this.waitFor(delayMs);
  }

  /** Waits `ms` (backoff, or forever while administratively down) unless an outcome is already pending. */
  private waitFor(ms: number): void {
    const p = this.takePending();
    if (p) return this.waitEnded(p);
    if (Number.isFinite(ms)) this.arm('wait', this.now + ms);
  }

  private waitEnded(o: Outcome): void {
    const p = this.phase;
    this.cancel('wait');
    if (p.name === 'running') return this.teardown(p.a, o);
    if (o.kind === 'stop') return this.finish();
    if (p.name === 'backoff' && o.kind === 'reconnect' && o.why !== 'backoff elapsed') this.emit({ type: 'progress', layer: 'agent', message: `retrying now: ${o.why}` });
    this.nextRound();
  }

  /** Delivers an outcome to whatever waits for one, or remembers it (see the top of this file). */
  private signal(o: Outcome): void {
    if (this.stoppingNow && o.kind !== 'stop') return;
    const n = this.phase.name;
    if (n === 'running' || n === 'backoff' || n === 'admin-down') return this.waitEnded(o);
    if (o.kind === 'down') return;
    if (!this.pending || RANK[o.kind] >= RANK[this.pending.kind]) this.pending = o;
  }

  private takePending(): Outcome | null {
    const p = this.pending;
    this.pending = null;
    return p;
  }

  private live(id: number): boolean {
    return this.phase.name === 'running' && this.phase.a.id === id;
  }

  // --- operator, stop, timers ---

  private admin(cmd: 'up' | 'down' | 'reconnect'): void {
    if (cmd === 'down') {
      if (this.adminDownNow) return this.reply('already down');
      this.adminDownNow = true;
      this.signal({ kind: 'admin-down' });
      return this.reply('taking the softwire down');
    }
    if (cmd === 'up' && !this.adminDownNow) return this.reply(`already ${this.stateNow === 'up' ? 'up' : 'enabled'}`);
    this.adminDownNow = false;
    this.policy.reset();
    this.signal({ kind: 'reconnect', why: cmd === 'up' ? 'administratively up' : 'requested by operator' });
    this.reply(cmd === 'up' ? 'bringing the softwire up' : 'reconnecting');
  }

  /** Graceful stop: the attempt does its goodbyes and cleanup within the budget, or is cut short. */
  private stop(): void {
    if (this.stoppingNow) return;
    this.stoppingNow = true;
    if (this.phase.name === 'idle') return this.finish();
    this.arm('stop', this.now + STOP_BUDGET_MS);
    this.signal({ kind: 'stop' });
  }

  /** The loop is over: the softwire is down and nothing of ours waits on a timer. */
  private finish(): void {
    if (this.phase.name !== 'idle') this.setState('down');
    this.phase = { name: 'done' };
    for (const k of ['stop', 'forced', 'wait', 'wan-check', 'wan-recheck'] as const) this.cancel(k);
    this.releaseLan();
    this.emit({ type: 'done' });
  }

  private timer(key: TimerKey): void {
    switch (key) {
      case 'wait':
        return this.signal({ kind: 'reconnect', why: 'backoff elapsed' });
      case 'wan-check':
        this.wanCheckArmed = false;
        return this.wanCheck();
      case 'wan-recheck':
        return this.checkWhileWaiting(this.recheckTries);
      case 'lan-hold':
        return this.releaseLan();
      case 'stop':
        if (this.phase.name === 'done') return;
        this.log('warn', 'shutdown budget spent; releasing what is left without goodbyes');
        this.phase = { name: 'forced' };
        this.arm('forced', this.now + FORCED_CLEANUP_MS);
        return this.emit({ type: 'forced-cleanup' });
      case 'forced':
        this.log('warn', 'releasing what is left did not finish in time; exiting anyway');
        return this.forcedDone();
    }
  }

  /** Exit means exit: after the forced release (or its deadline) the softwire is down, whatever is left. */
  private forcedDone(): void {
    if (this.phase.name !== 'forced') return;
    this.tearingDown = false;
    this.setState('down');
    this.finish();
  }

  // --- WAN watch ---

  /** The attempt that holds a connection (running, or being torn down). */
  private withConnection(): Attempt | null {
    const p = this.phase;
    return p.name === 'running' || p.name === 'stopping-conn' || p.name === 'clearing' ? p.a : null;
  }

  private wanEvent(): void {
    if (this.wanCheckArmed || this.stoppingNow) return;
    if (!this.withConnection() && this.phase.name !== 'backoff') return;
    this.wanCheckArmed = true;
    this.arm('wan-check', this.now + WAN_DEBOUNCE_MS);
  }

  private wanCheck(): void {
    const a = this.withConnection();
    if (!a) return this.checkWhileWaiting(0);
    const token = ++this.seq;
    this.wanQueries.set(token, { attempt: a.id });
    this.emit({ type: 'check-source', token, sc: a.sc });
  }

  /**
   * Backing off because the SC was unreachable from here (no route, no address): once
   * the WAN offers a route again, dial now rather than sit out the rest of the backoff.
   * Other failures keep their backoff.
   */
  private checkWhileWaiting(tries: number): void {
    const p = this.phase;
    if (p.name !== 'backoff' || (p.info.layer !== 'transport' && p.info.layer !== 'wan') || this.endpoints.length === 0) return;
    const token = ++this.seq;
    this.wanQueries.set(token, { gen: p.gen, tries });
    this.emit({ type: 'check-source', token, sc: this.endpoints[this.policy.sc % this.endpoints.length]! });
  }

  private wanChecked(token: number, now: string | null): void {
    const q = this.wanQueries.get(token);
    if (!q) return;
    this.wanQueries.delete(token);
    const p = this.phase;
    if ('attempt' in q) {
      const a = this.withConnection();
      if (!a || a.id !== q.attempt || now === a.local) return;
      this.emit({ type: 'progress', layer: 'wan', message: `local address changed from ${a.local} to ${now ?? '(none)'}` });
      return this.signal({ kind: 'reconnect', why: `WAN address changed from ${a.local} to ${now ?? '(none)'}` });
    }
    if (p.name !== 'backoff' || p.gen !== q.gen) return;
    const sc = this.endpoints[this.policy.sc % this.endpoints.length]!;
    if (now) return this.signal({ kind: 'reconnect', why: `WAN has a route to ${sc.address} again (from ${now})` });
    if (q.tries < WAN_RECHECK_TRIES) {
      this.recheckTries = q.tries + 1;
      this.arm('wan-recheck', this.now + WAN_RECHECK_MS * (q.tries + 1));
    }
  }

  // --- LAN hold, state, notify ---

  /** Keeps the LAN numbered from the last lease for at most its remaining valid lifetime. */
  private holdLan(forS: number): void {
    this.lanHeld = true;
    this.emit({ type: 'hold-lan', forS });
    this.arm('lan-hold', this.now + Math.min(forS * 1000, 2 ** 31 - 1));
  }

  /** Withdraws a held LAN numbering and its DNS (stop, admin-down, or the lease ran out before a prefix came back). */
  private releaseLan(): void {
    this.cancel('lan-hold');
    if (!this.lanHeld) return;
    this.lanHeld = false;
    this.emit({ type: 'release-lan' });
  }

  private setState(s: AgentState): void {
    if (s === this.stateNow) return;
    this.stateNow = s;
    this.sinceAt = this.now;
    this.emit({ type: 'set-state', state: s, since: this.now });
    this.notify();
  }

  /**
   * While an attempt is torn down its addresses, prefix and DNS disappear one by one
   * while the state still reads "up"; the receiver (netifd) must not be told that
   * half-removed picture: the state change after the teardown notifies instead. While
   * stopping, the receiver is the one stopping us and our exit is the news.
   */
  private notify(): void {
    if (this.tearingDown || this.stoppingNow) return;
    this.emit({ type: 'notify', state: this.stateNow });
  }

  private arm(key: TimerKey, at: number): void {
    this.timers.set(key, at);
    this.emit({ type: 'arm-timer', key, at });
  }

  private cancel(key: TimerKey): void {
    if (this.timers.delete(key)) this.emit({ type: 'cancel-timer', key });
  }

  private reply(message: string): void {
    this.emit({ type: 'reply', message });
  }

  private log(level: 'info' | 'warn', message: string, fields?: Record<string, unknown>): void {
    this.emit({ type: 'log', level, message, fields });
  }

  private emit(o: SupervisorOutput): void {
    this.out.push(o);
  }
}

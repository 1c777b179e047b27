/**
 * The setup of one softwire attempt as a pure core: which phase it is in, the
 * deadline of that phase, and when the link is usable. The Connection feeds it
 * what the protocol cores and the installer report, each with `now`
 * (monotonic ms); it answers with actions. No clock, timer or I/O in here.
 *
 * Phases run in order: tunnel (SCCRQ until SCCRP), session (ICRQ until ICRP),
 * lcp, auth, ncp. Each has its own deadline, so an SC that acknowledges with a
 * ZLB and then never answers (an LNS waiting on RADIUS) ends the attempt with a
 * reason instead of leaving it "connecting" forever.
 *
 * "up" means usable, the same for status, `wait` and the notify command:
 * - host: a global address installed (past DAD: the SLAAC core only reports it
 *   then), the IPv6 default route, and the DNS the SC offers (no DHCPv6
 *   exchange that may bring it still running);
 * - router: in addition the delegated prefix installed with every LAN numbered
 *   and advertised (the installer's LAN hook has run); the router's global
 *   address may then be a LAN one (RFC 7084 WAA-6), so the prefix stands in for
 *   a WAN address;
 * - IPv4 (IPCP carrying traffic): its address and routes installed.
 * If the SC offers no address or prefix within `provisionWaitMs` after the NCPs
 * came up, the attempt reports up with a `degraded` reason rather than wait forever.
 */

export type Phase = 'tunnel' | 'session' | 'lcp' | 'auth' | 'ncp';
/** What status shows timestamps for. */
export type Milestone = 'dial' | Phase | 'address' | 'prefix';

export const PHASES: readonly Phase[] = ['tunnel', 'session', 'lcp', 'auth', 'ncp'];

export interface SessionCoreOptions {
  /** Longest each setup phase may take, ms. */
  deadlines: Record<Phase, number>;
  /** After the NCPs are up: longest wait for address/prefix before "up, degraded". */
  provisionWaitMs: number;
  mode: 'host' | 'router';
  needIpv6: boolean;
  needIpv4: boolean;
}

/** What the driver reports; `now` comes with every input (see the methods). */
export type SessionInput =
  | { type: 'dialed' }
  | { type: 'tunnel-up' }
  | { type: 'session-up' }
  /** The PPP link's phase after each of its inputs. */
  | { type: 'ppp-phase'; phase: 'dead' | 'establish' | 'authenticate' | 'network' | 'open' | 'terminate' }
  | { type: 'ncp-up'; ncp: 'ipv6cp' | 'ipcp' }
  /** IPCP up, carrying traffic, and its address and routes installed (or IPv4 not carried). */
  | { type: 'ipv4-ready' }
  /** A global address is installed in the kernel (or gone). */
  | { type: 'address'; present: boolean }
  | { type: 'default-route'; present: boolean }
  /** A DHCPv6 exchange that may bring DNS is under way (true) or over (false). */
  | { type: 'dns-pending'; pending: boolean }
  /** Router role: the delegated prefix is installed and the LANs numbered and advertised (or withdrawn). */
  | { type: 'prefix'; present: boolean }
  | { type: 'timer' };

export type SessionAction =
  /** Arm the one deadline timer for `at` (monotonic ms); replaces any armed one. */
  | { type: 'arm'; at: number }
  | { type: 'disarm' }
  /** A phase overran: clear the attempt (StopCCN/CDN carrying `message`) and let the Supervisor back off. */
  | { type: 'expired'; phase: Phase; message: string }
  /** The link is usable; `degraded` names what the SC did not provide in time, or null. */
  | { type: 'up'; degraded: string | null }
  /** While up: what is missing changed (null: nothing any more). */
  | { type: 'degraded'; reason: string | null };

export interface SessionCoreStatus {
  /** Monotonic ms at which each milestone was reached (null: not yet). */
  at: Record<Milestone, number | null>;
  phase: Phase | 'provision' | 'up' | 'failed';
  degraded: string | null;
}

export class SessionCore {
  private readonly at: Record<Milestone, number | null> = { dial: null, tunnel: null, session: null, lcp: null, auth: null, ncp: null, address: null, prefix: null };
  private phase: SessionCoreStatus['phase'] = 'tunnel';
  private deadline: number | null = null;
  private ncps = new Set<'ipv6cp' | 'ipcp'>();
  private ipv4Ready = false;
  private address = false;
  private defaultRoute = false;
  private dnsPending = false;
  private prefix = false;
  private degraded: string | null = null;
  private provisionOver = false;

  constructor(private readonly o: SessionCoreOptions) {}

  status(): SessionCoreStatus {
    return { at: { ...this.at }, phase: this.phase, degraded: this.degraded };
  }

  input(ev: SessionInput, now: number): SessionAction[] {
    if (this.phase === 'failed') return [];
    switch (ev.type) {
      case 'dialed':
        this.at.dial = now;
        return this.enter('tunnel', now);
      case 'tunnel-up':
        this.at.tunnel ??= now;
        return this.phase === 'tunnel' ? this.enter('session', now) : [];
      case 'session-up':
        this.at.session ??= now;
        return this.phase === 'session' ? this.enter('lcp', now) : [];
      case 'ppp-phase':
        // LCP opened: authentication next, or straight to the network phase when nobody asked for it.
        if (ev.phase === 'authenticate' && this.phase === 'lcp') {
          this.at.lcp ??= now;
          return this.enter('auth', now);
        }
        if ((ev.phase === 'network' || ev.phase === 'open') && (this.phase === 'lcp' || this.phase === 'auth')) {
          this.at.lcp ??= now;
          this.at.auth ??= now;
          return this.enter('ncp', now);
        }
        return [];
      case 'ncp-up':
        this.ncps.add(ev.ncp);
        if (this.phase !== 'ncp') return [];
        if ((this.o.needIpv6 && !this.ncps.has('ipv6cp')) || (this.o.needIpv4 && !this.ncps.has('ipcp'))) return [];
        this.at.ncp = now;
        this.phase = 'provision';
        this.deadline = this.o.needIpv6 ? now + this.o.provisionWaitMs : null;
        return [...(this.deadline === null ? [] : [{ type: 'arm', at: this.deadline } as const]), ...this.check()];
      case 'ipv4-ready':
        this.ipv4Ready = true;
        return this.check();
      case 'address':
        this.address = ev.present;
        if (ev.present) this.at.address ??= now;
        return this.check();
      case 'default-route':
        this.defaultRoute = ev.present;
        return this.check();
      case 'dns-pending':
        this.dnsPending = ev.pending;
        return this.check();
      case 'prefix':
        this.prefix = ev.present;
        if (ev.present) this.at.prefix ??= now;
        return this.check();
      case 'timer':
        return this.timer(now);
    }
  }

  private enter(p: Phase, now: number): SessionAction[] {
    this.phase = p;
    this.deadline = now + this.o.deadlines[p];
    return [{ type: 'arm', at: this.deadline }];
  }

  private timer(now: number): SessionAction[] {
    if (this.deadline === null || now < this.deadline) return this.deadline === null ? [] : [{ type: 'arm', at: this.deadline }];
    this.deadline = null;
    if (this.phase === 'provision') {
      this.provisionOver = true;
      return this.check();
    }
    if (this.phase === 'up') return [];
    const p = this.phase as Phase;
    this.phase = 'failed';
    return [{ type: 'expired', phase: p, message: `${WAITING_FOR[p]} within ${(this.o.deadlines[p] / 1000).toFixed(0)} s` }];
  }

  /** What still keeps the link from being usable (empty: nothing). */
  private missing(): string[] {
    const m: string[] = [];
    if (this.o.needIpv4 && !this.ipv4Ready) m.push('IPv4 address and routes');
    if (!this.o.needIpv6) return m;
    const router = this.o.mode === 'router';
    if (router && !this.prefix) m.push('delegated prefix');
    if (!this.address && !(router && this.prefix)) m.push('global IPv6 address');
    if (!this.defaultRoute) m.push('IPv6 default route (Router Advertisement)');
    if (this.dnsPending) m.push('DNS (DHCPv6)');
    return m;
  }

  private check(): SessionAction[] {
    if (this.phase !== 'provision' && this.phase !== 'up') return [];
    const missing = this.missing();
    if (this.phase === 'provision') {
      if (missing.length && !this.provisionOver) return [];
      this.phase = 'up';
      this.degraded = missing.length ? `no ${missing.join(', no ')} from the SC within ${(this.o.provisionWaitMs / 1000).toFixed(0)} s of the NCPs` : null;
      const acts: SessionAction[] = [];
      if (this.deadline !== null) {
        this.deadline = null;
        acts.push({ type: 'disarm' });
      }
      acts.push({ type: 'up', degraded: this.degraded });
      return acts;
    }
    // Up already: report when what is missing changes (a late prefix clears the reason).
    const reason = missing.length ? `no ${missing.join(', no ')}` : null;
    if (reason === this.degraded) return [];
    this.degraded = reason;
    return [{ type: 'degraded', reason }];
  }
}

const WAITING_FOR: Record<Phase, string> = {
  tunnel: 'no SCCRP (tunnel reply) from the SC',
  session: 'no ICRP (session reply) from the SC',
  lcp: 'LCP did not open',
  auth: 'authentication did not finish',
  ncp: 'IPV6CP/IPCP did not open',
};

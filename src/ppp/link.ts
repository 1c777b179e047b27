/**
 * The PPP link (RFC 1661 section 3 phases), sans-I/O: Dead -> Establish (LCP) ->
 * Authenticate (CHAP/PAP, as LCP negotiated) -> Network (NCPs) -> Open -> Terminate.
 *
 * NCP policy. `ipv6` (the default, RFC 5571 3.1) runs IPV6CP; `ipv4` runs IPCP only;
 * `dual` runs both. An SC such as l2tpns treats IPCP as mandatory and starts IPV6CP
 * only after IPCP has opened, so with policy `ipv6` the link also negotiates IPCP
 * when the peer sends an IPCP Configure-Request, or when IPV6CP has not opened
 * `ipcpFallbackMs` after the Network phase began. That IPCP result is reported with
 * `carryTraffic: false` (unless `ipv4Traffic` is set), and IPv4 frames are then
 * dropped in both directions: RFC 5571 3.1 wants no IPv4 route through an IPv6
 * softwire unless configured. The policy's own NCPs are required: when all of them
 * have failed (e.g. the SC Protocol-Rejects IPV6CP) the link closes with that reason.
 *
 * Inputs are method calls carrying `now` (ms, from the edge's clock); outputs are
 * returned actions. Timer names: lcp.restart, ipcp.restart, ipv6cp.restart,
 * auth.timeout (CHAP), auth.restart (PAP), echo, link.ipcp-fallback.
 */
import { startTimer, stopTimer, type TimerAction } from '../core/actions';
import { Automaton, type AutomatonConfig, type AutomatonOutput, type FsmState } from './automaton';
import { type AuthClient, type AuthOutput, ChapClient, PapClient } from './auth';
import { type EchoConfig, EchoKeepalive, type EchoOutput, type EchoStatus } from './echo';
import { decodeFrame, encodeFrame, PppDecodeError, PROTO } from './frame';
import { IpcpHandler, type IpcpResult } from './ipcp';
import { formatIid, Ipv6cpHandler, type Ipv6cpResult } from './ipv6cp';
import { TokenBucket } from '../core/token-bucket';
import { buildProtocolReject, type LcpCredentials, LcpHandler, type RandomBytes } from './lcp';

export type NcpPolicy = 'ipv6' | 'ipv4' | 'dual';
export type NcpName = 'ipv6cp' | 'ipcp';
export type LinkPhase = 'dead' | 'establish' | 'authenticate' | 'network' | 'open' | 'terminate';

export interface LinkConfig {
  randomBytes: RandomBytes;
  /** Our MRU: link MTU minus IP/UDP/L2TP/PPP overhead (RFC 5571 5.2.1). Default 1500. */
  mru?: number;
  credentials?: LcpCredentials;
  policy?: NcpPolicy;
  /** Restart timer and counters, shared by LCP and the NCPs. */
  automaton?: Partial<AutomatonConfig>;
  /** LCP echo keepalive; false turns it off. */
  echo?: EchoConfig | false;
  ipv6cp?: { iid?: Buffer };
  ipcp?: { address?: string; requestDns?: boolean };
  /** Policy ipv6: start IPCP ourselves if IPV6CP has not opened after this long (ms); 0 never. Default 5000. */
  ipcpFallbackMs?: number;
  /** Policy ipv6: let IPv4 traffic through the softwire when IPCP opens anyway. Default false. */
  ipv4Traffic?: boolean;
  chapTimeoutMs?: number;
}

export type IpcpLinkResult = IpcpResult & { carryTraffic: boolean };

export type LinkAction =
  | { type: 'send'; frame: Buffer }
  | TimerAction
  | { type: 'ncp-up'; ncp: 'ipv6cp'; result: Ipv6cpResult }
  | { type: 'ncp-up'; ncp: 'ipcp'; result: IpcpLinkResult }
  | { type: 'ncp-down'; ncp: NcpName; reason: string }
  | { type: 'auth-ok'; protocol: string; message: string }
  | { type: 'auth-failed'; message: string }
  | { type: 'data'; protocol: number; payload: Buffer }
  | { type: 'down'; reason: string }
  | { type: 'closed'; reason: string };

export interface LinkStatus {
  phase: LinkPhase;
  lcp: FsmState;
  auth: { protocol: string; state: string; message: string } | null;
  ipv6cp: FsmState;
  ipcp: FsmState;
  negotiated: {
    ourMru: number;
    peerMru: number;
    magic: number;
    peerMagic: number;
    authProtocol: string | null;
    ourIid: string | null;
    peerIid: string | null;
    ipv4: IpcpLinkResult | null;
  };
  echo: EchoStatus;
  counters: { framesIn: number; framesOut: number; bytesIn: number; bytesOut: number; drops: Record<string, number> };
  lastReason: string;
}

const DATA_NCP: Record<number, NcpName> = { [PROTO.IPV6]: 'ipv6cp', [PROTO.IPV4]: 'ipcp' };
const MAX_DROP_KEYS = 64;

interface Ncp {
  name: NcpName;
  fsm: Automaton;
  required: boolean;
}

export class PppLink {
  private phaseNow: LinkPhase = 'dead';
  private readonly lcpHandler: LcpHandler;
  private readonly lcp: Automaton;
  private readonly ncps: Record<NcpName, Ncp>;
  private readonly ipv6cpHandler: Ipv6cpHandler;
  private readonly ipcpHandler: IpcpHandler;
  private readonly echo: EchoKeepalive | null;
  private auth: AuthClient | null = null;
  private readonly policy: NcpPolicy;
  private acts: LinkAction[] = [];
  private now = 0;
  private downSent = false;
  private reason = '';
  private protoRejId = 0;
  /** Protocol-Rejects: 20 back to back, then 10 a second (a real peer rejects a handful of protocols once). */
  private readonly protoRejBudget = new TokenBucket(20, 10);
  private ipv4: IpcpLinkResult | null = null;
  private readonly counters = { framesIn: 0, framesOut: 0, bytesIn: 0, bytesOut: 0, drops: {} as Record<string, number> };

  constructor(private readonly cfg: LinkConfig) {
    this.policy = cfg.policy ?? 'ipv6';
    const ac = cfg.automaton ?? {};
    this.lcpHandler = new LcpHandler({ mru: cfg.mru, credentials: cfg.credentials, randomBytes: cfg.randomBytes });
    this.lcp = new Automaton('lcp', PROTO.LCP, this.lcpHandler, ac);
    this.ipv6cpHandler = new Ipv6cpHandler({ iid: cfg.ipv6cp?.iid, randomBytes: cfg.randomBytes });
    this.ipcpHandler = new IpcpHandler(cfg.ipcp ?? {});
    this.ncps = {
      ipv6cp: {
        name: 'ipv6cp',
        fsm: new Automaton('ipv6cp', PROTO.IPV6CP, this.ipv6cpHandler, ac),
        required: this.policy !== 'ipv4',
      },
      ipcp: { name: 'ipcp', fsm: new Automaton('ipcp', PROTO.IPCP, this.ipcpHandler, ac), required: this.policy !== 'ipv6' },
    };
    this.echo = cfg.echo === false ? null : new EchoKeepalive(cfg.echo ?? {});
  }

  get phase(): LinkPhase {
    return this.phaseNow;
  }

  /**
   * The L2TP session is up: start LCP. A PppLink serves one session: once it has
   * reported 'closed', make a new one for the next session (a second call is ignored).
   */
  lowerUp(now: number): LinkAction[] {
    return this.step(now, () => {
      if (this.lcp.state !== 'Initial') return;
      this.downSent = false;
      this.reason = '';
      this.phaseNow = 'establish';
      this.feedLcp(this.lcp.open());
      this.feedLcp(this.lcp.up());
    });
  }

  /** The L2TP session is gone: everything stops without a Terminate exchange. */
  lowerDown(now: number, reason = 'lower layer down'): LinkAction[] {
    return this.step(now, () => {
      if (this.lcp.state === 'Initial' || this.lcp.state === 'Starting') return;
      this.feedLcp(this.lcp.down(reason));
      this.feedLcp(this.lcp.close(reason));
      this.finish(reason);
    });
  }

  /** Administrative close: LCP Terminate-Request, then 'closed' once acknowledged or timed out. */
  close(reason = 'administrative close', now = this.now): LinkAction[] {
    return this.step(now, () => this.closeLink(reason));
  }

  receive(frame: Buffer, now: number): LinkAction[] {
    return this.step(now, () => {
      this.counters.framesIn++;
      this.counters.bytesIn += frame.length;
      let protocol: number;
      let payload: Buffer;
      try {
        ({ protocol, payload } = decodeFrame(frame));
      } catch (e) {
        if (e instanceof PppDecodeError) return this.drop(`malformed frame: ${e.reason}`);
        throw e;
      }
      if (this.lcp.state === 'Opened') this.echo?.traffic();
      this.dispatch(protocol, payload);
    });
  }

  timerFired(name: string, now: number): LinkAction[] {
    return this.step(now, () => {
      if (name === this.lcp.timer) this.feedLcp(this.lcp.timeout());
      else if (name === this.ncps.ipv6cp.fsm.timer) this.feedNcp(this.ncps.ipv6cp, this.ncps.ipv6cp.fsm.timeout());
      else if (name === this.ncps.ipcp.fsm.timer) this.feedNcp(this.ncps.ipcp, this.ncps.ipcp.fsm.timeout());
      else if (name === 'echo' && this.echo) this.feedEcho(this.echo.tick(this.lcpHandler.negotiated.ourMagic, this.now));
      else if (name.startsWith('auth.') && this.auth) this.feedAuth(this.auth.timerFired(name));
      else if (name === 'link.ipcp-fallback' && this.phaseNow === 'network') this.activate(this.ncps.ipcp);
    });
  }

  /**
   * Frames an IPv6 (0x0057) or IPv4 (0x0021) packet for the peer, or returns null when
   * that protocol's NCP is not open (counted as a drop).
   */
  sendData(protocol: number, payload: Uint8Array): Buffer | null {
    const why = this.dataBlocked(protocol);
    if (why) {
      this.drop(`tx ${why}`);
      return null;
    }
    const frame = encodeFrame(protocol, payload);
    this.counters.framesOut++;
    this.counters.bytesOut += frame.length;
    return frame;
  }

  /** Whether IPv6 (0x0057) or IPv4 (0x0021) data may flow now: for a data fast path that frames packets itself. */
  canCarry(protocol: number): boolean {
    return this.dataBlocked(protocol) === undefined;
  }

  status(): LinkStatus {
    const lcp = this.lcpHandler.negotiated;
    const v6Open = this.ncps.ipv6cp.fsm.state === 'Opened';
    const v6 = this.ipv6cpHandler.result;
    return {
      phase: this.phaseNow,
      lcp: this.lcp.state,
      auth: this.auth ? { protocol: this.auth.name, state: this.auth.state, message: this.auth.message } : null,
      ipv6cp: this.ncps.ipv6cp.fsm.state,
      ipcp: this.ncps.ipcp.fsm.state,
      negotiated: {
        ourMru: lcp.ourMru,
        peerMru: lcp.peerMru,
        magic: lcp.ourMagic,
        peerMagic: lcp.peerMagic,
        authProtocol: lcp.auth,
        ourIid: v6Open ? formatIid(v6.ourIid) : null,
        peerIid: v6Open ? formatIid(v6.peerIid) : null,
        ipv4: this.ncps.ipcp.fsm.state === 'Opened' ? this.ipv4 : null,
      },
      echo: this.echo?.status ?? { lastRttMs: null, smoothedRttMs: null, sent: 0, replies: 0, outstanding: 0 },
      counters: { ...this.counters, drops: { ...this.counters.drops } },
      lastReason: this.reason,
    };
  }

  // --- internals -------------------------------------------------------------

  private step(now: number, body: () => void): LinkAction[] {
    this.now = now;
    const outer = this.acts;
    this.acts = [];
    body();
    const result = this.acts;
    this.acts = outer;
    return result;
  }

  private emit(a: LinkAction): void {
    if (a.type === 'send') {
      this.counters.framesOut++;
      this.counters.bytesOut += a.frame.length;
    }
    this.acts.push(a);
  }

  private drop(why: string): void {
    const d = this.counters.drops;
    const reason = dropKey(why);
    const key = reason in d || Object.keys(d).length < MAX_DROP_KEYS ? reason : 'other';
    d[key] = (d[key] ?? 0) + 1;
  }

  private dataBlocked(protocol: number): string | undefined {
    const ncp = DATA_NCP[protocol];
    if (!ncp) return 'not a data protocol';
    if (this.ncps[ncp].fsm.state !== 'Opened') return `${ncp} not open`;
    if (ncp === 'ipcp' && this.ipv4 && !this.ipv4.carryTraffic) return 'ipv4 not carried';
    return undefined;
  }

  private dispatch(protocol: number, payload: Buffer): void {
    if (protocol === PROTO.LCP) {
      this.feedLcp(this.lcp.receive(payload));
    } else if (this.lcp.state !== 'Opened') {
      // RFC 1661 3.5: before LCP is Opened, anything but LCP is silently discarded.
      this.drop('non-LCP before LCP opened');
    } else if (protocol === PROTO.PAP || protocol === PROTO.CHAP) {
      if (this.auth?.protocol === protocol) this.feedAuth(this.auth.receive(payload));
      else this.drop('authentication protocol not negotiated');
    } else if (protocol === PROTO.IPCP || protocol === PROTO.IPV6CP) {
      this.receiveNcp(protocol === PROTO.IPCP ? this.ncps.ipcp : this.ncps.ipv6cp, payload);
    } else if (DATA_NCP[protocol]) {
      const why = this.dataBlocked(protocol);
      if (why) this.drop(`rx ${why}`);
      else this.emit({ type: 'data', protocol, payload });
    } else {
      this.protocolReject(protocol, payload);
    }
  }

  private receiveNcp(ncp: Ncp, payload: Buffer): void {
    if (ncp.name === 'ipv6cp' && this.policy === 'ipv4') {
      this.protocolReject(PROTO.IPV6CP, payload);
    } else if (this.phaseNow !== 'network' && this.phaseNow !== 'open') {
      // RFC 1661 3.4/3.5: NCP packets before the Network phase are discarded.
      this.drop(`${ncp.name} before network phase`);
    } else {
      // A peer-started NCP (IPCP under policy ipv6) is joined here.
      if (ncp.fsm.state === 'Initial' || ncp.fsm.state === 'Starting') this.activate(ncp);
      this.feedNcp(ncp, ncp.fsm.receive(payload));
    }
  }

  private protocolReject(protocol: number, payload: Buffer): void {
    // Each unknown protocol number deserves its answer (RFC 1661 5.7), but a flood of them
    // (forged frames from the SC's address) must not turn into a flood of ours.
    if (!this.protoRejBudget.take(this.now)) return this.drop('protocol reject rate-limited');
    this.drop('protocol rejected');
    this.protoRejId = (this.protoRejId + 1) & 0xff;
    const pkt = buildProtocolReject(this.protoRejId, protocol, payload, this.lcpHandler.negotiated.peerMru);
    this.emit({ type: 'send', frame: encodeFrame(PROTO.LCP, pkt) });
  }

  /** Brings an NCP to Req-Sent (from Initial via Open+Up, or from Starting via Up). */
  private activate(ncp: Ncp): void {
    if (ncp.fsm.state === 'Initial') this.feedNcp(ncp, ncp.fsm.open());
    if (ncp.fsm.state === 'Starting') this.feedNcp(ncp, ncp.fsm.up());
  }

  private closeLink(reason: string): void {
    if (this.phaseNow === 'dead') return;
    this.reason ||= reason;
    this.sendDown(reason);
    this.phaseNow = 'terminate';
    this.feedLcp(this.lcp.close(reason));
  }

  private sendDown(reason: string): void {
    if (this.downSent) return;
    this.downSent = true;
    this.reason ||= reason;
    this.emit({ type: 'down', reason });
  }

  private finish(reason: string): void {
    if (this.phaseNow === 'dead') return;
    this.stopUpperLayers(reason);
    this.sendDown(reason);
    this.phaseNow = 'dead';
    this.emit(stopTimer('link.ipcp-fallback'));
    this.emit({ type: 'closed', reason: this.reason || reason });
  }

  private stopUpperLayers(reason: string): void {
    if (this.echo) this.feedEcho(this.echo.stop());
    if (this.auth) {
      this.feedAuth(this.auth.stop());
      this.auth = null;
    }
    for (const ncp of Object.values(this.ncps)) {
      if (ncp.fsm.state !== 'Initial' && ncp.fsm.state !== 'Starting') this.feedNcp(ncp, ncp.fsm.down(`lcp down: ${reason}`));
    }
  }

  private sendControl(o: { protocol: number; bytes: Buffer }): void {
    this.emit({ type: 'send', frame: encodeFrame(o.protocol, o.bytes) });
  }

  private common(o: AutomatonOutput | AuthOutput | EchoOutput): boolean {
    switch (o.type) {
      case 'send':
        this.sendControl(o);
        return true;
      case 'timer-start':
      case 'timer-stop':
        this.emit(o);
        return true;
      case 'drop':
        this.drop(`${o.layer}: ${o.reason}`);
        return true;
      default:
        return false;
    }
  }

  private feedLcp(outs: AutomatonOutput[]): void {
    for (const o of outs) {
      if (this.common(o)) continue;
      switch (o.type) {
        case 'up':
          this.lcpUp();
          break;
        case 'down':
          // Leaving Opened: renegotiation or termination; either way the upper layers stop.
          this.stopUpperLayers(o.reason);
          this.sendDown(o.reason);
          this.phaseNow = this.lcp.state === 'Closing' || this.lcp.state === 'Stopping' ? 'terminate' : 'establish';
          break;
        case 'finished':
          this.finish(o.reason);
          break;
        case 'protocol-rejected': {
          const ncp = o.protocol === PROTO.IPCP ? this.ncps.ipcp : o.protocol === PROTO.IPV6CP ? this.ncps.ipv6cp : null;
          if (ncp) this.feedNcp(ncp, ncp.fsm.protocolRejected());
          else this.drop(`peer rejected protocol 0x${o.protocol.toString(16)}`);
          break;
        }
        case 'rxr':
          this.echo?.reply(o.packet, this.now);
          break;
        default:
          break;
      }
    }
  }

  private lcpUp(): void {
    this.downSent = false;
    if (this.echo) this.feedEcho(this.echo.start());
    const want = this.lcpHandler.negotiated.auth;
    const creds = this.cfg.credentials;
    if (want && creds) {
      this.phaseNow = 'authenticate';
      this.auth =
        want === 'pap'
          ? new PapClient(creds, { restartMs: this.lcp.cfg.restartMs })
          : new ChapClient(creds, { timeoutMs: this.cfg.chapTimeoutMs });
      this.feedAuth(this.auth.start());
    } else {
      this.networkPhase();
    }
  }

  private networkPhase(): void {
    this.phaseNow = 'network';
    for (const ncp of Object.values(this.ncps)) if (ncp.required) this.activate(ncp);
    const fallback = this.cfg.ipcpFallbackMs ?? 5000;
    if (this.policy === 'ipv6' && fallback > 0) this.emit(startTimer('link.ipcp-fallback', fallback));
  }

  private feedAuth(outs: AuthOutput[]): void {
    for (const o of outs) {
      if (this.common(o)) continue;
      if (o.type === 'auth-ok') {
        this.emit({ type: 'auth-ok', protocol: this.auth?.name ?? '', message: o.message });
        if (this.phaseNow === 'authenticate') this.networkPhase();
      } else if (o.type === 'auth-failed') {
        this.emit({ type: 'auth-failed', message: o.message });
        this.closeLink(`auth-failed: ${o.message}`);
      }
    }
  }

  private feedEcho(outs: EchoOutput[]): void {
    for (const o of outs) {
      if (this.common(o)) continue;
      if (o.type === 'down') this.closeLink('echo-timeout');
    }
  }

  private feedNcp(ncp: Ncp, outs: AutomatonOutput[]): void {
    for (const o of outs) {
      if (this.common(o)) continue;
      switch (o.type) {
        case 'up':
          if (ncp.name === 'ipv6cp') {
            this.emit(stopTimer('link.ipcp-fallback'));
            this.emit({ type: 'ncp-up', ncp: 'ipv6cp', result: this.ipv6cpHandler.result });
          } else {
            const carryTraffic = this.policy !== 'ipv6' || this.cfg.ipv4Traffic === true;
            this.ipv4 = { ...this.ipcpHandler.result, carryTraffic };
            this.emit({ type: 'ncp-up', ncp: 'ipcp', result: this.ipv4 });
          }
          if (ncp.required && (this.phaseNow === 'network' || this.phaseNow === 'open')) this.phaseNow = 'open';
          break;
        case 'down':
          this.emit({ type: 'ncp-down', ncp: ncp.name, reason: o.reason });
          if (this.phaseNow === 'open' && !this.anyRequiredOpen()) this.phaseNow = 'network';
          break;
        case 'finished':
          if (this.phaseNow === 'network' || this.phaseNow === 'open') {
            this.emit({ type: 'ncp-down', ncp: ncp.name, reason: o.reason });
            if (ncp.required && !this.anyRequiredAlive()) this.closeLink(o.reason);
          }
          break;
        default:
          break;
      }
    }
  }

  private anyRequiredOpen(): boolean {
    return Object.values(this.ncps).some((n) => n.required && n.fsm.state === 'Opened');
  }

  private anyRequiredAlive(): boolean {
    const dead: FsmState[] = ['Initial', 'Starting', 'Closed', 'Stopped'];
    return Object.values(this.ncps).some((n) => n.required && !dead.includes(n.fsm.state));
  }
}

/**
 * Status counter keys are stable identifiers (scripts match on them): lower case,
 * words joined by '-', the layers of a reason joined by '.', e.g.
 * "lcp: malformed Configure-Request: bad-option-length" -> "lcp.malformed-configure-request.bad-option-length".
 */
export function dropKey(why: string): string {
  return why
    .split(':')
    .map((part) => part.trim().toLowerCase().replace(/\s+/g, '-'))
    .filter(Boolean)
    .join('.');
}

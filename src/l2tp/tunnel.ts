import { startTimer, stopTimer } from '../core/actions';
import { challengeResponse, type Secret } from './avp';
import type { AvpValues, Bearer, Framing, ResultCode } from './avps';
import { type ChannelAction, type ChannelConfig, ControlChannel } from './channel';
import { TableMachine, type TunnelActionName, type TunnelEvent, tunnelTransition } from './fsm';
import {
  type Delivered,
  type DownAction,
  downAction,
  type LacAction,
  type LacCounters,
  type Teardown,
  TIMER_HELLO,
  TIMER_LINGER,
  type TunnelInfo,
  type TunnelState,
} from './lac-types';
import { encodeControlBody, type MessageName, MessageType, type RequiredValues } from './messages';
import { StopCcnResult, ErrorCode } from './result-codes';

/**
 * The control connection of RFC 2661 7.2 as the LAC opens it (SCCRQ -> SCCRP -> SCCCN),
 * keeps it (HELLO, 6.5) and clears it (StopCCN and the linger of 5.7), run from the tunnel
 * table in fsm.ts. It owns the reliable control channel that the session's messages use too.
 */

export interface TunnelSettings {
  hostName: string;
  vendorName?: string;
  firmwareRevision?: number;
  framingCapabilities: Framing;
  bearerCapabilities?: Bearer;
  receiveWindowSize: number;
  secret?: Secret;
  helloIntervalMs: number;
  channel?: Partial<Omit<ChannelConfig, 'receiveWindow'>>;
  lingerMs?: number;
}

export interface TunnelHost {
  /** A control message the channel delivered in order: the LAC classifies and dispatches it. */
  deliver(d: Delivered): LacAction[];
  /** The tunnel went down: the session goes with it, carrying the tunnel's cause. */
  sessionTunnelDown(tunnelDown: DownAction): LacAction[];
  /** The tunnel is up: place the call if the LAC does that by itself. */
  autoSession(): LacAction[];
  random(n: number): Uint8Array;
}

/** What the event's actions need. */
export interface TunnelContext {
  /** Close: the StopCCN's Result Code. */
  teardown?: Teardown;
  /** Close, Abort, RStopCCN, Failed: the tunnel's 'down' to report. */
  down?: DownAction;
  /** RSCCRP: the accepted SCCRP's values. */
  values?: AvpValues;
}

const nonZero16 = (b: Uint8Array): number => (b[0]! << 8) | b[1]! || 1;

export class TunnelMachine extends TableMachine<TunnelState, TunnelEvent, TunnelActionName, TunnelContext, LacAction> {
  readonly localId: number;
  remoteId: number | undefined;
  readonly channel: ControlChannel<Delivered>;
  peerInfo: Omit<TunnelInfo, 'localTunnelId' | 'remoteTunnelId'> | undefined;
  /** Data or control seen since the HELLO timer was armed. */
  rxSinceHello = false;
  private readonly lingerMs: number;
  private ourChallenge: Uint8Array | undefined;
  private helloRunning = false;
  private stopCcnSent = false;
  private lingering = false;

  constructor(
    private readonly host: TunnelHost,
    private readonly settings: TunnelSettings,
    private readonly counters: LacCounters,
  ) {
    super('idle', tunnelTransition);
    this.channel = new ControlChannel<Delivered>({ ...settings.channel, receiveWindow: Math.max(1, settings.receiveWindowSize) });
    this.lingerMs = settings.lingerMs ?? this.channel.retransmissionCycleMs();
    this.localId = nonZero16(host.random(2));
  }

  override dispatch(event: TunnelEvent, ctx: TunnelContext = {}): LacAction[] {
    return super.dispatch(event, ctx);
  }

  /** Clears the tunnel: with StopCCN once the SC knows us (Close), silently before (Abort). */
  clear(t: Teardown): LacAction[] {
    return this.dispatch(this.remoteId !== undefined ? 'Close' : 'Abort', { teardown: t, down: downAction('tunnel', t, false) });
  }

  /** Once our StopCCN is acknowledged, linger to answer any retransmission of the peer's last message. */
  checkAcked(): LacAction[] {
    if (this.state !== 'closing' || !this.stopCcnSent || this.lingering || this.channel.unacknowledged > 0) return [];
    return this.dispatch('Acked');
  }

  helloFired(): LacAction[] {
    this.helloRunning = false;
    return this.dispatch(this.rxSinceHello ? 'TO-busy' : 'TO-quiet');
  }

  /** Control traffic restarts the idle timer exactly; data only sets a flag (checked when it runs out). */
  controlReceived(): LacAction[] {
    if (!this.helloRunning || this.state !== 'established') return [];
    return this.arm();
  }

  sendControl<K extends MessageName>(name: K, sessionId: number, values: Omit<RequiredValues<K>, 'messageType'>): LacAction[] {
    const body = encodeControlBody(name, values);
    return this.fromChannel(this.channel.send({ tunnelId: this.remoteId ?? 0, sessionId, body }));
  }

  /** Maps channel actions to LAC actions: counts sends, hands deliveries to the LAC, fails on give-up. */
  fromChannel(acts: ChannelAction<Delivered>[]): LacAction[] {
    const out: LacAction[] = [];
    for (const a of acts) {
      switch (a.type) {
        case 'send':
          this.counters.ctrlOut++;
          if (a.bytes.length === 12) this.counters.zlbOut++;
          out.push(a);
          break;
        case 'deliver':
          out.push(...this.host.deliver(a.msg));
          break;
        case 'failed':
          // The peer is gone: no StopCCN (it could not be delivered either).
          out.push(...this.dispatch('Failed', { down: downAction('tunnel', { reason: a.reason }, false) }));
          break;
        default:
          out.push(a);
      }
    }
    return out;
  }

  /**
   * Judges an SCCRP in wait-ctl-reply: its Tunnel ID is learned first, so that even a
   * rejected one is answered with a StopCCN; then version, ID and tunnel authentication.
   */
  judgeSccrp(v: RequiredValues<'SCCRP'>): { event: 'RSCCRP' } | { event: 'Close' | 'Abort'; teardown: Teardown } {
    const refuse = (teardown: Teardown) => ({ event: this.remoteId !== undefined ? ('Close' as const) : ('Abort' as const), teardown });
    if (v.protocolVersion.version !== 1 || v.protocolVersion.revision !== 0) {
      return refuse({
        reason: 'version-unsupported',
        result: StopCcnResult.VERSION_UNSUPPORTED,
        message: `protocol ${v.protocolVersion.version}.${v.protocolVersion.revision}`,
      });
    }
    if (v.assignedTunnelId === 0) {
      return refuse({ reason: 'protocol-error', result: StopCcnResult.GENERAL_ERROR, error: ErrorCode.FIELD_OUT_OF_RANGE, message: 'Assigned Tunnel ID 0' });
    }
    const secret = this.settings.secret;
    if (this.ourChallenge && secret !== undefined) {
      const want = challengeResponse(MessageType.SCCRP, secret, this.ourChallenge);
      if (!v.challengeResponse || !equalBytes(v.challengeResponse, want)) {
        return refuse({
          reason: 'auth-failed',
          result: StopCcnResult.NOT_AUTHORIZED,
          message: v.challengeResponse ? 'wrong challenge response' : 'no challenge response',
        });
      }
    }
    if (v.challenge && secret === undefined) {
      return refuse({ reason: 'auth-failed', result: StopCcnResult.NOT_AUTHORIZED, message: 'challenged without a secret' });
    }
    return { event: 'RSCCRP' };
  }

  /** Learns the SC's Tunnel ID from an SCCRP (before judging it). */
  learnRemote(id: number): void {
    this.remoteId = id;
    this.channel.peerTunnelId = id;
  }

  // ---------------------------------------------------------------- actions

  protected run(a: TunnelActionName, ctx: TunnelContext): LacAction[] {
    switch (a) {
      case 'sccrq':
        return this.sendSccrq();
      case 'scccn':
        return this.sendScccn(ctx.values as RequiredValues<'SCCRP'>);
      case 'up':
        return [{ type: 'tunnel-up', info: { localTunnelId: this.localId, remoteTunnelId: this.remoteId!, ...this.peerInfo! } }];
      case 'session':
        return this.host.autoSession();
      case 'arm':
        return this.arm();
      case 'hello': {
        this.counters.helloOut++;
        return this.sendControl('HELLO', 0, {});
      }
      case 'stopccn': {
        const t = ctx.teardown!;
        const rc: ResultCode = { result: t.result };
        if (t.error !== undefined) rc.error = t.error;
        if (t.message !== undefined) rc.message = t.message;
        this.stopCcnSent = true;
        return this.sendControl('StopCCN', 0, { assignedTunnelId: this.localId, resultCode: rc });
      }
      case 'zlb':
        return this.fromChannel(this.channel.ackNow());
      case 'down':
        return this.down(ctx);
      case 'linger':
        if (this.lingering) return [];
        this.lingering = true;
        return [startTimer(TIMER_LINGER, this.lingerMs)];
      case 'finish':
        return this.finish();
      case 'drop':
        this.counters.drops['unexpected-message'] = (this.counters.drops['unexpected-message'] ?? 0) + 1;
        return [];
    }
  }

  private sendSccrq(): LacAction[] {
    const s = this.settings;
    const values: Omit<RequiredValues<'SCCRQ'>, 'messageType'> = {
      protocolVersion: { version: 1, revision: 0 },
      hostName: s.hostName,
      framingCapabilities: s.framingCapabilities,
      assignedTunnelId: this.localId,
      receiveWindowSize: s.receiveWindowSize,
    };
    if (s.bearerCapabilities) values.bearerCapabilities = s.bearerCapabilities;
    if (s.firmwareRevision !== undefined) values.firmwareRevision = s.firmwareRevision;
    if (s.vendorName !== undefined) values.vendorName = s.vendorName;
    if (s.secret !== undefined) {
      this.ourChallenge = this.host.random(16);
      values.challenge = this.ourChallenge;
    }
    return this.sendControl('SCCRQ', 0, values);
  }

  private sendScccn(v: RequiredValues<'SCCRP'>): LacAction[] {
    this.channel.setPeerWindow(v.receiveWindowSize);
    const scccn: AvpValues = {};
    // judgeSccrp refused a challenge without a secret.
    if (v.challenge) scccn.challengeResponse = challengeResponse(MessageType.SCCCN, this.settings.secret!, v.challenge);
    this.peerInfo = {
      peerHostName: v.hostName,
      peerVendorName: v.vendorName,
      peerFirmwareRevision: v.firmwareRevision,
      peerReceiveWindow: this.channel.peerWindow,
      authenticated: this.ourChallenge !== undefined,
    };
    return this.sendControl('SCCCN', 0, scccn);
  }

  private arm(): LacAction[] {
    if (this.settings.helloIntervalMs <= 0 || this.state !== 'established') return [];
    this.helloRunning = true;
    this.rxSinceHello = false;
    return [startTimer(TIMER_HELLO, this.settings.helloIntervalMs)];
  }

  /** Reports the tunnel (and its session) down; the channel keeps running until the teardown ends. */
  private down(ctx: TunnelContext): LacAction[] {
    const tunnelDown = ctx.down!;
    // An edge that acts on the first 'down' it sees must still learn why the tunnel went
    // and what the SC advised (e.g. StopCCN 2/7 "try another"), so the session's action
    // carries the tunnel's cause and advice.
    const acts = this.host.sessionTunnelDown(tunnelDown);
    if (this.helloRunning) {
      this.helloRunning = false;
      acts.push(stopTimer(TIMER_HELLO));
    }
    acts.push(tunnelDown);
    return acts;
  }

  private finish(): LacAction[] {
    const acts = this.fromChannel(this.channel.stop());
    if (this.lingering) {
      this.lingering = false;
      acts.push(stopTimer(TIMER_LINGER));
    }
    acts.push({ type: 'closed' });
    return acts;
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

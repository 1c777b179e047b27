import { randomBytes } from 'node:crypto';
import { startTimer, stopTimer, type TimerAction } from '../core/actions';
import { challengeResponse, type Secret } from './avp';
import type { AvpValues, Bearer, Framing, ResultCode } from './avps';
import { type ChannelAction, type ChannelConfig, ControlChannel } from './channel';
import { L2tpDecodeError } from './errors';
import { decodePacket } from './header';
import {
  type ControlMessage,
  decodeMessage,
  encodeControlBody,
  encodeData,
  MessageType,
  type MessageName,
  malformedMandatory,
  missingAvps,
  type RequiredValues,
  SESSION_MESSAGES,
  unknownMandatory,
} from './messages';
import { adviceFor, CdnResult, ErrorCode, StopCcnResult } from './result-codes';
import { seqAdd, seqLt } from './seq';

/**
 * The LAC side of one L2TPv2 tunnel carrying exactly one incoming-call session, as a
 * Softwire Initiator uses it (RFC 5571 5.1, RFC 2661). Sans-I/O: every input returns the
 * actions the edge carries out. One instance is one tunnel attempt; reconnecting means a
 * new instance.
 *
 * Peer address. The core never sees addresses. The edge passes an opaque `from` key (for
 * example "192.0.2.1:1701") with each datagram. RFC 2661 8.1 and RFC 5571 2.1 let the SC
 * answer the SCCRQ from another UDP port, and the LAC must then talk to that port. With the
 * default policy 'first-reply' the core latches the source of the first control message
 * that belongs to our tunnel (normally the SCCRP), emits {type:'peer-address', from} so the
 * edge re-targets its sends, and from then on drops datagrams from any other source (drop
 * reason 'wrong-peer'). 'follow' re-latches whenever a control message of our tunnel comes
 * from a new source (an SC behind a NAT that rebinds); 'ignore' does no checking at all.
 */

export type PeerAddressPolicy = 'first-reply' | 'follow' | 'ignore';

export interface LacConfig {
  hostName: string;
  vendorName?: string;
  firmwareRevision?: number;
  /** Framing Capabilities in SCCRQ; RFC 5571 5.1.1.1 says both bits SHOULD be set. */
  framingCapabilities?: Framing;
  /** Bearer Capabilities in SCCRQ; omitted unless set (not relevant to Softwires). */
  bearerCapabilities?: Bearer;
  /** Our Receive Window Size, advertised in SCCRQ. */
  receiveWindowSize?: number;
  /** Tunnel secret: enables tunnel authentication and reading hidden AVPs. */
  secret?: Secret;
  /** Send a HELLO after this long with nothing received; 0 disables (RFC 5571 5.1.2: 60 s). */
  helloIntervalMs?: number;
  channel?: Partial<Omit<ChannelConfig, 'receiveWindow'>>;
  /** (Tx) Connect Speed in ICCN; RFC 5571 5.1.1.1 says 0. */
  txConnectSpeed?: number;
  /** Framing Type in ICCN; RFC 5571 5.1.1.1: sync set, async clear. */
  framingType?: Framing;
  bearerType?: Bearer;
  /** Ask for sequenced data (Sequencing Required AVP in ICCN) and send Ns on data. */
  dataSequencing?: boolean;
  /** Place the call (ICRQ) as soon as the tunnel is up. Default true. */
  autoSession?: boolean;
  peerAddressPolicy?: PeerAddressPolicy;
  /** How long to keep acknowledging after the last exchange of a teardown (RFC 2661 5.7/5.8). */
  lingerMs?: number;
  /** Source of randomness for IDs and challenges; tests make it deterministic. */
  random?: (n: number) => Uint8Array;
}

export type TunnelState = 'idle' | 'wait-ctl-reply' | 'established' | 'closing' | 'closed';
export type SessionState = 'idle' | 'wait-reply' | 'established';

export type DownReason =
  | 'local-close'
  | 'peer-stopccn'
  | 'peer-cdn'
  | 'auth-failed'
  | 'max-retries'
  | 'queue-full'
  | 'protocol-error'
  | 'unknown-mandatory-avp'
  | 'version-unsupported'
  | 'tunnel-down';

export interface TunnelInfo {
  localTunnelId: number;
  remoteTunnelId: number;
  peerHostName: string;
  peerVendorName?: string;
  peerFirmwareRevision?: number;
  peerReceiveWindow: number;
  authenticated: boolean;
}

export interface SessionInfo {
  localSessionId: number;
  remoteSessionId: number;
  localTunnelId: number;
  remoteTunnelId: number;
  callSerialNumber: number;
  sequencing: boolean;
}

export interface DownAction {
  type: 'down';
  layer: 'tunnel' | 'session';
  reason: DownReason;
  resultCode?: number;
  errorCode?: number;
  message?: string;
  /** Peer's error code 7: it asks us to try another SC. */
  retryElsewhere?: boolean;
  /** The peer's code says retrying unchanged will not help (auth, protocol version). */
  permanent?: boolean;
}

export type LacAction =
  | { type: 'send'; bytes: Uint8Array }
  | TimerAction
  | { type: 'tunnel-up'; info: TunnelInfo }
  | { type: 'session-up'; info: SessionInfo }
  | { type: 'frame'; data: Uint8Array; priority: boolean }
  | DownAction
  | { type: 'peer-address'; from: string }
  /** Teardown finished (acks and linger done): the edge may release the socket. */
  | { type: 'closed' };

export const TIMER_HELLO = 'hello';
export const TIMER_LINGER = 'linger';

export interface LacCounters {
  ctrlIn: number;
  ctrlOut: number;
  zlbOut: number;
  retransmissions: number;
  duplicates: number;
  helloOut: number;
  dataIn: number;
  dataOut: number;
  /** Datagrams dropped, keyed by reason (decode reasons, 'unknown-tunnel', 'wrong-peer', ...). */
  drops: Record<string, number>;
}

export interface LacStatus {
  tunnel: {
    state: TunnelState;
    localId: number;
    remoteId: number | undefined;
    peerHostName: string | undefined;
    peerWindow: number;
    cwnd: number;
    unacknowledged: number;
  };
  session: {
    state: SessionState;
    localId: number | undefined;
    remoteId: number | undefined;
    sequencing: boolean;
  };
  peer: string | undefined;
  counters: LacCounters;
}

interface Delivered {
  sessionId: number;
  msg: ControlMessage;
}

interface Teardown {
  reason: DownReason;
  result: number;
  error?: number;
  message?: string;
}

const nonZero16 = (b: Uint8Array): number => (b[0]! << 8) | b[1]! || 1;

export class Lac {
  private readonly cfg: Required<
    Omit<LacConfig, 'vendorName' | 'firmwareRevision' | 'bearerCapabilities' | 'secret' | 'bearerType' | 'channel' | 'lingerMs'>
  > &
    Pick<LacConfig, 'vendorName' | 'firmwareRevision' | 'bearerCapabilities' | 'secret' | 'bearerType'>;
  private readonly channel: ControlChannel<Delivered>;
  private readonly lingerMs: number;
  private tunnelState: TunnelState = 'idle';
  private sessionState: SessionState = 'idle';
  readonly localTunnelId: number;
  private remoteTunnelId: number | undefined;
  private localSessionId: number | undefined;
  private remoteSessionId: number | undefined;
  private callSerial: number;
  private ourChallenge: Uint8Array | undefined;
  private peerInfo: Omit<TunnelInfo, 'localTunnelId' | 'remoteTunnelId'> | undefined;
  private peer: string | undefined;
  private rxSinceHello = false;
  private helloRunning = false;
  private stopCcnSent = false;
  private lingering = false;
  // Data sequencing (RFC 2661 5.4): our next data Ns, and the next we expect from the peer.
  private sequencing: boolean;
  private dataNs = 0;
  private dataNr: number | undefined;
  private readonly counters: LacCounters = {
    ctrlIn: 0,
    ctrlOut: 0,
    zlbOut: 0,
    retransmissions: 0,
    duplicates: 0,
    helloOut: 0,
    dataIn: 0,
    dataOut: 0,
    drops: {},
  };

  constructor(config: LacConfig) {
    this.cfg = {
      framingCapabilities: { sync: true, async: true },
      receiveWindowSize: 4,
      helloIntervalMs: 60_000,
      txConnectSpeed: 0,
      framingType: { sync: true, async: false },
      dataSequencing: false,
      autoSession: true,
      peerAddressPolicy: 'first-reply',
      random: (n) => new Uint8Array(randomBytes(n)),
      ...config,
    };
    this.channel = new ControlChannel<Delivered>({ ...config.channel, receiveWindow: Math.max(1, this.cfg.receiveWindowSize) });
    this.lingerMs = config.lingerMs ?? this.channel.retransmissionCycleMs();
    this.localTunnelId = nonZero16(this.cfg.random(2));
    const cs = this.cfg.random(4);
    this.callSerial = ((cs[0]! << 24) | (cs[1]! << 16) | (cs[2]! << 8) | cs[3]!) >>> 0;
    this.sequencing = this.cfg.dataSequencing;
  }

  // ---------------------------------------------------------------- inputs

  /** Starts the tunnel: sends SCCRQ. */
  open(): LacAction[] {
    if (this.tunnelState !== 'idle') return [];
    this.tunnelState = 'wait-ctl-reply';
    const values: Omit<RequiredValues<'SCCRQ'>, 'messageType'> = {
      protocolVersion: { version: 1, revision: 0 },
      hostName: this.cfg.hostName,
      framingCapabilities: this.cfg.framingCapabilities,
      assignedTunnelId: this.localTunnelId,
      receiveWindowSize: this.cfg.receiveWindowSize,
    };
    if (this.cfg.bearerCapabilities) values.bearerCapabilities = this.cfg.bearerCapabilities;
    if (this.cfg.firmwareRevision !== undefined) values.firmwareRevision = this.cfg.firmwareRevision;
    if (this.cfg.vendorName !== undefined) values.vendorName = this.cfg.vendorName;
    if (this.cfg.secret !== undefined) {
      this.ourChallenge = this.cfg.random(16);
      values.challenge = this.ourChallenge;
    }
    return this.sendControl('SCCRQ', 0, values);
  }

  /** Places the incoming call (ICRQ). Done automatically after tunnel-up unless autoSession is off. */
  openSession(): LacAction[] {
    if (this.tunnelState !== 'established' || this.sessionState !== 'idle') return [];
    this.localSessionId = nonZero16(this.cfg.random(2));
    this.remoteSessionId = undefined;
    this.callSerial = (this.callSerial + 1) >>> 0;
    this.sessionState = 'wait-reply';
    this.dataNs = 0;
    this.dataNr = undefined;
    this.sequencing = this.cfg.dataSequencing;
    const values: Omit<RequiredValues<'ICRQ'>, 'messageType'> = {
      assignedSessionId: this.localSessionId,
      callSerialNumber: this.callSerial,
    };
    if (this.cfg.bearerType) values.bearerType = this.cfg.bearerType;
    return this.sendControl('ICRQ', 0, values);
  }

  /** Clears the session with CDN (default result 3, administrative). */
  closeSession(rc: ResultCode = { result: CdnResult.ADMINISTRATIVE }): LacAction[] {
    if (this.sessionState === 'idle' || this.tunnelState !== 'established') return [];
    const acts = this.sendCdn(rc);
    acts.push(...this.sessionDown({ reason: 'local-close', ...rc }, false));
    return acts;
  }

  /** Clears the tunnel with StopCCN (default result 1, general request). */
  close(rc: ResultCode = { result: StopCcnResult.GENERAL_REQUEST }): LacAction[] {
    return this.teardown({ reason: 'local-close', result: rc.result, error: rc.error, message: rc.message });
  }

  /** One datagram from the peer; `from` is the edge's opaque source key. */
  receive(bytes: Uint8Array, from?: string): LacAction[] {
    if (this.tunnelState === 'idle' || this.tunnelState === 'closed') return this.drop('not-open');
    let pkt: ReturnType<typeof decodeMessage>;
    try {
      pkt = decodeMessage(bytes, { secret: this.cfg.secret });
    } catch (e) {
      if (e instanceof L2tpDecodeError && e.reason === 'avp-hidden-no-secret') return this.hiddenWithoutSecret(bytes, from);
      if (e instanceof L2tpDecodeError) return this.drop(e.reason);
      throw e;
    }
    if (pkt.tunnelId !== this.localTunnelId) return this.drop('unknown-tunnel');
    const acts: LacAction[] = [];
    if (from !== undefined && this.cfg.peerAddressPolicy !== 'ignore') {
      if (this.peer === undefined || (this.cfg.peerAddressPolicy === 'follow' && pkt.kind === 'control' && from !== this.peer)) {
        if (pkt.kind === 'data') return this.drop('wrong-peer');
        this.peer = from;
        acts.push({ type: 'peer-address', from });
      } else if (from !== this.peer) {
        return this.drop('wrong-peer');
      }
    }
    if (pkt.kind === 'data') return this.receiveData(pkt);

    this.counters.ctrlIn++;
    const before = this.channel.stats.duplicates;
    const outsideBefore = this.channel.stats.outsideWindow;
    const chActs = this.channel.receive({
      ns: pkt.ns,
      nr: pkt.nr,
      msg: pkt.message ? { sessionId: pkt.sessionId, msg: pkt.message } : undefined,
    });
    const dups = this.channel.stats.duplicates - before;
    this.counters.duplicates += dups;
    if (dups > 0) this.drop('duplicate');
    acts.push(...this.fromChannel(chActs));
    if (this.channel.stats.outsideWindow !== outsideBefore) {
      // An Ns far from anything the SC could send is forged or stale: it must not
      // count as proof of life either, or a flood of them would hold off our HELLO.
      this.drop('outside-window');
      return acts;
    }
    acts.push(...this.helloActivity(true));
    acts.push(...this.channel.flush().flatMap((a) => this.fromChannel([a])));
    acts.push(...this.checkClosing());
    return acts;
  }

  /** Encapsulates one PPP frame for the session; undefined when no session is up. */
  sendFrame(ppp: Uint8Array, opts: { priority?: boolean } = {}): Uint8Array | undefined {
    if (this.sessionState !== 'established' || this.tunnelState !== 'established') return undefined;
    this.counters.dataOut++;
    const ns = this.sequencing ? this.dataNs : undefined;
    if (ns !== undefined) this.dataNs = seqAdd(ns, 1);
    return encodeData(
      { tunnelId: this.remoteTunnelId!, sessionId: this.remoteSessionId!, ns, priority: opts.priority ?? false },
      ppp,
    );
  }

  /**
   * The session's data-header parameters for a data fast path that frames and
   * recognises data itself (src/dataplane); undefined unless the session is up.
   */
  dataHeader(): { tunnelId: number; sessionId: number; localTunnelId: number; localSessionId: number; sequencing: boolean } | undefined {
    if (this.sessionState !== 'established' || this.tunnelState !== 'established') return undefined;
    return {
      tunnelId: this.remoteTunnelId!,
      sessionId: this.remoteSessionId!,
      localTunnelId: this.localTunnelId,
      localSessionId: this.localSessionId!,
      sequencing: this.sequencing,
    };
  }

  /** Data frames a fast path took for the session: counted, and proof the peer is alive, as in receive(). */
  dataReceived(frames: number): void {
    if (frames <= 0) return;
    this.counters.dataIn += frames;
    this.rxSinceHello = true;
  }

  /** Data frames a fast path sent (counted as sendFrame would). */
  dataSent(frames: number): void {
    this.counters.dataOut += frames;
  }

  timerFired(timer: string): LacAction[] {
    if (timer === TIMER_HELLO) return this.helloFired();
    if (timer === TIMER_LINGER) return this.finish();
    return [...this.fromChannel(this.channel.timerFired(timer)), ...this.checkClosing()];
  }

  status(): LacStatus {
    return {
      tunnel: {
        state: this.tunnelState,
        localId: this.localTunnelId,
        remoteId: this.remoteTunnelId,
        peerHostName: this.peerInfo?.peerHostName,
        peerWindow: this.channel.peerWindow,
        cwnd: this.channel.cwnd,
        unacknowledged: this.channel.unacknowledged,
      },
      session: {
        state: this.sessionState,
        localId: this.localSessionId,
        remoteId: this.remoteSessionId,
        sequencing: this.sequencing,
      },
      peer: this.peer,
      counters: { ...this.counters, retransmissions: this.channel.stats.retransmissions, drops: { ...this.counters.drops } },
    };
  }

  // ---------------------------------------------------------------- data

  private receiveData(pkt: { sessionId: number; ns?: number; priority: boolean; payload: Uint8Array }): LacAction[] {
    if (this.tunnelState !== 'established' || this.sessionState !== 'established' || pkt.sessionId !== this.localSessionId) {
      return this.drop('unknown-session');
    }
    if (pkt.ns !== undefined) {
      // The peer sequences its data, so we do too (RFC 2661 5.4); stale frames are dropped.
      this.sequencing = true;
      if (this.dataNr !== undefined && seqLt(pkt.ns, this.dataNr)) return this.drop('data-out-of-order');
      this.dataNr = seqAdd(pkt.ns, 1);
    } else if (this.sequencing && !this.cfg.dataSequencing) {
      // 5.4: the LNS turns sequencing off by sending data without Ns, and the LAC then MUST
      // stop too: no Ns on our data (4 octets less), and the data fast path, which asks
      // dataHeader() on every batch, takes the session's data again. Not when we asked for
      // sequencing ourselves (Sequencing Required in ICCN, 4.4.6): that holds for the session.
      this.sequencing = false;
      this.dataNr = undefined;
    }
    this.counters.dataIn++;
    // Data proves the peer alive; noted with a flag so the hot path arms no timers.
    this.rxSinceHello = true;
    return [{ type: 'frame', data: pkt.payload, priority: pkt.priority }];
  }

  // ---------------------------------------------------------------- control FSM

  private handle({ sessionId, msg }: Delivered): LacAction[] {
    if (this.tunnelState !== 'wait-ctl-reply' && this.tunnelState !== 'established') return [];
    const name = msg.name;
    if (name === undefined) {
      // 4.4.1: an unknown message type with M=1 clears the tunnel; with M=0 it is ignored.
      if (!msg.typeMandatory) return this.drop('unknown-message');
      return this.teardown({
        reason: 'protocol-error',
        result: StopCcnResult.GENERAL_ERROR,
        error: ErrorCode.FIELD_OUT_OF_RANGE,
        message: `unknown message type ${msg.type}`,
      });
    }
    if (name === 'SCCRP' && this.tunnelState === 'wait-ctl-reply' && msg.values.assignedTunnelId) {
      // Learned first, so that even a rejected SCCRP can be answered with a StopCCN.
      this.remoteTunnelId = msg.values.assignedTunnelId;
      this.channel.peerTunnelId = msg.values.assignedTunnelId;
    }
    const session = SESSION_MESSAGES.has(name);
    if (session && (this.sessionState === 'idle' || sessionId !== this.localSessionId)) return this.drop('unknown-session');
    // Teardown messages are honoured even if malformed: the peer is going away regardless.
    if (name === 'StopCCN') return this.peerStopCcn(msg);
    if (name === 'CDN') return this.peerCdn(msg);

    // RFC 2661 7.1: a malformed message clears the tunnel; 4.4.2 has the code for it (2/2,
    // "Length is wrong"). A known AVP we cannot read with M=0 is ignored, as an unknown one is.
    for (const a of msg.malformed) if (!a.mandatory) this.drop('avp-malformed-ignored');
    const bad = malformedMandatory(msg);
    if (bad.length > 0) {
      return this.teardown({
        reason: 'protocol-error',
        result: StopCcnResult.GENERAL_ERROR,
        error: ErrorCode.LENGTH_WRONG,
        message: `malformed ${bad[0]!.name} AVP (${bad[0]!.length} octets) in ${name}`,
      });
    }

    const unknownM = unknownMandatory(msg);
    if (unknownM.length > 0) {
      const t: Teardown = {
        reason: 'unknown-mandatory-avp',
        result: session ? CdnResult.GENERAL_ERROR : StopCcnResult.GENERAL_ERROR,
        error: ErrorCode.UNKNOWN_MANDATORY_AVP,
        message: `unknown mandatory AVP ${unknownM[0]!.vendorId}:${unknownM[0]!.type} in ${name}`,
      };
      return session ? this.sessionFailure(t) : this.teardown(t);
    }
    const missing = missingAvps(msg);
    if (missing.length > 0) {
      const t: Teardown = {
        reason: 'protocol-error',
        result: StopCcnResult.GENERAL_ERROR,
        error: ErrorCode.FIELD_OUT_OF_RANGE,
        message: `${name} without ${missing.join(', ')}`,
      };
      return session ? this.sessionFailure(t) : this.teardown(t);
    }
    switch (name) {
      case 'SCCRP':
        return this.onSccrp(msg);
      case 'HELLO':
        return []; // the channel has acknowledged it; that is all a HELLO asks for
      case 'ICRP':
        return this.onIcrp(msg);
      case 'SLI':
        return []; // ACCM is meaningless with synchronous framing; acked and ignored
      default:
        // LNS-only or outgoing-call messages: RFC 5571 uses the incoming-call model only.
        return this.drop('unexpected-message');
    }
  }

  private onSccrp(msg: ControlMessage): LacAction[] {
    if (this.tunnelState !== 'wait-ctl-reply') return this.drop('unexpected-message');
    const v = msg.values as RequiredValues<'SCCRP'>;
    if (v.protocolVersion.version !== 1 || v.protocolVersion.revision !== 0) {
      return this.teardown({
        reason: 'version-unsupported',
        result: StopCcnResult.VERSION_UNSUPPORTED,
        message: `protocol ${v.protocolVersion.version}.${v.protocolVersion.revision}`,
      });
    }
    if (v.assignedTunnelId === 0) {
      return this.teardown({
        reason: 'protocol-error',
        result: StopCcnResult.GENERAL_ERROR,
        error: ErrorCode.FIELD_OUT_OF_RANGE,
        message: 'Assigned Tunnel ID 0',
      });
    }
    this.channel.setPeerWindow(v.receiveWindowSize);

    const secret = this.cfg.secret;
    if (this.ourChallenge && secret !== undefined) {
      const want = challengeResponse(MessageType.SCCRP, secret, this.ourChallenge);
      if (!v.challengeResponse || !equalBytes(v.challengeResponse, want)) {
        return this.teardown({
          reason: 'auth-failed',
          result: StopCcnResult.NOT_AUTHORIZED,
          message: v.challengeResponse ? 'wrong challenge response' : 'no challenge response',
        });
      }
    }
    const scccn: AvpValues = {};
    if (v.challenge) {
      if (secret === undefined) {
        return this.teardown({
          reason: 'auth-failed',
          result: StopCcnResult.NOT_AUTHORIZED,
          message: 'challenged without a secret',
        });
      }
      scccn.challengeResponse = challengeResponse(MessageType.SCCCN, secret, v.challenge);
    }
    this.peerInfo = {
      peerHostName: v.hostName,
      peerVendorName: v.vendorName,
      peerFirmwareRevision: v.firmwareRevision,
      peerReceiveWindow: this.channel.peerWindow,
      authenticated: this.ourChallenge !== undefined,
    };
    const acts = this.sendControl('SCCCN', 0, scccn);
    this.tunnelState = 'established';
    acts.push({
      type: 'tunnel-up',
      info: { localTunnelId: this.localTunnelId, remoteTunnelId: v.assignedTunnelId, ...this.peerInfo },
    });
    acts.push(...this.armHello());
    if (this.cfg.autoSession) acts.push(...this.openSession());
    return acts;
  }

  private onIcrp(msg: ControlMessage): LacAction[] {
    if (this.sessionState !== 'wait-reply') return this.drop('unexpected-message');
    const v = msg.values as RequiredValues<'ICRP'>;
    if (v.assignedSessionId === 0) {
      return this.sessionFailure({
        reason: 'protocol-error',
        result: CdnResult.GENERAL_ERROR,
        error: ErrorCode.FIELD_OUT_OF_RANGE,
        message: 'Assigned Session ID 0',
      });
    }
    this.remoteSessionId = v.assignedSessionId;
    const iccn: Omit<RequiredValues<'ICCN'>, 'messageType'> = {
      txConnectSpeed: this.cfg.txConnectSpeed,
      framingType: this.cfg.framingType,
    };
    if (this.cfg.dataSequencing) iccn.sequencingRequired = true;
    const acts = this.sendControl('ICCN', v.assignedSessionId, iccn);
    // 7.4.1: the LAC's session is established once ICCN is sent; the SC starts LCP right away.
    this.sessionState = 'established';
    acts.push({
      type: 'session-up',
      info: {
        localSessionId: this.localSessionId!,
        remoteSessionId: v.assignedSessionId,
        localTunnelId: this.localTunnelId,
        remoteTunnelId: this.remoteTunnelId!,
        callSerialNumber: this.callSerial,
        sequencing: this.sequencing,
      },
    });
    return acts;
  }

  private peerStopCcn(msg: ControlMessage): LacAction[] {
    const rc = msg.values.resultCode;
    // 5.7: acknowledge at once, then keep state a while to acknowledge retransmissions.
    const acts = this.fromChannel(this.channel.ackNow());
    acts.push(...this.bringDown({ reason: 'peer-stopccn', result: rc?.result, error: rc?.error, message: rc?.message ?? malformedNote(msg) }, true));
    acts.push(...this.startLinger());
    return acts;
  }

  private peerCdn(msg: ControlMessage): LacAction[] {
    const rc = msg.values.resultCode;
    return this.sessionDown({ reason: 'peer-cdn', result: rc?.result, error: rc?.error, message: rc?.message ?? malformedNote(msg) }, true);
  }

  // ---------------------------------------------------------------- teardown

  /** Session-level failure: CDN to the peer, session down; the tunnel stays. */
  private sessionFailure(t: Teardown): LacAction[] {
    const rc: ResultCode = { result: t.result, error: t.error, message: t.message };
    const acts = this.sendCdn(rc);
    acts.push(...this.sessionDown({ reason: t.reason, result: t.result, error: t.error, message: t.message }, false));
    return acts;
  }

  private sendCdn(rc: ResultCode): LacAction[] {
    return this.sendControl('CDN', this.remoteSessionId ?? 0, { resultCode: rc, assignedSessionId: this.localSessionId! });
  }

  /** Tunnel-level failure or local close: StopCCN if the peer knows us, then linger. */
  private teardown(t: Teardown): LacAction[] {
    if (this.tunnelState === 'idle') {
      this.tunnelState = 'closed';
      return [];
    }
    if (this.tunnelState === 'closing' || this.tunnelState === 'closed') return [];
    const acts: LacAction[] = [];
    if (this.remoteTunnelId !== undefined) {
      const rc: ResultCode = { result: t.result };
      if (t.error !== undefined) rc.error = t.error;
      if (t.message !== undefined) rc.message = t.message;
      acts.push(...this.sendControl('StopCCN', 0, { assignedTunnelId: this.localTunnelId, resultCode: rc }));
      this.stopCcnSent = true;
    }
    acts.push(...this.bringDown({ reason: t.reason, result: t.result, error: t.error, message: t.message }, false));
    if (!this.stopCcnSent) acts.push(...this.finish());
    else acts.push(...this.checkClosing());
    return acts;
  }

  private sessionDown(
    d: { reason: DownReason; result?: number; error?: number; message?: string },
    fromPeer: boolean,
  ): LacAction[] {
    if (this.sessionState === 'idle') return [];
    this.sessionState = 'idle';
    return [this.downAction('session', d, fromPeer)];
  }

  /** Marks the tunnel (and its session) down; the channel keeps running until teardown ends. */
  private bringDown(d: { reason: DownReason; result?: number; error?: number; message?: string }, fromPeer: boolean) {
    const acts: LacAction[] = [];
    const tunnelDown = this.downAction('tunnel', d, fromPeer);
    if (this.sessionState !== 'idle') {
      this.sessionState = 'idle';
      // An edge that acts on the first 'down' it sees must still learn why the tunnel went
      // and what the SC advised (e.g. StopCCN 2/7 "try another"), so the session's action
      // carries the tunnel's cause and advice.
      const { type: _t, layer: _l, reason, message, ...cause } = tunnelDown;
      acts.push({ type: 'down', layer: 'session', reason: 'tunnel-down', message: message ? `${reason}: ${message}` : reason, ...cause });
    }
    this.tunnelState = 'closing';
    if (this.helloRunning) {
      this.helloRunning = false;
      acts.push(stopTimer(TIMER_HELLO));
    }
    acts.push(tunnelDown);
    return acts;
  }

  private downAction(
    layer: 'tunnel' | 'session',
    d: { reason: DownReason; result?: number; error?: number; message?: string },
    fromPeer: boolean,
  ): DownAction {
    const a: DownAction = { type: 'down', layer, reason: d.reason };
    if (d.result !== undefined) a.resultCode = d.result;
    if (d.error !== undefined) a.errorCode = d.error;
    if (d.message !== undefined) a.message = d.message;
    if (fromPeer) Object.assign(a, adviceFor(layer, d.result, d.error));
    return a;
  }

  /** Once our StopCCN is acknowledged, linger to answer any retransmission of the peer's last message. */
  private checkClosing(): LacAction[] {
    if (this.tunnelState !== 'closing' || !this.stopCcnSent || this.lingering) return [];
    if (this.channel.unacknowledged > 0) return [];
    return this.startLinger();
  }

  private startLinger(): LacAction[] {
    if (this.lingering) return [];
    this.lingering = true;
    return [startTimer(TIMER_LINGER, this.lingerMs)];
  }

  private finish(): LacAction[] {
    if (this.tunnelState === 'closed') return [];
    const acts: LacAction[] = [];
    if (this.tunnelState !== 'closing') {
      acts.push(...this.bringDown({ reason: 'local-close' }, false));
    }
    this.tunnelState = 'closed';
    acts.push(...this.fromChannel(this.channel.stop()));
    if (this.lingering) {
      this.lingering = false;
      acts.push(stopTimer(TIMER_LINGER));
    }
    acts.push({ type: 'closed' });
    return acts;
  }

  // ---------------------------------------------------------------- HELLO

  private armHello(): LacAction[] {
    if (this.cfg.helloIntervalMs <= 0) return [];
    this.helloRunning = true;
    this.rxSinceHello = false;
    return [startTimer(TIMER_HELLO, this.cfg.helloIntervalMs)];
  }

  /** Control traffic restarts the idle timer exactly; data only sets a flag (see receiveData). */
  private helloActivity(control: boolean): LacAction[] {
    if (!this.helloRunning || this.tunnelState !== 'established') return [];
    return control ? this.armHello() : [];
  }

  private helloFired(): LacAction[] {
    this.helloRunning = false;
    if (this.tunnelState !== 'established') return [];
    if (this.rxSinceHello) return this.armHello();
    this.counters.helloOut++;
    const acts = this.sendControl('HELLO', 0, {});
    if (this.tunnelState === 'established') acts.push(...this.armHello());
    return acts;
  }

  // ---------------------------------------------------------------- plumbing

  private sendControl<K extends MessageName>(name: K, sessionId: number, values: Omit<RequiredValues<K>, 'messageType'>) {
    const body = encodeControlBody(name, values);
    return this.fromChannel(this.channel.send({ tunnelId: this.remoteTunnelId ?? 0, sessionId, body }));
  }

  /** Maps channel actions to LAC actions: counts sends, runs deliveries through the FSM. */
  private fromChannel(acts: ChannelAction<Delivered>[]): LacAction[] {
    const out: LacAction[] = [];
    for (const a of acts) {
      switch (a.type) {
        case 'send':
          this.counters.ctrlOut++;
          if (a.bytes.length === 12) this.counters.zlbOut++;
          out.push(a);
          break;
        case 'deliver':
          out.push(...this.handle(a.msg));
          break;
        case 'failed':
          out.push(...this.channelFailed(a.reason));
          break;
        default:
          out.push(a);
      }
    }
    return out;
  }

  private channelFailed(reason: 'max-retries' | 'queue-full'): LacAction[] {
    if (this.tunnelState === 'closing' || this.tunnelState === 'closed') return this.finish();
    // The peer is gone: no StopCCN (it could not be delivered either).
    const acts = this.bringDown({ reason }, false);
    acts.push(...this.finish());
    return acts;
  }

  /**
   * The SC hides AVPs (RFC 2661 4.3) and we have no secret to read them: no retransmission
   * can fix that, so rather than drop every copy until the channel times out with a
   * meaningless 'max-retries', fail the tunnel at once with a reason that names the cause.
   * Only a control message for our tunnel from the peer we talk to, carrying the Ns we
   * expect next, counts: anything else could not have been delivered anyway, and a
   * datagram that never passed the sequence check must not be able to end the tunnel.
   */
  private hiddenWithoutSecret(bytes: Uint8Array, from: string | undefined): LacAction[] {
    this.drop('avp-hidden-no-secret');
    let header: ReturnType<typeof decodePacket>['header'];
    try {
      header = decodePacket(bytes).header;
    } catch {
      return [];
    }
    if (!header.control || header.tunnelId !== this.localTunnelId) return [];
    if (header.ns !== this.channel.sequence.nr) return [];
    if (from !== undefined && this.peer !== undefined && from !== this.peer && this.cfg.peerAddressPolicy === 'first-reply') return [];
    if (this.tunnelState !== 'wait-ctl-reply' && this.tunnelState !== 'established') return [];
    return this.teardown({
      reason: 'auth-failed',
      result: StopCcnResult.GENERAL_ERROR,
      message: 'the SC sent hidden AVPs and no tunnel secret is configured',
    });
  }

  private drop(reason: string): LacAction[] {
    this.counters.drops[reason] = (this.counters.drops[reason] ?? 0) + 1;
    return [];
  }
}

/** Says why a teardown message carries no readable Result Code, so the log shows it. */
function malformedNote(msg: ControlMessage): string | undefined {
  const m = msg.malformed.find((a) => a.name === 'resultCode');
  return m ? `malformed Result Code AVP (${m.length} octets)` : undefined;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

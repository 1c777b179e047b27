import type { ResultCode } from './avps';
import { DataSequencing } from './data';
import { L2tpDecodeError } from './errors';
import { decodePacket } from './header';
import {
  type Delivered,
  downAction,
  type LacAction,
  type LacConfig,
  type LacCounters,
  type LacStatus,
  type Teardown,
  TIMER_HELLO,
  TIMER_LINGER,
} from './lac-types';
import { type ControlMessage, decodeMessage, malformedMandatory, missingAvps, type RequiredValues, SESSION_MESSAGES, unknownMandatory } from './messages';
import { CdnResult, ErrorCode, StopCcnResult } from './result-codes';
import { SessionMachine } from './session';
import { TunnelMachine } from './tunnel';

export {
  type DownAction,
  type DownReason,
  type LacAction,
  type LacConfig,
  type LacCounters,
  type LacStatus,
  type PeerAddressPolicy,
  SESSION_STATES,
  type SessionInfo,
  type SessionState,
  TIMER_HELLO,
  TIMER_LINGER,
  TUNNEL_STATES,
  type TunnelInfo,
  type TunnelState,
} from './lac-types';

/**
 * The LAC side of one L2TPv2 tunnel carrying exactly one incoming-call session, as a
 * Softwire Initiator uses it (RFC 5571 5.1, RFC 2661). Sans-I/O: every input returns the
 * actions the edge carries out. One instance is one tunnel attempt; reconnecting means a
 * new instance.
 *
 * This class is the edge-facing part: it decodes datagrams, checks where they come from,
 * classifies each control message into one event of the tunnel or session state machine
 * (fsm.ts, run by tunnel.ts and session.ts) and hands data to the sequencing of data.ts.
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
export class Lac {
  readonly localTunnelId: number;
  /** The two state machines, for tests and traces (state, lastEvent, lastActions). */
  readonly fsm: { readonly tunnel: TunnelMachine; readonly session: SessionMachine };
  private readonly tunnel: TunnelMachine;
  private readonly session: SessionMachine;
  private readonly data: DataSequencing;
  private readonly secret: LacConfig['secret'];
  private readonly peerPolicy: NonNullable<LacConfig['peerAddressPolicy']>;
  private readonly autoSession: boolean;
  private peer: string | undefined;
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
    const random = config.random;
    this.secret = config.secret;
    this.peerPolicy = config.peerAddressPolicy ?? 'first-reply';
    this.autoSession = config.autoSession ?? true;
    const dataSequencing = config.dataSequencing ?? false;
    this.data = new DataSequencing(dataSequencing);
    // The tunnel draws its ID before the session draws its call serial (fixed order: tests seed `random`).
    this.tunnel = new TunnelMachine(
      {
        deliver: (d) => this.deliver(d),
        sessionTunnelDown: (t) => {
          const { type: _t, layer: _l, reason, message, ...cause } = t;
          return this.session.dispatch('TunnelDown', {
            down: { type: 'down', layer: 'session', reason: 'tunnel-down', message: message ? `${reason}: ${message}` : reason, ...cause },
          });
        },
        autoSession: () => (this.autoSession ? this.openSession() : []),
        random,
      },
      {
        hostName: config.hostName,
        vendorName: config.vendorName,
        firmwareRevision: config.firmwareRevision,
        framingCapabilities: config.framingCapabilities ?? { sync: true, async: true },
        bearerCapabilities: config.bearerCapabilities,
        receiveWindowSize: config.receiveWindowSize ?? 4,
        secret: config.secret,
        helloIntervalMs: config.helloIntervalMs ?? 60_000,
        channel: config.channel,
        lingerMs: config.lingerMs,
      },
      this.counters,
    );
    this.session = new SessionMachine(
      {
        send: (name, sessionId, values) => this.tunnel.sendControl(name, sessionId, values),
        drop: (reason) => this.drop(reason),
        random,
        tunnelIds: () => ({ local: this.tunnel.localId, remote: this.tunnel.remoteId! }),
      },
      {
        txConnectSpeed: config.txConnectSpeed ?? 0,
        framingType: config.framingType ?? { sync: true, async: false },
        bearerType: config.bearerType,
        dataSequencing,
      },
      this.data,
    );
    this.localTunnelId = this.tunnel.localId;
    this.fsm = { tunnel: this.tunnel, session: this.session };
  }

  // ---------------------------------------------------------------- inputs

  /** Starts the tunnel: sends SCCRQ. */
  open(): LacAction[] {
    return this.tunnel.dispatch('Open');
  }

  /** Places the incoming call (ICRQ). Done automatically after tunnel-up unless autoSession is off. */
  openSession(): LacAction[] {
    if (this.tunnel.state !== 'established') return [];
    return this.session.dispatch('Open');
  }

  /** Clears the session with CDN (default result 3, administrative). */
  closeSession(rc: ResultCode = { result: CdnResult.ADMINISTRATIVE }): LacAction[] {
    if (this.tunnel.state !== 'established') return [];
    return this.session.dispatch('Close', { cdn: rc, down: downAction('session', { reason: 'local-close', ...rc }, false) });
  }

  /** Clears the tunnel with StopCCN (default result 1, general request). */
  close(rc: ResultCode = { result: StopCcnResult.GENERAL_REQUEST }): LacAction[] {
    return this.clear({ reason: 'local-close', result: rc.result, error: rc.error, message: rc.message });
  }

  /** One datagram from the peer; `from` is the edge's opaque source key. */
  receive(bytes: Uint8Array, from?: string): LacAction[] {
    const state = this.tunnel.state;
    if (state === 'idle' || state === 'closed') return this.drop('not-open');
    let pkt: ReturnType<typeof decodeMessage>;
    try {
      pkt = decodeMessage(bytes, { secret: this.secret });
    } catch (e) {
      if (e instanceof L2tpDecodeError && e.reason === 'avp-hidden-no-secret') return this.hiddenWithoutSecret(bytes, from);
      if (e instanceof L2tpDecodeError) return this.drop(e.reason);
      throw e;
    }
    if (pkt.tunnelId !== this.localTunnelId) return this.drop('unknown-tunnel');
    const acts: LacAction[] = [];
    if (from !== undefined && this.peerPolicy !== 'ignore') {
      if (this.peer === undefined || (this.peerPolicy === 'follow' && pkt.kind === 'control' && from !== this.peer)) {
        if (pkt.kind === 'data') return this.drop('wrong-peer');
        this.peer = from;
        acts.push({ type: 'peer-address', from });
      } else if (from !== this.peer) {
        return this.drop('wrong-peer');
      }
    }
    if (pkt.kind === 'data') return this.receiveData(pkt);

    this.counters.ctrlIn++;
    const channel = this.tunnel.channel;
    const before = channel.stats.duplicates;
    const outsideBefore = channel.stats.outsideWindow;
    const chActs = channel.receive({
      ns: pkt.ns,
      nr: pkt.nr,
      msg: pkt.message ? { sessionId: pkt.sessionId, msg: pkt.message } : undefined,
    });
    const dups = channel.stats.duplicates - before;
    this.counters.duplicates += dups;
    if (dups > 0) this.drop('duplicate');
    acts.push(...this.tunnel.fromChannel(chActs));
    if (channel.stats.outsideWindow !== outsideBefore) {
      // An Ns far from anything the SC could send is forged or stale: it must not
      // count as proof of life either, or a flood of them would hold off our HELLO.
      this.drop('outside-window');
      return acts;
    }
    acts.push(...this.tunnel.controlReceived());
    acts.push(...channel.flush().flatMap((a) => this.tunnel.fromChannel([a])));
    acts.push(...this.tunnel.checkAcked());
    return acts;
  }

  /** Encapsulates one PPP frame for the session; undefined when no session is up. */
  sendFrame(ppp: Uint8Array, opts: { priority?: boolean } = {}): Uint8Array | undefined {
    if (this.session.state !== 'established' || this.tunnel.state !== 'established') return undefined;
    this.counters.dataOut++;
    return this.data.frame({ tunnelId: this.tunnel.remoteId!, sessionId: this.session.remoteId! }, ppp, opts.priority ?? false);
  }

  /**
   * The session's data-header parameters for a data fast path that frames and
   * recognises data itself (src/dataplane); undefined unless the session is up.
   * `sequencing` follows the SC (RFC 2661 5.4), so the fast path asks on every batch.
   */
  dataHeader(): { tunnelId: number; sessionId: number; localTunnelId: number; localSessionId: number; sequencing: boolean } | undefined {
    if (this.session.state !== 'established' || this.tunnel.state !== 'established') return undefined;
    return {
      tunnelId: this.tunnel.remoteId!,
      sessionId: this.session.remoteId!,
      localTunnelId: this.localTunnelId,
      localSessionId: this.session.localId!,
      sequencing: this.data.on,
    };
  }

  /** Data frames a fast path took for the session: counted, and proof the peer is alive, as in receive(). */
  dataReceived(frames: number): void {
    if (frames <= 0) return;
    this.counters.dataIn += frames;
    this.tunnel.rxSinceHello = true;
  }

  /** Data frames a fast path sent (counted as sendFrame would). */
  dataSent(frames: number): void {
    this.counters.dataOut += frames;
  }

  timerFired(timer: string): LacAction[] {
    if (timer === TIMER_HELLO) return this.tunnel.helloFired();
    if (timer === TIMER_LINGER) return this.tunnel.dispatch('Linger');
    return [...this.tunnel.fromChannel(this.tunnel.channel.timerFired(timer)), ...this.tunnel.checkAcked()];
  }

  status(): LacStatus {
    const t = this.tunnel;
    return {
      tunnel: {
        state: t.state,
        localId: this.localTunnelId,
        remoteId: t.remoteId,
        peerHostName: t.peerInfo?.peerHostName,
        peerWindow: t.channel.peerWindow,
        cwnd: t.channel.cwnd,
        unacknowledged: t.channel.unacknowledged,
      },
      session: {
        state: this.session.state,
        localId: this.session.localId,
        remoteId: this.session.remoteId,
        sequencing: this.data.on,
      },
      peer: this.peer,
      counters: { ...this.counters, retransmissions: t.channel.stats.retransmissions, drops: { ...this.counters.drops } },
    };
  }

  // ---------------------------------------------------------------- data

  private receiveData(pkt: { sessionId: number; ns?: number; priority: boolean; payload: Uint8Array }): LacAction[] {
    if (this.tunnel.state !== 'established' || this.session.state !== 'established' || pkt.sessionId !== this.session.localId) {
      return this.drop('unknown-session');
    }
    const stale = this.data.receive(pkt.ns);
    if (stale) return this.drop(stale);
    this.counters.dataIn++;
    // Data proves the peer alive; noted with a flag so the hot path arms no timers.
    this.tunnel.rxSinceHello = true;
    return [{ type: 'frame', data: pkt.payload, priority: pkt.priority }];
  }

  // ---------------------------------------------------------------- control messages to events

  /** Classifies one in-order control message into an event of the tunnel or the session machine. */
  private deliver({ sessionId, msg }: Delivered): LacAction[] {
    const state = this.tunnel.state;
    if (state !== 'wait-ctl-reply' && state !== 'established') return [];
    const name = msg.name;
    if (name === undefined) {
      // 4.4.1: an unknown message type with M=1 clears the tunnel; with M=0 it is ignored.
      if (!msg.typeMandatory) return this.drop('unknown-message');
      return this.clear({
        reason: 'protocol-error',
        result: StopCcnResult.GENERAL_ERROR,
        error: ErrorCode.FIELD_OUT_OF_RANGE,
        message: `unknown message type ${msg.type}`,
      });
    }
    // Learned first, so that even a rejected SCCRP can be answered with a StopCCN.
    if (name === 'SCCRP' && state === 'wait-ctl-reply' && msg.values.assignedTunnelId) this.tunnel.learnRemote(msg.values.assignedTunnelId);
    const session = SESSION_MESSAGES.has(name);
    if (session && (this.session.state === 'idle' || sessionId !== this.session.localId)) return this.drop('unknown-session');
    // Teardown messages are honoured even if malformed: the peer is going away regardless.
    if (name === 'StopCCN') return this.tunnel.dispatch('RStopCCN', { down: downAction('tunnel', { reason: 'peer-stopccn', ...peerResult(msg) }, true) });
    if (name === 'CDN') return this.session.dispatch('RCDN', { down: downAction('session', { reason: 'peer-cdn', ...peerResult(msg) }, true) });

    // RFC 2661 7.1: a malformed message clears the tunnel; 4.4.2 has the code for it (2/2,
    // "Length is wrong"). A known AVP we cannot read with M=0 is ignored, as an unknown one is.
    for (const a of msg.malformed) if (!a.mandatory) this.drop('avp-malformed-ignored');
    const bad = malformedMandatory(msg);
    if (bad.length > 0) {
      return this.clear({
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
      return session ? this.sessionFailure(t) : this.clear(t);
    }
    const missing = missingAvps(msg);
    if (missing.length > 0) {
      const t: Teardown = {
        reason: 'protocol-error',
        result: StopCcnResult.GENERAL_ERROR,
        error: ErrorCode.FIELD_OUT_OF_RANGE,
        message: `${name} without ${missing.join(', ')}`,
      };
      return session ? this.sessionFailure(t) : this.clear(t);
    }
    switch (name) {
      case 'SCCRP': {
        const v = msg.values as RequiredValues<'SCCRP'>;
        if (state !== 'wait-ctl-reply') return this.tunnel.dispatch('RSCCRP');
        const verdict = this.tunnel.judgeSccrp(v);
        if (verdict.event === 'RSCCRP') return this.tunnel.dispatch('RSCCRP', { values: v });
        return this.clear(verdict.teardown);
      }
      case 'HELLO':
        return []; // the channel has acknowledged it; that is all a HELLO asks for
      case 'ICRP': {
        const id = (msg.values as RequiredValues<'ICRP'>).assignedSessionId;
        if (this.session.state === 'wait-reply' && id === 0) {
          return this.sessionFailure({ reason: 'protocol-error', result: CdnResult.GENERAL_ERROR, error: ErrorCode.FIELD_OUT_OF_RANGE, message: 'Assigned Session ID 0' });
        }
        return this.session.dispatch('RICRP', { assignedSessionId: id });
      }
      case 'SLI':
        return []; // ACCM is meaningless with synchronous framing; acked and ignored
      default:
        // LNS-only or outgoing-call messages: RFC 5571 uses the incoming-call model only.
        return this.drop('unexpected-message');
    }
  }

  // ---------------------------------------------------------------- teardown

  /** Session-level failure: CDN to the peer, session down; the tunnel stays. */
  private sessionFailure(t: Teardown): LacAction[] {
    return this.session.dispatch('Close', { cdn: { result: t.result, error: t.error, message: t.message }, down: downAction('session', t, false) });
  }

  /** Tunnel-level failure or local close: StopCCN if the peer knows us, then linger. */
  private clear(t: Teardown): LacAction[] {
    return [...this.tunnel.clear(t), ...this.tunnel.checkAcked()];
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
    if (header.ns !== this.tunnel.channel.sequence.nr) return [];
    if (from !== undefined && this.peer !== undefined && from !== this.peer && this.peerPolicy === 'first-reply') return [];
    if (this.tunnel.state !== 'wait-ctl-reply' && this.tunnel.state !== 'established') return [];
    return this.clear({
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

/** The Result Code of the SC's StopCCN or CDN, or a note saying why it could not be read. */
function peerResult(msg: ControlMessage): { result?: number; error?: number; message?: string } {
  const rc = msg.values.resultCode;
  if (rc) return { result: rc.result, error: rc.error, message: rc.message };
  const m = msg.malformed.find((a) => a.name === 'resultCode');
  return { message: m ? `malformed Result Code AVP (${m.length} octets)` : undefined };
}

import { startTimer, stopTimer, type TimerAction } from '../core/actions';
import { encodeControl } from './messages';
import { seqAdd, seqDiff, seqLt } from './seq';

/**
 * The reliable control channel of RFC 2661 5.8 and Appendix A, sans-I/O.
 *
 * - Ns/Nr are 16-bit and wrap; an incoming Nr acknowledges every message before it.
 * - Each message is retransmitted (same Ns, fresh Nr) on an exponential backoff from
 *   `initialTimeoutMs`, capped at `maxTimeoutMs`; after `maxRetries` retransmissions the
 *   channel fails. With the defaults (1 s, 8 s, 5) the tries go out at 0, 1, 3, 7, 15 and
 *   23 s and the channel fails at 31 s, which is the "full retransmission cycle".
 * - At most min(CWND, peer Receive Window Size) messages are unacknowledged. CWND starts at
 *   1 and SSTHRESH at the peer's window; each ack grows CWND by one below SSTHRESH (slow
 *   start) and by one per CWND acks above it (congestion avoidance); a timeout halves
 *   SSTHRESH and puts CWND back to 1 (Appendix A).
 * - Messages that arrive early but within our window are held and delivered in order;
 *   duplicates are acknowledged at once and dropped.
 * - An in-order message is acknowledged by piggybacking Nr on our next message, or by a ZLB
 *   when the ack timer runs out first. The default delay is a quarter of the initial
 *   retransmission timeout: long enough for the FSM's reply (usually produced in the same
 *   call) to carry the ack, short enough that the peer, which uses the same 1 s default,
 *   never retransmits a message we already have.
 *
 * The owner calls `flush()` after it has handled the messages a `receive()` delivered, so
 * that a reply sent meanwhile carries the ack and no ZLB is needed.
 */

export const TIMER_RETRANSMIT = 'ctl-rtx';
export const TIMER_ACK = 'ctl-ack';

export interface ChannelConfig {
  initialTimeoutMs: number;
  maxTimeoutMs: number;
  maxRetries: number;
  ackDelayMs: number;
  /** Our Receive Window Size: how far ahead of Nr we hold early messages. */
  receiveWindow: number;
  /** Bound on messages waiting for the window to open; beyond it the channel fails. */
  maxQueued: number;
}

export const DEFAULT_CHANNEL_CONFIG: ChannelConfig = {
  initialTimeoutMs: 1000,
  maxTimeoutMs: 8000,
  maxRetries: 5,
  ackDelayMs: 250,
  receiveWindow: 4,
  maxQueued: 64,
};

/** RFC 2661 5.8: a peer that sends no Receive Window Size AVP has a window of 4. */
export const DEFAULT_PEER_WINDOW = 4;
/** We never keep more than this many unacknowledged, whatever window the peer offers. */
export const MAX_PEER_WINDOW = 64;

export interface SendBytes {
  type: 'send';
  bytes: Uint8Array;
}
export interface Deliver<T> {
  type: 'deliver';
  msg: T;
}
export interface ChannelFailed {
  type: 'failed';
  reason: 'max-retries' | 'queue-full';
}
export type ChannelAction<T> = SendBytes | TimerAction | Deliver<T> | ChannelFailed;

export interface OutgoingControl {
  tunnelId: number;
  sessionId: number;
  /** Encoded AVPs; must not be empty (an empty body would be a ZLB). */
  body: Uint8Array;
}

export interface IncomingControl<T> {
  ns: number;
  nr: number;
  /** Undefined for a ZLB, which only carries an acknowledgement. */
  msg?: T;
}

export interface ChannelStats {
  sent: number;
  retransmissions: number;
  zlbSent: number;
  received: number;
  duplicates: number;
  queuedOutOfOrder: number;
  outsideWindow: number;
  badAcks: number;
}

interface Pending {
  ns: number;
  out: OutgoingControl;
  sent: boolean;
}

export class ControlChannel<T> {
  private readonly cfg: ChannelConfig;
  private nextNs = 0;
  private nextNr = 0;
  private readonly pending: Pending[] = [];
  private readonly early = new Map<number, T>();
  private rto: number;
  private retries = 0;
  private rtxRunning = false;
  private ackOwed = false;
  private ackRunning = false;
  private cwndValue = 1;
  private ssthresh = DEFAULT_PEER_WINDOW;
  private caAcks = 0;
  private peerWindowValue = DEFAULT_PEER_WINDOW;
  private dead = false;
  /** Tunnel ID the peer assigned; ZLBs are addressed to it. */
  peerTunnelId = 0;
  readonly stats: ChannelStats = {
    sent: 0,
    retransmissions: 0,
    zlbSent: 0,
    received: 0,
    duplicates: 0,
    queuedOutOfOrder: 0,
    outsideWindow: 0,
    badAcks: 0,
  };

  constructor(cfg: Partial<ChannelConfig> = {}) {
    this.cfg = { ...DEFAULT_CHANNEL_CONFIG, ...cfg };
    this.rto = this.cfg.initialTimeoutMs;
  }

  get cwnd(): number {
    return this.cwndValue;
  }
  get peerWindow(): number {
    return this.peerWindowValue;
  }
  /** Messages sent and not yet acknowledged. */
  get inFlight(): number {
    let n = 0;
    for (const p of this.pending) if (p.sent) n++;
    return n;
  }
  /** Messages not yet acknowledged, sent or waiting for the window. */
  get unacknowledged(): number {
    return this.pending.length;
  }
  get failed(): boolean {
    return this.dead;
  }
  /** Our next Ns and the Nr we expect: exposed for status and tests. */
  get sequence(): { ns: number; nr: number } {
    return { ns: this.nextNs, nr: this.nextNr };
  }

  /** Sets the peer's Receive Window Size (absent → 4; 0 is invalid and read as 1). */
  setPeerWindow(size: number | undefined): void {
    const w = size === undefined ? DEFAULT_PEER_WINDOW : Math.min(Math.max(size, 1), MAX_PEER_WINDOW);
    this.peerWindowValue = w;
    this.ssthresh = w;
    this.cwndValue = Math.min(this.cwndValue, w);
  }

  /** Queues a message for reliable delivery; it goes out as soon as the window allows. */
  send(out: OutgoingControl): ChannelAction<T>[] {
    if (this.dead) return [];
    if (out.body.length === 0) throw new RangeError('a sequenced control message needs AVPs');
    if (this.pending.length >= this.cfg.maxQueued) return this.fail('queue-full');
    this.pending.push({ ns: this.nextNs, out, sent: false });
    this.nextNs = seqAdd(this.nextNs, 1);
    return this.pump();
  }

  /**
   * Takes one control message whose header passed the owner's checks. Returns sends (acks,
   * window refills), timer actions and, in order, the messages to deliver.
   */
  receive(pkt: IncomingControl<T>): ChannelAction<T>[] {
    if (this.dead) return [];
    const acts = this.acknowledge(pkt.nr);
    if (pkt.msg === undefined) return acts;
    this.stats.received++;
    if (pkt.ns === this.nextNr) {
      acts.push({ type: 'deliver', msg: pkt.msg });
      this.nextNr = seqAdd(this.nextNr, 1);
      for (let m = this.early.get(this.nextNr); m !== undefined; m = this.early.get(this.nextNr)) {
        this.early.delete(this.nextNr);
        acts.push({ type: 'deliver', msg: m });
        this.nextNr = seqAdd(this.nextNr, 1);
      }
      this.ackOwed = true;
    } else if (seqLt(pkt.ns, this.nextNr)) {
      // Our ack was lost: the peer must hear it again even though we drop the copy (5.8).
      this.stats.duplicates++;
      acts.push(...this.sendZlb());
    } else if (seqDiff(pkt.ns, this.nextNr) < this.cfg.receiveWindow) {
      if (!this.early.has(pkt.ns)) {
        this.early.set(pkt.ns, pkt.msg);
        this.stats.queuedOutOfOrder++;
      }
    } else {
      this.stats.outsideWindow++;
    }
    return acts;
  }

  /** Arms the delayed-ack timer if an ack is still owed. Call after handling deliveries. */
  flush(): ChannelAction<T>[] {
    if (this.dead || !this.ackOwed || this.ackRunning) return [];
    if (this.cfg.ackDelayMs <= 0) return this.sendZlb();
    this.ackRunning = true;
    return [startTimer(TIMER_ACK, this.cfg.ackDelayMs)];
  }

  /** Acknowledges everything received so far with a ZLB now (e.g. on receiving StopCCN). */
  ackNow(): ChannelAction<T>[] {
    return this.dead ? [] : this.sendZlb();
  }

  timerFired(timer: string): ChannelAction<T>[] {
    if (this.dead) return [];
    if (timer === TIMER_ACK) {
      this.ackRunning = false;
      return this.ackOwed ? this.sendZlb() : [];
    }
    if (timer !== TIMER_RETRANSMIT) return [];
    this.rtxRunning = false;
    const head = this.pending[0];
    if (!head?.sent) return [];
    this.retries++;
    if (this.retries > this.cfg.maxRetries) return this.fail('max-retries');
    this.ssthresh = Math.max(Math.floor(this.cwndValue / 2), 1);
    this.cwndValue = 1;
    this.caAcks = 0;
    this.stats.retransmissions++;
    const acts = this.transmit(head);
    this.rto = Math.min(this.rto * 2, this.cfg.maxTimeoutMs);
    acts.push(this.armRetransmit());
    return acts;
  }

  /** Stops all timers and drops all state; nothing more is sent. */
  stop(): ChannelAction<T>[] {
    const acts: ChannelAction<T>[] = [];
    if (this.rtxRunning) acts.push(stopTimer(TIMER_RETRANSMIT));
    if (this.ackRunning) acts.push(stopTimer(TIMER_ACK));
    this.rtxRunning = this.ackRunning = false;
    this.dead = true;
    this.pending.length = 0;
    this.early.clear();
    return acts;
  }

  /** Full retransmission cycle: how long a peer may keep retrying one message. */
  retransmissionCycleMs(): number {
    let t = 0;
    let rto = this.cfg.initialTimeoutMs;
    for (let i = 0; i <= this.cfg.maxRetries; i++) {
      t += rto;
      rto = Math.min(rto * 2, this.cfg.maxTimeoutMs);
    }
    return t;
  }

  private fail(reason: ChannelFailed['reason']): ChannelAction<T>[] {
    const acts = this.stop();
    acts.push({ type: 'failed', reason });
    return acts;
  }

  private acknowledge(nr: number): ChannelAction<T>[] {
    const base = this.pending[0]?.ns ?? this.nextNs;
    const n = seqDiff(nr, base);
    if (n === 0) return [];
    if (n > this.inFlight) {
      // Acks something we never sent (stale or forged); ignore it.
      this.stats.badAcks++;
      return [];
    }
    this.pending.splice(0, n);
    for (let i = 0; i < n; i++) this.grow();
    this.retries = 0;
    this.rto = this.cfg.initialTimeoutMs;
    const acts: ChannelAction<T>[] = [];
    if (this.rtxRunning) {
      this.rtxRunning = false;
      acts.push(stopTimer(TIMER_RETRANSMIT));
    }
    acts.push(...this.pump());
    return acts;
  }

  private grow(): void {
    if (this.cwndValue < this.ssthresh) this.cwndValue++;
    else if (++this.caAcks >= this.cwndValue) {
      this.caAcks = 0;
      this.cwndValue++;
    }
    this.cwndValue = Math.min(this.cwndValue, this.peerWindowValue);
  }

  private pump(): ChannelAction<T>[] {
    const acts: ChannelAction<T>[] = [];
    const limit = Math.min(this.cwndValue, this.peerWindowValue);
    let inFlight = this.inFlight;
    for (const p of this.pending) {
      if (inFlight >= limit) break;
      if (p.sent) continue;
      acts.push(...this.transmit(p));
      inFlight++;
    }
    if (!this.rtxRunning && this.pending[0]?.sent) acts.push(this.armRetransmit());
    return acts;
  }

  private armRetransmit(): TimerAction {
    this.rtxRunning = true;
    return startTimer(TIMER_RETRANSMIT, this.rto);
  }

  /** Sends (or re-sends) one message carrying the current Nr, which also settles any owed ack. */
  private transmit(p: Pending): ChannelAction<T>[] {
    if (!p.sent) this.stats.sent++;
    p.sent = true;
    const bytes = encodeControl({ tunnelId: p.out.tunnelId, sessionId: p.out.sessionId, ns: p.ns, nr: this.nextNr }, p.out.body);
    return [{ type: 'send', bytes }, ...this.ackSettled()];
  }

  private sendZlb(): ChannelAction<T>[] {
    // A ZLB carries the Ns our next new message will use, without consuming it.
    const unsent = this.pending.find((p) => !p.sent);
    const ns = unsent ? unsent.ns : this.nextNs;
    const bytes = encodeControl({ tunnelId: this.peerTunnelId, sessionId: 0, ns, nr: this.nextNr }, new Uint8Array(0));
    this.stats.zlbSent++;
    return [{ type: 'send', bytes }, ...this.ackSettled()];
  }

  private ackSettled(): ChannelAction<T>[] {
    this.ackOwed = false;
    if (!this.ackRunning) return [];
    this.ackRunning = false;
    return [stopTimer(TIMER_ACK)];
  }
}

/**
 * The RFC 1661 section 4 option-negotiation automaton, written once and configured
 * per protocol (LCP, IPCP, IPV6CP) through an `OptionHandler`.
 *
 * The state transition table is data (`TABLE`), so the code that runs it is one small
 * interpreter and the table test can check it cell by cell. The optional behaviours
 * the RFC marks r (restart), p (passive) and x (crossed connection) are not taken.
 */
import { type StartTimer, type StopTimer, startTimer, stopTimer } from '../core/actions';
import {
  CODE,
  type ControlPacket,
  decodeOptions,
  decodePacket,
  encodeOptions,
  encodePacket,
  type PppOption,
  PppDecodeError,
} from './frame';

export const FSM_STATES = [
  'Initial',
  'Starting',
  'Closed',
  'Stopped',
  'Closing',
  'Stopping',
  'Req-Sent',
  'Ack-Rcvd',
  'Ack-Sent',
  'Opened',
] as const;
export type FsmState = (typeof FSM_STATES)[number];

export const FSM_EVENTS = [
  'Up',
  'Down',
  'Open',
  'Close',
  'TO+',
  'TO-',
  'RCR+',
  'RCR-',
  'RCA',
  'RCN',
  'RTR',
  'RTA',
  'RUC',
  'RXJ+',
  'RXJ-',
  'RXR',
] as const;
export type FsmEvent = (typeof FSM_EVENTS)[number];

export type FsmActionName = 'tlu' | 'tld' | 'tls' | 'tlf' | 'irc' | 'zrc' | 'scr' | 'sca' | 'scn' | 'str' | 'sta' | 'scj' | 'ser';

/**
 * One string per event, ten cells per string in state order 0..9. A cell is
 * `actions/next` or just `next`; `-` marks an event that cannot occur in that state
 * (the automaton ignores it and stays put).
 */
const RAW_TABLE: Record<FsmEvent, string> = {
  Up: '2 irc,scr/6 - - - - - - - -',
  Down: '- - 0 tls/1 0 1 1 1 1 tld/1',
  Open: 'tls/1 1 irc,scr/6 3 5 5 6 7 8 9',
  Close: '0 tlf/0 2 2 4 4 irc,str/4 irc,str/4 irc,str/4 tld,irc,str/4',
  'TO+': '- - - - str/4 str/5 scr/6 scr/6 scr/8 -',
  'TO-': '- - - - tlf/2 tlf/3 tlf/3 tlf/3 tlf/3 -',
  'RCR+': '- - sta/2 irc,scr,sca/8 4 5 sca/8 sca,tlu/9 sca/8 tld,scr,sca/8',
  'RCR-': '- - sta/2 irc,scr,scn/6 4 5 scn/6 scn/7 scn/6 tld,scr,scn/6',
  RCA: '- - sta/2 sta/3 4 5 irc/7 scr/6 irc,tlu/9 tld,scr/6',
  RCN: '- - sta/2 sta/3 4 5 irc,scr/6 scr/6 irc,scr/8 tld,scr/6',
  RTR: '- - sta/2 sta/3 sta/4 sta/5 sta/6 sta/6 sta/6 tld,zrc,sta/5',
  RTA: '- - 2 3 tlf/2 tlf/3 6 6 8 tld,scr/6',
  RUC: '- - scj/2 scj/3 scj/4 scj/5 scj/6 scj/7 scj/8 scj/9',
  'RXJ+': '- - 2 3 4 5 6 6 8 9',
  'RXJ-': '- - tlf/2 tlf/3 tlf/2 tlf/3 tlf/3 tlf/3 tlf/3 tld,irc,str/5',
  RXR: '- - 2 3 4 5 6 7 8 ser/9',
};

export interface Transition {
  actions: FsmActionName[];
  next: FsmState;
}

function parseTable(): Map<string, Transition | null> {
  const m = new Map<string, Transition | null>();
  for (const ev of FSM_EVENTS) {
    const cells = RAW_TABLE[ev].split(' ');
    if (cells.length !== FSM_STATES.length) throw new Error(`table row ${ev} has ${cells.length} cells`);
    cells.forEach((cell, i) => {
      const key = `${FSM_STATES[i]}|${ev}`;
      if (cell === '-') {
        m.set(key, null);
        return;
      }
      const slash = cell.indexOf('/');
      const actions = slash < 0 ? [] : (cell.slice(0, slash).split(',') as FsmActionName[]);
      const next = FSM_STATES[Number(slash < 0 ? cell : cell.slice(slash + 1))]!;
      m.set(key, { actions, next });
    });
  }
  return m;
}

const TABLE = parseTable();

/** The RFC 1661 cell for (state, event); null for the "cannot happen" cells. */
export function transition(state: FsmState, event: FsmEvent): Transition | null {
  return TABLE.get(`${state}|${event}`) ?? null;
}

/** States in which the Restart timer runs (RFC 1661 4.6). */
const TIMED_STATES: ReadonlySet<FsmState> = new Set(['Closing', 'Stopping', 'Req-Sent', 'Ack-Rcvd', 'Ack-Sent']);
const NEGOTIATING: ReadonlySet<FsmState> = new Set(['Req-Sent', 'Ack-Rcvd', 'Ack-Sent']);

export interface AutomatonConfig {
  /** Restart timer, ms (RFC 1661 4.6 default 3 s). */
  restartMs: number;
  maxTerminate: number;
  maxConfigure: number;
  /** Naks sent without an Ack before Naks turn into Rejects (RFC 1661 4.6). */
  maxFailure: number;
  /**
   * When the peer's first Configure-Request arrives while ours is still unanswered,
   * retransmit ours after this many ms instead of waiting out the Restart timer
   * (RFC 1661 leaves the retransmission time to us). A peer that sends its own
   * request and not an Ack most likely never saw ours (pppd behind an LNS starts
   * after the session is up and loses it). Not 0 by default: an Ack to our first
   * request may still be in flight, and a duplicate request reaching a peer that
   * is already Opened makes it renegotiate; the link sets it from the tunnel's
   * round-trip time. Negative turns it off.
   */
  peerRequestResendMs: number;
}

/**
 * peerRequestResendMs from how long the tunnel and session took to set up: that took
 * at least two round trips, so an Ack to our request is no longer in flight by then.
 */
export function earlyResendMs(setupMs: number): number {
  return Math.round(Math.min(1000, Math.max(50, Number.isFinite(setupMs) ? setupMs : 1000)));
}

export const DEFAULT_AUTOMATON_CONFIG: AutomatonConfig = {
  restartMs: 3000,
  maxTerminate: 2,
  maxConfigure: 10,
  maxFailure: 5,
  peerRequestResendMs: 200,
};

/** What to answer to the peer's Configure-Request. Both lists empty means Ack. */
export interface RequestVerdict {
  nak: PppOption[];
  reject: PppOption[];
  /** The negotiation cannot succeed (e.g. a looped-back link); close with this reason. */
  fatal?: string;
}

/**
 * The protocol-specific half of the automaton. Methods returning a string report a
 * fatal condition with that reason; returning nothing means carry on.
 */
export interface OptionHandler {
  /**
   * Start of a fresh negotiation: forget our Nak/Reject adjustments and our old
   * results. It may run just after `peerAcked` (RCR+ in Stopped), so it must not
   * clear what was recorded about the peer.
   */
  reset(): void;
  /** Options for our next Configure-Request. */
  buildRequest(): PppOption[];
  /** Judge the peer's Configure-Request. Options in `reject` must be the peer's own, unmodified. */
  judgeRequest(opts: PppOption[]): RequestVerdict;
  /** We are Ack-ing this request: record the peer's values. */
  peerAcked(opts: PppOption[]): void;
  /** The peer Ack-ed our request: record our negotiated values. */
  onAck(opts: PppOption[]): string | undefined;
  onNak(opts: PppOption[]): string | undefined;
  onReject(opts: PppOption[]): string | undefined;
  /**
   * Codes beyond 1..7 this protocol understands (LCP: Protocol-Reject and the RXR
   * codes Echo-Request/Reply and Discard-Request). Anything else gets a Code-Reject.
   */
  readonly extraCodes?: { rxr: readonly number[]; protocolReject: boolean };
  /** The ser action: an Echo-Reply packet for this Echo-Request, or undefined. */
  echoReply?(pkt: ControlPacket): Buffer | undefined;
}

export type AutomatonOutput =
  | { type: 'send'; protocol: number; bytes: Buffer }
  | StartTimer
  | StopTimer
  | { type: 'up'; layer: string }
  | { type: 'down'; layer: string; reason: string }
  | { type: 'started'; layer: string }
  | { type: 'finished'; layer: string; reason: string }
  /** A Protocol-Reject (LCP) for another protocol arrived: the link must stop it (RXJ- there). */
  | { type: 'protocol-rejected'; layer: string; protocol: number }
  /** An RXR packet (Echo-Request/Reply, Discard) accepted in Opened, for the echo keepalive. */
  | { type: 'rxr'; layer: string; packet: ControlPacket }
  | { type: 'drop'; layer: string; reason: string };

/** The received packet an event came from, for sca/scn/sta/scj/ser. */
interface EventContext {
  packet?: ControlPacket;
  raw?: Buffer;
  verdict?: RequestVerdict;
}

export class Automaton {
  private st: FsmState = 'Initial';
  private restartCount = 0;
  private timerRunning = false;
  private nextId = 1;
  /** Identifier and bytes of our outstanding Configure-Request; answered=true once a reply was taken. */
  private req: { id: number; options: Buffer; answered: boolean } | undefined;
  private termId = 0;
  private rejId = 0;
  private naksSent = 0;
  private badRequests = 0;
  private repliesWithoutAck = 0;
  /** The peer has sent a Configure-Request in this negotiation (see peerRequestResendMs). */
  private peerRequestSeen = false;
  private reason = '';
  private out: AutomatonOutput[] = [];
  /** The table actions run by the last event, in order (for tests and traces). */
  lastActions: FsmActionName[] = [];
  readonly cfg: AutomatonConfig;
  readonly timer: string;

  constructor(
    readonly layer: string,
    readonly protocol: number,
    readonly handler: OptionHandler,
    cfg: Partial<AutomatonConfig> = {},
  ) {
    this.cfg = { ...DEFAULT_AUTOMATON_CONFIG, ...cfg };
    this.timer = `${layer}.restart`;
  }

  get state(): FsmState {
    return this.st;
  }

  /** Remaining Restart-counter budget (read-only view for tests and status). */
  get restartCounter(): number {
    return this.restartCount;
  }

  get lastReason(): string {
    return this.reason;
  }

  up(): AutomatonOutput[] {
    return this.run('Up', {}, undefined);
  }

  down(reason = 'lower layer down'): AutomatonOutput[] {
    return this.run('Down', {}, reason);
  }

  open(): AutomatonOutput[] {
    return this.run('Open', {}, undefined);
  }

  close(reason = 'administrative close'): AutomatonOutput[] {
    return this.run('Close', {}, reason);
  }

  /** The restart timer fired. Stale firings (timer not running) are ignored. */
  timeout(): AutomatonOutput[] {
    if (!this.timerRunning) return [];
    this.timerRunning = false;
    if (this.restartCount > 0) return this.run('TO+', {}, undefined);
    const reason = NEGOTIATING.has(this.st)
      ? `${this.layer}: no response to Configure-Request (Max-Configure ${this.cfg.maxConfigure} reached)`
      : undefined;
    return this.run('TO-', {}, reason);
  }

  /** The lower layer says this protocol was Protocol-Rejected by the peer. */
  protocolRejected(): AutomatonOutput[] {
    return this.run('RXJ-', {}, `${this.layer}: rejected by peer (Protocol-Reject)`);
  }

  /** Runs one abstract event; the packet context is used by sca/scn/sta/scj/ser. */
  dispatch(event: FsmEvent, ctx: EventContext = {}, reason?: string): AutomatonOutput[] {
    return this.run(event, ctx, reason);
  }

  /** A control packet of this protocol arrived (payload after the PPP protocol field). */
  receive(bytes: Buffer): AutomatonOutput[] {
    let pkt: ControlPacket;
    try {
      pkt = decodePacket(bytes);
    } catch (e) {
      if (e instanceof PppDecodeError) return [this.drop(`malformed packet: ${e.reason}`)];
      throw e;
    }
    const raw = bytes.subarray(0, 4 + pkt.data.length);
    if (this.st === 'Initial' || this.st === 'Starting') return [this.drop('not started')];
    const ctx: EventContext = { packet: pkt, raw };
    switch (pkt.code) {
      case CODE.CONF_REQ:
        return this.receiveConfReq(ctx);
      case CODE.CONF_ACK:
      case CODE.CONF_NAK:
      case CODE.CONF_REJ:
        return this.receiveReply(ctx);
      case CODE.TERM_REQ: {
        const msg = printable(pkt.data);
        return this.run('RTR', ctx, `${this.layer}: peer sent Terminate-Request${msg ? `: ${msg}` : ''}`);
      }
      case CODE.TERM_ACK:
        return this.run('RTA', ctx, undefined);
      case CODE.CODE_REJ: {
        const rejected = pkt.data[0];
        if (rejected === undefined) return [this.drop('empty Code-Reject')];
        // Rejecting anything the automaton itself depends on is catastrophic.
        const catastrophic = rejected >= CODE.CONF_REQ && rejected <= CODE.CODE_REJ;
        return catastrophic
          ? this.run('RXJ-', ctx, `${this.layer}: peer Code-Rejected code ${rejected}`)
          : this.run('RXJ+', ctx, undefined);
      }
      default:
        return this.receiveExtra(ctx);
    }
  }

  private receiveExtra(ctx: EventContext): AutomatonOutput[] {
    const pkt = ctx.packet!;
    const extra = this.handler.extraCodes;
    if (extra?.rxr.includes(pkt.code)) return this.run('RXR', ctx, undefined);
    if (extra?.protocolReject && pkt.code === CODE.PROTO_REJ) {
      // RFC 1661 5.7: Protocol-Reject is only meaningful in Opened; elsewhere discard it.
      if (this.st !== 'Opened') return [this.drop('Protocol-Reject outside Opened')];
      if (pkt.data.length < 2) return [this.drop('short Protocol-Reject')];
      const rejected = pkt.data.readUInt16BE(0);
      if (rejected === this.protocol) return this.run('RXJ-', ctx, `${this.layer}: rejected by peer (Protocol-Reject)`);
      const out = this.run('RXJ+', ctx, undefined);
      out.push({ type: 'protocol-rejected', layer: this.layer, protocol: rejected });
      return out;
    }
    return this.run('RUC', ctx, undefined);
  }

  private receiveConfReq(ctx: EventContext): AutomatonOutput[] {
    let opts: PppOption[];
    try {
      opts = decodeOptions(ctx.packet!.data);
    } catch (e) {
      if (e instanceof PppDecodeError) return [this.drop(`malformed Configure-Request: ${e.reason}`)];
      throw e;
    }
    // Only Stopped and the negotiating/opened states need a verdict; elsewhere the cell is the same either way.
    if (this.st === 'Closed' || this.st === 'Closing' || this.st === 'Stopping') return this.run('RCR+', ctx, undefined);
    const verdict = this.handler.judgeRequest(opts);
    if (verdict.fatal) return this.fail(verdict.fatal);
    if (verdict.nak.length > 0 && this.naksSent >= this.cfg.maxFailure) {
      // RFC 1661 4.6 Max-Failure: further Naks become Rejects of the peer's own options.
      const types = new Set(verdict.nak.map((o) => o.type));
      verdict.reject = [...verdict.reject, ...opts.filter((o) => types.has(o.type) && !verdict.reject.includes(o))];
      verdict.nak = [];
    }
    const ourUnanswered = this.st === 'Req-Sent' && !this.peerRequestSeen && this.req !== undefined && !this.req.answered;
    let out: AutomatonOutput[];
    if (verdict.nak.length === 0 && verdict.reject.length === 0) {
      this.handler.peerAcked(opts);
      out = this.run('RCR+', ctx, 'peer renegotiated');
    } else {
      this.badRequests++;
      if (this.badRequests > 2 * this.cfg.maxFailure) {
        return this.fail(`${this.layer}: negotiation not converging: peer kept sending unacceptable Configure-Requests`);
      }
      out = this.run('RCR-', { ...ctx, verdict }, 'peer renegotiated');
    }
    this.peerRequestSeen = true;
    if (ourUnanswered) this.resendEarly(out);
    return out;
  }

  /** Our Configure-Request went unanswered while the peer sent its own: retransmit it soon (see peerRequestResendMs). */
  private resendEarly(out: AutomatonOutput[]): void {
    const ms = this.cfg.peerRequestResendMs;
    if (ms < 0 || ms >= this.cfg.restartMs || !this.timerRunning || !NEGOTIATING.has(this.st) || this.restartCount <= 0) return;
    if (ms === 0) {
      this.out = out;
      this.act('scr', 'TO+', this.st, {}, ['scr']);
      this.lastActions = [...this.lastActions, 'scr'];
      return;
    }
    // The Restart timer, shortened once: when it fires, TO+ retransmits with the same Identifier.
    out.push(startTimer(this.timer, ms));
  }

  private receiveReply(ctx: EventContext): AutomatonOutput[] {
    const pkt = ctx.packet!;
    const req = this.req;
    if (!req || req.answered || pkt.id !== req.id) return [this.drop('reply does not match our Configure-Request')];
    let opts: PppOption[];
    try {
      opts = decodeOptions(pkt.data);
    } catch (e) {
      if (e instanceof PppDecodeError) return [this.drop(`malformed reply: ${e.reason}`)];
      throw e;
    }
    if (pkt.code === CODE.CONF_ACK) {
      // RFC 1661 5.2: the Ack must repeat our options exactly.
      if (!pkt.data.equals(req.options)) return [this.drop('Configure-Ack does not match our request')];
      req.answered = true;
      this.repliesWithoutAck = 0;
      const fatal = this.handler.onAck(opts);
      if (fatal) return this.fail(fatal);
      return this.run('RCA', ctx, 'peer renegotiated');
    }
    if (pkt.code === CODE.CONF_REJ) {
      const sent = new Set(decodeOptions(req.options).map((o) => o.type));
      if (!opts.every((o) => sent.has(o.type))) return [this.drop('Configure-Reject names options we did not send')];
    }
    req.answered = true;
    this.repliesWithoutAck++;
    if (this.repliesWithoutAck > 2 * this.cfg.maxFailure) {
      return this.fail(`${this.layer}: negotiation not converging: peer kept refusing our Configure-Request`);
    }
    const fatal = pkt.code === CODE.CONF_NAK ? this.handler.onNak(opts) : this.handler.onReject(opts);
    if (fatal) return this.fail(fatal);
    return this.run('RCN', ctx, 'peer renegotiated');
  }

  /** A condition the handler cannot negotiate around: close with the reason. */
  private fail(reason: string): AutomatonOutput[] {
    return this.run('Close', {}, reason);
  }

  private drop(reason: string): AutomatonOutput {
    return { type: 'drop', layer: this.layer, reason };
  }

  private run(event: FsmEvent, ctx: EventContext, reason: string | undefined): AutomatonOutput[] {
    this.out = [];
    const t = transition(this.st, event);
    this.lastActions = t ? [...t.actions] : [];
    if (!t) {
      this.out.push(this.drop(`event ${event} ignored in state ${this.st}`));
      return this.out;
    }
    if (
      reason !== undefined &&
      (t.actions.includes('tld') || t.actions.includes('tlf') || event === 'Close' || event === 'Down')
    ) {
      this.reason = reason;
    }
    const from = this.st;
    for (const a of t.actions) this.act(a, event, from, ctx, t.actions);
    this.st = t.next;
    if (!TIMED_STATES.has(this.st) && this.timerRunning) {
      this.timerRunning = false;
      this.out.push(stopTimer(this.timer));
    }
    return this.out;
  }

  private armTimer(): void {
    this.timerRunning = true;
    this.out.push(startTimer(this.timer, this.cfg.restartMs));
  }

  private send(code: number, id: number, data: Buffer): void {
    this.out.push({ type: 'send', protocol: this.protocol, bytes: encodePacket(code, id, data) });
  }

  private act(a: FsmActionName, event: FsmEvent, from: FsmState, ctx: EventContext, all: FsmActionName[]): void {
    const pkt = ctx.packet;
    switch (a) {
      case 'tlu':
        this.reason = '';
        this.naksSent = 0;
        this.badRequests = 0;
        this.repliesWithoutAck = 0;
        this.out.push({ type: 'up', layer: this.layer });
        return;
      case 'tld':
        this.out.push({ type: 'down', layer: this.layer, reason: this.reason || event });
        return;
      case 'tls':
        this.reason = '';
        this.out.push({ type: 'started', layer: this.layer });
        return;
      case 'tlf':
        this.out.push({ type: 'finished', layer: this.layer, reason: this.reason || event });
        return;
      case 'irc':
        this.restartCount = all.includes('str') ? this.cfg.maxTerminate : this.cfg.maxConfigure;
        return;
      case 'zrc':
        // RFC 1661 4.6: pause one restart period in Stopping so the peer sees our Terminate-Ack.
        this.restartCount = 0;
        this.armTimer();
        return;
      case 'scr': {
        if (event === 'TO+' && this.req) {
          // Retransmission: same Identifier and options, so a late Ack to the first copy still counts.
          this.req.answered = false;
          this.send(CODE.CONF_REQ, this.req.id, this.req.options);
        } else {
          if (!NEGOTIATING.has(from)) {
            this.peerRequestSeen = false;
            this.handler.reset();
            this.naksSent = 0;
            this.badRequests = 0;
            this.repliesWithoutAck = 0;
          }
          const options = encodeOptions(this.handler.buildRequest());
          const id = this.takeId();
          this.req = { id, options, answered: false };
          this.send(CODE.CONF_REQ, id, options);
        }
        this.restartCount--;
        this.armTimer();
        return;
      }
      case 'sca':
        this.naksSent = 0;
        this.badRequests = 0;
        this.send(CODE.CONF_ACK, pkt?.id ?? 0, pkt?.data ?? Buffer.alloc(0));
        return;
      case 'scn': {
        const v = ctx.verdict ?? { nak: [], reject: [] };
        // RFC 1661 5.4: if anything must be rejected, send only the Reject.
        if (v.reject.length > 0) {
          this.send(CODE.CONF_REJ, pkt?.id ?? 0, encodeOptions(v.reject));
        } else {
          this.naksSent++;
          this.send(CODE.CONF_NAK, pkt?.id ?? 0, encodeOptions(v.nak));
        }
        return;
      }
      case 'str':
        this.termId = this.takeId();
        this.send(CODE.TERM_REQ, this.termId, Buffer.from(this.reason.slice(0, 64), 'utf8'));
        this.restartCount--;
        this.armTimer();
        return;
      case 'sta':
        this.send(CODE.TERM_ACK, pkt?.id ?? 0, Buffer.alloc(0));
        return;
      case 'scj': {
        // The rejected packet goes back whole, truncated to a size any MRU accepts.
        this.rejId = (this.rejId + 1) & 0xff;
        const raw = (ctx.raw ?? Buffer.alloc(0)).subarray(0, 1496);
        this.send(CODE.CODE_REJ, this.rejId, raw);
        return;
      }
      case 'ser': {
        if (!pkt) return;
        this.out.push({ type: 'rxr', layer: this.layer, packet: pkt });
        const reply = this.handler.echoReply?.(pkt);
        if (reply) this.out.push({ type: 'send', protocol: this.protocol, bytes: reply });
        return;
      }
    }
  }

  private takeId(): number {
    const id = this.nextId;
    this.nextId = (this.nextId + 1) & 0xff;
    return id;
  }
}

/** Renders a peer-supplied message for logs: printable ASCII only, bounded. */
export function printable(data: Uint8Array, max = 120): string {
  let s = '';
  for (const c of data.subarray(0, max)) s += c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : '.';
  return s;
}

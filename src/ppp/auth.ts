/**
 * The authenticatee side of CHAP-MD5 (RFC 1994) and PAP (RFC 1334): we prove who we
 * are to the SC; we never authenticate the SC.
 *
 * Both clients are sans-I/O: `start()`, `receive(packet)` and `timerFired()` return
 * actions. Failure messages carry the peer's text, or 'no response' when the peer
 * stayed silent (l2tpns, for one, answers a RADIUS reject with a CDN and no Failure).
 */
import { createHash } from 'node:crypto';
import { type StartTimer, type StopTimer, startTimer, stopTimer } from '../core/actions';
import { printable } from './automaton';
import { type ControlPacket, decodePacket, encodePacket, PppDecodeError, PROTO } from './frame';
import type { AuthProtocolName } from './lcp';

export interface AuthCredentials {
  username: string;
  password: string;
}

export type AuthOutput =
  | { type: 'send'; protocol: number; bytes: Buffer }
  | StartTimer
  | StopTimer
  | { type: 'auth-ok'; message: string }
  | { type: 'auth-failed'; message: string }
  | { type: 'drop'; layer: string; reason: string };

export type AuthState = 'idle' | 'waiting' | 'success' | 'failed';

export interface AuthClient {
  readonly protocol: number;
  readonly name: AuthProtocolName;
  readonly state: AuthState;
  /** The peer's last Success/Failure/Ack/Nak message. */
  readonly message: string;
  start(): AuthOutput[];
  receive(bytes: Buffer): AuthOutput[];
  timerFired(timer: string): AuthOutput[];
  stop(): AuthOutput[];
}

const CHAP = { CHALLENGE: 1, RESPONSE: 2, SUCCESS: 3, FAILURE: 4 } as const;
const PAP = { REQUEST: 1, ACK: 2, NAK: 3 } as const;

/** RFC 1994 section 4.1: Response value = MD5(Identifier ‖ secret ‖ Challenge). */
export function chapMd5Response(id: number, secret: string | Buffer, challenge: Uint8Array): Buffer {
  return createHash('md5')
    .update(Buffer.from([id & 0xff]))
    .update(typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret)
    .update(challenge)
    .digest();
}

function decode(bytes: Buffer, layer: string): ControlPacket | AuthOutput {
  try {
    return decodePacket(bytes);
  } catch (e) {
    if (e instanceof PppDecodeError) return { type: 'drop', layer, reason: `malformed packet: ${e.reason}` };
    throw e;
  }
}

export interface ChapOptions {
  /** How long to wait for a Challenge, then for Success/Failure, before failing with 'no response'. */
  timeoutMs?: number;
}

export class ChapClient implements AuthClient {
  readonly protocol = PROTO.CHAP;
  readonly name = 'chap-md5' as const;
  readonly timer = 'auth.timeout';
  private st: AuthState = 'idle';
  private msg = '';
  private last: { id: number; bytes: Buffer; challenge: Buffer } | undefined;
  private readonly timeoutMs: number;

  constructor(
    private readonly creds: AuthCredentials,
    opts: ChapOptions = {},
  ) {
    this.timeoutMs = opts.timeoutMs ?? 30_000;
  }

  get state(): AuthState {
    return this.st;
  }

  get message(): string {
    return this.msg;
  }

  start(): AuthOutput[] {
    this.st = 'waiting';
    return [startTimer(this.timer, this.timeoutMs)];
  }

  stop(): AuthOutput[] {
    return [stopTimer(this.timer)];
  }

  receive(bytes: Buffer): AuthOutput[] {
    const p = decode(bytes, 'chap');
    if (!('code' in p)) return [p];
    if (this.st === 'idle' || this.st === 'failed') return [{ type: 'drop', layer: 'chap', reason: `CHAP in state ${this.st}` }];
    switch (p.code) {
      case CHAP.CHALLENGE:
        return this.challenge(p);
      case CHAP.SUCCESS: {
        if (!this.last || p.id !== this.last.id)
          return [{ type: 'drop', layer: 'chap', reason: 'Success for another Identifier' }];
        this.msg = printable(p.data);
        if (this.st === 'success') return []; // acknowledges a re-challenge
        this.st = 'success';
        return [stopTimer(this.timer), { type: 'auth-ok', message: this.msg }];
      }
      case CHAP.FAILURE: {
        if (!this.last || p.id !== this.last.id)
          return [{ type: 'drop', layer: 'chap', reason: 'Failure for another Identifier' }];
        this.st = 'failed';
        this.msg = printable(p.data) || 'authentication failed';
        return [stopTimer(this.timer), { type: 'auth-failed', message: this.msg }];
      }
      default:
        return [{ type: 'drop', layer: 'chap', reason: `unexpected CHAP code ${p.code}` }];
    }
  }

  private challenge(p: ControlPacket): AuthOutput[] {
    const size = p.data[0];
    if (size === undefined || size === 0 || 1 + size > p.data.length) {
      return [{ type: 'drop', layer: 'chap', reason: 'malformed Challenge' }];
    }
    const challenge = p.data.subarray(1, 1 + size);
    // A retransmitted Challenge (same Identifier and value) gets the same Response.
    if (!(this.last && this.last.id === p.id && this.last.challenge.equals(challenge))) {
      const value = chapMd5Response(p.id, this.creds.password, challenge);
      const name = Buffer.from(this.creds.username, 'utf8');
      const bytes = encodePacket(CHAP.RESPONSE, p.id, Buffer.concat([Buffer.from([value.length]), value, name]));
      this.last = { id: p.id, bytes, challenge: Buffer.from(challenge) };
    }
    const out: AuthOutput[] = [{ type: 'send', protocol: this.protocol, bytes: this.last.bytes }];
    if (this.st === 'waiting') out.push(startTimer(this.timer, this.timeoutMs));
    return out;
  }

  timerFired(timer: string): AuthOutput[] {
    if (timer !== this.timer || this.st !== 'waiting') return [];
    this.st = 'failed';
    this.msg = 'no response';
    return [{ type: 'auth-failed', message: this.msg }];
  }
}

export interface PapOptions {
  restartMs?: number;
  /** Authenticate-Requests sent before giving up. */
  maxRequests?: number;
}

export class PapClient implements AuthClient {
  readonly protocol = PROTO.PAP;
  readonly name = 'pap' as const;
  readonly timer = 'auth.restart';
  private st: AuthState = 'idle';
  private msg = '';
  private id = 0;
  private left = 0;
  private readonly restartMs: number;
  private readonly maxRequests: number;

  constructor(
    private readonly creds: AuthCredentials,
    opts: PapOptions = {},
  ) {
    this.restartMs = opts.restartMs ?? 3000;
    this.maxRequests = opts.maxRequests ?? 10;
  }

  get state(): AuthState {
    return this.st;
  }

  get message(): string {
    return this.msg;
  }

  start(): AuthOutput[] {
    this.st = 'waiting';
    this.id = (this.id + 1) & 0xff;
    this.left = this.maxRequests;
    return this.sendRequest();
  }

  stop(): AuthOutput[] {
    return [stopTimer(this.timer)];
  }

  private sendRequest(): AuthOutput[] {
    const user = Buffer.from(this.creds.username, 'utf8').subarray(0, 255);
    const pass = Buffer.from(this.creds.password, 'utf8').subarray(0, 255);
    const data = Buffer.concat([Buffer.from([user.length]), user, Buffer.from([pass.length]), pass]);
    this.left--;
    return [
      { type: 'send', protocol: this.protocol, bytes: encodePacket(PAP.REQUEST, this.id, data) },
      startTimer(this.timer, this.restartMs),
    ];
  }

  receive(bytes: Buffer): AuthOutput[] {
    const p = decode(bytes, 'pap');
    if (!('code' in p)) return [p];
    if (this.st !== 'waiting') return [{ type: 'drop', layer: 'pap', reason: `PAP in state ${this.st}` }];
    if (p.code !== PAP.ACK && p.code !== PAP.NAK)
      return [{ type: 'drop', layer: 'pap', reason: `unexpected PAP code ${p.code}` }];
    if (p.id !== this.id) return [{ type: 'drop', layer: 'pap', reason: 'reply for another Identifier' }];
    // Msg-Length then Message; a peer that gets the length wrong still gets its text shown.
    const len = p.data[0] ?? 0;
    this.msg = printable(p.data.subarray(1, 1 + len));
    if (p.code === PAP.ACK) {
      this.st = 'success';
      return [stopTimer(this.timer), { type: 'auth-ok', message: this.msg }];
    }
    this.st = 'failed';
    this.msg ||= 'authentication failed';
    return [stopTimer(this.timer), { type: 'auth-failed', message: this.msg }];
  }

  timerFired(timer: string): AuthOutput[] {
    if (timer !== this.timer || this.st !== 'waiting') return [];
    if (this.left > 0) return this.sendRequest();
    this.st = 'failed';
    this.msg = 'no response';
    return [{ type: 'auth-failed', message: this.msg }];
  }
}

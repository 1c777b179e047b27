/**
 * LCP configuration (RFC 1661 section 6) as an `OptionHandler`, plus builders for the
 * LCP-only packets (Echo, Protocol-Reject).
 *
 * Policy, as a client towards an SC such as l2tpns:
 * - MRU: we ask for ours when it differs from the 1500 default; we accept any peer
 *   MRU >= 576 and Nak smaller ones with 576.
 * - Magic-Number: random from the injected source; a peer magic equal to ours is
 *   Nak-ed with a fresh value (RFC 1661 6.4) and, once it has happened
 *   `maxLoopback` times in a row, the link is declared looped back.
 * - Authentication-Protocol (the peer authenticating us): CHAP with MD5 or PAP, and
 *   only when we have credentials; another CHAP algorithm or protocol is Nak-ed with
 *   the one we prefer; without credentials the option is Rejected.
 * - ACFC/PFC are Rejected (RFC 5571 5.2.2 allows it), as is every option we do not
 *   implement (l2tpns offers MRRU 17 and Endpoint Discriminator 19).
 */
import type { OptionHandler, RequestVerdict } from './automaton';
import { CODE, type ControlPacket, encodePacket, opt, type PppOption, u16, u32 } from './frame';

export const LCP_OPT = {
  MRU: 1,
  AUTH: 3,
  MAGIC: 5,
  PFC: 7,
  ACFC: 8,
} as const;

export const MIN_PEER_MRU = 576;
export const DEFAULT_MRU = 1500;
export const CHAP_MD5_ALGORITHM = 5;

export type AuthProtocolName = 'chap-md5' | 'pap';
export type RandomBytes = (n: number) => Buffer;

export interface LcpCredentials {
  username: string;
  password: string;
  /** Protocols we agree to authenticate with, in order of preference. Default: CHAP-MD5 then PAP. */
  allow?: AuthProtocolName[];
}

export interface LcpConfig {
  /** What we can receive: the link MTU minus encapsulation (RFC 5571 5.2.1). */
  mru?: number;
  credentials?: LcpCredentials;
  randomBytes: RandomBytes;
  /** Consecutive Configure-Requests carrying our own magic before giving up as looped back. */
  maxLoopback?: number;
}

export interface LcpNegotiated {
  /** MRU the peer Ack-ed for us (what it may send us). */
  ourMru: number;
  /** MRU the peer asked for (the most we may send it). */
  peerMru: number;
  ourMagic: number;
  peerMagic: number;
  /** How the peer wants us to authenticate; null when it did not ask. */
  auth: AuthProtocolName | null;
}

const AUTH_PROTO: Record<AuthProtocolName, number> = { 'chap-md5': 0xc223, pap: 0xc023 };

export class LcpHandler implements OptionHandler {
  readonly extraCodes = {
    rxr: [CODE.ECHO_REQ, CODE.ECHO_REPLY, CODE.DISCARD_REQ] as readonly number[],
    protocolReject: true,
  };
  private readonly mru: number;
  private readonly allow: AuthProtocolName[];
  private readonly maxLoopback: number;
  private wantMru: number | null = null;
  private magic = 0;
  private sendMagic = true;
  private loopCount = 0;
  private peer = { mru: DEFAULT_MRU, magic: 0, auth: null as AuthProtocolName | null };
  private ours = { mru: DEFAULT_MRU, magic: 0 };
  private loopedBack = false;

  constructor(private readonly cfg: LcpConfig) {
    this.mru = Math.max(MIN_PEER_MRU, Math.min(0xffff, Math.floor(cfg.mru ?? DEFAULT_MRU)));
    this.allow = cfg.credentials ? (cfg.credentials.allow ?? ['chap-md5', 'pap']) : [];
    this.maxLoopback = cfg.maxLoopback ?? 5;
    this.reset();
  }

  get negotiated(): LcpNegotiated {
    return {
      ourMru: this.ours.mru,
      peerMru: this.peer.mru,
      ourMagic: this.ours.magic,
      peerMagic: this.peer.magic,
      auth: this.peer.auth,
    };
  }

  /** True once the loop detector tripped (the automaton closes with reason 'looped-back'). */
  get looped(): boolean {
    return this.loopedBack;
  }

  reset(): void {
    this.wantMru = this.mru !== DEFAULT_MRU ? this.mru : null;
    this.sendMagic = true;
    this.magic = this.newMagic();
    this.ours = { mru: DEFAULT_MRU, magic: 0 };
  }

  buildRequest(): PppOption[] {
    const opts: PppOption[] = [];
    if (this.wantMru !== null) opts.push(opt(LCP_OPT.MRU, u16(this.wantMru)));
    if (this.sendMagic) opts.push(opt(LCP_OPT.MAGIC, u32(this.magic)));
    return opts;
  }

  judgeRequest(opts: PppOption[]): RequestVerdict {
    const v: RequestVerdict = { nak: [], reject: [] };
    for (const o of opts) {
      switch (o.type) {
        case LCP_OPT.MRU: {
          if (o.data.length !== 2) v.reject.push(o);
          else if (o.data.readUInt16BE(0) < MIN_PEER_MRU) v.nak.push(opt(LCP_OPT.MRU, u16(MIN_PEER_MRU)));
          break;
        }
        case LCP_OPT.AUTH:
          this.judgeAuth(o, v);
          break;
        case LCP_OPT.MAGIC: {
          if (o.data.length !== 4) {
            v.reject.push(o);
            break;
          }
          const m = o.data.readUInt32BE(0);
          if (m === 0) {
            // RFC 1661 6.4: a zero magic is illegal and must be Nak-ed.
            v.nak.push(opt(LCP_OPT.MAGIC, u32(this.newMagic())));
          } else if (this.sendMagic && m === this.magic) {
            this.loopCount++;
            if (this.loopCount >= this.maxLoopback) {
              this.loopedBack = true;
              return { nak: [], reject: [], fatal: 'looped-back' };
            }
            // Possibly looped back, possibly a coincidence: both sides pick again.
            this.magic = this.newMagic();
            v.nak.push(opt(LCP_OPT.MAGIC, u32(this.newMagic())));
          } else {
            this.loopCount = 0;
          }
          break;
        }
        default:
          // PFC, ACFC, MRRU (17), Endpoint Discriminator (19) and anything else we do not implement.
          v.reject.push(o);
      }
    }
    return v;
  }

  private judgeAuth(o: PppOption, v: RequestVerdict): void {
    if (this.allow.length === 0 || o.data.length < 2) {
      v.reject.push(o);
      return;
    }
    const proto = o.data.readUInt16BE(0);
    const asked: AuthProtocolName | null =
      proto === AUTH_PROTO['chap-md5'] && o.data.length === 3 && o.data[2] === CHAP_MD5_ALGORITHM
        ? 'chap-md5'
        : proto === AUTH_PROTO.pap && o.data.length === 2
          ? 'pap'
          : null;
    if (asked && this.allow.includes(asked)) return;
    v.nak.push(authOption(this.allow[0]!));
  }

  peerAcked(opts: PppOption[]): void {
    this.peer = { mru: DEFAULT_MRU, magic: 0, auth: null };
    for (const o of opts) {
      if (o.type === LCP_OPT.MRU) this.peer.mru = o.data.readUInt16BE(0);
      else if (o.type === LCP_OPT.MAGIC) this.peer.magic = o.data.readUInt32BE(0);
      else if (o.type === LCP_OPT.AUTH) this.peer.auth = o.data.readUInt16BE(0) === AUTH_PROTO.pap ? 'pap' : 'chap-md5';
    }
  }

  onAck(opts: PppOption[]): string | undefined {
    this.ours = { mru: DEFAULT_MRU, magic: 0 };
    for (const o of opts) {
      if (o.type === LCP_OPT.MRU) this.ours.mru = o.data.readUInt16BE(0);
      else if (o.type === LCP_OPT.MAGIC) this.ours.magic = o.data.readUInt32BE(0);
    }
    return undefined;
  }

  onNak(opts: PppOption[]): string | undefined {
    for (const o of opts) {
      if (o.type === LCP_OPT.MRU && o.data.length === 2) {
        // Take the peer's figure, but never above what we can receive nor below the minimum.
        this.wantMru = Math.max(MIN_PEER_MRU, Math.min(this.mru, o.data.readUInt16BE(0)));
      } else if (o.type === LCP_OPT.MAGIC) {
        // RFC 1661 6.4: on a Nak of the magic, choose a new random one.
        this.magic = this.newMagic();
      }
    }
    return undefined;
  }

  onReject(opts: PppOption[]): string | undefined {
    for (const o of opts) {
      if (o.type === LCP_OPT.MRU) this.wantMru = null;
      else if (o.type === LCP_OPT.MAGIC) this.sendMagic = false;
    }
    return undefined;
  }

  echoReply(pkt: ControlPacket): Buffer | undefined {
    if (pkt.code !== CODE.ECHO_REQ) return undefined;
    // Our magic replaces the peer's; the rest of the data is returned as received.
    const rest = pkt.data.length > 4 ? pkt.data.subarray(4) : Buffer.alloc(0);
    const limit = Math.max(0, this.peer.mru - 8);
    return encodePacket(CODE.ECHO_REPLY, pkt.id, Buffer.concat([u32(this.ours.magic), rest.subarray(0, limit)]));
  }

  private newMagic(): number {
    for (let i = 0; i < 8; i++) {
      const m = this.cfg.randomBytes(4).readUInt32BE(0);
      if (m !== 0 && m !== this.magic) return m;
    }
    // A broken random source must not make us send the illegal zero magic.
    return (this.magic + 0x9e3779b9) >>> 0 || 1;
  }
}

export function authOption(p: AuthProtocolName): PppOption {
  return p === 'chap-md5' ? opt(LCP_OPT.AUTH, [0xc2, 0x23, CHAP_MD5_ALGORITHM]) : opt(LCP_OPT.AUTH, [0xc0, 0x23]);
}

export function buildEchoRequest(id: number, magic: number, extra: Uint8Array = Buffer.alloc(0)): Buffer {
  return encodePacket(CODE.ECHO_REQ, id, Buffer.concat([u32(magic), extra]));
}

/**
 * LCP Protocol-Reject for a frame of an unsupported protocol (RFC 1661 5.7): the
 * rejected protocol and as much of its payload as fits the peer's MRU.
 */
export function buildProtocolReject(id: number, protocol: number, payload: Uint8Array, peerMru = DEFAULT_MRU): Buffer {
  const room = Math.max(0, peerMru - 4 - 2);
  return encodePacket(CODE.PROTO_REJ, id, Buffer.concat([u16(protocol), payload.subarray(0, room)]));
}

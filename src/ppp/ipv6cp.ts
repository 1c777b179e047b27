/**
 * IPV6CP configuration (RFC 5072) as an `OptionHandler`.
 *
 * We offer an Interface-Identifier (configured, or random from the injected source)
 * and take the one the SC assigns by Nak (RFC 5571 8.1.1; l2tpns assigns
 * `<IPv4 address>:0:0`). The peer's identifier is judged per RFC 5072 4.1: a zero
 * one or one equal to ours is Nak-ed with a different suggestion, and on a clash we
 * also pick a new one for ourselves unless ours was configured.
 * IPv6-Compression-Protocol and anything else is Rejected.
 */
import type { OptionHandler, RequestVerdict } from './automaton';
import { opt, type PppOption } from './frame';
import type { RandomBytes } from './lcp';

export const IPV6CP_OPT = { IID: 1, COMPRESSION: 2 } as const;

export interface Ipv6cpConfig {
  /** A fixed interface identifier (8 bytes); random when absent. */
  iid?: Buffer;
  randomBytes: RandomBytes;
}

export interface Ipv6cpResult {
  ourIid: Buffer;
  peerIid: Buffer;
}

const ZERO = Buffer.alloc(8);

export function formatIid(iid: Buffer): string {
  const g: string[] = [];
  for (let i = 0; i < 8; i += 2) g.push(iid.readUInt16BE(i).toString(16));
  return g.join(':');
}

export class Ipv6cpHandler implements OptionHandler {
  private ourIid: Buffer;
  private sendIid = true;
  private peerIid: Buffer = Buffer.from(ZERO);
  private ackedIid: Buffer | null = null;

  constructor(private readonly cfg: Ipv6cpConfig) {
    if (cfg.iid && (cfg.iid.length !== 8 || cfg.iid.equals(ZERO)))
      throw new RangeError('interface identifier must be 8 non-zero bytes');
    this.ourIid = cfg.iid ? Buffer.from(cfg.iid) : this.randomIid();
  }

  /** Valid once the automaton reached Opened. */
  get result(): Ipv6cpResult {
    return { ourIid: Buffer.from(this.ackedIid ?? this.ourIid), peerIid: Buffer.from(this.peerIid) };
  }

  reset(): void {
    // Keep an identifier the SC assigned earlier: asking for it again is what RFC 5072 4.1 suggests.
    this.sendIid = true;
    this.ackedIid = null;
  }

  buildRequest(): PppOption[] {
    return this.sendIid ? [opt(IPV6CP_OPT.IID, this.ourIid)] : [];
  }

  judgeRequest(opts: PppOption[]): RequestVerdict {
    const v: RequestVerdict = { nak: [], reject: [] };
    for (const o of opts) {
      if (o.type !== IPV6CP_OPT.IID || o.data.length !== 8) {
        v.reject.push(o);
        continue;
      }
      if (o.data.equals(ZERO)) {
        v.nak.push(opt(IPV6CP_OPT.IID, this.randomIid(this.ourIid)));
      } else if (o.data.equals(this.ourIid)) {
        if (!this.cfg.iid) this.ourIid = this.randomIid(o.data);
        v.nak.push(opt(IPV6CP_OPT.IID, this.randomIid(this.ourIid, o.data)));
      }
    }
    return v;
  }

  peerAcked(opts: PppOption[]): void {
    const o = opts.find((x) => x.type === IPV6CP_OPT.IID);
    this.peerIid = o ? Buffer.from(o.data) : Buffer.from(ZERO);
  }

  onAck(opts: PppOption[]): string | undefined {
    const o = opts.find((x) => x.type === IPV6CP_OPT.IID);
    this.ackedIid = o ? Buffer.from(o.data) : Buffer.from(this.ourIid);
    return undefined;
  }

  onNak(opts: PppOption[]): string | undefined {
    const o = opts.find((x) => x.type === IPV6CP_OPT.IID);
    if (!o) return undefined;
    // Take the SC's assignment unless it is unusable (zero, or the peer's own identifier).
    if (o.data.length === 8 && !o.data.equals(ZERO) && !o.data.equals(this.peerIid)) this.ourIid = Buffer.from(o.data);
    else this.ourIid = this.randomIid(this.peerIid);
    return undefined;
  }

  onReject(opts: PppOption[]): string | undefined {
    // The peer will not negotiate identifiers: we keep using ours unnegotiated (RFC 5072 4.1).
    if (opts.some((o) => o.type === IPV6CP_OPT.IID)) this.sendIid = false;
    return undefined;
  }

  private randomIid(...avoid: Buffer[]): Buffer {
    for (let i = 0; i < 16; i++) {
      const b = Buffer.from(this.cfg.randomBytes(8).subarray(0, 8));
      if (b.length !== 8) break;
      b[0] = b[0]! & ~0x02; // universal/local bit clear: not a globally unique identifier
      if (!b.equals(ZERO) && !avoid.some((a) => a.equals(b))) return b;
    }
    // Only reachable with a broken random source; still never zero nor a clash.
    const b = Buffer.from([0, 0, 0, 0, 0, 0, 0, 1]);
    while (avoid.some((a) => a.equals(b))) b[7] = (b[7]! + 1) & 0xff || 1;
    return b;
  }
}

/**
 * IPCP configuration (RFC 1332) with the DNS extensions of RFC 1877, as an
 * `OptionHandler`.
 *
 * We ask for 0.0.0.0 (or a configured address) and take what the SC Naks back; the
 * same for Primary DNS (129) and Secondary DNS (131), which we stop asking for once
 * Rejected. The peer's own IP-Address is accepted as-is (l2tpns: 198.51.100.1); a
 * peer asking us for an address (0.0.0.0) is Rejected since we have none to give.
 * IP-Compression-Protocol (2), the old IP-Addresses (1) and everything else are
 * Rejected.
 */
import type { OptionHandler, RequestVerdict } from './automaton';
import { opt, type PppOption } from './frame';

export const IPCP_OPT = { ADDRESSES: 1, COMPRESSION: 2, ADDRESS: 3, DNS1: 129, DNS2: 131 } as const;

export interface IpcpConfig {
  /** Address to request; default 0.0.0.0 (let the SC assign one). */
  address?: string;
  /** Ask for DNS servers (RFC 1877); default true. */
  requestDns?: boolean;
}

export interface IpcpResult {
  address: string;
  peer: string | null;
  dns: string[];
}

const ZERO = '0.0.0.0';

export function ipv4ToBuffer(a: string): Buffer {
  const parts = a.split('.');
  const nums = parts.map((p) => (/^\d{1,3}$/.test(p) ? Number(p) : Number.NaN));
  if (nums.length !== 4 || nums.some((n) => !(n >= 0 && n <= 255))) throw new RangeError(`not an IPv4 address: ${a}`);
  return Buffer.from(nums);
}

export function bufferToIpv4(b: Uint8Array): string {
  return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
}

export class IpcpHandler implements OptionHandler {
  private want = new Map<number, string>();
  private acked: IpcpResult = { address: ZERO, peer: null, dns: [] };
  private peer: string | null = null;
  private readonly requested: string;

  constructor(private readonly cfg: IpcpConfig = {}) {
    this.requested = bufferToIpv4(ipv4ToBuffer(cfg.address ?? ZERO));
    this.reset();
  }

  get result(): IpcpResult {
    return { ...this.acked, peer: this.peer, dns: [...this.acked.dns] };
  }

  reset(): void {
    this.want = new Map([[IPCP_OPT.ADDRESS, this.requested]]);
    if (this.cfg.requestDns !== false) {
      this.want.set(IPCP_OPT.DNS1, ZERO);
      this.want.set(IPCP_OPT.DNS2, ZERO);
    }
    this.acked = { address: ZERO, peer: null, dns: [] };
  }

  buildRequest(): PppOption[] {
    return [...this.want].map(([type, a]) => opt(type, ipv4ToBuffer(a)));
  }

  judgeRequest(opts: PppOption[]): RequestVerdict {
    const v: RequestVerdict = { nak: [], reject: [] };
    for (const o of opts) {
      const ok = o.type === IPCP_OPT.ADDRESS && o.data.length === 4 && bufferToIpv4(o.data) !== ZERO;
      if (!ok) v.reject.push(o);
    }
    return v;
  }

  peerAcked(opts: PppOption[]): void {
    const o = opts.find((x) => x.type === IPCP_OPT.ADDRESS);
    this.peer = o ? bufferToIpv4(o.data) : null;
  }

  onAck(opts: PppOption[]): string | undefined {
    // A configured address whose option the peer Rejected is used unnegotiated.
    const r: IpcpResult = { address: this.want.has(IPCP_OPT.ADDRESS) ? ZERO : this.requested, peer: null, dns: [] };
    const dns: Record<number, string> = {};
    for (const o of opts) {
      if (o.data.length !== 4) continue;
      if (o.type === IPCP_OPT.ADDRESS) r.address = bufferToIpv4(o.data);
      else if (o.type === IPCP_OPT.DNS1 || o.type === IPCP_OPT.DNS2) dns[o.type] = bufferToIpv4(o.data);
    }
    r.dns = [dns[IPCP_OPT.DNS1], dns[IPCP_OPT.DNS2]].filter((d): d is string => d !== undefined && d !== ZERO);
    if (r.address === ZERO) return 'ipcp: peer Acked 0.0.0.0, no IPv4 address assigned';
    this.acked = r;
    return undefined;
  }

  onNak(opts: PppOption[]): string | undefined {
    for (const o of opts) {
      if (this.want.has(o.type) && o.data.length === 4) this.want.set(o.type, bufferToIpv4(o.data));
    }
    return undefined;
  }

  onReject(opts: PppOption[]): string | undefined {
    for (const o of opts) {
      if (o.type === IPCP_OPT.ADDRESS && this.want.get(IPCP_OPT.ADDRESS) === ZERO) {
        return 'ipcp: peer rejected the IP-Address option, no IPv4 address can be obtained';
      }
      this.want.delete(o.type);
    }
    return undefined;
  }
}

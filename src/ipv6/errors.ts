/**
 * The one exception type the IPv6 decoders (packet, ND, DHCPv6, DNS names, DUID,
 * address text) may throw. Callers that feed hostile bytes catch only this.
 */
export type Ipv6DecodeReason =
  | 'truncated' // fewer bytes than a header or length field promises
  | 'checksum' // ICMPv6/UDP pseudo-header checksum mismatch
  | 'malformed' // a field holds a value the format forbids
  | 'invalid' // well-formed, but fails a protocol validity check (e.g. RFC 4861 6.1.2)
  | 'bounds' // more items than we are willing to hold
  | 'unsupported'; // not a protocol this codec handles

export class Ipv6DecodeError extends Error {
  override readonly name = 'Ipv6DecodeError';
  constructor(
    readonly reason: Ipv6DecodeReason,
    detail: string,
  ) {
    super(`${reason}: ${detail}`);
  }
}

export function fail(reason: Ipv6DecodeReason, detail: string): never {
  throw new Ipv6DecodeError(reason, detail);
}

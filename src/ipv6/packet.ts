import { formatAddress, parseAddress } from './address';
import { fail } from './errors';

export * from './address';
export { Ipv6DecodeError, type Ipv6DecodeReason } from './errors';

/**
 * IPv6 packets as carried in PPP protocol 0x0057 frames: the fixed header, the
 * extension headers we can skip, and ICMPv6/UDP with pseudo-header checksums.
 */

export const IPV6_HEADER_LENGTH = 40;
export const NEXT_HEADER_UDP = 17;
export const NEXT_HEADER_ICMPV6 = 58;
const HOP_BY_HOP = 0;
const ROUTING = 43;
const DEST_OPTIONS = 60;
/** More chained extension headers than this is treated as hostile. */
const MAX_EXTENSION_HEADERS = 8;

export interface Ipv6Header {
  trafficClass: number;
  flowLabel: number;
  /** Upper-layer protocol after any skipped extension headers. */
  nextHeader: number;
  hopLimit: number;
  src: string;
  dst: string;
}

export interface Ipv6Packet extends Ipv6Header {
  /** Upper-layer payload (after extension headers), trimmed to the payload length. */
  payload: Uint8Array;
}

export interface BuildIpv6 {
  src: string;
  dst: string;
  nextHeader: number;
  hopLimit: number;
  payload: Uint8Array;
  trafficClass?: number;
  flowLabel?: number;
}

export function buildIpv6(p: BuildIpv6): Uint8Array {
  if (p.payload.length > 0xffff) throw new RangeError('IPv6 payload larger than 65535 bytes');
  const out = new Uint8Array(IPV6_HEADER_LENGTH + p.payload.length);
  const dv = new DataView(out.buffer);
  const tc = (p.trafficClass ?? 0) & 0xff;
  const fl = (p.flowLabel ?? 0) & 0xfffff;
  dv.setUint32(0, ((6 << 28) | (tc << 20) | fl) >>> 0);
  dv.setUint16(4, p.payload.length);
  out[6] = p.nextHeader;
  out[7] = p.hopLimit;
  out.set(parseAddress(p.src), 8);
  out.set(parseAddress(p.dst), 24);
  out.set(p.payload, IPV6_HEADER_LENGTH);
  return out;
}

/**
 * Parses the fixed header and walks Hop-by-Hop, Routing and Destination Options
 * headers (e.g. the Router Alert before MLD). Bytes past the payload length are
 * ignored, as link-layer padding.
 */
export function parseIpv6(bytes: Uint8Array): Ipv6Packet {
  if (bytes.length < IPV6_HEADER_LENGTH) fail('truncated', 'IPv6 header');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const first = dv.getUint32(0);
  if (first >>> 28 !== 6) fail('unsupported', 'not IP version 6');
  const payloadLength = dv.getUint16(4);
  if (IPV6_HEADER_LENGTH + payloadLength > bytes.length) fail('truncated', 'IPv6 payload');
  let nextHeader = bytes[6]!;
  let offset = IPV6_HEADER_LENGTH;
  const end = IPV6_HEADER_LENGTH + payloadLength;
  for (let n = 0; nextHeader === HOP_BY_HOP || nextHeader === ROUTING || nextHeader === DEST_OPTIONS; n++) {
    if (n >= MAX_EXTENSION_HEADERS) fail('bounds', 'too many extension headers');
    if (nextHeader === HOP_BY_HOP && n > 0) fail('malformed', 'Hop-by-Hop header not first');
    if (offset + 2 > end) fail('truncated', 'extension header');
    const len = (bytes[offset + 1]! + 1) * 8;
    if (offset + len > end) fail('truncated', 'extension header body');
    nextHeader = bytes[offset]!;
    offset += len;
  }
  return {
    trafficClass: (first >>> 20) & 0xff,
    flowLabel: first & 0xfffff,
    nextHeader,
    hopLimit: bytes[7]!,
    src: formatAddress(bytes.subarray(8, 24)),
    dst: formatAddress(bytes.subarray(24, 40)),
    payload: bytes.subarray(offset, end),
  };
}

/** RFC 8200 8.1 upper-layer checksum over the pseudo-header and `data`. */
export function pseudoHeaderChecksum(src: string, dst: string, nextHeader: number, data: Uint8Array): number {
  let sum = 0;
  const add16 = (b: Uint8Array) => {
    for (let i = 0; i + 1 < b.length; i += 2) sum += (b[i]! << 8) | b[i + 1]!;
    if (b.length % 2 === 1) sum += b[b.length - 1]! << 8;
  };
  add16(parseAddress(src));
  add16(parseAddress(dst));
  const len = data.length;
  sum += Math.floor(len / 0x10000) + (len & 0xffff) + nextHeader;
  add16(data);
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
}

// ---------------------------------------------------------------- ICMPv6

export interface Icmpv6Message {
  type: number;
  code: number;
  /** Everything after the 4-byte type/code/checksum header. */
  body: Uint8Array;
}

export interface Icmpv6Packet extends Icmpv6Message {
  ip: Ipv6Header;
}

/** ICMPv6 message bytes with a zero checksum, as a raw ICMPv6 socket wants them. */
export function encodeIcmpv6(m: Icmpv6Message): Uint8Array {
  const out = new Uint8Array(4 + m.body.length);
  out[0] = m.type;
  out[1] = m.code;
  out.set(m.body, 4);
  return out;
}

export function buildIcmpv6(src: string, dst: string, hopLimit: number, m: Icmpv6Message): Uint8Array {
  const msg = encodeIcmpv6(m);
  const ck = pseudoHeaderChecksum(src, dst, NEXT_HEADER_ICMPV6, msg);
  msg[2] = ck >> 8;
  msg[3] = ck & 0xff;
  return buildIpv6({ src, dst, nextHeader: NEXT_HEADER_ICMPV6, hopLimit, payload: msg });
}

/** Decodes ICMPv6 bytes without checking the checksum (the kernel did, on a raw socket). */
export function decodeIcmpv6(msg: Uint8Array): Icmpv6Message {
  if (msg.length < 4) fail('truncated', 'ICMPv6 header');
  return { type: msg[0]!, code: msg[1]!, body: msg.subarray(4) };
}

export function parseIcmpv6(packet: Uint8Array | Ipv6Packet): Icmpv6Packet {
  const ip = packet instanceof Uint8Array ? parseIpv6(packet) : packet;
  if (ip.nextHeader !== NEXT_HEADER_ICMPV6) fail('unsupported', 'not ICMPv6');
  const m = decodeIcmpv6(ip.payload);
  if (pseudoHeaderChecksum(ip.src, ip.dst, NEXT_HEADER_ICMPV6, ip.payload) !== 0) fail('checksum', 'ICMPv6 checksum');
  const { payload: _payload, ...header } = ip;
  return { ip: header, ...m };
}

// ---------------------------------------------------------------- UDP

export interface UdpDatagram {
  ip: Ipv6Header;
  srcPort: number;
  dstPort: number;
  payload: Uint8Array;
}

export interface BuildUdp6 {
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  hopLimit: number;
  payload: Uint8Array;
}

export function buildUdp6(p: BuildUdp6): Uint8Array {
  const len = 8 + p.payload.length;
  if (len > 0xffff) throw new RangeError('UDP datagram larger than 65535 bytes');
  const seg = new Uint8Array(len);
  const dv = new DataView(seg.buffer);
  dv.setUint16(0, p.srcPort);
  dv.setUint16(2, p.dstPort);
  dv.setUint16(4, len);
  seg.set(p.payload, 8);
  // RFC 8200 8.1: a computed zero is sent as 0xffff, since zero means "no checksum".
  const ck = pseudoHeaderChecksum(p.src, p.dst, NEXT_HEADER_UDP, seg) || 0xffff;
  dv.setUint16(6, ck);
  return buildIpv6({ src: p.src, dst: p.dst, nextHeader: NEXT_HEADER_UDP, hopLimit: p.hopLimit, payload: seg });
}

export function parseUdp6(packet: Uint8Array | Ipv6Packet): UdpDatagram {
  const ip = packet instanceof Uint8Array ? parseIpv6(packet) : packet;
  if (ip.nextHeader !== NEXT_HEADER_UDP) fail('unsupported', 'not UDP');
  const seg = ip.payload;
  if (seg.length < 8) fail('truncated', 'UDP header');
  const dv = new DataView(seg.buffer, seg.byteOffset, seg.byteLength);
  const len = dv.getUint16(4);
  if (len < 8 || len > seg.length) fail('truncated', 'UDP length');
  const body = seg.subarray(0, len);
  // Zero is not allowed over IPv6 (RFC 8200 8.1), so it fails like a wrong sum.
  if (dv.getUint16(6) === 0 || pseudoHeaderChecksum(ip.src, ip.dst, NEXT_HEADER_UDP, body) !== 0) {
    fail('checksum', 'UDP checksum');
  }
  const { payload: _payload, ...header } = ip;
  return { ip: header, srcPort: dv.getUint16(0), dstPort: dv.getUint16(2), payload: body.subarray(8) };
}

// ---------------------------------------------------------------- dispatch

export type ControlKind = 'rs' | 'ra' | 'ns' | 'na' | 'redirect' | 'dhcpv6-client' | 'other';

/**
 * Cheap classification for the dataplane: which packets arriving on the PPP link
 * belong to the agent's IPv6 cores. Never throws; undecodable packets are 'other'.
 */
export function classifyControl(bytes: Uint8Array): ControlKind {
  let ip: Ipv6Packet;
  try {
    ip = parseIpv6(bytes);
  } catch {
    return 'other';
  }
  if (ip.nextHeader === NEXT_HEADER_ICMPV6 && ip.payload.length >= 4) {
    const kinds: Record<number, ControlKind> = { 133: 'rs', 134: 'ra', 135: 'ns', 136: 'na', 137: 'redirect' };
    return kinds[ip.payload[0]!] ?? 'other';
  }
  if (ip.nextHeader === NEXT_HEADER_UDP && ip.payload.length >= 8) {
    const dstPort = (ip.payload[2]! << 8) | ip.payload[3]!;
    if (dstPort === 546) return 'dhcpv6-client';
  }
  return 'other';
}

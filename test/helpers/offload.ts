/**
 * Hand-built GSO super-packets and an independent checksum for the offload tests
 * (src/native/offload.h). Everything here is plain TypeScript written from the RFCs,
 * so the C code is checked against a second implementation, not against itself.
 */

export const VNET_HDR_LEN = 10;
export const GSO_NONE = 0;
export const GSO_TCPV4 = 1;
export const GSO_UDP = 3;
export const GSO_TCPV6 = 4;
export const GSO_UDP_L4 = 5;
export const F_NEEDS_CSUM = 1;

export interface Vnet {
  flags: number;
  gsoType: number;
  hdrLen: number;
  gsoSize: number;
  csumStart: number;
  csumOffset: number;
}

/** struct virtio_net_hdr in host (little-endian here) byte order, as TUN uses it. */
export function encodeVnet(v: Vnet): Buffer {
  const b = Buffer.alloc(VNET_HDR_LEN);
  b[0] = v.flags;
  b[1] = v.gsoType;
  b.writeUInt16LE(v.hdrLen, 2);
  b.writeUInt16LE(v.gsoSize, 4);
  b.writeUInt16LE(v.csumStart, 6);
  b.writeUInt16LE(v.csumOffset, 8);
  return b;
}

export function decodeVnet(b: Uint8Array): Vnet {
  const v = Buffer.from(b.buffer, b.byteOffset, VNET_HDR_LEN);
  return { flags: v[0]!, gsoType: v[1]!, hdrLen: v.readUInt16LE(2), gsoSize: v.readUInt16LE(4), csumStart: v.readUInt16LE(6), csumOffset: v.readUInt16LE(8) };
}

/** RFC 1071 sum of 16-bit big-endian words (odd tail padded), not folded. */
export function sum16(b: Uint8Array, from = 0, to = b.length): number {
  let s = 0;
  for (let i = from; i < to; i += 2) s += (b[i]! << 8) | (i + 1 < to ? b[i + 1]! : 0);
  return s;
}

export function fold(s: number): number {
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return s;
}

/** The pseudo-header sum of the transport segment of an IPv4/IPv6 packet. */
export function pseudoSum(pkt: Uint8Array, proto: number, l4len: number): number {
  const v6 = pkt[0]! >> 4 === 6;
  return (v6 ? sum16(pkt, 8, 40) : sum16(pkt, 12, 20)) + proto + l4len;
}

/** Whether the TCP/UDP checksum of a packet (IP header at 0, no extension headers) verifies. */
export function l4ChecksumOk(pkt: Uint8Array): boolean {
  const v6 = pkt[0]! >> 4 === 6;
  const ihl = v6 ? 40 : (pkt[0]! & 0x0f) * 4;
  const proto = v6 ? pkt[6]! : pkt[9]!;
  return fold(pseudoSum(pkt, proto, pkt.length - ihl) + sum16(pkt, ihl)) === 0xffff;
}

export function ipv4HeaderOk(pkt: Uint8Array): boolean {
  return fold(sum16(pkt, 0, (pkt[0]! & 0x0f) * 4)) === 0xffff;
}

export interface SegmentSpec {
  version: 4 | 6;
  proto?: 6 | 17;
  seq?: number;
  ack?: number;
  flags?: number;
  /** TCP options (padded with NOPs). */
  options?: number[];
  id?: number;
  payload: Uint8Array;
  srcPort?: number;
  dstPort?: number;
  /** Last address byte of the source (flows differ by it). */
  src?: number;
  tos?: number;
}

export function ipHeaderLen(version: 4 | 6): number {
  return version === 4 ? 20 : 40;
}

/**
 * An IPv4/IPv6 TCP or UDP packet. `checksum`: 'full' (valid), 'partial' (the field holds
 * the pseudo-header sum, as the kernel hands a TUN_F_CSUM reader) or 'zero'.
 */
export function ipPacket(s: SegmentSpec, checksum: 'full' | 'partial' | 'zero' = 'full'): Buffer {
  const proto = s.proto ?? 6;
  const opts = Buffer.from(s.options ?? []);
  const padded = Buffer.concat([opts, Buffer.alloc((4 - (opts.length % 4)) % 4, 1)]);
  const l4h = proto === 6 ? 20 + padded.length : 8;
  const l4 = Buffer.alloc(l4h + s.payload.length);
  l4.writeUInt16BE(s.srcPort ?? 40000, 0);
  l4.writeUInt16BE(s.dstPort ?? 5201, 2);
  if (proto === 6) {
    l4.writeUInt32BE((s.seq ?? 1000) >>> 0, 4);
    l4.writeUInt32BE((s.ack ?? 7777) >>> 0, 8);
    l4[12] = (l4h / 4) << 4;
    l4[13] = s.flags ?? 0x10;
    l4.writeUInt16BE(501, 14);
    padded.copy(l4, 20);
  } else {
    l4.writeUInt16BE(l4.length, 4);
  }
  Buffer.from(s.payload).copy(l4, l4h);
  const ip = Buffer.alloc(ipHeaderLen(s.version));
  if (s.version === 4) {
    ip[0] = 0x45;
    ip[1] = s.tos ?? 0;
    ip.writeUInt16BE(20 + l4.length, 2);
    ip.writeUInt16BE(s.id ?? 0x1234, 4);
    ip[6] = 0x40; // DF
    ip[8] = 64;
    ip[9] = proto;
    Buffer.from([192, 0, 2, s.src ?? 1, 198, 51, 100, 7]).copy(ip, 12);
    ip.writeUInt16BE(~fold(sum16(ip)) & 0xffff, 10);
  } else {
    ip[0] = 0x60 | ((s.tos ?? 0) >> 4);
    ip[1] = ((s.tos ?? 0) & 0x0f) << 4;
    ip.writeUInt16BE(l4.length, 4);
    ip[6] = proto;
    ip[7] = 64;
    Buffer.from([0x20, 0x01, 0x0d, 0xb8]).copy(ip, 8);
    ip[23] = s.src ?? 1;
    Buffer.from([0x20, 0x01, 0x0d, 0xb8]).copy(ip, 24);
    ip[39] = 7;
  }
  const pkt = Buffer.concat([ip, l4]);
  const at = ip.length + (proto === 6 ? 16 : 6);
  const pseudo = pseudoSum(pkt, proto, l4.length);
  if (checksum === 'partial') pkt.writeUInt16BE(fold(pseudo), at);
  else if (checksum === 'full') {
    let c = ~fold(pseudo + sum16(pkt, ip.length)) & 0xffff;
    if (c === 0 && proto === 17) c = 0xffff;
    pkt.writeUInt16BE(c, at);
  }
  return pkt;
}

/** A super-packet as a TSO/USO TUN read returns it: virtio-net header + packet with a partial checksum. */
export function superPacket(s: SegmentSpec, mss: number): Buffer {
  const pkt = ipPacket(s, 'partial');
  const proto = s.proto ?? 6;
  const ihl = ipHeaderLen(s.version);
  const l4h = proto === 6 ? (pkt[ihl + 12]! >> 4) * 4 : 8;
  const gsoType = proto === 17 ? GSO_UDP_L4 : s.version === 4 ? GSO_TCPV4 : GSO_TCPV6;
  const vnet = encodeVnet({ flags: F_NEEDS_CSUM, gsoType, hdrLen: ihl + l4h, gsoSize: mss, csumStart: ihl, csumOffset: proto === 6 ? 16 : 6 });
  return Buffer.concat([vnet, pkt]);
}

/** Header length (IP + TCP/UDP) of a packet. */
export function headerLen(pkt: Uint8Array): number {
  const v6 = pkt[0]! >> 4 === 6;
  const ihl = v6 ? 40 : (pkt[0]! & 0x0f) * 4;
  const proto = v6 ? pkt[6]! : pkt[9]!;
  return ihl + (proto === 6 ? (pkt[ihl + 12]! >> 4) * 4 : 8);
}

export function payloadOf(pkt: Uint8Array): Buffer {
  return Buffer.from(pkt.subarray(headerLen(pkt)));
}

export function tcpSeq(pkt: Uint8Array): number {
  const ihl = pkt[0]! >> 4 === 6 ? 40 : (pkt[0]! & 0x0f) * 4;
  return Buffer.from(pkt.buffer, pkt.byteOffset, pkt.length).readUInt32BE(ihl + 4);
}

export function tcpFlags(pkt: Uint8Array): number {
  const ihl = pkt[0]! >> 4 === 6 ? 40 : (pkt[0]! & 0x0f) * 4;
  return pkt[ihl + 13]!;
}

/** Deterministic filler bytes. */
export function bytes(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

/**
 * The bytes the data path adds and removes: an L2TPv2 data header (RFC 2661 3.1) and
 * the PPP Address/Control/Protocol fields (RFC 1661 2, RFC 2661 3.0 keeps FF 03).
 *
 * On the hot path nothing is parsed into objects: a datagram is checked in place and
 * its IP packet is located by offset; outgoing headers come from a template built
 * once per session.
 */

export const PPP_IPV4 = 0x0021;
export const PPP_IPV6 = 0x0057;

/** flags(2) tunnel(2) session(2) FF 03 protocol(2): no L, S, O or P bit, as l2tpns sends. */
export const DATA_HEADER_LEN = 10;
/** Template index in the buffer from buildHeaderTemplates. */
export const TEMPLATE_IPV4 = 0;
export const TEMPLATE_IPV6 = 1;

const L2TP_FLAG_T = 0x80;
const L2TP_FLAG_L = 0x40;
const L2TP_FLAG_S = 0x08;
const L2TP_FLAG_O = 0x02;

/** Two back-to-back headers, IPv4 then IPv6, for the session the SC knows as tunnelId/sessionId. */
export function buildHeaderTemplates(tunnelId: number, sessionId: number): Buffer {
  const b = Buffer.alloc(2 * DATA_HEADER_LEN);
  for (const [i, proto] of [
    [TEMPLATE_IPV4, PPP_IPV4],
    [TEMPLATE_IPV6, PPP_IPV6],
  ] as const) {
    const at = i * DATA_HEADER_LEN;
    b.writeUInt16BE(0x0002, at);
    b.writeUInt16BE(tunnelId, at + 2);
    b.writeUInt16BE(sessionId, at + 4);
    b[at + 6] = 0xff;
    b[at + 7] = 0x03;
    b.writeUInt16BE(proto, at + 8);
  }
  return b;
}

/**
 * Where a data datagram's IP packet is, written by locateIp into a reused object.
 * `protocol` is the PPP protocol, 0 when the datagram is not fast-path material.
 */
export interface IpLocation {
  protocol: number;
  offset: number;
  length: number;
}

/**
 * Finds the IPv4/IPv6 packet in an L2TP data datagram for our session, in place.
 * Sets loc.protocol to 0 (and leaves the datagram to the protocol cores) for control
 * messages, other tunnels or sessions, sequenced data (whose Ns the L2TP core checks),
 * and every PPP protocol other than IPv4/IPv6.
 */
export function locateIp(buf: Uint8Array, off: number, len: number, tunnelId: number, sessionId: number, loc: IpLocation): void {
  loc.protocol = 0;
  if (len < 6) return;
  const f0 = buf[off]!;
  if (f0 & (L2TP_FLAG_T | L2TP_FLAG_S) || (buf[off + 1]! & 0x0f) !== 2) return;
  let at = off + 2;
  let end = off + len;
  if (f0 & L2TP_FLAG_L) {
    const l = (buf[at]! << 8) | buf[at + 1]!;
    if (l > len) return;
    end = off + l;
    at += 2;
  }
  if (at + 4 > end) return;
  if (((buf[at]! << 8) | buf[at + 1]!) !== tunnelId || ((buf[at + 2]! << 8) | buf[at + 3]!) !== sessionId) return;
  at += 4;
  if (f0 & L2TP_FLAG_O) {
    if (at + 2 > end) return;
    at += 2 + ((buf[at]! << 8) | buf[at + 1]!);
  }
  if (at + 2 <= end && buf[at] === 0xff && buf[at + 1] === 0x03) at += 2;
  if (at >= end) return;
  let protocol: number;
  if (buf[at]! & 1) {
    protocol = buf[at]!; // PFC: one-octet protocol field
    at += 1;
  } else {
    if (at + 2 > end) return;
    protocol = (buf[at]! << 8) | buf[at + 1]!;
    at += 2;
  }
  if (protocol !== PPP_IPV4 && protocol !== PPP_IPV6) return;
  if (at >= end) return;
  loc.protocol = protocol;
  loc.offset = at;
  loc.length = end - at;
}

/**
 * IPv6 packets the agent's own cores consume or watch: ICMPv6 (RA, NS/NA for DAD,
 * and the rest goes through the classifier cheaply enough) and UDP to the DHCPv6
 * client port. Everything a LAN host or application sends is TCP or other UDP.
 * Extension headers are rare on this link; packets with them take the slow path too.
 */
export function ipv6NeedsCores(buf: Uint8Array, off: number, len: number): boolean {
  if (len < 40) return true;
  const nh = buf[off + 6]!;
  if (nh === 6) return false;
  if (nh === 17) return len < 48 || ((buf[off + 42]! << 8) | buf[off + 43]!) === 546;
  return true;
}

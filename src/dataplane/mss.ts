/**
 * TCP MSS clamping (RFC 4459 3.2, RFC 6691): the softwire MTU is below the LAN's, and
 * PMTUD is often broken by filters, so SYNs crossing the softwire in either direction
 * get their MSS option lowered to what fits. The packet is edited in place and its TCP
 * checksum updated incrementally (RFC 1624), so nothing is copied or recomputed.
 */

/** IPv4 (20) + TCP (20) headers without options. */
export const MSS_OVERHEAD_IPV4 = 40;
/** IPv6 (40) + TCP (20). */
export const MSS_OVERHEAD_IPV6 = 60;

const TCP = 6;
const TCP_SYN = 0x02;
/** Bounds the walk over a hostile IPv6 extension-header chain. */
const MAX_EXT_HEADERS = 4;

/**
 * Lowers the MSS of a TCP SYN (or SYN-ACK) in the IP packet at buf[off..off+len) to at
 * most `mss4` (IPv4) or `mss6` (IPv6). Returns true when it changed the packet.
 */
export function clampMss(buf: Uint8Array, off: number, len: number, mss4: number, mss6: number): boolean {
  if (len < 20) return false;
  const version = buf[off]! >> 4;
  let tcp: number;
  let max: number;
  if (version === 4) {
    if (buf[off + 9] !== TCP) return false;
    // Only the first fragment has the TCP header (offset 0).
    if ((((buf[off + 6]! << 8) | buf[off + 7]!) & 0x1fff) !== 0) return false;
    tcp = off + (buf[off]! & 0x0f) * 4;
    max = mss4;
  } else if (version === 6) {
    if (len < 40) return false;
    let nh = buf[off + 6]!;
    tcp = off + 40;
    for (let i = 0; nh !== TCP; i++) {
      // Hop-by-hop, routing, destination options: (len + 1) * 8 octets. Fragments are left alone.
      if (i === MAX_EXT_HEADERS || (nh !== 0 && nh !== 43 && nh !== 60) || tcp + 8 > off + len) return false;
      nh = buf[tcp]!;
      tcp += (buf[tcp + 1]! + 1) * 8;
    }
    max = mss6;
  } else {
    return false;
  }
  const end = off + len;
  if (tcp + 20 > end || !(buf[tcp + 13]! & TCP_SYN)) return false;
  const optEnd = Math.min(tcp + (buf[tcp + 12]! >> 4) * 4, end);
  let o = tcp + 20;
  while (o < optEnd) {
    const kind = buf[o]!;
    if (kind === 0) return false;
    if (kind === 1) {
      o++;
      continue;
    }
    if (o + 1 >= optEnd) return false;
    const olen = buf[o + 1]!;
    if (olen < 2 || o + olen > optEnd) return false;
    if (kind === 2 && olen === 4) {
      const old = (buf[o + 2]! << 8) | buf[o + 3]!;
      if (old <= max) return false;
      buf[o + 2] = max >> 8;
      buf[o + 3] = max & 0xff;
      // A 16-bit field at an odd offset from the TCP header straddles two checksum words;
      // the one's-complement sum is byte-order independent, so the swapped values work (RFC 1071 2(B)).
      const odd = ((o + 2 - tcp) & 1) === 1;
      const oldW = odd ? swap16(old) : old;
      const newW = odd ? swap16(max) : max;
      const cs = (buf[tcp + 16]! << 8) | buf[tcp + 17]!;
      const updated = checksumReplace(cs, oldW, newW);
      buf[tcp + 16] = updated >> 8;
      buf[tcp + 17] = updated & 0xff;
      return true;
    }
    o += olen;
  }
  return false;
}

const swap16 = (v: number): number => ((v & 0xff) << 8) | (v >> 8);

/** RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'). */
export function checksumReplace(checksum: number, oldWord: number, newWord: number): number {
  let sum = (~checksum & 0xffff) + (~oldWord & 0xffff) + newWord;
  sum = (sum & 0xffff) + (sum >>> 16);
  sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

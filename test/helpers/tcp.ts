/** IPv4 and IPv6 TCP packets for the MSS-clamping tests and fuzz targets. */

/**
 * A TCP segment (no payload) in IPv4 (198.51.100.1 -> 203.0.113.1) or IPv6
 * (2001::1 -> 2001::2) with the given options, padded with NOPs to a 4-byte
 * boundary, and a valid checksum.
 */
export function tcpPacket(version: 4 | 6, options: number[], flags = 0x02): Buffer {
  const opts = Buffer.from(options);
  const padded = Buffer.concat([opts, Buffer.alloc((4 - (opts.length % 4)) % 4, 1)]);
  const tcp = Buffer.alloc(20 + padded.length);
  tcp.writeUInt16BE(40000, 0);
  tcp.writeUInt16BE(443, 2);
  tcp.writeUInt32BE(12345, 4);
  tcp[12] = (tcp.length / 4) << 4;
  tcp[13] = flags;
  tcp.writeUInt16BE(65535, 14);
  padded.copy(tcp, 20);
  const ip = version === 4 ? Buffer.alloc(20) : Buffer.alloc(40);
  if (version === 4) {
    ip[0] = 0x45;
    ip.writeUInt16BE(20 + tcp.length, 2);
    ip[8] = 64;
    ip[9] = 6;
    Buffer.from([198, 51, 100, 1, 203, 0, 113, 1]).copy(ip, 12);
  } else {
    ip[0] = 0x60;
    ip.writeUInt16BE(tcp.length, 4);
    ip[6] = 6;
    ip[7] = 64;
    ip[8] = 0x20;
    ip[9] = 0x01;
    ip[23] = 1;
    ip[24] = 0x20;
    ip[25] = 0x01;
    ip[39] = 2;
  }
  const pkt = Buffer.concat([ip, tcp]);
  pkt.writeUInt16BE(tcpChecksum(pkt, ip.length, pkt.length), ip.length + 16);
  return pkt;
}

/** A TCP SYN with an MSS option (and more options after it). */
export function tcpSyn(version: 4 | 6, mss: number, extOptions: number[] = []): Buffer {
  return tcpPacket(version, [2, 4, mss >> 8, mss & 0xff, ...extOptions]);
}

/** TCP checksum over pseudo-header and segment of the packet at buf[0..len) whose TCP header is at `tcpAt`. */
export function tcpChecksum(buf: Uint8Array, tcpAt: number, len: number): number {
  const v6 = buf[0]! >> 4 === 6;
  const segLen = len - tcpAt;
  let sum = 0;
  const add16 = (hi: number, lo: number) => (sum += (hi << 8) | lo);
  if (v6) for (let i = 8; i < 40; i += 2) add16(buf[i]!, buf[i + 1]!);
  else for (let i = 12; i < 20; i += 2) add16(buf[i]!, buf[i + 1]!);
  sum += segLen + 6;
  for (let i = tcpAt; i < len; i += 2) {
    if (i === tcpAt + 16) continue;
    add16(buf[i]!, i + 1 < len ? buf[i + 1]! : 0);
  }
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

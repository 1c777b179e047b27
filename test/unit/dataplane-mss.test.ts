import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checksumReplace, clampMss } from '../../src/dataplane/mss';

/** One's-complement checksum over the pseudo-header and TCP segment, computed from scratch. */
function tcpChecksum(pkt: Buffer): number {
  const v6 = pkt[0]! >> 4 === 6;
  const tcpOff = v6 ? 40 : (pkt[0]! & 15) * 4;
  const seg = pkt.subarray(tcpOff);
  const pseudo = v6
    ? Buffer.concat([pkt.subarray(8, 40), Buffer.from([0, 0, seg.length >> 8, seg.length & 0xff, 0, 0, 0, 6])])
    : Buffer.concat([pkt.subarray(12, 20), Buffer.from([0, 6, seg.length >> 8, seg.length & 0xff])]);
  const copy = Buffer.from(seg);
  copy[16] = 0;
  copy[17] = 0;
  const all = Buffer.concat([pseudo, copy, copy.length & 1 ? Buffer.from([0]) : Buffer.alloc(0)]);
  let sum = 0;
  for (let i = 0; i < all.length; i += 2) sum += all.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function syn(version: 4 | 6, options: number[], flags = 0x02): Buffer {
  const opts = Buffer.from(options);
  const tcp = Buffer.alloc(20 + opts.length);
  tcp.writeUInt16BE(40000, 0);
  tcp.writeUInt16BE(80, 2);
  tcp.writeUInt32BE(12345, 4);
  tcp[12] = ((20 + opts.length) / 4) << 4;
  tcp[13] = flags;
  tcp.writeUInt16BE(65535, 14);
  opts.copy(tcp, 20);
  let ip: Buffer;
  if (version === 4) {
    ip = Buffer.alloc(20);
    ip[0] = 0x45;
    ip.writeUInt16BE(20 + tcp.length, 2);
    ip[8] = 64;
    ip[9] = 6;
    Buffer.from([198, 51, 100, 128, 203, 0, 113, 1]).copy(ip, 12);
  } else {
    ip = Buffer.alloc(40);
    ip[0] = 0x60;
    ip.writeUInt16BE(tcp.length, 4);
    ip[6] = 6;
    ip[7] = 64;
    ip[8] = 0x20;
    ip[9] = 0x01;
    ip[39] = 1;
    ip[24] = 0x20;
    ip[25] = 0x01;
    ip[39] = 2;
  }
  const pkt = Buffer.concat([ip, tcp]);
  pkt.writeUInt16BE(tcpChecksum(pkt), ip.length + 16);
  return pkt;
}

const mssOf = (pkt: Buffer, at: number): number => pkt.readUInt16BE(at);

describe('MSS clamping', () => {
  test('IPv4 SYN with MSS 1460 is clamped to MTU - 40 and its checksum stays valid', () => {
    const p = syn(4, [2, 4, 0x05, 0xb4, 1, 1, 4, 2]);
    assert.equal(clampMss(p, 0, p.length, 1420, 1400), true);
    assert.equal(mssOf(p, 40 + 2), 1420);
    assert.equal(p.readUInt16BE(36), tcpChecksum(p));
  });

  test('IPv6 SYN-ACK is clamped to MTU - 60, checksum valid', () => {
    const p = syn(6, [2, 4, 0x05, 0xa0, 4, 2, 1, 1], 0x12);
    assert.equal(clampMss(p, 0, p.length, 1420, 1400), true);
    assert.equal(mssOf(p, 60 + 2), 1400);
    assert.equal(p.readUInt16BE(56), tcpChecksum(p));
  });

  test('an MSS option at an odd offset is updated with a correct checksum', () => {
    const p = syn(4, [1, 2, 4, 0x23, 0x28, 1, 1, 1]);
    assert.equal(clampMss(p, 0, p.length, 1420, 1400), true);
    assert.equal(mssOf(p, 40 + 3), 1420);
    assert.equal(p.readUInt16BE(36), tcpChecksum(p));
  });

  test('a smaller MSS, a non-SYN, a packet without MSS and a non-first fragment are left alone', () => {
    const small = syn(4, [2, 4, 0x02, 0x18]);
    const ack = syn(4, [2, 4, 0x05, 0xb4], 0x10);
    const none = syn(4, [1, 1, 4, 2]);
    const frag = syn(4, [2, 4, 0x05, 0xb4]);
    frag.writeUInt16BE(0x0010, 6);
    for (const p of [small, ack, none, frag]) {
      const before = Buffer.from(p);
      assert.equal(clampMss(p, 0, p.length, 1420, 1400), false);
      assert.deepEqual(p, before);
    }
  });

  test('works at an offset inside a larger buffer and ignores truncated or hostile options', () => {
    const p = syn(6, [2, 4, 0x05, 0xa0]);
    const ring = Buffer.concat([Buffer.alloc(100, 0xee), p]);
    assert.equal(clampMss(ring, 100, p.length, 1420, 1400), true);
    assert.equal(mssOf(ring, 100 + 62), 1400);
    const bad = syn(4, [2, 0, 0x05, 0xb4]);
    assert.equal(clampMss(bad, 0, bad.length, 1420, 1400), false);
    assert.equal(clampMss(bad, 0, 30, 1420, 1400), false);
  });

  test('IPv6 with a hop-by-hop header before TCP is clamped', () => {
    const p = syn(6, [2, 4, 0x05, 0xa0]);
    const hbh = Buffer.from([6, 0, 1, 4, 0, 0, 0, 0]);
    const q = Buffer.concat([p.subarray(0, 40), hbh, p.subarray(40)]);
    q[6] = 0;
    q.writeUInt16BE(q.length - 40, 4);
    assert.equal(clampMss(q, 0, q.length, 1420, 1400), true);
    assert.equal(mssOf(q, 48 + 22), 1400);
  });

  test('checksumReplace matches RFC 1624 section 4 example', () => {
    // HC = 0xdd2f, m = 0x5555 -> m' = 0x3285 gives HC' = 0x0000 (RFC 1624 4, eqn. 3).
    assert.equal(checksumReplace(0xdd2f, 0x5555, 0x3285), 0x0000);
  });
});

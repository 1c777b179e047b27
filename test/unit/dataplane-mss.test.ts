import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checksumReplace, clampMss } from '../../src/dataplane/mss';
import { tcpChecksum as tcpChecksumOf, tcpPacket } from '../helpers/tcp';

const syn = tcpPacket;
/** The checksum of the packet's TCP segment, computed from scratch. */
const tcpChecksum = (pkt: Buffer): number => tcpChecksumOf(pkt, pkt[0]! >> 4 === 6 ? 40 : (pkt[0]! & 15) * 4, pkt.length);

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

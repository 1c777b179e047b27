import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { addon } from '../../src/native/addon';
import {
  F_NEEDS_CSUM,
  GSO_NONE,
  GSO_TCPV4,
  GSO_TCPV6,
  GSO_UDP,
  VNET_HDR_LEN,
  bytes,
  decodeVnet,
  encodeVnet,
  fold,
  headerLen,
  ipPacket,
  ipv4HeaderOk,
  l4ChecksumOk,
  payloadOf,
  pseudoSum,
  superPacket,
  sum16,
  tcpFlags,
  tcpSeq,
} from '../helpers/offload';

/**
 * Segmentation (a TSO/USO TUN read cut into MTU-sized packets) and coalescing (TCP
 * segments joined into one super-packet for a TUN write), in src/native/offload.h,
 * checked against hand-built packets and the independent checksum in test/helpers.
 */

const native = addon();
const FIN = 0x01;
const PSH = 0x08;
const ACK = 0x10;
const CWR = 0x80;
const SYN = 0x02;
/** NOP NOP timestamp: the options a Linux TCP stream carries. */
const TS = [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2];

function split(b: Buffer): Buffer[] {
  const r = native.gsoSplit(b);
  assert.ok(Array.isArray(r), `gsoSplit failed with ${String(r)}`);
  return r;
}

function checkSegments(segs: Buffer[], version: 4 | 6, payload: Buffer, mss: number, seq: number, flags: number, id = 0x1234): void {
  assert.equal(segs.length, Math.ceil(payload.length / mss));
  const hl = headerLen(segs[0]!);
  segs.forEach((s, i) => {
    const last = i === segs.length - 1;
    const n = last ? payload.length - i * mss : mss;
    assert.equal(s.length, hl + n, `segment ${i} length`);
    if (version === 4) {
      assert.equal(s.readUInt16BE(2), s.length, 'IPv4 total length');
      assert.equal(s.readUInt16BE(4), (id + i) & 0xffff, 'IPv4 id increments');
      assert.ok(ipv4HeaderOk(s), `IPv4 header checksum of segment ${i}`);
    } else {
      assert.equal(s.readUInt16BE(4), s.length - 40, 'IPv6 payload length');
    }
    assert.ok(l4ChecksumOk(s), `TCP checksum of segment ${i}`);
    assert.equal(tcpSeq(s), (seq + i * mss) >>> 0, `sequence number of segment ${i}`);
    let want = flags;
    if (!last) want &= ~(FIN | PSH);
    if (i > 0) want &= ~CWR;
    assert.equal(tcpFlags(s), want, `flags of segment ${i}`);
  });
  assert.deepEqual(Buffer.concat(segs.map(payloadOf)), payload);
}

describe('gsoSplit: a TSO/USO TUN read cut into packets', () => {
  it('cuts an IPv4 TCP super-packet at an odd MSS: lengths, ids, sequence numbers, FIN/PSH last, checksums', () => {
    const payload = bytes(10001, 7);
    const spec = { version: 4 as const, seq: 0xfffff000, flags: ACK | PSH | FIN, options: TS, payload };
    const segs = split(superPacket(spec, 1337));
    checkSegments(segs, 4, payload, 1337, 0xfffff000, ACK | PSH | FIN);
    // Options are copied to every segment.
    for (const s of segs) assert.deepEqual([...s.subarray(40, 52)], TS);
  });

  it('cuts an IPv6 TCP super-packet: CWR on the first segment only', () => {
    const payload = bytes(30000, 3);
    const segs = split(superPacket({ version: 6, seq: 5, flags: ACK | CWR | PSH, options: TS, payload }, 1211));
    checkSegments(segs, 6, payload, 1211, 5, ACK | CWR | PSH);
  });

  it('cuts a 64 KB super-packet at MSS 1448 into 45 full-size packets', () => {
    const payload = bytes(65535 - 52, 9);
    const segs = split(superPacket({ version: 4, flags: ACK, options: TS, payload }, 1448));
    checkSegments(segs, 4, payload, 1448, 1000, ACK);
  });

  it('cuts a UDP (USO) super-packet: each datagram has its length and checksum', () => {
    for (const version of [4, 6] as const) {
      const payload = bytes(5000, 11);
      const segs = split(superPacket({ version, proto: 17, payload }, 1400));
      assert.equal(segs.length, 4);
      const ihl = version === 4 ? 20 : 40;
      segs.forEach((s, i) => {
        assert.equal(s.readUInt16BE(ihl + 4), s.length - ihl, 'UDP length');
        assert.ok(l4ChecksumOk(s), `UDP checksum ${version}/${i}`);
        if (version === 4) assert.ok(ipv4HeaderOk(s));
      });
      assert.deepEqual(Buffer.concat(segs.map(payloadOf)), payload);
    }
  });

  it('completes a partial checksum of a packet that is not GSO, and passes a plain one unchanged', () => {
    const pkt = ipPacket({ version: 4, payload: bytes(333, 2), flags: ACK | PSH }, 'partial');
    const out = split(Buffer.concat([encodeVnet({ flags: F_NEEDS_CSUM, gsoType: GSO_NONE, hdrLen: 0, gsoSize: 0, csumStart: 20, csumOffset: 16 }), pkt]));
    assert.equal(out.length, 1);
    assert.deepEqual(out[0], ipPacket({ version: 4, payload: bytes(333, 2), flags: ACK | PSH }, 'full'));
    const plain = ipPacket({ version: 6, proto: 17, payload: bytes(99) });
    assert.deepEqual(split(Buffer.concat([Buffer.alloc(VNET_HDR_LEN), plain])), [plain]);
  });

  it('refuses what it cannot cut, by reason', () => {
    const v6 = ipPacket({ version: 6, payload: bytes(3000) }, 'partial');
    const tcp4 = encodeVnet({ flags: F_NEEDS_CSUM, gsoType: GSO_TCPV4, hdrLen: 60, gsoSize: 1000, csumStart: 40, csumOffset: 16 });
    assert.equal(native.gsoSplit(Buffer.concat([tcp4, v6])), -1, 'TCPV4 on an IPv6 packet');
    const ufo = encodeVnet({ flags: 0, gsoType: GSO_UDP, hdrLen: 28, gsoSize: 1000, csumStart: 0, csumOffset: 0 });
    assert.equal(native.gsoSplit(Buffer.concat([ufo, ipPacket({ version: 4, proto: 17, payload: bytes(3000) })])), -2, 'UFO');
    // An IPv6 hop-by-hop header in front of TCP.
    const ext = Buffer.from(v6);
    ext[6] = 0;
    const tcp6 = encodeVnet({ flags: F_NEEDS_CSUM, gsoType: GSO_TCPV6, hdrLen: 60, gsoSize: 1000, csumStart: 40, csumOffset: 16 });
    assert.equal(native.gsoSplit(Buffer.concat([tcp6, ext])), -2, 'extension header');
    const zero = encodeVnet({ flags: F_NEEDS_CSUM, gsoType: GSO_TCPV6, hdrLen: 60, gsoSize: 0, csumStart: 40, csumOffset: 16 });
    assert.equal(native.gsoSplit(Buffer.concat([zero, v6])), -1, 'gso_size 0');
    const far = encodeVnet({ flags: F_NEEDS_CSUM, gsoType: GSO_NONE, hdrLen: 0, gsoSize: 0, csumStart: 40, csumOffset: 9000 });
    assert.equal(native.gsoSplit(Buffer.concat([far, v6])), -1, 'checksum offset past the end');
    assert.equal(native.gsoSplit(Buffer.alloc(4)), -1, 'shorter than the header');
  });

  it('takes hostile headers without crashing', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 300 }), (b) => {
        const r = native.gsoSplit(b);
        assert.ok(typeof r === 'number' ? r < 0 : Array.isArray(r));
      }),
      { numRuns: 2000, seed: 17 },
    );
  });
});

function segmentsOf(version: 4 | 6, payload: Buffer, mss: number, extra: Partial<Parameters<typeof ipPacket>[0]> = {}, flags = ACK | PSH): Buffer[] {
  return split(superPacket({ version, flags, options: TS, payload, ...extra }, mss));
}

function joined(out: Buffer): { vnet: ReturnType<typeof decodeVnet>; pkt: Buffer } {
  return { vnet: decodeVnet(out), pkt: out.subarray(VNET_HDR_LEN) };
}

describe('groCoalesce: TCP segments joined for a TUN write', () => {
  it('joins in-order segments of a flow into one super-packet with a virtio-net header', () => {
    for (const version of [4, 6] as const) {
      const payload = bytes(14000, 5);
      const segs = segmentsOf(version, payload, 1401);
      const out = native.groCoalesce(segs.map((s) => Buffer.from(s)));
      assert.equal(out.length, 1);
      const { vnet, pkt } = joined(out[0]!);
      const ihl = version === 4 ? 20 : 40;
      assert.deepEqual(vnet, { flags: F_NEEDS_CSUM, gsoType: version === 4 ? GSO_TCPV4 : GSO_TCPV6, hdrLen: ihl + 32, gsoSize: 1401, csumStart: ihl, csumOffset: 16 });
      assert.deepEqual(payloadOf(pkt), payload);
      assert.equal(tcpSeq(pkt), 1000);
      assert.equal(tcpFlags(pkt), ACK | PSH, 'PSH of the last segment');
      if (version === 4) {
        assert.equal(pkt.readUInt16BE(2), pkt.length);
        assert.ok(ipv4HeaderOk(pkt));
      } else assert.equal(pkt.readUInt16BE(4), pkt.length - 40);
      // The checksum is left partial: the pseudo-header sum, for the kernel to finish.
      assert.equal(pkt.readUInt16BE(ihl + 16), fold(pseudoSum(pkt, 6, pkt.length - ihl)));
      // Finished by hand, it verifies.
      const done = Buffer.from(pkt);
      done.writeUInt16BE(~fold(sum16(done, ihl)) & 0xffff, ihl + 16);
      assert.ok(l4ChecksumOk(done));
    }
  });

  it('leaves non-TCP, SYNs, out-of-order and other flows alone, and never joins past PSH', () => {
    const a = segmentsOf(4, bytes(4000, 1), 1000); // 4 segments, PSH on the last
    const b = segmentsOf(4, bytes(2000, 2), 1000, { src: 2 }); // another flow
    const udp = ipPacket({ version: 4, proto: 17, payload: bytes(500) });
    const syn = ipPacket({ version: 4, flags: SYN, payload: Buffer.alloc(0) });
    const icmp = Buffer.from(udp);
    icmp[9] = 1;
    const input = [a[0]!, a[2]!, a[1]!, a[3]!, b[0]!, udp, b[1]!, syn, icmp];
    const copies = input.map((p) => Buffer.from(p));
    const out = native.groCoalesce(copies);
    assert.equal(out.length, input.length, 'nothing here is consecutive and in order');
    out.forEach((o, i) => {
      assert.equal(decodeVnet(o).gsoType, GSO_NONE);
      assert.deepEqual(o.subarray(VNET_HDR_LEN), input[i], `packet ${i} unchanged`);
    });
    // A segment after one with PSH starts a new super-packet.
    const c = segmentsOf(6, bytes(3000, 4), 1000, {}, ACK | PSH);
    const d = segmentsOf(6, bytes(3000, 5), 1000, { seq: 1000 + 3000 }, ACK);
    const out2 = native.groCoalesce([...c, ...d].map((p) => Buffer.from(p)));
    assert.equal(out2.length, 2);
    assert.deepEqual(out2.map((o) => payloadOf(o.subarray(VNET_HDR_LEN))), [bytes(3000, 4), bytes(3000, 5)]);
  });

  it('does not join a segment whose checksum fails, nor past a short segment', () => {
    const s = segmentsOf(4, bytes(5000, 8), 1000, {}, ACK);
    const bad = Buffer.from(s[2]!);
    bad[bad.length - 1] ^= 0xff;
    const out = native.groCoalesce([s[0]!, s[1]!, bad, s[3]!, s[4]!].map((p) => Buffer.from(p)));
    assert.deepEqual(
      out.map((o) => payloadOf(o.subarray(VNET_HDR_LEN)).length),
      [2000, 1000, 2000],
      'the bad one alone; the next cannot join it and starts a group that s[4] joins',
    );
    assert.deepEqual(out[1]!.subarray(VNET_HDR_LEN), bad);
    // Short segment in the middle: what follows starts anew.
    const short = segmentsOf(4, bytes(1500, 9), 1000, {}, ACK); // 1000 + 500
    const after = segmentsOf(4, bytes(2000, 10), 1000, { seq: 1000 + 1500 }, ACK);
    const out2 = native.groCoalesce([...short, ...after].map((p) => Buffer.from(p)));
    assert.deepEqual(out2.map((o) => payloadOf(o.subarray(VNET_HDR_LEN)).length), [1500, 2000]);
  });

  it('with USO, joins equal-sized UDP datagrams of a flow; cutting the result gives them back', () => {
    for (const version of [4, 6] as const) {
      const payload = bytes(7 * 1200 + 500, 31);
      const dgrams = split(superPacket({ version, proto: 17, payload }, 1200));
      assert.equal(dgrams.length, 8);
      assert.equal(native.groCoalesce(dgrams.map((d) => Buffer.from(d))).length, 8, 'without USO every datagram goes alone');
      const out = native.groCoalesce(
        dgrams.map((d) => Buffer.from(d)),
        true,
      );
      assert.equal(out.length, 1);
      const v = decodeVnet(out[0]!);
      const ihl = version === 4 ? 20 : 40;
      assert.deepEqual(v, { flags: F_NEEDS_CSUM, gsoType: 5, hdrLen: ihl + 8, gsoSize: 1200, csumStart: ihl, csumOffset: 6 });
      const pkt = out[0]!.subarray(VNET_HDR_LEN);
      assert.equal(pkt.readUInt16BE(ihl + 4), pkt.length - ihl, 'UDP length of the joined packet');
      assert.deepEqual(payloadOf(pkt), payload);
      assert.deepEqual(
        split(out[0]!).map((d) => d.toString('hex')),
        dgrams.map((d) => d.toString('hex')),
      );
    }
    // Another flow, a datagram without checksum (IPv4 allows it: nothing to verify) and a bad checksum stay alone.
    const a = split(superPacket({ version: 4, proto: 17, payload: bytes(3000, 1) }, 1000));
    const other = split(superPacket({ version: 4, proto: 17, payload: bytes(1000, 2), srcPort: 1234 }, 1000));
    const nosum = Buffer.from(a[2]!);
    nosum.writeUInt16BE(0, 26);
    const bad = Buffer.from(a[1]!);
    bad[bad.length - 1] ^= 1;
    const out = native.groCoalesce([a[0]!, other[0]!, a[1]!, a[2]!, Buffer.from(a[0]!), bad, nosum].map((p) => Buffer.from(p)), true);
    assert.deepEqual(
      out.map((o) => [decodeVnet(o).gsoType, payloadOf(o.subarray(VNET_HDR_LEN)).length]),
      [
        [0, 1000],
        [0, 1000],
        [5, 3000], // a[1], a[2] and a repeat of a[0]: UDP has no order to keep
        [0, 1000],
        [0, 1000],
      ],
    );
  });

  it('stops at 64 segments and 64 KB', () => {
    const segs = segmentsOf(4, bytes(100 * 600, 12), 600, {}, ACK);
    const out = native.groCoalesce(segs.map((p) => Buffer.from(p)));
    assert.deepEqual(out.map((o) => payloadOf(o.subarray(VNET_HDR_LEN)).length), [64 * 600, 36 * 600]);
    const big = [...segmentsOf(6, bytes(60000, 13), 1440, {}, ACK), ...segmentsOf(6, bytes(14400, 14), 1440, { seq: 61000 }, ACK)];
    for (const o of native.groCoalesce(big.map((p) => Buffer.from(p)))) assert.ok(o.length - VNET_HDR_LEN <= 65535);
  });
});

describe('groCoalesce takes hostile packets', () => {
  it('never crashes, never joins a damaged segment, and keeps every byte of what it leaves alone', () => {
    const base = segmentsOf(4, bytes(6000, 21), 1000, {}, ACK).concat(segmentsOf(6, bytes(3000, 22), 1000, { seq: 9000 }, ACK));
    fc.assert(
      fc.property(
        fc.array(fc.record({ which: fc.nat(base.length - 1), at: fc.nat(200), xor: fc.integer({ min: 1, max: 255 }) }), { maxLength: 12 }),
        fc.array(fc.uint8Array({ maxLength: 120 }), { maxLength: 4 }),
        (edits, junk) => {
          const pkts = base.map((p) => Buffer.from(p));
          for (const e of edits) {
            const p = pkts[e.which]!;
            if (e.at < p.length) p[e.at] ^= e.xor;
          }
          const input = [...pkts, ...junk.map((j) => Buffer.from(j))];
          const before = input.map((p) => Buffer.from(p));
          const out = native.groCoalesce(input);
          out.forEach((o) => {
            const v = decodeVnet(o);
            if (v.gsoType === GSO_NONE) return;
            // A joined packet verifies once its partial checksum is finished.
            const pkt = Buffer.from(o.subarray(VNET_HDR_LEN));
            pkt.writeUInt16BE(~fold(sum16(pkt, v.csumStart)) & 0xffff, v.csumStart + 16);
            assert.ok(l4ChecksumOk(pkt), 'joined from segments whose checksums verify');
          });
          // Packets written alone are byte for byte what came in.
          const alone = out.filter((o) => decodeVnet(o).gsoType === GSO_NONE).map((o) => o.subarray(VNET_HDR_LEN).toString('hex'));
          for (const a of alone) assert.ok(before.some((b) => b.toString('hex') === a));
          assert.ok(out.length <= input.length);
        },
      ),
      { numRuns: 500, seed: 77 },
    );
  });
});

describe('split then coalesce is the identity on the byte stream (property)', () => {
  it('holds for random versions, MSS values, lengths and options', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(4 as const, 6 as const),
        fc.integer({ min: 88, max: 9000 }),
        fc.integer({ min: 1, max: 65000 }),
        fc.constantFrom([] as number[], TS, [1, 1, 4, 2], [2, 4, 5, 0xb4, 1, 3, 3, 7]),
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.boolean(),
        (version, mss, len, options, seq, psh) => {
          const hl = (version === 4 ? 20 : 40) + 20 + Math.ceil(options.length / 4) * 4;
          const n = Math.min(len, 65535 - hl - (version === 6 ? 0 : 0));
          fc.pre(Math.ceil(n / mss) <= 1400);
          const payload = bytes(n, seq);
          const flags = ACK | (psh ? PSH : 0);
          const segs = split(superPacket({ version, seq, flags, options, payload }, mss));
          const out = native.groCoalesce(segs.map((s) => Buffer.from(s)));
          assert.deepEqual(Buffer.concat(out.map((o) => payloadOf(o.subarray(VNET_HDR_LEN)))), payload);
          assert.equal(out.length, Math.ceil(segs.length / 64), 'joined as far as the kernel allows');
          // What the kernel does with a joined packet (cut it again) gives back the same segments.
          const again = out.flatMap((o) => split(o));
          assert.deepEqual(
            again.map((s) => s.toString('hex')),
            segs.map((s) => s.toString('hex')),
          );
        },
      ),
      { numRuns: 150, seed: 4242 },
    );
  });
});

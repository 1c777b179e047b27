import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Dataplane, type DataHeader, type TunBatch } from '../../src/dataplane/dataplane';
import { DATA_HEADER_LEN, type IpLocation, buildHeaderTemplates, ipv6NeedsCores, locateIp } from '../../src/dataplane/frame';
import { encodePacket } from '../../src/l2tp/header';
import { PROTO, encodeFrame } from '../../src/ppp/frame';

const ipv4 = (len = 60): Buffer => {
  const b = Buffer.alloc(len);
  b[0] = 0x45;
  b[9] = 17;
  return b;
};
const ipv6 = (nh: number, dport = 0, len = 80): Buffer => {
  const b = Buffer.alloc(len);
  b[0] = 0x60;
  b[6] = nh;
  b.writeUInt16BE(dport, 42);
  return b;
};

function datagram(ppp: Buffer, o: { tunnel?: number; session?: number; ns?: number; withLength?: boolean; offsetSize?: number; control?: boolean } = {}): Buffer {
  if (o.control) return Buffer.from(encodePacket({ control: true, withLength: true, tunnelId: o.tunnel ?? 7, sessionId: 0, ns: 0, nr: 0, priority: false }, Buffer.alloc(0)));
  return Buffer.from(
    encodePacket(
      {
        control: false,
        withLength: o.withLength ?? false,
        tunnelId: o.tunnel ?? 7,
        sessionId: o.session ?? 9,
        ns: o.ns,
        nr: o.ns === undefined ? undefined : 0,
        offsetSize: o.offsetSize,
        priority: false,
      },
      ppp,
    ),
  );
}

describe('data frames', () => {
  test('header templates are the L2TP data header l2tpns sends plus FF 03 and the protocol', () => {
    const t = buildHeaderTemplates(0x1234, 0xabcd);
    assert.equal(t.length, 2 * DATA_HEADER_LEN);
    assert.deepEqual([...t.subarray(0, 10)], [0x00, 0x02, 0x12, 0x34, 0xab, 0xcd, 0xff, 0x03, 0x00, 0x21]);
    assert.deepEqual([...t.subarray(10, 20)], [0x00, 0x02, 0x12, 0x34, 0xab, 0xcd, 0xff, 0x03, 0x00, 0x57]);
  });

  test('locateIp finds the IP packet for our session in the header forms RFC 2661 allows', () => {
    const pkt = ipv4();
    const loc: IpLocation = { protocol: 0, offset: 0, length: 0 };
    for (const o of [{}, { withLength: true }, { offsetSize: 3 }]) {
      const d = datagram(encodeFrame(PROTO.IPV4, pkt), o);
      const ring = Buffer.concat([Buffer.alloc(32), d]);
      locateIp(ring, 32, d.length, 7, 9, loc);
      assert.equal(loc.protocol, 0x21, JSON.stringify(o));
      assert.deepEqual(ring.subarray(loc.offset, loc.offset + loc.length), pkt);
    }
    // ACFC + PFC: protocol 0x57 in one octet, no FF 03.
    const short = datagram(Buffer.concat([Buffer.from([0x57]), ipv6(6)]));
    locateIp(short, 0, short.length, 7, 9, loc);
    assert.equal(loc.protocol, 0x57);
    assert.equal(loc.length, 80);
  });

  test('locateIp leaves control, sequenced, foreign-session, LCP and truncated datagrams to the cores', () => {
    const loc: IpLocation = { protocol: 0, offset: 0, length: 0 };
    const cases = [
      datagram(Buffer.alloc(0), { control: true }),
      datagram(encodeFrame(PROTO.IPV4, ipv4()), { ns: 5 }),
      datagram(encodeFrame(PROTO.IPV4, ipv4()), { session: 10 }),
      datagram(encodeFrame(PROTO.IPV4, ipv4()), { tunnel: 8 }),
      datagram(encodeFrame(PROTO.LCP, Buffer.from([9, 1, 0, 8, 0, 0, 0, 0]))),
      datagram(encodeFrame(PROTO.IPV4, ipv4())).subarray(0, 9),
    ];
    for (const d of cases) {
      locateIp(d, 0, d.length, 7, 9, loc);
      assert.equal(loc.protocol, 0);
    }
  });

  test('IPv6 packets for the cores: ICMPv6 (RA, NS, NA), DHCPv6 to the client, extension headers', () => {
    assert.equal(ipv6NeedsCores(ipv6(58), 0, 80), true);
    assert.equal(ipv6NeedsCores(ipv6(17, 546), 0, 80), true);
    assert.equal(ipv6NeedsCores(ipv6(0), 0, 80), true);
    assert.equal(ipv6NeedsCores(ipv6(6), 0, 80), false);
    assert.equal(ipv6NeedsCores(ipv6(17, 53), 0, 80), false);
  });
});

class FakeCores {
  header: DataHeader | undefined = { tunnelId: 2, sessionId: 1, localTunnelId: 7, localSessionId: 9, sequencing: false };
  open = new Set([0x21, 0x57]);
  received = 0;
  sent = 0;
  dataHeader = () => this.header;
  dataReceived = (n: number) => (this.received += n);
  dataSent = (n: number) => (this.sent += n);
  canCarry = (p: number) => this.open.has(p);
}

function rig(cores = new FakeCores(), opts: { udpRoom?: number } = {}) {
  const sentDatagrams: Buffer[] = [];
  const tunWrites: Buffer[] = [];
  const udp = {
    sendFrames(headers: Uint8Array, hlen: number, src: Uint8Array, desc: Int32Array, count: number): number {
      const n = Math.min(count, opts.udpRoom ?? count);
      for (let i = 0; i < n; i++) {
        const [off, len, t] = [desc[i * 3]!, desc[i * 3 + 1]!, desc[i * 3 + 2]!];
        sentDatagrams.push(Buffer.concat([headers.subarray(t * hlen, (t + 1) * hlen), src.subarray(off, off + len)]));
      }
      return n;
    },
  };
  const tun = {
    writeFrames(src: Uint8Array, desc: Int32Array, count: number): number {
      for (let i = 0; i < count; i++) tunWrites.push(Buffer.from(src.subarray(desc[i * 3]!, desc[i * 3]! + desc[i * 3 + 1]!)));
      return count;
    },
  };
  const dp = new Dataplane({ tun, udp, lac: cores, ppp: cores, mtu: 1460 });
  return { dp, cores, sentDatagrams, tunWrites };
}

function batchOf(pkts: Buffer[]): TunBatch {
  const slot = 2048;
  const buffer = Buffer.alloc(slot * pkts.length);
  pkts.forEach((p, i) => p.copy(buffer, i * slot));
  return { count: pkts.length, buffer, offset: (i) => i * slot, length: (i) => pkts[i]!.length };
}

describe('Dataplane', () => {
  test('TUN batch: IPv4 and IPv6 packets go out framed for the SC session; counters per direction', () => {
    const r = rig();
    const a = ipv4();
    const b = ipv6(6);
    assert.equal(r.dp.fromTun(batchOf([a, b, Buffer.from([0x10, 0, 0])])), true);
    assert.equal(r.sentDatagrams.length, 2);
    assert.deepEqual(r.sentDatagrams[0], Buffer.concat([buildHeaderTemplates(2, 1).subarray(0, 10), a]));
    assert.deepEqual(r.sentDatagrams[1], Buffer.concat([buildHeaderTemplates(2, 1).subarray(10, 20), b]));
    const c = r.dp.counters;
    assert.equal(c.txPackets, 2);
    assert.equal(c.txOctets, a.length + b.length);
    assert.equal(c.drops['tx.bad-version'], 1);
    assert.equal(r.cores.sent, 2);
  });

  test('TUN batch: a closed NCP drops by reason; no session or sequencing hands the batch back', () => {
    const r = rig();
    r.cores.open.delete(0x21);
    r.dp.fromTun(batchOf([ipv4(), ipv4()]));
    assert.equal(r.dp.counters.drops['tx.ipv4-not-carried'], 2);
    r.cores.header = { ...r.cores.header!, sequencing: true };
    assert.equal(r.dp.fromTun(batchOf([ipv6(6)])), false);
    r.cores.header = undefined;
    assert.equal(r.dp.fromTun(batchOf([ipv6(6)])), false);
    assert.equal(r.sentDatagrams.length, 0);
  });

  test('a TUN batch larger than one descriptor table (a cut 64 KB super-packet and more) goes out whole, in order', () => {
    const r = rig();
    const pkts = Array.from({ length: 1400 }, (_, i) => {
      const p = ipv4(60 + (i % 7));
      p.writeUInt16BE(i, 4);
      return p;
    });
    r.dp.fromTun(batchOf(pkts));
    assert.equal(r.sentDatagrams.length, 1400, 'nothing past the first table is left behind');
    assert.deepEqual(
      r.sentDatagrams.map((d) => d.readUInt16BE(DATA_HEADER_LEN + 4)),
      pkts.map((_, i) => i),
    );
    assert.equal(r.dp.counters.txPackets, 1400);
    assert.equal(r.cores.sent, 1400);
  });

  test('a full UDP queue counts the unsent tail as drops, not as sent', () => {
    const r = rig(new FakeCores(), { udpRoom: 1 });
    r.dp.fromTun(batchOf([ipv4(60), ipv4(70), ipv4(80)]));
    assert.equal(r.dp.counters.txPackets, 1);
    assert.equal(r.dp.counters.txOctets, 60);
    assert.equal(r.dp.counters.drops['tx.udp-queue-full'], 2);
  });

  test('UDP side: data for our session is written to the TUN in place; the rest is left to the cores, in order', () => {
    const r = rig();
    const d1 = datagram(encodeFrame(PROTO.IPV4, ipv4()));
    const ra = datagram(encodeFrame(PROTO.IPV6, ipv6(58)));
    const d2 = datagram(encodeFrame(PROTO.IPV6, ipv6(6)));
    const ring = Buffer.concat([d1, ra, d2]);
    r.dp.begin();
    assert.equal(r.dp.take(ring, 0, d1.length), true);
    assert.equal(r.dp.take(ring, d1.length, ra.length), false);
    // The transport flushes before handing a datagram to the cores, so d1 reaches the TUN first.
    r.dp.flush(ring);
    assert.equal(r.tunWrites.length, 1);
    assert.equal(r.dp.take(ring, d1.length + ra.length, d2.length), true);
    r.dp.flush(ring);
    assert.deepEqual(r.tunWrites, [ipv4(), ipv6(6)]);
    assert.equal(r.dp.counters.rxPackets, 2);
    assert.equal(r.cores.received, 2, 'the L2TP core hears of fast-path data (liveness, counters)');
  });

  test('UDP side: SYNs are clamped on the way in as well', () => {
    const r = rig();
    const syn = Buffer.alloc(44);
    syn[0] = 0x45;
    syn[9] = 6;
    syn[20 + 12] = 6 << 4;
    syn[20 + 13] = 0x02;
    Buffer.from([2, 4, 0x05, 0xb4]).copy(syn, 40);
    const d = datagram(encodeFrame(PROTO.IPV4, syn));
    r.dp.begin();
    assert.equal(r.dp.take(d, 0, d.length), true);
    r.dp.flush(d);
    assert.equal(r.tunWrites[0]!.readUInt16BE(42), 1420);
    assert.equal(r.dp.counters.mssClamped, 1);
  });

  test('UDP side: with sequencing on, nothing is taken (the L2TP core checks Ns)', () => {
    const r = rig();
    r.cores.header = { ...r.cores.header!, sequencing: true };
    const d = datagram(encodeFrame(PROTO.IPV4, ipv4()));
    r.dp.begin();
    assert.equal(r.dp.take(d, 0, d.length), false);
  });
});

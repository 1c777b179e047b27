import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { addon } from '../../src/native/addon';
import { Dataplane } from '../../src/dataplane/dataplane';
import { PPP_IPV4, PPP_IPV6, ipv6NeedsCores, locateIp } from '../../src/dataplane/frame';
import { clampMss } from '../../src/dataplane/mss';
import { NativeUdpTransport } from '../../src/dataplane/udp';
import { tcpPacket } from '../helpers/tcp';
import { Topology } from '../lab/netns';

/*
 * The receive classifier in C (src/native/rxdata.h, udpTakeData) must decide exactly as
 * the TypeScript take() does (frame.ts locateIp/ipv6NeedsCores, mss.ts clampMss): the C
 * one runs for runs of data, the TypeScript one for the entry it stopped at.
 */

const native = addon();
const TUNNEL = 0x1234;
const SESSION = 0x0042;

interface Params {
  open4: boolean;
  open6: boolean;
  mss4: number;
  mss6: number;
}

const params = (p: Params): Int32Array => Int32Array.from([TUNNEL, SESSION, p.open4 ? 1 : 0, p.open6 ? 1 : 0, p.mss4, p.mss6]);

/** take()'s decision in TypeScript: [IP offset, IP length, clamped] or null. Edits buf. */
function jsTake(buf: Buffer, p: Params): [number, number, number] | null {
  const loc = { protocol: 0, offset: 0, length: 0 };
  locateIp(buf, 0, buf.length, TUNNEL, SESSION, loc);
  if (loc.protocol === PPP_IPV6) {
    if (!p.open6 || ipv6NeedsCores(buf, loc.offset, loc.length)) return null;
  } else if (loc.protocol === PPP_IPV4) {
    if (!p.open4) return null;
  } else {
    return null;
  }
  return [loc.offset, loc.length, clampMss(buf, loc.offset, loc.length, p.mss4, p.mss6) ? 1 : 0];
}

/** An L2TP data message (RFC 2661 3.1) with the given header options around a PPP frame. */
function l2tpData(o: { length?: boolean; offset?: number; acfc?: boolean; pfc?: boolean; tunnel?: number; session?: number; proto: number; ip: Buffer }): Buffer {
  const ppp = Buffer.concat([
    o.acfc ? Buffer.alloc(0) : Buffer.from([0xff, 0x03]),
    o.pfc && o.proto < 0x100 ? Buffer.from([o.proto]) : Buffer.from([o.proto >> 8, o.proto & 0xff]),
    o.ip,
  ]);
  const h: number[] = [(o.length ? 0x40 : 0) | (o.offset !== undefined ? 0x02 : 0), 0x02];
  if (o.length) h.push(0, 0);
  h.push((o.tunnel ?? TUNNEL) >> 8, (o.tunnel ?? TUNNEL) & 0xff, (o.session ?? SESSION) >> 8, (o.session ?? SESSION) & 0xff);
  if (o.offset !== undefined) h.push(o.offset >> 8, o.offset & 0xff, ...new Array<number>(o.offset).fill(0));
  const b = Buffer.concat([Buffer.from(h), ppp]);
  if (o.length) b.writeUInt16BE(b.length, 2);
  return b;
}

function udp6(port: number): Buffer {
  const ip = Buffer.alloc(48);
  ip[0] = 0x60;
  ip.writeUInt16BE(8, 4);
  ip[6] = 17;
  ip.writeUInt16BE(port, 42);
  return ip;
}

const datagram = fc
  .record({
    version: fc.constantFrom(4 as const, 6 as const),
    kind: fc.constantFrom('syn', 'ack', 'udp6', 'dhcp6', 'icmp6'),
    mss: fc.integer({ min: 0, max: 65535 }),
    pad: fc.integer({ min: 0, max: 3 }),
    length: fc.boolean(),
    offset: fc.option(fc.integer({ min: 0, max: 6 }), { nil: undefined }),
    acfc: fc.boolean(),
    pfc: fc.boolean(),
    other: fc.constantFrom('no', 'tunnel', 'session', 'proto'),
  })
  .map((d) => {
    let ip: Buffer;
    if (d.kind === 'syn' || d.kind === 'ack') ip = tcpPacket(d.version, [...new Array<number>(d.pad).fill(1), 2, 4, d.mss >> 8, d.mss & 0xff], d.kind === 'syn' ? 0x02 : 0x10);
    else if (d.kind === 'udp6') ip = udp6(53);
    else if (d.kind === 'dhcp6') ip = udp6(546);
    else ip = Buffer.from([0x60, 0, 0, 0, 0, 8, 58, 255, ...new Array<number>(40).fill(0)]);
    const v6 = ip[0]! >> 4 === 6;
    return l2tpData({
      length: d.length,
      offset: d.offset,
      acfc: d.acfc,
      pfc: d.pfc,
      tunnel: d.other === 'tunnel' ? TUNNEL + 1 : TUNNEL,
      session: d.other === 'session' ? SESSION + 1 : SESSION,
      proto: d.other === 'proto' ? 0xc021 : v6 ? PPP_IPV6 : PPP_IPV4,
      ip,
    });
  });

const paramsArb = fc.record({ open4: fc.boolean(), open6: fc.boolean(), mss4: fc.integer({ min: 0, max: 1500 }), mss6: fc.integer({ min: 0, max: 1500 }) });

describe('receive classifier in C (rxdata.h) against take() in TypeScript', () => {
  it('takes an IPv4 data message and clamps a SYN', () => {
    const ip = tcpPacket(4, [2, 4, 0x05, 0xb4]);
    const d = l2tpData({ proto: PPP_IPV4, ip });
    const p: Params = { open4: true, open6: true, mss4: 1420, mss6: 1400 };
    assert.deepEqual(native.rxTake(Buffer.from(d), params(p)), [10, ip.length, 1]);
    assert.deepEqual(native.rxTake(Buffer.from(d), params({ ...p, open4: false })), null);
    assert.deepEqual(native.rxTake(l2tpData({ proto: PPP_IPV4, ip, session: 7 }), params(p)), null);
  });

  it('decides and edits as take() does, on valid and mangled datagrams', () => {
    fc.assert(
      fc.property(datagram, paramsArb, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }), fc.nat(), (d, p, flips, cut) => {
        const b = Buffer.from(d);
        for (const [at, v] of flips) b[at % b.length] = v;
        const m = cut % 4 === 0 ? b.subarray(0, cut % (b.length + 1)) : b;
        const c = Buffer.from(m);
        const j = Buffer.from(m);
        assert.deepEqual(native.rxTake(c, params(p)), jsTake(j, p));
        assert.deepEqual(c, j, 'the same bytes after clamping');
      }),
      { numRuns: 5000, seed: 1717 },
    );
  });

  it('takes hostile bytes without crashing', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), paramsArb, (b, p) => {
        const c = Buffer.from(b);
        const j = Buffer.from(b);
        assert.deepEqual(native.rxTake(c, params(p)), jsTake(j, p));
      }),
      { numRuns: 3000, seed: 99 },
    );
  });
});

describe('NativeUdpTransport with the Dataplane: runs classified in C, order kept', () => {
  it('writes data runs to the TUN and hands control and foreign data to the cores in order', async () => {
    const udp = await NativeUdpTransport.open({ address: '127.0.0.1', port: 9 }, '127.0.0.1');
    const sc = createSocket('udp4');
    sc.bind(0, '127.0.0.1');
    await once(sc, 'listening');
    udp.retarget(`127.0.0.1:${sc.address().port}`);
    const events: string[] = [];
    const header = { tunnelId: 1, sessionId: 2, localTunnelId: TUNNEL, localSessionId: SESSION, sequencing: false };
    const dp = new Dataplane({
      tun: {
        writeFrames: (src, desc, n) => {
          for (let i = 0; i < n; i++) events.push(`tun:${src[desc[i * 3]! + 20]}`);
          return n;
        },
      },
      udp: { sendFrames: (_h, _l, _s, _d, n) => n },
      lac: { dataHeader: () => header, dataReceived: () => {}, dataSent: () => {} },
      ppp: { canCarry: () => true },
      mtu: 1460,
    });
    let runs = 0;
    const takeRun = dp.takeRun.bind(dp);
    dp.takeRun = (src, from, count) => {
      runs++;
      return takeRun(src, from, count);
    };
    udp.setSink(dp);
    udp.onDatagram((b) => events.push(`core:${b[0]}`));
    // IPv4 packets whose 21st byte (first payload byte after a 20-byte header) numbers them.
    const data = (n: number) => l2tpData({ proto: PPP_IPV4, ip: Buffer.concat([Buffer.from([0x45, 0, 0, 24, 0, 0, 0, 0, 64, 17]), Buffer.alloc(10), Buffer.from([n, 0, 0, 0])]) });
    const control = Buffer.from([0xc8, 0x02, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0]);
    const sends = [data(1), data(2), control, data(3), l2tpData({ proto: PPP_IPV4, ip: Buffer.alloc(24, 0x45), session: 9 }), data(4)];
    for (const s of sends) sc.send(s, udp.local.port, '127.0.0.1');
    const deadline = Date.now() + 20_000;
    while (events.filter((e) => e.startsWith('tun')).length < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    udp.close();
    sc.close();
    assert.deepEqual(events, ['tun:1', 'tun:2', 'core:200', 'tun:3', 'core:0', 'tun:4']);
    assert.ok(runs > 0, 'the C classifier ran');
    assert.equal(dp.counters.rxPackets, 4);
  });
});

describe('send path in C (udpSendTun) against sendChunk in TypeScript', () => {
  /** A TUN batch as PacketBatch lays it out: packets in a ring, META_STRIDE metadata per slot, slot per packet. */
  function batchOf(packets: Buffer[]) {
    const stride = native.META_STRIDE;
    const ring = Buffer.alloc(packets.length * 2048);
    const meta = new Int32Array(packets.length * stride);
    const slots = new Uint16Array(packets.length);
    packets.forEach((p, i) => {
      p.copy(ring, i * 2048);
      meta[i * stride] = p.length;
      meta[i * stride + native.META_OFFSET] = i * 2048;
      slots[i] = i;
    });
    return { count: packets.length, buffer: ring, meta, slots, offset: (i: number) => meta[i * stride + native.META_OFFSET]!, length: (i: number) => meta[i * stride]! };
  }

  async function run(packets: Buffer[], open6: boolean, useC: boolean) {
    const udp = await NativeUdpTransport.open({ address: '127.0.0.1', port: 9 }, '127.0.0.1');
    const sc = createSocket('udp4');
    sc.bind(0, '127.0.0.1');
    await once(sc, 'listening');
    udp.retarget(`127.0.0.1:${sc.address().port}`);
    const got: Buffer[] = [];
    sc.on('message', (m) => got.push(m));
    const frameUdp = useC ? udp : { sendFrames: udp.sendFrames.bind(udp) };
    const header = { tunnelId: 0x0a0b, sessionId: 0x0c0d, localTunnelId: 1, localSessionId: 2, sequencing: false };
    const dp = new Dataplane({ tun: { writeFrames: () => 0 }, udp: frameUdp, lac: { dataHeader: () => header, dataReceived: () => {}, dataSent: () => {} }, ppp: { canCarry: (p) => p === PPP_IPV4 || open6 }, mtu: 1460 });
    const b = batchOf(packets);
    assert.equal(dp.fromTun(b), true);
    const want = dp.counters.txPackets;
    const deadline = Date.now() + 20_000;
    while (got.length < want && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    udp.close();
    sc.close();
    return { got, counters: dp.counters.snapshot(), drops: { ...dp.counters.drops }, ring: b.buffer };
  }

  it('sends, clamps, drops and counts as the TypeScript path does', async () => {
    const packets = [
      tcpPacket(4, [2, 4, 0x05, 0xb4]), // SYN, clamped to 1420
      tcpPacket(6, [1, 2, 4, 0x05, 0xb4]), // IPv6 SYN: dropped when IPV6CP is not open
      Buffer.from([0x15, 0, 0, 20, ...new Array<number>(16).fill(0)]), // version 1
      tcpPacket(4, [2, 4, 0x05, 0xb4], 0x10), // ACK: MSS left alone
      Buffer.alloc(0),
      tcpPacket(6, [2, 4, 0x05, 0xa0], 0x12), // IPv6 SYN-ACK, clamped to 1400
    ];
    for (const open6 of [false, true]) {
      const js = await run(packets.map((p) => Buffer.from(p)), open6, false);
      const c = await run(packets.map((p) => Buffer.from(p)), open6, true);
      assert.deepEqual(c.counters, js.counters, `counters, open6 ${open6}`);
      assert.deepEqual(c.drops, js.drops, `drops, open6 ${open6}`);
      assert.deepEqual(c.got, js.got, `datagrams, open6 ${open6}`);
      assert.deepEqual(c.ring, js.ring, `clamped in place alike, open6 ${open6}`);
    }
    const c = await run([tcpPacket(4, [2, 4, 0x05, 0xb4])], true, true);
    assert.equal(c.got.length, 1);
    assert.deepEqual([...c.got[0]!.subarray(0, 10)], [0x00, 0x02, 0x0a, 0x0b, 0x0c, 0x0d, 0xff, 0x03, 0x00, 0x21]);
    assert.equal(c.got[0]!.readUInt16BE(10 + 42), 1420, 'MSS clamped to MTU - 40');
    assert.equal(c.counters.mssClamped, 1);
  });
});

describe('TUN opened for offloads that the kernel (or SOFTWIRE_OFFLOADS_OFF) leaves plain', () => {
  it('gets slots that hold whole packets, not the 512-byte slots of the cut ring', () => {
    const topo = new Topology();
    try {
      const ns = topo.ns('tun');
      const script = [
        "const { TunDevice } = require('./src/platform/tun');",
        "const t = TunDevice.open('swt0', { offload: true });",
        "const h = t.handle;",
        'console.log(JSON.stringify({ offloads: t.offloads, slot: h.slotSize, batch: h.batch }));',
        't.close();',
      ].join('\n');
      const out = ns.exec('env', ['SOFTWIRE_OFFLOADS_OFF=vnet-hdr', process.execPath, '--import', 'tsx', '-e', script]);
      const r = JSON.parse(out.trim().split('\n').pop()!) as { offloads: string[]; slot: number; batch: number };
      assert.deepEqual(r.offloads, []);
      assert.ok(r.slot >= 1500, `slot ${r.slot} holds a 1500-byte packet`);
    } finally {
      topo.destroy();
    }
  });
});

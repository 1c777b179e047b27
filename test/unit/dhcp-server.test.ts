import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { after, before, describe, test } from 'node:test';
import { Installer } from '../../src/agent/installer';
import { MAX_POOL, checkRequest, dhcpPool, packageConfig, port67Users, Dhcpv4Server, type Dhcpv4Control } from '../../src/lan/dhcpv4-server';
import { resolveConfig } from '../../src/config/load';
import { createLogger } from '../../src/log';
import type { Netlink } from '../../src/platform/netlink';
import type { Sysctl } from '../../src/platform/sysctl';
import { acceptingNetlink } from '../helpers/installer';

/**
 * The LAN DHCPv4 server: pool and option computation, the packet check in front
 * of the `dhcp` package, and a real server on loopback answering, refusing,
 * surviving garbage and closing its socket.
 */

// eslint-disable-next-line @typescript-eslint/no-require-imports
const protocol = require('dhcp/lib/protocol.js') as { parse(b: Buffer): Reply };

interface Reply {
  op: number;
  xid: number;
  yiaddr: string;
  chaddr: string;
  options: Record<number, unknown>;
}

const MAC_A = [0x02, 0, 0, 0, 0, 0x0a];
const MAC_B = [0x02, 0, 0, 0, 0, 0x0b];

function request(type: number, mac: number[], xid: number, opts: [number, number[]][] = [], ciaddr = [0, 0, 0, 0]): Buffer {
  const b = Buffer.alloc(240);
  b[0] = 1;
  b[1] = 1;
  b[2] = 6;
  b.writeUInt32BE(xid, 4);
  Buffer.from(ciaddr).copy(b, 12);
  Buffer.from(mac).copy(b, 28);
  b.writeUInt32BE(0x63825363, 236);
  const o: number[] = [53, 1, type];
  for (const [code, v] of opts) o.push(code, v.length, ...v);
  o.push(255);
  return Buffer.concat([b, Buffer.from(o)]);
}
const ip = (s: string) => s.split('.').map(Number);

describe('pool and options', () => {
  test('a /24 leases everything but network, broadcast and the router', () => {
    const p = dhcpPool('192.168.77.1', 24);
    assert.deepEqual(p, {
      address: '192.168.77.1',
      prefixLength: 24,
      netmask: '255.255.255.0',
      broadcast: '192.168.77.255',
      first: '192.168.77.1',
      last: '192.168.77.254',
      size: 253,
    });
    assert.equal(dhcpPool('10.1.2.254', 24).size, 253);
    assert.deepEqual([dhcpPool('10.1.2.5', 30).first, dhcpPool('10.1.2.5', 30).last, dhcpPool('10.1.2.5', 30).size], ['10.1.2.5', '10.1.2.6', 1]);
  });

  test('large subnets are capped; unusable ones are refused', () => {
    const p = dhcpPool('10.0.0.1', 16);
    assert.equal(p.size, MAX_POOL);
    assert.equal(p.last, '10.0.4.1', 'one more: the router sits inside the range');
    assert.equal(p.broadcast, '10.0.255.255');
    const q = dhcpPool('10.0.200.1', 16);
    assert.deepEqual([q.first, q.last, q.size], ['10.0.0.1', '10.0.4.0', MAX_POOL]);
    assert.throws(() => dhcpPool('10.0.0.1', 31), /\/8 to \/30/);
    assert.throws(() => dhcpPool('10.0.0.1', 32), /\/8 to \/30/);
    assert.throws(() => dhcpPool('10.0.0.0', 24), /network or broadcast/);
    assert.throws(() => dhcpPool('10.0.0.255', 24), /network or broadcast/);
    assert.throws(() => dhcpPool('fe80::1', 64), /not an IPv4 address/);
  });

  test('package config: subnet broadcast (never 255.255.255.255), router and DNS, T1/T2 from the lease time', () => {
    const c = packageConfig(dhcpPool('192.168.77.1', 24), ['198.51.100.53', '198.51.100.54'], 3600);
    assert.deepEqual(c, {
      range: ['192.168.77.1', '192.168.77.254'],
      randomIP: false,
      netmask: '255.255.255.0',
      router: ['192.168.77.1'],
      server: '192.168.77.1',
      broadcast: '192.168.77.255',
      dns: ['198.51.100.53', '198.51.100.54'],
      leaseTime: 3600,
      renewalTime: 1800,
      rebindingTime: 3150,
    });
  });

  test('port 67 users are found in /proc/net/udp', () => {
    const head = '   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops';
    const line = (local: string) => `  12: ${local} 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1234 2 0000000000000000 0`;
    assert.deepEqual(port67Users([head, line('0100007F:0035'), line('00000000:0044')].join('\n')), []);
    assert.deepEqual(port67Users([head, line('00000000:0043'), line('014DA8C0:0043'), ''].join('\n')), ['0.0.0.0:67', '192.168.77.1:67']);
    assert.deepEqual(port67Users(''), []);
  });
});

describe('request check', () => {
  test('a DISCOVER is rebuilt: message type first, unknown options and unservable PRL entries dropped', () => {
    const r = checkRequest(
      request(1, MAC_A, 7, [
        [55, [1, 3, 6, 52, 53, 56, 15]],
        [81, [0, 0, 0, 104]], // FQDN: unknown to the package, which would print a line per packet
        [50, ip('192.168.77.9')],
        [50, ip('192.168.77.10')], // repeated: the first counts
        [54, [1, 2]], // wrong length: dropped
      ]),
    );
    assert.ok(typeof r !== 'string', String(r));
    assert.equal(r.type, 1);
    assert.equal(r.chaddr, '02-00-00-00-00-0A');
    assert.equal(r.requested, '192.168.77.9');
    assert.equal(r.serverId, undefined);
    assert.deepEqual([...r.bytes.subarray(240)], [53, 1, 1, 55, 4, 1, 3, 6, 15, 50, 4, 192, 168, 77, 9, 255]);
  });

  test('malformed requests name why they are dropped', () => {
    const good = request(1, MAC_A, 1);
    const cases: [string, Buffer, RegExp][] = [
      ['empty', Buffer.alloc(0), /short/],
      ['truncated header', good.subarray(0, 100), /short/],
      ['reply', Buffer.from(good).fill(2, 0, 1), /BOOTREQUEST/],
      ['token ring', Buffer.from(good).fill(6, 1, 2), /Ethernet/],
      ['hlen 16', Buffer.from(good).fill(16, 2, 3), /Ethernet/],
      ['relayed', Buffer.from(good).fill(1, 27, 28), /relay/],
      ['no cookie', Buffer.from(good).fill(0, 236, 240), /cookie/],
      ['no end', good.subarray(0, good.length - 1), /end/],
      ['option past the end', Buffer.concat([good.subarray(0, 243), Buffer.from([61, 200, 1, 2])]), /past the end/],
      ['no type', Buffer.concat([good.subarray(0, 240), Buffer.from([0, 0, 255])]), /message type/],
      ['type of length 2', Buffer.concat([good.subarray(0, 240), Buffer.from([53, 2, 1, 1, 255])]), /message type/],
    ];
    for (const [name, b, want] of cases) {
      const r = checkRequest(b);
      assert.equal(typeof r, 'string', name);
      assert.match(r as string, want, name);
    }
  });

  test('the raw package throws from its socket handler on a PRL naming option 52: why the guard exists', () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const dhcp = require('dhcp') as { createServer(c: unknown): { _sock: Socket } };
    const srv = dhcp.createServer(packageConfig(dhcpPool('192.168.77.1', 24), ['192.0.2.53'], 3600));
    const handler = srv._sock.listeners('message')[0] as (b: Buffer, r: unknown) => void;
    assert.throws(() => handler.call(srv._sock, request(1, MAC_A, 1, [[55, [1, 52]]]), { address: '0.0.0.0' }), /Invalid option/);
    srv._sock.close();
  });
});

describe('server on loopback', () => {
  const base = 30000 + Math.floor(Math.random() * 20000);
  const SERVER_PORT = base;
  const CLIENT_PORT = base + 1;
  const replies: Reply[] = [];
  let client: Socket;
  const log = createLogger({ level: 'silent' });
  const netlink = (address: string, prefixLength: number) =>
    ({ listAddresses: async () => [{ family: 4, address, prefixLength, ifindex: 1, scope: 0 }] }) as unknown as Netlink;
  const noUdp = () => '   sl  local_address\n';
  let clock = Date.now();
  const mk = (address = '127.0.0.1', prefixLength = 8, extra: Partial<ConstructorParameters<typeof Dhcpv4Server>[0]> = {}) =>
    new Dhcpv4Server({
      lan: 'lo',
      netlink: netlink(address, prefixLength),
      log,
      udpTable: noUdp,
      port: SERVER_PORT,
      clientPort: CLIENT_PORT,
      bindAddress: '127.0.0.1',
      now: () => clock,
      ...extra,
    });

  before(async () => {
    client = createSocket({ type: 'udp4', reuseAddr: true });
    client.on('message', (m) => replies.push(protocol.parse(m)));
    await new Promise<void>((r) => client.bind(CLIENT_PORT, '0.0.0.0', () => r()));
  });
  after(() => client.close());

  const send = (b: Buffer) => new Promise<void>((r) => client.send(b, SERVER_PORT, '127.0.0.1', () => r()));
  async function exchange(b: Buffer, xid: number, ms = 1000): Promise<Reply | undefined> {
    await send(b);
    const end = Date.now() + ms;
    while (Date.now() < end) {
      const r = replies.find((x) => x.xid === xid);
      if (r) return r;
      await new Promise((res) => setTimeout(res, 5));
    }
    return undefined;
  }
  const silent = async (b: Buffer, xid: number) => assert.equal(await exchange(b, xid, 200), undefined, 'no reply');

  test('DISCOVER/REQUEST get OFFER/ACK from the pool with router, DNS and lease time; DNS updates apply', async (t) => {
    const s = mk();
    t.after(() => s.stop());
    await s.start(['198.51.100.53']);
    assert.equal(s.active, true);
    const offer = await exchange(request(1, MAC_A, 101, [[55, [1, 3, 6, 51, 54, 53, 52, 56]]]), 101);
    assert.ok(offer, 'offer received');
    assert.equal(offer.op, 2);
    assert.equal(offer.options[53], 2);
    assert.equal(offer.yiaddr, '127.0.0.2', 'first free address, not the router');
    assert.equal(offer.chaddr, '02-00-00-00-00-0A');
    assert.deepEqual(offer.options[3], ['127.0.0.1']);
    assert.deepEqual(offer.options[6], ['198.51.100.53']);
    assert.equal(offer.options[54], '127.0.0.1');
    assert.equal(offer.options[51], 3600);
    assert.equal(offer.options[1], '255.0.0.0');
    s.setDns(['198.51.100.1', '198.51.100.2']);
    const ack = await exchange(request(3, MAC_A, 102, [[50, ip('127.0.0.2')], [54, ip('127.0.0.1')]]), 102);
    assert.ok(ack, 'ack received');
    assert.equal(ack.options[53], 5);
    assert.equal(ack.yiaddr, '127.0.0.2');
    assert.deepEqual(ack.options[6], ['198.51.100.1', '198.51.100.2']);
    // A second client gets the next address; a renewal keeps the first.
    const offerB = await exchange(request(1, MAC_B, 103), 103);
    assert.equal(offerB?.yiaddr, '127.0.0.3');
    const renew = await exchange(request(3, MAC_A, 104, [], ip('127.0.0.2')), 104);
    assert.equal(renew?.options[53], 5);
    assert.equal(renew?.yiaddr, '127.0.0.2');
    assert.deepEqual({ offers: s.stats.offers, acks: s.stats.acks, errors: s.stats.errors }, { offers: 2, acks: 2, errors: 0 });
  });

  test('requests for another server are ignored; taken or foreign addresses are NAKed; RELEASE frees', async (t) => {
    const s = mk();
    t.after(() => s.stop());
    await s.start([]);
    assert.equal((await exchange(request(3, MAC_A, 201, [[50, ip('127.0.0.2')], [54, ip('127.0.0.1')]]), 201))?.options[53], 5);
    await silent(request(3, MAC_B, 202, [[50, ip('127.0.0.7')], [54, ip('127.0.0.99')]]), 202);
    assert.equal((await exchange(request(3, MAC_B, 203, [[50, ip('127.0.0.2')]]), 203))?.options[53], 6, 'held by A: NAK');
    assert.equal((await exchange(request(3, MAC_B, 204, [[50, ip('10.0.0.5')]]), 204))?.options[53], 6, 'another network: NAK');
    assert.equal((await exchange(request(3, MAC_B, 205, [[50, ip('127.0.0.1')]]), 205))?.options[53], 6, 'the router: NAK');
    // No DNS known: the offer carries no DNS option rather than an empty or made-up one.
    const offer = await exchange(request(1, MAC_B, 206, [[55, [6]]]), 206);
    assert.ok(offer, 'offer received');
    assert.equal(offer.yiaddr, '127.0.0.3');
    assert.equal(offer.options[6], undefined);
    await send(request(7, MAC_A, 207, [[54, ip('127.0.0.1')]], ip('127.0.0.2')));
    const again = await exchange(request(1, [0x02, 0, 0, 0, 0, 0x0c], 208), 208);
    assert.equal(again?.yiaddr, '127.0.0.2', 'released address reused');
    assert.equal(s.stats.naks, 3);
  });

  test('a full pool drops new clients until a lease expires; leases survive stop/start', async (t) => {
    const s = mk('127.0.0.1', 30); // one leasable address: 127.0.0.2
    t.after(() => s.stop());
    await s.start(['192.0.2.53']);
    assert.equal((await exchange(request(3, MAC_A, 301, [[50, ip('127.0.0.2')]]), 301))?.yiaddr, '127.0.0.2');
    await silent(request(1, MAC_B, 302), 302);
    await s.stop();
    await s.start(['192.0.2.53']);
    await silent(request(1, MAC_B, 303), 303);
    assert.equal((await exchange(request(3, MAC_B, 304, [[50, ip('127.0.0.2')]]), 304))?.options[53], 6, 'still held by A after restart');
    clock += 3601_000;
    assert.equal((await exchange(request(1, MAC_B, 305), 305))?.yiaddr, '127.0.0.2', 'A expired');
  });

  test('garbage, truncated and bit-flipped packets: counted and dropped, the server keeps answering', async (t) => {
    const s = mk();
    t.after(() => s.stop());
    await s.start(['192.0.2.53']);
    let seed = 12345;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed % n;
    };
    const valid = request(3, MAC_A, 400, [[55, [1, 3, 6, 12, 15, 28, 42, 52, 53, 56, 116, 145]], [61, [1, ...MAC_A]], [50, ip('127.0.0.9')], [57, [5, 220]]]);
    for (let i = 0; i < 1500; i++) {
      let b: Buffer;
      switch (i % 3) {
        case 0:
          b = Buffer.from(Array.from({ length: rnd(600) }, () => rnd(256)));
          if (b.length > 240) b.writeUInt32BE(0x63825363, 236);
          if (b.length > 3) b.set([1, 1, 6], 0);
          break;
        case 1:
          b = valid.subarray(0, rnd(valid.length));
          break;
        default:
          b = Buffer.from(valid);
          for (let k = 0; k < 1 + rnd(4); k++) b[240 + rnd(b.length - 240)] = rnd(256);
      }
      await send(b);
      // Send callbacks come back without a trip through the poll phase: let the server read, or the kernel drops the rest.
      await new Promise((r) => setImmediate(r));
    }
    const ok = await exchange(request(1, MAC_B, 499, [[55, [1, 3, 6]]]), 499, 3000);
    assert.ok(ok, `still answering after the garbage: ${JSON.stringify(s.stats)}`);
    assert.equal(ok.options[53], 2);
    assert.ok(s.stats.received >= 1500, `received ${s.stats.received}`);
    assert.ok(s.stats.dropped > 500, `dropped ${s.stats.dropped}`);
  });

  test('refuses to start when something holds UDP port 67 (SO_REUSEADDR would let both answer)', async () => {
    const lines: string[] = [];
    const dest = { write: (l: string) => (lines.push(l), true) } as unknown as NodeJS.WritableStream;
    const busy = () => '   sl  local_address\n   0: 00000000:0043 00000000:0000 07 0 0 0 0 0 0 0 999 2 0 0\n';
    const s = mk('127.0.0.1', 8, { udpTable: busy, log: createLogger({ level: 'info', destination: dest }) });
    await s.start(['192.0.2.53']);
    assert.equal(s.active, false);
    assert.match(lines.join(''), /DHCPv4 server not started: UDP port 67 is already in use/);
    assert.match(lines.join(''), /"sockets":\["0\.0\.0\.0:67"\]/);
    await silent(request(1, MAC_A, 501), 501);
  });

  test('no LAN IPv4 address: not started; stop() closes the socket (the port binds exclusively again)', async () => {
    const none = new Dhcpv4Server({ lan: 'lo', netlink: { listAddresses: async () => [] } as unknown as Netlink, log, udpTable: noUdp, port: SERVER_PORT });
    await none.start([]);
    assert.equal(none.active, false);
    const unbindable = mk('127.0.0.1', 8, { bindAddress: '192.0.2.77' }); // not local: EADDRNOTAVAIL
    await unbindable.start([]);
    assert.equal(unbindable.active, false);
    assert.equal(unbindable.stats.errors, 1);
    const s = mk();
    await s.start([]);
    assert.equal(s.active, true);
    await s.stop();
    assert.equal(s.active, false);
    const probe = createSocket({ type: 'udp4' });
    await new Promise<void>((res, rej) => {
      probe.once('error', rej);
      probe.bind(SERVER_PORT, '127.0.0.1', () => res());
    });
    probe.close();
  });
});

describe('installer lifecycle', () => {
  function lab(provision?: 'agent' | 'netifd') {
    const calls: string[] = [];
    const nl = acceptingNetlink();
    const sysctl = { setIpv6: async () => undefined, write: async () => undefined } as unknown as Sysctl;
    const dhcpv4: Dhcpv4Control = {
      start: async (dns) => void calls.push(`start ${dns.join(',')}`),
      setDns: (dns) => void calls.push(`dns ${dns.join(',')}`),
      stop: async () => void calls.push('stop'),
    };
    const ins = new Installer(nl, sysctl, createLogger({ level: 'silent' }), { routeMetric: 1, ipv4DefaultRoute: true, scAddress: '192.0.2.1', dhcpv4, provision });
    ins.tunUp('sw0', 1460, null);
    return { ins, calls };
  }

  test('started by IPCP, DNS updated on renegotiation, stopped by clear()', async () => {
    const l = lab();
    l.ins.ipv4('198.51.100.7', '198.51.100.1', ['198.51.100.53']);
    l.ins.ipv4('198.51.100.7', '198.51.100.1', ['198.51.100.54']);
    await l.ins.clear();
    await l.ins.clear();
    assert.deepEqual(l.calls, ['start 198.51.100.53', 'dns 198.51.100.54', 'stop']);
  });

  test('not with netifd provisioning', async () => {
    const l = lab('netifd');
    l.ins.ipv4('198.51.100.7', '198.51.100.1', ['198.51.100.53']);
    await l.ins.clear();
    assert.deepEqual(l.calls, []);
  });
});

describe('config', () => {
  const warn = (o: Record<string, unknown>) => resolveConfig({ sc: ['192.0.2.1'], dhcpv4: true, ...o }, {}, {}).warnings.filter((w) => w.startsWith('dhcpv4'));

  test('honoured in router mode with IPv4 over the softwire and provision agent; otherwise a warning says why not', () => {
    assert.equal(resolveConfig({}, {}, {}).config.dhcpv4, false, 'off by default');
    assert.deepEqual(warn({ mode: 'router', ncp: 'ipv4', lan: ['br-lan'] }), []);
    assert.deepEqual(warn({ mode: 'router', ncp: 'ipv6', ipv4DefaultRoute: true, lan: ['br-lan'] }), []);
    assert.deepEqual(warn({ mode: 'router', ncp: 'dual', lan: ['br-lan'], dhcpv4: false }), []);
    assert.deepEqual(warn({ mode: 'host', ncp: 'ipv4' }), ['dhcpv4: ignored: it serves the LAN in router mode only']);
    assert.match(warn({ mode: 'router', ncp: 'ipv6', lan: ['br-lan'] })[0] ?? '', /IPv4 does not run over the softwire/);
    assert.match(warn({ mode: 'router', ncp: 'dual', lan: ['br-lan'], provision: 'netifd' })[0] ?? '', /provision netifd/);
    assert.match(warn({ mode: 'router', ncp: 'dual' })[0] ?? '', /no lan interface/);
  });
});

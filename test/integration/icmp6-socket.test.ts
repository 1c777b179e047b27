import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { formatIpv6, Icmp6Socket } from '../../src/platform/icmp6-socket';
import { link, Topology, waitFor } from '../helpers/netns';
import { PEER_PY, runIn, startIn, tsFixture } from './fixtures/ns-child';

/**
 * Two namespaces joined by a veth pair: "host" runs an independent ICMPv6 peer
 * (Python raw sockets) that solicits a router; "router" runs Icmp6Socket in a
 * fixture process (a socket acts in the namespace it was created in) that answers
 * with Router Advertisements. Each side reports what it saw and the test checks
 * both ends.
 */

interface IpAddr {
  ifindex: number;
  addr_info: { family: string; local: string; scope: string; tentative?: boolean }[];
}

function linkLocal(addrs: IpAddr[]): string | undefined {
  return addrs[0]?.addr_info.find((a) => a.family === 'inet6' && a.scope === 'link' && !a.tentative)?.local;
}

// Every step has its own deadline; this bound on the whole suite is only a backstop. On a
// fresh, loaded machine (tsx compiling each fixture with a cold cache) 30 s was too short.
describe('Icmp6Socket', { timeout: 180_000 }, () => {
  test('receives a Router Solicitation on ff02::2 and answers with hop-limit-255 Router Advertisements', async (t) => {
    const topo = new Topology();
    t.after(() => topo.destroy());
    const host = topo.ns('rshost');
    const router = topo.ns('rsrtr');
    for (const ns of [host, router]) {
      // No DAD (link-locals usable at once) and no kernel RS: the only solicitation is the peer's.
      ns.sysctl('net.ipv6.conf.default.accept_dad', '0');
      ns.sysctl('net.ipv6.conf.default.router_solicitations', '0');
    }
    const { a: hostIf, b: routerIf } = link(host, undefined, router, undefined);
    const hostLl = await waitFor('host link-local', 5_000, () => linkLocal(host.ipJson<IpAddr[]>(['addr', 'show', hostIf])));
    const routerAddrs = router.ipJson<IpAddr[]>(['addr', 'show', routerIf]);
    const routerLl = await waitFor('router link-local', 5_000, () =>
      linkLocal(router.ipJson<IpAddr[]>(['addr', 'show', routerIf])),
    );

    const rtr = startIn(router, process.execPath, [...tsFixture('icmp6-router.ts'), routerIf], 20_000);
    const ready = await rtr.line<{ ifindex: number }>((l) => 'ready' in l);
    assert.equal(ready.ifindex, routerAddrs[0]!.ifindex);

    const peer = await runIn(host, 'python3', [PEER_PY, 'rs', hostIf, '10'], 15_000);
    const done = await rtr.done;

    assert.equal(done.code, 0, `router fixture: ${done.stderr}`);
    const rs = (done.lines.find((l) => 'rs' in (l as object)) as { rs: Record<string, unknown> }).rs;
    assert.deepEqual(rs, { type: 133, code: 0, from: hostLl, to: 'ff02::2', ifindex: ready.ifindex, hopLimit: 255, length: 8 });
    assert.deepEqual(done.lines.at(-1), { sent: [true, true] });

    assert.equal(peer.code, 0, `peer: ${JSON.stringify(peer.lines)} ${peer.stderr}`);
    const { ras } = peer.lines.at(-1) as { ras: { from: string; to: string; hopLimit: number; reachable: number }[] };
    // The peer's raw socket only gets messages whose checksum the kernel verified.
    const byMark = new Map(ras.map((ra) => [ra.reachable, ra]));
    assert.deepEqual(byMark.get(1), { from: routerLl, to: hostLl, hopLimit: 255, reachable: 1, length: 16 });
    assert.deepEqual(byMark.get(2), { from: routerLl, to: 'ff02::1', hopLimit: 255, reachable: 2, length: 16 });
  });

  test('errors carry code, errno and the operation', () => {
    assert.throws(() => Icmp6Socket.open('swnosuchif0'), { code: 'ENODEV', errno: -19, message: /icmp6Open\(swnosuchif0\)/ });
    assert.throws(() => Icmp6Socket.open('x'.repeat(16)), { code: 'EINVAL', message: /icmp6Open/ });
    const sock = Icmp6Socket.open('lo');
    try {
      assert.ok(sock.ifindex > 0);
      assert.throws(() => sock.send(Buffer.alloc(8), 'not-an-address'), {
        code: 'EINVAL',
        message: /icmp6Send: 'not-an-address'/,
      });
      assert.throws(() => sock.joinGroup('ff02::zz'), { code: 'EINVAL', message: /icmp6Membership/ });
      assert.throws(() => sock.setTypeFilter([256]), { code: 'ERR_OUT_OF_RANGE' });
    } finally {
      sock.close();
    }
    assert.throws(() => sock.send(Buffer.alloc(8), '::1'), { code: 'EBADF', errno: -9, message: /icmp6Send: handle is closed/ });
  });

  test('formatIpv6 writes the canonical RFC 5952 form (as the WHATWG URL parser does)', () => {
    const group = fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 0, max: 0xffff }));
    fc.assert(
      fc.property(fc.array(group, { minLength: 8, maxLength: 8 }), (groups) => {
        const bytes = Buffer.alloc(16);
        for (const [i, g] of groups.entries()) bytes.writeUInt16BE(g, 2 * i);
        const text = formatIpv6(bytes);
        assert.equal(text, new URL(`http://[${text}]/`).hostname.slice(1, -1));
        assert.equal(text, new URL(`http://[${groups.map((g) => g.toString(16)).join(':')}]/`).hostname.slice(1, -1));
      }),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 500) },
    );
    assert.equal(formatIpv6(Buffer.from('fe800000000000000000000000000001', 'hex')), 'fe80::1');
    assert.equal(formatIpv6(Buffer.from('20010db8000000010000000000000000', 'hex')), '2001:db8:0:1::');
    assert.equal(formatIpv6(Buffer.alloc(16)), '::');
  });
});

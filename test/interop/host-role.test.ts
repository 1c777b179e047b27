import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { DEFAULT_USER, L2tpnsSc, l2tpnsAvailable } from '../lab/l2tpns';
import { link, type Netns, waitFor } from '../lab/netns';
import { scLayout } from '../lab/topology';
import { AgentProc } from '../helpers/agent-proc';

/**
 * The host role end to end: the agent numbers only itself (SLAAC on the softwire),
 * takes DNS from the SC, routes by default through the softwire, and leaves every
 * other interface and the forwarding switch alone even though the SC would
 * delegate a prefix (the default user has one).
 */

const avail = l2tpnsAvailable();
const skip = avail.ok ? false : avail.message;

interface Route {
  dst: string;
  dev?: string;
  type?: string;
}

const routes6 = (ns: Netns) => ns.ipJson<Route[]>(['-6', 'route', 'show', 'table', 'all']);
const forwarding = (ns: Netns) => ns.exec('sysctl', ['-n', 'net.ipv6.conf.all.forwarding']).trim();

describe('host role against l2tpns', { skip }, () => {
  test('global address, DNS in status and resolv file, default route; no LAN touched, no prefix asked for', async (t) => {
    const lay = scLayout();
    t.after(() => lay.topo.destroy());
    // A second interface in cpe that a router would number; the host role must not.
    const other = lay.topo.ns('other');
    const veth = link(lay.cpe, undefined, other, undefined);
    const sc = await L2tpnsSc.start(lay.sc, { bindAddress: lay.scAddress, ipv6Dns: ['2001:db8:200::53', '2001:db8:200::54'] });
    t.after(async () => {
      await sc.stop();
      sc.cleanup();
    });
    assert.equal(forwarding(lay.cpe), '0');

    const a = AgentProc.start(lay.cpe, ['--sc', lay.scAddress, '--user', DEFAULT_USER.name, '--mode', 'host'], { password: DEFAULT_USER.password });
    t.after(() => a.stop());
    // "up" means usable: the first status that says up already has the address, the route and the DNS
    // (a script doing `softwire wait --state up && curl -6 ...` must not race the SLAAC address).
    const up = await a.waitState('up', 15_000);
    assert.ok(up.ipv6?.address && up.ipv6.defaultRoute && up.ipv6.dns.length > 0, `up before usable: ${JSON.stringify(up.ipv6)}`);
    assert.equal(up.degraded, null);
    for (const k of ['dial', 'tunnel', 'session', 'lcp', 'auth', 'ncp', 'address'] as const) assert.ok(up.phases?.[k], `phase ${k} stamped: ${JSON.stringify(up.phases)}`);
    assert.ok(Date.parse(up.phases!.dial!) <= Date.parse(up.phases!.address!));
    const s = await waitFor('global address and DNS in status', 10_000, async () => {
      const st = await a.status();
      return st.ipv6?.address && st.ipv6.dns.length > 0 && st.ipv6.defaultRoute ? st : null;
    });
    assert.equal(s.ipv6!.address, '2001:db8:200:0:c633:6480::');
    assert.deepEqual(s.ipv6!.dns, ['2001:db8:200::53', '2001:db8:200::54']);
    assert.equal(s.ipv6!.delegatedPrefix, null, 'a host asks for no prefix');
    assert.deepEqual(s.ipv6!.lan, []);

    // The resolv file holds the SC's IPv6 servers (RA RDNSS and DHCPv6). IPCP's IPv4 servers stay
    // out: an IPv6 softwire does not route IPv4, so they would be unreachable.
    const resolvFile = join(a.dir, 'resolv.conf');
    const resolv = await waitFor('resolv file', 5000, () => (existsSync(resolvFile) ? readFileSync(resolvFile, 'utf8') : null));
    const servers = resolv
      .split('\n')
      .filter((l) => l.startsWith('nameserver '))
      .map((l) => l.slice('nameserver '.length));
    assert.deepEqual(servers, ['2001:db8:200::53', '2001:db8:200::54'], resolv);
    assert.match(resolv, /^# Written by softwire/);

    const addrs = lay.cpe.ipJson<{ addr_info: { local: string; prefixlen: number }[] }[]>(['-6', 'addr', 'show', 'dev', 'sw0', 'scope', 'global']);
    assert.ok(
      addrs[0]?.addr_info.some((x) => x.local === '2001:db8:200:0:c633:6480::' && x.prefixlen === 64),
      JSON.stringify(addrs),
    );
    const r = routes6(lay.cpe);
    assert.ok(
      r.some((x) => x.dst === 'default' && x.dev === 'sw0'),
      `default route via sw0: ${JSON.stringify(r)}`,
    );
    assert.deepEqual(
      r.filter((x) => x.type === 'unreachable' && x.dst !== 'default'),
      [],
      'no unreachable route: nothing was delegated',
    );
    assert.equal(forwarding(lay.cpe), '0', 'forwarding untouched');
    const otherAddrs = lay.cpe.ipJson<{ addr_info: unknown[] }[]>(['-6', 'addr', 'show', 'dev', veth.a, 'scope', 'global']);
    assert.deepEqual(otherAddrs[0]?.addr_info ?? [], [], 'no address put on another interface');
    lay.cpe.exec('ping', ['-6', '-c', '1', '-W', '2', '2001:db8:200::1']);
    // The RA says M=1 O=1: RFC 5571 5.3, a host Solicits and Requests an address (IA_NA),
    // and no prefix (issue 16 item 1). l2tpns logs every DHCPv6 message it gets and each option in it.
    await sc.waitForLog(/Got DHCPv6 message Type: Request\(3\)/, 5000);
    assert.match(sc.log(), /Got DHCPv6 message Type: Solicit\(1\)/);
    assert.doesNotMatch(sc.log(), /D6_OPT_IA_PD/);

    const { code, tookMs } = await a.stop();
    t.diagnostic(`graceful shutdown took ${tookMs} ms`);
    assert.equal(code, 0, a.tail());
    assert.ok(tookMs < 3000, `shutdown within 3 s (${tookMs} ms)`);
    assert.equal(existsSync(resolvFile), false, 'resolv file removed');
    assert.deepEqual(
      routes6(lay.cpe).filter((x) => x.dev === 'sw0'),
      [],
    );
    assert.equal(forwarding(lay.cpe), '0');
    assert.ok(!a.lines.some((l) => l.level >= 50), `no errors logged:\n${a.tail()}`);
  });
});

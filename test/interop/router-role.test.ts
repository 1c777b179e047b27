import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { prefixContains } from '../../src/ipv6/address';
import { DEFAULT_USER, L2tpnsSc, l2tpnsAvailable } from '../lab/l2tpns';
import { link, type Netns, waitFor } from '../lab/netns';
import { scLayout, type ScLayout } from '../lab/topology';
import { AgentProc } from '../helpers/agent-proc';

/**
 * The router role end to end (issue 5): the agent takes a /56 from l2tpns by
 * DHCPv6 PD, numbers a LAN interface from it, announces it with its own RAs, and
 * a host on that LAN that has nothing configured reaches the SC's side through
 * the softwire. Three namespaces: sc (l2tpns), cpe (the agent), lan (the host).
 */

const avail = l2tpnsAvailable();
const skip = avail.ok ? false : avail.message;

type After = { after: (fn: () => unknown) => void };

interface Addr {
  ifname: string;
  addr_info: { family: string; local: string; prefixlen: number; scope: string; valid_life_time?: number; preferred_life_time?: number }[];
}
interface Route {
  dst: string;
  dev?: string;
  type?: string;
  gateway?: string;
  protocol?: string;
}

const globals = (ns: Netns, dev: string) =>
  ns.ipJson<Addr[]>(['-6', 'addr', 'show', 'dev', dev, 'scope', 'global'])[0]?.addr_info ?? [];
const routes6 = (ns: Netns) => ns.ipJson<Route[]>(['-6', 'route', 'show', 'table', 'all']);
const forwarding = (ns: Netns) => ns.exec('sysctl', ['-n', 'net.ipv6.conf.all.forwarding']).trim();

interface RouterLab {
  lay: ScLayout;
  sc: L2tpnsSc;
  lanHost: Netns;
  /** The LAN interface in cpe (the agent's --lan). */
  cpeLan: string;
  /** The LAN host's end of the veth. */
  hostDev: string;
}

/** scLayout() plus a LAN host joined to cpe by a veth, with no address configured on either end. */
async function routerLab(t: After): Promise<RouterLab> {
  const lay = scLayout();
  t.after(() => lay.topo.destroy());
  const lanHost = lay.topo.ns('lan');
  const veth = link(lay.cpe, undefined, lanHost, undefined);
  // A plain host: it autoconfigures from whatever RAs it hears and routes nothing.
  lanHost.sysctl('net.ipv6.conf.all.forwarding', '0');
  lanHost.sysctl(`net.ipv6.conf.${veth.b}.accept_ra`, '2');
  lanHost.sysctl(`net.ipv6.conf.${veth.b}.autoconf`, '1');
  // l2tpns hands out infinite lifetimes unless told otherwise; finite ones show they are carried through.
  const sc = await L2tpnsSc.start(lay.sc, {
    bindAddress: lay.scAddress,
    extra: ['set dhcp6_preferred_lifetime 3600', 'set dhcp6_valid_lifetime 7200'],
  });
  t.after(async () => {
    await sc.stop();
    sc.cleanup();
  });
  return { lay, sc, lanHost, cpeLan: veth.a, hostDev: veth.b };
}

function startRouter(t: After, lab: RouterLab): AgentProc {
  const a = AgentProc.start(
    lab.lay.cpe,
    ['--sc', lab.lay.scAddress, '--user', DEFAULT_USER.name, '--mode', 'router', '--lan', lab.cpeLan, '--ra', 'builtin', '--log-level', 'debug'],
    { password: DEFAULT_USER.password },
  );
  t.after(() => a.stop());
  return a;
}

/** Where provisioning time goes: each milestone of the agent log, in ms since the process was spawned. */
function timeline(t: { diagnostic: (m: string) => void }, a: AgentProc, spawnedAt: number): void {
  const milestones = /effective configuration|dialling SC|tunnel up|session up|authenticated|IPV6CP up|IPCP up|softwire up|delegated prefix|\(SLAAC\)|LAN numbered/;
  for (const l of a.lines) if (milestones.test(l.msg)) t.diagnostic(`+${Date.parse(String(l.time)) - spawnedAt} ms ${l.msg}`);
}

/** After shutdown: nothing of the agent's left in cpe, forwarding as it was before. */
function assertCpeClean(lab: RouterLab, resolvFile: string): void {
  const { cpe } = lab.lay;
  assert.deepEqual(globals(cpe, lab.cpeLan), [], 'LAN address removed');
  const left = routes6(cpe).filter((x) => x.dst === '2001:db8:100::/56' || x.dev === 'sw0');
  assert.deepEqual(left, [], 'unreachable and default routes removed');
  assert.throws(() => cpe.ip(['link', 'show', 'sw0']), /does not exist/);
  assert.equal(existsSync(resolvFile), false, 'resolv file removed');
  assert.equal(forwarding(cpe), '0', 'forwarding back as it was');
}

describe('router role against l2tpns', { skip }, () => {
  test('PD /56 numbers the LAN, a LAN host autoconfigures and reaches the SC side; SIGTERM removes it all', async (t) => {
    const lab = await routerLab(t);
    const { lay, lanHost, cpeLan, hostDev, sc } = lab;
    assert.equal(forwarding(lay.cpe), '0');

    const t0 = Date.now();
    const a = startRouter(t, lab);
    await a.waitState('up', 15_000);

    // The delegated prefix reaches status with the lifetimes the SC gave (not infinite, not zero).
    const s = await waitFor('delegated prefix, global address and LAN in status', 10_000, async () => {
      const st = await a.status();
      return st.ipv6?.delegatedPrefix && st.ipv6.lan.length > 0 && st.ipv6.address ? st : null;
    });
    const dp = s.ipv6!.delegatedPrefix!;
    assert.equal(`${dp.prefix}/${dp.length}`, DEFAULT_USER.delegatedPrefix);
    const leftMs = (iso: string | null) => (iso === null ? Infinity : Date.parse(iso) - Date.now());
    assert.ok(leftMs(dp.preferredUntil) > 3_500_000 && leftMs(dp.preferredUntil) <= 3_600_000, `preferred until ${dp.preferredUntil}`);
    assert.ok(leftMs(dp.validUntil) > 7_100_000 && leftMs(dp.validUntil) <= 7_200_000, `valid until ${dp.validUntil}`);
    assert.equal(s.ipv6!.address, '2001:db8:200:0:c633:6480::', 'SLAAC address on the softwire');
    assert.deepEqual(s.ipv6!.lan, [{ ifname: cpeLan, prefix: '2001:db8:100::/64', address: '2001:db8:100::1' }]);

    // cpe: the router address in sub-prefix 0 with the lease's lifetimes.
    const lanAddr = await waitFor('router address on the LAN', 5000, () =>
      globals(lay.cpe, cpeLan).find((x) => x.local === '2001:db8:100::1' && x.prefixlen === 64),
    );
    assert.ok(lanAddr.valid_life_time! > 7100 && lanAddr.valid_life_time! <= 7200, `valid ${lanAddr.valid_life_time}`);
    assert.ok(lanAddr.preferred_life_time! > 3500 && lanAddr.preferred_life_time! <= 3600, `preferred ${lanAddr.preferred_life_time}`);
    const lanLine = await a.waitLog(/^LAN numbered from 2001:db8:100::\/56: /, 2000);
    assert.match(lanLine.msg, new RegExp(`${cpeLan} 2001:db8:100::1/64`));
    timeline(t, a, t0);

    const r = routes6(lay.cpe);
    assert.ok(
      r.some((x) => x.dst === 'default' && x.dev === 'sw0'),
      `default route via sw0: ${JSON.stringify(r)}`,
    );
    assert.ok(
      r.some((x) => x.dst === '2001:db8:100::/56' && x.type === 'unreachable'),
      `unreachable route for the delegated prefix (RFC 7084 WPD-5): ${JSON.stringify(r)}`,
    );
    assert.equal(forwarding(lay.cpe), '1', 'forwarding on in cpe');

    // l2tpns routes the delegated prefix into its tun, so the SC kernel's replies find the session.
    const scRoutes = routes6(lay.sc);
    assert.ok(
      scRoutes.some((x) => x.dst === '2001:db8:100::/56' && x.dev === 'tun0'),
      `SC routes the delegated prefix to tun0: ${JSON.stringify(scRoutes)}`,
    );

    // The LAN host: an address in our /64 and a default route, both from our RAs.
    const hostAddr = await waitFor(
      'SLAAC address on the LAN host',
      10_000,
      () => globals(lanHost, hostDev).find((x) => prefixContains('2001:db8:100::', 64, x.local)),
      100,
    );
    assert.equal(hostAddr.prefixlen, 64);
    const hostDef = await waitFor('default route on the LAN host', 5000, () =>
      routes6(lanHost).find((x) => x.dst === 'default' && x.dev === hostDev && x.gateway?.startsWith('fe80:')),
    );
    assert.equal(hostDef.protocol, 'ra');
    // Until DAD is done the kernel will not pick the address as a source.
    await waitFor('host address out of DAD', 5000, () =>
      (lanHost.ipJson<Addr[]>(['-6', 'addr', 'show', 'dev', hostDev, 'scope', 'global', '-tentative'])[0]?.addr_info ?? []).some(
        (x) => x.local === hostAddr.local,
      ),
    );
    const before = await a.status();
    lanHost.exec('ping', ['-6', '-c', '3', '-i', '0.2', '-W', '2', '2001:db8:200::1']);
    const after = await a.status();
    assert.ok(after.counters.data.tunOut! - before.counters.data.tunOut! >= 3, 'the echo requests crossed the softwire');
    assert.ok(after.counters.data.tunIn! - before.counters.data.tunIn! >= 3, 'and the replies came back');

    // SIGTERM: everything the agent made is gone within 3 s, and l2tpns heard the Release
    // (it ignores Release but logs every DHCPv6 message at debug level 3).
    const logOffset = sc.log().length;
    const resolvFile = join(a.dir, 'resolv.conf');
    assert.ok(existsSync(resolvFile), 'resolv file written while up');
    const { code, tookMs } = await a.stop();
    t.diagnostic(`graceful shutdown took ${tookMs} ms`);
    const stopAt = a.lines.findIndex((l) => l.msg === 'shutting down');
    for (const l of a.lines.slice(Math.max(0, stopAt))) t.diagnostic(`${String(l.time).slice(17)} ${l.msg}`);
    assert.equal(code, 0, a.tail());
    assert.ok(tookMs < 3000, `shutdown within 3 s (${tookMs} ms)`);
    await sc.waitForLog(/Got DHCPv6 message Type: Release\(8\)/, 3000, logOffset);
    assertCpeClean(lab, resolvFile);
    // The final RA reached the host: no default router any more (RFC 4861 6.2.5), and its
    // address in the withdrawn prefix is deprecated, not yanked (RFC 7084 L-13).
    assert.deepEqual(
      routes6(lanHost).filter((x) => x.dst === 'default'),
      [],
      'LAN host dropped the default route',
    );
    const hostAfter = globals(lanHost, hostDev).find((x) => x.local === hostAddr.local);
    assert.ok(hostAfter === undefined || hostAfter.preferred_life_time === 0, `host address deprecated: ${JSON.stringify(hostAfter)}`);
    assert.ok(!a.lines.some((l) => l.level >= 50), `no errors logged:\n${a.tail()}`);
  });

  test('the SC drops the session: a short reconnect keeps the LAN (no address removed, the LAN host keeps its default route) and the same prefix comes back', async (t) => {
    const lab = await routerLab(t);
    const a = startRouter(t, lab);
    await a.waitLog(/^LAN numbered from /, 15_000);
    await waitFor('LAN host default route', 5000, () => routes6(lab.lanHost).find((x) => x.dst === 'default'));
    const dials = () => a.lines.filter((l) => /^dialling SC/.test(l.msg)).length;
    const ups = () => a.lines.filter((l) => /^softwire up$/.test(l.msg)).length;
    lab.sc.nsctl(['drop', DEFAULT_USER.name]);
    // Watch the LAN side the whole time the agent is away: the router address and the host's
    // default route never go (an RA with router lifetime 0 would remove that route at once).
    let lost = '';
    const watch = setInterval(() => {
      if (!globals(lab.lay.cpe, lab.cpeLan).some((x) => x.local === '2001:db8:100::1')) lost ||= 'router address removed from the LAN';
      if (!routes6(lab.lanHost).some((x) => x.dst === 'default')) lost ||= 'LAN host lost its default route';
    }, 100);
    t.after(() => clearInterval(watch));
    await waitFor('redial and up again', 20_000, () => dials() >= 2 && ups() >= 2, 100);
    await waitFor('prefix back', 10_000, async () => ((await a.status()).ipv6?.delegatedPrefix ? true : null), 100);
    clearInterval(watch);
    assert.equal(lost, '', lost);
    assert.ok(a.find(/the LAN keeps its prefix/), a.tail());
    const s = await a.status();
    assert.equal(s.state, 'up');
    assert.deepEqual(s.ipv6?.lan, [{ ifname: lab.cpeLan, prefix: '2001:db8:100::/64', address: '2001:db8:100::1' }]);
    assert.ok(routes6(lab.lay.cpe).some((x) => x.dst === '2001:db8:100::/56' && x.type === 'unreachable'));
    assert.equal(forwarding(lab.lay.cpe), '1');
    assert.ok(!a.lines.some((l) => l.level >= 50), `no errors logged:\n${a.tail()}`);
  });

  test('SIGTERM right after the LAN is numbered: the final RA still goes out and shutdown stays within 3 s', async (t) => {
    const lab = await routerLab(t);
    const a = startRouter(t, lab);
    await a.waitLog(/^LAN numbered from /, 15_000);
    // Our first RA went out just now, so RFC 4861's 3 s between multicast RAs is still running.
    await waitFor('LAN host default route', 3000, () =>
      routes6(lab.lanHost).find((x) => x.dst === 'default' && x.dev === lab.hostDev),
    );
    const resolvFile = join(a.dir, 'resolv.conf');
    const { code, tookMs } = await a.stop();
    t.diagnostic(`graceful shutdown took ${tookMs} ms`);
    assert.equal(code, 0, a.tail());
    assert.ok(tookMs < 3000, `shutdown within 3 s (${tookMs} ms)`);
    assertCpeClean(lab, resolvFile);
    assert.deepEqual(
      routes6(lab.lanHost).filter((x) => x.dst === 'default'),
      [],
      'the final RA (router lifetime 0) withdrew the default route on the LAN host',
    );
  });
});

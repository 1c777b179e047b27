import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Installer } from '../../src/agent/installer';
import type { Provision } from '../../src/config/schema';
import { createLogger } from '../../src/log';
import type { Netlink } from '../../src/platform/netlink';
import type { RouteInfo } from '../../src/platform/netlink/types';
import type { Sysctl } from '../../src/platform/sysctl';

/**
 * provision netifd (OpenWrt): the installer leaves the softwire's global and
 * IPv4 addresses and its routes through the TUN to netifd, which installs what
 * the notify script reports, but still prepares the TUN, puts the link-local
 * address on it and pins the SC to the WAN. Status reports the same either way,
 * since that is what the notify script tells netifd.
 */

const TUN_INDEX = 9;
const WAN_INDEX = 2;

function fakes() {
  const calls: string[] = [];
  const wanRoute: RouteInfo = { family: 4, destination: '192.0.2.0/24', type: 'unicast', table: 254, protocol: 2, scope: 253, metric: 0, ifindex: WAN_INDEX };
  const nl = {
    addAddress: async (a: { address: string; prefixLength: number }) => void calls.push(`addr add ${a.address}/${a.prefixLength}`),
    deleteAddress: async (a: { address: string; prefixLength: number }) => void calls.push(`addr del ${a.address}/${a.prefixLength}`),
    addRoute: async (r: { destination: string; link?: unknown }) => void calls.push(`route add ${r.destination} dev ${String(r.link)}`),
    deleteRoute: async (r: { destination: string; link?: unknown }) => void calls.push(`route del ${r.destination} dev ${String(r.link)}`),
    setMtu: async (_l: string, mtu: number) => void calls.push(`mtu ${mtu}`),
    setLinkUp: async () => void calls.push('link up'),
    linkIndex: async () => TUN_INDEX,
    listRoutes: async () => [wanRoute],
  } as unknown as Netlink;
  const sysctl = { setIpv6: async () => undefined, write: async () => undefined } as unknown as Sysctl;
  return { nl, sysctl, calls };
}

/** What one dual-stack softwire asks of the installer, from IPV6CP up to teardown. */
async function session(provision: Provision | undefined) {
  const f = fakes();
  const ins = new Installer(f.nl, f.sysctl, createLogger({ level: 'silent' }), { routeMetric: 1024, ipv4DefaultRoute: true, scAddress: '192.0.2.1', provision });
  ins.tunUp('sw-wan6', 1460, 'fe80::c633:6480:0:0');
  ins.address('slaac', '2001:db8:200:0:c633:6480::', 64, 2592000, 604800);
  ins.address('dhcp6', '2001:db8:200:0:c633:6480::', 128, 7200, 3600);
  ins.defaultRoute6(true);
  ins.ipv4('198.51.100.128', '198.51.100.1', ['192.0.2.53']);
  await ins.settled();
  const up = [...f.calls];
  const status = ins.ipv6Status('fe80::c633:6480:0:0');
  f.calls.length = 0;
  await ins.clear();
  return { up, down: [...f.calls], status, errors: ins.errors };
}

describe('installer: who provisions the softwire address and routes', () => {
  test('provision agent (the default) installs addresses and routes and removes them again', async () => {
    const s = await session(undefined);
    assert.deepEqual(s.up, [
      'mtu 1460',
      'link up',
      'addr add fe80::c633:6480:0:0/64',
      'addr add 2001:db8:200:0:c633:6480::/64',
      'addr add 2001:db8:200:0:c633:6480::/64',
      'route add ::/0 dev sw-wan6',
      'addr add 198.51.100.128/32',
      'route add 198.51.100.1/32 dev sw-wan6',
      `route add 192.0.2.1/32 dev ${WAN_INDEX}`,
      'route add 0.0.0.0/0 dev sw-wan6',
    ]);
    assert.deepEqual(s.down, [
      'route del ::/0 dev sw-wan6',
      'route del 198.51.100.1/32 dev sw-wan6',
      'route del 0.0.0.0/0 dev sw-wan6',
      'addr del 2001:db8:200:0:c633:6480::/64',
      'addr del 198.51.100.128/32',
      `route del 192.0.2.1/32 dev ${WAN_INDEX}`,
    ]);
    assert.deepEqual(s.errors, {});
  });

  test('provision netifd keeps only the TUN, its link-local address and the SC pin', async () => {
    const s = await session('netifd');
    assert.deepEqual(s.up, ['mtu 1460', 'link up', 'addr add fe80::c633:6480:0:0/64', `route add 192.0.2.1/32 dev ${WAN_INDEX}`]);
    assert.deepEqual(s.down, [`route del 192.0.2.1/32 dev ${WAN_INDEX}`]);
    assert.deepEqual(s.errors, {});
  });

  test('status (what netifd is told) is the same whoever installs', async () => {
    const agent = await session('agent');
    const netifd = await session('netifd');
    assert.deepEqual(netifd.status, agent.status);
    assert.equal(netifd.status.address, '2001:db8:200:0:c633:6480::');
    assert.equal(netifd.status.defaultRoute, true);
    assert.deepEqual(netifd.status.dns, ['192.0.2.53']);
  });
});

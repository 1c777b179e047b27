import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { L2tpnsSc } from '../lab/l2tpns';
import { waitFor } from '../lab/netns';
import { OpenWrtRig, rigUnavailable } from '../openwrt/rig';

/**
 * The LAN of a router running proto softwire, numbered as OpenWrt does it: netifd
 * assigns a /64 of the delegated prefix to lan (ip6assign 64), and OpenWrt's odhcpd
 * (built from source, /etc/config/dhcp with ra server + dhcpv6 server) announces it
 * to a LAN host by RA (SLAAC) and DHCPv6 (IA_NA, here asked for with ISC dhclient).
 * The host then reaches the SC side through the softwire. When the SC hands out
 * another prefix, the host sees the old one deprecated and uses the new one.
 */

const skip = rigUnavailable() || (existsSync('/sbin/dhclient') ? false : 'needs /sbin/dhclient (apt-get install isc-dhcp-client)');
const UP_MS = 90_000;
const OLD = '2001:db8:100::';
const NEW = '2001:db8:300::';
// The SC-side address the demo pings too (l2tpns answers it through its tun).
const SC_SIDE = '2001:db8:200::1';

function inside(addr: string, prefix: string, len: number): boolean {
  const bits = (a: string) => {
    const [head, tail = ''] = a.split('::');
    const h = head ? head.split(':') : [];
    const t = tail ? tail.split(':') : [];
    return [...h, ...Array(8 - h.length - t.length).fill('0'), ...t].map((g) => parseInt(g, 16).toString(2).padStart(16, '0')).join('');
  };
  return bits(addr).slice(0, len) === bits(prefix).slice(0, len);
}

interface Addr {
  local: string;
  prefixlen: number;
  preferred_life_time?: number;
  deprecated?: boolean;
  tentative?: boolean;
  dynamic?: boolean;
}

describe('odhcpd numbers the LAN from the softwire prefix (real netifd + odhcpd)', { skip, timeout: 15 * 60_000 }, () => {
  let rig: OpenWrtRig;
  const hostAddrs = (): Addr[] =>
    (rig.host.ipJson<{ addr_info: Addr[] }[]>(['-6', 'addr', 'show', 'dev', rig.hostDev, 'scope', 'global'])[0]?.addr_info ?? []);

  before(async () => {
    rig = await OpenWrtRig.start();
    rig.exec('ifup', ['sw6']);
    await waitFor('sw6 up with its prefix', UP_MS, () => (rig.status('sw6')['ipv6-prefix'] ?? []).length > 0);
  });

  after(async () => {
    if (rig) await rig.stop();
  });

  let slaac: Addr;
  test('the LAN host gets a SLAAC address in the delegated prefix from odhcpd, and a default route', async () => {
    slaac = await waitFor('SLAAC address from the delegated prefix', 60_000, () =>
      hostAddrs().find((a) => inside(a.local, OLD, 56) && a.prefixlen === 64 && !a.tentative),
    ).catch((e: Error) => {
      throw new Error(`${e.message}\nhost: ${rig.host.ip(['-6', 'addr'])}\nodhcpd:\n${rig.file('odhcpd.log').slice(-3000)}`);
    });
    const lan = rig.status('lan')['ipv6-prefix-assignment']!.find((x) => inside(x.address, OLD, 56))!;
    assert.ok(inside(slaac.local, lan.address, 64), `${slaac.local} in ${lan.address}/64`);
    await waitFor('default route from the RA', 30_000, () => /default via fe80:/.test(rig.host.ip(['-6', 'route', 'show', 'default'])));
  });

  test('the LAN host gets a DHCPv6 IA_NA lease in the same /64 from odhcpd', async () => {
    const lease = join(rig.dir, 'dhclient6.leases');
    // -sf /bin/true: only the lease is looked at; the address is not installed.
    const p = rig.host.spawn('dhclient', ['-6', '-d', '-N', '-cf', '/dev/null', '-sf', '/bin/true', '-lf', lease, '-pf', join(rig.dir, 'dhclient6.pid'), rig.hostDev], {
      stdio: 'ignore',
    });
    try {
      const m = await waitFor('IA_NA lease', 60_000, () => (existsSync(lease) ? readFileSync(lease, 'utf8').match(/iaaddr ([0-9a-f:]+)/) : null));
      const lan = rig.status('lan')['ipv6-prefix-assignment']!.find((x) => inside(x.address, OLD, 56))!;
      assert.ok(inside(m[1]!, lan.address, 64), `${m[1]} in ${lan.address}/64`);
    } finally {
      p.kill('SIGKILL');
    }
  });

  test('the LAN host reaches the SC side through the softwire', () => {
    const out = rig.host.exec('ping', ['-6', '-c', '3', '-i', '0.3', '-W', '3', SC_SIDE]);
    assert.match(out, /3 received/);
  });

  test('a new prefix from the SC reaches the LAN host: the old one deprecated, the new one used', async () => {
    // The SC's operator gives cpe1 another prefix (RADIUS Delegated-IPv6-Prefix) and
    // restarts the SC (StopCCN to every tunnel); the agent redials and gets it.
    const first = rig.sc;
    await first.stop();
    first.cleanup();
    rig.sc = await L2tpnsSc.start(rig.lns, {
      bindAddress: first.address,
      users: [{ name: 'cpe1', password: 'secret1', framedIp: '198.51.100.128', delegatedPrefix: `${NEW}/56` }],
    });
    await waitFor('sw6 with the new prefix', UP_MS, () => rig.status('sw6')['ipv6-prefix']?.some((p) => p.address === NEW && p.mask === 56));
    const fresh = await waitFor('a SLAAC address from the new prefix', 60_000, () =>
      hostAddrs().find((a) => inside(a.local, NEW, 56) && !a.tentative && !a.deprecated),
    ).catch((e: Error) => {
      throw new Error(`${e.message}\nhost: ${rig.host.ip(['-6', 'addr'])}\nodhcpd:\n${rig.file('odhcpd.log').slice(-3000)}`);
    });
    // odhcpd keeps announcing the prefix it no longer has with preferred lifetime 0 (RFC 4862 5.5.3).
    const old = await waitFor('the old address deprecated', 60_000, () => hostAddrs().find((a) => a.local === slaac.local && a.deprecated));
    assert.equal(old.preferred_life_time, 0);
    // New connections pick the new address (RFC 6724 rule 3: avoid deprecated addresses).
    const route = rig.host.ip(['-6', 'route', 'get', SC_SIDE]);
    assert.match(route, new RegExp(`src ${fresh.local}\\b`), route);
    const out = rig.host.exec('ping', ['-6', '-c', '3', '-i', '0.3', '-W', '3', SC_SIDE]);
    assert.match(out, /3 received/);
  });
});

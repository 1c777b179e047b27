import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { waitFor } from '../lab/netns';
import { OpenWrtRig, rigUnavailable, SW6_DEVICE, type IfStatus } from '../openwrt/rig';

/**
 * The softwire netifd handler (openwrt/files/softwire.proto + softwire.script, as
 * the ipk installs them) under OpenWrt's real netifd + ubusd, built from OpenWrt's
 * sources, against a real SC (l2tpns + FreeRADIUS). Everything is read back the way
 * an operator would: `ubus call network.interface.NAME status` and the kernel.
 *
 * The SC's lab user cpe1 gets Delegated-IPv6-Prefix 2001:db8:100::/56 and the RA
 * prefix 2001:db8:200::/64 (SLAAC), DNS 2001:db8:200::53 (test/lab/l2tpns.ts).
 */

const skip = rigUnavailable() || false;
// Startup on a busy machine: the agent's dial, PPP, RA and DHCPv6 PD each take a round trip or a retry.
const UP_MS = 90_000;

function inside(addr: string, prefix: string, len: number): boolean {
  const bits = (a: string) => {
    const [head, tail = ''] = a.split('::');
    const h = head ? head.split(':') : [];
    const t = tail ? tail.split(':') : [];
    const groups = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
    return groups.map((g) => parseInt(g, 16).toString(2).padStart(16, '0')).join('');
  };
  return bits(addr).slice(0, len) === bits(prefix).slice(0, len);
}

/** sw6 up with everything the SC gave: address (not /128), delegated prefix, DNS, default route. */
function complete(s: IfStatus): boolean {
  return (
    s.up &&
    s.l3_device === SW6_DEVICE &&
    (s['ipv6-address'] ?? []).length > 0 &&
    (s['ipv6-prefix'] ?? []).length > 0 &&
    (s['dns-server'] ?? []).length > 0 &&
    (s.route ?? []).some((r) => r.target === '::' && r.mask === 0)
  );
}

describe('proto softwire under the real OpenWrt netifd', { skip, timeout: 15 * 60_000 }, () => {
  let rig: OpenWrtRig;

  before(async () => {
    rig = await OpenWrtRig.start({
      // A config error the handler catches at setup, and one only the agent sees (exit 2).
      extraNetwork: `
config interface 'swbad'
	option proto 'softwire'
	list server '192.0.2.1'
	option username 'cpe1'
	option password 'secret1'
	option mode 'bogus'
	option auto '0'

config interface 'swexit'
	option proto 'softwire'
	list server '192.0.2.1'
	option username 'cpe1'
	option password_file '/etc/softwire/no-such-file'
	option auto '0'

config interface 'swcant'
	option proto 'softwire'
	list server '192.0.2.1'
	option username 'cpe1'
	option password 'secret1'
	option control_socket '/var/run/softwire/sw6.sock'
	option auto '0'
`,
    });
  });

  after(async () => {
    if (!rig) return;
    if (process.env.KEEP_RIG) process.stderr.write(`rig logs: ${rig.log}\n`);
    await rig.stop();
  });

  test('netifd lists the softwire handler with the options of a UCI section', () => {
    const handlers = rig.ubus<Record<string, { no_device?: boolean; validate?: Record<string, string> }>>('network', 'get_proto_handlers');
    const h = handlers.softwire;
    assert.ok(h, `softwire missing from ${Object.keys(handlers).join(' ')}`);
    assert.equal(h.no_device, true);
    assert.deepEqual(
      Object.fromEntries(['server', 'username', 'password', 'password_file', 'mode', 'tun_device', 'defaultroute', 'peerdns', 'ipv4_default_route'].map((k) => [k, h.validate?.[k]])),
      {
        server: 'list(string)',
        username: 'string',
        password: 'string',
        password_file: 'string',
        mode: 'string',
        tun_device: 'string',
        defaultroute: 'bool',
        peerdns: 'bool',
        ipv4_default_route: 'bool',
      },
    );
  });

  let prefix = '';
  test('ifup: the interface comes up with the address and its prefix length, the delegated prefix, DNS and the default route', async () => {
    rig.exec('ifup', ['sw6']);
    // l2tpns also hands out the SLAAC address by DHCPv6 IA_NA (a /128): reported as such
    // until the RA's /64 arrives, then as the /64.
    const s = await waitFor('sw6 up and complete, its address with the RA prefix length', UP_MS, () => {
      const st = rig.status('sw6');
      return complete(st) && st['ipv6-address']?.[0]?.mask === 64 && st;
    }).catch((e: Error) => {
      throw new Error(`${e.message}\nstatus: ${JSON.stringify(rig.tryUbus('network.interface.sw6', 'status'))}\nnetifd log:\n${rig.netifdLog().slice(-4000)}`);
    });
    const addr = s['ipv6-address']![0]!;
    // SLAAC from the SC's RA prefix: a /64, not a host route.
    assert.equal(addr.mask, 64, `address ${addr.address}/${addr.mask}`);
    assert.ok(inside(addr.address, '2001:db8:200::', 64), addr.address);
    const p = s['ipv6-prefix']![0]!;
    assert.deepEqual([p.address, p.mask], ['2001:db8:100::', 56]);
    // The SC's lifetimes (3600 s / 7200 s), counted down, not infinite.
    assert.ok(p.preferred! > 3000 && p.preferred! <= 3600 && p.valid! > 6600 && p.valid! <= 7200, JSON.stringify(p));
    prefix = `${p.address}/${p.mask}`;
    assert.ok(s['dns-server']!.includes('2001:db8:200::53'), JSON.stringify(s['dns-server']));
    // The kernel has what netifd installed.
    await waitFor('kernel address and default route on the TUN', 20_000, () => {
      const a = rig.cpe.ip(['-6', 'addr', 'show', 'dev', SW6_DEVICE, 'scope', 'global']);
      const r = rig.cpe.ip(['-6', 'route', 'show', 'default']);
      return a.includes(`${addr.address}/64`) && r.includes(`dev ${SW6_DEVICE}`);
    });
    assert.match(rig.exec('cat', ['/tmp/resolv.conf.d/resolv.conf.auto']), /nameserver 2001:db8:200::53/);
    // provision netifd: the agent keeps only the route pinning the SC to the WAN, not through the TUN.
    assert.doesNotMatch(rig.cpe.ip(['-4', 'route', 'show', '192.0.2.1']), new RegExp(SW6_DEVICE));
    assert.equal(rig.agentPids().length, 1);
  });

  test('the LAN (ip6assign 64) is numbered from the delegated prefix', async () => {
    const a = await waitFor('lan assignment', 30_000, () => {
      const x = rig.status('lan')['ipv6-prefix-assignment']?.find((y) => y.mask === 64 && inside(y.address, '2001:db8:100::', 56));
      return x;
    }).catch((e: Error) => {
      throw new Error(`${e.message}\nlan: ${JSON.stringify(rig.tryUbus('network.interface.lan', 'status'))}`);
    });
    assert.ok(a['local-address'] && inside(a['local-address'].address, a.address, 64), JSON.stringify(a));
    await waitFor('kernel address on the LAN device', 20_000, () => rig.cpe.ip(['-6', 'addr', 'show', 'dev', rig.lanDev]).includes(`${a['local-address']!.address}/64`));
  });

  test('ifdown stops the agent (StopCCN at the SC), the routes go, and no notify is refused', async () => {
    const [pid] = rig.agentPids();
    assert.ok(pid);
    const lnsFrom = rig.sc.log().length;
    const netifdFrom = rig.netifdLog().length;
    rig.exec('ifdown', ['sw6']);
    await waitFor('agent to exit', 30_000, () => !existsSync(`/proc/${pid}`));
    await waitFor('sw6 down', 20_000, () => !rig.status('sw6').up);
    await rig.sc.waitForLog(/Received StopCCN/, 20_000, lnsFrom);
    await rig.sc.waitForLog(/Shutting down session/, 20_000, lnsFrom);
    // The goodbyes in order of the layers: the prefix given back, PPP closed, then the tunnel.
    assert.match(rig.sc.log().slice(lnsFrom), /Got DHCPv6 message Type: Release/);
    assert.match(rig.sc.log().slice(lnsFrom), /LCP: recv TerminateReq/);
    assert.throws(() => rig.cpe.ip(['link', 'show', SW6_DEVICE]), /does not exist/);
    assert.equal(rig.exec('sh', ['-c', 'ls /var/run/softwire/sw6.json 2>/dev/null || true']).trim(), '', 'the rendered config (with the password) removed');
    await waitFor('the SC to remove its route to the prefix', 20_000, () => rig.lns.ip(['-6', 'route', 'show', prefix]).trim() === '');
    assert.doesNotMatch(rig.cpe.ip(['-6', 'route', 'show', 'default']), new RegExp(`dev ${SW6_DEVICE}`));
    assert.equal((rig.status('lan')['ipv6-prefix-assignment'] ?? []).filter((x) => inside(x.address, '2001:db8:100::', 56)).length, 0);
    assert.deepEqual(rig.agentPids(), []);
    // The agent's last words must not be a notify netifd refuses (it is tearing down) nor a warning.
    const log = rig.netifdLog().slice(netifdFrom);
    assert.doesNotMatch(log, /Permission denied|notify command failed|"level":[456]0/i, log);
  });

  test('the agent killed: netifd notices, starts a new one, and the interface comes back', async () => {
    rig.exec('ifup', ['sw6']);
    await waitFor('sw6 up again', UP_MS, () => complete(rig.status('sw6')));
    const [pid] = rig.agentPids();
    assert.ok(pid);
    const netifdFrom = rig.netifdLog().length;
    process.kill(pid, 'SIGKILL');
    await waitFor('netifd to take sw6 down', 30_000, () => rig.netifdLog().slice(netifdFrom).includes("Interface 'sw6' is now down"));
    const again = await waitFor('a new agent', UP_MS, () => rig.agentPids().find((p) => p !== pid));
    await waitFor('sw6 up and complete after the restart', UP_MS, () => complete(rig.status('sw6')));
    assert.deepEqual(rig.agentPids(), [again]);
  });

  test('the SC drops the session: the same agent reconnects and the interface is complete again', async () => {
    const [pid] = rig.agentPids();
    const netifdFrom = rig.netifdLog().length;
    // By session ID: l2tpns may still hold the dead session of the killed agent under the same user.
    const logins = [...rig.sc.log().matchAll(/ \d+\/(\d+) Login by cpe1/g)];
    const sid = Number(logins.at(-1)?.[1]);
    assert.ok(sid > 0, 'no login in the l2tpns log');
    rig.sc.nsctl(['drop', String(sid)]);
    await waitFor('sw6 to lose the connection', 30_000, () => rig.netifdLog().slice(netifdFrom).includes("Interface 'sw6' has lost the connection"));
    await waitFor('sw6 up again', UP_MS, () => rig.netifdLog().slice(netifdFrom).includes("Interface 'sw6' is now up") && complete(rig.status('sw6')));
    assert.deepEqual(rig.agentPids(), [pid]);
    await waitFor('the LAN numbered again', 30_000, () => rig.status('lan')['ipv6-prefix-assignment']?.some((y) => inside(y.address, '2001:db8:100::', 56)));
  });

  test('a config error at setup: INVALID_CONFIG and no restart', async () => {
    rig.exec('ifup', ['swbad']);
    const s = await waitFor('swbad error', 30_000, () => {
      const st = rig.status('swbad');
      return (st.errors ?? []).length > 0 && st;
    });
    assert.deepEqual(s.errors?.map((e) => e.code), ['INVALID_CONFIG']);
    await waitFor('swbad no longer set to start', 20_000, () => rig.status('swbad').autostart === false);
  });

  test('the agent exits for good (bad config, exit 2): the error is reported and netifd stops restarting it', async () => {
    const netifdFrom = rig.netifdLog().length;
    rig.exec('ifup', ['swexit']);
    const s = await waitFor('swexit blocked with an error', 60_000, () => {
      const st = rig.status('swexit');
      return st.autostart === false && (st.errors ?? []).length > 0 && st;
    }).catch((e: Error) => {
      throw new Error(`${e.message}\nstatus: ${JSON.stringify(rig.tryUbus('network.interface.swexit', 'status'))}\nnetifd log:\n${rig.netifdLog().slice(netifdFrom).slice(-3000)}`);
    });
    assert.deepEqual(s.errors?.map((e) => e.code), ['INVALID_CONFIG']);
    assert.equal(s.up, false);
    // One run of the agent, not a loop: count the setups netifd ran for swexit.
    const setups = rig.netifdLog().slice(netifdFrom).match(/Interface 'swexit' is setting up now/g) ?? [];
    assert.equal(setups.length, 1, rig.netifdLog().slice(netifdFrom));
  });

  test('IPv4 over the softwire (ipv4_default_route): the IPCP address and 0.0.0.0/0 go to netifd, the tunnel stays up', async () => {
    rig.exec('uci', ['set', 'network.sw6.ipv4_default_route=1']);
    rig.exec('uci', ['commit', 'network']);
    rig.exec('ifup', ['sw6']);
    const s = await waitFor('sw6 up with IPv4', UP_MS, () => {
      const st = rig.status('sw6');
      return complete(st) && (st['ipv4-address'] ?? []).length > 0 && st.route?.some((r) => r.target === '0.0.0.0' && r.mask === 0) && st;
    });
    // The lab user's RADIUS Framed-IP-Address; no peer route to the SC's own address.
    assert.deepEqual(s['ipv4-address']!.map((a) => [a.address, a.mask, a.ptpaddress]), [['198.51.100.128', 32, undefined]]);
    await waitFor('kernel IPv4 default route into the TUN', 20_000, () => rig.cpe.ip(['-4', 'route', 'show', 'default']).includes(`dev ${SW6_DEVICE}`));
    // The agent's /32 pin keeps the tunnel itself on the WAN, so it survives the new default route.
    assert.doesNotMatch(rig.cpe.ip(['-4', 'route', 'get', '192.0.2.1']), new RegExp(SW6_DEVICE));
    const [pid] = rig.agentPids();
    const netifdFrom = rig.netifdLog().length;
    rig.lns.exec('ping', ['-c', '2', '-W', '3', '198.51.100.128']);
    assert.ok(rig.status('sw6').up);
    assert.deepEqual(rig.agentPids(), [pid]);
    assert.doesNotMatch(rig.netifdLog().slice(netifdFrom), /lost the connection/);
  });

  test('defaultroute 0 and peerdns 0: no default routes and no DNS servers reach netifd', async () => {
    for (const o of ['defaultroute=0', 'peerdns=0']) rig.exec('uci', ['set', `network.sw6.${o}`]);
    rig.exec('uci', ['commit', 'network']);
    rig.exec('ifup', ['sw6']);
    const s = await waitFor('sw6 up with address and prefix', UP_MS, () => {
      const st = rig.status('sw6');
      return st.up && (st['ipv6-address'] ?? []).length > 0 && (st['ipv6-prefix'] ?? []).length > 0 && (st['ipv4-address'] ?? []).length > 0 && st;
    });
    assert.deepEqual(s.route ?? [], []);
    assert.deepEqual(s['dns-server'] ?? [], []);
    assert.doesNotMatch(rig.cpe.ip(['-6', 'route', 'show', 'default']), new RegExp(SW6_DEVICE));
  });

  test('the agent cannot start (exit 3: its control socket is held by the running sw6 agent): CANNOT_START, no restart', async () => {
    assert.ok(rig.status('sw6').up);
    const [sw6Agent] = rig.agentPids();
    const netifdFrom = rig.netifdLog().length;
    rig.exec('ifup', ['swcant']);
    const s = await waitFor('swcant blocked with an error', 60_000, () => {
      const st = rig.status('swcant');
      return st.autostart === false && (st.errors ?? []).length > 0 && st;
    }).catch((e: Error) => {
      throw new Error(`${e.message}\nstatus: ${JSON.stringify(rig.tryUbus('network.interface.swcant', 'status'))}\nnetifd log:\n${rig.netifdLog().slice(netifdFrom).slice(-3000)}`);
    });
    assert.deepEqual(s.errors?.map((e) => e.code), ['CANNOT_START']);
    assert.equal((rig.netifdLog().slice(netifdFrom).match(/Interface 'swcant' is setting up now/g) ?? []).length, 1);
    // The running agent keeps its socket and its session.
    assert.deepEqual(rig.agentPids(), [sw6Agent]);
    assert.ok(rig.status('sw6').up);
    rig.exec('softwire', ['status', '--control-socket', '/var/run/softwire/sw6.sock']);
  });

  test("the notify script converts the agent's ISO times to epoch seconds as Date does (busybox ash)", () => {
    const times = [0, 951_782_400 /* 2000-02-29 */, 1_700_000_000, 4_107_542_399 /* 2100-02-28T23:59:59 */, 4_107_542_400];
    for (let i = 0; i < 40; i++) times.push(Math.floor((i * 7_258_118_400) / 40) + i * 86_399);
    const isos = times.map((t) => new Date(t * 1000).toISOString());
    const out = rig.exec('sh', ['-c', 'INCLUDE_ONLY=1; . /lib/netifd/softwire.script; for t; do softwire_epoch "$t"; done; softwire_epoch 2025-01-01 || echo refused', 'sh', ...isos]);
    assert.deepEqual(out.trim().split('\n'), [...times.map(String), 'refused']);
  });
});

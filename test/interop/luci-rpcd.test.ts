import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { waitFor } from '../lab/netns';
import { LUCI_TEST_NETWORK as NETWORK, LuciRig, REPO, rigUnavailable } from '../openwrt-luci/rig';
import { NULL_SESSION, login, ubusRpc } from '../openwrt-luci/rpc';

/**
 * The server side of the LuCI page, for real and without LuCI's own code (which
 * cannot be in this repository; test/interop/luci-browser.test.ts renders the page
 * with it when LUCI_SRC is given): OpenWrt's uhttpd, rpcd, ubusd and netifd built
 * from source, the luci-proto-softwire and softwire packages as their ipks lay them
 * out, l2tpns as the SC. Over HTTP, as LuCI's rpc.js does: uhttpd serves the
 * protocol module; rpcd enforces our ACL file; the calls the page makes (uci get of
 * the section, uci set + apply, luci.softwire status) work; netifd brings the
 * interface up with our agent when asked, and the page's status call shows it up.
 */

const unavailable = rigUnavailable();


// What LuCI's own ACL files grant an administrator for the interface page:
// luci-base's ubus access to the uci object, luci-mod-network's uci "network" and
// interface up/down. Those files are LuCI's and not in this repository, so the test
// writes the same grants.
const NETWORK_CONFIG_ACL = JSON.stringify({
  'luci-mod-network-config': {
    description: 'stands for luci-base and luci-mod-network: uci network, interface up/down',
    read: { ubus: { uci: ['get', 'changes'], 'network.interface': ['dump'] }, uci: ['network'] },
    write: { ubus: { uci: ['set', 'commit', 'apply', 'confirm'], 'network.interface': ['up', 'down'] }, uci: ['network'] },
  },
});

describe('LuCI page, server side: uhttpd + rpcd + ubus + netifd from OpenWrt sources', { skip: unavailable || false, timeout: 20 * 60_000 }, () => {
  let rig: LuciRig;
  let admin: string;
  let viewer: string;

  before(async () => {
    rig = await LuciRig.start({
      network: NETWORK,
      logins: [
        { username: 'root', password: 'admin-pw', read: ['*'], write: ['*'] },
        // Only our package's group: what the ACL file alone allows.
        { username: 'viewer', password: 'viewer-pw', read: ['luci-proto-softwire'], write: [] },
      ],
      files: { '/usr/share/rpcd/acl.d/luci-mod-network-config.json': NETWORK_CONFIG_ACL },
    });
    admin = await login(rig.url, 'root', 'admin-pw');
    viewer = await login(rig.url, 'viewer', 'viewer-pw');
  });

  after(async () => {
    await rig?.stop();
  });

  test('uhttpd serves the protocol module where LuCI loads it from (protocol.softwire)', async () => {
    const res = await fetch(`${rig.url}/luci-static/resources/protocol/softwire.js`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), readFileSync(join(REPO, 'openwrt/luci-proto-softwire/htdocs/luci-static/resources/protocol/softwire.js'), 'utf8'));
  });

  test('rpcd enforces the ACL: our group grants luci.softwire status and nothing else', async () => {
    const anon = await ubusRpc(rig.url, NULL_SESSION, 'luci.softwire', 'status', { interface: 'sw6' });
    assert.equal(anon.error?.code, -32002, 'no status without a login');
    const st = await ubusRpc(rig.url, viewer, 'luci.softwire', 'status', { interface: 'sw6' });
    assert.equal(st.status, 0, JSON.stringify(st));
    assert.deepEqual(st.data, { running: false, error: 'no agent for sw6 (no control socket /var/run/softwire/sw6.sock)' });
    for (const [object, method, args] of [
      ['uci', 'get', { config: 'network' }],
      ['uci', 'set', { config: 'network', section: 'sw6', values: { username: 'x' } }],
      ['network.interface', 'up', { interface: 'sw6' }],
      ['file', 'exec', { command: '/bin/true' }],
    ] as const) {
      const r = await ubusRpc(rig.url, viewer, object, method, args);
      assert.equal(r.error?.code, -32002, `${object} ${method} must be denied: ${JSON.stringify(r)}`);
    }
  });

  test('the exec plugin refuses what is not a section name', async () => {
    for (const bad of ['', '../etc', 'sw6;reboot', 'a b']) {
      const r = await ubusRpc(rig.url, admin, 'luci.softwire', 'status', { interface: bad });
      assert.equal(r.status, 0);
      assert.deepEqual(r.data, { running: false, error: 'interface must be a UCI section name' }, bad);
    }
  });

  test('the page loads the section, saves it through rpcd, and the interface comes up', async () => {
    // form.Map('network') load: uci get of the section, as the page shows it.
    const got = await ubusRpc(rig.url, admin, 'uci', 'get', { config: 'network', section: 'sw6' });
    assert.equal(got.status, 0, JSON.stringify(got));
    const values = (got.data as { values: Record<string, unknown> }).values;
    assert.deepEqual([values.proto, values.server, values.username], ['softwire', ['192.0.2.9'], undefined]);

    // Save: uci set with the session's staged changes; nothing reaches /etc/config yet.
    const set = await ubusRpc(rig.url, admin, 'uci', 'set', {
      config: 'network',
      section: 'sw6',
      values: { server: ['192.0.2.1'], username: 'cpe1', mode: 'router', hello_interval: '30' },
    });
    assert.equal(set.status, 0, JSON.stringify(set));
    assert.match(rig.read('/etc/config/network'), /192\.0\.2\.9/);
    // "Save & Apply", as LuCI's admin/uci/apply_rollback and admin/uci/confirm do it:
    // apply with rollback writes /etc/config and tells procd (service event), then
    // confirm keeps it (without confirm, rpcd would roll back after the timeout).
    const applied = await ubusRpc(rig.url, admin, 'uci', 'apply', { rollback: true, timeout: 90 });
    assert.equal(applied.status, 0, JSON.stringify(applied));
    const confirmed = await ubusRpc(rig.url, admin, 'uci', 'confirm', {});
    assert.equal(confirmed.status, 0, JSON.stringify(confirmed));
    const conf = rig.read('/etc/config/network');
    assert.match(conf, /list server '192\.0\.2\.1'/);
    assert.match(conf, /option username 'cpe1'/);
    assert.match(conf, /option hello_interval '30'/);
    await waitFor('procd (stand-in) to reload netifd', 30_000, () => /config.change network/.test(rig.read('/var/log/owrt/reload.log')));

    // The interface page's "Connect": network.interface up.
    const upCall = await ubusRpc(rig.url, admin, 'network.interface', 'up', { interface: 'sw6' });
    assert.equal(upCall.status, 0, JSON.stringify(upCall));
    const status = await waitFor(
      'the agent to report up through luci.softwire status',
      120_000,
      async () => {
        const r = await ubusRpc(rig.url, admin, 'luci.softwire', 'status', { interface: 'sw6' });
        const d = r.data as { state?: string };
        return d?.state === 'up' && d;
      },
      500,
    ).catch((e: Error) => {
      throw new Error(`${e.message}\n${rig.logs()}`);
    });
    const s = status as { sc: { address: string }; ipv6: { address: string | null; delegatedPrefix: { prefix: string } | null } };
    assert.equal(s.sc.address, '192.0.2.1');
    assert.ok(s.ipv6.delegatedPrefix, 'router mode: a delegated prefix');
    // netifd has what the notify script reported: what LuCI's own status box shows.
    type IfStatus = { up: boolean; l3_device?: string; 'ipv6-address'?: { address: string }[]; 'ipv6-prefix'?: { address: string; mask: number }[] };
    const ifstatus = await waitFor('netifd to have sw6 up with its address and prefix', 60_000, () => {
      const st = rig.ubus<IfStatus>('network.interface.sw6', 'status');
      return st.up && st['ipv6-address']?.length && st['ipv6-prefix']?.length && st;
    });
    assert.equal(ifstatus.l3_device, 'sw-sw6');
    assert.equal(ifstatus['ipv6-prefix']![0].address, s.ipv6.delegatedPrefix!.prefix);
    // The hello_interval saved on the page reached the agent.
    const agent = rig.exec('sh', ['-c', 'cat /var/run/softwire/sw6.json']);
    assert.equal((JSON.parse(agent) as { helloInterval: number }).helloInterval, 30);
  });
});

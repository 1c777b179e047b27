import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { Status } from '../../src/agent/status';
import { DEFAULT_USER, L2tpnsSc, l2tpnsAvailable } from '../lab/l2tpns';
import { type Netns, run } from '../lab/netns';
import { scLayout } from '../lab/topology';
import { harness, REAL_AGENT, REPO, removeHarnessDirs, until, updates } from '../helpers/netifd-harness';

/**
 * Issue 9 end to end: OpenWrt's `proto softwire` (openwrt/files/softwire.proto and
 * softwire.script under the recording netifd shim) starts the shipped agent inside
 * the cpe namespace against l2tpns + FreeRADIUS in sc. What the handler tells
 * netifd must be what the SC gave, and since netifd installs what it is told, the
 * agent (provision netifd) must not have installed it already.
 *
 * SOFTWIRE_NETIFD_AGENT swaps in another agent binary (e.g. an installed package).
 */

const AGENT = process.env.SOFTWIRE_NETIFD_AGENT ?? REAL_AGENT;
const avail = l2tpnsAvailable();
const skip = !avail.ok
  ? avail.message
  : !process.env.SOFTWIRE_NETIFD_AGENT && !existsSync(join(REPO, 'dist/softwire.js'))
    ? 'no dist/softwire.js: build the bundle first (node scripts/build.mjs)'
    : false;

const IFACE = 'wan6';
const TUN = 'sw-wan6';
const IPV6_DNS = ['2001:db8:200::53', '2001:db8:200::54'];
const IPV4_DNS = ['192.0.2.53', '192.0.2.54'];
const DOMAIN = 'example.net';
const BEHIND_SC4 = '203.0.113.1';

interface Addr {
  ifname: string;
  addr_info: { family: string; local: string; prefixlen: number; scope: string }[];
}
interface Route {
  dst: string;
  dev?: string;
  protocol?: string;
  type?: string;
}

const addrs = (ns: Netns, dev: string) => ns.ipJson<Addr[]>(['addr', 'show', 'dev', dev])[0]?.addr_info ?? [];
const routes = (ns: Netns, family: '-4' | '-6') => ns.ipJson<Route[]>([family, 'route', 'show', 'table', 'all']);
const defaults = (rs: Route[]) => rs.filter((r) => r.dst === 'default' || r.dst === '::/0' || r.dst === '0.0.0.0/0');

/** The process is gone (or a zombie nobody reaps: its parent, the handler's shell, has exited). */
function exited(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z') ?? true;
  } catch {
    return true;
  }
}

/** Installs one update the way netifd does: addresses, then routes through the interface's device. */
function applyAsNetifd(ns: Netns, update: string[]): void {
  const args = (line: string) => [...line.matchAll(/\[([^\]]*)\]/g)].map((m) => m[1]!);
  for (const line of update) {
    const [name] = line.split(' ');
    const a = args(line);
    if (name === 'proto_add_ipv6_address') ns.ip(['-6', 'addr', 'add', `${a[0]}/${a[1]}`, 'dev', TUN, 'nodad']);
    else if (name === 'proto_add_ipv4_address') ns.ip(['-4', 'addr', 'add', `${a[0]}/${a[1]}`, ...(a[3] ? ['peer', a[3]] : []), 'dev', TUN]);
    else if (name === 'proto_add_ipv6_route') ns.ip(['-6', 'route', 'add', `${a[0]}/${a[1]}`, 'dev', TUN, 'proto', 'static']);
    else if (name === 'proto_add_ipv4_route') ns.ip(['-4', 'route', 'add', `${a[0]}/${a[1]}`, 'dev', TUN, 'proto', 'static']);
  }
}

describe('netifd handler with the real agent against l2tpns', { skip, timeout: 120_000 }, () => {
  after(removeHarnessDirs);

  test('proto softwire up reports address, prefix, routes and DNS from the SC to netifd; teardown leaves nothing', async (t) => {
    const lay = scLayout();
    t.after(() => lay.topo.destroy());
    const sc = await L2tpnsSc.start(lay.sc, {
      bindAddress: lay.scAddress,
      dns: [IPV4_DNS[0]!, IPV4_DNS[1]!],
      ipv6Dns: IPV6_DNS,
      extra: [`set default_ipv6_domain_list "${DOMAIN}"`],
    });
    t.after(async () => {
      await sc.stop();
      sc.cleanup();
    });

    const h = harness({ agent: AGENT, netns: lay.cpe.name });
    h.env.NETIFD_SHIM_EXEC = '1';
    const rundir = join(h.dir, 'run');
    const sock = join(rundir, `${IFACE}.sock`);
    const resolvFile = join(h.dir, 'resolv.conf');
    // What netifd hands the handler for: config interface 'wan6' / option proto 'softwire' / ...
    const data = {
      proto: 'softwire',
      server: [lay.scAddress],
      username: DEFAULT_USER.name,
      password: DEFAULT_USER.password,
      mode: 'router',
      family: 'dual',
      state_dir: join(h.dir, 'state'),
      resolv_file: resolvFile,
      log_level: 'debug',
    };
    const t0 = Date.now();
    const r = h.sh(`json_load "$1"; proto_softwire_setup ${IFACE} ${TUN}`, [JSON.stringify(data)]);
    assert.equal(r.status, 0, r.stderr);
    const conf = join(rundir, `${IFACE}.json`);
    assert.ok(
      h.calls().includes(
        `proto_run_command [${IFACE}] [softwire] [run] [-c] [${conf}] [--tun-device] [${TUN}] [--control-socket] [${sock}] [--notify-command] [${h.env.SOFTWIRE_NOTIFY}] [--provision] [netifd]`,
      ),
      h.calls().join('\n'),
    );
    const pid = h.commandPid();
    assert.ok(pid, 'the shim started the agent');
    t.after(() => {
      if (!exited(pid)) process.kill(pid, 'SIGKILL');
    });
    // The agent runs in cpe: its TUN is there, not in the test's namespace.
    const status = (): Status => JSON.parse(lay.cpe.exec(AGENT, ['status', '--json', '--control-socket', sock])) as Status;

    // The agent notifies on every change (up, SLAAC, prefix, DNS); wait for the update that has them all.
    const complete = (u: string[]) =>
      ['proto_add_ipv6_address', 'proto_add_ipv6_prefix', 'proto_add_ipv4_address', 'proto_add_dns_search'].every((n) => u.some((l) => l.startsWith(`${n} `)));
    await until('an update to netifd with address, prefix, IPv4 and DNS', () => updates(h.calls()).some(complete), 30_000, () => `${h.calls().join('\n')}\n${h.commandOutput().slice(-3000)}`);
    t.diagnostic(`handler setup to complete netifd update: ${Date.now() - t0} ms (machine shared and loaded)`);
    // Let any notify still queued behind it run, then take the last update: what netifd ends up with.
    // A notify run spends most of its time in "softwire status", so quiet means no call for a while.
    let seen = -1;
    let changedAt = Date.now();
    await until('the notify runs to settle', () => {
      const n = h.calls().length;
      if (n !== seen) [seen, changedAt] = [n, Date.now()];
      return Date.now() - changedAt > 1500;
    });
    const all = updates(h.calls());
    const last = all.at(-1)!;
    const s = status();
    assert.equal(s.state, 'up');

    // The SC's own view of the session matches what netifd is told.
    const address = s.ipv6!.address!;
    assert.equal(address, '2001:db8:200:0:c633:6480::', 'SLAAC from the l2tpns RA /64 with the IPV6CP interface-id');
    const dp = s.ipv6!.delegatedPrefix!;
    assert.equal(`${dp.prefix}/${dp.length}`, DEFAULT_USER.delegatedPrefix);
    assert.equal(s.ipv4?.address, DEFAULT_USER.framedIp);
    assert.equal(s.ipv4?.peer, lay.scAddress, 'l2tpns names its tunnel endpoint as the IPCP peer');

    const prefixLine = last.find((l) => l.startsWith('proto_add_ipv6_prefix '));
    const m = /^proto_add_ipv6_prefix \[([0-9a-f:]+\/\d+),(\d+),(\d+)\]$/.exec(prefixLine ?? '');
    assert.ok(m, prefixLine);
    assert.equal(m[1], DEFAULT_USER.delegatedPrefix);
    // The SC's dhcp6_preferred_lifetime/dhcp6_valid_lifetime (3600/7200), less the seconds since the Reply.
    const [preferred, valid] = [Number(m[2]), Number(m[3])];
    assert.ok(preferred > 3540 && preferred <= 3600, `preferred ${preferred}`);
    assert.ok(valid > 7140 && valid <= 7200, `valid ${valid}`);
    assert.equal(valid - preferred, 3600);

    assert.deepEqual(
      last.filter((l) => l !== prefixLine),
      [
        `proto_init_update [${TUN}] [1]`,
        `proto_add_ipv6_address [${address}] [128]`,
        'proto_add_ipv6_route [::] [0]',
        ...[...IPV6_DNS, ...IPV4_DNS].map((d) => `proto_add_dns_server [${d}]`),
        `proto_add_dns_search [${DOMAIN}]`,
        // No peer: a point-to-point route to the SC through the TUN would swallow the tunnel.
        `proto_add_ipv4_address [${DEFAULT_USER.framedIp}] [32] [] []`,
        'proto_add_ipv4_route [0.0.0.0] [0]',
        `proto_send_update [${IFACE}]`,
      ],
      last.join('\n'),
    );
    assert.equal(last.indexOf(prefixLine!), 3, 'the prefix follows the routes');
    // Down while connecting, then up for good: no flapping while the agent learned more.
    const firstUp = all.findIndex((u) => u[0] === `proto_init_update [${TUN}] [1]`);
    for (const u of all.slice(0, firstUp)) assert.deepEqual(u, [`proto_init_update [${TUN}] [0]`, `proto_send_update [${IFACE}]`]);
    for (const u of all.slice(firstUp)) assert.equal(u[0], `proto_init_update [${TUN}] [1]`, u.join('\n'));
    t.diagnostic(`updates sent to netifd: ${all.length} (${firstUp} while connecting)`);

    // provision netifd: the agent put only the TUN and its link-local there, plus the SC pin on the WAN.
    const onTun = addrs(lay.cpe, TUN).map((a) => `${a.local}/${a.prefixlen}`);
    assert.deepEqual(onTun, [`${s.ipv6!.linkLocal}/64`], 'no global or IPv4 address from the agent');
    assert.deepEqual(defaults(routes(lay.cpe, '-6')), [], 'no IPv6 default route from the agent');
    assert.deepEqual(defaults(routes(lay.cpe, '-4')), [], 'no IPv4 default route from the agent');
    const pin = routes(lay.cpe, '-4').filter((x) => x.dst === lay.scAddress);
    assert.equal(pin.length, 1, 'the SC pinned to the WAN');
    assert.notEqual(pin[0]!.dev, TUN);

    // netifd installs the update: then each thing is there exactly once, and the softwire carries both families.
    applyAsNetifd(lay.cpe, last);
    const global6 = addrs(lay.cpe, TUN).filter((a) => a.family === 'inet6' && a.scope === 'global');
    assert.deepEqual(global6.map((a) => a.local), [status().ipv6!.address], 'ip addr agrees with softwire status');
    assert.deepEqual(addrs(lay.cpe, TUN).filter((a) => a.family === 'inet').map((a) => a.local), [DEFAULT_USER.framedIp]);
    const d6 = defaults(routes(lay.cpe, '-6'));
    assert.equal(d6.length, 1, JSON.stringify(d6));
    assert.equal(d6[0]!.dev, TUN);
    const d4 = defaults(routes(lay.cpe, '-4'));
    assert.equal(d4.length, 1, JSON.stringify(d4));
    lay.cpe.exec('ping', ['-6', '-c', '2', '-i', '0.2', '-W', '2', '2001:db8:200::1']);
    // An IPv4 address behind the SC (its kernel answers through l2tpns's tun0); only the softwire reaches it.
    lay.sc.ip(['addr', 'add', `${BEHIND_SC4}/32`, 'dev', 'lo']);
    lay.cpe.exec('ping', ['-4', '-c', '2', '-i', '0.2', '-W', '2', BEHIND_SC4]);
    assert.equal(status().state, 'up', 'the tunnel survived netifd routing IPv4 into the TUN');
    assert.ok(existsSync(resolvFile));

    // ifdown: netifd runs teardown, which SIGTERMs the agent; it says goodbye to the SC and cleans up.
    const logOffset = sc.log().length;
    h.clearCalls();
    const td = h.sh(`proto_softwire_teardown ${IFACE} ${TUN}`);
    assert.equal(td.status, 0, td.stderr);
    const t1 = Date.now();
    await until('the agent to exit', () => exited(pid), 10_000, () => h.commandOutput().slice(-2000));
    t.diagnostic(`teardown to agent exit: ${Date.now() - t1} ms`);
    assert.match(h.commandOutput(), /"msg":"stopped"/);
    await sc.waitForLog(/Received StopCCN/, 5000, logOffset);
    const scLog = sc.log().slice(logOffset);
    assert.match(scLog, /Got DHCPv6 message Type: Release/, 'the delegated prefix given back');
    assert.match(scLog, /LCP: recv TerminateReq/, 'PPP closed before the tunnel');
    assert.match(scLog, /Shutting down session \d+/);
    // The agent's last notify may still be running (it is not waited for on exit).
    await until('the link reported down', () => updates(h.calls()).at(-1)?.[0] === `proto_init_update [${TUN}] [0]`, 10_000, () => h.calls().join('\n'));
    const calls = h.calls();
    assert.equal(calls[0], `proto_kill_command [${IFACE}]`);
    // After it come the agent's notifies on the way down; the last one tells netifd the link is down.
    // (An 'up' without the prefix may come first: the agent is still up while it withdraws what it learned.)
    const down = updates(calls.slice(1));
    assert.deepEqual(down.at(-1), [`proto_init_update [${TUN}] [0]`, `proto_send_update [${IFACE}]`], calls.join('\n'));
    for (const u of down) assert.ok(!u.some((l) => l.startsWith('proto_add_ipv6_prefix ')), `a withdrawn prefix is not reported again: ${u.join(' / ')}`);
    assert.ok(!existsSync(conf), 'rendered config (with the password) removed');
    assert.throws(() => lay.cpe.ip(['link', 'show', TUN]), /does not exist/);
    assert.deepEqual(routes(lay.cpe, '-4').filter((x) => x.dst === lay.scAddress), [], 'SC pin removed');
    assert.deepEqual([...defaults(routes(lay.cpe, '-6')), ...defaults(routes(lay.cpe, '-4'))], [], 'no default route left');
    assert.equal(existsSync(resolvFile), false, 'resolv file removed');
    assert.deepEqual(run('ip', ['netns', 'pids', lay.cpe.name]).trim(), '', 'no process left in cpe (agent, notify script)');
  });
});

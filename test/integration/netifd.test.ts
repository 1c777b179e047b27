import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import type { Status } from '../../src/agent/status';
import { emptyStatus } from '../../src/agent/status';
import { UCI_OPTIONS } from '../../src/config/uci';
import { harness as makeHarness, notify, removeHarnessDirs, SH, SH_ARGS, SHIM_DIR, until } from '../helpers/netifd-harness';

/**
 * The netifd protocol handler (openwrt/files/softwire.proto) and the agent's notify
 * script (softwire.script) against a recording shim of netifd-proto.sh and jshn.sh,
 * with a fake agent (fixtures/openwrt-netifd/bin/softwire) that runs its
 * --notify-command once and answers "status --json" with a canned status. The same
 * handler against l2tpns and the real agent: test/interop/netifd-l2tpns.test.ts.
 */

const NOW = 1_750_000_000;
const iso = (epoch: number) => new Date(epoch * 1000).toISOString();

function cannedStatus(): Status {
  const s = emptyStatus(new Date(NOW * 1000));
  s.state = 'up';
  s.ipv6 = {
    linkLocal: 'fe80::2',
    address: '2001:db8:ffff::2',
    delegatedPrefix: { prefix: '2001:db8:100::', length: 56, preferredUntil: iso(NOW + 3600), validUntil: iso(NOW + 7200) },
    dns: ['2001:db8::53', '2001:db8::54'],
    domains: ['example.net'],
    defaultRoute: true,
    lan: [],
  };
  s.ipv4 = { address: '198.51.100.7', peer: '198.51.100.1', dns: ['198.51.100.53'], carryTraffic: true };
  return s;
}

after(removeHarnessDirs);

const harness = () => makeHarness({ fakeNow: NOW });

const DATA = {
  proto: 'softwire',
  auto: true,
  server: ['192.0.2.1'],
  username: 'alice',
  password: 'pa ss',
  mode: 'router',
  hello_interval: 30,
  defaultroute: true,
  peerdns: true,
};

const UP_CALLS = [
  'proto_init_update [sw-wan6] [1]',
  'proto_add_ipv6_address [2001:db8:ffff::2] [128]',
  'proto_add_ipv6_route [::] [0]',
  'proto_add_ipv6_prefix [2001:db8:100::/56,3600,7200]',
  'proto_add_dns_server [2001:db8::53]',
  'proto_add_dns_server [2001:db8::54]',
  'proto_add_dns_search [example.net]',
  'proto_add_ipv4_address [198.51.100.7] [32] [] [198.51.100.1]',
  'proto_add_ipv4_route [0.0.0.0] [0]',
  'proto_add_dns_server [198.51.100.53]',
  'proto_send_update [wan6]',
];

describe(`netifd handler (${SH}, fake agent)`, () => {
  test('init_config declares every UCI option with its type, plus defaultroute and peerdns', () => {
    const h = harness();
    const r = h.sh('proto_softwire_init_config; echo "no_device=$no_device available=$available"');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'no_device=1 available=1');
    const typeOf = (kind: string) =>
      kind === 'int' ? 'int' : kind === 'bool' ? 'boolean' : kind === 'list' || kind === 'lan' ? 'array' : 'string';
    const want = [...UCI_OPTIONS].map(([name, f]) => `proto_config_add_${typeOf(f.kind)} [${name}]`);
    want.push('proto_config_add_boolean [defaultroute]', 'proto_config_add_boolean [peerdns]');
    assert.deepEqual(h.calls(), want);
  });

  test('setup renders a 0600 config and runs the agent; the agent reports up; teardown stops it', async () => {
    const h = harness();
    h.setStatus(cannedStatus());
    h.env.NETIFD_SHIM_EXEC = '1';
    const r = h.sh('json_load "$1"; proto_softwire_setup wan6 sw-wan6', [JSON.stringify(DATA)]);
    assert.equal(r.status, 0, r.stderr);
    const run = join(h.dir, 'run');
    const conf = join(run, 'wan6.json');
    assert.deepEqual(JSON.parse(readFileSync(conf, 'utf8')), {
      sc: ['192.0.2.1'],
      user: 'alice',
      password: 'pa ss',
      mode: 'router',
      helloInterval: 30,
    });
    assert.equal(statSync(conf).mode & 0o777, 0o600);
    assert.equal(statSync(run).mode & 0o777, 0o700);
    assert.ok(!existsSync(join(run, 'wan6.netifd.json')), 'the raw netifd data (with the password) is removed');
    const setup = [
      'proto_export [INTERFACE=wan6]',
      'proto_export [SOFTWIRE_DEVICE=sw-wan6]',
      `proto_export [SOFTWIRE_CONTROL_SOCKET=${run}/wan6.sock]`,
      'proto_export [SOFTWIRE_DEFAULTROUTE=1]',
      'proto_export [SOFTWIRE_PEERDNS=1]',
      `proto_run_command [wan6] [softwire] [run] [-c] [${conf}] [--tun-device] [sw-wan6] [--control-socket] [${run}/wan6.sock] [--notify-command] [${SHIM_DIR}/notify] [--provision] [netifd]`,
    ];
    await until('proto_send_update from the agent', () => h.calls().some((l) => l.startsWith('proto_send_update')));
    const calls = h.calls();
    assert.deepEqual(calls.slice(0, setup.length), setup);
    assert.deepEqual(calls.slice(setup.length), UP_CALLS);
    assert.deepEqual(h.fakeLog().slice(0, 3), [
      `uci-config --netifd-json ${run}/wan6.netifd.json`,
      `run -c ${conf} --tun-device sw-wan6 --control-socket ${run}/wan6.sock --notify-command ${SHIM_DIR}/notify --provision netifd`,
      `status --json --control-socket ${run}/wan6.sock`,
    ]);

    h.clearCalls();
    const t = h.sh('proto_softwire_teardown wan6 sw-wan6');
    assert.equal(t.status, 0, t.stderr);
    assert.deepEqual(h.calls(), ['proto_kill_command [wan6]']);
    assert.ok(!existsSync(conf), 'the rendered config (with the password) is removed');
    await until('the fake agent to get SIGTERM', () => h.fakeLog().includes('terminated'));
  });

  test('a long interface name is cut to IFNAMSIZ; tun_device, control_socket and provision options are honoured', () => {
    const h = harness();
    let r = h.sh('json_load "$1"; proto_softwire_setup averyverylongname', [JSON.stringify({ server: ['192.0.2.1'] })]);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(h.calls().includes('proto_export [SOFTWIRE_DEVICE=sw-averyverylon]'), h.calls().join('\n'));
    h.clearCalls();
    r = h.sh('json_load "$1"; proto_softwire_setup wan6', [
      JSON.stringify({ server: ['192.0.2.1'], tun_device: 'swx', control_socket: '/run/x.sock', defaultroute: false, peerdns: false, provision: 'agent' }),
    ]);
    assert.equal(r.status, 0, r.stderr);
    const calls = h.calls();
    for (const want of [
      'proto_export [SOFTWIRE_DEVICE=swx]',
      'proto_export [SOFTWIRE_CONTROL_SOCKET=/run/x.sock]',
      'proto_export [SOFTWIRE_DEFAULTROUTE=0]',
      'proto_export [SOFTWIRE_PEERDNS=0]',
    ]) {
      assert.ok(calls.includes(want), `${want} in\n${calls.join('\n')}`);
    }
    // An explicit provision option wins over the handler's netifd.
    assert.match(calls.find((l) => l.startsWith('proto_run_command')) ?? '', / \[--provision\] \[agent\]$/);
  });

  test('a bad option fails setup with INVALID_CONFIG, blocks restarts and names the option', () => {
    const h = harness();
    const r = h.sh('json_load "$1"; proto_softwire_setup wan6', [JSON.stringify({ ...DATA, hello_interval: 5, colour: 'blue' })]);
    assert.equal(r.status, 1);
    assert.deepEqual(h.calls(), ['proto_notify_error [wan6] [INVALID_CONFIG]', 'proto_block_restart [wan6]']);
    assert.match(r.stderr, /hello_interval: 5 is not allowed; expected a whole number from 10 to 3600/);
    assert.match(r.stderr, /colour: unknown option/);
    assert.deepEqual(
      execFileSync('ls', ['-A', join(h.dir, 'run')], { encoding: 'utf8' }).trim(),
      '',
      'no config or netifd data with secrets is left behind',
    );
  });
});

describe(`notify script (${SH})`, () => {
  test('up reports address, default route, prefix with lifetimes, DNS and the IPCP address', () => {
    const h = harness();
    h.setStatus(cannedStatus());
    const r = notify(h, 'up');
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(h.calls(), UP_CALLS);
  });

  test('defaultroute 0 and peerdns 0 leave out routes and DNS; infinite and past lifetimes', () => {
    const h = harness();
    const s = cannedStatus();
    s.ipv6!.delegatedPrefix = { prefix: '2001:db8:200::', length: 60, preferredUntil: iso(NOW - 5), validUntil: null };
    s.ipv6!.address = '2001:db8:ffff::9/64';
    s.ipv4 = null;
    h.setStatus(s);
    const r = notify(h, 'up', { SOFTWIRE_DEFAULTROUTE: '0', SOFTWIRE_PEERDNS: '0' });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(h.calls(), [
      'proto_init_update [sw-wan6] [1]',
      'proto_add_ipv6_address [2001:db8:ffff::9] [64]',
      'proto_add_ipv6_prefix [2001:db8:200::/60,0,4294967295]',
      'proto_send_update [wan6]',
    ]);
  });

  test('host mode without a prefix; IPCP up without carrying IPv4 reports no IPv4', () => {
    const h = harness();
    const s = cannedStatus();
    s.ipv6!.delegatedPrefix = null;
    s.ipv6!.defaultRoute = false;
    s.ipv6!.dns = [];
    s.ipv6!.domains = [];
    s.ipv4!.carryTraffic = false;
    s.ipv4!.dns = [];
    h.setStatus(s);
    assert.equal(notify(h, 'up').status, 0);
    assert.deepEqual(h.calls(), [
      'proto_init_update [sw-wan6] [1]',
      'proto_add_ipv6_address [2001:db8:ffff::2] [128]',
      'proto_send_update [wan6]',
    ]);
  });

  test('an IPCP peer that is the SC itself is left out; a DNS server listed twice is reported once', () => {
    const h = harness();
    const s = cannedStatus();
    s.sc = { address: '198.51.100.1', port: 1701 };
    // What the real agent reports with family dual: the IPCP servers among the IPv6 ones too.
    s.ipv6!.dns = ['2001:db8::53', '198.51.100.53'];
    h.setStatus(s);
    assert.equal(notify(h, 'up').status, 0);
    assert.deepEqual(h.calls(), [
      'proto_init_update [sw-wan6] [1]',
      'proto_add_ipv6_address [2001:db8:ffff::2] [128]',
      'proto_add_ipv6_route [::] [0]',
      'proto_add_ipv6_prefix [2001:db8:100::/56,3600,7200]',
      'proto_add_dns_server [2001:db8::53]',
      'proto_add_dns_server [198.51.100.53]',
      'proto_add_dns_search [example.net]',
      'proto_add_ipv4_address [198.51.100.7] [32] [] []',
      'proto_add_ipv4_route [0.0.0.0] [0]',
      'proto_send_update [wan6]',
    ]);
  });

  test('down, connecting, and an "up" whose status is no longer up report the link down', () => {
    const h = harness();
    const s = cannedStatus();
    s.state = 'connecting';
    h.setStatus(s);
    const down = ['proto_init_update [sw-wan6] [0]', 'proto_send_update [wan6]'];
    for (const state of ['down', 'connecting', 'up']) {
      h.clearCalls();
      const r = notify(h, state);
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(h.calls(), down, state);
    }
  });

  test('refuses an unknown state, a missing environment and an unreadable status', () => {
    const h = harness();
    let r = notify(h, 'sideways');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /unknown state 'sideways'/);
    r = notify(h, 'up', { INTERFACE: '' });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /INTERFACE and SOFTWIRE_DEVICE must be set/);
    writeFileSync(join(h.dir, 'status.json'), 'not json');
    r = notify(h, 'up');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /status is not JSON/);
    assert.deepEqual(h.calls(), []);
  });

  test('ISO times convert to the same epoch seconds as Date does', () => {
    const h = harness();
    const times = fc.sample(fc.integer({ min: 0, max: 7_258_118_400 }), { numRuns: 200, seed: 5571 });
    times.push(0, 951_782_400 /* 2000-02-29 */, 4_107_542_399 /* 2100-02-28T23:59:59 */, 4_107_542_400);
    const isos = times.map((t) => iso(t));
    const r = spawnSync(
      SH,
      [
        ...SH_ARGS,
        '-c',
        'INCLUDE_ONLY=1; . "$NETIFD_SHIM_DIR/shim.sh"; . "$SOFTWIRE_OPENWRT_FILES/softwire.script"; for t; do softwire_epoch "$t"; done; softwire_epoch 2025-01-01 || echo refused',
        'sh',
        ...isos,
      ],
      { env: h.env, encoding: 'utf8' },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), [...times.map(String), 'refused']);
  });
});

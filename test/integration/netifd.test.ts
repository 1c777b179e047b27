import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import type { Status } from '../../src/agent/status';
import { emptyStatus } from '../../src/agent/status';
import { UCI_OPTIONS } from '../../src/config/uci';

/**
 * The netifd protocol handler (openwrt/files/softwire.proto) and the agent's notify
 * script (softwire.script), run by a POSIX shell against a recording shim of
 * netifd-proto.sh and jshn.sh (fixtures/openwrt-netifd/shim.sh).
 *
 * The agent is a parameter: by default a fake (fixtures/openwrt-netifd/bin/softwire)
 * that runs its --notify-command once and answers "status --json" with a canned
 * status. SOFTWIRE_NETIFD_AGENT=/path/to/softwire swaps in a real one (for an
 * end-to-end run against a real SC); the exact-call assertions then give way to
 * shape checks, because addresses and lifetimes come from the SC.
 */

const REPO = resolve(__dirname, '../..');
const FILES = join(REPO, 'openwrt/files');
const SHIM_DIR = join(REPO, 'test/integration/fixtures/openwrt-netifd');
const REAL_AGENT = process.env.SOFTWIRE_NETIFD_AGENT;
/** Shell under test: busybox ash when present (what OpenWrt runs), else dash. */
const SH = process.env.SOFTWIRE_TEST_SH ?? (existsSync('/bin/busybox') ? '/bin/busybox' : 'dash');
const SH_ARGS = SH.endsWith('busybox') ? ['sh'] : [];

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

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Harness {
  dir: string;
  env: NodeJS.ProcessEnv;
  /** Runs shell code after sourcing the shim and the handler (INCLUDE_ONLY, as netifd's includes do). */
  sh(code: string, args?: string[]): { status: number | null; stdout: string; stderr: string };
  /** The recorded proto_* calls, one "name [arg] ..." line each. */
  calls(): string[];
  fakeLog(): string[];
  setStatus(s: unknown): void;
  clearCalls(): void;
}

function harness(): Harness {
  const dir = mkdtempSync(join(tmpdir(), 'softwire-netifd-'));
  dirs.push(dir);
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  // PATH: our date first (fixed clock), then the agent under test.
  symlinkSync(join(SHIM_DIR, 'bin/date'), join(bin, 'date'));
  symlinkSync(REAL_AGENT ?? join(SHIM_DIR, 'bin/softwire'), join(bin, 'softwire'));
  const log = join(dir, 'proto.log');
  const statusFile = join(dir, 'status.json');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: `${bin}:${process.env.PATH}`,
    NETIFD_SHIM_DIR: SHIM_DIR,
    NETIFD_SHIM_LOG: log,
    SOFTWIRE_OPENWRT_FILES: FILES,
    SOFTWIRE_RUNDIR: join(dir, 'run'),
    SOFTWIRE_NOTIFY: join(SHIM_DIR, 'notify'),
    SOFTWIRE_REPO: REPO,
    SOFTWIRE_FAKE_LOG: join(dir, 'fake.log'),
    SOFTWIRE_FAKE_STATUS: statusFile,
    ...(REAL_AGENT ? {} : { SOFTWIRE_FAKE_NOW: String(NOW) }),
  };
  const read = (f: string) => (existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter(Boolean) : []);
  return {
    dir,
    env,
    sh(code, args = []) {
      const script = `INCLUDE_ONLY=1\n. "$NETIFD_SHIM_DIR/shim.sh"\n. "$SOFTWIRE_OPENWRT_FILES/softwire.proto"\n${code}`;
      const r = spawnSync(SH, [...SH_ARGS, '-c', script, 'sh', ...args], { env, encoding: 'utf8', timeout: 30_000 });
      return { status: r.status, stdout: r.stdout, stderr: r.stderr };
    },
    calls: () => read(log),
    fakeLog: () => read(join(dir, 'fake.log')),
    setStatus: (s) => writeFileSync(statusFile, JSON.stringify(s)),
    clearCalls: () => rmSync(log, { force: true }),
  };
}

/** Polls for a condition on a child process's output (not timer logic: the child runs for real). */
async function until(what: string, check: () => boolean, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Runs the notify script as the agent would: `softwire.script STATE`, with the handler's exports. */
function notify(h: Harness, state: string, extra: NodeJS.ProcessEnv = {}) {
  return spawnSync(join(SHIM_DIR, 'notify'), [state], {
    env: { ...h.env, INTERFACE: 'wan6', SOFTWIRE_DEVICE: 'sw-wan6', SOFTWIRE_CONTROL_SOCKET: join(h.dir, 'run/wan6.sock'), ...extra },
    encoding: 'utf8',
  });
}

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

describe(`netifd handler (${SH}${REAL_AGENT ? `, agent ${REAL_AGENT}` : ', fake agent'})`, () => {
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
      `proto_run_command [wan6] [softwire] [run] [-c] [${conf}] [--tun-device] [sw-wan6] [--control-socket] [${run}/wan6.sock] [--notify-command] [${SHIM_DIR}/notify]`,
    ];
    await until('proto_send_update from the agent', () => h.calls().some((l) => l.startsWith('proto_send_update')), REAL_AGENT ? 120_000 : 15_000);
    const calls = h.calls();
    assert.deepEqual(calls.slice(0, setup.length), setup);
    if (REAL_AGENT) {
      const up = calls.slice(setup.length);
      assert.equal(up[0], 'proto_init_update [sw-wan6] [1]');
      assert.ok(up.some((l) => /^proto_add_ipv6_address \[[0-9a-f:]+\] \[\d+\]$/.test(l)));
      assert.equal(up.at(-1), 'proto_send_update [wan6]');
    } else {
      assert.deepEqual(calls.slice(setup.length), UP_CALLS);
      assert.deepEqual(h.fakeLog().slice(0, 3), [
        `uci-config --netifd-json ${run}/wan6.netifd.json`,
        `run -c ${conf} --tun-device sw-wan6 --control-socket ${run}/wan6.sock --notify-command ${SHIM_DIR}/notify`,
        `status --json --control-socket ${run}/wan6.sock`,
      ]);
    }

    h.clearCalls();
    const t = h.sh('proto_softwire_teardown wan6 sw-wan6');
    assert.equal(t.status, 0, t.stderr);
    assert.deepEqual(h.calls(), ['proto_kill_command [wan6]']);
    assert.ok(!existsSync(conf), 'the rendered config (with the password) is removed');
    if (!REAL_AGENT) await until('the fake agent to get SIGTERM', () => h.fakeLog().includes('terminated'));
  });

  test('a long interface name is cut to IFNAMSIZ; tun_device and control_socket options are honoured', () => {
    const h = harness();
    let r = h.sh('json_load "$1"; proto_softwire_setup averyverylongname', [JSON.stringify({ server: ['192.0.2.1'] })]);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(h.calls().includes('proto_export [SOFTWIRE_DEVICE=sw-averyverylon]'), h.calls().join('\n'));
    h.clearCalls();
    r = h.sh('json_load "$1"; proto_softwire_setup wan6', [
      JSON.stringify({ server: ['192.0.2.1'], tun_device: 'swx', control_socket: '/run/x.sock', defaultroute: false, peerdns: false }),
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

describe(`notify script (${SH})`, { skip: REAL_AGENT ? 'needs the canned status of the fake agent' : false }, () => {
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

  test('host mode without a prefix, and an IPv4-only softwire without carrying traffic', () => {
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
      'proto_add_ipv4_address [198.51.100.7] [32] [] [198.51.100.1]',
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

import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, test } from 'node:test';
import { DEFAULT_USER, L2tpnsSc, l2tpnsAvailable } from '../lab/l2tpns';
import { link, Topology, waitFor } from '../lab/netns';
import { scLayout } from '../lab/topology';
import { AgentProc, dropPrivileges, type RunAs } from '../helpers/agent-proc';
import { stagedInstall } from '../helpers/staged-install';

/**
 * The agent as an unprivileged user keeping only CAP_NET_ADMIN and CAP_NET_RAW
 * (what the systemd unit in contrib/systemd grants), against l2tpns; the same
 * user without them fails with messages that name the capability; the files
 * it makes have tight modes.
 *
 * The user is `nobody` (65534). setpriv drops root and keeps the capabilities as
 * ambient ones, which survive the exec of node (it has no file capabilities).
 * This host's /dev/net/tun is 0600, so each run gets a 0666 node (what udev
 * ships) bind-mounted over it in its private mount namespace.
 *
 * What nobody runs is a staged install (test/helpers/staged-install.ts), not the
 * checkout, which may sit where nobody cannot enter (a clone in /root, 0700).
 */

const REPO = resolve(__dirname, '../..');
const BIN = join(REPO, 'bin/softwire');
const PROBE = join(__dirname, 'fixtures/privilege-probe.ts');
const NOBODY = 65534;
const HINT = /needs CAP_NET_ADMIN \(run as root or grant the capability; see README "Least privilege"\)/;
const STACK = /\n\s+at .+:\d+:\d+/;

function precondition(): string | false {
  if (process.getuid?.() !== 0) return 'needs root (namespaces, setpriv to another user)';
  for (const cmd of ['setpriv', 'mknod']) {
    if (spawnSync('sh', ['-c', `command -v ${cmd}`]).status !== 0) return `${cmd} not installed`;
  }
  return false;
}

const skip = precondition();
const scAvail = l2tpnsAvailable();
const scSkip = skip || (scAvail.ok ? false : scAvail.message);

/** A 0666 TUN node, the mode most distributions give /dev/net/tun. */
function tunNode(): string {
  const dir = mkdtempSync(join(tmpdir(), 'softwire-lp-tun-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const node = join(dir, 'tun');
  execFileSync('mknod', ['-m', '0666', node, 'c', '10', '200']);
  chmodSync(node, 0o666);
  return node;
}

function runAs(caps: string[], withTunNode = true): RunAs {
  return { uid: NOBODY, gid: NOBODY, caps, tunNode: withTunNode ? tunNode() : undefined };
}

interface ProbeResult {
  uid: number;
  preflight: string[];
  tun: string;
  sysctl: string;
  route: string;
  icmp6: string;
}

describe('least privilege: each privileged operation, as nobody', { skip }, () => {
  const probe = (as: RunAs): ProbeResult => {
    const topo = new Topology();
    try {
      const ns = topo.ns('lp');
      const [cmd, args] = dropPrivileges(as, ['node', stagedInstall().bundle(PROBE, 'privilege-probe'), 'lo']);
      return JSON.parse(ns.exec(cmd, args)) as ProbeResult;
    } finally {
      topo.destroy();
    }
  };

  test('with CAP_NET_ADMIN and CAP_NET_RAW: TUN, sysctl, routes and the raw ICMPv6 socket all work; no preflight problem', () => {
    const r = probe(runAs(['net_admin', 'net_raw']));
    assert.equal(r.uid, NOBODY);
    assert.deepEqual(r, { uid: NOBODY, preflight: [], tun: 'ok', sysctl: 'ok', route: 'ok', icmp6: 'ok' });
  });

  test('without capabilities: every failure names the capability it lacks', () => {
    const r = probe(runAs([]));
    assert.equal(r.uid, NOBODY);
    assert.match(r.tun, /ioctl TUNSETIFF: .*\(EPERM\): needs CAP_NET_ADMIN/);
    assert.match(r.sysctl, /net\.ipv6\.conf\.lo\.accept_ra: write 0: permission denied: needs CAP_NET_ADMIN/);
    assert.match(r.route, /add route 2001:db8:77::\/48 unreachable: EPERM: needs CAP_NET_ADMIN/);
    assert.match(r.icmp6, /SOCK_RAW.*\(EPERM\): needs CAP_NET_RAW/);
    assert.equal(r.preflight.length, 2, r.preflight.join('\n'));
    assert.match(r.preflight[0]!, /^missing CAP_NET_ADMIN: /);
    assert.match(r.preflight[1]!, /^missing CAP_NET_RAW: /);
    for (const v of [r.tun, r.sysctl, r.route, r.icmp6]) assert.match(v, /see README "Least privilege"/);
  });

  test('CAP_NET_ADMIN alone: only the raw ICMPv6 socket (built-in RAs) is refused', () => {
    const r = probe(runAs(['net_admin']));
    assert.deepEqual([r.tun, r.sysctl, r.route], ['ok', 'ok', 'ok']);
    assert.match(r.icmp6, /needs CAP_NET_RAW/);
    assert.deepEqual(r.preflight.map((p) => p.split(':')[0]), ['missing CAP_NET_RAW']);
  });

  test('a /dev/net/tun the user may not open is named with its mode, not blamed on a capability', (t) => {
    const mode = statSync('/dev/net/tun').mode & 0o777;
    if ((mode & 0o006) === 0o006) {
      t.skip(`this host's /dev/net/tun is ${mode.toString(8)}: every user may open it`);
      return;
    }
    const r = probe(runAs(['net_admin', 'net_raw'], false));
    assert.match(r.tun, /open \/dev\/net\/tun: Permission denied \(EACCES\): \/dev\/net\/tun \(mode 0\d{3}, owner 0:0\) is not readable and writable by uid 65534/);
    assert.doesNotMatch(r.tun, /needs CAP_/);
    assert.equal(r.preflight.length, 1);
    assert.match(r.preflight[0]!, /^\/dev\/net\/tun \(mode/);
  });
});

describe('least privilege: the agent as nobody against l2tpns', { skip: scSkip }, () => {
  test('router mode with only CAP_NET_ADMIN + CAP_NET_RAW: up, SLAAC, prefix, default route, LAN RAs, resolv file; tight file modes; clean stop', async (t) => {
    const lay = scLayout();
    t.after(() => lay.topo.destroy());
    const lanHost = lay.topo.ns('lan');
    const veth = link(lay.cpe, undefined, lanHost, undefined);
    lanHost.sysctl('net.ipv6.conf.all.forwarding', '0');
    lanHost.sysctl(`net.ipv6.conf.${veth.b}.accept_ra`, '2');
    lanHost.sysctl(`net.ipv6.conf.${veth.b}.autoconf`, '1');
    const sc = await L2tpnsSc.start(lay.sc, { bindAddress: lay.scAddress });
    t.after(async () => {
      await sc.stop();
      sc.cleanup();
    });
    const a = AgentProc.start(
      lay.cpe,
      ['--sc', lay.scAddress, '--user', DEFAULT_USER.name, '--mode', 'router', '--lan', veth.a, '--ra', 'builtin'],
      { password: DEFAULT_USER.password, runAs: runAs(['net_admin', 'net_raw']), bin: stagedInstall().bin },
    );
    t.after(() => a.stop());
    await a.waitState('up', 20_000);

    // The process really is nobody with exactly the two capabilities.
    const procStatus = readFileSync(`/proc/${a.proc.pid}/status`, 'utf8');
    assert.match(procStatus, /^Uid:\s+65534\s+65534\s+65534\s+65534$/m);
    assert.match(procStatus, /^CapEff:\s+0+3000$/m, 'CAP_NET_ADMIN (12) and CAP_NET_RAW (13) only');
    assert.match(procStatus, /^CapBnd:\s+0+3000$/m);

    await a.waitLog(/\(SLAAC\)/, 10_000);
    await a.waitLog(/^LAN numbered from 2001:db8:100::\/56/, 10_000);
    const s = await a.status();
    assert.equal(s.ipv6?.address, '2001:db8:200:0:c633:6480::');
    assert.equal(s.ipv6?.defaultRoute, true);
    const routes = lay.cpe.ipJson<{ dst: string; dev: string }[]>(['-6', 'route', 'show', 'default']);
    assert.ok(routes.some((r) => r.dev === 'sw0'), JSON.stringify(routes));
    // sysctl writes as nobody: accept_ra off on the TUN, forwarding on for the router role.
    assert.equal(lay.cpe.exec('cat', ['/proc/sys/net/ipv6/conf/sw0/accept_ra']).trim(), '0');
    assert.equal(lay.cpe.exec('cat', ['/proc/sys/net/ipv6/conf/all/forwarding']).trim(), '1');
    // The raw ICMPv6 socket works: the LAN host numbers itself from our RAs.
    await waitFor('LAN host address from the delegated prefix', 15_000, () =>
      lanHost
        .ipJson<{ addr_info: { local: string }[] }[]>(['-6', 'addr', 'show', 'dev', veth.b])
        .flatMap((x) => x.addr_info)
        .find((x) => x.local.startsWith('2001:db8:100:')),
    );

    // File modes and owners.
    const mode = (p: string) => statSync(p).mode & 0o777;
    const owner = (p: string) => statSync(p).uid;
    assert.ok(statSync(a.socket).isSocket());
    assert.equal(mode(a.socket), 0o600, 'control socket');
    assert.equal(owner(a.socket), NOBODY);
    const stateDir = join(a.dir, 'state');
    assert.equal(mode(stateDir), 0o700, 'state dir');
    assert.equal(mode(join(stateDir, 'state.json')), 0o600, 'state file (DUID, last prefix)');
    assert.equal(owner(join(stateDir, 'state.json')), NOBODY);
    const state = JSON.parse(readFileSync(join(stateDir, 'state.json'), 'utf8')) as { duid?: string; lastPrefix?: { prefix: string } };
    assert.ok(state.duid);
    assert.equal(state.lastPrefix?.prefix, '2001:db8:100::');
    const resolv = join(a.dir, 'resolv.conf');
    assert.equal(mode(resolv), 0o644, 'resolv file: the resolver must read it');
    assert.match(readFileSync(resolv, 'utf8'), /^nameserver 2001:db8:200::53$/m);

    const { code, tookMs } = await a.stop();
    t.diagnostic(`graceful shutdown as nobody took ${tookMs} ms`);
    assert.equal(code, 0, a.tail());
    assert.throws(() => lay.cpe.ip(['link', 'show', 'sw0']), /does not exist/);
    assert.deepEqual(lay.cpe.ipJson(['-6', 'route', 'show', 'proto', '157']), [], 'no route of ours left behind');
    assert.ok(a.find(/^stopped$/));
    assert.equal(a.lines.filter((l) => l.level >= 50).length, 0, `no error lines:\n${a.tail()}`);
  });

  test('no capabilities: a clear message naming CAP_NET_ADMIN, no stack trace', async (t) => {
    const lay = scLayout();
    t.after(() => lay.topo.destroy());
    const sc = await L2tpnsSc.start(lay.sc, { bindAddress: lay.scAddress });
    t.after(async () => {
      await sc.stop();
      sc.cleanup();
    });
    const a = AgentProc.start(lay.cpe, ['--sc', lay.scAddress, '--user', DEFAULT_USER.name, '--mode', 'host'], {
      password: DEFAULT_USER.password,
      runAs: runAs([]),
      bin: stagedInstall().bin,
    });
    t.after(() => a.stop());
    // With a startup check the agent exits 3 before dialling; without one the TUN
    // open after PPP fails. Either way the operator reads which capability is missing.
    // The startup check logs its fatal line before the process exits, so only the TUN
    // failure (no startup check) may end the wait early; the fatal line waits for the exit.
    const TUN_FAIL = /cannot open TUN device sw0: tunOpen\(sw0\): ioctl TUNSETIFF: Operation not permitted \(EPERM\): needs CAP_NET_ADMIN/;
    const exited = await waitFor('the agent to exit or report the missing capability', 15_000, () =>
      a.proc.exitCode !== null ? 'exit' : a.lines.some((l) => TUN_FAIL.test(l.msg)) ? 'log' : undefined,
    );
    // Messages and error fields as written, not JSON-escaped, so the quotes in the hint
    // match; stdout may still be draining when the exit is seen.
    const said = () => [...a.lines.map((l) => `${l.msg} ${String(l.err ?? '')}`), ...a.stderr];
    await waitFor('the message naming the capability', 5_000, () => said().some((x) => HINT.test(x)) || undefined);
    const text = said().join('\n');
    assert.match(text, HINT);
    assert.doesNotMatch(text, STACK, 'no stack trace');
    if (exited === 'exit') {
      assert.equal(a.proc.exitCode, 3, text);
    } else {
      const line = a.lines.find((l) => TUN_FAIL.test(l.msg))!;
      assert.match(line.msg, HINT);
      const s = await a.status();
      assert.notEqual(s.state, 'up');
      assert.match(s.lastError?.message ?? '', HINT);
    }
  });
});

describe('least privilege: config files holding secrets', { skip }, () => {
  test('softwire run refuses a world-readable config with a password: exit 2, "chmod 600 FILE", no stack trace', () => {
    const dir = mkdtempSync(join(tmpdir(), 'softwire-lp-cfg-'));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'softwire.json');
    writeFileSync(file, JSON.stringify({ sc: ['192.0.2.1'], user: 'u', password: 'pw' }));
    chmodSync(file, 0o644);
    const r = spawnSync('node', [BIN, 'run', '-c', file, '--control-socket', join(dir, 'sock')], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 2, `${r.stdout}\n${r.stderr}`);
    assert.equal(r.stderr.trim(), `softwire: config: ${file} holds a secret and is readable by every user (mode 0644); chmod 600 ${file}`);
  });
});

describe('least privilege: the OpenWrt init script', { skip }, () => {
  test('with ujail, the capabilities file and the user present: one jailed instance as that user, JSON root:user 0640, runtime and state dirs the user\'s', (t) => {
    if (spawnSync('sh', ['-c', 'command -v dash']).status !== 0) {
      t.skip('dash not installed');
      return;
    }
    const dir = mkdtempSync(join(tmpdir(), 'softwire-lp-init-'));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const uci = join(dir, 'softwire');
    writeFileSync(uci, ["config softwire 'main'", "\toption enabled '1'", "\tlist server '192.0.2.1'", "\toption username 'u'", "\toption password 'pw'"].join('\n'));
    const log = join(dir, 'procd.log');
    const caps = join(REPO, 'openwrt/files/softwire.capabilities.json');
    // daemon (1:1) stands in for the package's softwire user: a user with a group of the same name.
    const r = spawnSync(
      'dash',
      [
        '-c',
        '. "$SHIM"; . "$INIT"; PROG="$FAKE_PROG"; RUNDIR="$DIR/run"; ETCDIR="$DIR/etc"; STATEDIR="$DIR/lib"; UCI_FILE="$UCI"; RUN_USER=daemon; UJAIL=/bin/true; CAPABILITIES="$CAPS"; start_service',
      ],
      {
        env: {
          ...process.env,
          SHIM: join(REPO, 'test/integration/fixtures/openwrt-procd/shim.sh'),
          INIT: join(REPO, 'openwrt/files/softwire.init'),
          FAKE_PROG: join(REPO, 'test/integration/fixtures/openwrt-procd/softwire'),
          SOFTWIRE_REPO: REPO,
          DIR: dir,
          UCI: uci,
          CAPS: caps,
          PROCD_SHIM_LOG: log,
        },
        encoding: 'utf8',
      },
    );
    assert.equal(r.status, 0, r.stderr);
    const conf = join(dir, 'etc/main.json');
    assert.deepEqual(readFileSync(log, 'utf8').trim().split('\n'), [
      'procd_open_instance [main]',
      `procd_set_param [command] [${join(REPO, 'test/integration/fixtures/openwrt-procd/softwire')}] [run] [-c] [${conf}]`,
      `procd_set_param [file] [${conf}]`,
      'procd_set_param [reload_signal] [HUP]',
      'procd_set_param [respawn] [3600] [5] [5]',
      'procd_set_param [stdout] [1]',
      'procd_set_param [stderr] [1]',
      'procd_add_jail [softwire]',
      'procd_set_param [user] [daemon]',
      'procd_set_param [group] [daemon]',
      `procd_set_param [capabilities] [${caps}]`,
      'procd_set_param [no_new_privs] [1]',
      'procd_close_instance',
    ]);
    const st = (p: string) => {
      const s = statSync(p);
      return { mode: (s.mode & 0o777).toString(8), uid: s.uid, gid: s.gid };
    };
    assert.deepEqual(st(join(dir, 'etc')), { mode: '750', uid: 0, gid: 1 }, 'config dir: the agent reads, cannot replace');
    assert.deepEqual(st(conf), { mode: '640', uid: 0, gid: 1 });
    assert.deepEqual(st(join(dir, 'run')), { mode: '755', uid: 1, gid: 1 }, 'runtime dir: control socket and resolv.conf');
    assert.deepEqual(st(join(dir, 'lib')), { mode: '700', uid: 1, gid: 1 }, 'state dir');
    assert.deepEqual(JSON.parse(readFileSync(conf, 'utf8')), { sc: ['192.0.2.1'], password: 'pw', user: 'u' });
    // The capabilities file is procd's format: the two capabilities in all five sets.
    const capsJson = JSON.parse(readFileSync(caps, 'utf8')) as Record<string, string[]>;
    assert.deepEqual(Object.keys(capsJson).sort(), ['ambient', 'bounding', 'effective', 'inheritable', 'permitted']);
    for (const set of Object.values(capsJson)) assert.deepEqual(set, ['CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_NET_BIND_SERVICE']);
  });
});

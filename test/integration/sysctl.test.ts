import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import fc from 'fast-check';
import { isValidInterfaceName, Sysctl, SysctlError } from '../../src/platform/sysctl';
import { Netns } from '../helpers/netns';

const ROOT = resolve(__dirname, '../..');
const RUN = 'test/integration/fixtures/netlink-run.ts';

const IPV6_SETTINGS = ['accept_ra', 'forwarding', 'disable_ipv6', 'autoconf', 'accept_dad'] as const;

/** A fake /proc/sys with conf dirs for the given interfaces, all values 1. */
function fakeRoot(t: TestContext, ifnames: string[]): string {
  const root = mkdtempSync(join(tmpdir(), 'sysctl-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  for (const ifname of ['all', 'default', ...ifnames]) {
    const dir = join(root, 'net', 'ipv6', 'conf', ifname);
    mkdirSync(dir, { recursive: true });
    for (const s of IPV6_SETTINGS) writeFileSync(join(dir, s), '1\n');
  }
  mkdirSync(join(root, 'net', 'ipv4'), { recursive: true });
  writeFileSync(join(root, 'net', 'ipv4', 'ip_forward'), '0\n');
  return root;
}

/** Every file under `dir` with its content, to prove a rejected call wrote nothing. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) {
      const p = join(e.parentPath, e.name);
      out[p] = readFileSync(p, 'utf8');
    }
  }
  return out;
}

async function rejectsWith(p: Promise<unknown>, key: string, detail: RegExp): Promise<SysctlError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof SysctlError, `not a SysctlError: ${String(e)}`);
    assert.equal(e.key, key);
    assert.ok(e.message.startsWith(`sysctl ${key}: `), e.message);
    assert.match(e.message, detail);
    return e;
  }
  assert.fail(`expected a rejection naming ${key}`);
}

describe('sysctl against a directory', () => {
  test('writes and reads per-interface IPv6 settings and global forwarding', async (t) => {
    const root = fakeRoot(t, ['eth0', 'eth0.100']);
    const s = new Sysctl(root);
    await s.setIpv6('eth0', 'accept_ra', 2);
    await s.setIpv6('eth0', 'autoconf', 0);
    assert.equal(readFileSync(join(root, 'net/ipv6/conf/eth0/accept_ra'), 'utf8'), '2\n');
    assert.equal(await s.getIpv6('eth0', 'accept_ra'), 2);
    assert.equal(await s.getIpv6('eth0', 'autoconf'), 0);
    assert.equal(await s.getIpv6('eth0', 'forwarding'), 1, 'other settings untouched');
    // A VLAN name keeps its dot inside one path segment.
    await s.setIpv6('eth0.100', 'disable_ipv6', 0);
    assert.equal(readFileSync(join(root, 'net/ipv6/conf/eth0.100/disable_ipv6'), 'utf8'), '0\n');

    await s.setIpv4Forwarding(true);
    await s.setIpv6Forwarding(false);
    assert.equal(readFileSync(join(root, 'net/ipv4/ip_forward'), 'utf8'), '1\n');
    assert.equal(readFileSync(join(root, 'net/ipv6/conf/all/forwarding'), 'utf8'), '0\n');
    assert.equal(await s.ipv4Forwarding(), true);
    assert.equal(await s.ipv6Forwarding(), false);
  });

  test('rejects bad interface names and values, naming the key, and writes nothing', async (t) => {
    const root = fakeRoot(t, ['eth0']);
    // A file outside conf/ that a traversal would reach.
    writeFileSync(join(root, 'net', 'ipv6', 'accept_ra'), 'keep\n');
    const before = snapshot(root);
    const s = new Sysctl(root);
    for (const bad of ['..', '.', '../..', 'a/b', '', 'eth 0', 'eth0:1', 'x'.repeat(16), '..\0']) {
      await rejectsWith(
        s.setIpv6(bad, 'accept_ra', 0),
        `net.ipv6.conf.${bad.replaceAll('.', '/')}.accept_ra`,
        /invalid interface name/,
      );
    }
    await rejectsWith(s.setIpv6('eth0', 'accept_ra', 3), 'net.ipv6.conf.eth0.accept_ra', /value 3 is not one of 0, 1, 2/);
    await rejectsWith(s.setIpv6('eth0', 'forwarding', 2), 'net.ipv6.conf.eth0.forwarding', /not one of 0, 1/);
    await rejectsWith(s.setIpv6('eth0', 'bogus' as 'accept_ra', 0), 'net.ipv6.conf.eth0.bogus', /unknown setting/);
    await rejectsWith(s.write(['net', '..', 'x'], 1), 'net.//.x', /invalid key/);
    await rejectsWith(s.write(['net', 'ipv4', 'ip_forward'], '1\n0'), 'net.ipv4.ip_forward', /single line/);
    assert.deepEqual(snapshot(root), before);
  });

  test('a missing interface is an ENOENT error that names the key, and creates nothing', async (t) => {
    const root = fakeRoot(t, []);
    const s = new Sysctl(root);
    const e = await rejectsWith(s.setIpv6('eth9', 'accept_ra', 0), 'net.ipv6.conf.eth9.accept_ra', /no such key/);
    assert.equal(e.code, 'ENOENT');
    await rejectsWith(s.getIpv6('eth9', 'accept_ra'), 'net.ipv6.conf.eth9.accept_ra', /read: no such key/);
    writeFileSync(join(root, 'net/ipv6/conf/all/autoconf'), 'yes\n');
    await rejectsWith(s.getIpv6('all', 'autoconf'), 'net.ipv6.conf.all.autoconf', /not an integer/);
    assert.deepEqual(readdirSync(join(root, 'net/ipv6/conf')).sort(), ['all', 'default']);
  });

  test('every name that passes validation stays inside conf/', () => {
    const conf = join('/proc/sys', 'net', 'ipv6', 'conf');
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom('..', '.', '../x', 'a/../..', '...')), (name) => {
        if (!isValidInterfaceName(name)) return;
        const p = resolve(conf, name, 'accept_ra');
        assert.equal(p, join(conf, name, 'accept_ra'));
        assert.ok(
          p.startsWith(`${conf}/`) &&
            !p
              .slice(conf.length + 1)
              .slice(0, -'/accept_ra'.length)
              .includes('/'),
        );
      }),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 1000) },
    );
  });
});

describe('sysctl against the kernel (network namespace)', () => {
  test('changes the namespace values that /proc/sys shows', (t) => {
    const ns = Netns.create('sc');
    t.after(() => ns.destroy());
    ns.ip(['link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'vb']);
    const read = (path: string) => ns.exec('cat', [`/proc/sys/${path}`]).trim();
    // Start from the opposite of what we will write.
    ns.sysctl('net.ipv6.conf.va.accept_ra', '1');
    ns.sysctl('net.ipv6.conf.va.accept_dad', '1');
    ns.sysctl('net.ipv6.conf.all.forwarding', '0');
    ns.sysctl('net.ipv4.ip_forward', '0');
    const steps = [
      { op: 'sysctl.setIpv6', args: ['va', 'accept_ra', 0] },
      { op: 'sysctl.setIpv6', args: ['va', 'accept_dad', 0] },
      { op: 'sysctl.setIpv6', args: ['va', 'disable_ipv6', 1] },
      { op: 'sysctl.setIpv6Forwarding', args: [true] },
      { op: 'sysctl.setIpv4Forwarding', args: [true] },
      { op: 'sysctl.getIpv6', args: ['va', 'accept_ra'] },
      { op: 'sysctl.setIpv6', args: ['nope0', 'accept_ra', 0] },
    ];
    const out = execFileSync('ip', ['netns', 'exec', ns.name, process.execPath, '--import', 'tsx', RUN, JSON.stringify(steps)], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 20_000,
    });
    const results = out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { ok: boolean; result?: unknown; error?: { message: string; code?: string } });
    assert.equal(results.length, steps.length);
    for (const r of results.slice(0, 6)) assert.ok(r.ok, r.error?.message);
    assert.equal(read('net/ipv6/conf/va/accept_ra'), '0');
    assert.equal(read('net/ipv6/conf/va/accept_dad'), '0');
    assert.equal(read('net/ipv6/conf/va/disable_ipv6'), '1');
    assert.equal(read('net/ipv6/conf/all/forwarding'), '1');
    // all.forwarding propagates to every interface, as the kernel documents.
    assert.equal(read('net/ipv6/conf/va/forwarding'), '1');
    assert.equal(read('net/ipv4/ip_forward'), '1');
    assert.equal(results[5]!.result, 0);
    assert.equal(results[6]!.ok, false);
    assert.equal(results[6]!.error?.code, 'ENOENT');
    assert.match(results[6]!.error!.message, /^sysctl net\.ipv6\.conf\.nope0\.accept_ra: write 0: no such key/);
  });
});

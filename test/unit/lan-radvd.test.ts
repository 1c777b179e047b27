import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { RadvdConfigError, RadvdControl, type RadvdContent, readPid, renderRadvdConf } from '../../src/lan/radvd';

const content = (over: Partial<RadvdContent> = {}): RadvdContent => ({
  interfaces: [
    {
      ifname: 'br-lan',
      prefixes: [{ prefix: '2001:db8:100:1::', length: 64, preferredLifetime: 1800, validLifetime: 3600 }],
      deprecated: [{ prefix: '2001:db8:99:1::', length: 64, preferredLifetime: 1800, validLifetime: 600 }],
    },
  ],
  dns: ['2001:db8::53', '2001:db8::54'],
  domains: ['example.net', 'lan.example.'],
  mtu: 1452,
  defaultRoute: true,
  ...over,
});

function which(cmd: string): string | undefined {
  try {
    return execFileSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

describe('renderRadvdConf', () => {
  test('interface block with timing, flags, MTU, prefixes, RDNSS and DNSSL', () => {
    const text = renderRadvdConf(content());
    assert.equal(
      text,
      [
        '# Written by softwire for the LAN prefixes of the softwire. Do not edit.',
        'interface br-lan {',
        '\tAdvSendAdvert on;',
        '\tMinRtrAdvInterval 200;',
        '\tMaxRtrAdvInterval 600;',
        '\tAdvDefaultLifetime 1800;',
        '\tAdvManagedFlag off;',
        '\tAdvOtherConfigFlag off;',
        '\tAdvCurHopLimit 64;',
        '\tAdvLinkMTU 1452;',
        '\tprefix 2001:db8:100:1::/64 {',
        '\t\tAdvOnLink on;',
        '\t\tAdvAutonomous on;',
        '\t\tAdvValidLifetime 3600;',
        '\t\tAdvPreferredLifetime 1800;',
        '\t\tDecrementLifetimes on;',
        '\t};',
        '\tprefix 2001:db8:99:1::/64 {',
        '\t\tAdvOnLink on;',
        '\t\tAdvAutonomous on;',
        '\t\tAdvValidLifetime 600;',
        '\t\tAdvPreferredLifetime 0;',
        '\t\tDecrementLifetimes on;',
        '\t};',
        '\tRDNSS 2001:db8::53 2001:db8::54 {',
        '\t\tAdvRDNSSLifetime 1800;',
        '\t};',
        '\tDNSSL example.net lan.example {',
        '\t\tAdvDNSSLLifetime 1800;',
        '\t};',
        '};',
        '',
      ].join('\n'),
    );
  });

  test('no default route: AdvDefaultLifetime 0; lifetimes capped per RFC 9096; options follow the RA settings', () => {
    const text = renderRadvdConf(
      content({
        defaultRoute: false,
        dns: [],
        domains: [],
        mtu: undefined,
        interfaces: [{ ifname: 'lan0', prefixes: [{ prefix: '2001:db8::', length: 64, preferredLifetime: 0xffffffff, validLifetime: 0xffffffff }] }],
      }),
      { managed: true, minIntervalS: 30, maxIntervalS: 100, routerLifetimeS: 300 },
    );
    assert.match(text, /\tAdvDefaultLifetime 0;/);
    assert.match(text, /\tAdvManagedFlag on;/);
    assert.match(text, /\tMinRtrAdvInterval 30;\n\tMaxRtrAdvInterval 100;/);
    assert.match(text, /AdvValidLifetime 5400;\n\t\tAdvPreferredLifetime 2700;/);
    assert.doesNotMatch(text, /RDNSS|DNSSL|AdvLinkMTU/);
    const uncapped = renderRadvdConf(
      content({ interfaces: [{ ifname: 'lan0', prefixes: [{ prefix: '2001:db8::', length: 64, preferredLifetime: 0xffffffff, validLifetime: 0xffffffff }] }] }),
      { preferredLimitS: 0xffffffff, validLimitS: 0xffffffff },
    );
    assert.match(uncapped, /AdvValidLifetime infinity;\n\t\tAdvPreferredLifetime infinity;\n\t};/, 'no DecrementLifetimes for infinity');
  });

  test('refuses values that could break out of the brace grammar', () => {
    const bad: RadvdContent[] = [
      content({ interfaces: [{ ifname: 'eth0 { AdvSendAdvert off; }', prefixes: [] }] }),
      content({ interfaces: [{ ifname: 'eth0;', prefixes: [] }] }),
      content({ dns: ['2001:db8::1; }; interface x {'] }),
      content({ dns: ['192.0.2.1'] }),
      content({ domains: ['a.example; AdvSendAdvert off'] }),
      content({ domains: ['x\ny'] }),
      content({ interfaces: [{ ifname: 'lan', prefixes: [{ prefix: '2001:db8::/64 {', length: 64, preferredLifetime: 1, validLifetime: 1 }] }] }),
    ];
    for (const c of bad) assert.throws(() => renderRadvdConf(c), RadvdConfigError);
  });

  test('radvd --configtest accepts the rendered file (when radvd is installed)', (t) => {
    const radvd = which('radvd');
    if (!radvd) {
      t.skip('radvd is not installed (apt-cache policy radvd: candidate only); the config syntax check is skipped');
      return;
    }
    const dir = mkdtempSync(join(tmpdir(), 'sw-radvd-'));
    try {
      const file = join(dir, 'radvd.conf');
      writeFileSync(file, renderRadvdConf(content({ interfaces: [{ ...content().interfaces[0]!, ifname: 'lo' }] })));
      execFileSync(radvd, ['--configtest', '-C', file], { stdio: 'pipe' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('RadvdControl', () => {
  test('writes the file, SIGHUPs the pid in the pid file, and skips both when nothing changed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sw-radvd-'));
    try {
      const pidFile = join(dir, 'radvd.pid');
      const configPath = join(dir, 'radvd.conf');
      writeFileSync(pidFile, '4242\n');
      const signals: [number, string][] = [];
      const ctl = new RadvdControl({ configPath, pidFile, kill: (pid, sig) => void signals.push([pid, sig]) });
      const text = renderRadvdConf(content());
      assert.deepEqual(await ctl.apply(text), { written: true, reloaded: true });
      assert.equal(readFileSync(configPath, 'utf8'), text);
      assert.deepEqual(signals, [[4242, 'SIGHUP']]);
      assert.deepEqual(await ctl.apply(text), { written: false, reloaded: false });
      assert.equal(signals.length, 1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a missing or bogus pid file is a warning, never a signal to pid 0, 1 or a group', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sw-radvd-'));
    try {
      const pidFile = join(dir, 'radvd.pid');
      assert.match(String(await readPid(pidFile)), /unreadable \(ENOENT\).*is radvd running/);
      for (const bogus of ['', '0', '1', '-5', '12 34', 'abc', '99999999999']) {
        writeFileSync(pidFile, bogus);
        assert.match(String(await readPid(pidFile)), /holds no valid pid/, bogus);
      }
      const signals: number[] = [];
      const ctl = new RadvdControl({ configPath: join(dir, 'radvd.conf'), pidFile, kill: (pid) => void signals.push(pid) });
      const r = await ctl.apply('# x\n');
      assert.equal(r.written, true);
      assert.equal(r.reloaded, false);
      assert.match(r.warning!, /no valid pid/);
      assert.deepEqual(signals, []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

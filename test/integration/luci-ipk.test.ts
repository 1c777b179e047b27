import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { control, untar } from '../helpers/ipk';

/**
 * scripts/build-luci-ipk.sh: luci-proto-softwire's ipk, taken apart with our own
 * tar reader, holds exactly the package folder's files where luci.mk installs them
 * (htdocs/ under /www, root/ under /), with the modes rpcd and uhttpd need.
 */

const REPO = resolve(__dirname, '../..');
const PKG = join(REPO, 'openwrt/luci-proto-softwire');
const VERSION = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
const EPOCH = 1_700_000_000;
const IPK = join(REPO, 'dist', `luci-proto-softwire_${VERSION}_all.ipk`);

function build(): Buffer {
  execFileSync('bash', ['scripts/build-luci-ipk.sh'], { cwd: REPO, env: { ...process.env, SOURCE_DATE_EPOCH: String(EPOCH) }, encoding: 'utf8' });
  return readFileSync(IPK);
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((f) => join(dir, f))
    .filter((f) => statSync(f).isFile());
}

describe('luci-proto-softwire ipk', () => {
  const bytes = build();
  const outer = untar(gunzipSync(bytes));
  const member = (list: ReturnType<typeof untar>, name: string) => {
    const m = list.find((x) => x.name === name);
    assert.ok(m, `${name} missing (have ${list.map((x) => x.name).join(' ')})`);
    return m;
  };

  test('opkg container: debian-binary, data, control, in that order', () => {
    assert.deepEqual(
      outer.map((m) => m.name),
      ['./debian-binary', './data.tar.gz', './control.tar.gz'],
    );
    assert.equal(member(outer, './debian-binary').data.toString(), '2.0\n');
  });

  test('control: architecture-independent, depends on luci-base and softwire', () => {
    const ctl = untar(gunzipSync(member(outer, './control.tar.gz').data));
    const c = control(member(ctl, './control').data.toString());
    assert.equal(c.get('Package'), 'luci-proto-softwire');
    assert.equal(c.get('Version'), VERSION);
    assert.equal(c.get('Architecture'), 'all');
    assert.deepEqual(c.get('Depends')?.split(/,\s*/), ['libc', 'luci-base', 'softwire']);
    assert.equal(c.get('Section'), 'luci');
    const data = untar(gunzipSync(member(outer, './data.tar.gz').data));
    const size = data.filter((m) => m.type === '0').reduce((s, m) => s + m.data.length, 0);
    assert.equal(Number(c.get('Installed-Size')), size);
    const postinst = member(ctl, './postinst');
    assert.equal(postinst.mode, 0o755);
    assert.equal(spawnSync('dash', ['-n'], { input: postinst.data }).status, 0);
    assert.match(postinst.data.toString(), /\/etc\/init\.d\/rpcd reload/);
  });

  test('data: every file of the package folder, where luci.mk puts it, byte for byte', () => {
    const data = untar(gunzipSync(member(outer, './data.tar.gz').data));
    const expected = new Map<string, string>();
    for (const f of filesUnder(join(PKG, 'htdocs'))) expected.set(`./www/${relative(join(PKG, 'htdocs'), f)}`, f);
    for (const f of filesUnder(join(PKG, 'root'))) expected.set(`./${relative(join(PKG, 'root'), f)}`, f);
    const files = data.filter((m) => m.type === '0');
    assert.deepEqual(files.map((m) => m.name).sort(), [...expected.keys()].sort());
    for (const m of files) assert.ok(m.data.equals(readFileSync(expected.get(m.name)!)), m.name);
    assert.ok(expected.has('./www/luci-static/resources/protocol/softwire.js'));
    assert.ok(expected.has('./usr/share/rpcd/acl.d/luci-proto-softwire.json'));
    const mode = (n: string) => member(data, n).mode;
    assert.equal(mode('./www/luci-static/resources/protocol/softwire.js'), 0o644);
    assert.equal(mode('./usr/share/rpcd/acl.d/luci-proto-softwire.json'), 0o644);
    // rpcd only runs exec plugins that are executable.
    assert.equal(mode('./usr/libexec/rpcd/luci.softwire'), 0o755);
    for (const m of data) {
      assert.deepEqual([m.uid, m.gid, m.mtime], [0, 0, EPOCH], m.name);
      if (m.type === '5') assert.equal(m.mode, 0o755, m.name);
    }
    // What rpcd and uhttpd parse must parse.
    JSON.parse(member(data, './usr/share/rpcd/acl.d/luci-proto-softwire.json').data.toString());
    assert.equal(spawnSync('dash', ['-n'], { input: member(data, './usr/libexec/rpcd/luci.softwire').data }).status, 0);
    assert.equal(spawnSync(process.execPath, ['--check', join(PKG, 'htdocs/luci-static/resources/protocol/softwire.js')]).status, 0);
  });

  test('a second build is byte-for-byte the same', () => {
    assert.ok(build().equals(bytes));
  });
});

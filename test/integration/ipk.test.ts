import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { type Member, control, untar } from '../helpers/ipk';

/**
 * scripts/build-ipk.sh: the package is taken apart member by member (with a tar
 * reader here, not the tar that wrote it), then installed into an empty root and run.
 */

const REPO = resolve(__dirname, '../..');
const VERSION = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
const ARCH = 'x86_64';
const EPOCH = 1_700_000_000;
const IPK = join(REPO, 'dist', `softwire_${VERSION}_${ARCH}.ipk`);

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function build(): { stdout: string; bytes: Buffer } {
  const stdout = execFileSync('bash', ['scripts/build-ipk.sh'], {
    cwd: REPO,
    env: { ...process.env, SOURCE_DATE_EPOCH: String(EPOCH) },
    encoding: 'utf8',
  });
  return { stdout, bytes: readFileSync(IPK) };
}

describe('scripts/build-ipk.sh', () => {
  let first: { stdout: string; bytes: Buffer };
  let outer: Member[];
  let ctl: Member[];
  let data: Member[];
  before(() => {
    first = build();
    outer = untar(gunzipSync(first.bytes));
    const get = (n: string) => outer.find((m) => m.name === n)!.data;
    ctl = untar(gunzipSync(get('./control.tar.gz')));
    data = untar(gunzipSync(get('./data.tar.gz')));
  });

  test('the outer container is a gzip\'d tar of debian-binary, data.tar.gz, control.tar.gz in that order (as ipkg-build writes)', () => {
    assert.deepEqual([...first.bytes.subarray(0, 2)], [0x1f, 0x8b]);
    assert.deepEqual(
      outer.map((m) => m.name),
      ['./debian-binary', './data.tar.gz', './control.tar.gz'],
    );
    assert.equal(outer[0].data.toString(), '2.0\n');
    for (const m of outer) assert.deepEqual([m.uid, m.gid, m.mode, m.mtime, m.type], [0, 0, 0o644, EPOCH, '0'], m.name);
  });

  test('control: fields, conffiles, and guarded maintainer scripts', () => {
    assert.deepEqual(
      ctl.map((m) => m.name),
      ['./control', './conffiles', './postinst', './prerm'],
    );
    const file = (n: string) => ctl.find((m) => m.name === n)!;
    const fields = control(file('./control').data.toString());
    const installed = data.filter((m) => m.type === '0').reduce((s, m) => s + m.data.length, 0);
    assert.equal(fields.get('Package'), 'softwire');
    assert.equal(fields.get('Version'), VERSION);
    assert.equal(fields.get('Architecture'), ARCH);
    assert.equal(fields.get('Depends'), 'libc, node, kmod-tun, libstdcpp');
    assert.equal(fields.get('Section'), 'net');
    assert.equal(fields.get('Source'), 'softwire');
    assert.equal(fields.get('Installed-Size'), String(installed));
    assert.match(fields.get('Maintainer') ?? '', /\S/);
    assert.match(fields.get('Description') ?? '', /^Softwire Initiator .*\n .*L2TPv2/);
    assert.match(first.stdout, new RegExp(`installed size ${installed} bytes`));
    assert.equal(file('./conffiles').data.toString(), '/etc/config/softwire\n');
    for (const [name, verbs] of [
      ['./postinst', ['enable', 'start']],
      ['./prerm', ['stop', 'disable']],
    ] as const) {
      const m = file(name);
      assert.equal(m.mode, 0o755, name);
      const text = m.data.toString();
      assert.match(text, /^#!\/bin\/sh\n/);
      // The guard comes first: nothing runs while an image is assembled offline.
      assert.match(text, /^#!\/bin\/sh\n(#.*\n)*\[ -z "\$IPKG_INSTROOT" \] \|\| exit 0\n/);
      assert.deepEqual(
        [...text.matchAll(/\/etc\/init\.d\/softwire (\w+)/g)].map((x) => x[1]),
        verbs,
      );
      const syntax = spawnSync('dash', ['-n'], { input: text });
      assert.equal(syntax.status, 0, `${name}: ${syntax.stderr}`);
    }
    for (const m of ctl) assert.deepEqual([m.uid, m.gid, m.mtime], [0, 0, EPOCH], m.name);
  });

  test('data: files, modes, root ownership and fixed mtimes', () => {
    const mode = (n: string) => data.find((m) => m.name === n)?.mode;
    assert.equal(mode('./usr/bin/softwire'), 0o755);
    assert.equal(mode('./usr/lib/softwire/softwire.js'), 0o644);
    assert.equal(mode('./usr/lib/softwire/softwire.node'), 0o755);
    assert.equal(mode('./etc/init.d/softwire'), 0o755);
    assert.equal(mode('./etc/config/softwire'), 0o600);
    assert.equal(mode('./lib/netifd/proto/softwire.sh'), 0o755);
    assert.equal(mode('./lib/netifd/softwire.script'), 0o755);
    assert.equal(mode('./usr/lib/softwire/node_modules/netlink/package.json'), 0o644);
    assert.equal(mode('./usr/lib/softwire/node_modules/netlink/dist/index.js'), 0o644);
    assert.equal(mode('./usr/lib/softwire/node_modules/netlink/prebuilds/linux-x64/node.napi.node'), 0o755);
    assert.equal(mode('./usr/lib/softwire/node_modules/node-gyp-build/index.js'), 0o644);
    const files = data.filter((m) => m.type === '0').map((m) => m.name);
    assert.deepEqual(
      files.filter((n) => n.includes('/prebuilds/')),
      ['./usr/lib/softwire/node_modules/netlink/prebuilds/linux-x64/node.napi.node'],
      'only the prebuild for the package architecture',
    );
    assert.ok(!files.some((n) => /\.(ts|map)$/.test(n)), 'no type declarations or source maps');
    for (const m of data) {
      assert.deepEqual([m.uid, m.gid, m.mtime], [0, 0, EPOCH], m.name);
      if (m.type === '5') assert.equal(m.mode, 0o755, m.name);
    }
    for (const [installed, source] of [
      ['./etc/init.d/softwire', 'openwrt/files/softwire.init'],
      ['./etc/config/softwire', 'openwrt/files/softwire.config'],
      ['./lib/netifd/proto/softwire.sh', 'openwrt/files/softwire.proto'],
      ['./lib/netifd/softwire.script', 'openwrt/files/softwire.script'],
    ]) {
      assert.equal(data.find((m) => m.name === installed)!.data.toString(), readFileSync(join(REPO, source), 'utf8'), installed);
    }
  });

  test('a second build is byte-for-byte the same', () => {
    assert.ok(build().bytes.equals(first.bytes));
  });

  test('installed into an empty root, the launcher runs the bundle and the native modules load', () => {
    const root = mkdtempSync(join(tmpdir(), 'softwire-ipk-root-'));
    dirs.push(root);
    const work = join(root, '..', `${root.split('/').pop()}-pkg`);
    mkdirSync(work);
    dirs.push(work);
    execFileSync('tar', ['-xzf', IPK, '-C', work]);
    execFileSync('tar', ['-xzf', join(work, 'data.tar.gz'), '-C', root]);
    const env = { ...process.env, PATH: `${dirname(process.execPath)}:/usr/bin:/bin` };
    const version = execFileSync(join(root, 'usr/bin/softwire'), ['--version'], { env, encoding: 'utf8' });
    assert.equal(version.trim(), VERSION);
    // What the agent loads at run time, from where the package put it.
    const probe = join(work, 'probe.js');
    writeFileSync(
      probe,
      `const lib = process.argv[2];
       const m = { exports: {} }; process.dlopen(m, lib + '/softwire.node');
       const nl = require(lib + '/node_modules/netlink');
       console.log(typeof m.exports.tunOpen, typeof nl.createRtNetlink);`,
    );
    const out = execFileSync(process.execPath, [probe, join(root, 'usr/lib/softwire')], { env, encoding: 'utf8' });
    assert.equal(out.trim(), 'function function');
    // The installed program does the whole job: the demo lab drives the extracted package's softwire.
    if (existsSync('/usr/sbin/l2tpns') && existsSync('/usr/sbin/freeradius')) {
      const demo = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/demo.ts', '--agent', join(root, 'usr/bin/softwire')], { env, encoding: 'utf8', timeout: 120_000 });
      assert.equal(demo.status, 0, `${demo.stdout}\n${demo.stderr}`);
      assert.match(demo.stdout, /3 packets transmitted, 3 received, 0% packet loss/);
    } else {
      process.stdout.write('# demo from the ipk root not run: l2tpns/freeradius not installed\n');
    }
  });

  test('the installed init script is POSIX sh and starts one procd instance per enabled section', () => {
    for (const f of ['softwire.init', 'softwire.proto', 'softwire.script']) {
      const r = spawnSync('dash', ['-n', join(REPO, 'openwrt/files', f)]);
      assert.equal(r.status, 0, `${f}: ${r.stderr}`);
    }
    const dir = mkdtempSync(join(tmpdir(), 'softwire-init-'));
    dirs.push(dir);
    const uci = join(dir, 'softwire');
    writeFileSync(
      uci,
      [
        "config softwire 'main'",
        "\toption enabled '1'",
        "\tlist server '192.0.2.1'",
        "\toption password 'pw'",
        "\toption username 'u'",
        "\toption respawn_retry '9'",
        "config softwire 'off'",
        "\tlist server '192.0.2.2'",
        "config softwire 'broken'",
        "\toption enabled '1'",
        "\toption hello_interval '1'",
      ].join('\n'),
    );
    const log = join(dir, 'procd.log');
    const r = spawnSync(
      'dash',
      [
        '-c',
        `. "$SHIM"; . "$INIT"; PROG="$FAKE_PROG"; RUNDIR="$DIR/run"; UCI_FILE="$UCI"; start_service; service_triggers`,
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
          PROCD_SHIM_LOG: log,
        },
        encoding: 'utf8',
      },
    );
    assert.equal(r.status, 0, r.stderr);
    const conf = join(dir, 'run/main.json');
    assert.deepEqual(readFileSync(log, 'utf8').trim().split('\n'), [
      'procd_open_instance [main]',
      `procd_set_param [command] [${join(REPO, 'test/integration/fixtures/openwrt-procd/softwire')}] [run] [-c] [${conf}]`,
      `procd_set_param [file] [${conf}]`,
      'procd_set_param [reload_signal] [HUP]',
      'procd_set_param [respawn] [3600] [5] [9]',
      'procd_set_param [stdout] [1]',
      'procd_set_param [stderr] [1]',
      'procd_close_instance',
      'logger [-t] [softwire] [-p] [daemon.err] softwire: hello_interval: 1 is not allowed; expected a whole number from 10 to 3600|',
      'logger [-t] [softwire] [-p] [daemon.err] [section broken: not started]',
      'procd_add_reload_trigger [softwire]',
    ]);
    assert.deepEqual(JSON.parse(readFileSync(conf, 'utf8')), { sc: ['192.0.2.1'], password: 'pw', user: 'u' });
    assert.match(r.stderr, /hello_interval: 1 is not allowed/);
  });
});

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, test } from 'node:test';

/**
 * scripts/setup.sh, which `npm run demo`, `npm test` and .ci/run go through, and the
 * package list it reads. Installing with apt-get as root on Debian is not run here
 * (it would change this machine): scripts/fresh-machine-check.sh does it on a fresh
 * Debian chroot. These check what it decides and says everywhere else.
 */

const REPO = resolve(__dirname, '../..');
const LIST = join(REPO, 'scripts/deps/debian-packages.txt');
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'softwire-setup-'));
  chmodSync(d, 0o755);
  dirs.push(d);
  return d;
}

interface Entry {
  pkg: string;
  probe: string;
  users: string[];
  why: string;
}

function parseList(text: string): Entry[] {
  return text
    .split('\n')
    .filter((l) => l.trim() && !l.startsWith('#'))
    .map((l) => {
      const m = /^(\S+)\s+(\S+)\s+(\S+)\s+#\s*(.+)$/.exec(l);
      assert.ok(m, `malformed line: ${l}`);
      return { pkg: m[1]!, probe: m[2]!, users: m[3]!.split(','), why: m[4]! };
    });
}

/** A copy of setup.sh (and the Node check it calls) where every user can read it, with its own list and os-release. */
function sandbox(list: string, osRelease: string): { script: string; env: NodeJS.ProcessEnv } {
  const d = tempDir();
  mkdirSync(join(d, 'scripts/deps'), { recursive: true, mode: 0o755 });
  copyFileSync(join(REPO, 'scripts/setup.sh'), join(d, 'scripts/setup.sh'));
  copyFileSync(join(REPO, 'scripts/deps/node-modules-current.mjs'), join(d, 'scripts/deps/node-modules-current.mjs'));
  writeFileSync(join(d, 'list.txt'), list);
  writeFileSync(join(d, 'os-release'), osRelease);
  for (const f of ['scripts/setup.sh', 'scripts/deps/node-modules-current.mjs', 'list.txt', 'os-release']) chmodSync(join(d, f), 0o644);
  chmodSync(join(d, 'scripts'), 0o755);
  return { script: join(d, 'scripts/setup.sh'), env: { ...process.env, SOFTWIRE_DEPS_LIST: join(d, 'list.txt'), SOFTWIRE_OS_RELEASE: join(d, 'os-release') } };
}

const MISSING = [
  'sh                 sh                       demo,test  # present everywhere',
  'softwire-fake-sc   /nonexistent/fake-sc     demo,test,service  # the SC the demo dials',
  'softwire-fake-perf softwire-fake-perf-cmd   test       # throughput tests',
].join('\n');

describe('the package list (scripts/deps/debian-packages.txt)', () => {
  const entries = parseList(readFileSync(LIST, 'utf8'));

  test('every line is PACKAGE PROBE USERS # why, with known users and no duplicate', () => {
    assert.ok(entries.length > 5);
    for (const e of entries) {
      for (const u of e.users) assert.ok(['demo', 'test', 'service'].includes(u), `${e.pkg}: unknown user ${u}`);
      assert.ok(e.users.includes('demo') || e.users.includes('test'), `${e.pkg}: needed by nobody`);
      assert.ok(e.why.length > 10, `${e.pkg}: say which tests need it`);
    }
    assert.equal(new Set(entries.map((e) => e.pkg)).size, entries.length);
  });

  test('the tests need everything the demo needs (they run the demo)', () => {
    for (const e of entries.filter((x) => x.users.includes('demo'))) assert.ok(e.users.includes('test'), e.pkg);
  });

  test('the demo needs l2tpns and FreeRADIUS, whose daemons are stopped after installing', () => {
    for (const pkg of ['l2tpns', 'freeradius']) {
      const e = entries.find((x) => x.pkg === pkg);
      assert.deepEqual(e?.users, ['demo', 'test', 'service'], pkg);
    }
  });
});

describe('scripts/setup.sh', () => {
  test('not Debian or Ubuntu: names each missing package with its probe and use, installs nothing, exits 1', () => {
    const s = sandbox(MISSING, 'ID=fedora\nID_LIKE="rhel centos"\n');
    const r = spawnSync('bash', [s.script, 'test'], { env: s.env, encoding: 'utf8' });
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.stdout, '');
    assert.equal(
      r.stderr,
      [
        'setup: npm test needs these, which are missing:',
        '  softwire-fake-sc (no /nonexistent/fake-sc): the SC the demo dials',
        '  softwire-fake-perf (no softwire-fake-perf-cmd): throughput tests',
        "These are Debian/Ubuntu package names; install the same tools with your",
        "distribution's package manager, so that each command or path above exists.",
        '',
      ].join('\n'),
    );
  });

  test('the demo asks only for what the demo needs', () => {
    const s = sandbox(MISSING, 'ID=fedora\n');
    const r = spawnSync('bash', [s.script, 'demo'], { env: s.env, encoding: 'utf8' });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^setup: npm run demo needs these, which are missing:\n {2}softwire-fake-sc \(no \/nonexistent\/fake-sc\): the SC the demo dials\n[^ ]/);
    assert.doesNotMatch(r.stderr, /fake-perf/);
  });

  test('Debian but not root: prints the apt-get command to run as root, exits 1', (t) => {
    const s = sandbox(MISSING, 'ID=debian\nVERSION_ID="12"\n');
    let cmd = 'bash';
    let args = [s.script, 'test'];
    if (process.getuid?.() === 0) {
      if (spawnSync('sh', ['-c', 'command -v setpriv']).status !== 0) {
        t.skip('running as root and setpriv is not installed');
        return;
      }
      cmd = 'setpriv';
      args = ['--reuid=65534', '--regid=65534', '--clear-groups', 'bash', ...args];
    }
    const r = spawnSync(cmd, args, { env: s.env, encoding: 'utf8', cwd: '/' });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /\nInstall them as root: {2}apt-get install softwire-fake-sc softwire-fake-perf\n/);
  });

  test('everything present: does nothing and says nothing', () => {
    // The real script in this tree, so its node_modules check sees this tree's node_modules.
    const d = tempDir();
    writeFileSync(join(d, 'list.txt'), 'sh  sh  demo,test  # present everywhere\ncoreutils  /bin/ls  test  # also\n');
    const r = spawnSync('bash', [join(REPO, 'scripts/setup.sh'), 'test'], {
      env: { ...process.env, SOFTWIRE_DEPS_LIST: join(d, 'list.txt') },
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(`${r.stdout}${r.stderr}`, '');
  });

  test('an unknown argument is a usage error', () => {
    const r = spawnSync('bash', [join(REPO, 'scripts/setup.sh'), 'everything'], { encoding: 'utf8' });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /usage: .*setup\.sh demo\|test\|node/);
  });
});

describe('scripts/deps/node-modules-current.mjs', () => {
  const CHECK = join(REPO, 'scripts/deps/node-modules-current.mjs');
  const lock = {
    packages: {
      '': { name: 'x' },
      'node_modules/a': { version: '1.0.0' },
      'node_modules/b': { version: '2.0.0', dev: true },
      'node_modules/@esbuild/other-os': { version: '0.1.0', optional: true },
    },
  };
  const run = (installed: Record<string, { version: string }> | undefined) => {
    const d = tempDir();
    writeFileSync(join(d, 'package-lock.json'), JSON.stringify(lock));
    if (installed) {
      mkdirSync(join(d, 'node_modules'));
      writeFileSync(join(d, 'node_modules/.package-lock.json'), JSON.stringify({ packages: installed }));
    }
    const r = spawnSync(process.execPath, [CHECK], { cwd: d, encoding: 'utf8' });
    return { status: r.status, out: r.stdout.trim() };
  };

  test('current: every locked package at its version; optional ones for other platforms may be absent', () => {
    assert.deepEqual(run({ 'node_modules/a': { version: '1.0.0' }, 'node_modules/b': { version: '2.0.0' } }), { status: 0, out: '' });
  });

  test('missing, lacking, wrong version, or extra: stale, with the reason', () => {
    assert.deepEqual(run(undefined), { status: 1, out: 'node_modules is missing' });
    assert.deepEqual(run({ 'node_modules/a': { version: '1.0.0' } }), { status: 1, out: 'node_modules lacks node_modules/b' });
    assert.deepEqual(run({ 'node_modules/a': { version: '1.0.1' }, 'node_modules/b': { version: '2.0.0' } }), {
      status: 1,
      out: 'node_modules has node_modules/a 1.0.1, package-lock.json wants 1.0.0',
    });
    assert.deepEqual(run({ 'node_modules/a': { version: '1.0.0' }, 'node_modules/b': { version: '2.0.0' }, 'node_modules/c': { version: '1.0.0' } }), {
      status: 1,
      out: 'node_modules has node_modules/c, which package-lock.json does not list',
    });
  });
});

import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ConfigError, checkFileMode, readConfigFile, resolveConfig, resolveSecrets } from '../../src/config/load';

const dir = mkdtempSync(join(tmpdir(), 'swcfg-perm-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: string, mode: number): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  chmodSync(p, mode);
  return p;
}

const OWN_GID = process.getegid!();
/** A gid the test process is not in (checkFileMode only looks at the number). */
const OTHER_GID = [65534, 12345, 54321].find((g) => g !== OWN_GID && !process.getgroups!().includes(g))!;

test('a config holding a password or tunnel secret that every user can read is refused with the chmod to run', () => {
  for (const [key, value] of [
    ['password', 'pw'],
    ['tunnelSecret', 's3cret'],
  ] as const) {
    for (const mode of [0o644, 0o604, 0o444]) {
      const p = file(`${key}-${mode.toString(8)}.json`, JSON.stringify({ user: 'u', [key]: value }), mode);
      assert.throws(
        () => readConfigFile(p),
        (e: unknown) => {
          assert.ok(e instanceof ConfigError);
          assert.equal(e.message, `config: ${p} holds a secret and is readable by every user (mode 0${mode.toString(8)}); chmod 600 ${p}`);
          return true;
        },
      );
    }
  }
});

test('0600 and 0400 configs with secrets load without a warning', () => {
  for (const mode of [0o600, 0o400]) {
    const p = file(`ok-${mode.toString(8)}.json`, JSON.stringify({ user: 'u', password: 'pw' }), mode);
    const warnings: string[] = [];
    assert.deepEqual(readConfigFile(p, warnings), { user: 'u', password: 'pw' });
    assert.deepEqual(warnings, []);
  }
});

test('a config without secrets may be world-readable; passwordFile names a file, not a secret', () => {
  const warnings: string[] = [];
  const p = file('plain.json', JSON.stringify({ sc: ['192.0.2.1'], user: 'u', passwordFile: '/etc/softwire/pw' }), 0o644);
  assert.equal(readConfigFile(p, warnings).user, 'u');
  assert.deepEqual(warnings, []);
});

test('a config every user can write is refused even without secrets (it could set notifyCommand)', () => {
  const p = file('open.json', JSON.stringify({ sc: ['192.0.2.1'] }), 0o646);
  assert.throws(() => readConfigFile(p), /config: .*open\.json is writable by every user \(mode 0646\); chmod 600 /);
});

test('group-readable secrets: silent for the agent\'s own group (the root:softwire 0640 layout), a warning for any other group', () => {
  const p = file('group.json', JSON.stringify({ user: 'u', password: 'pw' }), 0o640);
  const own: string[] = [];
  chownSync(p, process.geteuid!(), OWN_GID);
  readConfigFile(p, own);
  assert.deepEqual(own, []);
  const other: string[] = [];
  chownSync(p, process.geteuid!(), OTHER_GID);
  readConfigFile(p, other);
  assert.deepEqual(other, [`config: ${p} holds a secret and is readable by its group ${OTHER_GID} (mode 0640); chmod 600 ${p}`]);
});

test('passwordFile and tunnelSecretFile targets follow the same rules', () => {
  const pw = file('pw', 'hunter2\n', 0o600);
  const ts = file('ts', 'tunnel\n', 0o600);
  const { config } = resolveConfig({ user: 'u', passwordFile: pw, tunnelSecretFile: ts }, {});
  const warnings: string[] = [];
  assert.deepEqual(resolveSecrets(config, warnings), { password: 'hunter2', tunnelSecret: 'tunnel' });
  assert.deepEqual(warnings, []);

  chmodSync(ts, 0o644);
  assert.throws(() => resolveSecrets(config, []), new RegExp(`^ConfigError: tunnelSecretFile: ${ts} holds a secret and is readable by every user \\(mode 0644\\); chmod 600 ${ts}$`));
  chmodSync(ts, 0o600);

  chmodSync(pw, 0o640);
  chownSync(pw, process.geteuid!(), OTHER_GID);
  const w: string[] = [];
  assert.equal(resolveSecrets(config, w).password, 'hunter2');
  assert.match(w[0]!, /^passwordFile: .* is readable by its group \d+ \(mode 0640\); chmod 600 /);
});

test('checkFileMode is a pure check on mode and group', () => {
  const w: string[] = [];
  checkFileMode('x', '/f', { mode: 0o100600, gid: OTHER_GID }, true, w);
  checkFileMode('x', '/f', { mode: 0o100644, gid: OTHER_GID }, false, w);
  checkFileMode('x', '/f', { mode: 0o100660, gid: OWN_GID }, true, w);
  assert.deepEqual(w, []);
  assert.throws(() => checkFileMode('x', '/f', { mode: 0o100666, gid: OWN_GID }, false, w), /writable by every user/);
  assert.throws(() => checkFileMode('x', '/f', { mode: 0o100604, gid: OWN_GID }, true, w), /readable by every user \(mode 0604\); chmod 600 \/f/);
});

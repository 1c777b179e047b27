import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError, maskSecrets, parseScAddress, readConfigFile, resolveConfig, resolveSecrets } from '../../src/config/load';
import { FIELDS } from '../../src/config/schema';

function problems(file: Record<string, unknown>, flags: Record<string, unknown> = {}, forRun = false): string[] {
  try {
    resolveConfig(file, flags, { forRun });
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    return e.problems;
  }
  return [];
}

test('defaults follow RFC 5571 5.1.2 and RFC 2661 5.8', () => {
  const { config } = resolveConfig({}, {});
  assert.equal(config.helloInterval, 60);
  assert.equal(config.lcpEchoInterval, 30);
  assert.equal(config.retransmitInitial, 1);
  assert.equal(config.retransmitCap, 8);
  assert.equal(config.ncp, 'ipv6');
  assert.deepEqual(config.sc, []);
  for (const f of FIELDS) assert.ok(f.doc.length > 10, `${f.key} is documented`);
});

const badCases: [string, Record<string, unknown>, RegExp][] = [
  ['int out of range', { helloInterval: 5 }, /^helloInterval: 5 is not allowed; expected a whole number from 10 to 3600$/],
  ['int not whole', { lcpEchoFailure: 2.5 }, /^lcpEchoFailure: 2.5 is not allowed; expected a whole number from 1 to 100$/],
  ['number as string in file', { retransmitInitial: '1' }, /^retransmitInitial: "1" is not allowed; expected a number from 0.1 to 30$/],
  ['enum', { mode: 'bridge' }, /^mode: "bridge" is not allowed; expected one of router, host$/],
  ['bool', { rapidCommit: 'yes' }, /^rapidCommit: "yes" is not allowed; expected true or false$/],
  ['empty string', { user: '' }, /^user: "" is not allowed; expected a non-empty string$/],
  ['list of non-strings', { sc: [1] }, /^sc: \[1\] is not allowed; expected a list of strings$/],
  ['lan bad name', { lan: ['this-name-is-far-too-long'] }, /^lan: "this-name-is-far-too-long" does not name an interface/],
  ['lan bad id', { lan: ['br-lan=x'] }, /^lan: sub-prefix id of br-lan is NaN/],
  ['lan duplicate id', { mode: 'router', lan: ['a=1', 'b=1'] }, /^lan: sub-prefix id 1 is used twice$/],
  ['unknown key', { helloIntervall: 60 }, /^helloIntervall: unknown key \(known keys: sc, /],
  ['echo above hello', { helloInterval: 20, lcpEchoInterval: 30 }, /^lcpEchoInterval: 30 is above 20; RFC 5571 5.1.2/],
  ['echo below minimum', { lcpEchoInterval: 5 }, /^lcpEchoInterval: 5 is not allowed; expected a whole number from 10 to 60$/],
  ['retransmit cap below initial', { retransmitInitial: 10, retransmitCap: 2 }, /^retransmitCap: 2 is below retransmitInitial \(10\)$/],
  ['bad sc', { sc: ['sc.example:99999'] }, /^sc: port in "sc.example:99999" is not 1-65535$/],
  ['bad sc host', { sc: ['a b'] }, /^sc: "a b" is not HOST/],
  ['tun name', { tunDevice: 'a/b' }, /^tunDevice: "a\/b" is not a valid interface name/],
  ['mtu too small for IPv6', { mtu: 1000 }, /^mtu: 1000 is below 1280/],
  ['both password forms', { password: 'x', passwordFile: '/x' }, /^password: give either password or passwordFile, not both$/],
];

for (const [name, file, re] of badCases) {
  test(`config rejects ${name} with a message naming key, value and range`, () => {
    const p = problems(file);
    assert.equal(p.length, 1, `one problem: ${p.join(' | ')}`);
    assert.match(p[0], re);
  });
}

test('flags override the file and are named as flags in errors', () => {
  const { config } = resolveConfig({ helloInterval: 30, lcpEchoInterval: 20 }, { helloInterval: '90', sc: ['192.0.2.1'] });
  assert.equal(config.helloInterval, 90);
  assert.equal(config.lcpEchoInterval, 20);
  assert.deepEqual(config.sc, ['192.0.2.1']);
  assert.match(problems({}, { lcpEchoInterval: 'ten' })[0], /^--lcp-echo-interval: "ten" is not allowed/);
});

test('run needs an SC and a user name with a password', () => {
  assert.match(problems({}, {}, true)[0], /^sc: no Softwire Concentrator given; use --sc/);
  assert.match(problems({ sc: ['192.0.2.1'], password: 'p' }, {}, true)[0], /^user: a password is configured but no user name/);
  assert.deepEqual(problems({ sc: ['192.0.2.1'], user: 'u', password: 'p' }, {}, true), []);
});

test('several problems are reported together', () => {
  const p = problems({ mode: 'x', ncp: 'y', helloInterval: 0 });
  assert.equal(p.length, 3);
});

test('SC addresses parse in every form', () => {
  assert.deepEqual(parseScAddress('192.0.2.1'), { host: '192.0.2.1', port: 1701 });
  assert.deepEqual(parseScAddress('192.0.2.1:1702'), { host: '192.0.2.1', port: 1702 });
  assert.deepEqual(parseScAddress('2001:db8::1'), { host: '2001:db8::1', port: 1701 });
  assert.deepEqual(parseScAddress('[2001:db8::1]:9'), { host: '2001:db8::1', port: 9 });
  assert.deepEqual(parseScAddress('sc.example.net'), { host: 'sc.example.net', port: 1701 });
  assert.throws(() => parseScAddress('[::1'), /is not HOST/);
  assert.throws(() => parseScAddress('1:2:3'), /is not HOST/);
});

test('LAN interfaces take ids from position or IFNAME=ID', () => {
  const { config, warnings } = resolveConfig({ mode: 'router', lan: ['br-lan', { ifname: 'guest', subPrefixId: 7 }, 'iot=3'] }, {});
  assert.deepEqual(config.lan, [
    { ifname: 'br-lan', subPrefixId: 0 },
    { ifname: 'guest', subPrefixId: 7 },
    { ifname: 'iot', subPrefixId: 3 },
  ]);
  assert.deepEqual(warnings, []);
  assert.match(resolveConfig({ lan: ['br-lan'] }, {}).warnings[0], /only numbered in router mode/);
});

test('config files: unreadable, not JSON, not an object', () => {
  const dir = mkdtempSync(join(tmpdir(), 'swcfg-'));
  assert.throws(() => readConfigFile(join(dir, 'missing.json')), /missing.json: cannot read: ENOENT/);
  writeFileSync(join(dir, 'bad.json'), '{"sc": [}');
  assert.throws(() => readConfigFile(join(dir, 'bad.json')), /bad.json: not valid JSON/);
  writeFileSync(join(dir, 'arr.json'), '[]');
  assert.throws(() => readConfigFile(join(dir, 'arr.json')), /must hold one JSON object/);
});

test('secret files are read, and a warning names a file others can read', () => {
  const dir = mkdtempSync(join(tmpdir(), 'swcfg-'));
  const p = join(dir, 'pw');
  writeFileSync(p, 'hunter2\n');
  chmodSync(p, 0o600);
  const { config } = resolveConfig({ user: 'u', passwordFile: p }, {});
  const warnings: string[] = [];
  assert.equal(resolveSecrets(config, warnings).password, 'hunter2');
  assert.deepEqual(warnings, []);
  chmodSync(p, 0o644);
  assert.throws(() => resolveSecrets(config, []), /passwordFile: .* holds a secret and is readable by every user \(mode 0644\); chmod 600 /);
  chmodSync(p, 0o600);
  writeFileSync(p, '\n');
  assert.throws(() => resolveSecrets(config, []), /passwordFile: .* is empty/);
});

test('maskSecrets hides passwords and tunnel secrets', () => {
  const { config } = resolveConfig({ user: 'u', password: 'hunter2', tunnelSecret: 's3' }, {});
  const m = maskSecrets(config);
  assert.equal(m.password, '********');
  assert.equal(m.tunnelSecret, '********');
  assert.equal(m.user, 'u');
  assert.doesNotMatch(JSON.stringify(m), /hunter2|s3"/);
});

import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { PrivilegeError, effectiveCapabilities, explainPermission, hasCapability, isPermissionError, privilegeProblems } from '../../src/platform/privileges';

const status = (capEff: string) => `Name:\tnode\nUid:\t65534\t65534\t65534\t65534\nCapInh:\t0000000000003000\nCapEff:\t${capEff}\n`;
const dir = mkdtempSync(join(tmpdir(), 'swpriv-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const node = join(dir, 'tun');
writeFileSync(node, '');
chmodSync(node, 0o666);

test('CapEff is parsed as a bit set; CAP_NET_ADMIN is bit 12, CAP_NET_RAW bit 13', () => {
  assert.equal(effectiveCapabilities(status('0000000000003000')), 0x3000n);
  assert.equal(hasCapability('CAP_NET_ADMIN', status('0000000000001000')), true);
  assert.equal(hasCapability('CAP_NET_RAW', status('0000000000001000')), false);
  assert.equal(hasCapability('CAP_NET_RAW', status('000001ffffffffff')), true);
  // No CapEff line (not Linux): unknown, so the kernel decides later.
  assert.equal(effectiveCapabilities('Name:\tx\n'), null);
  assert.equal(hasCapability('CAP_NET_ADMIN', 'Name:\tx\n'), true);
});

test('privilegeProblems names each missing capability; CAP_NET_RAW only when built-in RAs will run', () => {
  assert.deepEqual(privilegeProblems({ statusText: status('0000000000003000'), rawIcmp6: true, tunPath: node }), []);
  const none = privilegeProblems({ statusText: status('0000000000000000'), rawIcmp6: true, tunPath: node });
  assert.equal(none.length, 2);
  assert.match(none[0]!, /^missing CAP_NET_ADMIN: .*needs CAP_NET_ADMIN \(run as root or grant the capability; see README "Least privilege"\)$/);
  assert.match(none[1]!, /^missing CAP_NET_RAW: /);
  assert.deepEqual(privilegeProblems({ statusText: status('0000000000001000'), rawIcmp6: false, tunPath: node }), []);
  assert.match(privilegeProblems({ statusText: status('0000000000003000'), tunPath: join(dir, 'missing') })[0]!, /does not exist: load the tun module/);
});

test('explainPermission: EPERM gets the capability advice and keeps code/errno; other errors pass through', () => {
  const eperm = Object.assign(new Error('tunOpen(sw0): ioctl TUNSETIFF: Operation not permitted (EPERM)'), { code: 'EPERM', errno: -1 });
  const out = explainPermission(eperm, 'CAP_NET_ADMIN') as PrivilegeError;
  assert.ok(out instanceof PrivilegeError);
  assert.equal(out.message, 'tunOpen(sw0): ioctl TUNSETIFF: Operation not permitted (EPERM): needs CAP_NET_ADMIN (run as root or grant the capability; see README "Least privilege")');
  assert.equal(out.code, 'EPERM');
  assert.equal(out.errno, -1);
  assert.equal(out.capability, 'CAP_NET_ADMIN');
  assert.equal(out.cause, eperm);
  assert.equal(explainPermission(out, 'CAP_NET_RAW'), out, 'not wrapped twice');
  const other = Object.assign(new Error('no such device'), { code: 'ENODEV' });
  assert.equal(explainPermission(other, 'CAP_NET_ADMIN'), other);
  // The device node's mode, not a capability, is what EACCES on open means.
  const eacces = Object.assign(new Error('tunOpen(sw0): open /dev/net/tun: Permission denied (EACCES)'), { code: 'EACCES', errno: -13 });
  const tun = explainPermission(eacces, 'CAP_NET_ADMIN') as PrivilegeError;
  assert.match(tun.message, /is not readable and writable by uid \d+; most systems ship it 0666/);
  assert.equal(tun.capability, undefined);
});

test('isPermissionError accepts codes and errnos of either sign', () => {
  assert.ok(isPermissionError({ code: 'EACCES' }));
  assert.ok(isPermissionError({ errno: 1 }));
  assert.ok(isPermissionError({ errno: -13 }));
  assert.ok(!isPermissionError({ errno: -2, code: 'ENOENT' }));
  assert.ok(!isPermissionError(null));
  assert.ok(!isPermissionError('EPERM'));
});

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { l2tpnsAvailable } from '../lab/l2tpns';

const avail = l2tpnsAvailable();

test('npm run demo: the LAN host pings the SC side across the softwire, and nothing is left behind', { skip: avail.ok ? false : avail.message }, () => {
  const before = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/demo.ts'], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /\[4\/5\] softwire up; LAN host autoconfigured 2001:db8:100:0:/);
  assert.match(r.stdout, /\[5\/5\] LAN host -> 2001:db8:200::1 .*: 3 packets transmitted, 3 received, 0% packet loss/);
  assert.match(r.stdout, /demo finished: everything it made has been removed/);
  const names = (r.stdout.match(/sw-(sc|cpe|lan)-[0-9a-f]{6}/g) ?? []);
  assert.equal(names.length >= 3, true);
  const after = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
  for (const n of names) assert.ok(!after.includes(n) || before.includes(n), `namespace ${n} removed`);
});

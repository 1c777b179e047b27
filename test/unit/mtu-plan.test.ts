import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MtuPlan, tunSlotSize } from '../../src/core/mtu-plan';

// Issue 16 item 3: the smallest of WAN-derived (less 4 bytes while sequencing), the SC's MRU and the RA MTU.
test('MTU plan: the SC MRU, sequencing and the RA MTU lower the MTU; each change is reported once', () => {
  const p = new MtuPlan({ base: 1460, derived: true });
  assert.equal(p.mtu, 1460);
  assert.equal(p.limitedBy, 'wan');
  assert.equal(p.setSequencing(true), 1456, 'Ns/Nr cost 4 bytes');
  assert.equal(p.setSequencing(true), undefined, 'no change, no report');
  assert.equal(p.setScMru(1400), 1400);
  assert.equal(p.limitedBy, 'sc-mru');
  assert.equal(p.linkMtu, 1400);
  assert.equal(p.setRaMtu(1380), 1380);
  assert.equal(p.limitedBy, 'ra');
  assert.equal(p.setRaMtu(1500), 1400, 'an RA MTU above the link does not raise it');
  assert.equal(p.setScMru(undefined), 1456, 'SC MRU gone: back to the WAN figure less sequencing');
  assert.equal(p.setSequencing(false), 1460, 'sequencing stopped (RFC 2661 5.4): the 4 bytes come back');
  assert.equal(p.setRaMtu(1000), undefined, 'below the IPv6 minimum: ignored');
  assert.equal(p.setScMru(100), undefined, 'below 576: ignored');
  assert.equal(p.ceiling, 1460);
});

test('MTU plan: a configured MTU is the operator\'s: sequencing does not lower it, the SC MRU still does', () => {
  const p = new MtuPlan({ base: 1400, derived: false });
  assert.equal(p.limitedBy, 'configured');
  assert.equal(p.setSequencing(true), undefined);
  assert.equal(p.setScMru(1300), 1300);
});

test('TUN receive slots fit the largest MTU the softwire can reach', () => {
  assert.equal(tunSlotSize(1460), 2048);
  assert.equal(tunSlotSize(8960), 8960);
  assert.equal(tunSlotSize(9000), 9024);
  assert.equal(tunSlotSize(65535), 65536);
  for (const m of [1280, 1500, 4096, 4097, 8960, 65535]) assert.ok(tunSlotSize(m) >= m);
});

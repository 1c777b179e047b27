import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ScSourceGate } from '../../src/l2tp/sc-gate';

// Issue 16 item 7: RFC 2661 8.1 replies from another SC address, opt-in.
test('strict (default): only the dialled address reaches the cores, and the latch cannot move', () => {
  const g = new ScSourceGate('192.0.2.1', false);
  assert.equal(g.admits('192.0.2.1'), true);
  assert.equal(g.admits('192.0.2.3'), false);
  assert.equal(g.latch('192.0.2.3'), false);
  assert.equal(g.address, '192.0.2.1');
});

test('opt-in: the first reply may come from another address; after the latch only that address', () => {
  const g = new ScSourceGate('192.0.2.1', true);
  assert.equal(g.admits('192.0.2.3'), true);
  assert.equal(g.latch('192.0.2.3'), true);
  assert.equal(g.address, '192.0.2.3');
  assert.equal(g.admits('192.0.2.1'), false, 'the dialled address no longer either');
  assert.equal(g.admits('198.51.100.9'), false);
  assert.equal(g.latch('198.51.100.9'), false);
  assert.equal(g.latch('192.0.2.3'), true, 're-latching the same address (another port) is fine');
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SdpOfferer } from '../../src/sdp/offerer';
import { parseSdp } from '../../src/sdp/sdp';

// Issue 16 item 8: the offer carries the bound socket; a WAN address change makes a re-offer (draft section 6).
test('offers name the bound address and port; a new address or port is a re-offer with a higher version', () => {
  const o = new SdpOfferer(new Date(0));
  const first = parseSdp(o.bound('192.0.2.2', 40001)!);
  assert.equal(first.connection?.address, '192.0.2.2');
  assert.equal(first.media[0]!.port, 40001);
  assert.equal(o.bound('192.0.2.2', 40001), undefined, 'same socket: no new offer');
  const second = parseSdp(o.bound('198.51.100.7', 40002)!);
  assert.equal(second.origin.sessionId, first.origin.sessionId, 'same session');
  assert.equal(BigInt(second.origin.sessionVersion), BigInt(first.origin.sessionVersion) + 1n);
  assert.equal(second.connection?.address, '198.51.100.7');
  assert.equal(second.media[0]!.port, 40002);
  assert.equal(second.origin.addrType, 'IP4');
});

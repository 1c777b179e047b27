import assert from 'node:assert/strict';
import { test } from 'node:test';
import { emptyStatus } from '../../src/agent/status';
import { formatStatus } from '../../src/cli/format-status';

test('status shows the IPsec line: IKE and CHILD SA, algorithms, NAT-T, rekey times, MTU cost', () => {
  const now = new Date('2026-01-01T00:00:00Z');
  const s = emptyStatus(now);
  s.ipsec = {
    mode: 'ikev1',
    phase: 'up',
    overhead: 45,
    lastError: null,
    drops: {},
    sa: {
      version: 'ikev1',
      ike: { state: 'ESTABLISHED', encr: 'AES_CBC-256', integ: 'HMAC_SHA2_256_128', prf: 'PRF_HMAC_SHA2_256', dh: 'MODP_2048', natLocal: true, natRemote: false, rekeyAt: '2026-01-01T03:00:00Z' },
      child: { state: 'INSTALLED', mode: 'TRANSPORT', encr: 'AES_GCM_16-256', integ: '', encap: true, spiIn: 'c1', spiOut: 'c2', rekeyAt: '2026-01-01T00:55:00Z', bytesIn: 0, bytesOut: 0 },
    },
  };
  const text = formatStatus(s, now);
  const line = text.split('\n').find((l) => l.includes('IPsec'));
  assert.ok(line, text);
  assert.match(line, /IKEV1 up/);
  assert.match(line, /IKE SA ESTABLISHED AES_CBC-256\/HMAC_SHA2_256_128\/MODP_2048, rekey in 3h00m/);
  assert.match(line, /CHILD SA INSTALLED transport AES_GCM_16-256, rekey in 55m00s/);
  assert.match(line, /NAT-T \(UDP 4500\)/);
  assert.match(line, /MTU cost 45 B/);
  s.ipsec = { mode: 'ikev2', phase: 'idle', overhead: null, sa: null, lastError: 'IPsec: no proposal chosen', drops: {} };
  assert.match(formatStatus(s, now), /IPsec +IKEV2 idle, last error: IPsec: no proposal chosen/);
  assert.doesNotMatch(formatStatus(emptyStatus(now), now), /IPsec/, 'no line when ipsec is off');
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { adviceFor, classifyAuthCdn } from '../../src/l2tp/result-codes';

// Issue 16 item 6: a CDN during authentication is a failed login only when its codes say so.
test('CDN during authentication: rejections as real SCs send them are permanent login failures', () => {
  assert.deepEqual(classifyAuthCdn(3, undefined), { kind: 'auth-rejected' }, 'l2tpns: result 3 after RADIUS Access-Reject');
  assert.deepEqual(classifyAuthCdn(1, undefined), { kind: 'auth-rejected' }, 'xl2tpd when pppd exits after a failed login');
  assert.deepEqual(classifyAuthCdn(2, 0), { kind: 'auth-rejected' });
  assert.deepEqual(classifyAuthCdn(2, 6), { kind: 'auth-rejected' }, 'vendor specific');
  assert.deepEqual(classifyAuthCdn(undefined, undefined), { kind: 'auth-rejected' });
});

test('CDN during authentication: temporary lack of resources, protocol errors and call failures are retried', () => {
  assert.deepEqual(classifyAuthCdn(4, undefined), { kind: 'transient', retryElsewhere: false }, 'result 4: temporary lack of facilities');
  assert.deepEqual(classifyAuthCdn(2, 4), { kind: 'transient', retryElsewhere: false }, 'insufficient resources');
  assert.deepEqual(classifyAuthCdn(2, 7), { kind: 'transient', retryElsewhere: true }, 'try another');
  for (const e of [1, 2, 3, 5, 8]) assert.equal(classifyAuthCdn(2, e).kind, 'transient', `error ${e}`);
  for (const r of [6, 7, 8, 9, 10, 11, 99]) assert.equal(classifyAuthCdn(r, undefined).kind, 'transient', `result ${r}`);
  assert.deepEqual(classifyAuthCdn(5, undefined), { kind: 'permanent' });
  assert.equal(adviceFor('session', 4, undefined).permanent, false);
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TokenBucket } from '../../src/core/token-bucket';

test('token bucket: the burst back to back, then the steady rate, never more than the burst after a long pause', () => {
  const b = new TokenBucket(3, 2);
  assert.deepEqual([0, 0, 0, 0].map((t) => b.take(t)), [true, true, true, false]);
  assert.equal(b.take(499), false); // 0.998 of a token
  assert.equal(b.take(500), true); // 1 token at 2/s after 500 ms
  assert.equal(b.take(500), false);
  assert.deepEqual([60_000, 60_000, 60_000, 60_000].map((t) => b.take(t)), [true, true, true, false]);
});

test('token bucket: a clock that goes backwards neither refills nor breaks the bucket', () => {
  const b = new TokenBucket(1, 1);
  assert.equal(b.take(10_000), true);
  assert.equal(b.take(5_000), false);
  assert.equal(b.take(10_999), false);
  assert.equal(b.take(11_000), true);
});

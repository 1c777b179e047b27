import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PERMANENT_FLOOR, ReconnectPolicy } from '../../src/agent/reconnect-policy';

/** Every rule of the reconnect policy table (reconnect-policy.ts), with a fixed random source. */

const S = { initialMs: 2000, capMs: 300_000, jitter: 0.5 };
const half = () => 0.5;

test('anything else: same SC, doubling jittered backoff up to the cap; up resets it', () => {
  const p = new ReconnectPolicy(S, half);
  const delays = Array.from({ length: 10 }, () => p.failed({ layer: 'ppp' }, 2));
  assert.deepEqual(
    delays.map((d) => d.delayMs),
    [1500, 3000, 6000, 12_000, 24_000, 48_000, 96_000, 192_000, 225_000, 225_000],
  );
  assert.ok(delays.every((d) => d.scIndex === 0 && d.rule === 'backoff'));
  p.up();
  assert.equal(p.failed({ layer: 'tunnel' }, 2).delayMs, 1500);
});

test('jitter draws from [base x (1 - jitter), base]: random 0 is the full delay, random 1 the shortest', () => {
  assert.equal(new ReconnectPolicy(S, () => 0).failed({ layer: 'ppp' }, 1).delayMs, 2000);
  assert.equal(new ReconnectPolicy(S, () => 1).failed({ layer: 'ppp' }, 1).delayMs, 1000);
  assert.equal(new ReconnectPolicy({ ...S, jitter: 0 }, () => 1).failed({ layer: 'ppp' }, 1).delayMs, 2000);
});

test('unreachable (transport): the next SC, after the backoff', () => {
  const p = new ReconnectPolicy(S, half);
  assert.deepEqual(p.failed({ layer: 'transport' }, 3), { scIndex: 1, delayMs: 1500, rule: 'unreachable' });
  assert.deepEqual(p.failed({ layer: 'transport' }, 3), { scIndex: 2, delayMs: 3000, rule: 'unreachable' });
  assert.equal(p.sc, 2);
});

test('try another: at once while an SC not yet asked remains; once every SC said it, back off', () => {
  const p = new ReconnectPolicy(S, half);
  assert.deepEqual(p.failed({ layer: 'tunnel', retryElsewhere: true }, 3), { scIndex: 1, delayMs: 0, rule: 'try-another-now' });
  assert.deepEqual(p.failed({ layer: 'tunnel', retryElsewhere: true }, 3), { scIndex: 2, delayMs: 0, rule: 'try-another-now' });
  assert.deepEqual(p.failed({ layer: 'tunnel', retryElsewhere: true }, 3), { scIndex: 3, delayMs: 1500, rule: 'try-another-backoff' });
  // Another kind of failure ends the run of "try another".
  p.failed({ layer: 'ppp' }, 3);
  assert.equal(p.failed({ layer: 'tunnel', retryElsewhere: true }, 3).rule, 'try-another-now');
});

test('will not fix itself: same SC, at least a quarter of the cap, and the backoff still grows', () => {
  const p = new ReconnectPolicy(S, half);
  const d = p.failed({ layer: 'auth', permanent: true }, 2);
  assert.deepEqual(d, { scIndex: 0, delayMs: S.capMs * PERMANENT_FLOOR, rule: 'will-not-fix-itself' });
  assert.equal(p.attempts, 1);
});

test('operator reset starts the backoff over; configure changes timings, not the count', () => {
  const p = new ReconnectPolicy(S, half);
  p.failed({ layer: 'ppp' }, 1);
  p.failed({ layer: 'ppp' }, 1);
  p.reset();
  assert.equal(p.failed({ layer: 'ppp' }, 1).delayMs, 1500);
  p.configure({ initialMs: 100, capMs: 1000, jitter: 0 });
  assert.equal(p.failed({ layer: 'ppp' }, 1).delayMs, 200, 'second failure: 100 x 2');
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Backoff } from '../../src/agent/backoff';
import { seededRng } from '../../src/util/random';

test('backoff doubles from the initial delay up to the cap without jitter', () => {
  const b = new Backoff({ initialMs: 1000, capMs: 8000, jitter: 0 }, seededRng(1));
  assert.deepEqual([1, 2, 3, 4, 5, 6].map(() => b.next()), [1000, 2000, 4000, 8000, 8000, 8000]);
  b.reset();
  assert.equal(b.next(), 1000);
});

test('jittered delays stay within [base*(1-j), base] and never pass the cap', () => {
  const rng = seededRng(42);
  for (let run = 0; run < 200; run++) {
    const b = new Backoff({ initialMs: 2000, capMs: 300_000, jitter: 0.5 }, rng);
    for (let i = 0; i < 20; i++) {
      const base = Math.min(300_000, 2000 * 2 ** i);
      const d = b.next();
      assert.ok(d <= base && d >= base * 0.5, `attempt ${i}: ${d} within [${base * 0.5}, ${base}]`);
    }
  }
});

test('a fleet retrying at the cap spreads out instead of moving in lock-step', () => {
  // 10,000 routers at the cap with jitter 0.5: delays should cover [150 s, 300 s] roughly uniformly.
  const rng = seededRng(7);
  const buckets = new Array(10).fill(0);
  for (let i = 0; i < 10_000; i++) {
    const b = new Backoff({ initialMs: 300_000, capMs: 300_000, jitter: 0.5 }, rng);
    const d = b.next();
    buckets[Math.min(9, Math.floor((d - 150_000) / 15_000))]++;
  }
  for (const n of buckets) assert.ok(n > 800 && n < 1200, `bucket count ${n} near 1000: ${buckets.join(',')}`);
});

test('seeded rng repeats and stays in [0,1)', () => {
  const a = seededRng(1);
  const b = seededRng(1);
  for (let i = 0; i < 1000; i++) {
    const x = a();
    assert.equal(x, b());
    assert.ok(x >= 0 && x < 1);
  }
});

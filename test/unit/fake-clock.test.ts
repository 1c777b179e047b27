import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock } from '../helpers/fake-clock';
import { applyTimer } from '../../src/core/scheduler';
import { startTimer, stopTimer } from '../../src/core/actions';

test('timers fire in due order and restart replaces', () => {
  const c = new FakeClock();
  const fired: string[] = [];
  c.set('a', 100, () => fired.push(`a@${c.now()}`));
  c.set('b', 50, () => fired.push(`b@${c.now()}`));
  c.set('a', 200, () => fired.push(`a2@${c.now()}`));
  c.advance(150);
  assert.deepEqual(fired, ['b@50']);
  c.advance(100);
  assert.deepEqual(fired, ['b@50', 'a2@200']);
  assert.equal(c.now(), 250);
  assert.equal(c.size(), 0);
});

test('a timer armed by a firing timer fires within the same advance', () => {
  const c = new FakeClock();
  let n = 0;
  const tick = () => {
    n++;
    c.set('t', 10, tick);
  };
  c.set('t', 10, tick);
  c.advance(1000);
  assert.equal(n, 100);
});

test('applyTimer namespaces and stops core timers', () => {
  const c = new FakeClock();
  const fired: string[] = [];
  applyTimer(c, 'lcp', startTimer('restart', 3000), (t) => fired.push(t));
  applyTimer(c, 'ipcp', startTimer('restart', 3000), (t) => fired.push(`ipcp:${t}`));
  applyTimer(c, 'lcp', stopTimer('restart'), () => {});
  c.advance(5000);
  assert.deepEqual(fired, ['ipcp:restart']);
});

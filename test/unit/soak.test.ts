import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runSoak, soakProblems, type SoakOptions } from '../helpers/soak';

/**
 * The soak of scripts/soak.ts, two simulated days instead of thirty: the real
 * Agent (its Supervisor tears down, backs off and redials) dialling the real
 * Connection against the in-process SC on a fake clock, with each day's StopCCN,
 * silence and CDN. Counts must match the intervals, every fault must be recovered
 * from by the Supervisor's own redials, and nothing may grow from one day to the next.
 */

const opts: SoakOptions = { days: 2, helloS: 60, echoS: 30, scHelloS: 30, t1: 600, t2: 900, preferred: 1200, valid: 1800 };

test('two simulated days: up at the end, counts as the intervals say, nothing grows', async () => {
  const r = await runSoak(opts);
  assert.deepEqual(soakProblems(r, opts), []);
  assert.deepEqual(r.faults, { stopccn: 2, silence: 2, cdn: 2 });
  // Each silence ends a session through echo failure, each CDN through the CDN.
  assert.equal(r.downs['ppp: echo-timeout'], 2, JSON.stringify(r.downs));
  assert.equal(r.downs['session: peer-cdn'], 2, JSON.stringify(r.downs));
  // Dials during a silence fail on the control channel's retransmission cycle.
  // (With no SCCRP at all the setup deadline, sccrpTimeout 20 s, ends them before the 31 s cycle does.)
  assert.ok((r.downs['tunnel: max-retries'] ?? 0) + (r.downs['tunnel: no SCCRP'] ?? 0) >= 2, JSON.stringify(r.downs));
  // The agent's own reconnect count: one per down, each followed by a dial.
  assert.ok(r.reconnects >= 6 + 2, `reconnects ${r.reconnects}`);
  assert.equal(r.connections, r.reconnects + 1);
  assert.equal(r.samples.length, 2);
  assert.ok(r.solicits >= 7, `a Solicit per session: ${r.solicits}`);
});

test('without faults one connection lasts the day, and the checks notice counts that do not fit', async () => {
  const quiet = { ...opts, days: 1, faults: false };
  const r = await runSoak(quiet);
  assert.deepEqual(soakProblems(r, quiet), []);
  assert.equal(r.connections, 1);
  assert.equal(r.reconnects, 0);
  assert.deepEqual(r.downs, {});
  assert.equal(r.lacHellos, 0, 'echoes and SC HELLOs keep the LAC from idling');
  // The same run judged against a 10 s echo interval is three times short.
  const wrong = soakProblems(r, { ...quiet, echoS: 10 });
  assert.equal(wrong.length, 1, wrong.join('\n'));
  assert.match(wrong[0]!, /^LCP Echo-Requests: \d+, expected/);
});

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { Status } from '../../src/agent/status';
import { l2tpnsAvailable } from '../../src/lab/l2tpns';
import type { AgentProc } from '../helpers/agent-proc';
import { at, sleep, startAgent, waitLogAfter, withSc } from './lifecycle-helpers';

/**
 * Recovery against l2tpns: the SC drops the session, the WAN address changes,
 * the WAN link goes down and up. Each asserts that the agent comes back and
 * reports how long it took.
 */

const avail = l2tpnsAvailable();
const skip = avail.ok ? false : avail.message;

async function waitPrefix(a: AgentProc, ms: number): Promise<Status> {
  const end = Date.now() + ms;
  for (;;) {
    const s = await a.status();
    if (s.state === 'up' && s.ipv6?.delegatedPrefix) return s;
    if (Date.now() > end) throw new Error(`no delegated prefix within ${ms} ms:\n${a.tail()}`);
    await sleep(50);
  }
}

const savedState = (a: AgentProc) => JSON.parse(readFileSync(join(a.dir, 'state', 'state.json'), 'utf8')) as { duid: string; lastPrefix?: { prefix: string; length: number } };

describe('agent lifecycle: recovery against l2tpns', { skip }, () => {
  test('the SC drops the session: the agent redials and gets the same delegated prefix back, with the same DUID', async (t) => {
    const { lay, sc } = await withSc(t);
    const a = startAgent(t, lay, ['--mode', 'router']);
    await a.waitState('up', 15_000);
    const s1 = await waitPrefix(a, 15_000);
    assert.deepEqual([s1.ipv6!.delegatedPrefix!.prefix, s1.ipv6!.delegatedPrefix!.length], ['2001:db8:100::', 56]);
    const before = savedState(a);
    assert.deepEqual(before.lastPrefix, { prefix: '2001:db8:100::', length: 56 }, 'the prefix is kept for the next dial');
    const from = a.lines.length;
    const t0 = Date.now();
    sc.nsctl(['drop', 'cpe1']);
    const down = await waitLogAfter(a, from, /^session down: /, 5000);
    const up = await waitLogAfter(a, from, /^softwire up$/, 15_000);
    const s2 = await waitPrefix(a, 10_000);
    const tPrefix = Date.now();
    t.diagnostic(`session drop -> detected in ${at(down) - t0} ms, up again after ${at(up) - t0} ms, prefix back after ${tPrefix - t0} ms (${down.msg})`);
    assert.ok(at(down) - t0 < 1000, 'the CDN is seen at once');
    // The first retry waits the initial backoff (2 s, jittered down to no less than 1 s).
    assert.ok(at(up) - t0 < 5000, `${at(up) - t0} ms`);
    assert.deepEqual(s2.ipv6!.delegatedPrefix!.prefix, s1.ipv6!.delegatedPrefix!.prefix, 'RFC 5571 section 7: the same prefix after a reconnect');
    assert.equal(s2.ipv6!.delegatedPrefix!.length, 56);
    assert.notEqual(s2.tunnel!.localId, s1.tunnel!.localId, 'a new tunnel');
    assert.equal(s2.reconnects, 1);
    assert.equal(s2.lastError?.layer, 'session');
    assert.equal(savedState(a).duid, before.duid, 'the DUID does not change');
  });

  test('WAN address change: the agent redials from the new address within 2 s', async (t) => {
    const { lay } = await withSc(t);
    const a = startAgent(t, lay, []);
    const s1 = await a.waitState('up', 15_000);
    assert.equal(s1.local?.address, '192.0.2.2');
    // Without promote_secondaries, deleting the primary address would take the new one with it.
    lay.cpe.sysctl(`net.ipv4.conf.${lay.cpeDev}.promote_secondaries`, '1');
    lay.cpe.ip(['addr', 'add', '192.0.2.3/24', 'dev', lay.cpeDev]);
    await sleep(300);
    assert.equal((await a.status()).local?.address, '192.0.2.2', 'a second address alone changes nothing');
    const from = a.lines.length;
    const t0 = Date.now();
    lay.cpe.ip(['addr', 'del', '192.0.2.2/24', 'dev', lay.cpeDev]);
    const seen = await waitLogAfter(a, from, /local address changed from 192\.0\.2\.2 to 192\.0\.2\.3/, 3000);
    const dial = await waitLogAfter(a, from, /^dialling SC 192\.0\.2\.1:1701 from 192\.0\.2\.3/, 3000);
    const up = await waitLogAfter(a, from, /^softwire up$/, 10_000);
    t.diagnostic(`address change -> noticed ${at(seen) - t0} ms, redial ${at(dial) - t0} ms, up ${at(up) - t0} ms`);
    assert.ok(at(dial) - t0 < 2000, `redialled ${at(dial) - t0} ms after the change`);
    const s2 = await a.status();
    assert.equal(s2.state, 'up');
    assert.equal(s2.local?.address, '192.0.2.3');
    assert.notEqual(s2.tunnel!.localId, s1.tunnel!.localId);
  });

  test('WAN link down and up: the agent notices at once, backs off while there is no route, and is back right after the link', async (t) => {
    const { lay } = await withSc(t);
    const a = startAgent(t, lay, []);
    await a.waitState('up', 15_000);
    const from = a.lines.length;
    const t0 = Date.now();
    lay.cpe.ip(['link', 'set', lay.cpeDev, 'down']);
    const seen = await waitLogAfter(a, from, /local address changed from 192\.0\.2\.2 to \(none\)/, 3000);
    await waitLogAfter(a, from, /^transport down: no route to 192\.0\.2\.1/, 3000);
    t.diagnostic(`link down -> noticed after ${at(seen) - t0} ms`);
    assert.ok(at(seen) - t0 < 1000);
    assert.notEqual((await a.status()).state, 'up');
    // Long enough for the backoff to grow past its first steps.
    await sleep(4000);
    const from2 = a.lines.length;
    const t1 = Date.now();
    lay.cpe.ip(['link', 'set', lay.cpeDev, 'up']);
    const up = await waitLogAfter(a, from2, /^softwire up$/, 10_000);
    t.diagnostic(`link up -> softwire up after ${at(up) - t1} ms`);
    assert.ok(at(up) - t1 < 2000, `${at(up) - t1} ms: the agent did not sit out its backoff`);
    assert.ok(a.lines.slice(from2).some((l) => /retrying now: WAN has a route/.test(l.msg)), a.tail());
    assert.equal((await a.status()).state, 'up');
  });
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type SessionAction, SessionCore, type SessionCoreOptions, type SessionInput } from '../../src/agent/session-core';

/**
 * The setup core of one attempt, driven by hand with `now`: every phase's deadline
 * and expiry, the readiness rule per role, the degraded path, and that nothing moves
 * after the attempt failed. No timers, sockets or kernel.
 */

const DEADLINES = { tunnel: 20_000, session: 21_000, lcp: 30_000, auth: 31_000, ncp: 32_000 };

function rig(o: Partial<SessionCoreOptions> = {}) {
  const core = new SessionCore({ deadlines: DEADLINES, provisionWaitMs: 10_000, mode: 'host', needIpv6: true, needIpv4: false, ...o });
  let now = 0;
  const feed = (ev: SessionInput, at = now): SessionAction[] => {
    now = at;
    return core.input(ev, now);
  };
  return { core, feed, at: (t: number) => (now = t) };
}

/** Drives a fresh attempt up to the given phase; returns the rig. */
function upTo(phase: 'tunnel' | 'session' | 'lcp' | 'auth' | 'ncp' | 'provision', o: Partial<SessionCoreOptions> = {}) {
  const r = rig(o);
  r.feed({ type: 'dialed' }, 0);
  if (phase === 'tunnel') return r;
  r.feed({ type: 'tunnel-up' }, 100);
  if (phase === 'session') return r;
  r.feed({ type: 'session-up' }, 200);
  if (phase === 'lcp') return r;
  r.feed({ type: 'ppp-phase', phase: 'authenticate' }, 300);
  if (phase === 'auth') return r;
  r.feed({ type: 'ppp-phase', phase: 'network' }, 400);
  if (phase === 'ncp') return r;
  if (o.needIpv6 !== false) r.feed({ type: 'ncp-up', ncp: 'ipv6cp' }, 500);
  if (o.needIpv4) r.feed({ type: 'ncp-up', ncp: 'ipcp' }, 500);
  return r;
}

test('each setup phase arms its own deadline when it begins', () => {
  const r = rig();
  assert.deepEqual(r.feed({ type: 'dialed' }, 1000), [{ type: 'arm', at: 1000 + DEADLINES.tunnel }]);
  assert.deepEqual(r.feed({ type: 'tunnel-up' }, 2000), [{ type: 'arm', at: 2000 + DEADLINES.session }]);
  assert.deepEqual(r.feed({ type: 'session-up' }, 3000), [{ type: 'arm', at: 3000 + DEADLINES.lcp }]);
  assert.deepEqual(r.feed({ type: 'ppp-phase', phase: 'establish' }, 3100), [], 'LCP still negotiating');
  assert.deepEqual(r.feed({ type: 'ppp-phase', phase: 'authenticate' }, 4000), [{ type: 'arm', at: 4000 + DEADLINES.auth }]);
  assert.deepEqual(r.feed({ type: 'ppp-phase', phase: 'network' }, 5000), [{ type: 'arm', at: 5000 + DEADLINES.ncp }]);
  assert.deepEqual(r.feed({ type: 'ncp-up', ncp: 'ipv6cp' }, 6000), [{ type: 'arm', at: 16_000 }], 'provisioning wait');
  const at = r.core.status().at;
  assert.deepEqual(at, { dial: 1000, tunnel: 2000, session: 3000, lcp: 4000, auth: 5000, ncp: 6000, address: null, prefix: null });
});

test('no authentication asked for: LCP open goes straight to the NCP phase (lcp and auth stamped together)', () => {
  const r = upTo('lcp');
  assert.deepEqual(r.feed({ type: 'ppp-phase', phase: 'open' }, 900), [{ type: 'arm', at: 900 + DEADLINES.ncp }]);
  assert.equal(r.core.status().at.lcp, 900);
  assert.equal(r.core.status().at.auth, 900);
  assert.equal(r.core.status().phase, 'ncp');
});

for (const [phase, words] of [
  ['tunnel', /no SCCRP .* within 20 s/],
  ['session', /no ICRP .* within 21 s/],
  ['lcp', /LCP did not open within 30 s/],
  ['auth', /authentication did not finish within 31 s/],
  ['ncp', /IPV6CP\/IPCP did not open within 32 s/],
] as const) {
  test(`a ${phase} phase that overruns its deadline expires with a reason; the attempt then ignores everything`, () => {
    const r = upTo(phase);
    const started = { tunnel: 0, session: 100, lcp: 200, auth: 300, ncp: 400 }[phase];
    const due = started + DEADLINES[phase];
    // An early timer (a coarse scheduler) re-arms for what is still due.
    assert.deepEqual(r.feed({ type: 'timer' }, due - 1), [{ type: 'arm', at: due }]);
    const acts = r.feed({ type: 'timer' }, due);
    assert.equal(acts.length, 1);
    const a = acts[0]!;
    assert.equal(a.type, 'expired');
    assert.equal(a.type === 'expired' && a.phase, phase);
    assert.match(a.type === 'expired' ? a.message : '', words);
    assert.equal(r.core.status().phase, 'failed');
    for (const ev of [{ type: 'tunnel-up' }, { type: 'session-up' }, { type: 'ncp-up', ncp: 'ipv6cp' }, { type: 'timer' }] as SessionInput[]) {
      assert.deepEqual(r.feed(ev, due + 10), []);
    }
  });
}

test('inputs out of order do not skip a phase', () => {
  const r = upTo('tunnel');
  assert.deepEqual(r.feed({ type: 'session-up' }, 50), [], 'a session before the tunnel is not a phase change');
  assert.deepEqual(r.feed({ type: 'ppp-phase', phase: 'network' }, 60), []);
  assert.equal(r.core.status().phase, 'tunnel');
  assert.deepEqual(r.feed({ type: 'tunnel-up' }, 70), [{ type: 'arm', at: 70 + DEADLINES.session }]);
  assert.deepEqual(r.feed({ type: 'tunnel-up' }, 80), [], 'twice is once');
});

test('host: up only with a global address, the default route and no DNS exchange pending', () => {
  const r = upTo('provision');
  assert.deepEqual(r.feed({ type: 'address', present: true }, 1000), []);
  assert.deepEqual(r.feed({ type: 'dns-pending', pending: true }, 1100), []);
  assert.deepEqual(r.feed({ type: 'default-route', present: true }, 1200), [], 'DNS still coming');
  assert.deepEqual(r.feed({ type: 'dns-pending', pending: false }, 1300), [{ type: 'disarm' }, { type: 'up', degraded: null }]);
  assert.equal(r.core.status().phase, 'up');
  assert.equal(r.core.status().at.address, 1000);
  assert.deepEqual(r.feed({ type: 'timer' }, 20_000), [], 'the provisioning deadline is gone');
});

test('host: the default route alone is not up', () => {
  const r = upTo('provision');
  assert.deepEqual(r.feed({ type: 'default-route', present: true }, 1000), []);
  assert.deepEqual(r.feed({ type: 'address', present: true }, 1200), [{ type: 'disarm' }, { type: 'up', degraded: null }]);
});

test('router: the delegated prefix (LANs numbered) is needed too; it stands in for a WAN address', () => {
  const r = upTo('provision', { mode: 'router' });
  r.feed({ type: 'address', present: true }, 1000);
  assert.deepEqual(r.feed({ type: 'default-route', present: true }, 1100), [], 'no prefix yet');
  assert.deepEqual(r.feed({ type: 'prefix', present: true }, 1500), [{ type: 'disarm' }, { type: 'up', degraded: null }]);
  assert.equal(r.core.status().at.prefix, 1500);

  const noWan = upTo('provision', { mode: 'router' });
  noWan.feed({ type: 'default-route', present: true }, 1000);
  assert.deepEqual(noWan.feed({ type: 'prefix', present: true }, 1200), [{ type: 'disarm' }, { type: 'up', degraded: null }]);
});

test('no prefix or address within the provisioning wait: up, degraded, with what is missing; a late prefix clears it', () => {
  const r = upTo('provision', { mode: 'router' });
  r.feed({ type: 'address', present: true }, 1000);
  r.feed({ type: 'default-route', present: true }, 1000);
  assert.deepEqual(r.feed({ type: 'timer' }, 10_500), [
    { type: 'up', degraded: 'no delegated prefix from the SC within 10 s of the NCPs' },
  ]);
  assert.match(r.core.status().degraded ?? '', /delegated prefix/);
  assert.deepEqual(r.feed({ type: 'prefix', present: true }, 12_000), [{ type: 'degraded', reason: null }]);
  assert.equal(r.core.status().degraded, null);
  assert.deepEqual(r.feed({ type: 'prefix', present: false }, 13_000), [{ type: 'degraded', reason: 'no delegated prefix' }], 'withdrawn later');
  assert.deepEqual(r.feed({ type: 'prefix', present: false }, 13_100), [], 'reported once');
});

test('host with nothing from the SC: degraded names every missing piece', () => {
  const r = upTo('provision');
  const acts = r.feed({ type: 'timer' }, 10_500);
  assert.deepEqual(acts, [{ type: 'up', degraded: 'no global IPv6 address, no IPv6 default route (Router Advertisement) from the SC within 10 s of the NCPs' }]);
});

test('dual stack: both NCPs, then IPv4 installed as well as IPv6', () => {
  const r = upTo('ncp', { needIpv4: true });
  assert.deepEqual(r.feed({ type: 'ncp-up', ncp: 'ipcp' }, 500), [], 'IPV6CP still missing');
  assert.deepEqual(r.feed({ type: 'ncp-up', ncp: 'ipv6cp' }, 600), [{ type: 'arm', at: 10_600 }]);
  r.feed({ type: 'address', present: true }, 700);
  assert.deepEqual(r.feed({ type: 'default-route', present: true }, 800), [], 'IPv4 not installed yet');
  assert.deepEqual(r.feed({ type: 'ipv4-ready' }, 900), [{ type: 'disarm' }, { type: 'up', degraded: null }]);
});

test('IPv4 only: no provisioning wait, up once IPv4 is installed', () => {
  const r = upTo('ncp', { needIpv6: false, needIpv4: true });
  assert.deepEqual(r.feed({ type: 'ncp-up', ncp: 'ipcp' }, 500), []);
  assert.deepEqual(r.feed({ type: 'ipv4-ready' }, 600), [{ type: 'up', degraded: null }]);
});

test('readiness reported before the NCPs are up counts once they are', () => {
  const r = upTo('ncp');
  r.feed({ type: 'address', present: true }, 450);
  r.feed({ type: 'default-route', present: true }, 460);
  assert.deepEqual(r.feed({ type: 'ncp-up', ncp: 'ipv6cp' }, 500), [{ type: 'arm', at: 10_500 }, { type: 'disarm' }, { type: 'up', degraded: null }]);
});

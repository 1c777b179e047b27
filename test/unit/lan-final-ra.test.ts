import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isTimerAction } from '../../src/core/actions';
import { applyTimer } from '../../src/core/scheduler';
import { decodeNdMessage, type RouterAdvertisement } from '../../src/ipv6/nd';
import { LanProvisioner, type LanRaSender } from '../../src/lan/provisioner';
import { MIN_DELAY_BETWEEN_RAS_MS, type RaAction, type RaContent, RaCore } from '../../src/lan/ra-core';
import { RaSender, type RaSocket } from '../../src/lan/ra-sender';
import { seededRng } from '../../src/util/random';
import { FakeClock } from '../helpers/fake-clock';

/**
 * Teardown under a deadline: the agent must be gone within 3 s of SIGTERM, so the
 * final RA (router lifetime 0) may not wait out the 3 s multicast rate limit of
 * RFC 4861 6.2.4 behind an RA that just went out. Found by the router-role interop
 * test (SIGTERM right after the LAN was numbered took 2958 ms).
 */

const content: RaContent = {
  prefixes: [{ prefix: '2001:db8:100::', length: 64, preferredLifetime: 3600, validLifetime: 7200 }],
  dns: ['2001:db8:200::53'],
  domains: [],
  defaultRoute: true,
};

function core(finalRas = 1) {
  const clock = new FakeClock();
  const sent: { at: number; ra: RouterAdvertisement }[] = [];
  let stopped = 0;
  const c = new RaCore({ rng: seededRng(7), clock: () => clock.now(), finalRas });
  const run = (actions: RaAction[]) => {
    for (const a of actions) {
      if (isTimerAction(a)) applyTimer(clock, 'ra', a, (t) => run(c.timerFired(t)));
      else if (a.type === 'send') sent.push({ at: clock.now(), ra: decodeNdMessage(a.icmp) as RouterAdvertisement });
      else stopped++;
    }
  };
  return { clock, sent, run, c, stopped: () => stopped };
}

describe('final RA under a teardown deadline', () => {
  test('RaCore.stop({ now }) sends the final RA at once, right after another RA', () => {
    const h = core();
    h.run(h.c.update(content));
    h.clock.advance(100);
    assert.equal(h.sent.length, 1);
    h.run(h.c.stop({ now: true }));
    assert.equal(h.sent.length, 2, 'no wait for the rate limit');
    const final = h.sent[1]!;
    assert.equal(final.at, 100);
    assert.equal(final.ra.routerLifetime, 0);
    assert.deepEqual(
      final.ra.options.prefixes.map((p) => [p.prefix, p.preferredLifetime]),
      [['2001:db8:100::', 0]],
      'prefix deprecated (RFC 7084 L-13)',
    );
    assert.equal(h.stopped(), 1);
    assert.equal(h.clock.size(), 0);
  });

  test('with several final RAs only the first is early; the others keep the 3 s spacing', () => {
    const h = core(3);
    h.run(h.c.update(content));
    h.clock.advance(0);
    assert.equal(h.sent.length, 1);
    h.run(h.c.stop({ now: true }));
    h.clock.advance(10_000);
    const finals = h.sent.slice(1);
    assert.equal(finals.length, 3);
    assert.deepEqual(
      finals.map((f) => f.at),
      [0, MIN_DELAY_BETWEEN_RAS_MS, 2 * MIN_DELAY_BETWEEN_RAS_MS],
    );
    assert.equal(h.stopped(), 1);
  });

  test('without `now` the rate limit still holds (the default is unchanged)', () => {
    const h = core();
    h.run(h.c.update(content));
    h.clock.advance(1000);
    h.run(h.c.stop());
    assert.equal(h.sent.length, 1);
    h.clock.advance(MIN_DELAY_BETWEEN_RAS_MS);
    assert.equal(h.sent.length, 2);
    assert.equal(h.sent[1]!.at, MIN_DELAY_BETWEEN_RAS_MS);
  });

  test('RaSender.stop({ now }) resolves with the final RA sent and the socket closed, no timer left', async () => {
    const clock = new FakeClock();
    const out: Uint8Array[] = [];
    let closed = false;
    const sock: RaSocket = {
      joinGroup: () => {},
      setTypeFilter: () => {},
      onMessage: () => {},
      send: (m) => {
        out.push(m);
        return true;
      },
      close: () => {
        closed = true;
      },
    };
    const s = new RaSender('lan0', { rng: seededRng(1), scheduler: clock, openSocket: () => sock });
    s.update(content);
    clock.advance(0);
    assert.equal(out.length, 1);
    await s.stop({ now: true });
    assert.equal(out.length, 2);
    assert.equal((decodeNdMessage(out[1]!) as RouterAdvertisement).routerLifetime, 0);
    assert.ok(closed);
    assert.equal(clock.size(), 0);
  });

  test('LanProvisioner.clear() asks its senders for the early final RA', async () => {
    const clock = new FakeClock();
    const stops: ({ now?: boolean } | undefined)[] = [];
    const sender: LanRaSender = {
      update: () => {},
      stop: async (opts) => {
        stops.push(opts);
      },
      close: () => {},
    };
    const ok = async () => {};
    const p = new LanProvisioner({
      lan: [{ ifname: 'lan0', subPrefixId: 0 }],
      backend: 'builtin',
      netlink: { addAddress: ok, deleteAddress: ok, addRoute: ok, deleteRoute: ok },
      sysctl: { ipv6Forwarding: async () => true, setIpv6Forwarding: ok },
      scheduler: clock,
      rng: seededRng(1),
      openRaSender: () => sender,
    });
    const r = await p.apply({ prefix: '2001:db8:100::', length: 56, preferredLifetime: 3600, validLifetime: 7200 });
    assert.deepEqual(r.errors, []);
    await p.clear();
    assert.deepEqual(stops, [{ now: true }]);
  });
});

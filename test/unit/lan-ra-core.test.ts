import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { isTimerAction } from '../../src/core/actions';
import { applyTimer } from '../../src/core/scheduler';
import { decodeNdMessage, type RouterAdvertisement } from '../../src/ipv6/nd';
import {
  MAX_INITIAL_RTR_ADVERT_INTERVAL_MS,
  MIN_DELAY_BETWEEN_RAS_MS,
  type RaAction,
  type RaContent,
  RaCore,
  type RaCoreOptions,
} from '../../src/lan/ra-core';
import { seededRng } from '../../src/util/random';
import { FakeClock } from '../helpers/fake-clock';

interface Sent {
  at: number;
  dst: string;
  ra: RouterAdvertisement;
}

/** Runs a core on a FakeClock and records every RA it sends, decoded. */
function harness(opts: Partial<RaCoreOptions> = {}, seed = 1) {
  const clock = new FakeClock();
  const sent: Sent[] = [];
  let stopped = 0;
  const core = new RaCore({ rng: seededRng(seed), clock: () => clock.now(), ...opts });
  const run = (actions: RaAction[]) => {
    for (const a of actions) {
      if (isTimerAction(a)) applyTimer(clock, 'ra', a, (t) => run(core.timerFired(t)));
      else if (a.type === 'send') {
        const m = decodeNdMessage(a.icmp);
        assert.equal(m.kind, 'ra');
        sent.push({ at: clock.now(), dst: a.dst, ra: m as RouterAdvertisement });
      } else stopped++;
    }
  };
  return {
    clock,
    core,
    sent,
    stopped: () => stopped,
    update: (c: RaContent) => run(core.update(c)),
    rs: (from = 'fe80::99') => run(core.solicitation(from)),
    stop: () => run(core.stop()),
  };
}

const content = (over: Partial<RaContent> = {}): RaContent => ({
  prefixes: [{ prefix: '2001:db8:100:1::', length: 64, preferredLifetime: 1800, validLifetime: 3600 }],
  dns: ['2001:db8::53'],
  domains: ['example.net'],
  mtu: 1452,
  defaultRoute: true,
  ...over,
});

const gaps = (s: Sent[]) => s.slice(1).map((x, i) => x.at - s[i]!.at);

describe('RaCore schedule', () => {
  test('first RA at once, the first three at most 16 s apart, then MinRtrAdvInterval..MaxRtrAdvInterval', () => {
    const h = harness();
    h.update(content());
    h.clock.advance(0);
    assert.equal(h.sent.length, 1);
    assert.equal(h.sent[0]!.at, 0);
    assert.equal(h.sent[0]!.dst, 'ff02::1');
    h.clock.advance(6 * 3600_000);
    const g = gaps(h.sent);
    assert.ok(g.length > 30);
    // Intervals after the 1st and 2nd RA are within the initial cap (RFC 4861 6.2.4).
    for (const x of g.slice(0, 2)) assert.ok(x >= MIN_DELAY_BETWEEN_RAS_MS && x <= MAX_INITIAL_RTR_ADVERT_INTERVAL_MS, `initial gap ${x}`);
    for (const x of g.slice(2)) assert.ok(x >= 200_000 && x <= 600_000, `periodic gap ${x}`);
    // Uniform draws actually spread over the range.
    assert.ok(Math.max(...g.slice(2)) - Math.min(...g.slice(2)) > 200_000);
    assert.equal(h.clock.size(), 1, 'only the periodic timer is armed');
  });

  test('configured intervals are respected and checked against RFC 4861 6.2.1 bounds', () => {
    const h = harness({ minIntervalS: 30, maxIntervalS: 60, routerLifetimeS: 180 });
    h.update(content());
    h.clock.advance(3600_000);
    for (const x of gaps(h.sent).slice(2)) assert.ok(x >= 30_000 && x <= 60_000, `gap ${x}`);
    assert.equal(h.sent[0]!.ra.routerLifetime, 180);
    const rng = seededRng(1);
    const clock = () => 0;
    assert.throws(() => new RaCore({ rng, clock, maxIntervalS: 3 }), /MaxRtrAdvInterval/);
    assert.throws(() => new RaCore({ rng, clock, minIntervalS: 50, maxIntervalS: 60 }), /MinRtrAdvInterval/);
    assert.throws(() => new RaCore({ rng, clock, maxIntervalS: 600, routerLifetimeS: 100 }), /router lifetime/);
    assert.throws(() => new RaCore({ rng, clock, finalRas: 4 }), /finalRas/);
  });

  test('an RS is answered by a multicast RA within MAX_RA_DELAY_TIME when none went out recently', () => {
    const h = harness();
    h.update(content());
    h.clock.advance(100_000); // past the initial burst
    const before = h.sent.length;
    const t0 = h.clock.now();
    h.rs();
    h.clock.advance(600);
    assert.equal(h.sent.length, before + 1);
    const answer = h.sent.at(-1)!;
    assert.ok(answer.at - t0 <= 500 && answer.at >= t0);
    assert.equal(answer.dst, 'ff02::1');
    assert.equal(h.core.counters.solicited, 1);
  });

  test('RSs right after an RA wait MIN_DELAY_BETWEEN_RAS and a burst of them is answered once', () => {
    const h = harness();
    h.update(content());
    h.clock.advance(100_000);
    h.rs();
    h.clock.advance(600);
    const last = h.sent.at(-1)!.at;
    const n = h.sent.length;
    for (let i = 0; i < 20; i++) {
      h.rs(`fe80::${i + 1}`);
      h.clock.advance(50);
    }
    h.clock.advance(MIN_DELAY_BETWEEN_RAS_MS + 600 - 20 * 50);
    assert.equal(h.sent.length, n + 1, 'twenty solicitations, one answer');
    const answer = h.sent.at(-1)!.at;
    assert.ok(answer - last >= MIN_DELAY_BETWEEN_RAS_MS && answer - last <= MIN_DELAY_BETWEEN_RAS_MS + 500, `gap ${answer - last}`);
    assert.equal(h.core.counters.solicitations, 21);
  });

  test('property: no two RAs are ever closer than MIN_DELAY_BETWEEN_RAS, whatever the RS pattern', () => {
    fc.assert(
      fc.property(fc.integer(), fc.array(fc.integer({ min: 0, max: 20_000 }), { maxLength: 40 }), (seed, waits) => {
        const h = harness({ minIntervalS: 3, maxIntervalS: 4, routerLifetimeS: 0 }, seed);
        h.update(content());
        for (const w of waits) {
          h.clock.advance(w);
          h.rs();
          if (w % 7 === 0) h.update(content({ dns: [w % 2 ? '2001:db8::1' : '2001:db8::2'] }));
        }
        h.clock.advance(10_000);
        for (const x of gaps(h.sent)) assert.ok(x >= MIN_DELAY_BETWEEN_RAS_MS, `gap ${x}`);
      }),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 100) },
    );
  });

  test('nothing is sent before the first update, and RSs then are ignored', () => {
    const h = harness();
    h.rs();
    h.clock.advance(10_000);
    assert.equal(h.sent.length, 0);
    assert.equal(h.clock.size(), 0);
  });
});

describe('RaCore content', () => {
  test('flags, router lifetime, PIO with A and L, RDNSS, DNSSL and MTU', () => {
    const h = harness();
    h.update(content());
    h.clock.advance(0);
    const ra = h.sent[0]!.ra;
    assert.equal(ra.managed, false);
    assert.equal(ra.other, false);
    assert.equal(ra.curHopLimit, 64);
    assert.equal(ra.routerLifetime, 1800);
    assert.deepEqual(ra.options.prefixes, [
      { prefix: '2001:db8:100:1::', prefixLength: 64, onLink: true, autonomous: true, validLifetime: 3600, preferredLifetime: 1800 },
    ]);
    assert.deepEqual(ra.options.rdnss, [{ lifetime: 1800, servers: ['2001:db8::53'] }]);
    assert.deepEqual(ra.options.dnssl, [{ lifetime: 1800, domains: ['example.net'] }]);
    assert.equal(ra.options.mtu, 1452);
  });

  test('M/O flags are configurable; no DNSSL without domains; no MTU option without an MTU', () => {
    const h = harness({ managed: true, other: true });
    h.update(content({ domains: [], mtu: undefined }));
    h.clock.advance(0);
    const ra = h.sent[0]!.ra;
    assert.equal(ra.managed, true);
    assert.equal(ra.other, true);
    assert.deepEqual(ra.options.dnssl, []);
    assert.equal(ra.options.mtu, undefined);
  });

  test('router lifetime 0 when the softwire has no default route', () => {
    const h = harness();
    h.update(content({ defaultRoute: false }));
    h.clock.advance(0);
    assert.equal(h.sent[0]!.ra.routerLifetime, 0);
  });

  test('lifetimes count down with the lease and are capped at ND_PREFERRED_LIMIT / ND_VALID_LIMIT (RFC 9096)', () => {
    const h = harness();
    h.update(content({ prefixes: [{ prefix: '2001:db8:100:1::', length: 64, preferredLifetime: 86400, validLifetime: 6000 }] }));
    h.clock.advance(0);
    let pio = h.sent[0]!.ra.options.prefixes[0]!;
    assert.equal(pio.preferredLifetime, 2700);
    assert.equal(pio.validLifetime, 5400);
    h.clock.advance(3000_000); // 50 min later: 3000 s of the 6000 s lease are left
    pio = h.core.build().options.prefixes[0]!;
    assert.equal(pio.validLifetime, 3000);
    assert.equal(pio.preferredLifetime, 2700);
    h.clock.advance(2900_000);
    pio = h.core.build().options.prefixes[0]!;
    assert.equal(pio.validLifetime, 100);
    assert.equal(pio.preferredLifetime, 100, 'preferred never exceeds valid');
    h.clock.advance(200_000);
    assert.deepEqual(h.core.build().options.prefixes, [], 'an expired lease is no longer announced');
    // Infinite lifetimes are capped too, and cannot leak 0xffffffff onto the LAN.
    const inf = harness();
    inf.update(content({ prefixes: [{ prefix: '2001:db8::', length: 64, preferredLifetime: 0xffffffff, validLifetime: 0xffffffff }] }));
    assert.deepEqual(
      [inf.core.build().options.prefixes[0]!.preferredLifetime, inf.core.build().options.prefixes[0]!.validLifetime],
      [2700, 5400],
    );
  });

  test('bad DNS data from upstream is dropped, not encoded; IPv4 servers cannot go in RDNSS', () => {
    const h = harness();
    h.update(content({ dns: ['192.0.2.1', 'evil\nnameserver 1.2.3.4', '2001:DB8::53', '2001:db8::53'], domains: ['ok.example', 'bad domain', 'x\n'], mtu: 500 }));
    h.clock.advance(0);
    const ra = h.sent[0]!.ra;
    assert.deepEqual(ra.options.rdnss, [{ lifetime: 1800, servers: ['2001:db8::53'] }]);
    assert.deepEqual(ra.options.dnssl, [{ lifetime: 1800, domains: ['ok.example'] }]);
    assert.equal(ra.options.mtu, undefined, 'an MTU under 1280 is not announced');
  });
});

describe('RaCore deprecation and stop', () => {
  test('a prefix change announces the old prefix deprecated in the next three RAs, sent on the fast schedule, then drops it', () => {
    const h = harness();
    h.update(content());
    h.clock.advance(1000_000);
    const n = h.sent.length;
    h.update(content({ prefixes: [{ prefix: '2001:db8:101:1::', length: 64, preferredLifetime: 1800, validLifetime: 3600 }] }));
    h.clock.advance(MIN_DELAY_BETWEEN_RAS_MS);
    assert.equal(h.sent.length, n + 1, 'the change goes out at once (after the rate limit)');
    h.clock.advance(2 * MAX_INITIAL_RTR_ADVERT_INTERVAL_MS);
    const after = h.sent.slice(n);
    assert.ok(after.length >= 3);
    const changedAt = 1000_000;
    for (const s of after.slice(0, 3)) {
      const [fresh, old] = s.ra.options.prefixes;
      assert.equal(s.ra.options.prefixes.length, 2);
      // The new lease counts down from the update; the old one from t=0, with preferred 0.
      assert.equal(fresh!.prefix, '2001:db8:101:1::');
      assert.equal(fresh!.preferredLifetime, 1800 - Math.ceil((s.at - changedAt) / 1000));
      assert.equal(fresh!.validLifetime, 3600 - Math.ceil((s.at - changedAt) / 1000));
      assert.equal(old!.prefix, '2001:db8:100:1::');
      assert.equal(old!.preferredLifetime, 0);
      assert.equal(old!.validLifetime, 3600 - Math.ceil(s.at / 1000));
    }
    assert.ok(gaps(after).slice(0, 2).every((g) => g <= MAX_INITIAL_RTR_ADVERT_INTERVAL_MS));
    h.clock.advance(1200_000);
    assert.deepEqual(
      h.sent.at(-1)!.ra.options.prefixes.map((p) => p.prefix),
      ['2001:db8:101:1::'],
      'dropped after three RAs',
    );
    assert.deepEqual(h.core.deprecatedPrefixes, []);
  });

  test('prefix withdrawn entirely: deprecated with valid lifetime capped at ND_VALID_LIMIT; coming back cancels it', () => {
    const h = harness();
    h.update(content({ prefixes: [{ prefix: '2001:db8:100:1::', length: 64, preferredLifetime: 86400, validLifetime: 86400 }] }));
    h.clock.advance(100_000);
    h.update(content({ prefixes: [] }));
    h.clock.advance(MIN_DELAY_BETWEEN_RAS_MS);
    const pio = h.sent.at(-1)!.ra.options.prefixes;
    assert.deepEqual(pio.map((p) => [p.prefix, p.preferredLifetime, p.validLifetime]), [['2001:db8:100:1::', 0, 5400]]);
    assert.deepEqual(h.core.deprecatedPrefixes, ['2001:db8:100:1::/64']);
    h.update(content());
    assert.deepEqual(h.core.deprecatedPrefixes, []);
  });

  test('a lease renewal (same prefix, new lifetimes) is not a change: no extra RA', () => {
    const h = harness();
    h.update(content());
    h.clock.advance(100_000);
    const n = h.sent.length;
    h.update(content({ prefixes: [{ prefix: '2001:db8:100:1::', length: 64, preferredLifetime: 1800, validLifetime: 3600 }] }));
    h.clock.advance(10_000);
    assert.equal(h.sent.length, n);
  });

  test('stop: a final RA with router lifetime 0, prefixes deprecated, DNS lifetimes 0, then stopped', () => {
    const h = harness();
    h.update(content());
    h.clock.advance(100_000);
    const n = h.sent.length;
    h.stop();
    assert.equal(h.sent.length, n + 1, 'sent at once, the last RA being long enough ago');
    const ra = h.sent.at(-1)!.ra;
    assert.equal(ra.routerLifetime, 0);
    assert.deepEqual(
      ra.options.prefixes.map((p) => [p.prefix, p.preferredLifetime]),
      [['2001:db8:100:1::', 0]],
    );
    assert.ok(ra.options.prefixes[0]!.validLifetime > 0);
    assert.equal(ra.options.rdnss[0]!.lifetime, 0);
    assert.equal(ra.options.dnssl[0]!.lifetime, 0);
    assert.equal(h.stopped(), 1);
    assert.equal(h.core.state, 'stopped');
    assert.equal(h.clock.size(), 0, 'no timers left');
    h.rs();
    h.update(content());
    h.clock.advance(1000_000);
    assert.equal(h.sent.length, n + 1, 'silent after stop');
  });

  test('stop right after an RA waits for the rate limit; finalRas=3 sends three, 3 s apart', () => {
    const h = harness({ finalRas: 3 });
    h.update(content());
    h.clock.advance(0);
    h.stop();
    assert.equal(h.sent.length, 1);
    h.clock.advance(10_000);
    const finals = h.sent.slice(1);
    assert.equal(finals.length, 3);
    assert.ok(finals.every((s) => s.ra.routerLifetime === 0));
    assert.deepEqual(gaps(h.sent), [3000, 3000, 3000]);
    assert.equal(h.stopped(), 1);
  });

  test('stop before anything was sent says stopped and sends nothing', () => {
    const h = harness();
    h.stop();
    assert.equal(h.sent.length, 0);
    assert.equal(h.stopped(), 1);
  });
});

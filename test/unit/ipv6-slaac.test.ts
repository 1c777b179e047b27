import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isTimerAction } from '../../src/core/actions';
import { applyTimer } from '../../src/core/scheduler';
import { buildNdPacket, emptyOptions, type NdOptions, parseNdPacket, type RouterAdvertisement } from '../../src/ipv6/nd';
import { parseIpv6 } from '../../src/ipv6/packet';
import { RouterSolicitor, type RsAction } from '../../src/ipv6/rs';
import { Slaac, type SlaacAction } from '../../src/ipv6/slaac';
import { FakeClock } from '../helpers/fake-clock';

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const IID = hex('c633648000000000');
const ADDR = '2001:db8:200:0:c633:6480::';
const DAY = 86400_000;

/** Runs a core's timer actions on a FakeClock and records every other action with its time. */
function harness<A extends { type: string }>(clock: FakeClock, fire: (timer: string) => A[]) {
  const log: { at: number; a: A }[] = [];
  const apply = (actions: A[]): void => {
    for (const a of actions) {
      if (isTimerAction(a)) applyTimer(clock, 'core', a, (t) => apply(fire(t)));
      else log.push({ at: clock.now(), a });
    }
  };
  const take = (type: string) => log.filter((e) => e.a.type === type);
  return { log, apply, take };
}

function ra(over: Partial<RouterAdvertisement> = {}, options: Partial<NdOptions> = {}): Uint8Array {
  const m: RouterAdvertisement = {
    kind: 'ra',
    curHopLimit: 64,
    managed: true,
    other: true,
    routerLifetime: 65535,
    reachableTime: 0,
    retransTimer: 0,
    options: emptyOptions({
      prefixes: [
        {
          prefix: '2001:db8:200::',
          prefixLength: 64,
          onLink: true,
          autonomous: true,
          validLifetime: 2592000,
          preferredLifetime: 604800,
        },
      ],
      rdnss: [{ lifetime: 1200, servers: ['2001:db8::53'] }],
      ...options,
    }),
    ...over,
  };
  return buildNdPacket('fe80::1', 'ff02::1', m);
}

function pio(validLifetime: number, preferredLifetime: number, prefix = '2001:db8:200::') {
  return { prefixes: [{ prefix, prefixLength: 64, onLink: true, autonomous: true, validLifetime, preferredLifetime }] };
}

// ------------------------------------------------------------------ RS

test('RS classic RFC 4861 schedule: random delay, 3 solicitations 4 s apart, then give up', () => {
  const clock = new FakeClock();
  const rs = new RouterSolicitor({ rng: () => 0.5, source: 'fe80::c633:6480:0:0', maxSolicitations: 3, backoff: false });
  const h = harness<RsAction>(clock, (t) => rs.timerFired(t));
  h.apply(rs.start());
  clock.advance(60_000);
  assert.deepEqual(
    h.take('send').map((e) => e.at),
    [500, 4500, 8500],
  );
  assert.deepEqual(h.take('rs-gave-up'), [{ at: 12500, a: { type: 'rs-gave-up', sent: 3 } }]);
  assert.equal(rs.state, 'gave-up');
  const pkt = parseNdPacket((h.take('send')[0]!.a as { packet: Uint8Array }).packet);
  assert.equal(pkt.ip.src, 'fe80::c633:6480:0:0');
  assert.equal(pkt.ip.dst, 'ff02::2');
  assert.equal(pkt.message.kind, 'rs');
});

test('RS default RFC 7559 backoff: doubling from 4 s, capped at an hour, jitter within 10%', () => {
  for (const [r, factor] of [
    [0.5, 1],
    [0, 0.9],
    [0.999999, 1.1],
  ] as const) {
    const clock = new FakeClock();
    const rs = new RouterSolicitor({ rng: () => r });
    const h = harness<RsAction>(clock, (t) => rs.timerFired(t));
    h.apply(rs.start());
    clock.advance(5 * 3600_000);
    const at = h.take('send').map((e) => e.at);
    const gaps = at.slice(1).map((t, i) => t - at[i]!);
    assert.ok(at[0]! <= 1000);
    // first gap IRT*(1+RAND), later ones double with jitter, until capped at MRT*(1+RAND)
    assert.ok(Math.abs(gaps[0]! - 4000 * factor) <= 1, `first gap ${gaps[0]}`);
    for (let i = 1; i < gaps.length; i++) {
      const capped = 3600_000 * factor;
      const doubled = gaps[i - 1]! * (2 + (factor - 1));
      assert.ok(Math.abs(gaps[i]! - Math.min(doubled, capped)) <= 2, `gap ${i}: ${gaps[i]}`);
      assert.ok(gaps[i]! <= 3600_000 * 1.1 + 1);
    }
    assert.ok(
      gaps.some((g) => Math.abs(g - 3600_000 * factor) <= 2),
      'reaches the cap',
    );
    assert.equal(h.take('rs-gave-up').length, 0);
  }
});

test('RS stops when an RA arrives', () => {
  const clock = new FakeClock();
  const rs = new RouterSolicitor({ rng: () => 0 });
  const h = harness<RsAction>(clock, (t) => rs.timerFired(t));
  h.apply(rs.start());
  clock.advance(5000);
  assert.equal(h.take('send').length, 2);
  h.apply(rs.raReceived());
  clock.advance(3600_000);
  assert.equal(h.take('send').length, 2);
  assert.equal(rs.state, 'done');
  assert.equal(clock.size(), 0);
});

// ------------------------------------------------------------------ SLAAC + DAD

function slaac(clock: FakeClock, extra: Partial<ConstructorParameters<typeof Slaac>[0]> = {}) {
  let seed = 1;
  const core = new Slaac({
    iid: IID,
    clock: () => clock.now(),
    rng: () => {
      seed = (seed * 48271) % 2147483647;
      return seed / 2147483647;
    },
    ...extra,
  });
  const h = harness<SlaacAction>(clock, (t) => core.timerFired(t));
  return { core, h };
}

test('l2tpns RA: flags, default route, DNS, one DAD probe, then the address after RetransTimer', () => {
  const clock = new FakeClock();
  const { core, h } = slaac(clock);
  h.apply(core.receive(ra()));
  assert.deepEqual(h.take('ra-flags')[0]!.a, { type: 'ra-flags', managed: true, other: true });
  assert.deepEqual(h.take('default-route')[0]!.a, { type: 'default-route', present: true, router: 'fe80::1', lifetime: 65535 });
  assert.deepEqual(h.take('dns')[0]!.a, { type: 'dns', servers: ['2001:db8::53'], search: [] });
  const sends = h.take('send');
  assert.equal(sends.length, 1);
  const probe = parseNdPacket((sends[0]!.a as { packet: Uint8Array }).packet);
  assert.equal(probe.ip.src, '::');
  assert.equal(probe.ip.dst, 'ff02::1:ff00:0');
  assert.equal(probe.message.kind === 'ns' && probe.message.target, ADDR);
  assert.equal(h.take('address').length, 0, 'not before DAD completes');
  clock.advance(999);
  assert.equal(h.take('address').length, 0);
  clock.advance(1);
  assert.deepEqual(h.take('address'), [
    {
      at: 1000,
      a: {
        type: 'address',
        address: ADDR,
        prefix: '2001:db8:200::',
        prefixLength: 64,
        validLifetime: 2591999,
        preferredLifetime: 604799,
      },
    },
  ]);
  assert.equal(core.status().addresses[0]!.state, 'preferred');
  // the repeated RA (l2tpns sends one after every client echo) refreshes lifetimes without a new probe
  clock.advance(30_000);
  h.apply(core.receive(ra()));
  assert.equal(h.take('send').length, 1);
  assert.equal(h.take('address').length, 2);
  assert.equal(h.take('dns').length, 1, 'unchanged DNS is not re-announced');
  assert.equal(h.take('default-route').length, 1);
});

test('DAD: an NA for the tentative address means duplicate; the address is never reported', () => {
  const clock = new FakeClock();
  const { core, h } = slaac(clock);
  h.apply(core.receive(ra()));
  clock.advance(300);
  const na = buildNdPacket(ADDR, 'ff02::1', {
    kind: 'na',
    router: false,
    solicited: false,
    override: true,
    target: ADDR,
    options: emptyOptions(),
  });
  h.apply(core.receive(na));
  assert.deepEqual(
    h.take('dad-failed').map((e) => e.a),
    [{ type: 'dad-failed', address: ADDR, prefix: '2001:db8:200::', prefixLength: 64 }],
  );
  clock.advance(10_000);
  assert.equal(h.take('address').length, 0);
  assert.equal(core.status().counters.dadFailures, 1);
  // later RAs for the same prefix do not start DAD again
  h.apply(core.receive(ra()));
  assert.equal(h.take('send').length, 1);
});

test('DAD: a probe from another node is a duplicate, our own looped-back probe is not', () => {
  const clock = new FakeClock();
  const { core, h } = slaac(clock, { dadTransmits: 2 });
  h.apply(core.receive(ra()));
  const own = (h.take('send')[0]!.a as { packet: Uint8Array }).packet;
  h.apply(core.receive(own));
  assert.equal(h.take('dad-failed').length, 0);
  clock.advance(1000);
  assert.equal(h.take('send').length, 2, 'DupAddrDetectTransmits=2 sends a second probe');
  const other = buildNdPacket('::', 'ff02::1:ff00:0', {
    kind: 'ns',
    target: ADDR,
    options: emptyOptions({ nonce: hex('ffffffffffff') }),
  });
  h.apply(core.receive(other));
  assert.equal(h.take('dad-failed').length, 1);
  clock.advance(5000);
  assert.equal(h.take('address').length, 0);
});

test('DAD: an NS for the address from a unicast source (address resolution) is not a duplicate', () => {
  const clock = new FakeClock();
  const { core, h } = slaac(clock);
  h.apply(core.receive(ra()));
  const resolution = buildNdPacket('fe80::1', 'ff02::1:ff00:0', { kind: 'ns', target: ADDR, options: emptyOptions() });
  h.apply(core.receive(resolution));
  clock.advance(1000);
  assert.equal(h.take('dad-failed').length, 0);
  assert.equal(h.take('address').length, 1);
});

test('DAD off: the address is usable at once', () => {
  const clock = new FakeClock();
  const { core, h } = slaac(clock, { dadTransmits: 0 });
  h.apply(core.receive(ra()));
  assert.equal(h.take('send').length, 0);
  assert.equal(h.take('address').length, 1);
});

test('lifetimes: deprecated at preferred, removed at valid', () => {
  const clock = new FakeClock();
  const { core, h } = slaac(clock, { dadTransmits: 0 });
  h.apply(core.receive(ra({ routerLifetime: 0 }, { ...pio(30, 10), rdnss: [] })));
  clock.advance(9_999);
  assert.equal(h.take('address').length, 1);
  clock.advance(1);
  assert.deepEqual(h.take('address')[1], {
    at: 10_000,
    a: { type: 'address', address: ADDR, prefix: '2001:db8:200::', prefixLength: 64, validLifetime: 20, preferredLifetime: 0 },
  });
  assert.equal(core.status().addresses[0]!.state, 'deprecated');
  clock.advance(20_000);
  assert.deepEqual(h.take('address-removed'), [
    { at: 30_000, a: { type: 'address-removed', address: ADDR, prefix: '2001:db8:200::', prefixLength: 64, reason: 'expired' } },
  ]);
  assert.equal(core.status().addresses.length, 0);
  assert.equal(clock.size(), 0);
});

test('a 30-day valid lifetime outlasts the setTimeout limit and still expires on time', () => {
  const clock = new FakeClock();
  const { core, h } = slaac(clock, { dadTransmits: 0 });
  h.apply(core.receive(ra({ routerLifetime: 0 }, { ...pio(2592000, 2592000), rdnss: [] })));
  clock.advance(25 * DAY);
  assert.equal(h.take('address-removed').length, 0);
  clock.advance(5 * DAY - 1);
  assert.equal(h.take('address-removed').length, 0);
  clock.advance(1);
  assert.equal(h.take('address-removed')[0]!.at, 30 * DAY);
});

test('RFC 4862 5.5.3 e): the two-hour rule for valid lifetime updates', () => {
  const clock = new FakeClock();
  const { core, h } = slaac(clock, { dadTransmits: 0 });
  const valid = () => core.status().addresses[0]!.validLifetime;
  h.apply(core.receive(ra({}, pio(10_000, 5_000))));
  assert.equal(valid(), 10_000);
  // a short lifetime cannot cut a long remaining lifetime below two hours
  h.apply(core.receive(ra({}, pio(100, 50))));
  assert.equal(valid(), 7200);
  assert.equal(core.status().addresses[0]!.preferredLifetime, 50, 'preferred lifetime always follows the RA');
  // with two hours or less left, a shorter lifetime is ignored
  clock.advance(1000_000);
  assert.equal(valid(), 6200);
  h.apply(core.receive(ra({}, pio(100, 50))));
  assert.equal(valid(), 6200);
  // a longer one is taken, as is anything above two hours
  h.apply(core.receive(ra({}, pio(6500, 50))));
  assert.equal(valid(), 6500);
  h.apply(core.receive(ra({}, pio(9000, 50))));
  assert.equal(valid(), 9000);
  // valid lifetime 0 cannot remove the address at once either
  h.apply(core.receive(ra({}, pio(0, 0))));
  assert.equal(valid(), 7200);
  assert.equal(h.take('address-removed').length, 0);
});

test('prefixes that must not form addresses are ignored', () => {
  const clock = new FakeClock();
  const { core, h } = slaac(clock, { dadTransmits: 0 });
  const base = { onLink: true, autonomous: true, validLifetime: 100, preferredLifetime: 50 };
  h.apply(
    core.receive(
      ra(
        {},
        {
          prefixes: [
            { ...base, prefix: '2001:db8:1::', prefixLength: 56 },
            { ...base, prefix: 'fe80::', prefixLength: 64 },
            { ...base, prefix: '2001:db8:2::', prefixLength: 64, preferredLifetime: 200 },
            { ...base, prefix: '2001:db8:3::', prefixLength: 64, autonomous: false },
          ],
        },
      ),
    ),
  );
  assert.equal(h.take('address').length, 0);
  assert.equal(core.status().counters.ignoredPrefixes, 3);
});

test('RDNSS/DNSSL lifetimes, router lifetime, MTU option', () => {
  const clock = new FakeClock();
  const { core, h } = slaac(clock, { dadTransmits: 0, linkMtu: 1460 });
  h.apply(
    core.receive(
      ra(
        { routerLifetime: 60 },
        { rdnss: [{ lifetime: 20, servers: ['2001:db8::53'] }], dnssl: [{ lifetime: 40, domains: ['example.net'] }], mtu: 1400 },
      ),
    ),
  );
  assert.deepEqual(
    h.take('mtu').map((e) => e.a),
    [{ type: 'mtu', mtu: 1400 }],
  );
  assert.deepEqual(
    h.take('dns').map((e) => e.a),
    [{ type: 'dns', servers: ['2001:db8::53'], search: ['example.net'] }],
  );
  clock.advance(20_000);
  assert.deepEqual(h.take('dns')[1], { at: 20_000, a: { type: 'dns', servers: [], search: ['example.net'] } });
  clock.advance(20_000);
  assert.deepEqual(h.take('dns')[2]!.a, { type: 'dns', servers: [], search: [] });
  clock.advance(20_000);
  assert.deepEqual(h.take('default-route')[1], {
    at: 60_000,
    a: { type: 'default-route', present: false, router: 'fe80::1', lifetime: 0 },
  });
  // an MTU above the link MTU or below 1280 is ignored; lifetime 0 withdraws a server; router lifetime 0 withdraws the route
  h.apply(core.receive(ra({ routerLifetime: 100 }, { mtu: 1500, rdnss: [{ lifetime: 100, servers: ['2001:db8::53'] }] })));
  h.apply(core.receive(ra({ routerLifetime: 100 }, { mtu: 1000, rdnss: [{ lifetime: 0, servers: ['2001:db8::53'] }] })));
  assert.equal(h.take('mtu').length, 1);
  assert.deepEqual(h.take('dns').at(-1)!.a, { type: 'dns', servers: [], search: [] });
  h.apply(core.receive(ra({ routerLifetime: 0 })));
  assert.deepEqual(h.take('default-route').at(-1)!.a, { type: 'default-route', present: false, router: 'fe80::1', lifetime: 0 });
});

test('stop() undoes everything and leaves no timers', () => {
  const clock = new FakeClock();
  const { core, h } = slaac(clock);
  h.apply(core.receive(ra()));
  clock.advance(1000);
  h.apply(core.stop());
  assert.deepEqual(
    h.take('address-removed').map((e) => (e.a as { reason: string }).reason),
    ['stopped'],
  );
  assert.equal(
    h.take('default-route').at(-1)!.a.type === 'default-route' &&
      (h.take('default-route').at(-1)!.a as { present: boolean }).present,
    false,
  );
  assert.deepEqual(h.take('dns').at(-1)!.a, { type: 'dns', servers: [], search: [] });
  assert.equal(clock.size(), 0);
  assert.deepEqual(core.status().addresses, []);
});

test('invalid ND (bad hop limit) is counted and ignored', () => {
  const clock = new FakeClock();
  const { core } = slaac(clock);
  const pkt = ra();
  const ip = parseIpv6(pkt);
  assert.equal(ip.hopLimit, 255);
  const bad = pkt.slice();
  bad[7] = 64;
  assert.deepEqual(core.receive(bad), []);
  assert.deepEqual(core.receive(hex('6000')), []);
  assert.equal(core.status().counters.invalid, 2);
});

// Issue 16 item 10: Optimistic DAD (RFC 4429).
test('optimistic DAD: the address is reported at once, marked optimistic, and again when DAD passes', () => {
  const clock = new FakeClock();
  const { core, h } = slaac(clock, { optimistic: true });
  h.apply(core.receive(ra()));
  const first = h.take('address');
  assert.equal(first.length, 1, 'usable before DAD completes');
  assert.equal(first[0]!.at, 0);
  assert.equal((first[0]!.a as { optimistic?: boolean }).optimistic, true);
  assert.equal(h.take('send').length, 1, 'DAD still probes');
  assert.equal(core.status().addresses[0]!.state, 'optimistic');
  // An RA while DAD runs refreshes it but keeps it optimistic.
  h.apply(core.receive(ra()));
  assert.equal((h.take('address')[1]!.a as { optimistic?: boolean }).optimistic, true);
  assert.equal(h.take('send').length, 1, 'no second DAD run');
  clock.advance(1000);
  const passed = h.take('address');
  assert.equal(passed.length, 3);
  assert.equal(passed[2]!.at, 1000);
  assert.equal((passed[2]!.a as { optimistic?: boolean }).optimistic, undefined);
  assert.equal(core.status().addresses[0]!.state, 'preferred');
});

test('optimistic DAD: a duplicate removes the optimistic address and reports the failure', () => {
  const clock = new FakeClock();
  const { core, h } = slaac(clock, { optimistic: true });
  h.apply(core.receive(ra()));
  assert.equal(h.take('address').length, 1);
  clock.advance(200);
  const na = buildNdPacket(ADDR, 'ff02::1', { kind: 'na', router: false, solicited: false, override: true, target: ADDR, options: emptyOptions() });
  h.apply(core.receive(na));
  assert.deepEqual(
    h.take('address-removed').map((e) => e.a),
    [{ type: 'address-removed', address: ADDR, prefix: '2001:db8:200::', prefixLength: 64, reason: 'duplicate' }],
  );
  assert.equal(h.take('dad-failed').length, 1);
  clock.advance(5000);
  assert.equal(h.take('address').length, 1, 'never reported again');
  assert.equal(core.status().addresses[0]!.state, 'duplicate');
});

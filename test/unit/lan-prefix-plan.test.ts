import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { formatPrefix, prefixContains } from '../../src/ipv6/address';
import { diffPlans, planPrefix } from '../../src/lan/prefix-plan';

const lease = (prefix: string, length: number) => ({ prefix, length, preferredLifetime: 3600, validLifetime: 7200 });

describe('planPrefix', () => {
  test('numbers each LAN /64 by its sub-prefix id, router at ::1, unreachable route for the whole delegation', () => {
    const plan = planPrefix(lease('2001:db8:100::', 56), [
      { ifname: 'br-lan', subPrefixId: 0 },
      { ifname: 'guest', subPrefixId: 3 },
      { ifname: 'iot', subPrefixId: 255 },
    ]);
    assert.deepEqual(plan.errors, []);
    assert.equal(plan.unreachable, '2001:db8:100::/56');
    assert.deepEqual(
      plan.lans.map((a) => [a.ifname, formatPrefix(a.prefix), a.routerAddress]),
      [
        ['br-lan', '2001:db8:100::/64', '2001:db8:100::1'],
        ['guest', '2001:db8:100:3::/64', '2001:db8:100:3::1'],
        ['iot', '2001:db8:100:ff::/64', '2001:db8:100:ff::1'],
      ],
    );
  });

  test('host bits of the delegated prefix are cleared', () => {
    const plan = planPrefix(lease('2001:db8:100:ab::5', 56), [{ ifname: 'lan', subPrefixId: 1 }]);
    assert.equal(plan.unreachable, '2001:db8:100::/56');
    assert.equal(plan.lans[0]!.routerAddress, '2001:db8:100:1::1');
  });

  test('an id that does not fit is an error naming the interface and the range; others still get numbered', () => {
    const plan = planPrefix(lease('2001:db8:100::', 56), [
      { ifname: 'big', subPrefixId: 300 },
      { ifname: 'ok', subPrefixId: 2 },
    ]);
    assert.equal(plan.errors.length, 1);
    assert.match(plan.errors[0]!, /^big: sub-prefix id 300 does not fit in 2001:db8:100::\/56 \(ids 0\.\.255/);
    assert.deepEqual(
      plan.lans.map((a) => a.ifname),
      ['ok'],
    );
    // A /64 delegation has room for id 0 only.
    const p64 = planPrefix(lease('2001:db8::', 64), [
      { ifname: 'a', subPrefixId: 0 },
      { ifname: 'b', subPrefixId: 1 },
    ]);
    assert.deepEqual(p64.lans.map((a) => a.routerAddress), ['2001:db8::1']);
    assert.match(p64.errors[0]!, /b: sub-prefix id 1 .*ids 0\.\.0/);
  });

  test('negative and fractional ids, duplicate ids and duplicate names are refused', () => {
    const plan = planPrefix(lease('2001:db8:100::', 60), [
      { ifname: 'a', subPrefixId: -1 },
      { ifname: 'b', subPrefixId: 1.5 },
      { ifname: 'c', subPrefixId: 4 },
      { ifname: 'd', subPrefixId: 4 },
      { ifname: 'c', subPrefixId: 5 },
    ]);
    assert.deepEqual(
      plan.lans.map((a) => a.ifname),
      ['c'],
    );
    assert.equal(plan.errors.length, 4);
    assert.match(plan.errors[2]!, /d: sub-prefix id 4 is already used by c/);
    assert.match(plan.errors[3]!, /c: listed more than once/);
  });

  test('a delegation longer than /64 numbers nothing but still gets its unreachable route', () => {
    const plan = planPrefix(lease('2001:db8::', 80), [{ ifname: 'lan', subPrefixId: 0 }]);
    assert.deepEqual(plan.lans, []);
    assert.equal(plan.unreachable, '2001:db8::/80');
    assert.match(plan.errors[0]!, /longer than \/64/);
  });

  test('bad delegated prefixes throw RangeError', () => {
    assert.throws(() => planPrefix(lease('nonsense', 56), []), RangeError);
    assert.throws(() => planPrefix(lease('2001:db8::', 129), []), RangeError);
  });

  test('property: every planned /64 and router address lies inside the delegation, and ids map to distinct /64s', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 40, max: 64 }),
        fc.uniqueArray(fc.integer({ min: 0, max: 2 ** 24 }), { maxLength: 6 }),
        (len, ids) => {
          const plan = planPrefix(lease('2001:db8:abcd:ef00::', len), ids.map((id, i) => ({ ifname: `if${i}`, subPrefixId: id })));
          const room = 2 ** (64 - len);
          assert.equal(plan.lans.length, ids.filter((id) => id < room).length);
          assert.equal(plan.errors.length, ids.filter((id) => id >= room).length);
          const seen = new Set<string>();
          for (const a of plan.lans) {
            assert.ok(prefixContains(plan.delegated.prefix, len, a.routerAddress));
            assert.ok(prefixContains(a.prefix.prefix, 64, a.routerAddress));
            seen.add(formatPrefix(a.prefix));
          }
          assert.equal(seen.size, plan.lans.length);
        },
      ),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 300) },
    );
  });
});

describe('diffPlans', () => {
  const lans = [
    { ifname: 'lan', subPrefixId: 1 },
    { ifname: 'guest', subPrefixId: 2 },
  ];

  test('first prefix: everything is added', () => {
    const next = planPrefix(lease('2001:db8:100::', 56), lans);
    const d = diffPlans(undefined, next);
    assert.deepEqual(d.add, next.lans);
    assert.deepEqual([d.keep, d.deprecate, d.remove, d.removeRoutes], [[], [], [], []]);
    assert.deepEqual(d.addRoutes, ['2001:db8:100::/56']);
  });

  test('renewal of the same prefix keeps everything and touches no route', () => {
    const a = planPrefix(lease('2001:db8:100::', 56), lans);
    const b = planPrefix({ ...lease('2001:db8:100::', 56), validLifetime: 9999 }, lans);
    const d = diffPlans(a, b);
    assert.deepEqual(d.keep, b.lans);
    assert.deepEqual([d.add, d.deprecate, d.remove, d.addRoutes, d.removeRoutes], [[], [], [], [], []]);
  });

  test('a new prefix adds the new /64s, deprecates the old ones and swaps the unreachable route', () => {
    const a = planPrefix(lease('2001:db8:100::', 56), lans);
    const b = planPrefix(lease('2001:db8:101::', 56), lans);
    const d = diffPlans(a, b);
    assert.deepEqual(
      d.add.map((x) => x.routerAddress),
      ['2001:db8:101:1::1', '2001:db8:101:2::1'],
    );
    assert.deepEqual(
      d.deprecate.map((x) => x.routerAddress),
      ['2001:db8:100:1::1', '2001:db8:100:2::1'],
    );
    assert.deepEqual(d.remove, []);
    assert.deepEqual(d.addRoutes, ['2001:db8:101::/56']);
    assert.deepEqual(d.removeRoutes, ['2001:db8:100::/56']);
  });

  test('prefix gone: all deprecated, route removed', () => {
    const a = planPrefix(lease('2001:db8:100::', 56), lans);
    const d = diffPlans(a, undefined);
    assert.equal(d.deprecate.length, 2);
    assert.deepEqual(d.removeRoutes, ['2001:db8:100::/56']);
    assert.deepEqual([d.add, d.keep, d.addRoutes], [[], [], []]);
  });

  test('a /64 moving to another interface is removed at once, not deprecated', () => {
    const a = planPrefix(lease('2001:db8:100::', 56), lans);
    const b = planPrefix(lease('2001:db8:100::', 56), [
      { ifname: 'lan', subPrefixId: 2 },
      { ifname: 'guest', subPrefixId: 3 },
    ]);
    const d = diffPlans(a, b);
    assert.deepEqual(
      d.remove.map((x) => `${x.ifname} ${x.routerAddress}`),
      ['guest 2001:db8:100:2::1'],
    );
    assert.deepEqual(
      d.deprecate.map((x) => `${x.ifname} ${x.routerAddress}`),
      ['lan 2001:db8:100:1::1'],
    );
    assert.deepEqual(
      d.add.map((x) => `${x.ifname} ${x.routerAddress}`),
      ['lan 2001:db8:100:2::1', 'guest 2001:db8:100:3::1'],
    );
  });
});

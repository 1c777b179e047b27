import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { RaBackend } from '../../src/config/schema';
import { LanProvisioner, type LanProvisionerOptions, type LanRaSender, type LanServices } from '../../src/lan/provisioner';
import type { RaContent } from '../../src/lan/ra-core';
import type { AddressKey, AddressSpec, RouteKey, RouteSpec } from '../../src/platform/netlink';
import { seededRng } from '../../src/util/random';
import { FakeClock } from '../helpers/fake-clock';

/** Records every kernel call in order; `failOn` makes matching calls reject like netlink would. */
class FakeKernel {
  log: string[] = [];
  forwarding = false;
  failOn: ((call: string) => { code: string } | undefined) | undefined;

  private async record(call: string): Promise<void> {
    this.log.push(call);
    const err = this.failOn?.(call);
    if (err) throw Object.assign(new Error(`${call}: ${err.code}`), err);
  }

  netlink = {
    addAddress: (s: AddressSpec) =>
      this.record(`addr ${s.link} ${s.address}/${s.prefixLength} valid ${s.validLifetime} pref ${s.preferredLifetime}${s.replace ? ' replace' : ''}`),
    deleteAddress: (k: AddressKey) => this.record(`deladdr ${k.link} ${k.address}/${k.prefixLength}`),
    addRoute: (r: RouteSpec) => this.record(`route ${r.type} ${r.destination}${r.replace ? ' replace' : ''}`),
    deleteRoute: (r: RouteKey) => this.record(r.protocol === 2 ? `delroute kernel ${r.destination} dev ${String(r.link)}` : `delroute ${r.type} ${r.destination}`),
  };

  sysctl = {
    ipv6Forwarding: async () => this.forwarding,
    setIpv6Forwarding: async (on: boolean) => {
      this.log.push(`forwarding ${on ? 1 : 0}`);
      this.forwarding = on;
    },
  };
}

class FakeSender implements LanRaSender {
  updates: RaContent[] = [];
  stopped = false;
  constructor(
    readonly ifname: string,
    private readonly kernel: FakeKernel,
  ) {}
  update(c: RaContent): void {
    this.updates.push(c);
  }
  async stop(): Promise<void> {
    this.kernel.log.push(`ra-stop ${this.ifname}`);
    this.stopped = true;
  }
  close(): void {}
}

const services: LanServices = { dns: ['2001:db8::53'], domains: ['example.net'], mtu: 1452, defaultRoute: true };
const delegated = (prefix: string, preferredLifetime = 3600, validLifetime = 7200) => ({ prefix, length: 56, preferredLifetime, validLifetime });

function setup(backend: RaBackend = 'builtin', over: Partial<LanProvisionerOptions> = {}) {
  const kernel = new FakeKernel();
  const clock = new FakeClock();
  const senders = new Map<string, FakeSender>();
  const warnings: string[] = [];
  const prov = new LanProvisioner({
    lan: [
      { ifname: 'lan0', subPrefixId: 1 },
      { ifname: 'lan1', subPrefixId: 2 },
    ],
    backend,
    netlink: kernel.netlink,
    sysctl: kernel.sysctl,
    scheduler: clock,
    rng: seededRng(7),
    deprecationHoldS: 120,
    openRaSender: (ifname) => {
      const s = new FakeSender(ifname, kernel);
      senders.set(ifname, s);
      return s;
    },
    onWarning: (m) => void warnings.push(m),
    ...over,
  });
  return { kernel, clock, senders, warnings, prov };
}


describe('LanProvisioner', () => {
  test('first prefix: forwarding on, router addresses with the lease lifetimes, unreachable route, one RA sender per LAN', async () => {
    const { kernel, senders, prov } = setup();
    const r = await prov.apply(delegated('2001:db8:100::'), services);
    assert.deepEqual(r.errors, []);
    assert.deepEqual(kernel.log, [
      'forwarding 1',
      'addr lan0 2001:db8:100:1::1/64 valid 7200 pref 3600 replace',
      'addr lan1 2001:db8:100:2::1/64 valid 7200 pref 3600 replace',
      'route unreachable 2001:db8:100::/56 replace',
    ]);
    assert.deepEqual([...senders.keys()], ['lan0', 'lan1']);
    assert.deepEqual(senders.get('lan0')!.updates, [
      { ...services, prefixes: [{ prefix: '2001:db8:100:1::', length: 64, preferredLifetime: 3600, validLifetime: 7200 }] },
    ]);
    assert.deepEqual(prov.status(), [
      { ifname: 'lan0', prefix: '2001:db8:100:1::/64', address: '2001:db8:100:1::1' },
      { ifname: 'lan1', prefix: '2001:db8:100:2::/64', address: '2001:db8:100:2::1' },
    ]);
  });

  test('renewal refreshes the addresses with the new lifetimes (replace) and touches nothing else', async () => {
    const { kernel, clock, senders, prov } = setup();
    await prov.apply(delegated('2001:db8:100::'), services);
    kernel.log = [];
    clock.advance(1000_000);
    await prov.apply(delegated('2001:db8:100::', 3600, 7200));
    assert.deepEqual(kernel.log, [
      'addr lan0 2001:db8:100:1::1/64 valid 7200 pref 3600 replace',
      'addr lan1 2001:db8:100:2::1/64 valid 7200 pref 3600 replace',
    ]);
    assert.equal(senders.get('lan0')!.updates.at(-1)!.prefixes[0]!.validLifetime, 7200);
  });

  test('a new prefix: old addresses deprecated (preferred 0) and removed after the hold time, new ones added, route swapped', async () => {
    const { kernel, clock, senders, prov } = setup();
    await prov.apply(delegated('2001:db8:100::'), services);
    clock.advance(10_000);
    kernel.log = [];
    await prov.apply(delegated('2001:db8:101::'));
    assert.deepEqual(kernel.log, [
      'addr lan0 2001:db8:100:1::1/64 valid 120 pref 0 replace',
      'addr lan1 2001:db8:100:2::1/64 valid 120 pref 0 replace',
      'addr lan0 2001:db8:101:1::1/64 valid 7200 pref 3600 replace',
      'addr lan1 2001:db8:101:2::1/64 valid 7200 pref 3600 replace',
      'route unreachable 2001:db8:101::/56 replace',
      'delroute unreachable 2001:db8:100::/56',
    ]);
    // The RA core deprecates the old /64 itself once it disappears from the update.
    assert.deepEqual(
      senders.get('lan0')!.updates.at(-1)!.prefixes.map((p) => p.prefix),
      ['2001:db8:101:1::'],
    );
    kernel.log = [];
    clock.advance(119_000);
    await prov.whenIdle();
    assert.deepEqual(kernel.log, []);
    clock.advance(1_000);
    await prov.whenIdle();
    assert.deepEqual(kernel.log, ['deladdr lan0 2001:db8:100:1::1/64', 'delroute kernel 2001:db8:100:1::/64 dev lan0', 'deladdr lan1 2001:db8:100:2::1/64', 'delroute kernel 2001:db8:100:2::/64 dev lan1']);
  });

  test('a prefix that comes back during the hold is kept, and its removal timer cancelled', async () => {
    const { kernel, clock, prov } = setup();
    await prov.apply(delegated('2001:db8:100::'), services);
    await prov.apply(null);
    assert.equal(clock.size(), 2);
    await prov.apply(delegated('2001:db8:100::'));
    assert.equal(clock.size(), 0);
    kernel.log = [];
    clock.advance(200_000);
    await prov.whenIdle();
    assert.deepEqual(kernel.log, []);
  });

  test('clear(): final RAs first, then every address (held ones too), the route, and forwarding back off', async () => {
    const { kernel, clock, senders, prov } = setup();
    await prov.apply(delegated('2001:db8:100::'), services);
    await prov.apply(delegated('2001:db8:101::'));
    kernel.log = [];
    await prov.clear();
    assert.deepEqual(kernel.log, [
      'ra-stop lan0',
      'ra-stop lan1',
      'deladdr lan0 2001:db8:101:1::1/64', 'delroute kernel 2001:db8:101:1::/64 dev lan0',
      'deladdr lan1 2001:db8:101:2::1/64', 'delroute kernel 2001:db8:101:2::/64 dev lan1',
      'deladdr lan0 2001:db8:100:1::1/64', 'delroute kernel 2001:db8:100:1::/64 dev lan0',
      'deladdr lan1 2001:db8:100:2::1/64', 'delroute kernel 2001:db8:100:2::/64 dev lan1',
      'delroute unreachable 2001:db8:101::/56',
      'forwarding 0',
    ]);
    assert.ok([...senders.values()].every((s) => s.stopped));
    assert.equal(clock.size(), 0, 'hold timers cancelled');
    assert.deepEqual(prov.status(), []);
    kernel.log = [];
    await prov.clear();
    assert.deepEqual(kernel.log, [], 'a second clear has nothing left to remove');
  });

  test('forwarding that was already on is left on', async () => {
    const { kernel, prov } = setup();
    kernel.forwarding = true;
    await prov.apply(delegated('2001:db8:100::'), services);
    await prov.clear();
    assert.ok(!kernel.log.some((l) => l.startsWith('forwarding')));
    assert.equal(kernel.forwarding, true);
  });

  test('a failing interface is reported, the others are provisioned, and clear() only removes what was added', async () => {
    const { kernel, senders, prov } = setup();
    kernel.failOn = (c) => (c.startsWith('addr lan1') ? { code: 'ENODEV' } : undefined);
    const r = await prov.apply(delegated('2001:db8:100::'), services);
    assert.equal(r.errors.length, 1);
    assert.match(r.errors[0]!, /^lan1: address 2001:db8:100:2::1\/64: .*ENODEV/);
    assert.deepEqual([...senders.keys()], ['lan0']);
    kernel.log = [];
    kernel.failOn = undefined;
    await prov.clear();
    assert.deepEqual(kernel.log, ['ra-stop lan0', 'deladdr lan0 2001:db8:100:1::1/64', 'delroute kernel 2001:db8:100:1::/64 dev lan0', 'delroute unreachable 2001:db8:100::/56', 'forwarding 0']);
  });

  test('plan errors (id too large) come back in the result', async () => {
    const { prov } = setup('none', { lan: [{ ifname: 'lan0', subPrefixId: 300 }] });
    const r = await prov.apply(delegated('2001:db8:100::'), services);
    assert.match(r.errors[0]!, /lan0: sub-prefix id 300 does not fit/);
  });

  test('odhcpd and none: addresses and route only, no RA sender', async () => {
    for (const backend of ['odhcpd', 'none'] as const) {
      const { kernel, senders, prov } = setup(backend);
      await prov.apply(delegated('2001:db8:100::'), services);
      assert.equal(senders.size, 0);
      assert.equal(kernel.log.filter((l) => l.startsWith('addr')).length, 2);
    }
  });

  test('radvd: config for the LAN prefixes, deprecated ones marked, SIGHUP to the pid; withdrawal on clear', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sw-prov-radvd-'));
    try {
      const configPath = join(dir, 'radvd.conf');
      const pidFile = join(dir, 'radvd.pid');
      writeFileSync(pidFile, '31337\n');
      const hups: number[] = [];
      const { clock, prov } = setup('radvd', { radvd: { configPath, pidFile, kill: (pid) => void hups.push(pid) } });
      await prov.apply(delegated('2001:db8:100::'), services);
      let conf = readFileSync(configPath, 'utf8');
      assert.match(conf, /interface lan0 \{[^]*prefix 2001:db8:100:1::\/64 \{[^]*AdvPreferredLifetime 2700;/);
      assert.match(conf, /interface lan1 \{[^]*prefix 2001:db8:100:2::\/64/);
      assert.match(conf, /RDNSS 2001:db8::53 \{/);
      assert.deepEqual(hups, [31337]);
      await prov.apply(delegated('2001:db8:101::'));
      conf = readFileSync(configPath, 'utf8');
      assert.match(conf, /prefix 2001:db8:101:1::\/64 \{[^}]*AdvPreferredLifetime 2700;/);
      assert.match(conf, /prefix 2001:db8:100:1::\/64 \{[^}]*AdvValidLifetime 120;\n\t\tAdvPreferredLifetime 0;/);
      assert.equal(hups.length, 2);
      clock.advance(120_000);
      await prov.whenIdle();
      assert.doesNotMatch(readFileSync(configPath, 'utf8'), /2001:db8:100:/, 'dropped from radvd.conf once removed');
      await prov.clear();
      conf = readFileSync(configPath, 'utf8');
      assert.match(conf, /AdvDefaultLifetime 0;/);
      assert.match(conf, /prefix 2001:db8:101:1::\/64 \{[^}]*AdvPreferredLifetime 0;/);
      // apply, change, one reload per removed /64, clear.
      assert.equal(hups.length, 5);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('radvd backend without paths is a configuration error', () => {
    assert.throws(() => setup('radvd'), /radvd\.configPath/);
  });
});

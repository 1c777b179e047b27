import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, test, type TestContext } from 'node:test';
import fc from 'fast-check';
import { formatIp, INFINITY_LIFETIME, parseIp, parsePrefix, RTPROT_SOFTWIRE } from '../../src/platform/netlink';
import { Netns, waitFor } from '../helpers/netns';

/**
 * The Netlink class runs inside a fresh network namespace (a fixture process
 * started with `ip netns exec`), and every test checks what the kernel did
 * with `ip -j -n NS ...`, not just that no exception was thrown.
 */

const ROOT = resolve(__dirname, '../..');
const RUN = 'test/integration/fixtures/netlink-run.ts';
const EVENTS = 'test/integration/fixtures/netlink-events.ts';

interface StepResult {
  op: string;
  ok: boolean;
  result?: unknown;
  error?: { name: string; message: string; errno?: number; code?: string };
}

/**
 * Runs Netlink calls in the namespace. The timeout doubles as the check that
 * the fixture exits by itself after close(): a leaked handle would hang it.
 */
function runSteps(ns: Netns, steps: { op: string; args?: unknown[] }[]): StepResult[] {
  const out = execFileSync('ip', ['netns', 'exec', ns.name, process.execPath, '--import', 'tsx', RUN, JSON.stringify(steps)], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 20_000,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const results = out
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as StepResult);
  assert.equal(results.length, steps.length, `fixture output: ${out}`);
  return results;
}

function ok<T = unknown>(r: StepResult): T {
  assert.ok(r.ok, `${r.op} failed: ${r.error?.message}`);
  return r.result as T;
}

function failed(r: StepResult, code: string, message?: string): void {
  assert.equal(r.ok, false, `${r.op} should have failed`);
  assert.equal(r.error?.name, 'NetlinkError');
  assert.equal(r.error?.code, code, r.error?.message);
  if (message !== undefined) assert.equal(r.error?.message, message);
}

/** A namespace with a veth pair va/vb (both ends inside), removed after the test. */
function setup(t: TestContext): Netns {
  const ns = Netns.create('nl');
  t.after(() => ns.destroy());
  ns.ip(['link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'vb']);
  return ns;
}

interface IpLink {
  ifindex: number;
  ifname: string;
  mtu: number;
  flags: string[];
}
interface IpAddr {
  family: string;
  local: string;
  prefixlen: number;
  valid_life_time: number;
  preferred_life_time: number;
  nodad?: boolean;
  tentative?: boolean;
  deprecated?: boolean;
}
interface IpRoute {
  type?: string;
  dst: string;
  gateway?: string;
  dev?: string;
  protocol?: string;
  metric?: number;
  table?: string;
}

function addrsOf(ns: Netns, dev: string): IpAddr[] {
  return ns.ipJson<{ addr_info: IpAddr[] }[]>(['addr', 'show', 'dev', dev])[0]!.addr_info;
}

describe('netlink: links', () => {
  test('sets MTU and up/down, and reports the link as ip does', (t) => {
    const ns = setup(t);
    const before = ns.ipJson<IpLink[]>(['link', 'show', 'va'])[0]!;
    const r = runSteps(ns, [
      { op: 'setMtu', args: ['va', 1400] },
      { op: 'setLinkUp', args: ['va', true] },
      { op: 'getLink', args: ['va'] },
      { op: 'linkIndex', args: ['va'] },
    ]);
    ok(r[0]!);
    ok(r[1]!);
    const link = ns.ipJson<IpLink[]>(['link', 'show', 'va'])[0]!;
    assert.equal(link.mtu, 1400);
    assert.ok(link.flags.includes('UP'), `flags ${link.flags}`);
    assert.deepEqual(
      { ...ok<Record<string, unknown>>(r[2]!), flags: undefined, running: undefined },
      { index: before.ifindex, name: 'va', mtu: 1400, up: true, flags: undefined, running: undefined },
    );
    assert.equal(ok(r[3]!), before.ifindex);

    const down = runSteps(ns, [
      { op: 'setLinkUp', args: [before.ifindex, false] },
      { op: 'setMtu', args: ['va', 70000] },
      { op: 'setMtu', args: ['nope0', 1400] },
      { op: 'linkIndex', args: ['nope0'] },
    ]);
    ok(down[0]!);
    const after = ns.ipJson<IpLink[]>(['link', 'show', 'va'])[0]!;
    assert.ok(!after.flags.includes('UP'), `flags ${after.flags}`);
    // veth refuses an MTU above 65535; the old value must stay.
    failed(down[1]!, 'EINVAL', 'set mtu va 70000: EINVAL');
    assert.equal(after.mtu, 1400);
    failed(down[2]!, 'ENODEV', 'set mtu nope0 1400: ENODEV');
    failed(down[3]!, 'ENODEV', 'find link nope0: ENODEV');
  });

  test('listLinks returns what ip link shows', (t) => {
    const ns = setup(t);
    ns.ip(['link', 'set', 'vb', 'mtu', '1280', 'up']);
    const [r] = runSteps(ns, [{ op: 'listLinks' }]);
    const ours = ok<{ index: number; name: string; mtu: number; up: boolean }[]>(r!)
      .map((l) => ({ index: l.index, name: l.name, mtu: l.mtu, up: l.up }))
      .sort((a, b) => a.index - b.index);
    const theirs = ns
      .ipJson<IpLink[]>(['link', 'show'])
      .map((l) => ({ index: l.ifindex, name: l.ifname, mtu: l.mtu, up: l.flags.includes('UP') }))
      .sort((a, b) => a.index - b.index);
    assert.deepEqual(ours, theirs);
    assert.equal(ours.length, 3); // lo, va, vb
  });
});

describe('netlink: addresses', () => {
  test('IPv6 address with lifetimes, refreshed by replace', (t) => {
    const ns = setup(t);
    const spec = { link: 'va', address: '2001:db8::1', prefixLength: 64, nodad: true };
    const r = runSteps(ns, [{ op: 'addAddress', args: [{ ...spec, validLifetime: 300, preferredLifetime: 200 }] }]);
    ok(r[0]!);
    let [a] = addrsOf(ns, 'va').filter((x) => x.local === '2001:db8::1');
    assert.ok(a, 'address not in kernel');
    assert.equal(a.prefixlen, 64);
    assert.equal(a.nodad, true);
    assert.ok(a.valid_life_time <= 300 && a.valid_life_time >= 290, `valid ${a.valid_life_time}`);
    assert.ok(a.preferred_life_time <= 200 && a.preferred_life_time >= 190, `preferred ${a.preferred_life_time}`);

    const again = runSteps(ns, [
      { op: 'addAddress', args: [{ ...spec, replace: true, validLifetime: 7200, preferredLifetime: 3600 }] },
      { op: 'addAddress', args: [{ ...spec, validLifetime: 300, preferredLifetime: 200 }] },
      { op: 'listAddresses', args: [{ family: 6, link: 'va' }] },
      { op: 'addAddress', args: [{ ...spec, replace: true, validLifetime: 100, preferredLifetime: 200 }] },
    ]);
    ok(again[0]!);
    const matching = addrsOf(ns, 'va').filter((x) => x.local === '2001:db8::1');
    assert.equal(matching.length, 1, 'replace must update, not duplicate');
    a = matching[0]!;
    assert.ok(a.valid_life_time > 7000 && a.valid_life_time <= 7200, `valid ${a.valid_life_time}`);
    assert.ok(a.preferred_life_time > 3500 && a.preferred_life_time <= 3600, `preferred ${a.preferred_life_time}`);
    failed(again[1]!, 'EEXIST', 'add address 2001:db8::1/64 dev va: EEXIST');
    const listed = ok<{ address: string; validLifetime: number; preferredLifetime: number; flags: string[] }[]>(again[2]!);
    const mine = listed.find((x) => x.address === '2001:db8::1');
    assert.ok(mine && mine.validLifetime > 7000 && mine.preferredLifetime > 3500 && mine.flags.includes('nodad'));
    // Rejected before the kernel sees it: preferred may not exceed valid.
    assert.equal(again[3]!.ok, false);
    assert.match(again[3]!.error!.message, /^replace address 2001:db8::1\/64 dev va: .*preferred/);

    // Back to forever.
    ok(
      runSteps(ns, [
        {
          op: 'addAddress',
          args: [{ ...spec, replace: true, validLifetime: INFINITY_LIFETIME, preferredLifetime: INFINITY_LIFETIME }],
        },
      ])[0]!,
    );
    a = addrsOf(ns, 'va').find((x) => x.local === '2001:db8::1')!;
    assert.equal(a.valid_life_time, INFINITY_LIFETIME);
    assert.equal(a.preferred_life_time, INFINITY_LIFETIME);
  });

  test('tentative and deprecated flags are reported as ip reports them', (t) => {
    const ns = setup(t);
    ns.ip(['link', 'set', 'vb', 'up']);
    ns.ip(['link', 'set', 'va', 'up']);
    const r = runSteps(ns, [
      // DAD on (no nodad) on a link with carrier: tentative for about a second.
      { op: 'addAddress', args: [{ link: 'va', address: '2001:db8::7', prefixLength: 64 }] },
      {
        op: 'addAddress',
        args: [{ link: 'va', address: '2001:db8::8', prefixLength: 64, nodad: true, validLifetime: 600, preferredLifetime: 0 }],
      },
      { op: 'listAddresses', args: [{ link: 'va' }] },
    ]);
    ok(r[0]!);
    ok(r[1]!);
    const listed = ok<{ address: string; tentative: boolean; deprecated: boolean }[]>(r[2]!);
    const seven = listed.find((x) => x.address === '2001:db8::7')!;
    const eight = listed.find((x) => x.address === '2001:db8::8')!;
    assert.equal(eight.deprecated, true);
    assert.equal(eight.tentative, false);
    assert.equal(addrsOf(ns, 'va').find((x) => x.local === '2001:db8::8')?.deprecated, true);
    assert.equal(seven.deprecated, false);
    // ip may run after DAD finished; the listing ran right after the add.
    assert.equal(seven.tentative, true);
  });

  test('IPv4 address add and delete', (t) => {
    const ns = setup(t);
    const key = { link: 'va', address: '192.0.2.1', prefixLength: 24 };
    const r = runSteps(ns, [
      { op: 'addAddress', args: [key] },
      { op: 'listAddresses', args: [{ family: 4 }] },
    ]);
    ok(r[0]!);
    const a = addrsOf(ns, 'va').find((x) => x.family === 'inet');
    assert.deepEqual([a?.local, a?.prefixlen], ['192.0.2.1', 24]);
    const listed = ok<{ family: number; address: string; prefixLength: number; ifindex: number }[]>(r[1]!);
    const vaIndex = ns.ipJson<IpLink[]>(['link', 'show', 'va'])[0]!.ifindex;
    // The family filter leaves out lo's ::1 but keeps its 127.0.0.1.
    assert.deepEqual(listed.map((x) => [x.family, x.address, x.prefixLength, x.ifindex]).sort(), [
      [4, '127.0.0.1', 8, 1],
      [4, '192.0.2.1', 24, vaIndex],
    ]);

    const d = runSteps(ns, [
      { op: 'deleteAddress', args: [key] },
      { op: 'deleteAddress', args: [key] },
      { op: 'addAddress', args: [{ ...key, link: 'nope0' }] },
      { op: 'addAddress', args: [{ ...key, address: '192.0.2.300' }] },
    ]);
    ok(d[0]!);
    assert.equal(addrsOf(ns, 'va').filter((x) => x.family === 'inet').length, 0);
    failed(d[1]!, 'EADDRNOTAVAIL', 'delete address 192.0.2.1/24 dev va: EADDRNOTAVAIL');
    failed(d[2]!, 'ENODEV', 'add address 192.0.2.1/24 dev nope0: ENODEV');
    assert.equal(d[3]!.ok, false);
    assert.match(d[3]!.error!.message, /invalid IP address "192\.0\.2\.300"/);
  });
});

describe('netlink: routes', () => {
  test('default, unreachable and other-table routes land in the kernel as asked', (t) => {
    const ns = setup(t);
    ns.ip(['link', 'set', 'vb', 'up']);
    ns.ip(['link', 'set', 'va', 'up']);
    ns.ip(['addr', 'add', '192.0.2.1/24', 'dev', 'va']);
    const r = runSteps(ns, [
      { op: 'addRoute', args: [{ destination: '::/0', gateway: 'fe80::1', link: 'va', metric: 100 }] },
      { op: 'addRoute', args: [{ destination: '0.0.0.0/0', gateway: '192.0.2.254', metric: 50 }] },
      { op: 'addRoute', args: [{ destination: '2001:db8:1::/48', type: 'unreachable' }] },
      { op: 'addRoute', args: [{ destination: '2001:db8:2::/48', link: 'va', table: 100, metric: 7 }] },
      { op: 'addRoute', args: [{ destination: '198.51.100.0/24', link: 'va', table: 1000 }] },
      { op: 'addRoute', args: [{ destination: '2001:db8:1::/48', type: 'unreachable' }] },
      { op: 'addRoute', args: [{ destination: '2001:db8:3::/48', link: 'nope0' }] },
      { op: 'addRoute', args: [{ destination: '2001:db8:3::1/48', link: 'va' }] },
      { op: 'addRoute', args: [{ destination: '2001:db8:3::/48', gateway: '192.0.2.254' }] },
      { op: 'addRoute', args: [{ destination: '2001:db8:3::/48' }] },
    ]);
    for (const i of [0, 1, 2, 3, 4]) ok(r[i]!);
    const proto = String(RTPROT_SOFTWIRE);

    const [d6] = ns.ipJson<IpRoute[]>(['-6', 'route', 'show', 'default']);
    assert.deepEqual([d6?.gateway, d6?.dev, d6?.metric, d6?.protocol], ['fe80::1', 'va', 100, proto]);
    const [d4] = ns.ipJson<IpRoute[]>(['-4', 'route', 'show', 'default']);
    assert.deepEqual([d4?.gateway, d4?.dev, d4?.metric, d4?.protocol], ['192.0.2.254', 'va', 50, proto]);
    const [u] = ns.ipJson<IpRoute[]>(['-6', 'route', 'show', '2001:db8:1::/48']);
    assert.deepEqual([u?.type, u?.dst, u?.protocol], ['unreachable', '2001:db8:1::/48', proto]);
    const [t100] = ns.ipJson<IpRoute[]>(['-6', 'route', 'show', 'table', '100']);
    assert.deepEqual([t100?.dst, t100?.dev, t100?.metric, t100?.protocol], ['2001:db8:2::/48', 'va', 7, proto]);
    assert.equal(ns.ipJson<IpRoute[]>(['-6', 'route', 'show', '2001:db8:2::/48']).length, 0, 'table 100 route leaked into main');
    const [t1000] = ns.ipJson<IpRoute[]>(['-4', 'route', 'show', 'table', '1000']);
    assert.deepEqual([t1000?.dst, t1000?.dev], ['198.51.100.0/24', 'va']);

    failed(r[5]!, 'EEXIST', 'add route 2001:db8:1::/48 unreachable: EEXIST');
    failed(r[6]!, 'ENODEV', 'add route 2001:db8:3::/48 dev nope0: ENODEV');
    for (const [i, why] of [
      [7, /host bits set/],
      [8, /gateway 192\.0\.2\.254 is not IPv6/],
      [9, /needs a device or a gateway/],
    ] as const) {
      assert.equal(r[i]!.ok, false);
      assert.match(r[i]!.error!.message, why);
    }
    assert.equal(ns.ipJson<IpRoute[]>(['-6', 'route', 'show', '2001:db8:3::/48']).length, 0);
  });

  test('replace, delete, and ownership by protocol', (t) => {
    const ns = setup(t);
    ns.ip(['link', 'set', 'vb', 'up']);
    ns.ip(['link', 'set', 'va', 'up']);
    // A route someone else owns (protocol boot).
    ns.ip(['-6', 'route', 'add', '2001:db8:9::/48', 'dev', 'va']);
    const r = runSteps(ns, [
      { op: 'addRoute', args: [{ destination: '::/0', gateway: 'fe80::1', link: 'va', metric: 100 }] },
      { op: 'addRoute', args: [{ destination: '::/0', gateway: 'fe80::2', link: 'va', metric: 100, replace: true }] },
      { op: 'addRoute', args: [{ destination: '2001:db8:1::/48', type: 'unreachable' }] },
      { op: 'deleteRoute', args: [{ destination: '2001:db8:1::/48', type: 'unreachable' }] },
      { op: 'deleteRoute', args: [{ destination: '2001:db8:1::/48', type: 'unreachable' }] },
      { op: 'deleteRoute', args: [{ destination: '2001:db8:9::/48', link: 'va' }] },
    ]);
    for (const i of [0, 1, 2, 3]) ok(r[i]!);
    const defaults = ns.ipJson<IpRoute[]>(['-6', 'route', 'show', 'default']);
    assert.deepEqual(
      defaults.map((d) => [d.gateway, d.metric]),
      [['fe80::2', 100]],
    );
    assert.equal(ns.ipJson<IpRoute[]>(['-6', 'route', 'show', '2001:db8:1::/48']).length, 0, 'unreachable route not deleted');
    failed(r[4]!, 'ESRCH', 'delete route 2001:db8:1::/48 unreachable: ESRCH');
    // Our default protocol does not match another owner's route...
    failed(r[5]!, 'ESRCH');
    assert.equal(ns.ipJson<IpRoute[]>(['-6', 'route', 'show', '2001:db8:9::/48']).length, 1);
    // ...protocol 0 matches any, and the default route goes by metric.
    const d = runSteps(ns, [
      { op: 'deleteRoute', args: [{ destination: '2001:db8:9::/48', link: 'va', protocol: 0 }] },
      { op: 'deleteRoute', args: [{ destination: '::/0', metric: 99 }] },
      { op: 'deleteRoute', args: [{ destination: '::/0', metric: 100 }] },
    ]);
    ok(d[0]!);
    assert.equal(ns.ipJson<IpRoute[]>(['-6', 'route', 'show', '2001:db8:9::/48']).length, 0);
    failed(d[1]!, 'ESRCH');
    ok(d[2]!);
    assert.equal(ns.ipJson<IpRoute[]>(['-6', 'route', 'show', 'default']).length, 0);
  });

  test('listRoutes returns what ip route shows, and filters by protocol and table', (t) => {
    const ns = setup(t);
    ns.ip(['link', 'set', 'vb', 'up']);
    ns.ip(['link', 'set', 'va', 'up']);
    ns.ip(['addr', 'add', '192.0.2.1/24', 'dev', 'va']);
    ns.ip(['addr', 'add', '2001:db8::1/64', 'dev', 'va', 'nodad']);
    ns.ip(['-6', 'route', 'add', '2001:db8:9::/48', 'via', 'fe80::9', 'dev', 'va', 'metric', '5']);
    ns.ip(['-4', 'route', 'add', '203.0.113.0/24', 'via', '192.0.2.9']);
    const r = runSteps(ns, [
      { op: 'addRoute', args: [{ destination: '2001:db8:1::/48', type: 'unreachable', metric: 3 }] },
      { op: 'addRoute', args: [{ destination: '10.99.0.0/16', link: 'va', table: 100 }] },
      { op: 'listRoutes', args: [{ table: 254 }] },
      { op: 'listRoutes', args: [{ protocol: RTPROT_SOFTWIRE }] },
      { op: 'listRoutes', args: [{ table: 100, family: 4 }] },
    ]);
    ok(r[0]!);
    ok(r[1]!);
    const index = new Map(ns.ipJson<IpLink[]>(['link', 'show']).map((l) => [l.ifname, l.ifindex]));
    type Ours = {
      family: number;
      destination: string;
      type: string;
      metric: number;
      ifindex?: number;
      gateway?: string;
      protocol: number;
    };
    const key = (x: { dst: string; type: string; metric: number; ifindex?: number; gateway?: string }) =>
      `${x.type} ${x.dst} via=${x.gateway ?? '-'} if=${x.ifindex ?? '-'} metric=${x.metric}`;
    const ours = ok<Ours[]>(r[2]!)
      .map((x) => key({ ...x, dst: x.destination }))
      .sort();
    const theirs = [4, 6]
      .flatMap((fam) =>
        ns.ipJson<IpRoute[]>([`-${fam}`, 'route', 'show', 'table', 'main']).map((x) => {
          const dst =
            x.dst === 'default'
              ? fam === 4
                ? '0.0.0.0/0'
                : '::/0'
              : x.dst.includes('/')
                ? x.dst
                : `${x.dst}/${fam === 4 ? 32 : 128}`;
          return key({
            type: x.type ?? 'unicast',
            dst,
            metric: x.metric ?? 0,
            ifindex: x.dev ? index.get(x.dev) : undefined,
            gateway: x.gateway,
          });
        }),
      )
      .sort();
    assert.deepEqual(ours, theirs);
    assert.ok(ours.some((k) => k.includes('2001:db8:9::/48 via=fe80::9')));

    const owned = ok<Ours[]>(r[3]!)
      .map((x) => x.destination)
      .sort();
    assert.deepEqual(owned, ['10.99.0.0/16', '2001:db8:1::/48']);
    assert.deepEqual(
      ok<Ours[]>(r[4]!).map((x) => [x.destination, x.ifindex]),
      [['10.99.0.0/16', index.get('va')]],
    );
  });
});

describe('netlink: events', () => {
  test('delivers address and link changes, then exits on its own after close()', async (t) => {
    const ns = setup(t);
    const p = ns.spawn(process.execPath, ['--import', 'tsx', EVENTS, 'va', '1280'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const lines: Record<string, unknown>[] = [];
    let stderr = '';
    p.stderr!.on('data', (b: Buffer) => {
      stderr += b.toString();
    });
    createInterface({ input: p.stdout! }).on('line', (l) => lines.push(JSON.parse(l) as Record<string, unknown>));
    const exited = new Promise<number | null>((res) => p.on('exit', (code) => res(code)));
    const seen = (pred: (l: Record<string, unknown>) => boolean, what: string) =>
      waitFor(`${what} (stderr: ${stderr})`, 10_000, () => lines.find(pred));
    const addrEvent = (kind: string, address: string) => (l: Record<string, unknown>) =>
      l.kind === kind && (l.address as { address?: string } | undefined)?.address === address;

    await seen((l) => l.ready === true, 'fixture ready');
    ns.ip(['addr', 'add', '2001:db8::5/64', 'dev', 'va', 'nodad', 'valid_lft', '600', 'preferred_lft', '300']);
    const added = (await seen(addrEvent('address-added', '2001:db8::5'), 'IPv6 address-added')) as {
      address: { prefixLength: number; validLifetime: number; preferredLifetime: number; ifindex: number };
    };
    const vaIndex = ns.ipJson<IpLink[]>(['link', 'show', 'va'])[0]!.ifindex;
    assert.equal(added.address.prefixLength, 64);
    assert.equal(added.address.ifindex, vaIndex);
    assert.ok(added.address.validLifetime <= 600 && added.address.validLifetime > 590);
    assert.ok(added.address.preferredLifetime <= 300 && added.address.preferredLifetime > 290);

    ns.ip(['addr', 'add', '192.0.2.7/24', 'dev', 'va']);
    await seen(addrEvent('address-added', '192.0.2.7'), 'IPv4 address-added');
    ns.ip(['addr', 'del', '2001:db8::5/64', 'dev', 'va']);
    await seen(addrEvent('address-removed', '2001:db8::5'), 'address-removed');
    ns.ip(['link', 'set', 'va', 'up']);
    await seen((l) => l.kind === 'link-changed' && (l.link as { name: string; up: boolean }).up === true, 'link-changed up');

    // Still alive while subscribed, even with nothing else to do.
    assert.equal(p.exitCode, null);
    ns.ip(['link', 'set', 'va', 'mtu', '1280']);
    await seen((l) => l.closed === true, 'fixture closed');
    const code = await Promise.race([exited, new Promise<'hung'>((res) => setTimeout(() => res('hung'), 5000).unref())]);
    assert.equal(code, 0, `fixture did not exit after close() (stderr: ${stderr})`);
  });
});

describe('netlink: address text', () => {
  test('formats IPv6 canonically (RFC 5952, as WHATWG URL does) and round-trips', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        fc.array(fc.integer({ min: 0, max: 7 }), { maxLength: 8 }),
        (raw, zeroGroups) => {
          const bytes = Buffer.from(raw);
          // Zero runs are what compression is about; make them common.
          for (const g of zeroGroups) bytes.writeUInt16BE(0, g * 2);
          const text = formatIp(bytes);
          assert.deepEqual(parseIp(text).bytes, bytes);
          const mapped = bytes.subarray(0, 10).every((b) => b === 0) && bytes.readUInt16BE(10) === 0xffff;
          if (!mapped) assert.equal(text, new URL(`http://[${text}]/`).hostname.slice(1, -1));
        },
      ),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 500) },
    );
  });

  test('IPv4 and special forms', () => {
    assert.equal(formatIp(parseIp('192.0.2.1').bytes), '192.0.2.1');
    assert.equal(formatIp(parseIp('::ffff:192.0.2.1').bytes), '::ffff:192.0.2.1');
    assert.equal(formatIp(parseIp('2001:DB8:0:0:1:0:0:1').bytes), '2001:db8::1:0:0:1');
    assert.equal(formatIp(parseIp('::').bytes), '::');
    assert.equal(formatIp(parseIp('1::').bytes), '1::');
    assert.throws(() => parseIp('fe80::1%eth0'), /invalid IP address/);
    assert.throws(() => parseIp('1.2.3'), /invalid IP address/);
    assert.deepEqual(parsePrefix('::/0'), { family: 6, bytes: Buffer.alloc(16), length: 0 });
    assert.equal(parsePrefix('2001:db8::/32').length, 32);
    assert.throws(() => parsePrefix('2001:db8::/129'), /length must be 0\.\.128/);
    assert.throws(() => parsePrefix('10.0.0.1/8'), /host bits set/);
    assert.throws(() => parsePrefix('10.0.0.0'), /missing \/length/);
    assert.throws(() => parsePrefix('10.0.0.0/+8'), /length/);
  });
});

describe('netlink: concurrency', () => {
  test('many calls in flight at once on one socket all complete correctly', (t) => {
    const ns = setup(t);
    const n = 16;
    const batch = Array.from({ length: n }, (_, i) => [
      { op: 'addAddress', args: [{ link: 'va', address: `2001:db8::${i + 1}`, prefixLength: 64, nodad: true }] },
      { op: 'listRoutes', args: [{}] },
      { op: 'listAddresses', args: [{}] },
      { op: 'listLinks' },
    ]).flat();
    const [r] = runSteps(ns, [{ op: 'parallel', args: batch }]);
    const results = ok<StepResult[]>(r!);
    assert.equal(results.length, batch.length);
    for (const x of results) ok(x);
    const have = addrsOf(ns, 'va')
      .filter((a) => a.local.startsWith('2001:db8::'))
      .map((a) => a.local)
      .sort();
    assert.deepEqual(have, Array.from({ length: n }, (_, i) => `2001:db8::${i + 1}`).sort());
    // Every listing is a complete dump, not a fragment cut by another reply.
    for (const x of results.filter((x) => x.op === 'listLinks')) assert.equal((x.result as unknown[]).length, 3);
  });
});

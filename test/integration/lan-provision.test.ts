import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { describe, test } from 'node:test';
import { prefixContains } from '../../src/ipv6/address';
import { link, Topology, waitFor } from '../helpers/netns';
import { ROOT, tsFixture } from './fixtures/ns-child';

/**
 * A "router" namespace runs the LanProvisioner (built-in RAs) on one end of a
 * veth pair; a "host" namespace on the other end is an ordinary Linux host
 * (accept_ra=2, autoconf=1, forwarding=0) whose kernel does SLAAC from our RAs.
 * Everything asserted is what the kernels show with `ip -j`.
 */

interface AddrInfo {
  family: string;
  local: string;
  prefixlen: number;
  scope: string;
  tentative?: boolean;
  deprecated?: boolean;
  preferred_life_time?: number;
  valid_life_time?: number;
}
interface IpAddr {
  ifname: string;
  addr_info: AddrInfo[];
}
interface IpRoute {
  dst: string;
  type?: string;
  gateway?: string;
  dev?: string;
  protocol?: string;
}

const SUB_ID = 5;

/** The router fixture with a stdin command channel and JSON-line replies. */
function startRouter(ns: { spawn: (cmd: string, args: string[], o: object) => ChildProcess }, ifname: string) {
  const p = ns.spawn(process.execPath, [...tsFixture('lan-router.ts'), ifname, String(SUB_ID)], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const lines: Record<string, unknown>[] = [];
  const waiters: { pred: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }[] = [];
  let partial = '';
  let stderr = '';
  p.stderr!.setEncoding('utf8').on('data', (c: string) => {
    stderr += c;
  });
  p.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop()!;
    for (const text of parts.filter(Boolean)) {
      const l = JSON.parse(text) as Record<string, unknown>;
      lines.push(l);
      for (const w of waiters.filter((w) => w.pred(l))) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(l);
      }
    }
  });
  const exited = new Promise<number | null>((res) => p.on('close', (code) => res(code)));
  const request = async <T>(cmd: object, replyKey: string, ms = 10_000): Promise<T> => {
    const reply = new Promise<Record<string, unknown>>((resolve, reject) => {
      waiters.push({ pred: (l) => replyKey in l, resolve });
      setTimeout(() => reject(new Error(`no ${replyKey} within ${ms} ms; stderr: ${stderr}`)), ms).unref();
      void exited.then((code) => reject(new Error(`router fixture exited (${code}); stderr: ${stderr}`)));
    });
    p.stdin!.write(`${JSON.stringify(cmd)}\n`);
    return (await reply)[replyKey] as T;
  };
  return {
    request,
    warnings: () => lines.filter((l) => 'warning' in l).map((l) => l.warning),
    end: async () => {
      p.stdin!.end();
      return exited;
    },
  };
}

const services = { dns: ['2001:db8::53'], domains: ['example.net'], mtu: 1400, defaultRoute: true };
const lease = (prefix: string) => ({ prefix, length: 56, preferredLifetime: 3600, validLifetime: 7200 });

describe('LAN provisioning with the built-in RA sender', { timeout: 90_000 }, () => {
  test('a LAN host autoconfigures from the delegated prefix, follows a renumbering, and loses its default route on clear', async (t) => {
    const topo = new Topology();
    t.after(() => topo.destroy());
    const router = topo.ns('lanrtr');
    const host = topo.ns('lanhost');
    // No DAD on either side: link-locals (the RA source) and SLAAC addresses are usable at once.
    for (const ns of [router, host]) ns.sysctl('net.ipv6.conf.default.accept_dad', '0');
    host.sysctl('net.ipv6.conf.default.accept_ra', '2');
    host.sysctl('net.ipv6.conf.default.autoconf', '1');
    host.sysctl('net.ipv6.conf.default.forwarding', '0');
    host.sysctl('net.ipv6.conf.all.forwarding', '0');
    const { a: routerIf, b: hostIf } = link(router, undefined, host, undefined);

    const linkLocal = (ns: typeof router, dev: string) =>
      ns.ipJson<IpAddr[]>(['addr', 'show', 'dev', dev])[0]?.addr_info.find((a) => a.family === 'inet6' && a.scope === 'link' && !a.tentative)
        ?.local;
    const routerLl = await waitFor('router link-local', 5_000, () => linkLocal(router, routerIf));
    const hostAddrs = () => host.ipJson<IpAddr[]>(['addr', 'show', 'dev', hostIf])[0]!.addr_info.filter((a) => a.family === 'inet6');
    const globalIn = (p: string) => hostAddrs().find((a) => a.scope === 'global' && prefixContains(p, 64, a.local));
    const hostDefault = () => host.ipJson<IpRoute[]>(['-6', 'route', 'show', 'default']).find((r) => r.dev === hostIf);

    const rtr = startRouter(router, routerIf);
    t.after(() => void rtr.end());

    // 1. First delegation.
    const first = await rtr.request<{ errors: string[]; lans: unknown[] }>({ op: 'apply', delegated: lease('2001:db8:100::'), services }, 'applied');
    assert.deepEqual(first.errors, []);
    assert.deepEqual(first.lans, [{ ifname: routerIf, prefix: '2001:db8:100:5::/64', address: '2001:db8:100:5::1' }]);

    const slaac1 = (await waitFor('host SLAAC address in 2001:db8:100:5::/64', 20_000, () => globalIn('2001:db8:100:5::')))!;
    assert.equal(slaac1.prefixlen, 64);
    assert.ok(slaac1.preferred_life_time! > 0 && slaac1.preferred_life_time! <= 2700, `preferred ${slaac1.preferred_life_time}`);
    assert.ok(slaac1.valid_life_time! <= 5400, `valid ${slaac1.valid_life_time}`);
    const def = (await waitFor('host default route', 10_000, hostDefault))!;
    assert.equal(def.gateway, routerLl);
    // The MTU option reached the host's IPv6 stack.
    assert.equal(host.exec('sysctl', ['-n', `net.ipv6.conf.${hostIf}.mtu`]).trim(), '1400');

    const routerAddr = () =>
      router.ipJson<IpAddr[]>(['addr', 'show', 'dev', routerIf])[0]!.addr_info.filter((a) => a.family === 'inet6' && a.scope === 'global');
    const unreachable = () => router.ipJson<IpRoute[]>(['-6', 'route', 'show', 'type', 'unreachable']).map((r) => r.dst);
    assert.deepEqual(
      routerAddr().map((a) => `${a.local}/${a.prefixlen}`),
      ['2001:db8:100:5::1/64'],
    );
    assert.ok(routerAddr()[0]!.valid_life_time! <= 7200 && routerAddr()[0]!.valid_life_time! > 7000);
    assert.deepEqual(unreachable(), ['2001:db8:100::/56']);
    assert.equal(router.exec('sysctl', ['-n', 'net.ipv6.conf.all.forwarding']).trim(), '1');

    // 2. Renumbering: the new /64 appears on the host, the old address is deprecated there.
    const second = await rtr.request<{ errors: string[] }>({ op: 'apply', delegated: lease('2001:db8:101::') }, 'applied');
    assert.deepEqual(second.errors, []);
    await waitFor('host SLAAC address in 2001:db8:101:5::/64', 20_000, () => globalIn('2001:db8:101:5::'));
    const old = (await waitFor('old host address deprecated', 20_000, () => {
      const a = globalIn('2001:db8:100:5::');
      return a && a.preferred_life_time === 0 ? a : undefined;
    }))!;
    assert.equal(old.deprecated, true);
    assert.ok(old.valid_life_time! > 0, 'deprecated, not yet removed');
    const fresh = globalIn('2001:db8:101:5::')!;
    assert.ok(fresh.preferred_life_time! > 0);
    const rAddrs = routerAddr();
    assert.deepEqual(rAddrs.map((a) => a.local).sort(), ['2001:db8:100:5::1', '2001:db8:101:5::1']);
    assert.equal(rAddrs.find((a) => a.local === '2001:db8:100:5::1')!.preferred_life_time, 0);
    assert.deepEqual(unreachable(), ['2001:db8:101::/56']);

    // 3. clear(): final RA (router lifetime 0) removes the host's default route; router state is gone.
    await rtr.request({ op: 'clear' }, 'cleared');
    assert.deepEqual(routerAddr(), []);
    assert.deepEqual(unreachable(), []);
    assert.equal(router.exec('sysctl', ['-n', 'net.ipv6.conf.all.forwarding']).trim(), '0');
    await waitFor('host default route gone', 10_000, () => !hostDefault());
    assert.deepEqual(rtr.warnings(), []);
    assert.equal(await rtr.end(), 0);
  });
});

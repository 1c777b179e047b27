import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import { Agent, type ConnectionLike, type DialRequest } from '../../src/agent/agent';
import { NAT_KEEPALIVE_S, classifyAddress, effectiveKeepalive } from '../../src/agent/keepalive';
import type { Status } from '../../src/agent/status';
import { explicitKeys, resolveConfig } from '../../src/config/load';
import { createLogger } from '../../src/log';
import type { Netlink } from '../../src/platform/netlink';
import type { Sysctl } from '../../src/platform/sysctl';
import { validateEchoInterval } from '../../src/ppp/echo';
import { FakeClock } from '../helpers/fake-clock';

/** Address classes at every range edge: the last address outside, the first and last inside, the first outside again. */
const CASES: [string, string, boolean][] = [
  // RFC 1918 10/8
  ['9.255.255.255', 'global', false],
  ['10.0.0.0', 'private', true],
  ['10.255.255.255', 'private', true],
  ['11.0.0.0', 'global', false],
  // RFC 1918 172.16/12
  ['172.15.255.255', 'global', false],
  ['172.16.0.0', 'private', true],
  ['172.31.255.255', 'private', true],
  ['172.32.0.0', 'global', false],
  // RFC 1918 192.168/16
  ['192.167.255.255', 'global', false],
  ['192.168.0.0', 'private', true],
  ['192.168.255.255', 'private', true],
  ['192.169.0.0', 'global', false],
  // RFC 6598 100.64/10
  ['100.63.255.255', 'global', false],
  ['100.64.0.0', 'shared', true],
  ['100.127.255.255', 'shared', true],
  ['100.128.0.0', 'global', false],
  // RFC 3927 169.254/16
  ['169.253.255.255', 'global', false],
  ['169.254.0.0', 'link-local', true],
  ['169.254.255.255', 'link-local', true],
  ['169.255.0.0', 'global', false],
  // 192.0.0/24 (DS-Lite B4 192.0.0.2 is NATed at the AFTR)
  ['192.0.0.2', 'ietf-assignments', true],
  ['192.0.1.0', 'global', false],
  // Loopback and "this network": no NAT in between.
  ['127.0.0.1', 'loopback', false],
  ['0.0.0.0', 'unspecified', false],
  // Documentation ranges stand for public addresses in labs.
  ['192.0.2.2', 'global', false],
  ['198.51.100.7', 'global', false],
  ['203.0.113.9', 'global', false],
  ['8.8.8.8', 'global', false],
  // IPv6 ULA fc00::/7
  ['fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'global', false],
  ['fc00::', 'unique-local', true],
  ['fd12:3456:789a::1', 'unique-local', true],
  ['fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'unique-local', true],
  ['fe00::', 'global', false],
  // IPv6 link-local fe80::/10
  ['fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'global', false],
  ['fe80::1', 'link-local', true],
  ['fe80::1%eth0', 'link-local', true],
  ['febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'link-local', true],
  ['fec0::', 'global', false],
  ['::1', 'loopback', false],
  ['::', 'unspecified', false],
  ['2001:db8::2', 'global', false],
  ['2a00:1450:4001:80b::200e', 'global', false],
  // IPv4-mapped: the v4 address decides.
  ['::ffff:10.1.2.3', 'private', true],
  ['::ffff:100.64.0.1', 'shared', true],
  ['::ffff:8.8.8.8', 'global', false],
];

describe('classifyAddress', () => {
  for (const [addr, cls, nat] of CASES) {
    test(`${addr} is ${cls}${nat ? ', behind NAT' : ''}`, () => {
      const r = classifyAddress(addr);
      assert.equal(r.class, cls);
      assert.equal(r.behindNat, nat);
      assert.ok(r.range.length > 0);
    });
  }

  test('rejects what is not an address', () => {
    assert.throws(() => classifyAddress('10.0.0'), /not an IP address/);
    assert.throws(() => classifyAddress('example.net'), /not an IP address/);
  });
});

const DEFAULTS = { helloInterval: 60, lcpEchoInterval: 30 };
const none = new Set<string>();

describe('effectiveKeepalive', () => {
  test('a public address keeps the RFC 5571 defaults', () => {
    const k = effectiveKeepalive(DEFAULTS, none, '203.0.113.9');
    assert.deepEqual([k.helloInterval, k.lcpEchoInterval, k.natSafe], [60, 30, false]);
    assert.match(k.reason, /no NAT expected/);
  });

  for (const local of ['192.168.1.20', '100.64.0.2', 'fd00::2']) {
    test(`${local} with default timers gets the NAT-safe interval for both`, () => {
      const k = effectiveKeepalive(DEFAULTS, none, local);
      assert.deepEqual([k.helloInterval, k.lcpEchoInterval, k.natSafe], [NAT_KEEPALIVE_S, NAT_KEEPALIVE_S, true]);
      assert.match(k.reason, new RegExp(`${local.replace(/\./g, '\\.')} is in .*likely behind NAT`));
    });
  }

  test('both set explicitly: kept, even behind NAT', () => {
    const k = effectiveKeepalive(DEFAULTS, new Set(['helloInterval', 'lcpEchoInterval']), '10.0.0.2');
    assert.deepEqual([k.helloInterval, k.lcpEchoInterval, k.natSafe], [60, 30, false]);
    assert.match(k.reason, /keeping the configured/);
  });

  test('only the echo set: it is kept and HELLO is never below it (RFC 5571 5.1.2)', () => {
    const k = effectiveKeepalive({ helloInterval: 60, lcpEchoInterval: 40 }, new Set(['lcpEchoInterval']), '10.0.0.2');
    assert.deepEqual([k.helloInterval, k.lcpEchoInterval], [40, 40]);
    assert.equal(k.natSafe, true);
  });

  test('only HELLO set: it is kept; the echo adapts but stays within it', () => {
    const long = effectiveKeepalive({ helloInterval: 300, lcpEchoInterval: 30 }, new Set(['helloInterval']), '10.0.0.2');
    assert.deepEqual([long.helloInterval, long.lcpEchoInterval], [300, NAT_KEEPALIVE_S]);
    const short = effectiveKeepalive({ helloInterval: 10, lcpEchoInterval: 10 }, new Set(['helloInterval']), '10.0.0.2');
    assert.deepEqual([short.helloInterval, short.lcpEchoInterval], [10, 10]);
  });

  test('a default already shorter than the NAT interval is not lengthened', () => {
    const k = effectiveKeepalive({ helloInterval: 12, lcpEchoInterval: 12 }, new Set(['helloInterval']), '10.0.0.2');
    assert.deepEqual([k.helloInterval, k.lcpEchoInterval, k.natSafe], [12, 12, false]);
  });

  test('every outcome satisfies RFC 5571 5.1.2 (10 s <= echo <= min(hello, 60))', () => {
    const keys = ['helloInterval', 'lcpEchoInterval'];
    for (const hello of [10, 15, 20, 30, 60, 61, 3600]) {
      for (const echo of [10, 15, 30, 60]) {
        if (echo > Math.min(hello, 60)) continue; // load.ts rejects these already
        for (let mask = 0; mask < 4; mask++) {
          const explicit = new Set(keys.filter((_, i) => mask & (1 << i)));
          for (const local of ['10.0.0.2', '198.51.100.2']) {
            const k = effectiveKeepalive({ helloInterval: hello, lcpEchoInterval: echo }, explicit, local);
            assert.equal(validateEchoInterval(k.lcpEchoInterval, k.helloInterval), undefined, `${hello}/${echo} ${[...explicit]} ${local}`);
            if (explicit.has('helloInterval')) assert.equal(k.helloInterval, hello);
            if (explicit.has('lcpEchoInterval')) assert.equal(k.lcpEchoInterval, echo);
          }
        }
      }
    }
  });

  test('an address it cannot read keeps the configured timers', () => {
    const k = effectiveKeepalive(DEFAULTS, none, 'not-an-address');
    assert.deepEqual([k.helloInterval, k.lcpEchoInterval, k.natSafe], [60, 30, false]);
  });
});

describe('explicitly set keys (load.ts)', () => {
  test('file keys and flags count, defaults do not', () => {
    const l = resolveConfig({ lcpEchoInterval: 20 }, { helloInterval: '45', mtu: undefined });
    assert.deepEqual([...l.explicit].sort(), ['helloInterval', 'lcpEchoInterval']);
    assert.deepEqual([...explicitKeys(l.config)].sort(), ['helloInterval', 'lcpEchoInterval']);
  });

  test('setting a key to its default value still counts as set', () => {
    const l = resolveConfig({ helloInterval: 60, lcpEchoInterval: 30 }, {});
    assert.ok(explicitKeys(l.config).has('helloInterval'));
    assert.ok(explicitKeys(l.config).has('lcpEchoInterval'));
  });

  test('a config not made by resolveConfig falls back to "differs from the default"', () => {
    const { config } = resolveConfig({}, {});
    const copy = { ...config, lcpEchoInterval: 20 };
    assert.deepEqual([...explicitKeys(copy)], ['lcpEchoInterval']);
  });
});

/** The agent wires the decision in at dial time: the dial sees the timers, status shows them. */
describe('agent applies the effective keepalive at dial time', () => {
  async function dialOnce(t: { after: (fn: () => unknown) => void }, local: string, file: Record<string, unknown>) {
    const dir = mkdtempSync(join(tmpdir(), 'keepalive-'));
    const { config } = resolveConfig({ sc: ['192.0.2.1'], controlSocket: join(dir, 'ctl.sock'), ...file }, {});
    const lines: { msg: string }[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l) as { msg: string });
        cb();
      },
    });
    const reqs: DialRequest[] = [];
    const clock = new FakeClock();
    const agent = new Agent({
      config,
      secrets: {},
      log: createLogger({ level: 'info', destination: sink }),
      netlink: { subscribe: () => () => undefined, listAddresses: async () => [], getLink: async () => ({ mtu: 1500 }) } as unknown as Netlink,
      sysctl: {} as Sysctl,
      openTun: () => {
        throw new Error('no TUN in unit tests');
      },
      duid: new Uint8Array([0, 3, 0, 1, 1, 2, 3, 4, 5, 6]),
      scheduler: clock,
      rng: () => 0.5,
      sourceAddress: async () => local,
      dial: async (r): Promise<ConnectionLike> => {
        reqs.push(r);
        return {
          sc: r.sc,
          start: () => r.emit({ type: 'down', info: { layer: 'tunnel', reason: 'test' } }),
          stop: async () => undefined,
          dispose: () => undefined,
          localAddress: () => local,
          fillStatus: (s: Status) => void s,
        };
      },
    });
    const run = agent.run();
    t.after(async () => {
      await agent.stop();
      await run;
    });
    for (let i = 0; i < 50 && reqs.length < 1; i++) await new Promise((r) => setImmediate(r));
    // A second dial (after backoff) must not log the reason again.
    clock.advance(10_000);
    for (let i = 0; i < 50 && reqs.length < 2; i++) await new Promise((r) => setImmediate(r));
    return { reqs, status: agent.status(), lines };
  }

  test('behind a CGN address: 15 s timers in the dial and in status, reason logged once', async (t) => {
    const { reqs, status, lines } = await dialOnce(t, '100.64.0.2', {});
    assert.ok(reqs.length >= 2, `dialled ${reqs.length} times`);
    assert.deepEqual([reqs[0]!.keepalive.helloInterval, reqs[0]!.keepalive.lcpEchoInterval], [NAT_KEEPALIVE_S, NAT_KEEPALIVE_S]);
    assert.equal(status.keepalive?.natSafe, true);
    assert.equal(status.keepalive?.lcpEchoInterval, NAT_KEEPALIVE_S);
    assert.equal(status.keepalive?.deadTimeS, NAT_KEEPALIVE_S * 4);
    assert.equal(lines.filter((l) => /^keepalive: .*likely behind NAT/.test(l.msg)).length, 1);
  });

  test('public address: RFC defaults', async (t) => {
    const { reqs, status } = await dialOnce(t, '198.51.100.2', {});
    assert.deepEqual([reqs[0]!.keepalive.helloInterval, reqs[0]!.keepalive.lcpEchoInterval], [60, 30]);
    assert.equal(status.keepalive?.natSafe, false);
    assert.equal(status.keepalive?.deadTimeS, 120);
  });

  test('behind NAT with timers from the file: kept', async (t) => {
    const { reqs } = await dialOnce(t, '192.168.1.2', { helloInterval: 60, lcpEchoInterval: 30 });
    assert.deepEqual([reqs[0]!.keepalive.helloInterval, reqs[0]!.keepalive.lcpEchoInterval], [60, 30]);
  });
});

test('reload: writing the timers down at their default values ends the NAT adaptation, so it reconnects', () => {
  const dir = mkdtempSync(join(tmpdir(), 'keepalive-'));
  const file = { sc: ['192.0.2.1'], controlSocket: join(dir, 'ctl.sock') };
  const agent = new Agent({
    config: resolveConfig(file, {}).config,
    secrets: {},
    log: createLogger({ level: 'silent' }),
    netlink: {} as Netlink,
    sysctl: {} as Sysctl,
    openTun: () => {
      throw new Error('no TUN in unit tests');
    },
    duid: new Uint8Array([0, 3, 0, 1, 1, 2, 3, 4, 5, 6]),
    scheduler: new FakeClock(),
  });
  assert.equal(agent.reload(resolveConfig(file, {}).config, {}), false, 'same config, same explicit keys');
  assert.equal(agent.reload(resolveConfig({ ...file, helloInterval: 60, lcpEchoInterval: 30 }, {}).config, {}), true);
});

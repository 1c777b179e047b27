import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isTimerAction } from '../../src/core/actions';
import { applyTimer, clampDelay, MAX_TIMER_MS, RealScheduler } from '../../src/core/scheduler';
import { Dhcp6Client, type Dhcp6Action, type Dhcp6ClientOptions } from '../../src/ipv6/dhcp6-client';
import { emptyMessage, encodeDhcp6, type IaPd, MSG_ADVERTISE, MSG_REPLY, decodeDhcp6, type Dhcp6Message } from '../../src/ipv6/dhcpv6';
import { buildNdPacket, emptyOptions, type NdOptions, type RouterAdvertisement } from '../../src/ipv6/nd';
import { buildIcmpv6, buildUdp6, parseUdp6 } from '../../src/ipv6/packet';
import { Slaac, type SlaacAction } from '../../src/ipv6/slaac';
import { decodeMessage, encodeControl, encodeControlBody, encodeRawAvps, Lac, type LacAction, hide, RANDOM_VECTOR_TYPE, rawAvps, MessageType } from '../../src/l2tp';
import { FakeClock } from '../helpers/fake-clock';

/**
 * Hostile input against the sans-I/O cores: each rejection leaves the core's state as
 * it was and is counted under a stable reason that the agent shows in
 * status.counters.drops (prefixed l2tp., ipv6., dhcp6.).
 */

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));

// ------------------------------------------------------------------ scheduler

describe('RealScheduler delays', () => {
  test('clampDelay keeps setTimeout from overflowing: huge and non-finite delays wait the longest, negative ones none', () => {
    assert.equal(clampDelay(2 ** 32 * 1000), MAX_TIMER_MS);
    assert.equal(clampDelay(Number.POSITIVE_INFINITY), MAX_TIMER_MS);
    assert.equal(clampDelay(Number.NaN), MAX_TIMER_MS);
    assert.equal(clampDelay(-5), 0);
    assert.equal(clampDelay(1500), 1500);
  });

  test('a 136-year timer is armed for at most 2^31-1 ms, not the 1 ms Node substitutes for an overflow', (t) => {
    const delays: number[] = [];
    const real = globalThis.setTimeout;
    // Capture what reaches setTimeout; nothing is really armed, so nothing can fire.
    t.mock.method(globalThis, 'setTimeout', ((_fn: () => void, ms: number) => {
      delays.push(ms);
      return real(() => {}, 0);
    }) as unknown as typeof setTimeout);
    const s = new RealScheduler();
    s.set('valid', 0xfffffffe * 1000, () => assert.fail('must not fire'));
    s.set('nan', Number.NaN, () => assert.fail('must not fire'));
    s.clearAll();
    assert.deepEqual(delays, [MAX_TIMER_MS, MAX_TIMER_MS]);
  });
});

// ------------------------------------------------------------------ L2TP

/** A LAC brought up against a scripted SC; returns helpers to inject datagrams as the SC. */
function establishedLac() {
  const clock = new FakeClock();
  let seed = 1;
  const lac = new Lac({ hostName: 'si', random: (n) => new Uint8Array(n).map(() => (seed = (seed * 73 + 41) & 0xff)) });
  const sent: Uint8Array[] = [];
  const events: LacAction[] = [];
  const timers: string[] = [];
  const run = (acts: LacAction[]) => {
    for (const a of acts) {
      if (a.type === 'send') sent.push(a.bytes);
      else if (isTimerAction(a)) {
        if (a.type === 'timer-start') timers.push(a.timer);
        applyTimer(clock, 'lac', a, (tm) => run(lac.timerFired(tm)));
      } else events.push(a);
    }
  };
  const sc = { ns: 0, nr: 0, tunnel: 40, session: 41 };
  const from = '192.0.2.1:1701';
  const ctl = (name: Parameters<typeof encodeControlBody>[0], values: Record<string, unknown>, sessionId = 0) =>
    encodeControl({ tunnelId: lac.localTunnelId, sessionId, ns: sc.ns++, nr: sc.nr }, encodeControlBody(name, values as never));
  const deliver = (bytes: Uint8Array) => run(lac.receive(bytes, from));
  run(lac.open());
  sc.nr = 1;
  deliver(ctl('SCCRP', { protocolVersion: { version: 1, revision: 0 }, framingCapabilities: { sync: true, async: true }, hostName: 'lns', assignedTunnelId: sc.tunnel }));
  sc.nr = 3; // SCCCN and ICRQ
  const icrq = sent.map((b) => decodeMessage(b)).find((m) => m.kind === 'control' && m.message?.name === 'ICRQ');
  const lacSession = icrq?.kind === 'control' ? icrq.message!.values.assignedSessionId! : 0;
  deliver(ctl('ICRP', { assignedSessionId: sc.session }, lacSession));
  sc.nr = 4;
  deliver(encodeControl({ tunnelId: lac.localTunnelId, sessionId: 0, ns: sc.ns, nr: sc.nr }, new Uint8Array(0)));
  assert.equal(lac.status().session.state, 'established');
  assert.equal(lac.status().tunnel.unacknowledged, 0);
  return { clock, lac, sent, events, timers, sc, ctl, deliver, lacSession };
}

describe('L2TP: hostile control messages from the SC address', () => {
  test('a flood of HELLOs with an Ns outside the window: counted, never acked, never taken as proof of life', () => {
    const h = establishedLac();
    const before = h.lac.status();
    h.sent.length = 0;
    h.timers.length = 0;
    const forged = encodeControl({ tunnelId: h.lac.localTunnelId, sessionId: 0, ns: (h.sc.ns + 1000) & 0xffff, nr: h.sc.nr }, encodeControlBody('HELLO', {}));
    for (let i = 0; i < 10_000; i++) h.deliver(forged);
    const after = h.lac.status();
    assert.equal(after.counters.drops['outside-window'], 10_000);
    assert.equal(h.sent.length, 0, 'no ZLB or anything else goes out');
    assert.ok(!h.timers.includes('hello'), 'the HELLO timer was not pushed back by forged traffic');
    assert.deepEqual(after.tunnel, before.tunnel);
    assert.deepEqual(after.session, before.session);
    // The real SC's next message is still in sequence.
    h.deliver(h.ctl('HELLO', {}));
    assert.equal(h.lac.status().counters.drops['outside-window'], 10_000);
    assert.equal(h.events.filter((e) => e.type === 'down').length, 0);
  });

  test('duplicates are acknowledged with a ZLB and counted as drops', () => {
    const h = establishedLac();
    h.sent.length = 0;
    const stale = encodeControl({ tunnelId: h.lac.localTunnelId, sessionId: 0, ns: h.sc.ns - 1, nr: h.sc.nr }, encodeControlBody('HELLO', {}));
    for (let i = 0; i < 5; i++) h.deliver(stale);
    assert.equal(h.lac.status().counters.drops.duplicate, 5);
    assert.equal(h.sent.length, 5);
    assert.ok(h.sent.every((b) => b.length === 12), 'ZLBs only');
  });

  test('a CDN and an ICRP for a session we do not have, in sequence: acked, dropped as unknown-session; our session stays', () => {
    const h = establishedLac();
    h.deliver(h.ctl('CDN', { resultCode: { result: 3 }, assignedSessionId: 9 }, h.lacSession ^ 0x5555));
    h.deliver(h.ctl('ICRP', { assignedSessionId: 99 }, h.lacSession ^ 0x5555));
    assert.equal(h.lac.status().counters.drops['unknown-session'], 2);
    assert.equal(h.lac.status().session.state, 'established');
    assert.equal(h.events.filter((e) => e.type === 'down').length, 0);
  });

  test('malformed AVP lists (length 0, past the end, truncated header, too many, oversized) are dropped before sequencing', () => {
    const h = establishedLac();
    const seqBefore = { ...h.lac.status().counters };
    const hdr = (body: Uint8Array) => encodeControl({ tunnelId: h.lac.localTunnelId, sessionId: 0, ns: h.sc.ns, nr: h.sc.nr }, body);
    const msgType = hex('8008 0000 0000 0006');
    h.deliver(hdr(Buffer.concat([msgType, hex('8000 0000 0000')]))); // AVP length 0: the classic parser loop
    h.deliver(hdr(Buffer.concat([msgType, hex('8040 0000 0007 0102')]))); // length 64, 10 bytes there
    h.deliver(hdr(Buffer.concat([msgType, hex('8000 00')]))); // half an AVP header
    const many = Buffer.concat([msgType, ...Array.from({ length: 300 }, () => hex('0006 0000 00c8'))]);
    h.deliver(hdr(many));
    h.deliver(hdr(Buffer.concat([msgType, ...Array.from({ length: 9 }, () => Buffer.concat([hex('03ff 0000 00c8'), Buffer.alloc(1017)]))])));
    const longer = hdr(msgType);
    longer[3] = 200; // Length field beyond the datagram
    h.deliver(longer);
    const d = h.lac.status().counters.drops;
    assert.equal(d['avp-length'], 3);
    assert.equal(d['avp-count'], 1);
    assert.equal(d['too-long'], 1);
    assert.equal(d.length, 1);
    assert.equal(h.lac.status().counters.ctrlIn, seqBefore.ctrlIn, 'none reached the control channel');
    // The SC's real next message still carries the Ns the LAC expects.
    h.sent.length = 0;
    h.deliver(h.ctl('HELLO', {}));
    assert.equal(h.lac.status().counters.drops['outside-window'], undefined);
    assert.equal(h.lac.status().counters.drops.duplicate, undefined);
  });

  test('a hidden AVP without a secret ends the tunnel only when it arrives in sequence', () => {
    const h = establishedLac();
    const vector = new Uint8Array(16).fill(7);
    const raw = rawAvps({ messageType: MessageType.HELLO });
    const rv = { mandatory: true, hidden: false, reserved: 0, vendorId: 0, type: RANDOM_VECTOR_TYPE, value: vector };
    const hidden = hide({ mandatory: false, hidden: false, reserved: 0, vendorId: 0, type: 200, value: hex('0102') }, 'x', vector);
    const body = encodeRawAvps([raw[0]!, rv, hidden]);
    const at = (ns: number) => encodeControl({ tunnelId: h.lac.localTunnelId, sessionId: 0, ns, nr: h.sc.nr }, body);
    h.deliver(at((h.sc.ns + 2000) & 0xffff));
    h.deliver(at(h.sc.ns - 1));
    assert.equal(h.lac.status().tunnel.state, 'established');
    assert.equal(h.lac.status().counters.drops['avp-hidden-no-secret'], 2);
    h.deliver(at(h.sc.ns));
    assert.equal(h.lac.status().tunnel.state, 'closing');
  });
});

// ------------------------------------------------------------------ SLAAC

function slaacHarness(clock: FakeClock) {
  const core = new Slaac({ iid: hex('c633648000000000'), clock: () => clock.now(), rng: () => 0.5, dadTransmits: 0, linkMtu: 1460 });
  const log: SlaacAction[] = [];
  const armed: number[] = [];
  const apply = (acts: SlaacAction[]) => {
    for (const a of acts) {
      if (isTimerAction(a)) {
        if (a.type === 'timer-start') armed.push(a.ms);
        applyTimer(clock, 'slaac', a, (t) => apply(core.timerFired(t)));
      } else log.push(a);
    }
  };
  return { core, log, armed, apply, take: (type: string) => log.filter((a) => a.type === type) };
}

const pfx = (prefix: string, over: Partial<NdOptions['prefixes'][number]> = {}) => ({
  prefix,
  prefixLength: 64,
  onLink: true,
  autonomous: true,
  validLifetime: 86400,
  preferredLifetime: 3600,
  ...over,
});

function ra(options: Partial<NdOptions>, over: Partial<RouterAdvertisement> = {}): Uint8Array {
  return buildNdPacket('fe80::1', 'ff02::1', {
    kind: 'ra',
    curHopLimit: 64,
    managed: false,
    other: false,
    routerLifetime: 1800,
    reachableTime: 0,
    retransTimer: 0,
    options: emptyOptions(options),
    ...over,
  });
}

describe('SLAAC: absurd Router Advertisements', () => {
  test('multicast, ::/64, link-local, non-/64 and preferred>valid prefixes form no address; each is counted by reason', () => {
    const clock = new FakeClock();
    const h = slaacHarness(clock);
    h.apply(
      h.core.receive(
        ra({
          prefixes: [
            pfx('ff0e::'),
            pfx('::'),
            pfx('fe80::'),
            pfx('2001:db8:1::', { prefixLength: 48 }),
            pfx('2001:db8:2::', { prefixLength: 128 }),
            pfx('2001:db8:3::', { preferredLifetime: 90000 }),
          ],
        }),
      ),
    );
    assert.equal(h.take('address').length, 0);
    assert.deepEqual(h.core.status().drops, {
      'ra-prefix-multicast': 1,
      'ra-prefix-reserved': 1,
      'ra-prefix-link-local': 1,
      'ra-prefix-length': 2,
      'ra-prefix-lifetimes': 1,
    });
    assert.equal(h.core.status().addresses.length, 0);
  });

  test('RDNSS servers that are multicast, unspecified or loopback are not used; MTU and Retrans Timer out of range are ignored', () => {
    const clock = new FakeClock();
    const h = slaacHarness(clock);
    h.apply(h.core.receive(ra({ rdnss: [{ lifetime: 600, servers: ['ff02::1', '::', '::1', '2001:db8::53'] }], mtu: 100 }, { retransTimer: 0xffffffff })));
    h.apply(h.core.receive(ra({ mtu: 9000 })));
    assert.deepEqual(h.take('dns'), [{ type: 'dns', servers: ['2001:db8::53'], search: [] }]);
    assert.equal(h.take('mtu').length, 0);
    assert.deepEqual(h.core.status().drops, { 'ra-rdnss-bad-server': 3, 'ra-mtu-out-of-range': 2, 'ra-retrans-timer-out-of-range': 1 });
  });

  test('malformed RAs are counted by decode reason (option length 0, truncated, hop limit, checksum)', () => {
    const clock = new FakeClock();
    const h = slaacHarness(clock);
    const body = (opts: number[]) => Uint8Array.from([64, 0, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0, 0, ...opts]);
    h.apply(h.core.receive(buildIcmpv6('fe80::1', 'ff02::1', 255, { type: 134, code: 0, body: body([3, 0, 0, 0, 0, 0, 0, 0]) })));
    h.apply(h.core.receive(buildIcmpv6('fe80::1', 'ff02::1', 255, { type: 134, code: 0, body: body([]).subarray(0, 6) })));
    h.apply(h.core.receive(buildIcmpv6('fe80::1', 'ff02::1', 64, { type: 134, code: 0, body: body([]) })));
    const bad = buildIcmpv6('fe80::1', 'ff02::1', 255, { type: 134, code: 0, body: body([]) });
    bad[bad.length - 1] ^= 0xff;
    h.apply(h.core.receive(bad));
    assert.deepEqual(h.core.status().drops, { 'nd-malformed': 1, 'nd-truncated': 1, 'nd-invalid': 1, 'nd-checksum': 1 });
    assert.equal(h.log.length, 0);
  });

  test('lifetimes just short of infinity arm timers setTimeout can hold; nothing expires early', () => {
    const clock = new FakeClock();
    const h = slaacHarness(clock);
    h.apply(h.core.receive(ra({ prefixes: [pfx('2001:db8:200::', { validLifetime: 0xfffffffe, preferredLifetime: 0xfffffffe })], rdnss: [{ lifetime: 0xfffffffe, servers: ['2001:db8::53'] }] }, { routerLifetime: 65535 })));
    assert.equal(h.take('address').length, 1);
    assert.ok(h.armed.length > 0 && h.armed.every((ms) => ms >= 0 && ms <= MAX_TIMER_MS), JSON.stringify(h.armed));
    clock.advance(40 * 86400_000);
    assert.equal(h.take('address-removed').length, 0);
    assert.equal(h.core.status().addresses[0]?.state, 'preferred');
    assert.equal(h.core.status().dns.servers.length, 1);
  });

  test('the two-hour rule: an RA with valid lifetime 0 for our prefix cuts it to two hours, not to nothing', () => {
    const clock = new FakeClock();
    const h = slaacHarness(clock);
    h.apply(h.core.receive(ra({ prefixes: [pfx('2001:db8:200::', { validLifetime: 2592000, preferredLifetime: 604800 })] })));
    h.apply(h.core.receive(ra({ prefixes: [pfx('2001:db8:200::', { validLifetime: 0, preferredLifetime: 0 })] })));
    assert.equal(h.core.status().addresses[0]?.validLifetime, 7200);
    clock.advance(7199_000);
    assert.equal(h.take('address-removed').length, 0);
  });
});

// ------------------------------------------------------------------ DHCPv6

const DUID = hex('0004 0011223344556677 8899aabbccddeeff');
const SERVER = hex('0003001b fdfdfafa');
const LL = 'fe80::c633:6480:0:0';

function dhcp(opts: Partial<Dhcp6ClientOptions> = {}) {
  const clock = new FakeClock();
  const client = new Dhcp6Client({ duid: DUID, linkLocal: LL, clock: () => clock.now(), rng: () => 0.5, initialDelay: false, prefixLengthHint: 56, ...opts });
  const log: Dhcp6Action[] = [];
  const sent: Dhcp6Message[] = [];
  const apply = (acts: Dhcp6Action[]) => {
    for (const a of acts) {
      if (isTimerAction(a)) applyTimer(clock, 'dhcp6', a, (t) => apply(client.timerFired(t)));
      else if (a.type === 'send') sent.push(decodeDhcp6(parseUdp6(a.packet).payload));
      else log.push(a);
    }
  };
  const answer = (req: Dhcp6Message, type: number, extra: Partial<Dhcp6Message> = {}) =>
    buildUdp6({
      src: 'fe80::1',
      dst: LL,
      srcPort: 547,
      dstPort: 546,
      hopLimit: 64,
      payload: encodeDhcp6(emptyMessage(type, req.xid, { serverId: SERVER, clientId: req.clientId, preference: 255, ...extra })),
    });
  const deliver = (p: Uint8Array) => apply(client.receive(p));
  return { clock, client, log, sent, apply, answer, deliver, last: () => sent[sent.length - 1]! };
}

const iaPd = (prefix: string, prefixLength: number, over: Partial<IaPd> = {}, pref = 3600, valid = 7200): IaPd => ({
  iaid: 1,
  t1: 1800,
  t2: 2880,
  prefixes: [{ prefix, prefixLength, preferredLifetime: pref, validLifetime: valid, unknown: [] }],
  unknown: [],
  ...over,
});

describe('DHCPv6: replies we must not take', () => {
  test('a Reply for a transaction we never started and a malformed message change nothing', () => {
    const h = dhcp();
    h.deliver(h.answer(emptyMessage(MSG_REPLY, 0x123456), MSG_REPLY, { iaPd: [iaPd('2001:db8:dead::', 56)] }));
    const m = h.answer(emptyMessage(MSG_REPLY, 1), MSG_REPLY);
    h.deliver(m.subarray(0, m.length - 3));
    assert.deepEqual(h.client.status().counters.ignored, { 'no-transaction': 1, malformed: 1 });
    assert.equal(h.log.length, 0);
    assert.equal(h.client.state, 'idle');
  });

  test('IA_PD prefixes that are too long, too short, multicast, link-local or in ::/64 are refused by reason', () => {
    for (const [prefix, len, reason] of [
      ['2001:db8:100::', 96, 'pd-prefix-length'],
      ['::', 0, 'pd-prefix-length'],
      ['2000::', 3, 'pd-prefix-length'],
      ['ff00::', 56, 'pd-prefix-multicast'],
      ['fe80::', 64, 'pd-prefix-link-local'],
      ['::', 56, 'pd-prefix-reserved'],
    ] as const) {
      const h = dhcp({ rapidCommit: true });
      h.apply(h.client.start());
      // An Advertise offering only that prefix offers nothing: Solicit goes on.
      h.deliver(h.answer(h.last(), MSG_ADVERTISE, { iaPd: [iaPd(prefix, len)] }));
      assert.equal(h.client.status().counters.ignored['advertise-without-leases'], 1, `${prefix}/${len}`);
      // A rapid-commit Reply to the same Solicit delegates it outright, were it taken.
      const req = h.last();
      h.apply(h.client.receiveMessage(emptyMessage(MSG_REPLY, req.xid, { serverId: SERVER, clientId: DUID, rapidCommit: true, iaPd: [iaPd(prefix, len)] })));
      assert.equal(h.log.filter((a) => a.type === 'prefix').length, 0, `${prefix}/${len} not delegated`);
      assert.equal(h.client.status().counters.ignored[reason], 1, `${prefix}/${len}: ${JSON.stringify(h.client.status().counters.ignored)}`);
    }
    // The same path with a sane /56 does delegate: the refusals above are the checks', not the harness's.
    const h = dhcp({ rapidCommit: true });
    h.apply(h.client.start());
    h.apply(h.client.receiveMessage(emptyMessage(MSG_REPLY, h.last().xid, { serverId: SERVER, clientId: DUID, rapidCommit: true, iaPd: [iaPd('2001:db8:100::', 56)] })));
    assert.equal(h.log.filter((a) => a.type === 'prefix').length, 1);
  });

  test('a Reply whose IA_PD has T1 > T2 or preferred > valid delegates nothing and says why', () => {
    for (const [ia, reason] of [
      [iaPd('2001:db8:100::', 56, { t1: 5000, t2: 100 }), 'ia-t1-after-t2'],
      [iaPd('2001:db8:100::', 56, {}, 9000, 100), 'lease-preferred-after-valid'],
    ] as const) {
      const h = dhcp();
      h.apply(h.client.start());
      h.deliver(h.answer(h.last(), MSG_ADVERTISE, { iaPd: [iaPd('2001:db8:100::', 56)] }));
      h.deliver(h.answer(h.last(), MSG_REPLY, { iaPd: [ia] }));
      assert.equal(h.client.status().counters.ignored[reason], 1, reason);
      assert.equal(h.log.filter((a) => a.type === 'prefix').length, 0, reason);
      assert.notEqual(h.client.state, 'bound', reason);
    }
  });

  test('DNS servers that are multicast, unspecified or loopback are dropped from a good Reply', () => {
    const h = dhcp();
    h.apply(h.client.start());
    h.deliver(h.answer(h.last(), MSG_ADVERTISE, { iaPd: [iaPd('2001:db8:100::', 56)] }));
    h.deliver(h.answer(h.last(), MSG_REPLY, { iaPd: [iaPd('2001:db8:100::', 56)], dnsServers: ['ff02::fb', '::1', '2001:db8::53'] }));
    assert.equal(h.client.state, 'bound');
    assert.deepEqual(
      h.log.filter((a) => a.type === 'dns').map((a) => (a as { servers: string[] }).servers),
      [['2001:db8::53']],
    );
    assert.equal(h.client.status().counters.ignored['dns-bad-server'], 1);
  });

  test('status codes from the wire cannot grow the ignored map without bound', () => {
    const h = dhcp();
    h.apply(h.client.start());
    h.deliver(h.answer(h.last(), MSG_ADVERTISE, { iaPd: [iaPd('2001:db8:100::', 56)] }));
    const req = h.last();
    for (let code = 1000; code < 1200; code++) h.deliver(h.answer(req, MSG_REPLY, { status: { code, message: '' } }));
    const ig = h.client.status().counters.ignored;
    assert.ok(Object.keys(ig).length <= 65, `${Object.keys(ig).length} keys`);
    assert.ok(ig.other! > 0);
  });
});

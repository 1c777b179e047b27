import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isTimerAction } from '../../src/core/actions';
import { applyTimer } from '../../src/core/scheduler';
import { Dhcp6Client, type Dhcp6Action, type Dhcp6ClientOptions, HOST_PROBE_SOLICITS, hostDhcp6Mode } from '../../src/ipv6/dhcp6-client';
import {
  type Dhcp6Message,
  decodeDhcp6,
  emptyMessage,
  encodeDhcp6,
  type IaPd,
  MSG_ADVERTISE,
  MSG_DECLINE,
  MSG_INFORMATION_REQUEST,
  MSG_REBIND,
  MSG_RELEASE,
  MSG_RENEW,
  MSG_REPLY,
  MSG_REQUEST,
  MSG_SOLICIT,
  STATUS_NO_BINDING,
  STATUS_NO_PREFIX_AVAIL,
  STATUS_UNSPEC_FAIL,
} from '../../src/ipv6/dhcpv6';
import { buildUdp6, type Ipv6Header, parseUdp6 } from '../../src/ipv6/packet';
import { FakeClock } from '../helpers/fake-clock';

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const DUID = hex('0004 0011223344556677 8899aabbccddeeff');
const SERVER = hex('0003001b fdfdfafa');
const LL = 'fe80::c633:6480:0:0';
const S = 1000;

function seeded(seed = 7) {
  let s = seed;
  return () => {
    s = (s * 48271) % 2147483647;
    return s / 2147483647;
  };
}

interface Sent {
  at: number;
  ip: Ipv6Header;
  srcPort: number;
  dstPort: number;
  msg: Dhcp6Message;
}

function setup(opts: Partial<Dhcp6ClientOptions> = {}) {
  const clock = new FakeClock();
  const client = new Dhcp6Client({
    duid: DUID,
    linkLocal: LL,
    clock: () => clock.now(),
    rng: seeded(),
    prefixLengthHint: 56,
    ...opts,
  });
  const log: { at: number; a: Dhcp6Action }[] = [];
  const sent: Sent[] = [];
  const apply = (actions: Dhcp6Action[]): void => {
    for (const a of actions) {
      if (isTimerAction(a)) applyTimer(clock, 'dhcp6', a, (t) => apply(client.timerFired(t)));
      else if (a.type === 'send') {
        const u = parseUdp6(a.packet);
        sent.push({ at: clock.now(), ip: u.ip, srcPort: u.srcPort, dstPort: u.dstPort, msg: decodeDhcp6(u.payload) });
      } else log.push({ at: clock.now(), a });
    }
  };
  const take = <T extends Dhcp6Action['type']>(type: T) =>
    log.filter((e) => e.a.type === type).map((e) => ({ at: e.at, ...(e.a as Extract<Dhcp6Action, { type: T }>) }));
  const last = () => sent[sent.length - 1]!;
  const ofType = (type: number) => sent.filter((s) => s.msg.type === type);
  /** A server answer to `req`, as l2tpns would send it (from fe02::1:2). */
  const answer = (req: Dhcp6Message, type: number, extra: Partial<Dhcp6Message> = {}) =>
    buildUdp6({
      src: 'fe02::1:2',
      dst: LL,
      srcPort: 547,
      dstPort: 546,
      hopLimit: 1,
      payload: encodeDhcp6(emptyMessage(type, req.xid, { serverId: SERVER, clientId: req.clientId, preference: 255, ...extra })),
    });
  const deliver = (pkt: Uint8Array) => apply(client.receive(pkt));
  return { clock, client, log, sent, apply, take, last, ofType, answer, deliver };
}

function pd(prefix = '2001:db8:100::', pref = 3600, valid = 7200, t1 = 1800, t2 = 2880, extra: Partial<IaPd> = {}): IaPd {
  return {
    iaid: 1,
    t1,
    t2,
    prefixes: [{ prefix, prefixLength: 56, preferredLifetime: pref, validLifetime: valid, unknown: [] }],
    unknown: [],
    ...extra,
  };
}

const DNS = { dnsServers: ['2001:db8::53'], domainList: ['example.com'] };

/** Runs Solicit -> Advertise(255) -> Request -> Reply and returns the harness. */
function bound(opts: Partial<Dhcp6ClientOptions> = {}, ia: IaPd = pd()) {
  const h = setup(opts);
  h.apply(h.client.start());
  h.clock.advance(S);
  h.deliver(h.answer(h.last().msg, MSG_ADVERTISE, { iaPd: [ia] }));
  assert.equal(h.last().msg.type, MSG_REQUEST);
  h.deliver(h.answer(h.last().msg, MSG_REPLY, { iaPd: [ia], ...DNS }));
  assert.equal(h.client.state, 'bound');
  return h;
}

test('Solicit: contents, addressing and RFC 8415 backoff bounds with jitter', () => {
  const h = setup();
  h.apply(h.client.start());
  h.clock.advance(6 * 3600 * S);
  const sol = h.ofType(MSG_SOLICIT);
  const first = sol[0]!;
  assert.ok(first.at <= 1000, 'initial delay at most SOL_MAX_DELAY');
  assert.equal(first.ip.src, LL);
  assert.equal(first.ip.dst, 'ff02::1:2');
  assert.equal(first.ip.hopLimit, 1);
  assert.equal(first.srcPort, 546);
  assert.equal(first.dstPort, 547);
  assert.deepEqual(first.msg.clientId, DUID);
  assert.equal(first.msg.serverId, undefined);
  assert.deepEqual(first.msg.iaPd, [pd('::', 0, 0, 0, 0)]);
  assert.deepEqual(first.msg.iaNa, [], 'no IA_NA until configured or an RA says M=1');
  assert.ok(first.msg.oro!.includes(23) && first.msg.oro!.includes(24) && first.msg.oro!.includes(82));
  assert.equal(first.msg.rapidCommit, false);
  assert.equal(first.msg.elapsedTime, 0);
  const gaps = sol.slice(1).map((s, i) => s.at - sol[i]!.at);
  assert.ok(gaps[0]! > 1000 && gaps[0]! <= 1100, `first RT strictly above IRT: ${gaps[0]}`);
  for (let i = 1; i < gaps.length; i++) {
    const prev = gaps[i - 1]!;
    const g = gaps[i]!;
    const doubled = g >= 1.9 * prev - 1 && g <= 2.1 * prev + 1;
    const capped = g >= 0.9 * 3600 * S && g <= 1.1 * 3600 * S;
    assert.ok(doubled || capped, `RT ${i} = ${g} after ${prev}`);
  }
  assert.ok(
    gaps.slice(-3).every((g) => g >= 3240 * S && g <= 3960 * S),
    'capped at SOL_MAX_RT',
  );
  // one transaction id throughout; elapsed time counts from the first Solicit, in 1/100 s, capped at 0xffff
  assert.ok(sol.every((s) => s.msg.xid === first.msg.xid));
  assert.equal(sol[1]!.msg.elapsedTime, Math.round((sol[1]!.at - first.at) / 10));
  assert.equal(sol.at(-1)!.msg.elapsedTime, 0xffff);
});

test('l2tpns flow: Advertise with preference 255 is taken at once, Reply gives prefix and DNS', () => {
  const h = setup();
  h.apply(h.client.start());
  h.clock.advance(S);
  const sol = h.last().msg;
  h.deliver(h.answer(sol, MSG_ADVERTISE, { iaPd: [pd()] }));
  const req = h.last();
  assert.equal(req.msg.type, MSG_REQUEST, 'no waiting for the first RT');
  assert.notEqual(req.msg.xid, sol.xid);
  assert.deepEqual(req.msg.serverId, SERVER);
  assert.deepEqual(req.msg.iaPd, [pd('2001:db8:100::', 0, 0, 0, 0)]);
  assert.equal(req.msg.elapsedTime, 0);
  h.clock.advance(200);
  h.deliver(h.answer(req.msg, MSG_REPLY, { iaPd: [pd()], ...DNS }));
  assert.deepEqual(h.take('prefix'), [
    {
      at: req.at + 200,
      type: 'prefix',
      prefix: '2001:db8:100::',
      length: 56,
      preferredLifetime: 3600,
      validLifetime: 7200,
      t1: 1800,
      t2: 2880,
      iaid: 1,
    },
  ]);
  assert.deepEqual(
    h.take('dns').map(({ servers, domains }) => ({ servers, domains })),
    [{ servers: ['2001:db8::53'], domains: ['example.com'] }],
  );
  const st = h.client.status();
  assert.equal(st.state, 'bound');
  assert.equal(st.server, '00:03:00:1b:fd:fd:fa:fa');
  assert.deepEqual(st.hintPrefix, { prefix: '2001:db8:100::', length: 56 });
  assert.equal(st.renewIn, 1800);
  // nothing more is sent until T1
  const n = h.sent.length;
  h.clock.advance(1799 * S);
  assert.equal(h.sent.length, n);
});

test('Advertise selection: collect until the first RT, highest preference wins; later ones are taken at once', () => {
  const h = setup({ initialDelay: false });
  h.apply(h.client.start());
  const sol = h.last();
  const serverB = hex('0003 0001 020000000099');
  h.deliver(h.answer(sol.msg, MSG_ADVERTISE, { preference: 10, iaPd: [pd('2001:db8:a00::')] }));
  h.deliver(h.answer(sol.msg, MSG_ADVERTISE, { serverId: serverB, preference: 50, iaPd: [pd('2001:db8:b00::')] }));
  h.deliver(h.answer(sol.msg, MSG_ADVERTISE, { preference: 20, iaPd: [pd('2001:db8:c00::')] }));
  assert.equal(h.ofType(MSG_REQUEST).length, 0, 'still collecting');
  h.clock.advance(1100);
  const req = h.ofType(MSG_REQUEST);
  assert.equal(req.length, 1);
  assert.ok(req[0]!.at > 1000 && req[0]!.at <= 1100);
  assert.deepEqual(req[0]!.msg.serverId, serverB);
  assert.equal(req[0]!.msg.iaPd[0]!.prefixes[0]!.prefix, '2001:db8:b00::');

  // no Advertise during the first RT: the next one is acted on without waiting
  const g = setup({ initialDelay: false });
  g.apply(g.client.start());
  g.clock.advance(1500);
  assert.equal(g.ofType(MSG_SOLICIT).length, 2);
  g.deliver(g.answer(g.last().msg, MSG_ADVERTISE, { preference: 0, iaPd: [pd()] }));
  assert.equal(g.last().msg.type, MSG_REQUEST);
});

test('an Advertise saying NoPrefixAvail is ignored and Solicit keeps backing off', () => {
  const h = setup({ initialDelay: false });
  h.apply(h.client.start());
  const noPrefix = pd('::', 0, 0, 0, 0, { prefixes: [], status: { code: STATUS_NO_PREFIX_AVAIL, message: 'none' } });
  h.deliver(h.answer(h.last().msg, MSG_ADVERTISE, { iaPd: [noPrefix] }));
  h.clock.advance(10 * S);
  assert.equal(h.ofType(MSG_REQUEST).length, 0);
  assert.equal(h.ofType(MSG_SOLICIT).length, 4);
  assert.equal(h.client.status().counters.ignored['advertise-without-leases'], 1);
  assert.equal(h.client.status().lastStatus?.name, 'NoPrefixAvail');
});

test('replies with the wrong xid, another client DUID or no Server ID are ignored and counted', () => {
  const h = setup({ initialDelay: false });
  h.apply(h.client.start());
  const sol = h.last().msg;
  h.deliver(h.answer({ ...sol, xid: sol.xid ^ 1 }, MSG_ADVERTISE, { iaPd: [pd()] }));
  h.deliver(h.answer({ ...sol, clientId: hex('0003 0001 02000000ffff') }, MSG_ADVERTISE, { iaPd: [pd()] }));
  h.deliver(h.answer({ ...sol, clientId: undefined }, MSG_ADVERTISE, { iaPd: [pd()] }));
  h.deliver(h.answer(sol, MSG_ADVERTISE, { serverId: undefined, iaPd: [pd()] }));
  const corrupt = h.answer(sol, MSG_ADVERTISE, { iaPd: [pd()] });
  corrupt[corrupt.length - 1] ^= 0xff;
  h.deliver(corrupt);
  h.apply(h.client.receiveMessage(emptyMessage(MSG_REPLY, sol.xid, { serverId: SERVER, clientId: DUID })));
  assert.equal(h.ofType(MSG_REQUEST).length, 0);
  assert.deepEqual(h.client.status().counters.ignored, {
    'wrong-xid': 1,
    'wrong-client-id': 2,
    'no-server-id': 1,
    malformed: 1,
    'unexpected-type': 1,
  });
});

test('T1 Renew, Reply extends; no answer -> Renew backoff, then Rebind at T2 without Server ID', () => {
  const h = bound();
  const t0 = h.clock.now();
  h.clock.advance(1800 * S);
  const ren = h.last();
  assert.equal(ren.msg.type, MSG_RENEW);
  assert.equal(ren.at, t0 + 1800 * S);
  assert.deepEqual(ren.msg.serverId, SERVER);
  assert.deepEqual(ren.msg.iaPd, [pd('2001:db8:100::', 0, 0, 0, 0)]);
  h.clock.advance(500);
  h.deliver(h.answer(ren.msg, MSG_REPLY, { iaPd: [pd()] }));
  assert.equal(h.client.state, 'bound');
  const renewed = h.take('prefix').at(-1)!;
  assert.equal(renewed.validLifetime, 7200);
  assert.equal(h.take('prefix-removed').length, 0);

  // next time the server stays silent (l2tpns after a restart, say)
  const t1 = h.clock.now();
  h.clock.advance(1800 * S);
  const renews = h.ofType(MSG_RENEW).filter((s) => s.at >= t1);
  assert.equal(renews[0]!.at, t1 + 1800 * S);
  h.clock.advance(1080 * S);
  const all = h.ofType(MSG_RENEW).filter((s) => s.at >= t1);
  const gaps = all.slice(1).map((s, i) => s.at - all[i]!.at);
  assert.ok(gaps[0]! >= 9000 && gaps[0]! <= 11000, `REN_TIMEOUT ${gaps[0]}`);
  assert.ok(gaps.every((g) => g <= 660 * S));
  const reb = h.ofType(MSG_REBIND);
  assert.equal(reb.length, 1);
  assert.equal(reb[0]!.at, t1 + 2880 * S, 'Rebind at T2');
  assert.equal(reb[0]!.msg.serverId, undefined);
  assert.notEqual(reb[0]!.msg.xid, all[0]!.msg.xid);
  assert.equal(h.client.state, 'rebinding');
  // l2tpns ignores Rebind: the prefix goes at its valid lifetime, then we solicit again with it as a hint
  h.clock.advance((7200 - 2880) * S - 1);
  assert.equal(h.take('prefix-removed').length, 0);
  h.clock.advance(1);
  assert.deepEqual(h.take('prefix-removed'), [
    { at: t1 + 7200 * S, type: 'prefix-removed', prefix: '2001:db8:100::', length: 56, reason: 'expired' },
  ]);
  h.clock.advance(5 * S);
  const sol = h.ofType(MSG_SOLICIT).at(-1)!;
  assert.ok(sol.at > t1 + 7200 * S);
  assert.deepEqual(sol.msg.iaPd[0]!.prefixes[0], {
    prefix: '2001:db8:100::',
    prefixLength: 56,
    preferredLifetime: 0,
    validLifetime: 0,
    unknown: [],
  });
  // a Reply to Rebind from any server would have been accepted
  assert.equal(h.client.state, 'soliciting');
});

test('a Reply to Rebind rebinds', () => {
  const h = bound();
  h.clock.advance(1800 * S);
  h.clock.advance(1080 * S);
  const reb = h.last();
  assert.equal(reb.msg.type, MSG_REBIND);
  h.deliver(h.answer(reb.msg, MSG_REPLY, { iaPd: [pd()] }));
  assert.equal(h.client.state, 'bound');
  assert.equal(h.client.status().renewIn, 1800);
});

test('NoPrefixAvail in a Renew Reply (lease level, as in odhcp6c#61) withdraws the prefix at once', () => {
  const h = bound();
  h.clock.advance(1800 * S);
  const ren = h.last();
  // lifetimes 0 and NoPrefixAvail on the IAPREFIX
  const ia = pd('2001:db8:100::', 0, 0, 1800, 2880);
  ia.prefixes[0]!.status = { code: STATUS_NO_PREFIX_AVAIL, message: 'gone' };
  h.deliver(h.answer(ren.msg, MSG_REPLY, { iaPd: [ia] }));
  assert.deepEqual(
    h.take('prefix-removed').map(({ prefix, reason, at }) => ({ prefix, reason, at })),
    [{ prefix: '2001:db8:100::', reason: 'withdrawn', at: ren.at }],
  );
  assert.equal(h.client.status().prefixes.length, 0);
  assert.equal(h.client.state, 'soliciting');
  assert.equal(h.take('failed').at(-1)!.terminal, false);
});

test('NoPrefixAvail at IA level or a lifetime of 0 in a Renew Reply also withdraws at once', () => {
  for (const ia of [
    pd('::', 0, 0, 0, 0, { prefixes: [], status: { code: STATUS_NO_PREFIX_AVAIL, message: '' } }),
    pd('2001:db8:100::', 0, 0),
  ]) {
    const h = bound();
    h.clock.advance(1800 * S);
    h.deliver(h.answer(h.last().msg, MSG_REPLY, { iaPd: [ia] }));
    assert.equal(h.take('prefix-removed').length, 1);
    assert.equal(h.client.status().prefixes.length, 0);
  }
});

test('prefix change in a Renew Reply: the old one is reported removed, the new one added', () => {
  const h = bound();
  h.clock.advance(1800 * S);
  h.deliver(h.answer(h.last().msg, MSG_REPLY, { iaPd: [pd('2001:db8:900::')] }));
  assert.deepEqual(
    h.take('prefix-removed').map(({ prefix, reason }) => ({ prefix, reason })),
    [{ prefix: '2001:db8:100::', reason: 'replaced' }],
  );
  assert.equal(h.take('prefix').at(-1)!.prefix, '2001:db8:900::');
  assert.deepEqual(h.client.status().hintPrefix, { prefix: '2001:db8:900::', length: 56 });
  assert.equal(h.client.state, 'bound');
});

test('NoBinding in a Renew Reply (l2tpns after a reconnect) leads to a Request', () => {
  const h = bound();
  h.clock.advance(1800 * S);
  h.deliver(
    h.answer(h.last().msg, MSG_REPLY, {
      iaPd: [pd('::', 0, 0, 0, 0, { prefixes: [], status: { code: STATUS_NO_BINDING, message: '' } })],
    }),
  );
  const req = h.last();
  assert.equal(req.msg.type, MSG_REQUEST);
  assert.deepEqual(req.msg.serverId, SERVER);
  assert.equal(req.msg.iaPd[0]!.prefixes[0]!.prefix, '2001:db8:100::');
  assert.equal(h.take('prefix-removed').length, 0);
  h.deliver(h.answer(req.msg, MSG_REPLY, { iaPd: [pd()] }));
  assert.equal(h.client.state, 'bound');
});

test('T1 and T2 of 0 mean 0.5 and 0.8 of the shortest preferred lifetime', () => {
  const h = bound({}, pd('2001:db8:100::', 1000, 2000, 0, 0));
  assert.equal(h.take('prefix')[0]!.t1, 500);
  assert.equal(h.take('prefix')[0]!.t2, 800);
  const t0 = h.clock.now();
  h.clock.advance(500 * S);
  assert.equal(h.last().msg.type, MSG_RENEW);
  assert.equal(h.last().at, t0 + 500 * S);
});

test('infinite T1/T2 never renew; an IA with T1 > T2 is discarded', () => {
  const h = bound({}, pd('2001:db8:100::', 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff));
  const n = h.sent.length;
  h.clock.advance(100 * 86400 * S);
  assert.equal(h.sent.length, n);
  assert.equal(h.client.status().prefixes[0]!.validLifetime, 0xffffffff);

  const g = setup({ initialDelay: false });
  g.apply(g.client.start());
  g.deliver(g.answer(g.last().msg, MSG_ADVERTISE, { iaPd: [pd('2001:db8:100::', 3600, 7200, 3000, 2000)] }));
  assert.equal(g.ofType(MSG_REQUEST).length, 0);
});

test('UnspecFail keeps the Request retransmitting; after REQ_MAX_RC it falls back to Solicit', () => {
  const h = setup({ initialDelay: false });
  h.apply(h.client.start());
  h.deliver(h.answer(h.last().msg, MSG_ADVERTISE, { iaPd: [pd()] }));
  const req = h.last().msg;
  h.deliver(h.answer(req, MSG_REPLY, { status: { code: STATUS_UNSPEC_FAIL, message: 'busy' } }));
  assert.equal(h.client.state, 'requesting');
  h.clock.advance(400 * S);
  const reqs = h.ofType(MSG_REQUEST);
  assert.equal(reqs.length, 10);
  const gaps = reqs.slice(1).map((s, i) => s.at - reqs[i]!.at);
  assert.ok(
    gaps.every((g) => g <= 33 * S),
    'REQ_MAX_RT caps the gaps',
  );
  assert.deepEqual(
    h.take('failed').map(({ reason, terminal }) => ({ reason, terminal })),
    [{ reason: 'request-timeout', terminal: false }],
  );
  assert.ok(h.ofType(MSG_SOLICIT).length >= 2);
});

test('NoPrefixAvail in the Reply to Request: nothing bound, Solicit again with growing hold-off', () => {
  const h = setup({ initialDelay: false });
  h.apply(h.client.start());
  const noPrefix = pd('::', 0, 0, 0, 0, { prefixes: [], status: { code: STATUS_NO_PREFIX_AVAIL, message: '' } });
  const holdOffs: number[] = [];
  for (let i = 0; i < 4; i++) {
    h.clock.advance(60 * S);
    h.deliver(h.answer(h.last().msg, MSG_ADVERTISE, { iaPd: [pd()] }));
    const req = h.last();
    h.deliver(h.answer(req.msg, MSG_REPLY, { iaPd: [noPrefix] }));
    h.clock.advance(60 * S);
    const next = h.ofType(MSG_SOLICIT).find((s) => s.at > req.at)!;
    holdOffs.push(next.at - req.at);
  }
  assert.equal(h.take('prefix').length, 0);
  assert.ok(h.take('failed').every((f) => f.reason === 'NoPrefixAvail' && !f.terminal));
  for (let i = 1; i < holdOffs.length; i++) assert.ok(holdOffs[i]! > holdOffs[i - 1]!, `hold-off grows: ${holdOffs}`);
});

test('Rapid Commit: a Reply to Solicit with Rapid Commit binds directly', () => {
  const h = setup({ initialDelay: false, rapidCommit: true });
  h.apply(h.client.start());
  const sol = h.last().msg;
  assert.equal(sol.rapidCommit, true);
  h.deliver(h.answer(sol, MSG_REPLY, { iaPd: [pd()] }));
  assert.equal(h.client.state, 'soliciting', 'a Reply without Rapid Commit is not a binding');
  h.deliver(h.answer(sol, MSG_REPLY, { rapidCommit: true, iaPd: [pd()] }));
  assert.equal(h.client.state, 'bound');
  assert.equal(h.ofType(MSG_REQUEST).length, 0);
});

test('IA_NA when the RA says M=1 (or always); addresses reported', () => {
  const h = setup({ initialDelay: false });
  h.client.raFlags(true);
  h.apply(h.client.start());
  const sol = h.last().msg;
  assert.equal(sol.iaNa.length, 1);
  const na = {
    iaid: 1,
    t1: 1800,
    t2: 2880,
    addresses: [{ address: '2001:db8:200::c633:6480:0:0', preferredLifetime: 3600, validLifetime: 7200, unknown: [] }],
    unknown: [],
  };
  h.deliver(h.answer(sol, MSG_ADVERTISE, { iaPd: [pd()], iaNa: [na] }));
  assert.equal(h.last().msg.iaNa[0]!.addresses[0]!.address, '2001:db8:200:0:c633:6480::');
  h.deliver(h.answer(h.last().msg, MSG_REPLY, { iaPd: [pd()], iaNa: [na] }));
  assert.deepEqual(
    h.take('address').map(({ address, prefixLength, validLifetime }) => ({ address, prefixLength, validLifetime })),
    [{ address: '2001:db8:200:0:c633:6480::', prefixLength: 128, validLifetime: 7200 }],
  );
  assert.equal(h.client.status().addresses.length, 1);
});

test('Release on shutdown: leases dropped at once, bounded retries, released even without a reply', () => {
  const h = bound();
  const t0 = h.clock.now();
  h.apply(h.client.release());
  assert.deepEqual(
    h.take('prefix-removed').map(({ reason, at }) => ({ reason, at })),
    [{ reason: 'released', at: t0 }],
  );
  assert.deepEqual(h.take('dns').at(-1)!.servers, []);
  h.clock.advance(60 * S);
  const rel = h.ofType(MSG_RELEASE);
  assert.equal(rel.length, 4);
  assert.deepEqual(rel[0]!.msg.serverId, SERVER);
  assert.deepEqual(rel[0]!.msg.iaPd, [pd('2001:db8:100::', 0, 0, 0, 0)]);
  const released = h.take('released');
  assert.equal(released.length, 1);
  assert.equal(released[0]!.acknowledged, false);
  assert.ok(
    released[0]!.at - t0 >= 13.5 * S && released[0]!.at - t0 <= 16.5 * S,
    `1+2+4+8 s with jitter: ${released[0]!.at - t0}`,
  );
  assert.equal(h.client.state, 'released');
  assert.equal(h.clock.size(), 0, 'no timer left behind');

  const g = bound();
  g.apply(g.client.release());
  g.deliver(g.answer(g.last().msg, MSG_REPLY, {}));
  assert.deepEqual(
    g.take('released').map((r) => r.acknowledged),
    [true],
  );
  assert.equal(g.ofType(MSG_RELEASE).length, 1);

  const idle = setup();
  assert.deepEqual(
    idle.client.release().filter((a) => a.type === 'released'),
    [{ type: 'released', acknowledged: false }],
  );
});

test('stop() drops everything without a message and leaves no timers', () => {
  const h = bound();
  const n = h.sent.length;
  h.apply(h.client.stop());
  assert.deepEqual(
    h.take('prefix-removed').map((r) => r.reason),
    ['stopped'],
  );
  h.clock.advance(86400 * S);
  assert.equal(h.sent.length, n);
  assert.equal(h.clock.size(), 0);
  // and it can start again, hinting the old prefix
  h.apply(h.client.start());
  h.clock.advance(S);
  assert.equal(h.last().msg.iaPd[0]!.prefixes[0]!.prefix, '2001:db8:100::');
});

test('stateless mode: Information-request, DNS from the Reply, refresh after the refresh time', () => {
  const h = setup({ mode: 'stateless' });
  h.apply(h.client.start());
  h.clock.advance(S);
  const inf = h.last().msg;
  assert.equal(inf.type, MSG_INFORMATION_REQUEST);
  assert.deepEqual(inf.iaPd, []);
  assert.ok(inf.oro!.includes(23) && inf.oro!.includes(24));
  // l2tpns echoes the Client ID; a reply without one is acceptable for Information-request
  h.deliver(h.answer({ ...inf, clientId: undefined }, MSG_REPLY, { ...DNS, informationRefreshTime: 700 }));
  assert.equal(h.client.state, 'informed');
  assert.deepEqual(
    h.take('dns').map(({ servers, domains }) => ({ servers, domains })),
    [{ servers: ['2001:db8::53'], domains: ['example.com'] }],
  );
  const t = h.clock.now();
  h.clock.advance(700 * S);
  const again = h.ofType(MSG_INFORMATION_REQUEST).filter((x) => x.at > t);
  assert.equal(again.length, 1);
  assert.equal(again[0]!.at, t + 700 * S);
  assert.notEqual(again[0]!.msg.xid, inf.xid);
});

// ------------------------------------------------------------ issue 16 items 1 and 2

const NA_ADDR = '2001:db8:200::1:2';
const na = (address = NA_ADDR) => ({
  iaid: 1,
  t1: 1800,
  t2: 2880,
  addresses: [{ address, preferredLifetime: 3600, validLifetime: 7200, unknown: [] }],
  unknown: [],
});

/** A host behind an SC that numbers by IA_NA: M=1, no IA_PD wanted. */
function hostBound() {
  const h = setup({ initialDelay: false, requestPrefix: false, requestAddress: 'always', prefixLengthHint: undefined, mode: 'stateless' });
  h.apply(h.client.start({ mode: hostDhcp6Mode(true, false) === 'address' ? 'stateful' : 'stateless' }));
  const sol = h.last().msg;
  assert.equal(sol.type, MSG_SOLICIT);
  assert.equal(sol.iaNa.length, 1, 'IA_NA solicited');
  assert.equal(sol.iaPd.length, 0, 'a host asks for no prefix');
  h.deliver(h.answer(sol, MSG_ADVERTISE, { iaNa: [na()] }));
  const req = h.last().msg;
  assert.equal(req.type, MSG_REQUEST, 'RFC 5571 5.3: the SI sends a Request');
  h.deliver(h.answer(req, MSG_REPLY, { iaNa: [na()], ...DNS }));
  assert.equal(h.client.state, 'bound');
  return h;
}

test('host mode: M=1 solicits and requests IA_NA; O=1 alone asks for information; M=O=0 probes with a bounded Solicit', () => {
  assert.equal(hostDhcp6Mode(true, false), 'address');
  assert.equal(hostDhcp6Mode(true, true), 'address');
  assert.equal(hostDhcp6Mode(false, true), 'information');
  assert.equal(hostDhcp6Mode(false, false), 'probe');
  const h = hostBound();
  assert.deepEqual(h.take('address').map((a) => a.address), [NA_ADDR]);
  // M=O=0: a few Solicits, then give up quietly.
  const p = setup({ initialDelay: false, requestPrefix: false, requestAddress: 'always', prefixLengthHint: undefined });
  p.apply(p.client.start({ mode: 'stateful', solicitMaxRc: HOST_PROBE_SOLICITS }));
  p.clock.advance(3600 * S);
  assert.equal(p.ofType(MSG_SOLICIT).length, HOST_PROBE_SOLICITS);
  assert.equal(p.client.state, 'failed');
});

test('Decline (RFC 8415 18.2.8): a duplicate IA_NA address is removed, Declined to the server, then Solicit again', () => {
  const h = hostBound();
  h.apply(h.client.decline(NA_ADDR));
  assert.deepEqual(h.take('address-removed').map((a) => [a.address, a.reason]), [[NA_ADDR, 'declined']]);
  const dec = h.last().msg;
  assert.equal(dec.type, MSG_DECLINE);
  assert.deepEqual(dec.serverId, SERVER);
  assert.deepEqual(dec.iaNa[0]!.addresses.map((a) => [a.address, a.validLifetime]), [[NA_ADDR, 0]]);
  assert.equal(h.client.state, 'declining');
  h.deliver(h.answer(dec, MSG_REPLY, {}));
  assert.equal(h.client.state, 'soliciting', 'nothing left: Solicit again on the backoff');
  h.clock.advance(10 * S);
  const sol = h.last().msg;
  assert.equal(sol.type, MSG_SOLICIT);
  // The same address offered again is not taken; another one is.
  h.deliver(h.answer(sol, MSG_ADVERTISE, { iaNa: [na()] }));
  assert.equal(h.last().msg.type, MSG_SOLICIT, 'an offer of the declined address alone is ignored');
  h.deliver(h.answer(sol, MSG_ADVERTISE, { iaNa: [na('2001:db8:200::1:3')] }));
  assert.deepEqual(h.last().msg.iaNa[0]!.addresses.map((a) => a.address), ['2001:db8:200::1:3']);
});

test('Decline without an answer is bounded by DEC_MAX_RC', () => {
  const h = hostBound();
  h.apply(h.client.decline(NA_ADDR));
  h.clock.advance(60 * S);
  assert.equal(h.ofType(MSG_DECLINE).length, 4);
  assert.notEqual(h.client.state, 'declining');
  assert.equal(h.client.decline('2001:db8::dead').length, 0, 'not ours: nothing to decline');
});

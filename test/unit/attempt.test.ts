import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Attempt, RETIRE_CAP_MS } from '../../src/agent/attempt';
import type { AttemptAction, AttemptInput, ConnectionEvent, Provision, Settle } from '../../src/agent/attempt-types';
import { resolveConfig } from '../../src/config/load';
import { decodeMessage, encodeData } from '../../src/l2tp/messages';
import { kindOf } from '../peer/emulator';
import { InProcessSc, type InProcessScOptions } from '../peer/sc-core';
import { FakeClock } from '../helpers/fake-clock';

/**
 * The Attempt core (the L2TP -> PPP -> RS/SLAAC/DHCPv6/DAD wiring of one attempt)
 * on a FakeClock against the in-process SC (test/peer/sc-core.ts): real L2TP, PPP,
 * RA and DHCPv6 bytes both ways, no socket, no TUN, no kernel. The harness plays the
 * driver's part literally: it carries out each action (datagrams one turn later,
 * timers on the clock, TUN and installer answers as inputs) and records them, so
 * each test reads the typed actions the core chose.
 */

const SC = { address: '192.0.2.1', port: 1701 };
const FROM = `${SC.address}:${SC.port}`;
const LOCAL = '192.0.2.2:40000';
const RA = { managed: false, other: false, prefix: '2001:db8:200::', routerLifetime: 1800 };

interface RigOptions {
  config?: Record<string, unknown>;
  sc?: InProcessScOptions;
  /** The TUN cannot be opened (ENODEV). */
  tunFails?: boolean;
  /** Leave `settle` unanswered until `releaseSettles` (the installer still busy): all, or those `hold` picks. */
  holdSettles?: boolean;
  hold?: (what: Settle) => boolean;
  /** Lose our datagrams of these kinds on the way (a lossy path, or an SC that stays silent). */
  drop?: (kind: string) => boolean;
}

function rig(o: RigOptions = {}) {
  const clock = new FakeClock();
  const queue: (() => void)[] = [];
  const actions: AttemptAction[] = [];
  const events: ConnectionEvent[] = [];
  const installs: Provision[] = [];
  const sent: { kind: string; bytes: Uint8Array }[] = [];
  const held: (() => void)[] = [];
  const globals = new Set<string>();
  let tunOpen = false;
  const sc: InProcessSc = new InProcessSc(
    { hostName: 'unit-sc', helloMs: 0, ...o.sc, ppp: { auth: 'chap', users: [{ name: 'cpe1', password: 'secret1' }], ra: RA, ...o.sc?.ppp } },
    clock,
    (bytes) => queue.push(() => feed({ type: 'datagram', bytes: Buffer.from(bytes), from: FROM })),
  );
  const { config } = resolveConfig({ sc: [SC.address], user: 'cpe1', mode: 'host', ncp: 'ipv6', ...o.config }, {});
  let seed = 0x2545f491;
  const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
  const core = new Attempt({
    config,
    secrets: { password: 'secret1' },
    duid: new Uint8Array([0, 3, 0, 1, 2, 0, 0, 0, 0, 1]),
    mtu: 1460,
    sc: SC,
    random: () => next() / 2 ** 32,
    randomBytes: (n) => Uint8Array.from({ length: n }, () => (next() >>> 16) & 0xff || 1),
  });

  function feed(ev: AttemptInput): void {
    for (const a of core.input(ev, clock.now())) act(a);
  }
  function act(a: AttemptAction): void {
    actions.push(a);
    switch (a.type) {
      case 'send': {
        const kind = kindOf(a.bytes);
        sent.push({ kind, bytes: a.bytes });
        if (o.drop?.(kind)) return;
        const copy = new Uint8Array(a.bytes);
        queue.push(() => sc.receive(copy, LOCAL));
        return;
      }
      case 'arm':
        return clock.set(a.key, a.at - clock.now(), () => feed({ type: 'timer', key: a.key }));
      case 'cancel':
        return clock.clear(a.key);
      case 'open-tun':
        queue.push(() => {
          tunOpen = !o.tunFails;
          feed(o.tunFails ? { type: 'tun-failed', message: 'No such device' } : { type: 'tun-opened' });
        });
        return;
      case 'close-tun':
        tunOpen = false;
        return;
      case 'install':
        installs.push(a.op);
        if (a.op.type === 'address') globals.add(a.op.address);
        if (a.op.type === 'remove-address') globals.delete(a.op.address);
        return;
      case 'settle': {
        const answer = () => feed({ type: 'settled', what: a.what, globalAddress: globals.size > 0 });
        if (o.holdSettles || o.hold?.(a.what)) held.push(answer);
        else queue.push(answer);
        return;
      }
      case 'event':
        events.push(a.event);
        return;
      default:
        return;
    }
  }
  /** Lets datagrams and due timers run, up to `ms` of fake time. */
  const run = (ms: number) => {
    const end = clock.now() + ms;
    for (;;) {
      for (let f = queue.shift(); f; f = queue.shift()) f();
      const due = clock.nextDue();
      if (due === undefined || due > end) break;
      clock.advance(Math.max(0, due - clock.now()));
    }
    if (clock.now() < end) clock.advance(end - clock.now());
    for (let f = queue.shift(); f; f = queue.shift()) f();
  };
  /** Runs until `pred` holds, at most `ms` of fake time. */
  const until = (pred: () => boolean, ms = 60_000) => {
    for (let t = 0; t < ms && !pred(); t += 50) run(50);
    assert.ok(pred(), `condition not reached; events: ${JSON.stringify(events.filter((e) => e.type !== 'progress'))}`);
  };
  const releaseSettles = () => {
    for (const f of held.splice(0)) queue.push(f);
    o.holdSettles = false;
    o.hold = undefined;
  };
  const isUp = () => events.some((e) => e.type === 'up');
  const down = () => events.find((e): e is Extract<ConnectionEvent, { type: 'down' }> => e.type === 'down')?.info;
  const progress = () => events.flatMap((e) => (e.type === 'progress' ? [e.message] : []));
  const of = <T extends AttemptAction['type']>(t: T) => actions.filter((a): a is Extract<AttemptAction, { type: T }> => a.type === t);
  const installed = <T extends Provision['type']>(t: T) => installs.filter((p): p is Extract<Provision, { type: T }> => p.type === t);
  return { clock, sc, core, feed, run, until, actions, events, installs, sent, isUp, down, progress, of, installed, releaseSettles, tunOpen: () => tunOpen };
}

type Rig = ReturnType<typeof rig>;

function open(r: Rig): void {
  r.feed({ type: 'open' });
}

function upRig(o: RigOptions = {}): Rig {
  const r = rig(o);
  open(r);
  r.until(r.isUp);
  return r;
}

test('tunnel up, then session up, then PPP: no PPP frame before the ICCN; PPP frames go out as L2TP data of our session', () => {
  const r = rig();
  open(r);
  r.until(() => (r.sc.counters.ppp['lcp-up'] ?? 0) > 0);
  const kinds = r.sent.map((s) => s.kind);
  assert.deepEqual(kinds.slice(0, 2), ['SCCRQ', 'SCCCN'], kinds.join(' '));
  const firstData = kinds.indexOf('data');
  assert.ok(firstData > kinds.indexOf('ICCN') && kinds.indexOf('ICCN') > kinds.indexOf('ICRQ'), kinds.join(' '));
  const msgs = r.progress();
  assert.ok(msgs.findIndex((m) => m.startsWith('tunnel up')) < msgs.findIndex((m) => m.startsWith('session up')), msgs.join(' | '));
  // The frame names our session: the SC's PPP took it (LCP opened on the SC's side).
  const st = r.core.status();
  const data = decodeMessage(r.sent[firstData]!.bytes);
  assert.equal(data.kind, 'data');
  assert.equal(data.sessionId, st.lac.session.remoteId);
  assert.equal(st.setup.at.tunnel !== null && st.setup.at.session !== null, true);
});

test('host, RA with M=O=0: IPV6CP up opens the TUN, then tun-up with the link-local, RS, SLAAC address, default route; "up" only once the installer settled', () => {
  const r = rig({ holdSettles: true });
  open(r);
  r.until(() => r.installed('default-route').length > 0);
  const types = r.actions.map((a) => (a.type === 'install' ? `install:${a.op.type}` : a.type));
  const openAt = types.indexOf('open-tun');
  const tunUpAt = types.indexOf('install:tun-up');
  assert.ok(openAt >= 0 && tunUpAt > openAt, 'the TUN is opened before it is configured');
  const tunUp = r.installed('tun-up')[0]!;
  assert.match(tunUp.linkLocal ?? '', /^fe80::/);
  assert.ok((r.sc.counters.ppp.rs ?? 0) >= 1, 'RS reached the SC');
  const addr = r.installed('address')[0]!;
  assert.equal(addr.source, 'slaac');
  assert.ok(addr.address.startsWith('2001:db8:200:'), addr.address);
  assert.deepEqual(r.installed('default-route')[0], { type: 'default-route', present: true });
  // Everything is queued in the installer but not in the kernel yet: not usable, not "up".
  r.run(2000);
  assert.equal(r.isUp(), false);
  r.releaseSettles();
  r.run(0);
  assert.ok(r.isUp());
  assert.deepEqual(
    r.events.find((e) => e.type === 'up'),
    { type: 'up', degraded: null },
  );
  // The M=O=0 DHCPv6 probe (issue 16 item 1) went out, but "up" did not wait for it.
  assert.ok((r.sc.counters.ppp['dhcp:Solicit'] ?? 0) >= 1);
});

for (const what of ['address', 'default-route'] as const) {
  test(`host: "up" waits for the ${what} to be in the kernel, whatever else is`, () => {
    const r = rig({ hold: (w) => w === what });
    open(r);
    r.until(() => r.installed('default-route').length > 0 && r.installed('address').length > 0);
    r.run(3000);
    assert.equal(r.isUp(), false);
    r.releaseSettles();
    r.run(0);
    assert.ok(r.isUp());
  });
}

test('host, RA with O=1: DHCPv6 Information-request, DNS from DHCPv6; "up" waits for it', () => {
  const r = upRig({ sc: { ppp: { ra: { ...RA, other: true }, dhcp: { dns: ['2001:db8::53'] } } } });
  assert.ok((r.sc.counters.ppp['dhcp:Information-Request'] ?? 0) >= 1, JSON.stringify(r.sc.counters.ppp));
  const dns = r.installed('dns').find((d) => d.source === 'dhcp6');
  assert.deepEqual(dns?.servers, ['2001:db8::53']);
  const upAt = r.actions.findIndex((a) => a.type === 'event' && a.event.type === 'up');
  const dnsAt = r.actions.findIndex((a) => a.type === 'install' && a.op.type === 'dns' && a.op.source === 'dhcp6');
  assert.ok(dnsAt < upAt, 'DNS before up');
});

test('host, RA with M=1 and no autonomous PIO: the IA_NA address is installed as /128 after DAD (optimistic) and is what "up" waits for', () => {
  const r = upRig({
    sc: { ppp: { ra: { ...RA, managed: true, autonomous: false }, dhcp: { addresses: ['2001:db8:200::77'], dns: ['2001:db8::53'] } } },
  });
  assert.equal(r.installed('address').filter((a) => a.source === 'slaac').length, 0);
  const na = r.installed('address').find((a) => a.source === 'dhcp6');
  assert.deepEqual([na?.address, na?.prefixLength], ['2001:db8:200::77', 128]);
  assert.ok(r.progress().some((m) => m.includes('2001:db8:200::77/128 (DHCPv6')));
  assert.ok((r.sc.counters.ppp['dhcp:Request'] ?? 0) + (r.sc.counters.ppp['dhcp:Solicit'] ?? 0) >= 1);
});

test('DAD: an IA_NA address the SC side defends is removed and Declined, and the next one is used', () => {
  const r = upRig({
    config: { optimisticDad: false },
    sc: { ppp: { ra: { ...RA, managed: true, autonomous: false }, dhcp: { addresses: ['2001:db8:200::66', '2001:db8:200::67'], defend: ['2001:db8:200::66'] } } },
  });
  assert.ok((r.sc.counters.ppp['dhcp:Decline'] ?? 0) >= 1, JSON.stringify(r.sc.counters.ppp));
  const na = r.installed('address').filter((a) => a.source === 'dhcp6').map((a) => a.address);
  assert.deepEqual(na, ['2001:db8:200::67'], 'without Optimistic DAD the duplicate is never installed');
});

test('router: IA_PD whatever the RA flags; the prefix is installed, reported, and "up" waits for the LANs (settled)', () => {
  const r = rig({ config: { mode: 'router' }, sc: { ppp: { dhcp: { prefix: '2001:db8:100::/56' } } }, holdSettles: true });
  open(r);
  r.until(() => r.installed('delegated-prefix').length > 0);
  const pd = r.installed('delegated-prefix')[0]!;
  assert.deepEqual([pd.prefix, pd.length], ['2001:db8:100::', 56]);
  assert.ok(r.events.some((e) => e.type === 'prefix' && e.prefix.prefix === '2001:db8:100::'));
  r.run(1000);
  assert.equal(r.isUp(), false, 'not before the installer has numbered the LANs');
  r.releaseSettles();
  r.until(r.isUp);
  assert.equal(r.core.status().setup.degraded, null);
});

test('IPCP up carrying IPv4: the TUN opens, tun-up without link-local, the IPv4 address installed; "up" after it settled', () => {
  const r = upRig({ config: { ncp: 'ipv4' }, sc: { ppp: { ipcp: { local: '198.51.100.1', peer: '198.51.100.2', dns: ['198.51.100.53'] } } } });
  assert.equal(r.of('open-tun').length, 1);
  assert.deepEqual(r.installed('tun-up').map((t) => t.linkLocal), [null]);
  const v4 = r.installed('ipv4')[0];
  assert.equal(v4?.address, '198.51.100.2');
  assert.deepEqual(v4?.dns, ['198.51.100.53']);
  assert.ok(r.progress().some((m) => m.startsWith('IPCP up')));
});

test('MTU: the SC\'s MRU lowers it at NCP up, then an RA MTU lowers it further (TUN, data path and SLAAC follow)', () => {
  const r = upRig({ sc: { ppp: { mru: 1400, ra: { ...RA, mtu: 1380 } } } });
  const mtus = r.of('set-mtu').map((a) => a.mtu);
  assert.deepEqual(mtus, [1400, 1380]);
  assert.equal(r.installed('tun-up')[0]?.mtu, 1400);
  assert.equal(r.installed('tun-mtu').at(-1)?.mtu, 1380);
  assert.deepEqual(r.core.status().mtu, { mtu: 1380, limitedBy: r.core.status().mtu.limitedBy });
});

test('MTU: the SC starts sequencing its data (Ns present): 4 more header bytes, the MTU derived from the WAN drops by 4', () => {
  const r = upRig();
  assert.equal(r.core.status().mtu.mtu, 1460);
  const st = r.core.status().lac;
  // An LCP Echo-Request in a sequenced data message, as an SC that turns sequencing on sends.
  const echo = Buffer.from([0xff, 0x03, 0xc0, 0x21, 0x09, 0x01, 0x00, 0x08, 0, 0, 0, 0]);
  r.feed({ type: 'datagram', bytes: encodeData({ tunnelId: st.tunnel.localId, sessionId: st.session.localId!, ns: 0 }, echo), from: FROM });
  assert.equal(r.of('set-mtu').at(-1)?.mtu, 1456);
  assert.equal(r.installed('tun-mtu').at(-1)?.mtu, 1456);
});

test('authentication rejected by CHAP Failure: down, layer auth, permanent', () => {
  const r = rig({ sc: { ppp: { authFailMessage: 'bad password' } } });
  open(r);
  r.until(() => r.down() !== undefined);
  const d = r.down()!;
  assert.equal(d.layer, 'auth');
  assert.equal(d.permanent, true);
  assert.match(d.reason, /bad password/);
});

for (const [name, rc, want] of [
  ['result 2 error 0: a login rejection (l2tpns)', { result: 2, error: 0 }, { layer: 'auth', permanent: true, retryElsewhere: undefined }],
  ['result 4 (temporary lack of facilities): transient', { result: 4 }, { layer: 'session', permanent: false, retryElsewhere: false }],
  ['result 2 error 7 (try another): try elsewhere', { result: 2, error: 7 }, { layer: 'session', permanent: false, retryElsewhere: true }],
  ['result 5 (permanent lack of facilities): permanent', { result: 5 }, { layer: 'session', permanent: true, retryElsewhere: false }],
] as const) {
  test(`CDN while authenticating, ${name}`, () => {
    const r = rig({ sc: { ppp: { authHold: 1 } } });
    open(r);
    r.until(() => r.core.status().setup.phase === 'auth' && (r.sc.counters.ppp['auth-pending'] ?? 0) > 0);
    assert.ok(r.sc.cdn(rc));
    r.run(100);
    const d = r.down();
    assert.ok(d, 'down');
    assert.deepEqual({ layer: d.layer, permanent: d.permanent, retryElsewhere: d.retryElsewhere }, want, d.reason);
    assert.match(d.reason, want.layer === 'auth' ? /^authentication failed: the SC closed the session during authentication/ : /not a login rejection/);
  });
}

test('phase deadline: a login the SC never decides ends the attempt at authTimeout; stop then sends StopCCN result 2 naming it', () => {
  const r = rig({ config: { authTimeout: 7 }, sc: { ppp: { authHold: 1 } } });
  open(r);
  r.until(() => r.core.status().setup.phase === 'auth');
  const t0 = r.clock.now();
  r.until(() => r.down() !== undefined, 10_000);
  assert.ok(Math.abs(r.clock.now() - t0 - 7000) <= 100, `${r.clock.now() - t0} ms`);
  const d = r.down()!;
  assert.equal(d.layer, 'auth');
  assert.match(d.reason, /authentication did not finish within 7 s/);
  r.feed({ type: 'stop', release: true, budgetMs: 2000 });
  r.run(100);
  const stop = r.sent.find((s) => s.kind === 'StopCCN');
  assert.ok(stop, r.sent.map((s) => s.kind).join(' '));
  const m = decodeMessage(stop.bytes);
  assert.ok(m.kind === 'control');
  assert.equal(m.message?.values.resultCode?.result, 2);
  assert.match(m.message?.values.resultCode?.message ?? '', /authentication did not finish/);
});

test('phase deadline: no SCCRP at all ends the attempt at sccrpTimeout (layer tunnel)', () => {
  const r = rig({ config: { sccrpTimeout: 5 }, drop: (k) => k === 'SCCRQ' });
  open(r);
  r.until(() => r.down() !== undefined, 10_000);
  assert.equal(r.down()?.layer, 'tunnel');
  assert.equal(r.clock.now() >= 5000 && r.clock.now() < 5100, true, `${r.clock.now()}`);
});

test('stop with release (router): DHCPv6 Release, then LCP Terminate, then StopCCN; stopped, then closed once acknowledged', () => {
  const r = upRig({ config: { mode: 'router' }, sc: { ppp: { dhcp: { prefix: '2001:db8:100::/56' } } } });
  const from = r.actions.length;
  r.feed({ type: 'stop', release: true, budgetMs: 3000 });
  const t0 = r.clock.now();
  r.until(() => r.of('stopped').length > 0, 3000);
  assert.ok(r.clock.now() - t0 < 1000, 'each goodbye answered: no wait spent');
  assert.equal(r.sc.unacknowledged + r.core.status().lac.tunnel.unacknowledged, 0, 'stopped once our StopCCN was acknowledged');
  // Our StopCCN is acknowledged; the tunnel's end lingers (RFC 2661 5.7) before `closed`.
  r.until(() => r.of('closed').length > 0, RETIRE_CAP_MS);
  const after = r.actions.slice(from).map((a) => a.type);
  assert.ok(after.indexOf('stopped') < after.indexOf('closed'));
  assert.ok((r.sc.counters.ppp['dhcp:Release'] ?? 0) >= 1, 'Release reached the SC');
  assert.ok((r.sc.counters.ppp.terminate ?? 0) >= 1, 'LCP Terminate reached the SC');
  assert.equal(r.sc.counters.rx.StopCCN, 1);
  // Order on the wire: Release (data) and Terminate (data) before the StopCCN.
  const kinds = r.sent.map((s) => s.kind);
  assert.ok(kinds.lastIndexOf('data') < kinds.indexOf('StopCCN'));
  assert.equal(r.tunOpen(), false, 'TUN closed');
  assert.equal(r.clock.size(), 0, 'no timer left');
});

test('stop without release (a reconnect): no DHCPv6 Release, still LCP Terminate and StopCCN', () => {
  const r = upRig({ config: { mode: 'router' }, sc: { ppp: { dhcp: { prefix: '2001:db8:100::/56' } } } });
  r.feed({ type: 'stop', release: false, budgetMs: 3000 });
  r.until(() => r.of('stopped').length > 0, 3000);
  assert.equal(r.sc.counters.ppp['dhcp:Release'] ?? 0, 0);
  assert.ok((r.sc.counters.ppp.terminate ?? 0) >= 1);
  assert.equal(r.sc.counters.rx.StopCCN, 1);
});

test('stop when the StopCCN is never acknowledged: stopped at the budget, retransmitted meanwhile, closed at the retirement cap', () => {
  const r = upRig({ drop: (k) => k === 'StopCCN' });
  const t0 = r.clock.now();
  r.feed({ type: 'stop', release: true, budgetMs: 2500 });
  r.until(() => r.of('stopped').length > 0, 5000);
  const took = r.clock.now() - t0;
  assert.ok(took >= 2500 && took <= 2550, `waited for the ack until the budget: ${took} ms`);
  assert.equal(r.of('closed').length, 0, 'the tunnel end still retransmits');
  r.run(RETIRE_CAP_MS + 1000);
  assert.ok(r.sent.filter((s) => s.kind === 'StopCCN').length >= 2, 'retransmitted');
  assert.equal(r.of('closed').length, 1);
  assert.equal(r.clock.size(), 0);
});

test('TUN that cannot be opened: down at layer ppp naming the device; no address installed', () => {
  const r = rig({ tunFails: true });
  open(r);
  r.until(() => r.down() !== undefined);
  assert.equal(r.down()?.layer, 'ppp');
  assert.match(r.down()!.reason, /cannot open TUN device .*No such device/);
  assert.equal(r.installs.length, 0);
});

test('no prefix from the SC within provisionWait: up, degraded, naming it; a core never sees a timer of another', () => {
  const r = rig({ config: { mode: 'router', provisionWait: 4 } });
  open(r);
  r.until(r.isUp, 30_000);
  const up = r.events.find((e) => e.type === 'up');
  assert.match(up && up.type === 'up' ? (up.degraded ?? '') : '', /no delegated prefix/);
  for (const a of r.of('arm')) assert.match(a.key, /^(l2tp|ppp|rs|slaac|dhcp6|dad|setup|stop|retire):/);
});

/**
 * The whole PPP link against an in-test peer scripted after l2tpns (see
 * /work/shared/notes/l2tpns.md): LCP with MRRU/Endpoint-Discriminator, CHAP-MD5,
 * IPCP first (mandatory there), IPV6CP started by the SC only after IPCP opened.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { applyTimer } from '../../src/core/scheduler';
import {
  CODE,
  decodeFrame,
  decodeOptions,
  decodePacket,
  encodeFrame,
  encodeOptions,
  encodePacket,
  opt,
  PROTO,
  type PppOption,
  u16,
  u32,
} from '../../src/ppp/frame';
import { ipv4ToBuffer } from '../../src/ppp/ipcp';
import { type LinkAction, type LinkConfig, PppLink } from '../../src/ppp/link';
import { FakeClock } from '../helpers/fake-clock';
import { seqRandom } from '../helpers/ppp';

interface PeerOptions {
  secret?: string;
  ipv6cp?: boolean; // false: Protocol-Reject IPV6CP as l2tpns does without ipv6_prefix
  startsIpcp?: boolean; // l2tpns sends its IPCP ConfReq right after authentication
  answerEcho?: boolean;
}

/** A scripted SC in the manner of l2tpns. */
class L2tpnsPeer {
  readonly out: Buffer[] = [];
  readonly seen: { protocol: number; code: number }[] = [];
  lcpOptions: PppOption[] = [
    opt(1, u16(1462)),
    opt(3, [0xc2, 0x23, 0x05]),
    opt(5, u32(0x0badcafe)),
    opt(17, u16(1614)),
    opt(19, [2, 198, 51, 100, 1]),
  ];
  private id = 1;
  private lcpAckedByUs = false;
  private lcpAckedByPeer = false;
  private ipcpAckedByUs = false;
  private ipcpAckedByPeer = false;
  private ipcpStarted = false;
  private challenge = Buffer.alloc(16, 0x5a);
  private chapId = 0x40;
  readonly o: Required<PeerOptions>;

  constructor(o: PeerOptions = {}) {
    this.o = { secret: 'secret1', ipv6cp: true, startsIpcp: true, answerEcho: true, ...o };
  }

  private send(protocol: number, code: number, id: number, data: Buffer = Buffer.alloc(0)) {
    this.out.push(encodeFrame(protocol, encodePacket(code, id, data)));
  }

  start() {
    this.send(PROTO.LCP, CODE.CONF_REQ, this.id++, encodeOptions(this.lcpOptions));
  }

  private lcpCheck() {
    if (this.lcpAckedByUs && this.lcpAckedByPeer) {
      this.send(PROTO.CHAP, 1, this.chapId, Buffer.concat([Buffer.from([16]), this.challenge, Buffer.from('lns.example')]));
    }
  }

  private startIpcp() {
    if (this.ipcpStarted) return;
    this.ipcpStarted = true;
    this.send(PROTO.IPCP, CODE.CONF_REQ, this.id++, encodeOptions([opt(3, ipv4ToBuffer('198.51.100.1'))]));
  }

  private ipcpCheck() {
    if (this.ipcpAckedByUs && this.ipcpAckedByPeer && this.o.ipv6cp) {
      this.send(PROTO.IPV6CP, CODE.CONF_REQ, this.id++, encodeOptions([opt(1, Buffer.from('0000000000000001', 'hex'))]));
    }
  }

  receive(frame: Buffer) {
    const { protocol, payload } = decodeFrame(frame);
    if (protocol === PROTO.IPV6 || protocol === PROTO.IPV4) return;
    const p = decodePacket(payload);
    this.seen.push({ protocol, code: p.code });
    if (protocol === PROTO.LCP) {
      if (p.code === CODE.CONF_REQ) {
        this.send(PROTO.LCP, CODE.CONF_ACK, p.id, p.data);
        this.lcpAckedByPeer = true;
        this.lcpCheck();
      } else if (p.code === CODE.CONF_REJ) {
        const rejected = new Set(decodeOptions(p.data).map((o) => o.type));
        this.lcpOptions = this.lcpOptions.filter((o) => !rejected.has(o.type));
        this.start();
      } else if (p.code === CODE.CONF_ACK) {
        this.lcpAckedByUs = true;
        this.lcpCheck();
      } else if (p.code === CODE.ECHO_REQ && this.o.answerEcho) {
        this.send(PROTO.LCP, CODE.ECHO_REPLY, p.id, u32(0x0badcafe));
      } else if (p.code === CODE.TERM_REQ) {
        this.send(PROTO.LCP, CODE.TERM_ACK, p.id);
      }
    } else if (protocol === PROTO.CHAP && p.code === 2) {
      const expect = createHash('md5')
        .update(Buffer.concat([Buffer.from([p.id]), Buffer.from(this.o.secret), this.challenge]))
        .digest();
      // l2tpns answers a RADIUS reject with a CDN only: no CHAP Failure.
      if (!expect.equals(p.data.subarray(1, 17))) return;
      this.send(PROTO.CHAP, 3, p.id, Buffer.from('Welcome'));
      if (this.o.startsIpcp) this.startIpcp();
    } else if (protocol === PROTO.IPCP) {
      if (p.code === CODE.CONF_REQ) {
        const want: Record<number, string> = { 3: '198.51.100.128', 129: '192.0.2.53', 131: '192.0.2.54' };
        const opts = decodeOptions(p.data);
        const nak = opts
          .filter((o) => want[o.type] && !o.data.equals(ipv4ToBuffer(want[o.type]!)))
          .map((o) => opt(o.type, ipv4ToBuffer(want[o.type]!)));
        if (nak.length) this.send(PROTO.IPCP, CODE.CONF_NAK, p.id, encodeOptions(nak));
        else {
          this.send(PROTO.IPCP, CODE.CONF_ACK, p.id, p.data);
          this.ipcpAckedByPeer = true;
          this.startIpcp();
          this.ipcpCheck();
        }
      } else if (p.code === CODE.CONF_ACK) {
        this.ipcpAckedByUs = true;
        this.ipcpCheck();
      }
    } else if (protocol === PROTO.IPV6CP) {
      if (!this.o.ipv6cp) {
        this.send(PROTO.LCP, CODE.PROTO_REJ, this.id++, Buffer.concat([u16(PROTO.IPV6CP), payload]));
        return;
      }
      if (p.code === CODE.CONF_REQ) {
        const assigned = Buffer.from('c633648000000000', 'hex');
        const o = decodeOptions(p.data).find((x) => x.type === 1);
        if (o && !o.data.equals(assigned)) this.send(PROTO.IPV6CP, CODE.CONF_NAK, p.id, encodeOptions([opt(1, assigned)]));
        else this.send(PROTO.IPV6CP, CODE.CONF_ACK, p.id, p.data);
      }
    }
  }
}

const creds = { username: 'cpe1', password: 'secret1' };

/** Runs link and peer on one fake clock, delivering frames in order. */
function world(peer: L2tpnsPeer, cfg: Partial<LinkConfig> = {}) {
  const clock = new FakeClock();
  const link = new PppLink({ randomBytes: seqRandom(11), credentials: creds, mru: 1460, ...cfg });
  const events: LinkAction[] = [];
  let cut = false; // simulates a dead SC
  const take = (acts: LinkAction[]) => {
    for (const a of acts) {
      if (a.type === 'send') {
        if (!cut) peer.receive(a.frame);
      } else if (a.type === 'timer-start' || a.type === 'timer-stop') {
        applyTimer(clock, 'ppp', a, (t) => take(link.timerFired(t, clock.now())));
      } else events.push(a);
    }
    pump();
  };
  const pump = () => {
    while (peer.out.length > 0) {
      const f = peer.out.shift()!;
      if (!cut) take(link.receive(f, clock.now()));
    }
  };
  return {
    clock,
    link,
    events,
    take,
    start() {
      take(link.lowerUp(clock.now()));
      peer.start();
      pump();
    },
    cut() {
      cut = true;
    },
    of<T extends LinkAction['type']>(type: T) {
      return events.filter((e) => e.type === type) as Extract<LinkAction, { type: T }>[];
    },
  };
}

test('full link vs l2tpns-like SC, policy ipv6: LCP -> CHAP -> IPCP (not carrying traffic) -> IPV6CP', () => {
  const peer = new L2tpnsPeer();
  const w = world(peer);
  w.start();
  assert.equal(w.link.phase, 'open');
  const ups = w.of('ncp-up');
  assert.deepEqual(
    ups.map((u) => u.ncp),
    ['ipcp', 'ipv6cp'],
    'IPCP opens first, as l2tpns holds IPV6CP back',
  );
  const v4 = ups[0]!;
  assert.equal(v4.ncp, 'ipcp');
  if (v4.ncp === 'ipcp') {
    assert.deepEqual(v4.result, {
      address: '198.51.100.128',
      peer: '198.51.100.1',
      dns: ['192.0.2.53', '192.0.2.54'],
      carryTraffic: false,
    });
  }
  const v6 = ups[1]!;
  if (v6.ncp === 'ipv6cp') {
    assert.deepEqual(v6.result.ourIid, Buffer.from('c633648000000000', 'hex'));
    assert.deepEqual(v6.result.peerIid, Buffer.from('0000000000000001', 'hex'));
  }
  assert.deepEqual(w.of('auth-ok'), [{ type: 'auth-ok', protocol: 'chap-md5', message: 'Welcome' }]);
  // We Config-Rejected MRRU and Endpoint Discriminator exactly once.
  assert.equal(peer.seen.filter((s) => s.protocol === PROTO.LCP && s.code === CODE.CONF_REJ).length, 1);

  const st = w.link.status();
  assert.equal(st.lcp, 'Opened');
  assert.equal(st.ipv6cp, 'Opened');
  assert.equal(st.ipcp, 'Opened');
  assert.equal(st.negotiated.peerMru, 1462);
  assert.equal(st.negotiated.ourMru, 1460);
  assert.equal(st.negotiated.authProtocol, 'chap-md5');
  assert.equal(st.negotiated.ourIid, 'c633:6480:0:0');
  assert.equal(st.negotiated.peerIid, '0:0:0:1');
  assert.equal(st.negotiated.peerMagic, 0x0badcafe);
  assert.equal(st.auth?.state, 'success');

  // Data: IPv6 flows both ways; IPv4 is not carried under policy ipv6.
  const v6pkt = Buffer.from([0x60, 0, 0, 0]);
  w.take(w.link.receive(encodeFrame(PROTO.IPV6, v6pkt), w.clock.now()));
  assert.deepEqual(w.of('data'), [{ type: 'data', protocol: PROTO.IPV6, payload: v6pkt }]);
  assert.deepEqual(w.link.sendData(PROTO.IPV6, v6pkt), encodeFrame(PROTO.IPV6, v6pkt));
  w.take(w.link.receive(encodeFrame(PROTO.IPV4, Buffer.from([0x45])), w.clock.now()));
  assert.equal(w.of('data').length, 1);
  assert.equal(w.link.sendData(PROTO.IPV4, Buffer.from([0x45])), null);
  const drops = w.link.status().counters.drops;
  assert.equal(drops['rx-ipv4-not-carried'], 1);
  assert.equal(drops['tx-ipv4-not-carried'], 1);

  // Keepalive runs: an echo after 30 s, answered, RTT recorded.
  w.clock.advance(30_000);
  assert.equal(w.link.status().echo.replies, 1);
  assert.equal(w.link.status().echo.lastRttMs, 0);

  // Administrative close: Terminate exchange, then closed.
  w.take(w.link.close('user down', w.clock.now()));
  assert.deepEqual(w.of('down'), [{ type: 'down', reason: 'user down' }]);
  assert.deepEqual(w.of('closed'), [{ type: 'closed', reason: 'user down' }]);
  assert.equal(w.link.phase, 'dead');
  assert.equal(w.clock.size(), 0, 'no timers left');
});

test('policy ipv6 against an SC that waits for our IPCP: the fallback timer starts IPCP', () => {
  const peer = new L2tpnsPeer({ startsIpcp: false });
  const w = world(peer, { ipcpFallbackMs: 5000 });
  w.start();
  assert.equal(w.link.phase, 'network');
  assert.equal(w.of('ncp-up').length, 0);
  w.clock.advance(5000);
  assert.deepEqual(
    w.of('ncp-up').map((u) => u.ncp),
    ['ipcp', 'ipv6cp'],
  );
  assert.equal(w.link.phase, 'open');
});

test('Protocol-Reject of IPV6CP ends the attempt with a clear reason', () => {
  const peer = new L2tpnsPeer({ ipv6cp: false });
  const w = world(peer);
  w.start();
  const down = w.of('down');
  assert.equal(down.length, 1);
  assert.match(down[0]!.reason, /ipv6cp.*Protocol-Reject/);
  assert.equal(w.of('closed').length, 1);
  assert.equal(w.link.phase, 'dead');
});

test('policy ipv4: IPCP only, IPv4 carried, IPV6CP from the peer Protocol-Rejected', () => {
  const peer = new L2tpnsPeer();
  const w = world(peer, { policy: 'ipv4' });
  w.start();
  const ups = w.of('ncp-up');
  assert.deepEqual(
    ups.map((u) => u.ncp),
    ['ipcp'],
  );
  if (ups[0]!.ncp === 'ipcp') assert.equal(ups[0]!.result.carryTraffic, true);
  assert.ok(peer.seen.some((s) => s.protocol === PROTO.LCP && s.code === CODE.PROTO_REJ));
  assert.equal(w.link.status().ipv6cp, 'Initial');
  const v4 = Buffer.from([0x45, 0]);
  w.take(w.link.receive(encodeFrame(PROTO.IPV4, v4), w.clock.now()));
  assert.deepEqual(w.of('data'), [{ type: 'data', protocol: PROTO.IPV4, payload: v4 }]);
});

test('authentication rejected silently (l2tpns sends only a CDN): auth-failed "no response", link closes', () => {
  const peer = new L2tpnsPeer({ secret: 'other' });
  const w = world(peer, { chapTimeoutMs: 20_000 });
  w.start();
  assert.equal(w.link.phase, 'authenticate');
  w.clock.advance(20_000);
  assert.deepEqual(w.of('auth-failed'), [{ type: 'auth-failed', message: 'no response' }]);
  assert.match(w.of('down')[0]!.reason, /auth-failed: no response/);
  assert.equal(w.of('closed').length, 1);
});

test('dead SC: echo timeout brings the link down with reason echo-timeout', () => {
  const peer = new L2tpnsPeer();
  const w = world(peer, { echo: { intervalMs: 10_000, failures: 3 } });
  w.start();
  assert.equal(w.link.phase, 'open');
  w.cut();
  w.clock.advance(39_999);
  assert.equal(w.of('down').length, 0);
  w.clock.advance(1);
  assert.deepEqual(w.of('down'), [{ type: 'down', reason: 'echo-timeout' }]);
  w.clock.advance(10_000);
  assert.equal(w.of('closed').length, 1);
});

test('frames before LCP is open are dropped and counted; unknown protocols are Protocol-Rejected once open', () => {
  const peer = new L2tpnsPeer();
  const w = world(peer);
  w.take(w.link.lowerUp(0));
  w.take(w.link.receive(encodeFrame(PROTO.IPV6, Buffer.from([0x60])), 0));
  w.take(w.link.receive(Buffer.from([0xff, 0x03, 0xc0]), 0));
  const drops = w.link.status().counters.drops;
  assert.equal(drops['non-lcp-before-lcp-opened'], 1);
  assert.equal(drops['malformed-frame.short-frame'], 1);
  peer.start();
  w.take([]);
  assert.equal(w.link.phase, 'open');
  w.take(w.link.receive(encodeFrame(0x80fd, Buffer.from([1, 1, 0, 4])), 0)); // CCP
  assert.ok(peer.seen.some((s) => s.protocol === PROTO.LCP && s.code === CODE.PROTO_REJ));
  assert.equal(w.link.status().counters.framesIn > 5, true);
});

test('a flood of unknown protocols gets a bounded number of Protocol-Rejects (20 back to back, then 10 per second)', () => {
  const peer = new L2tpnsPeer();
  const w = world(peer);
  w.start();
  assert.equal(w.link.phase, 'open');
  const rejects = () => peer.seen.filter((s) => s.protocol === PROTO.LCP && s.code === CODE.PROTO_REJ).length;
  const t0 = w.clock.now();
  for (let p = 0; p < 1000; p++) w.take(w.link.receive(encodeFrame(0x8101 + 2 * p, Buffer.from([1, 1, 0, 4])), t0));
  assert.equal(rejects(), 20);
  const drops = w.link.status().counters.drops;
  assert.equal(drops['protocol-rejected'], 20);
  assert.equal(drops['protocol-reject-rate-limited'], 980);
  // One second later the bucket has refilled by ten, never beyond.
  for (let p = 0; p < 100; p++) w.take(w.link.receive(encodeFrame(0x8101 + 2 * p, Buffer.from([1, 1, 0, 4])), t0 + 1000));
  assert.equal(rejects(), 30);
  // The link itself is untouched by the flood.
  assert.equal(w.link.phase, 'open');
});

test('peer Terminate-Request: link down with the peer message, closed after one restart period', () => {
  const peer = new L2tpnsPeer();
  const w = world(peer);
  w.start();
  w.take(w.link.receive(encodeFrame(PROTO.LCP, encodePacket(CODE.TERM_REQ, 99, Buffer.from('Admin reset'))), w.clock.now()));
  assert.match(w.of('down')[0]!.reason, /Terminate-Request: Admin reset/);
  assert.deepEqual(
    w
      .of('ncp-down')
      .map((d) => d.ncp)
      .sort(),
    ['ipcp', 'ipv6cp'],
  );
  assert.equal(w.of('closed').length, 0);
  w.clock.advance(3000);
  assert.equal(w.of('closed').length, 1);
  assert.equal(w.link.phase, 'dead');
});

test('a CHAP re-challenge that ends in Failure after Open tears the link down with the peer message', () => {
  const peer = new L2tpnsPeer();
  const w = world(peer);
  w.start();
  assert.equal(w.link.phase, 'open');
  const ch = encodePacket(1, 0x70, Buffer.concat([Buffer.from([16]), Buffer.alloc(16, 1), Buffer.from('lns')]));
  w.take(w.link.receive(encodeFrame(PROTO.CHAP, ch), w.clock.now()));
  assert.ok(peer.seen.filter((s) => s.protocol === PROTO.CHAP && s.code === 2).length >= 2, 'answered the re-challenge');
  w.take(w.link.receive(encodeFrame(PROTO.CHAP, encodePacket(4, 0x70, Buffer.from('revoked'))), w.clock.now()));
  assert.deepEqual(w.of('auth-failed'), [{ type: 'auth-failed', message: 'revoked' }]);
  assert.equal(w.of('down')[0]!.reason, 'auth-failed: revoked');
  assert.equal(w.of('closed').length, 1);
  // A closed link is not restarted by a stray lowerUp: sessions get a fresh PppLink.
  assert.deepEqual(w.link.lowerUp(w.clock.now()), []);
});

test('policy dual: both NCPs negotiated, IPv4 carries traffic', () => {
  const peer = new L2tpnsPeer();
  const w = world(peer, { policy: 'dual' });
  w.start();
  const ups = w.of('ncp-up');
  assert.deepEqual(ups.map((u) => u.ncp).sort(), ['ipcp', 'ipv6cp']);
  const v4 = ups.find((u) => u.ncp === 'ipcp')!;
  if (v4.ncp === 'ipcp') assert.equal(v4.result.carryTraffic, true);
  assert.notEqual(w.link.sendData(PROTO.IPV4, Buffer.from([0x45])), null);
});

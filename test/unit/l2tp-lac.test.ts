import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { applyTimer } from '../../src/core/scheduler';
import {
  type AvpValues,
  challengeResponse,
  type ControlMessage,
  decodeMessage,
  encodeControl,
  encodeControlBody,
  encodeData,
  encodeRawAvps,
  Lac,
  type LacAction,
  type LacConfig,
  type MessageName,
  MessageType,
  type RawAvp,
  rawAvps,
  type RequiredValues,
} from '../../src/l2tp';
import { FakeClock } from '../helpers/fake-clock';

interface Seen {
  t: number;
  name: MessageName | 'ZLB' | 'DATA';
  ns?: number;
  nr?: number;
  tunnelId: number;
  sessionId: number;
  values: AvpValues;
  payload?: Uint8Array;
  lost: boolean;
}

/** A tiny Softwire Concentrator built from the codec: it sequences, acks and answers on request. */
class FakeSc {
  ns = 0;
  nr = 0;
  readonly tunnelId = 40;
  readonly sessionId = 41;
  lacTunnel = 0;
  lacSession = 0;
  readonly log: Seen[] = [];

  take(t: number, bytes: Uint8Array, lost: boolean): void {
    const m = decodeMessage(bytes);
    if (m.kind === 'data') {
      this.log.push({
        t,
        name: 'DATA',
        tunnelId: m.tunnelId,
        sessionId: m.sessionId,
        ns: m.ns,
        values: {},
        payload: m.payload,
        lost,
      });
      return;
    }
    const msg = m.message;
    this.log.push({
      t,
      name: msg ? msg.name! : 'ZLB',
      ns: m.ns,
      nr: m.nr,
      tunnelId: m.tunnelId,
      sessionId: m.sessionId,
      values: msg?.values ?? {},
      lost,
    });
    if (lost || !msg) return;
    if (m.ns === this.nr) this.nr = (this.nr + 1) & 0xffff; // in order; anything else is ignored
    if (msg.name === 'SCCRQ') this.lacTunnel = msg.values.assignedTunnelId!;
    if (msg.name === 'ICRQ') this.lacSession = msg.values.assignedSessionId!;
  }

  msg<K extends MessageName>(name: K, values: Omit<RequiredValues<K>, 'messageType'>, extra: RawAvp[] = [], session = 0) {
    const body = encodeControlBody(name, values, extra);
    return encodeControl({ tunnelId: this.lacTunnel, sessionId: session, ns: this.ns++, nr: this.nr }, body);
  }

  raw(avps: RawAvp[], session = 0) {
    return encodeControl({ tunnelId: this.lacTunnel, sessionId: session, ns: this.ns++, nr: this.nr }, encodeRawAvps(avps));
  }

  zlb() {
    return encodeControl({ tunnelId: this.lacTunnel, sessionId: 0, ns: this.ns, nr: this.nr }, new Uint8Array(0));
  }

  sccrp(extra: Partial<AvpValues> = {}, unknown: RawAvp[] = []) {
    return this.msg(
      'SCCRP',
      {
        protocolVersion: { version: 1, revision: 0 },
        framingCapabilities: { sync: true, async: true },
        hostName: 'lns.example',
        assignedTunnelId: this.tunnelId,
        ...extra,
      },
      unknown,
    );
  }

  icrp(unknown: RawAvp[] = []) {
    return this.msg('ICRP', { assignedSessionId: this.sessionId }, unknown, this.lacSession);
  }

  last(name: Seen['name']): Seen | undefined {
    return [...this.log].reverse().find((s) => s.name === name);
  }
  all(name: Seen['name']): Seen[] {
    return this.log.filter((s) => s.name === name);
  }
}

type Event = Exclude<LacAction, { type: 'send' } | { type: 'timer-start' } | { type: 'timer-stop' }> & { t: number };

function setup(cfg: Partial<LacConfig> = {}) {
  const clock = new FakeClock();
  let seed = 0;
  const lac = new Lac({
    hostName: 'si.example',
    random: (n) => new Uint8Array(n).map(() => (seed = (seed * 73 + 41) & 0xff)),
    ...cfg,
  });
  const sc = new FakeSc();
  const events: Event[] = [];
  let lose = 0;
  const run = (acts: LacAction[]) => {
    for (const a of acts) {
      if (a.type === 'send') {
        const lost = lose > 0;
        if (lost) lose--;
        sc.take(clock.now(), a.bytes, lost);
      } else if (a.type === 'timer-start' || a.type === 'timer-stop') {
        applyTimer(clock, 'lac', a, (t) => run(lac.timerFired(t)));
      } else events.push({ ...a, t: clock.now() } as Event);
    }
  };
  const fromSc = (bytes: Uint8Array, from = 'sc:1701') => run(lac.receive(bytes, from));
  const ev = (type: Event['type']) => events.filter((e) => e.type === type);
  return {
    clock,
    lac,
    sc,
    events,
    ev,
    run,
    fromSc,
    loseNext: (n = 1) => {
      lose = n;
    },
  };
}

/** Open, SCCRP, ICRP and the SC's ZLB for the ICCN: everything at t=0. */
function establish(cfg: Partial<LacConfig> = {}) {
  const h = setup(cfg);
  h.run(h.lac.open());
  h.fromSc(h.sc.sccrp());
  h.fromSc(h.sc.icrp());
  h.fromSc(h.sc.zlb());
  assert.equal(h.lac.status().session.state, 'established');
  return h;
}

describe('tunnel and session establishment', () => {
  test('SCCRQ -> SCCRP -> SCCCN, ICRQ -> ICRP -> ICCN with the RFC 5571 AVPs', () => {
    const h = setup({ vendorName: 'softwire', firmwareRevision: 0x0100 });
    h.run(h.lac.open());
    const sccrq = h.sc.last('SCCRQ')!;
    assert.equal(sccrq.tunnelId, 0);
    assert.equal(sccrq.ns, 0);
    assert.deepEqual(sccrq.values.protocolVersion, { version: 1, revision: 0 });
    assert.equal(sccrq.values.hostName, 'si.example');
    assert.deepEqual(sccrq.values.framingCapabilities, { sync: true, async: true });
    assert.equal(sccrq.values.receiveWindowSize, 4);
    assert.equal(sccrq.values.vendorName, 'softwire');
    assert.equal(sccrq.values.challenge, undefined, 'no challenge without a secret');
    assert.equal(sccrq.values.assignedTunnelId, h.lac.localTunnelId);

    h.fromSc(h.sc.sccrp(), 'sc:3000');
    assert.deepEqual(
      h.ev('peer-address').map((e) => e.type === 'peer-address' && e.from),
      ['sc:3000'],
    );
    const scccn = h.sc.last('SCCCN')!;
    assert.deepEqual([scccn.tunnelId, scccn.ns, scccn.nr], [40, 1, 1]);
    const up = h.ev('tunnel-up')[0];
    assert.ok(up?.type === 'tunnel-up');
    assert.equal(up.info.peerHostName, 'lns.example');
    assert.equal(up.info.remoteTunnelId, 40);
    assert.equal(up.info.peerReceiveWindow, 4, 'no RWS AVP means 4');

    const icrq = h.sc.last('ICRQ')!;
    assert.equal(icrq.ns, 2, 'ICRQ goes out with SCCCN: the ack of SCCRQ opened the window to 2');
    assert.equal(icrq.sessionId, 0);
    assert.ok(icrq.values.assignedSessionId! > 0);
    assert.equal(typeof icrq.values.callSerialNumber, 'number');

    h.fromSc(h.sc.icrp(), 'sc:3000');
    const iccn = h.sc.last('ICCN')!;
    assert.equal(iccn.sessionId, 41);
    assert.equal(iccn.values.txConnectSpeed, 0);
    assert.deepEqual(iccn.values.framingType, { sync: true, async: false });
    assert.equal(iccn.values.sequencingRequired, undefined);
    const sup = h.ev('session-up')[0];
    assert.ok(sup?.type === 'session-up');
    assert.deepEqual(
      [sup.info.localSessionId, sup.info.remoteSessionId, sup.info.remoteTunnelId],
      [icrq.values.assignedSessionId, 41, 40],
    );
    const st = h.lac.status();
    assert.equal(st.tunnel.state, 'established');
    assert.equal(st.session.remoteId, 41);
    assert.equal(st.peer, 'sc:3000');
    assert.equal(st.counters.ctrlIn, 2);
    assert.equal(st.counters.ctrlOut, 4);
  });

  test('PPP frames both ways; Priority bit reported; sendFrame refuses without a session', () => {
    const h = setup();
    assert.equal(h.lac.sendFrame(new Uint8Array([1])), undefined);
    h.run(h.lac.open());
    h.fromSc(h.sc.sccrp());
    h.fromSc(h.sc.icrp());
    const out = h.lac.sendFrame(new Uint8Array([0xff, 0x03, 0xc0, 0x21, 1, 2]))!;
    const m = decodeMessage(out);
    assert.ok(m.kind === 'data');
    assert.deepEqual([m.tunnelId, m.sessionId, m.ns, [...m.payload]], [40, 41, undefined, [0xff, 0x03, 0xc0, 0x21, 1, 2]]);
    h.run(
      h.lac.receive(
        encodeData({ tunnelId: h.lac.localTunnelId, sessionId: h.sc.lacSession, priority: true }, new Uint8Array([9])),
        'sc:1701',
      ),
    );
    const f = h.ev('frame')[0];
    assert.ok(f?.type === 'frame');
    assert.deepEqual([[...f.data], f.priority], [[9], true]);
    assert.equal(h.lac.status().counters.dataIn, 1);
    assert.equal(h.lac.status().counters.dataOut, 1);
  });

  test('data sequencing: Sequencing Required in ICCN, Ns on data, stale frames dropped', () => {
    const h = establish({ dataSequencing: true });
    assert.equal(h.sc.last('ICCN')!.values.sequencingRequired, true);
    const ns = [0, 1, 2].map(() => decodeMessage(h.lac.sendFrame(new Uint8Array([1]))!)).map((m) => m.kind === 'data' && m.ns);
    assert.deepEqual(ns, [0, 1, 2]);
    const d = (n: number) =>
      encodeData({ tunnelId: h.lac.localTunnelId, sessionId: h.sc.lacSession, ns: n }, new Uint8Array([n]));
    h.fromSc(d(5));
    h.fromSc(d(4));
    h.fromSc(d(6));
    assert.equal(h.ev('frame').length, 2);
    assert.equal(h.lac.status().counters.drops['data-out-of-order'], 1);
  });

  test('RFC 2661 5.4: the SC sends data with S=1, then S=0: we sequence, then stop (no Ns, 4 octets less)', () => {
    const h = establish();
    const d = (ns?: number) => encodeData({ tunnelId: h.lac.localTunnelId, sessionId: h.sc.lacSession, ns }, new Uint8Array([7]));
    const ppp = new Uint8Array([0xff, 0x03, 0xc0, 0x21, 9, 1, 0, 4]);
    const plain = h.lac.sendFrame(ppp)!;
    assert.equal(h.lac.dataHeader()!.sequencing, false);
    h.fromSc(d(0));
    h.fromSc(d(1));
    assert.equal(h.lac.dataHeader()!.sequencing, true, 'S=1 from the SC: the fast path steps aside');
    const seq = h.lac.sendFrame(ppp)!;
    const m1 = decodeMessage(seq);
    assert.ok(m1.kind === 'data');
    assert.equal(m1.ns, 0);
    assert.equal(seq.length, plain.length + 4);
    h.fromSc(d());
    assert.equal(h.ev('frame').length, 3, 'the S=0 frame itself is delivered');
    assert.equal(h.lac.dataHeader()!.sequencing, false, 'S=0: sequencing off, the fast path takes the data again');
    assert.equal(h.lac.status().session.sequencing, false);
    const after = h.lac.sendFrame(ppp)!;
    const m2 = decodeMessage(after);
    assert.ok(m2.kind === 'data');
    assert.equal(m2.ns, undefined);
    assert.equal(after.length, plain.length);
    // The SC may turn it on again; its new Ns are accepted from wherever it starts.
    h.fromSc(d(0));
    assert.equal(h.lac.dataHeader()!.sequencing, true);
    assert.equal(h.ev('frame').length, 4);
  });

  test('RFC 2661 4.4.6: when we asked for sequencing (Sequencing Required), S=0 data does not turn it off', () => {
    const h = establish({ dataSequencing: true });
    h.fromSc(encodeData({ tunnelId: h.lac.localTunnelId, sessionId: h.sc.lacSession }, new Uint8Array([7])));
    assert.equal(h.lac.dataHeader()!.sequencing, true);
    const m = decodeMessage(h.lac.sendFrame(new Uint8Array([1]))!);
    assert.ok(m.kind === 'data');
    assert.equal(m.ns, 0);
  });

  test('a lost SCCCN is recovered by retransmission with the same Ns', () => {
    const h = setup();
    h.run(h.lac.open());
    h.loseNext(1);
    h.fromSc(h.sc.sccrp());
    assert.equal(h.sc.all('SCCCN').length, 1);
    assert.equal(h.sc.nr, 1, 'SC never got the SCCCN (and ignores the early ICRQ)');
    h.clock.advance(1000);
    const sccn = h.sc.all('SCCCN');
    assert.deepEqual(
      sccn.map((s) => [s.t, s.ns, s.lost]),
      [
        [0, 1, true],
        [1000, 1, false],
      ],
    );
    h.fromSc(h.sc.zlb()); // acks the SCCCN; the ICRQ is now the oldest unacked
    h.clock.advance(1000);
    assert.deepEqual(
      h.sc.all('ICRQ').map((s) => [s.t, s.ns]),
      [
        [0, 2],
        [2000, 2],
      ],
    );
    h.fromSc(h.sc.icrp());
    assert.equal(h.ev('session-up').length, 1);
  });

  test('a lost ICCN is recovered by retransmission', () => {
    const h = setup();
    h.run(h.lac.open());
    h.fromSc(h.sc.sccrp());
    h.loseNext(1);
    h.fromSc(h.sc.icrp());
    assert.equal(h.ev('session-up').length, 1);
    h.clock.advance(999);
    assert.equal(h.sc.all('ICCN').length, 1);
    h.clock.advance(1);
    const iccn = h.sc.all('ICCN');
    assert.deepEqual(
      iccn.map((s) => [s.t, s.ns, s.lost]),
      [
        [0, 3, true],
        [1000, 3, false],
      ],
    );
    h.fromSc(h.sc.zlb());
    h.clock.advance(10_000);
    assert.equal(h.sc.all('ICCN').length, 2, 'acked: no more retransmissions');
    assert.equal(h.ev('session-up').length, 1);
  });

  test('SCCRQ never answered: down with max-retries after the full cycle', () => {
    const h = setup();
    h.run(h.lac.open());
    h.clock.advance(40_000);
    assert.deepEqual(
      h.sc.all('SCCRQ').map((s) => s.t),
      [0, 1000, 3000, 7000, 15000, 23000],
    );
    const downs = h.ev('down');
    assert.deepEqual(
      downs.map((d) => d.type === 'down' && [d.t, d.layer, d.reason]),
      [[31000, 'tunnel', 'max-retries']],
    );
    assert.equal(h.ev('closed').length, 1);
    assert.equal(h.clock.size(), 0);
  });
});

describe('tunnel authentication', () => {
  const secret = 'sekrit';

  test('success: our challenge answered, the SC challenge answered in SCCCN', () => {
    const h = setup({ secret });
    h.run(h.lac.open());
    const chal = h.sc.last('SCCRQ')!.values.challenge!;
    assert.equal(chal.length, 16);
    const scChallenge = new Uint8Array([1, 2, 3, 4, 5]);
    h.fromSc(h.sc.sccrp({ challengeResponse: challengeResponse(MessageType.SCCRP, secret, chal), challenge: scChallenge }));
    const scccn = h.sc.last('SCCCN')!;
    assert.deepEqual(scccn.values.challengeResponse, challengeResponse(MessageType.SCCCN, secret, scChallenge));
    const up = h.ev('tunnel-up')[0];
    assert.ok(up?.type === 'tunnel-up' && up.info.authenticated);
  });

  for (const [label, resp] of [
    ['wrong', (c: Uint8Array) => challengeResponse(MessageType.SCCRP, 'guess', c)],
    ['missing', undefined],
  ] as const) {
    test(`failure (${label} response): StopCCN result 4 and down 'auth-failed'`, () => {
      const h = setup({ secret });
      h.run(h.lac.open());
      const chal = h.sc.last('SCCRQ')!.values.challenge!;
      h.fromSc(h.sc.sccrp(resp ? { challengeResponse: resp(chal) } : {}));
      const stop = h.sc.last('StopCCN')!;
      assert.equal(stop.tunnelId, 40);
      assert.equal(stop.values.resultCode!.result, 4);
      assert.equal(stop.values.assignedTunnelId, h.lac.localTunnelId);
      assert.equal(h.sc.all('SCCCN').length, 0);
      assert.equal(h.ev('tunnel-up').length, 0);
      const d = h.ev('down')[0];
      assert.ok(d?.type === 'down');
      assert.deepEqual([d.layer, d.reason, d.resultCode], ['tunnel', 'auth-failed', 4]);
    });
  }

  test('challenged by the SC without a secret: refused', () => {
    const h = setup();
    h.run(h.lac.open());
    h.fromSc(h.sc.sccrp({ challenge: new Uint8Array([7]) }));
    assert.equal(h.sc.last('StopCCN')!.values.resultCode!.result, 4);
    assert.ok(h.ev('down').some((d) => d.type === 'down' && d.reason === 'auth-failed'));
  });
});

describe('HELLO', () => {
  test('sent only after 60 s with nothing received', () => {
    const h = establish();
    h.clock.advance(59_999);
    assert.equal(h.sc.all('HELLO').length, 0);
    h.clock.advance(1);
    assert.deepEqual(
      h.sc.all('HELLO').map((s) => s.t),
      [60_000],
    );
    h.fromSc(h.sc.zlb());
    h.clock.advance(60_000);
    assert.deepEqual(
      h.sc.all('HELLO').map((s) => s.t),
      [60_000, 120_000],
    );
  });

  test('a control message from the SC restarts the idle time', () => {
    const h = establish();
    h.clock.advance(30_000);
    h.fromSc(h.sc.msg('HELLO', {}));
    h.clock.advance(250);
    assert.deepEqual(
      h.sc.all('ZLB').map((s) => [s.t, s.nr]),
      [[30_250, h.sc.ns]],
      'the SC HELLO is acked by a delayed ZLB',
    );
    h.clock.advance(59_749);
    assert.equal(h.sc.all('HELLO').length, 0);
    h.clock.advance(1);
    assert.deepEqual(
      h.sc.all('HELLO').map((s) => s.t),
      [90_000],
    );
  });

  test('received data also counts as traffic (checked when the timer runs out)', () => {
    const h = establish();
    h.clock.advance(50_000);
    h.fromSc(encodeData({ tunnelId: h.lac.localTunnelId, sessionId: h.sc.lacSession }, new Uint8Array([1])));
    h.clock.advance(69_999);
    assert.equal(h.sc.all('HELLO').length, 0);
    h.clock.advance(1);
    assert.deepEqual(
      h.sc.all('HELLO').map((s) => s.t),
      [120_000],
    );
  });

  test('an unanswered HELLO means a dead peer: down after the retransmission cycle', () => {
    const h = establish();
    h.clock.advance(200_000);
    assert.deepEqual(
      h.sc.all('HELLO').map((s) => s.t),
      [60_000, 61_000, 63_000, 67_000, 75_000, 83_000],
    );
    assert.deepEqual(
      h.ev('down').map((d) => d.type === 'down' && [d.t, d.layer, d.reason]),
      [
        [91_000, 'session', 'tunnel-down'],
        [91_000, 'tunnel', 'max-retries'],
      ],
    );
    assert.equal(h.sc.all('StopCCN').length, 0);
    assert.equal(h.clock.size(), 0);
  });

  test('helloIntervalMs 0 disables HELLO', () => {
    const h = establish({ helloIntervalMs: 0 });
    h.clock.advance(600_000);
    assert.equal(h.sc.all('HELLO').length, 0);
  });
});

describe('teardown', () => {
  test('StopCCN from the SC: ZLB at once, down with codes and advice, linger acks repeats, then closed', () => {
    const h = establish();
    h.clock.advance(5000);
    const stop = h.sc.msg('StopCCN', { assignedTunnelId: 40, resultCode: { result: 2, error: 7, message: 'try another' } });
    h.fromSc(stop);
    const zlbs = h.sc.all('ZLB');
    assert.deepEqual(
      zlbs.map((z) => [z.t, z.nr]),
      [[5000, h.sc.ns]],
    );
    const downs = h.ev('down');
    assert.equal(downs.length, 2);
    const [sd, td] = downs;
    assert.ok(sd?.type === 'down' && td?.type === 'down');
    assert.deepEqual([sd.layer, sd.reason], ['session', 'tunnel-down']);
    assert.deepEqual(
      [td.layer, td.reason, td.resultCode, td.errorCode, td.message, td.retryElsewhere, td.permanent],
      ['tunnel', 'peer-stopccn', 2, 7, 'try another', true, false],
    );
    assert.equal(h.lac.sendFrame(new Uint8Array([1])), undefined);
    h.clock.advance(1000);
    h.fromSc(stop); // the SC missed our ack and retransmits
    assert.equal(h.sc.all('ZLB').length, 2);
    assert.equal(h.ev('closed').length, 0);
    h.clock.advance(30_000);
    assert.deepEqual(
      h.ev('closed').map((e) => e.t),
      [36_000],
    );
    assert.equal(h.clock.size(), 0);
  });

  test('close(): StopCCN with result 1, closed one linger period after it is acked', () => {
    const h = establish();
    h.run(h.lac.close());
    const stop = h.sc.last('StopCCN')!;
    assert.deepEqual([stop.tunnelId, stop.sessionId, stop.values.assignedTunnelId], [40, 0, h.lac.localTunnelId]);
    assert.deepEqual(stop.values.resultCode, { result: 1 });
    assert.ok(h.ev('down').some((d) => d.type === 'down' && d.layer === 'tunnel' && d.reason === 'local-close'));
    h.clock.advance(500);
    h.fromSc(h.sc.zlb());
    h.clock.advance(30_999);
    assert.equal(h.ev('closed').length, 0);
    h.clock.advance(1);
    assert.deepEqual(
      h.ev('closed').map((e) => e.t),
      [31_500],
    );
    assert.equal(h.sc.all('StopCCN').length, 1);
  });

  test('close() unacknowledged: StopCCN retransmitted, closed when retries run out', () => {
    const h = establish();
    h.run(h.lac.close());
    h.clock.advance(60_000);
    assert.equal(h.sc.all('StopCCN').length, 6);
    assert.deepEqual(
      h.ev('closed').map((e) => e.t),
      [31_000],
    );
    assert.equal(h.ev('down').filter((d) => d.type === 'down' && d.layer === 'tunnel').length, 1, 'down only once');
  });

  test('CDN from the SC: session down with its result code, the tunnel stays', () => {
    const h = establish();
    h.fromSc(h.sc.msg('CDN', { resultCode: { result: 3 }, assignedSessionId: 41 }, [], h.sc.lacSession));
    const d = h.ev('down');
    assert.equal(d.length, 1);
    assert.ok(d[0]?.type === 'down');
    assert.deepEqual([d[0].layer, d[0].reason, d[0].resultCode], ['session', 'peer-cdn', 3]);
    assert.equal(h.lac.status().tunnel.state, 'established');
    assert.equal(h.lac.sendFrame(new Uint8Array([1])), undefined);
    // A new call can be placed on the same tunnel.
    h.run(h.lac.openSession());
    assert.equal(h.sc.all('ICRQ').length, 2);
  });

  test('closeSession(): CDN to the SC with our Assigned Session ID', () => {
    const h = establish();
    h.run(h.lac.closeSession());
    const cdn = h.sc.last('CDN')!;
    assert.equal(cdn.sessionId, 41);
    assert.equal(cdn.values.assignedSessionId, h.sc.lacSession);
    assert.deepEqual(cdn.values.resultCode, { result: 3 });
    assert.ok(h.ev('down').some((d) => d.type === 'down' && d.layer === 'session' && d.reason === 'local-close'));
    assert.equal(h.lac.status().tunnel.state, 'established');
  });
});

describe('unknown and malformed input', () => {
  const sbfd = (mandatory: boolean): RawAvp => ({
    mandatory,
    hidden: false,
    reserved: 0,
    vendorId: 0,
    // S-BFD Target Discriminator ID (draft-ietf-l2tpext-sbfd-discriminator): its type is
    // "TBA by IANA"; 102 stands in for it. The draft says M MUST NOT be set.
    type: 102,
    value: new Uint8Array([0, 0, 0, 42]),
  });

  test('M=0 unknown AVP (S-BFD discriminator) in ICRP is ignored', () => {
    const h = setup();
    h.run(h.lac.open());
    h.fromSc(h.sc.sccrp());
    h.fromSc(h.sc.icrp([sbfd(false)]));
    assert.equal(h.ev('session-up').length, 1);
    assert.equal(h.sc.all('CDN').length, 0);
  });

  test('M=1 unknown AVP in ICRP: CDN result 2 / error 8, session down, tunnel kept', () => {
    const h = setup();
    h.run(h.lac.open());
    h.fromSc(h.sc.sccrp());
    h.fromSc(h.sc.icrp([sbfd(true)]));
    assert.equal(h.ev('session-up').length, 0);
    const cdn = h.sc.last('CDN')!;
    assert.deepEqual([cdn.values.resultCode!.result, cdn.values.resultCode!.error], [2, 8]);
    const d = h.ev('down')[0];
    assert.ok(d?.type === 'down');
    assert.deepEqual([d.layer, d.reason], ['session', 'unknown-mandatory-avp']);
    assert.equal(h.lac.status().tunnel.state, 'established');
  });

  test('M=1 unknown AVP in SCCRP: StopCCN result 2 / error 8', () => {
    const h = setup();
    h.run(h.lac.open());
    h.fromSc(h.sc.sccrp({}, [sbfd(true)]));
    const stop = h.sc.last('StopCCN')!;
    assert.deepEqual([stop.values.resultCode!.result, stop.values.resultCode!.error], [2, 8]);
    assert.ok(h.ev('down').some((d) => d.type === 'down' && d.reason === 'unknown-mandatory-avp'));
    assert.equal(h.ev('tunnel-up').length, 0);
  });

  test('SCCRP missing a required AVP: StopCCN, protocol-error', () => {
    const h = setup();
    h.run(h.lac.open());
    h.fromSc(
      h.sc.raw(
        rawAvps({
          messageType: 2,
          protocolVersion: { version: 1, revision: 0 },
          framingCapabilities: { sync: true, async: false },
          assignedTunnelId: 40,
        }),
      ),
    );
    assert.equal(h.sc.last('StopCCN')!.values.resultCode!.result, 2);
    assert.ok(h.ev('down').some((d) => d.type === 'down' && d.reason === 'protocol-error' && /hostName/.test(d.message ?? '')));
  });

  test('SCCRP with another protocol version: StopCCN result 5', () => {
    const h = setup();
    h.run(h.lac.open());
    h.fromSc(h.sc.sccrp({ protocolVersion: { version: 2, revision: 0 } }));
    assert.equal(h.sc.last('StopCCN')!.values.resultCode!.result, 5);
  });

  test('unknown message type: ignored when M=0, tunnel cleared when M=1', () => {
    const h = establish();
    const t99 = (m: boolean): RawAvp[] => [
      { mandatory: m, hidden: false, reserved: 0, vendorId: 0, type: 0, value: new Uint8Array([0, 99]) },
    ];
    h.fromSc(h.sc.raw(t99(false)));
    assert.equal(h.lac.status().tunnel.state, 'established');
    assert.equal(h.lac.status().counters.drops['unknown-message'], 1);
    h.fromSc(h.sc.raw(t99(true)));
    assert.equal(h.lac.status().tunnel.state, 'closing');
    assert.equal(h.sc.last('StopCCN')!.values.resultCode!.result, 2);
  });

  test('unknown tunnel, unknown session, wrong peer and garbage are dropped and counted', () => {
    const h = establish();
    const before = h.events.length;
    h.fromSc(encodeData({ tunnelId: 999, sessionId: h.sc.lacSession }, new Uint8Array([1])));
    h.fromSc(encodeData({ tunnelId: h.lac.localTunnelId, sessionId: 7 }, new Uint8Array([1])));
    h.fromSc(encodeData({ tunnelId: h.lac.localTunnelId, sessionId: h.sc.lacSession }, new Uint8Array([1])), 'evil:1');
    h.fromSc(new Uint8Array([0xc8, 0x03, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0]));
    h.fromSc(new Uint8Array([1]));
    assert.equal(h.events.length, before, 'nothing delivered');
    assert.deepEqual(h.lac.status().counters.drops, {
      'unknown-tunnel': 1,
      'unknown-session': 1,
      'wrong-peer': 1,
      version: 1,
      short: 1,
    });
  });

  test("peer policy 'follow' re-latches on a control message from a new source", () => {
    const h = establish({ peerAddressPolicy: 'follow' });
    h.fromSc(h.sc.msg('HELLO', {}), 'sc:5000');
    assert.deepEqual(
      h.ev('peer-address').map((e) => e.type === 'peer-address' && e.from),
      ['sc:1701', 'sc:5000'],
    );
  });

  test('hidden AVPs from the SC are read when a secret is configured', async () => {
    const { hide } = await import('../../src/l2tp');
    const secret = 'sekrit';
    const h = setup({ secret });
    h.run(h.lac.open());
    const chal = h.sc.last('SCCRQ')!.values.challenge!;
    const rv = new Uint8Array(16).fill(9);
    const avps = rawAvps({
      messageType: 2,
      protocolVersion: { version: 1, revision: 0 },
      framingCapabilities: { sync: true, async: true },
      assignedTunnelId: 40,
      randomVector: rv,
      challengeResponse: challengeResponse(2, secret, chal),
    });
    avps.push(hide(rawAvps({ hostName: 'hidden.lns' })[0]!, secret, rv, 3));
    h.fromSc(h.sc.raw(avps));
    const up = h.ev('tunnel-up')[0];
    assert.ok(up?.type === 'tunnel-up');
    assert.equal(up.info.peerHostName, 'hidden.lns');
  });

  // RFC 2661 4.4.2 allows a Result Code of 2 octets or of 4 and more; 3 is malformed.
  const rc3: RawAvp = { mandatory: true, hidden: false, reserved: 0, vendorId: 0, type: 1, value: new Uint8Array([0, 2, 0]) };

  test('CDN whose Result Code is 3 octets: still acknowledged and honoured (session down, tunnel kept)', () => {
    const h = establish();
    const ctrlOut = h.lac.status().counters.ctrlOut;
    h.fromSc(h.sc.raw([...rawAvps({ messageType: MessageType.CDN, assignedSessionId: h.sc.sessionId }), rc3], h.sc.lacSession));
    const d = h.ev('down');
    assert.equal(d.length, 1);
    assert.ok(d[0]?.type === 'down');
    assert.deepEqual([d[0].layer, d[0].reason, d[0].resultCode], ['session', 'peer-cdn', undefined]);
    assert.match(d[0].message ?? '', /malformed Result Code AVP \(3 octets\)/);
    assert.equal(h.lac.status().session.state, 'idle');
    assert.equal(h.lac.status().tunnel.state, 'established');
    assert.equal(h.lac.status().counters.ctrlIn, 4, 'the CDN reached the control channel');
    h.clock.advance(2000);
    assert.ok(h.lac.status().counters.ctrlOut > ctrlOut);
    assert.equal(h.sc.last('ZLB')!.nr, h.sc.ns, 'and was acknowledged (delayed ZLB)');
  });

  test('StopCCN whose Result Code is 3 octets: ZLB at once, tunnel down, then closed after the linger', () => {
    const h = establish();
    h.fromSc(h.sc.raw([...rawAvps({ messageType: MessageType.StopCCN, assignedTunnelId: h.sc.tunnelId }), rc3]));
    const zlb = h.sc.last('ZLB')!;
    assert.equal(zlb.nr, h.sc.ns, 'the StopCCN is acknowledged');
    const down = h.ev('down').find((e) => e.type === 'down' && e.layer === 'tunnel');
    assert.ok(down?.type === 'down');
    assert.equal(down.reason, 'peer-stopccn');
    assert.match(down.message ?? '', /malformed Result Code/);
    assert.equal(h.lac.status().tunnel.state, 'closing');
    h.clock.advance(60_000);
    assert.equal(h.ev('closed').length, 1);
    assert.equal(h.sc.all('StopCCN').length, 0, 'no StopCCN of ours answers the peer\'s');
  });

  test('a mandatory AVP of the wrong length in ICRP: StopCCN result 2 / error 2 (Length is wrong), tunnel down', () => {
    const h = setup();
    h.run(h.lac.open());
    h.fromSc(h.sc.sccrp());
    const sid3: RawAvp = { mandatory: true, hidden: false, reserved: 0, vendorId: 0, type: 14, value: new Uint8Array([0, 41, 0]) };
    h.fromSc(h.sc.raw([...rawAvps({ messageType: MessageType.ICRP }), sid3], h.sc.lacSession));
    const stop = h.sc.last('StopCCN')!;
    assert.deepEqual([stop.values.resultCode!.result, stop.values.resultCode!.error], [2, 2]);
    assert.match(stop.values.resultCode!.message ?? '', /assignedSessionId.*3 octets.*ICRP/);
    assert.equal(h.sc.all('ICCN').length, 0);
    const down = h.ev('down').find((e) => e.type === 'down' && e.layer === 'tunnel');
    assert.ok(down?.type === 'down');
    assert.deepEqual([down.reason, down.resultCode, down.errorCode], ['protocol-error', 2, 2]);
    assert.equal(h.lac.status().tunnel.state, 'closing');
  });

  test('a non-mandatory AVP of the wrong length (Firmware Revision, M=0) is ignored: the tunnel comes up', () => {
    const h = setup();
    h.run(h.lac.open());
    const fw3: RawAvp = { mandatory: false, hidden: false, reserved: 0, vendorId: 0, type: 6, value: new Uint8Array([1, 2, 3]) };
    h.fromSc(h.sc.sccrp({}, [fw3]));
    assert.equal(h.ev('tunnel-up').length, 1);
    assert.equal(h.sc.all('StopCCN').length, 0);
    assert.equal(h.lac.status().counters.drops['avp-malformed-ignored'], 1);
  });

  test('a ZLB alone is not delivered and a duplicate SCCRP is acked, not re-processed', () => {
    const h = setup();
    h.run(h.lac.open());
    const sccrp = h.sc.sccrp();
    h.fromSc(sccrp);
    h.fromSc(sccrp);
    assert.equal(h.ev('tunnel-up').length, 1);
    assert.equal(h.sc.all('SCCCN').length, 1);
    assert.equal(h.lac.status().counters.duplicates, 1);
  });
});

// Keeps the ControlMessage type import honest for readers: the FSM consumes decoded messages.
export type { ControlMessage };

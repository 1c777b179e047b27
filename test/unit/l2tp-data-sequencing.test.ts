/**
 * RFC 2661 5.4 across the L2TP core and the data fast path: the fast path asks the core
 * for the session's data header on every batch, so when the SC turns sequencing on (S=1)
 * the fast path steps aside, and when the SC turns it off again (S=0) the core stops
 * sequencing and the fast path takes the session's IP data back, in both directions.
 * Real Lac, real Dataplane; only the TUN and the UDP socket are counting doubles.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Dataplane, type TunBatch } from '../../src/dataplane/dataplane';
import { decodeMessage, encodeControl, encodeControlBody, encodeData, Lac, type LacAction } from '../../src/l2tp';
import { PROTO, encodeFrame } from '../../src/ppp/frame';

const SC_TUNNEL = 40;
const SC_SESSION = 41;

function upLac(): { lac: Lac; lacSession: number } {
  let seed = 1;
  const lac = new Lac({ hostName: 'si', random: (n) => new Uint8Array(n).map(() => (seed = (seed * 73 + 41) & 0xff)) });
  let lacSession = 0;
  const take = (acts: LacAction[]) => {
    for (const a of acts) {
      if (a.type !== 'send') continue;
      const m = decodeMessage(a.bytes);
      if (m.kind === 'control' && m.message?.name === 'ICRQ') lacSession = m.message.values.assignedSessionId!;
    }
  };
  // SCCRP (Ns 0) acknowledges our SCCRQ; ICRP (Ns 1) our SCCCN and ICRQ.
  const ctl = (body: Uint8Array, ns: number, nr: number, sessionId = 0) => encodeControl({ tunnelId: lac.localTunnelId, sessionId, ns, nr }, body);
  take(lac.open());
  take(
    lac.receive(
      ctl(
        encodeControlBody('SCCRP', {
          protocolVersion: { version: 1, revision: 0 },
          framingCapabilities: { sync: true, async: false },
          hostName: 'sc',
          assignedTunnelId: SC_TUNNEL,
        }),
        0,
        1,
      ),
      'sc',
    ),
  );
  take(lac.receive(ctl(encodeControlBody('ICRP', { assignedSessionId: SC_SESSION }), 1, 3, lacSession), 'sc'));
  assert.equal(lac.status().session.state, 'established');
  return { lac, lacSession };
}

test('S=1 from the SC moves data to the cores; S=0 afterwards gives it back to the fast path', () => {
  const { lac, lacSession } = upLac();
  let udpSent = 0;
  let tunWritten = 0;
  const dp = new Dataplane({
    tun: { writeFrames: (_s, _d, n) => ((tunWritten += n), n) },
    udp: { sendFrames: (_h, _l, _s, _d, n) => ((udpSent += n), n) },
    lac,
    ppp: { canCarry: () => true },
    mtu: 1460,
  });
  const ip = Buffer.alloc(60);
  ip[0] = 0x45;
  const batch: TunBatch = { count: 1, buffer: ip, offset: () => 0, length: () => ip.length };
  const fromSc = (ns?: number): Buffer => Buffer.from(encodeData({ tunnelId: lac.localTunnelId, sessionId: lacSession, ns }, encodeFrame(PROTO.IPV4, ip)));
  const rx = (d: Buffer): boolean => {
    dp.begin();
    const took = dp.take(d, 0, d.length);
    dp.flush(d);
    if (!took) lac.receive(d, 'sc');
    return took;
  };

  assert.equal(dp.fromTun(batch), true, 'unsequenced: the fast path sends');
  assert.equal(rx(fromSc()), true, 'and receives');

  assert.equal(rx(fromSc(0)), false, 'S=1 data is the core\'s (its Ns is checked there)');
  assert.equal(lac.dataHeader()!.sequencing, true);
  assert.equal(dp.fromTun(batch), false, 'sequencing: the fast path steps aside, the core frames with Ns');
  const m = decodeMessage(lac.sendFrame(encodeFrame(PROTO.IPV4, ip))!);
  assert.ok(m.kind === 'data' && m.ns === 0);

  assert.equal(rx(fromSc()), false, 'the first S=0 frame reaches the core while sequencing is still on');
  assert.equal(lac.dataHeader()!.sequencing, false, 'RFC 2661 5.4: the LAC stops sequencing');
  assert.equal(dp.fromTun(batch), true, 'the fast path sends again, without Ns');
  assert.equal(rx(fromSc()), true, 'and receives again');
  assert.deepEqual([udpSent, tunWritten], [2, 2]);
});

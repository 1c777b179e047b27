/**
 * The automaton fed real packet bytes, with the restart timer on a FakeClock:
 * lost packets, Naks, Rejects, invalid replies, Max-Configure, Max-Failure,
 * Code-Reject and both directions of Terminate.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Automaton } from '../../src/ppp/automaton';
import {
  CODE,
  decodeOptions,
  encodeOptions,
  encodePacket,
  opt,
  PROTO,
  u16,
  u32,
} from '../../src/ppp/frame';
import { LcpHandler } from '../../src/ppp/lcp';
import { AutomatonRig, seqRandom } from '../helpers/ppp';

const lcpRig = (mru = 1400, cfg = {}) =>
  new AutomatonRig(new Automaton('lcp', PROTO.LCP, new LcpHandler({ mru, randomBytes: seqRandom(1) }), cfg));

test('lost Configure-Requests are retransmitted every 3 s with the same Identifier, then Max-Configure ends it', () => {
  const r = lcpRig();
  r.start();
  assert.equal(r.fsm.state, 'Req-Sent');
  assert.equal(r.sent.length, 1);
  const first = r.sent[0]!;
  r.clock.advance(2999);
  assert.equal(r.sent.length, 1);
  r.clock.advance(1);
  assert.equal(r.sent.length, 2);
  assert.equal(r.sent[1]!.id, first.id);
  assert.deepEqual(r.sent[1]!.data, first.data);
  r.clock.advance(60_000);
  assert.equal(r.sent.length, 10, 'Max-Configure = 10 requests');
  assert.equal(r.fsm.state, 'Stopped');
  const fin = r.signals('finished');
  assert.equal(fin.length, 1);
  assert.match((fin[0] as { reason: string }).reason, /Max-Configure 10/);
  assert.equal(r.clock.size(), 0, 'restart timer stopped');
});

test('a late Ack of the first copy still counts after a retransmission', () => {
  const r = lcpRig();
  r.start();
  const first = r.sent[0]!;
  r.clock.advance(3000);
  r.rx(CODE.CONF_ACK, first.id, first.data);
  assert.equal(r.fsm.state, 'Ack-Rcvd');
});

test('Nak adjusts the next request (new Identifier); Reject removes the option; Ack + peer request opens', () => {
  const r = lcpRig(1400);
  r.start();
  const req1 = r.sent[0]!;
  const opts1 = decodeOptions(req1.data);
  assert.deepEqual(
    opts1.map((o) => o.type),
    [1, 5],
  );
  assert.equal(opts1[0]!.data.readUInt16BE(0), 1400);
  r.rx(CODE.CONF_NAK, req1.id, encodeOptions([opt(1, u16(1300))]));
  const req2 = r.last();
  assert.notEqual(req2.id, req1.id);
  assert.equal(decodeOptions(req2.data)[0]!.data.readUInt16BE(0), 1300);
  r.rx(CODE.CONF_REJ, req2.id, encodeOptions([decodeOptions(req2.data)[0]!]));
  const req3 = r.last();
  assert.deepEqual(
    decodeOptions(req3.data).map((o) => o.type),
    [5],
  );
  r.rx(CODE.CONF_ACK, req3.id, req3.data);
  assert.equal(r.fsm.state, 'Ack-Rcvd');
  r.rx(CODE.CONF_REQ, 9, encodeOptions([opt(5, u32(0x11223344))]));
  assert.equal(r.fsm.state, 'Opened');
  assert.equal(r.last().code, CODE.CONF_ACK);
  assert.equal(r.last().id, 9);
  assert.equal(r.signals('up').length, 1);
  assert.equal(r.clock.size(), 0);
});

test('invalid replies are discarded: wrong Identifier, altered Ack, Reject of options never sent, duplicates', () => {
  const r = lcpRig();
  r.start();
  const req = r.sent[0]!;
  r.rx(CODE.CONF_ACK, (req.id + 1) & 0xff, req.data);
  r.rx(CODE.CONF_ACK, req.id, encodeOptions([opt(5, u32(1))]));
  r.rx(CODE.CONF_REJ, req.id, encodeOptions([opt(3, [0xc0, 0x23])]));
  assert.equal(r.fsm.state, 'Req-Sent');
  assert.equal(r.sent.length, 1);
  assert.equal(r.signals('drop').length, 3);
  r.rx(CODE.CONF_ACK, req.id, req.data);
  assert.equal(r.fsm.state, 'Ack-Rcvd');
  r.rx(CODE.CONF_ACK, req.id, req.data); // duplicate: must not look like a crossed connection
  assert.equal(r.fsm.state, 'Ack-Rcvd');
});

test('Max-Failure: Naks turn into Rejects, and a peer that never converges is closed with a reason', () => {
  const r = lcpRig(1500, { maxFailure: 3 });
  r.start();
  const bad = encodeOptions([opt(1, u16(100))]);
  for (let i = 0; i < 3; i++) {
    r.rx(CODE.CONF_REQ, 50 + i, bad);
    assert.equal(r.last().code, CODE.CONF_NAK, `request ${i} is Nak-ed`);
    assert.equal(decodeOptions(r.last().data)[0]!.data.readUInt16BE(0), 576);
  }
  for (let i = 3; i < 6; i++) {
    r.rx(CODE.CONF_REQ, 50 + i, bad);
    assert.equal(r.last().code, CODE.CONF_REJ, `request ${i} is Rejected`);
    assert.deepEqual(r.last().data, bad, 'the Reject carries the peer option unchanged');
  }
  assert.equal(r.signals('finished').length, 0);
  r.rx(CODE.CONF_REQ, 60, bad);
  assert.equal(r.fsm.state, 'Closing');
  assert.equal(r.last().code, CODE.TERM_REQ);
  r.rx(CODE.TERM_ACK, r.last().id);
  assert.equal(r.fsm.state, 'Closed');
  const fin = r.signals('finished') as { reason: string }[];
  assert.equal(fin.length, 1);
  assert.match(fin[0]!.reason, /not converging/);
});

test('a peer that Naks forever is given up on too', () => {
  const r = lcpRig(1400, { maxFailure: 2 });
  r.start();
  for (let i = 0; i < 5; i++) r.rx(CODE.CONF_NAK, r.last().id, encodeOptions([opt(1, u16(1300))]));
  assert.equal(r.fsm.state, 'Closing');
  assert.match(r.fsm.lastReason, /not converging/);
});

test('unknown codes get a Code-Reject carrying the packet; a Code-Reject of Configure-Request is fatal', () => {
  const r = lcpRig();
  r.start();
  const odd = encodePacket(0x42, 7, Buffer.from('hi'));
  r.take(r.fsm.receive(odd));
  assert.equal(r.last().code, CODE.CODE_REJ);
  assert.deepEqual(r.last().data, odd);
  assert.equal(r.fsm.state, 'Req-Sent');
  // Rejecting an Echo-Request is permitted (RXJ+)...
  r.rx(CODE.CODE_REJ, 1, encodePacket(CODE.ECHO_REQ, 1, u32(0)));
  assert.equal(r.fsm.state, 'Req-Sent');
  // ...rejecting Configure-Request is not (RXJ-).
  r.rx(CODE.CODE_REJ, 2, encodePacket(CODE.CONF_REQ, 1));
  assert.equal(r.fsm.state, 'Stopped');
  assert.match((r.signals('finished')[0] as { reason: string }).reason, /Code-Rejected code 1/);
});

async function opened(r: AutomatonRig) {
  r.start();
  const req = r.sent[0]!;
  r.rx(CODE.CONF_ACK, req.id, req.data);
  r.rx(CODE.CONF_REQ, 1, encodeOptions([opt(5, u32(0xabcdef01))]));
  assert.equal(r.fsm.state, 'Opened');
}

test('peer Terminate-Request in Opened: Terminate-Ack, one restart period in Stopping, then finished', async () => {
  const r = lcpRig();
  await opened(r);
  r.rx(CODE.TERM_REQ, 77, Buffer.from('Bye'));
  assert.equal(r.last().code, CODE.TERM_ACK);
  assert.equal(r.last().id, 77);
  assert.equal(r.fsm.state, 'Stopping');
  assert.match((r.signals('down')[0] as { reason: string }).reason, /Terminate-Request: Bye/);
  r.clock.advance(3000);
  assert.equal(r.fsm.state, 'Stopped');
  assert.equal(r.signals('finished').length, 1);
});

test('our close: Terminate-Request sent Max-Terminate times, then finished with our reason', async () => {
  const r = lcpRig();
  await opened(r);
  const before = r.sent.length;
  r.take(r.fsm.close('user asked'));
  assert.equal(r.fsm.state, 'Closing');
  r.clock.advance(20_000);
  const terms = r.sent.slice(before).filter((p) => p.code === CODE.TERM_REQ);
  assert.equal(terms.length, 2);
  assert.equal(r.fsm.state, 'Closed');
  assert.equal((r.signals('finished')[0] as { reason: string }).reason, 'user asked');
});

test('Protocol-Reject: of LCP itself is fatal, of another protocol is reported for that NCP', async () => {
  const r = lcpRig();
  await opened(r);
  r.rx(CODE.PROTO_REJ, 3, Buffer.concat([u16(PROTO.IPV6CP), Buffer.from([1, 1, 0, 4])]));
  assert.equal(r.fsm.state, 'Opened');
  assert.deepEqual(r.signals('protocol-rejected'), [{ type: 'protocol-rejected', layer: 'lcp', protocol: PROTO.IPV6CP }]);
  r.rx(CODE.PROTO_REJ, 4, u16(PROTO.LCP));
  assert.equal(r.fsm.state, 'Stopping');
});

// Issue 16 item 9: pppd behind an xl2tpd LNS starts after the session is up and loses
// our first Configure-Request; its own request then arrives while ours is unanswered.
test('the peer asks first while our request is unanswered: ours is retransmitted soon, not after 3 s', () => {
  const r = lcpRig(1400, { peerRequestResendMs: 100 });
  r.start();
  const first = r.sent[0]!;
  r.clock.advance(1000);
  r.rx(CODE.CONF_REQ, 7, encodeOptions([opt(5, u32(0x11223344))]));
  assert.equal(r.fsm.state, 'Ack-Sent');
  assert.equal(r.last().code, CODE.CONF_ACK);
  const before = r.sent.length;
  r.clock.advance(100);
  assert.equal(r.sent.length, before + 1, 'our request again, 100 ms after the peer asked');
  assert.equal(r.last().code, CODE.CONF_REQ);
  assert.equal(r.last().id, first.id, 'a retransmission keeps the Identifier');
  r.rx(CODE.CONF_ACK, first.id, first.data);
  assert.equal(r.fsm.state, 'Opened');
  assert.equal(r.clock.size(), 0);
});

test('early retransmission happens once per negotiation, and not when our request was answered', () => {
  const r = lcpRig(1400, { peerRequestResendMs: 0 });
  r.start();
  r.rx(CODE.CONF_REQ, 7, encodeOptions([opt(5, u32(0x11223344))]));
  assert.equal(r.sent.length, 3, 'request, Ack, request again at once');
  assert.equal(r.sent[2]!.code, CODE.CONF_REQ);
  r.rx(CODE.CONF_REQ, 8, encodeOptions([opt(5, u32(0x11223344))]));
  assert.equal(r.sent.length, 4, 'the second peer request gets only its Ack');
  // Answered first: no early retransmission.
  const q = lcpRig(1400, { peerRequestResendMs: 0 });
  q.start();
  const req = q.sent[0]!;
  q.rx(CODE.CONF_ACK, req.id, req.data);
  q.rx(CODE.CONF_REQ, 7, encodeOptions([opt(5, u32(0x11223344))]));
  assert.equal(q.fsm.state, 'Opened');
  assert.deepEqual(
    q.sent.map((p) => p.code),
    [CODE.CONF_REQ, CODE.CONF_ACK],
  );
});

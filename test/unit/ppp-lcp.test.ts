/** LCP option policy, including the exact ConfReq l2tpns sends. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Automaton } from '../../src/ppp/automaton';
import {
  CODE,
  decodeOptions,
  decodePacket,
  encodeOptions,
  opt,
  PROTO,
  u16,
  u32,
} from '../../src/ppp/frame';
import { buildProtocolReject, LcpHandler, type LcpConfig } from '../../src/ppp/lcp';
import { AutomatonRig, seqRandom } from '../helpers/ppp';

const creds = { username: 'cpe1', password: 'secret1' };

function lcp(cfg: Partial<LcpConfig> = {}) {
  const h = new LcpHandler({ randomBytes: seqRandom(7), ...cfg });
  const r = new AutomatonRig(new Automaton('lcp', PROTO.LCP, h)).start();
  return { h, fsm: r.fsm, sent: r.sent, events: r.events, take: r.take, rx: r.rx };
}

// What l2tpns sends first: MRU=1462 Auth=CHAP/MD5 Magic MRRU=1614 EndpointDisc class 2 (IP 198.51.100.1).
const MRU = opt(1, u16(1462));
const AUTH = opt(3, [0xc2, 0x23, 0x05]);
const MAGIC = opt(5, u32(0x5eed1234));
const MRRU = opt(17, u16(1614));
const EPD = opt(19, [2, 198, 51, 100, 1]);

test('l2tpns ConfReq: MRRU (17) and Endpoint Discriminator (19) are Config-Rejected, the resend is Acked', () => {
  const l = lcp({ credentials: creds, mru: 1460 });
  l.rx(CODE.CONF_REQ, 1, encodeOptions([MRU, AUTH, MAGIC, MRRU, EPD]));
  const rej = l.sent.at(-1)!;
  assert.equal(rej.code, CODE.CONF_REJ);
  assert.equal(rej.id, 1);
  assert.deepEqual(rej.data, encodeOptions([MRRU, EPD]));
  assert.equal(l.fsm.state, 'Req-Sent');
  const resend = encodeOptions([MRU, AUTH, MAGIC]);
  l.rx(CODE.CONF_REQ, 2, resend);
  const ack = l.sent.at(-1)!;
  assert.equal(ack.code, CODE.CONF_ACK);
  assert.equal(ack.id, 2);
  assert.deepEqual(ack.data, resend, 'Ack repeats the options byte for byte');
  assert.equal(l.fsm.state, 'Ack-Sent');
  const ours = l.sent[0]!;
  assert.deepEqual(
    decodeOptions(ours.data).map((o) => o.type),
    [1, 5],
  );
  l.rx(CODE.CONF_ACK, ours.id, ours.data);
  assert.equal(l.fsm.state, 'Opened');
  const n = l.h.negotiated;
  assert.equal(n.peerMru, 1462);
  assert.equal(n.ourMru, 1460);
  assert.equal(n.auth, 'chap-md5');
  assert.equal(n.peerMagic, 0x5eed1234);
  assert.notEqual(n.ourMagic, 0);
});

test('authentication option: rejected without credentials; other CHAP algorithms and protocols Nak-ed', () => {
  const none = lcp();
  none.rx(CODE.CONF_REQ, 1, encodeOptions([AUTH]));
  assert.equal(none.sent.at(-1)!.code, CODE.CONF_REJ);
  assert.deepEqual(none.sent.at(-1)!.data, encodeOptions([AUTH]));

  const withCreds = lcp({ credentials: creds });
  withCreds.rx(CODE.CONF_REQ, 1, encodeOptions([opt(3, [0xc2, 0x23, 0x81])])); // MS-CHAPv2
  assert.equal(withCreds.sent.at(-1)!.code, CODE.CONF_NAK);
  assert.deepEqual(withCreds.sent.at(-1)!.data, encodeOptions([AUTH]));
  withCreds.rx(CODE.CONF_REQ, 2, encodeOptions([opt(3, [0xc2, 0x27])])); // EAP
  assert.deepEqual(withCreds.sent.at(-1)!.data, encodeOptions([AUTH]));
  withCreds.rx(CODE.CONF_REQ, 3, encodeOptions([opt(3, [0xc0, 0x23])])); // PAP is fine
  assert.equal(withCreds.sent.at(-1)!.code, CODE.CONF_ACK);
  assert.equal(withCreds.h.negotiated.auth, 'pap');

  const papOnly = lcp({ credentials: { ...creds, allow: ['pap'] } });
  papOnly.rx(CODE.CONF_REQ, 1, encodeOptions([AUTH]));
  assert.equal(papOnly.sent.at(-1)!.code, CODE.CONF_NAK);
  assert.deepEqual(papOnly.sent.at(-1)!.data, encodeOptions([opt(3, [0xc0, 0x23])]));
});

test('MRU below 576 is Nak-ed with 576; ACFC and PFC are rejected; zero magic is Nak-ed', () => {
  const l = lcp();
  l.rx(CODE.CONF_REQ, 1, encodeOptions([opt(1, u16(500)), opt(5, u32(0))]));
  const nak = l.sent.at(-1)!;
  assert.equal(nak.code, CODE.CONF_NAK);
  const o = decodeOptions(nak.data);
  assert.equal(o[0]!.data.readUInt16BE(0), 576);
  assert.equal(o[1]!.type, 5);
  assert.notEqual(o[1]!.data.readUInt32BE(0), 0);
  l.rx(CODE.CONF_REQ, 2, encodeOptions([opt(1, u16(576)), opt(7), opt(8)]));
  assert.equal(l.sent.at(-1)!.code, CODE.CONF_REJ);
  assert.deepEqual(l.sent.at(-1)!.data, encodeOptions([opt(7), opt(8)]));
});

test('our MRU is only requested when it differs from 1500', () => {
  assert.deepEqual(
    decodeOptions(lcp({ mru: 1500 }).sent[0]!.data).map((o) => o.type),
    [5],
  );
});

test('looped-back link: our own ConfReq coming back is Nak-ed with new magics, then fails with looped-back', () => {
  const l = lcp();
  // Loopback: everything we send comes straight back to us.
  for (let i = 0; i < 20 && l.fsm.state !== 'Closing'; i++) {
    const p = l.sent.at(-1)!;
    if (p.code === CODE.CONF_REQ) l.rx(CODE.CONF_REQ, p.id, p.data);
    const q = l.sent.at(-1)!;
    if (q.code === CODE.CONF_NAK) l.rx(CODE.CONF_NAK, q.id, q.data);
  }
  assert.equal(l.fsm.state, 'Closing');
  assert.equal(l.fsm.lastReason, 'looped-back');
  assert.ok(l.h.looped);
  const naks = l.sent.filter((p) => p.code === CODE.CONF_NAK);
  assert.ok(naks.length >= 3);
});

test('Echo-Request in Opened is answered with our magic and the same Identifier; ignored before', () => {
  const l = lcp();
  l.rx(CODE.ECHO_REQ, 9, u32(0x5eed1234));
  assert.equal(l.sent.length, 1, 'no reply outside Opened');
  const ours = l.sent[0]!;
  l.rx(CODE.CONF_ACK, ours.id, ours.data);
  l.rx(CODE.CONF_REQ, 1, encodeOptions([MAGIC]));
  assert.equal(l.fsm.state, 'Opened');
  l.rx(CODE.ECHO_REQ, 9, Buffer.concat([u32(0x5eed1234), Buffer.from('xyz')]));
  const rep = l.sent.at(-1)!;
  assert.equal(rep.code, CODE.ECHO_REPLY);
  assert.equal(rep.id, 9);
  assert.equal(rep.data.readUInt32BE(0), l.h.negotiated.ourMagic);
  assert.equal(rep.data.subarray(4).toString(), 'xyz');
  // Discard-Request: no answer, no state change.
  const n = l.sent.length;
  l.rx(CODE.DISCARD_REQ, 10, u32(0x5eed1234));
  assert.equal(l.sent.length, n);
  assert.equal(l.fsm.state, 'Opened');
});

test('Protocol-Reject builder: rejected protocol then the payload, bounded by the peer MRU', () => {
  const p = decodePacket(buildProtocolReject(4, 0x80fd, Buffer.alloc(3000, 0xaa), 1000));
  assert.equal(p.code, CODE.PROTO_REJ);
  assert.equal(p.id, 4);
  assert.equal(p.data.readUInt16BE(0), 0x80fd);
  assert.equal(p.data.length + 4, 1000);
});

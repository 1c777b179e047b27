/** IPV6CP (RFC 5072, RFC 5571 8.1.1) and IPCP (RFC 1332, RFC 1877) negotiation. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Automaton } from '../../src/ppp/automaton';
import {
  CODE,
  decodeOptions,
  encodeOptions,
  opt,
  PROTO,
} from '../../src/ppp/frame';
import { IpcpHandler, ipv4ToBuffer } from '../../src/ppp/ipcp';
import { formatIid, Ipv6cpHandler } from '../../src/ppp/ipv6cp';
import { AutomatonRig, seqRandom } from '../helpers/ppp';

const rig = (fsm: Automaton) => new AutomatonRig(fsm).start();

const iid = (hex: string) => Buffer.from(hex, 'hex');
const LNS_IID = iid('0000000000000001');

test('IPV6CP: the SC Naks our IID to <IPv4>:0:0 and we take it; peer ::1 is Acked', () => {
  const h = new Ipv6cpHandler({ randomBytes: seqRandom(3) });
  const fsm = new Automaton('ipv6cp', PROTO.IPV6CP, h);
  const r = rig(fsm);
  const req1 = r.sent[0]!;
  const ours = decodeOptions(req1.data)[0]!;
  assert.equal(ours.type, 1);
  assert.equal(ours.data.length, 8);
  assert.equal(ours.data[0]! & 0x02, 0, 'u/l bit clear on a random IID');
  const assigned = iid('c633648000000000'); // 198.51.100.128 -> c633:6480:0:0
  r.rx(CODE.CONF_NAK, req1.id, encodeOptions([opt(1, assigned)]));
  const req2 = r.sent.at(-1)!;
  assert.deepEqual(decodeOptions(req2.data)[0]!.data, assigned);
  r.rx(CODE.CONF_ACK, req2.id, req2.data);
  r.rx(CODE.CONF_REQ, 1, encodeOptions([opt(1, LNS_IID)]));
  assert.equal(r.sent.at(-1)!.code, CODE.CONF_ACK);
  assert.equal(fsm.state, 'Opened');
  assert.equal(formatIid(h.result.ourIid), 'c633:6480:0:0');
  assert.deepEqual(h.result.peerIid, LNS_IID);
});

test('IPV6CP: identical IIDs (RFC 5072 4.1): Nak the peer with a different one and pick a new one ourselves', () => {
  const h = new Ipv6cpHandler({ randomBytes: seqRandom(3) });
  const fsm = new Automaton('ipv6cp', PROTO.IPV6CP, h);
  const r = rig(fsm);
  const mine = decodeOptions(r.sent[0]!.data)[0]!.data;
  r.rx(CODE.CONF_REQ, 4, encodeOptions([opt(1, mine)]));
  const nak = r.sent.at(-1)!;
  assert.equal(nak.code, CODE.CONF_NAK);
  const suggested = decodeOptions(nak.data)[0]!.data;
  assert.notDeepEqual(suggested, mine);
  assert.notDeepEqual(suggested, Buffer.alloc(8));
  // Our next request (after the peer's Nak or a timeout) carries a new IID too.
  r.rx(CODE.CONF_NAK, r.sent[0]!.id, encodeOptions([opt(1, Buffer.alloc(8))]));
  const next = decodeOptions(r.sent.at(-1)!.data)[0]!.data;
  assert.notDeepEqual(next, mine);
  assert.notDeepEqual(next, Buffer.alloc(8));
});

test('IPV6CP: zero IID from the peer gets a suggestion; compression rejected; configured IID is sent', () => {
  const h = new Ipv6cpHandler({ randomBytes: seqRandom(3), iid: iid('0200000000000abc') });
  const fsm = new Automaton('ipv6cp', PROTO.IPV6CP, h);
  const r = rig(fsm);
  assert.deepEqual(decodeOptions(r.sent[0]!.data)[0]!.data, iid('0200000000000abc'));
  r.rx(CODE.CONF_REQ, 1, encodeOptions([opt(1, Buffer.alloc(8)), opt(2, [0x00, 0x4f])]));
  const rej = r.sent.at(-1)!;
  assert.equal(rej.code, CODE.CONF_REJ, 'Reject wins over Nak');
  assert.deepEqual(rej.data, encodeOptions([opt(2, [0x00, 0x4f])]));
  r.rx(CODE.CONF_REQ, 2, encodeOptions([opt(1, Buffer.alloc(8))]));
  const nak = r.sent.at(-1)!;
  assert.equal(nak.code, CODE.CONF_NAK);
  assert.notDeepEqual(decodeOptions(nak.data)[0]!.data, Buffer.alloc(8));
});

test('IPCP: address and DNS 129/131 come from the Nak; peer address Acked', () => {
  const h = new IpcpHandler();
  const fsm = new Automaton('ipcp', PROTO.IPCP, h);
  const r = rig(fsm);
  const req1 = r.sent[0]!;
  assert.deepEqual(
    decodeOptions(req1.data).map((o) => [o.type, [...o.data]]),
    [
      [3, [0, 0, 0, 0]],
      [129, [0, 0, 0, 0]],
      [131, [0, 0, 0, 0]],
    ],
  );
  r.rx(CODE.CONF_REQ, 1, encodeOptions([opt(3, ipv4ToBuffer('198.51.100.1'))]));
  assert.equal(r.sent.at(-1)!.code, CODE.CONF_ACK);
  r.rx(
    CODE.CONF_NAK,
    req1.id,
    encodeOptions([
      opt(3, ipv4ToBuffer('198.51.100.128')),
      opt(129, ipv4ToBuffer('192.0.2.53')),
      opt(131, ipv4ToBuffer('192.0.2.54')),
    ]),
  );
  const req2 = r.sent.at(-1)!;
  r.rx(CODE.CONF_ACK, req2.id, req2.data);
  assert.equal(fsm.state, 'Opened');
  assert.deepEqual(h.result, { address: '198.51.100.128', peer: '198.51.100.1', dns: ['192.0.2.53', '192.0.2.54'] });
});

test('IPCP: rejected DNS options are no longer requested; compression and IP-Addresses rejected', () => {
  const h = new IpcpHandler();
  const fsm = new Automaton('ipcp', PROTO.IPCP, h);
  const r = rig(fsm);
  r.rx(CODE.CONF_REJ, r.sent[0]!.id, encodeOptions([opt(129, [0, 0, 0, 0]), opt(131, [0, 0, 0, 0])]));
  assert.deepEqual(
    decodeOptions(r.sent.at(-1)!.data).map((o) => o.type),
    [3],
  );
  const vj = opt(2, [0x00, 0x2d, 0x0f, 0x01]);
  const addrs = opt(1, [10, 0, 0, 1, 10, 0, 0, 2]);
  r.rx(CODE.CONF_REQ, 5, encodeOptions([opt(3, ipv4ToBuffer('198.51.100.1')), vj, addrs]));
  assert.equal(r.sent.at(-1)!.code, CODE.CONF_REJ);
  assert.deepEqual(r.sent.at(-1)!.data, encodeOptions([vj, addrs]));
});

test('IPCP: a rejected IP-Address (no address obtainable) closes with a reason', () => {
  const fsm = new Automaton('ipcp', PROTO.IPCP, new IpcpHandler());
  const r = rig(fsm);
  r.rx(CODE.CONF_REJ, r.sent[0]!.id, encodeOptions([opt(3, [0, 0, 0, 0])]));
  assert.equal(fsm.state, 'Closing');
  assert.match(fsm.lastReason, /rejected the IP-Address/);
});

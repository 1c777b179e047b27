import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import {
  challengeResponse,
  decodeAvps,
  decodeMessage,
  decodePacket,
  decodeRawAvps,
  encodeControl,
  encodeControlBody,
  encodeData,
  encodePacket,
  encodeRawAvps,
  hide,
  KNOWN_AVP_TYPES,
  L2tpDecodeError,
  type L2tpDecodeReason,
  missingAvps,
  type RawAvp,
  rawAvps,
  requireAvps,
  unhideValue,
  unknownMandatory,
} from '../../src/l2tp';
import { seqAdd, seqDiff, seqLt } from '../../src/l2tp/seq';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const bytes = (h: string) => new Uint8Array(Buffer.from(h.replace(/\s+/g, ''), 'hex'));

function throwsReason(fn: () => unknown, reason: L2tpDecodeReason) {
  assert.throws(fn, (e: unknown) => e instanceof L2tpDecodeError && e.reason === reason);
}

describe('header', () => {
  test('ZLB control header: T L S, Ver 2, length 12', () => {
    const b = encodeControl({ tunnelId: 0x1234, sessionId: 0, ns: 1, nr: 2 }, new Uint8Array(0));
    assert.equal(hex(b), 'c802000c1234000000010002');
    const p = decodePacket(b);
    assert.deepEqual(p.header, {
      control: true,
      withLength: true,
      tunnelId: 0x1234,
      sessionId: 0,
      ns: 1,
      nr: 2,
      priority: false,
    });
    assert.equal(p.payload.length, 0);
  });

  test('minimal data header (as l2tpns sends: flags 0x0002)', () => {
    const b = encodeData({ tunnelId: 7, sessionId: 9 }, bytes('ff03c021'));
    assert.equal(hex(b), '000200070009ff03c021');
    const m = decodeMessage(bytes('010200070009ff03c021'));
    assert.equal(m.kind, 'data');
    if (m.kind !== 'data') return;
    assert.equal(m.priority, true); // LCP echo from l2tpns: 0x0102
    assert.equal(hex(m.payload), 'ff03c021');
  });

  test('data with L, S, O: offset padding skipped, Length honoured, trailing bytes ignored', () => {
    // flags 0x4a02 = L S O, Length 18, tunnel 1, session 2, Ns 5, Nr 0, Offset Size 2, pad 2, payload 2
    const b = bytes('4a02 0012 0001 0002 0005 0000 0002 eeee c021 ffff');
    const p = decodePacket(b);
    assert.equal(p.header.ns, 5);
    assert.equal(p.header.offsetSize, 2);
    assert.equal(hex(p.payload), 'c021');
    const again = encodePacket(p.header, p.payload);
    assert.equal(hex(again), '4a02001200010002000500000002' + '0000' + 'c021');
  });

  test('rejections carry a reason', () => {
    throwsReason(() => decodePacket(bytes('c802')), 'short');
    throwsReason(() => decodePacket(bytes('c803000c1234000000010002')), 'version');
    throwsReason(() => decodePacket(bytes('8802000c1234000000010002')), 'control-flags'); // no L
    throwsReason(() => decodePacket(bytes('c002000c12340000')), 'control-flags'); // no S
    throwsReason(() => decodePacket(bytes('ca02000e123400000001000200')), 'control-flags'); // O on control
    throwsReason(() => decodePacket(bytes('c80200201234000000010002')), 'length'); // Length > datagram
    throwsReason(() => decodePacket(bytes('c80200081234000000010002')), 'length'); // Length < header
    throwsReason(() => decodePacket(bytes('020200010002 0009 00')), 'offset');
  });

  test('reserved header bits are ignored on input', () => {
    const p = decodePacket(bytes('fcf2 000c 0001 0000 0000 0000'));
    assert.equal(p.header.control, true);
  });
});

describe('AVP codec', () => {
  const sccrqHex =
    'c802003f000000000000 0000'.replace(/ /g, '') +
    '8008000000000001' + // Message Type = 1 (SCCRQ)
    '8008000000020100' + // Protocol Version 1.0
    '800a00000003 00000003'.replace(/ /g, '') + // Framing Capabilities: sync + async
    '800900000007 6c6163'.replace(/ /g, '') + // Host Name "lac"
    '8008000000090005' + // Assigned Tunnel ID 5
    '8008 0000 000a 0004'.replace(/ /g, ''); // Receive Window Size 4

  test('SCCRQ known-good bytes (built by hand from RFC 2661 4.1/4.4)', () => {
    const body = encodeControlBody('SCCRQ', {
      protocolVersion: { version: 1, revision: 0 },
      hostName: 'lac',
      framingCapabilities: { sync: true, async: true },
      assignedTunnelId: 5,
      receiveWindowSize: 4,
    });
    assert.equal(hex(encodeControl({ tunnelId: 0, sessionId: 0, ns: 0, nr: 0 }, body)), sccrqHex);
    const m = decodeMessage(bytes(sccrqHex));
    assert.equal(m.kind, 'control');
    if (m.kind !== 'control' || !m.message) return assert.fail('not a control message');
    const sccrq = requireAvps(m.message, 'SCCRQ');
    assert.equal(sccrq.values.hostName, 'lac');
    assert.equal(sccrq.values.assignedTunnelId, 5);
    assert.deepEqual(sccrq.values.framingCapabilities, { sync: true, async: true });
  });

  test('Result Code: result only, with error, with message', () => {
    const enc = (rc: { result: number; error?: number; message?: string }) => hex(encodeRawAvps(rawAvps({ resultCode: rc })));
    assert.equal(enc({ result: 1 }), '800800000001' + '0001');
    assert.equal(enc({ result: 2, error: 8 }), '800a00000001' + '00020008');
    assert.equal(enc({ result: 2, error: 7, message: 'hi' }), '800c00000001' + '000200076869');
    // A 3-byte Result Code does not fail the decode: it is reported, for the FSM to judge (RFC 2661 7.1).
    const d = decodeAvps(bytes('800900000001000200'));
    assert.equal(d.values.resultCode, undefined);
    assert.deepEqual(
      d.malformed.map((m) => [m.name, m.type, m.mandatory, m.length]),
      [['resultCode', 1, true, 3]],
    );
    // M=0 as received is kept: it decides whether the AVP may be ignored.
    assert.equal(decodeAvps(bytes('000900000001000200')).malformed[0]!.mandatory, false);
  });

  test('M bits follow RFC 2661 4.4 (Vendor Name, Firmware, Tie Breaker are optional)', () => {
    const avps = rawAvps({ vendorName: 'v', firmwareRevision: 1, tieBreaker: new Uint8Array(8), hostName: 'h' });
    const m = Object.fromEntries(avps.map((a) => [a.type, a.mandatory]));
    assert.deepEqual(m, { 5: false, 6: false, 7: true, 8: false });
  });

  test('the table types every AVP of RFC 2661 4.4 (0-19, 21-39)', () => {
    const want = [...Array(40).keys()].filter((t) => t !== 20);
    assert.deepEqual(
      [...KNOWN_AVP_TYPES].sort((a, b) => a - b),
      want,
    );
  });

  test('unknown AVPs: M=0 kept as unknown, M=1 reported; vendor and reserved bits count as unknown', () => {
    const body = encodeControlBody('ICRP', { assignedSessionId: 3 }, [
      { mandatory: false, hidden: false, reserved: 0, vendorId: 0, type: 102, value: bytes('00000001') },
      { mandatory: true, hidden: false, reserved: 0, vendorId: 9, type: 1, value: bytes('01') },
      { mandatory: true, hidden: false, reserved: 1, vendorId: 0, type: 14, value: bytes('0004') },
    ]);
    const m = decodeMessage(encodeControl({ tunnelId: 1, sessionId: 2, ns: 0, nr: 0 }, body));
    if (m.kind !== 'control' || !m.message) return assert.fail();
    assert.equal(m.message.values.assignedSessionId, 3);
    assert.equal(m.message.unknown.length, 3);
    assert.deepEqual(
      unknownMandatory(m.message).map((a) => [a.vendorId, a.type]),
      [
        [9, 1],
        [0, 14],
      ],
    );
  });

  test('AVP framing errors', () => {
    throwsReason(() => decodeRawAvps(bytes('80050000')), 'avp-length');
    throwsReason(() => decodeRawAvps(bytes('800500000000')), 'avp-length'); // length 5 < 6
    throwsReason(() => decodeRawAvps(bytes('80100000000000')), 'avp-length'); // past the end
    const many = encodeRawAvps(
      Array.from(
        { length: 257 },
        (): RawAvp => ({ mandatory: false, hidden: false, reserved: 0, vendorId: 0, type: 200, value: new Uint8Array(0) }),
      ),
    );
    throwsReason(() => decodeRawAvps(many), 'avp-count');
    throwsReason(
      () => decodeMessage(encodeControl({ tunnelId: 1, sessionId: 0, ns: 0, nr: 0 }, bytes('800800000007'.concat('6c61')))),
      'message-type',
    );
  });

  test('control messages larger than the bound are refused', () => {
    const big = encodeControlBody(
      'HELLO',
      {},
      Array.from({ length: 9 }, () => ({
        mandatory: false,
        hidden: false,
        reserved: 0,
        vendorId: 0,
        type: 200,
        value: new Uint8Array(1000),
      })),
    );
    throwsReason(() => decodeMessage(encodeControl({ tunnelId: 1, sessionId: 0, ns: 0, nr: 0 }, big)), 'too-long');
  });

  test('missing required AVPs are reported and requireAvps throws a typed error', () => {
    const body = encodeRawAvps(rawAvps({ messageType: 2, hostName: 'sc', assignedTunnelId: 4 }));
    const m = decodeMessage(encodeControl({ tunnelId: 1, sessionId: 0, ns: 0, nr: 0 }, body));
    if (m.kind !== 'control' || !m.message) return assert.fail();
    assert.deepEqual(missingAvps(m.message), ['protocolVersion', 'framingCapabilities']);
    throwsReason(() => requireAvps(m.message!, 'SCCRP'), 'missing-avp');
  });
});

describe('hidden AVPs (RFC 2661 4.3)', () => {
  const secret = 's3cret';
  const rv = bytes('0102030405060708090a0b0c0d0e0f10');
  const md5 = (...p: (Uint8Array | string)[]) => {
    const h = createHash('md5');
    for (const x of p) h.update(x);
    return new Uint8Array(h.digest());
  };

  test('one block: value XOR MD5(type ‖ secret ‖ RV), with the original length prefix', () => {
    const h = hide({ mandatory: false, hidden: false, reserved: 0, vendorId: 0, type: 30, value: bytes('616263') }, secret, rv);
    const key = md5(bytes('001e'), secret, rv);
    const want = bytes('0003616263').map((b, i) => b ^ key[i]!);
    assert.equal(hex(h.value), hex(want));
    assert.equal(hex(unhideValue(30, h.value, secret, rv)), '616263');
  });

  test('two blocks chain on the previous ciphertext block', () => {
    const value = new Uint8Array(20).map((_, i) => i + 0x40);
    const h = hide({ mandatory: true, hidden: false, reserved: 0, vendorId: 0, type: 7, value }, secret, rv, 4);
    assert.equal(h.value.length, 2 + 20 + 4);
    const plain = new Uint8Array(26);
    plain[1] = 20;
    plain.set(value, 2);
    const k1 = md5(bytes('0007'), secret, rv);
    const k2 = md5(secret, h.value.subarray(0, 16));
    const want = plain.map((b, i) => b ^ (i < 16 ? k1[i]! : k2[i - 16]!));
    assert.equal(hex(h.value), hex(want));
  });

  test('hidden Host Name inside a message is unhidden with the secret and the preceding Random Vector', () => {
    const hostHidden = hide(rawAvps({ hostName: 'lns.example' })[0]!, secret, rv, 5);
    const body = encodeControlBody(
      'SCCRP',
      {
        protocolVersion: { version: 1, revision: 0 },
        framingCapabilities: { sync: true, async: true },
        hostName: 'x',
        assignedTunnelId: 2,
      },
      [],
    );
    // Replace the clear Host Name: rebuild from raw AVPs with RV first, then the hidden one.
    const raw = decodeRawAvps(body).filter((a) => a.type !== 7);
    raw.splice(1, 0, ...rawAvps({ randomVector: rv }), hostHidden);
    const wire = encodeControl({ tunnelId: 1, sessionId: 0, ns: 0, nr: 0 }, encodeRawAvps(raw));
    const m = decodeMessage(wire, { secret });
    if (m.kind !== 'control' || !m.message) return assert.fail();
    assert.equal(m.message.values.hostName, 'lns.example');
    throwsReason(() => decodeMessage(wire), 'avp-hidden-no-secret');
    throwsReason(() => decodeMessage(wire, { secret: 'other' }), 'avp-hidden-length');
    const noRv = encodeControl({ tunnelId: 1, sessionId: 0, ns: 0, nr: 0 }, encodeRawAvps(raw.filter((a) => a.type !== 36)));
    throwsReason(() => decodeMessage(noRv, { secret }), 'avp-hidden-no-vector');
  });

  test('challenge response is MD5(message type ‖ secret ‖ challenge)', () => {
    const ch = bytes('00112233');
    assert.equal(hex(challengeResponse(2, secret, ch)), hex(md5(bytes('02'), secret, ch)));
  });
});

describe('sequence arithmetic', () => {
  test('wraps at 16 bits', () => {
    assert.equal(seqAdd(0xffff, 1), 0);
    assert.equal(seqDiff(1, 0xffff), 2);
    assert.ok(seqLt(0xfffe, 1));
    assert.ok(!seqLt(1, 0xfffe));
    assert.ok(!seqLt(5, 5));
    assert.ok(seqLt(0, 0x7fff));
    assert.ok(!seqLt(0, 0x8000));
  });
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  decodeFrame,
  decodeOptions,
  decodePacket,
  encodeFrame,
  encodeOptions,
  encodePacket,
  MAX_OPTIONS,
  opt,
  PppDecodeError,
  PROTO,
} from '../../src/ppp/frame';

const reason = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof PppDecodeError, `expected PppDecodeError, got ${e}`);
    return e.reason;
  }
  assert.fail('expected a decode error');
};

test('frame: FF 03 + 2-byte protocol round-trips', () => {
  const f = encodeFrame(PROTO.LCP, Buffer.from([1, 2, 3]));
  assert.deepEqual([...f], [0xff, 0x03, 0xc0, 0x21, 1, 2, 3]);
  const d = decodeFrame(f);
  assert.equal(d.protocol, PROTO.LCP);
  assert.deepEqual([...d.payload], [1, 2, 3]);
});

test('frame: address/control may be absent and protocol compressed (ACFC/PFC)', () => {
  assert.equal(decodeFrame(Buffer.from([0x80, 0x57, 9])).protocol, PROTO.IPV6CP);
  const pfc = decodeFrame(Buffer.from([0x57, 0x60, 0x00]));
  assert.equal(pfc.protocol, PROTO.IPV6);
  assert.deepEqual([...pfc.payload], [0x60, 0x00]);
  assert.equal(decodeFrame(Buffer.from([0xff, 0x03, 0x21, 0x45])).protocol, PROTO.IPV4);
});

test('frame: bad protocol values and short frames are typed errors', () => {
  assert.equal(
    reason(() => decodeFrame(Buffer.alloc(0))),
    'short-frame',
  );
  assert.equal(
    reason(() => decodeFrame(Buffer.from([0xff, 0x03]))),
    'short-frame',
  );
  assert.equal(
    reason(() => decodeFrame(Buffer.from([0xff, 0x03, 0xc0]))),
    'short-frame',
  );
  // even low octet
  assert.equal(
    reason(() => decodeFrame(Buffer.from([0xff, 0x03, 0xc0, 0x20]))),
    'bad-protocol',
  );
  // an odd first protocol octet is a compressed (PFC) one-octet protocol, not an error
  assert.equal(decodeFrame(Buffer.from([0xff, 0x03, 0xc1, 0x21])).protocol, 0xc1);
});

test('packet: length field bounds the data; trailing padding ignored', () => {
  const p = Buffer.concat([encodePacket(1, 7, Buffer.from([5, 6])), Buffer.from([0, 0, 0])]);
  const d = decodePacket(p);
  assert.equal(d.code, 1);
  assert.equal(d.id, 7);
  assert.deepEqual([...d.data], [5, 6]);
  assert.equal(
    reason(() => decodePacket(Buffer.from([1, 1, 0]))),
    'short-packet',
  );
  assert.equal(
    reason(() => decodePacket(Buffer.from([1, 1, 0, 3]))),
    'bad-length',
  );
  assert.equal(
    reason(() => decodePacket(Buffer.from([1, 1, 0, 9, 0]))),
    'bad-length',
  );
});

test('options: TLV round-trip and malformed lengths', () => {
  const opts = [opt(1, [0x05, 0xb6]), opt(5, [1, 2, 3, 4]), opt(8)];
  const enc = encodeOptions(opts);
  assert.deepEqual([...enc], [1, 4, 0x05, 0xb6, 5, 6, 1, 2, 3, 4, 8, 2]);
  assert.deepEqual(
    decodeOptions(enc).map((o) => [o.type, [...o.data]]),
    opts.map((o) => [o.type, [...o.data]]),
  );
  assert.equal(
    reason(() => decodeOptions(Buffer.from([1]))),
    'bad-option-length',
  );
  assert.equal(
    reason(() => decodeOptions(Buffer.from([1, 1]))),
    'bad-option-length',
  );
  assert.equal(
    reason(() => decodeOptions(Buffer.from([1, 5, 0, 0]))),
    'bad-option-length',
  );
});

test('options: the count is bounded', () => {
  const many = Buffer.alloc((MAX_OPTIONS + 1) * 2);
  for (let i = 0; i < MAX_OPTIONS + 1; i++) many[i * 2 + 1] = 2;
  assert.equal(
    reason(() => decodeOptions(many)),
    'too-many-options',
  );
  assert.equal(decodeOptions(many.subarray(0, MAX_OPTIONS * 2)).length, MAX_OPTIONS);
});

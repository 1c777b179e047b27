import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { fuzzRuns } from '../property/arbitraries';
import { MAX_PACKET, PacketType, type ViciMessage, ViciDecodeError, ViciFramer, decodePacket, encodePacket } from '../../src/ipsec/vici-codec';

const RUNS = fuzzRuns(1000);

/** A hand-assembled packet as charon sends it (see strongSwan's libvici message format). */
test('decodes a CMD_RESPONSE laid out byte by byte: key/value, section, list', () => {
  const name = (s: string) => [s.length, ...Buffer.from(s)];
  const val = (s: string) => [0, s.length, ...Buffer.from(s)];
  const body = Buffer.from([
    PacketType.CMD_RESPONSE,
    3, ...name('success'), ...val('yes'),
    1, ...name('sa'), 3, ...name('state'), ...val('ESTABLISHED'), 2,
    4, ...name('ts'), 5, ...val('10.0.0.1/32[udp/1701]'), 5, ...val('x'), 6,
  ]);
  const p = decodePacket(body);
  assert.equal(p.type, PacketType.CMD_RESPONSE);
  assert.equal(p.name, undefined);
  assert.deepEqual({ ...p.message, sa: { ...(p.message.sa as ViciMessage) } }, { success: 'yes', sa: { state: 'ESTABLISHED' }, ts: ['10.0.0.1/32[udp/1701]', 'x'] });
  // And the encoder produces exactly those bytes (plus the length prefix).
  const enc = encodePacket({ type: PacketType.CMD_RESPONSE, message: { success: 'yes', sa: { state: 'ESTABLISHED' }, ts: ['10.0.0.1/32[udp/1701]', 'x'] } });
  assert.equal(enc.readUInt32BE(0), body.length);
  assert.deepEqual(enc.subarray(4), body);
});

const key = fc.string({ minLength: 1, maxLength: 20 }).filter((s) => Buffer.byteLength(s) <= 255 && s !== '__proto__');
const value = fc.string({ maxLength: 40 });
const message: fc.Arbitrary<ViciMessage> = fc.letrec((tie) => ({
  msg: fc.dictionary(key, fc.oneof({ maxDepth: 3 }, value, fc.array(value, { maxLength: 4 }), tie('msg') as fc.Arbitrary<ViciMessage>), { maxKeys: 4 }),
})).msg as fc.Arbitrary<ViciMessage>;

const plain = (m: unknown): unknown => JSON.parse(JSON.stringify(m));

test('property: encode then frame then decode gives the message back, whatever the chunking', () => {
  fc.assert(
    fc.property(message, fc.constantFrom(0, 1, 3, 7), fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 6 }), (m, type, cuts) => {
      const name = type === 1 ? undefined : 'list-sas';
      const wire = encodePacket({ type, name, message: m });
      const twice = Buffer.concat([wire, wire]);
      const framer = new ViciFramer();
      const bodies: Buffer[] = [];
      let off = 0;
      let i = 0;
      while (off < twice.length) {
        const n = cuts[i++ % cuts.length]!;
        bodies.push(...framer.push(twice.subarray(off, off + n)));
        off += n;
      }
      assert.equal(bodies.length, 2);
      for (const b of bodies) {
        const p = decodePacket(b);
        assert.equal(p.type, type);
        assert.equal(p.name, name);
        assert.deepEqual(plain(p.message), plain(m));
      }
    }),
    { numRuns: RUNS },
  );
});

test('fuzz: hostile bytes only ever raise ViciDecodeError, never anything else', () => {
  const onlyTyped = (fn: () => unknown) => {
    try {
      fn();
    } catch (e) {
      if (!(e instanceof ViciDecodeError)) throw new Error(`non-ViciDecodeError escaped: ${String(e)}`, { cause: e });
    }
  };
  // Random bytes, and valid packets with bytes flipped or cut (closer to real corruption).
  const mutated = fc.tuple(message, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.nat()).map(([m, flips, cut]) => {
    const b = Buffer.from(encodePacket({ type: PacketType.EVENT, name: 'list-sa', message: m }).subarray(4));
    for (const [at, v] of flips) if (b.length) b[at % b.length] = v;
    return b.subarray(0, b.length ? (cut % b.length) + 1 : 0);
  });
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 200 }).map((u) => Buffer.from(u)), mutated), (b) => {
      onlyTyped(() => decodePacket(b));
      onlyTyped(() => new ViciFramer().push(b).forEach((x) => onlyTyped(() => decodePacket(x))));
    }),
    { numRuns: RUNS * 3 },
  );
});

test('hostile structure is refused with a reason: unbalanced sections, items outside lists, deep nesting, huge lengths', () => {
  const cases: [number[], RegExp][] = [
    [[1, 2], /section end without start/],
    [[1, 1, 1, 0x61], /ends inside a section/],
    [[1, 5, 0, 0], /list item outside a list/],
    [[1, 4, 1, 0x61, 3, 1, 0x62, 0, 0], /inside a list/],
    [[1, 9], /unknown element/],
    [[9], /unknown packet type/],
    [[1, 3, 1, 0x61, 0, 9, 1], /truncated value/],
    [[0], /truncated name length/],
  ];
  for (const [bytes, re] of cases) assert.throws(() => decodePacket(Buffer.from(bytes)), re);
  const deep = [1, ...Array.from({ length: 40 }, () => [1, 1, 0x61]).flat(), ...Array(40).fill(2)];
  assert.throws(() => decodePacket(Buffer.from(deep)), /nested too deeply/);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(MAX_PACKET + 1);
  assert.throws(() => new ViciFramer().push(len), /above/);
});

test('a value that is not UTF-8 stays bytes; __proto__ keys cannot pollute', () => {
  const b = Buffer.from([1, 3, 1, 0x6b, 0, 2, 0xff, 0xfe]);
  assert.ok(Buffer.isBuffer(decodePacket(b).message.k));
  const proto = Buffer.from([1, 1, 9, ...Buffer.from('__proto__'), 3, 1, 0x78, 0, 1, 0x79, 2]);
  const m = decodePacket(proto).message;
  assert.equal(({} as Record<string, unknown>).x, undefined);
  assert.ok(m.__proto__ !== undefined);
});

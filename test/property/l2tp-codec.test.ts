import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { bytes, fuzzRuns, l2tpHostile, messageValues, rec, someAvpValues, u16 } from './arbitraries';
import {
  decodeAvps,
  decodeControlBody,
  decodeMessage,
  decodePacket,
  decodeRawAvps,
  encodeControl,
  encodeControlBody,
  encodeData,
  encodePacket,
  encodeRawAvps,
  hide,
  hideValue,
  L2tpDecodeError,
  type L2tpHeader,
  Lac,
  type MessageName,
  MessageType,
  rawAvps,
  unhideValue,
} from '../../src/l2tp';

const FUZZ_RUNS = fuzzRuns();

const someValues = someAvpValues;

describe('round trips', () => {
  for (const name of Object.keys(MessageType) as MessageName[]) {
    test(`${name}: encode -> decode gives the same typed message`, () => {
      fc.assert(
        fc.property(messageValues(name), u16, u16, u16, u16, (values, tid, sid, ns, nr) => {
          const body = encodeControlBody(name, values as never);
          const m = decodeMessage(encodeControl({ tunnelId: tid, sessionId: sid, ns, nr }, body));
          assert.ok(m.kind === 'control' && m.message);
          assert.deepEqual([m.tunnelId, m.sessionId, m.ns, m.nr], [tid, sid, ns, nr]);
          assert.equal(m.message.name, name);
          assert.deepEqual(m.message.values, { ...values, messageType: MessageType[name] });
          assert.deepEqual(m.message.unknown, []);
        }),
        { numRuns: 100 },
      );
    });
  }

  test('headers round-trip', () => {
    const header: fc.Arbitrary<L2tpHeader> = fc.oneof(
      rec({
        control: fc.constant(true),
        withLength: fc.constant(true),
        tunnelId: u16,
        sessionId: u16,
        ns: u16,
        nr: u16,
        priority: fc.constant(false),
      }),
      rec(
        {
          control: fc.constant(false),
          withLength: fc.boolean(),
          tunnelId: u16,
          sessionId: u16,
          ns: u16,
          nr: u16,
          offsetSize: fc.integer({ min: 0, max: 16 }),
          priority: fc.boolean(),
        },
        { requiredKeys: ['control', 'withLength', 'tunnelId', 'sessionId', 'priority'] },
      ).filter((h) => (h.ns === undefined) === (h.nr === undefined)),
    );
    fc.assert(
      fc.property(header, bytes(0, 64), (h, payload) => {
        const p = decodePacket(encodePacket(h, payload));
        assert.deepEqual(p.header, h);
        assert.deepEqual(new Uint8Array(p.payload), payload);
      }),
    );
  });

  test('data messages round-trip', () => {
    fc.assert(
      fc.property(u16, u16, fc.option(u16, { nil: undefined }), fc.boolean(), bytes(0, 200), (tid, sid, ns, prio, ppp) => {
        const m = decodeMessage(encodeData({ tunnelId: tid, sessionId: sid, ns, priority: prio }, ppp));
        assert.ok(m.kind === 'data');
        assert.deepEqual([m.tunnelId, m.sessionId, m.ns, m.priority], [tid, sid, ns, prio]);
        assert.deepEqual(new Uint8Array(m.payload), ppp);
      }),
    );
  });

  test('hidden values round-trip for any secret, vector and padding', () => {
    fc.assert(
      fc.property(
        u16,
        bytes(0, 200),
        fc.oneof(fc.string(), bytes()),
        bytes(1, 32),
        fc.integer({ min: 0, max: 40 }),
        (t, v, s, rv, pad) => {
          const h = hideValue(t, v, s, rv, pad);
          assert.equal(h.length, 2 + v.length + pad);
          assert.deepEqual(new Uint8Array(unhideValue(t, h, s, rv)), v);
        },
      ),
    );
  });

  test('typed AVPs hidden inside a message decode to the same values', () => {
    fc.assert(
      fc.property(someValues, bytes(1, 16), fc.string({ minLength: 1 }), (values, rv, secret) => {
        const { randomVector: _ignored, ...rest } = values;
        const raw = [...rawAvps({ messageType: 6, randomVector: rv }), ...rawAvps(rest).map((a) => hide(a, secret, rv, 3))];
        const d = decodeAvps(encodeRawAvps(raw), { secret });
        assert.deepEqual(d.values, { ...rest, messageType: 6, randomVector: rv });
      }),
      { numRuns: 200 },
    );
  });
});

describe('fuzz: decoders throw only L2tpDecodeError', () => {
  const input = l2tpHostile;

  const onlyDecodeErrors = (fn: (b: Uint8Array) => unknown) => (b: Uint8Array) => {
    try {
      fn(b);
    } catch (e) {
      if (!(e instanceof L2tpDecodeError)) throw e;
    }
  };

  const decoders: [string, (b: Uint8Array) => unknown][] = [
    ['decodePacket', decodePacket],
    ['decodeMessage', (b) => decodeMessage(b)],
    ['decodeMessage with secret', (b) => decodeMessage(b, { secret: 'k' })],
    ['decodeRawAvps', (b) => decodeRawAvps(b.subarray(12))],
    ['decodeControlBody', (b) => decodeControlBody(b.subarray(12), { secret: 'k' })],
    ['decodeAvps', (b) => decodeAvps(b.subarray(12))],
    ['unhideValue', (b) => unhideValue(7, b, 'k', new Uint8Array([1]))],
  ];
  for (const [name, fn] of decoders) {
    test(`${name} (${FUZZ_RUNS} runs)`, () => {
      fc.assert(fc.property(input, onlyDecodeErrors(fn)), { numRuns: FUZZ_RUNS });
    });
  }

  test(`Lac.receive never throws on hostile datagrams (${FUZZ_RUNS} runs)`, () => {
    const lac = new Lac({ hostName: 'si', secret: 'k', random: (n) => new Uint8Array(n).fill(0) });
    lac.open(); // local tunnel ID 1 (random 0 is mapped to 1)
    const ours = fc.tuple(input, fc.boolean()).map(([b, retarget]) => {
      if (retarget && b.length >= 6) {
        // Aim at our tunnel so the FSM sees the message, not just the tunnel-ID check.
        const c = new Uint8Array(b);
        const at = (c[0]! & 0x40) !== 0 ? 4 : 2;
        c[at] = 0;
        c[at + 1] = 1;
        return c;
      }
      return b;
    });
    fc.assert(
      fc.property(ours, (b) => {
        lac.receive(b, 'p');
      }),
      { numRuns: FUZZ_RUNS },
    );
    assert.ok(Object.keys(lac.status().counters.drops).length > 0);
  });
});

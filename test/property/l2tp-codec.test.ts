import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  type AvpName,
  type AvpValues,
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
  REQUIRED_AVPS,
  rawAvps,
  unhideValue,
} from '../../src/l2tp';

const FUZZ_RUNS = Number(process.env.FUZZ_RUNS ?? 2000);

// Plain objects (fast-check otherwise may build null-prototype ones, which deepEqual tells apart).
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- thin pass-through to fc.record's overloads
const rec: typeof fc.record = ((m: any, o?: any) => fc.record(m, { ...o, noNullPrototype: true })) as any;
const u8 = fc.integer({ min: 0, max: 0xff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const bytes = (minLength = 0, maxLength = 40) => fc.uint8Array({ minLength, maxLength });
const text = (minLength = 0) => bytes(minLength).map((b) => Buffer.from(b).toString('latin1'));
const framing = rec({ sync: fc.boolean(), async: fc.boolean() });
const bearer = rec({ digital: fc.boolean(), analog: fc.boolean() });

/** One arbitrary per AVP, restricted to values whose encoding is canonical. */
const AVP_ARBS: { [K in Exclude<AvpName, 'messageType'>]-?: fc.Arbitrary<NonNullable<AvpValues[K]>> } = {
  resultCode: fc.oneof(
    rec({ result: u16 }),
    rec({ result: u16, error: u16 }),
    rec({ result: u16, error: u16, message: text(1) }),
  ),
  protocolVersion: rec({ version: u8, revision: u8 }),
  framingCapabilities: framing,
  bearerCapabilities: bearer,
  tieBreaker: bytes(8, 8),
  firmwareRevision: u16,
  hostName: text(1),
  vendorName: text(),
  assignedTunnelId: u16,
  receiveWindowSize: u16,
  challenge: bytes(1),
  q931Cause: fc.oneof(rec({ cause: u16, message: u8 }), rec({ cause: u16, message: u8, advisory: text(1) })),
  challengeResponse: bytes(16, 16),
  assignedSessionId: u16,
  callSerialNumber: u32,
  minimumBps: u32,
  maximumBps: u32,
  bearerType: bearer,
  framingType: framing,
  calledNumber: text(),
  callingNumber: text(),
  subAddress: text(),
  txConnectSpeed: u32,
  physicalChannelId: u32,
  initialReceivedLcpConfreq: bytes(),
  lastSentLcpConfreq: bytes(),
  lastReceivedLcpConfreq: bytes(),
  proxyAuthenType: u16,
  proxyAuthenName: text(),
  proxyAuthenChallenge: bytes(),
  proxyAuthenId: u8,
  proxyAuthenResponse: bytes(),
  callErrors: rec({
    crcErrors: u32,
    framingErrors: u32,
    hardwareOverruns: u32,
    bufferOverruns: u32,
    timeoutErrors: u32,
    alignmentErrors: u32,
  }),
  accm: rec({ send: u32, receive: u32 }),
  randomVector: bytes(1),
  privateGroupId: bytes(),
  rxConnectSpeed: u32,
  sequencingRequired: fc.constant(true as const),
};

const allValues = rec(AVP_ARBS);
const someValues = rec(AVP_ARBS, { requiredKeys: [] });

const messageValues = (name: MessageName) =>
  fc.tuple(allValues, someValues).map(([all, some]) => {
    const v: Record<string, unknown> = { ...some };
    for (const k of REQUIRED_AVPS[name] as readonly AvpName[]) v[k] = (all as Record<string, unknown>)[k];
    return v as AvpValues;
  });

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
  const corpus: Uint8Array[] = (() => {
    const c: Uint8Array[] = [];
    const h = { tunnelId: 5, sessionId: 0, ns: 1, nr: 2 };
    c.push(
      encodeControl(
        h,
        encodeControlBody('SCCRP', {
          protocolVersion: { version: 1, revision: 0 },
          framingCapabilities: { sync: true, async: true },
          hostName: 'lns',
          assignedTunnelId: 9,
          challenge: new Uint8Array(16),
          challengeResponse: new Uint8Array(16),
        }),
      ),
    );
    c.push(
      encodeControl(
        h,
        encodeControlBody('StopCCN', { assignedTunnelId: 9, resultCode: { result: 2, error: 7, message: 'bye' } }),
      ),
    );
    c.push(
      encodeControl(
        h,
        encodeControlBody('WEN', {
          callErrors: {
            crcErrors: 1,
            framingErrors: 2,
            hardwareOverruns: 3,
            bufferOverruns: 4,
            timeoutErrors: 5,
            alignmentErrors: 6,
          },
        }),
      ),
    );
    const rv = new Uint8Array([1, 2, 3]);
    const hidden = [...rawAvps({ messageType: 11, randomVector: rv }), hide(rawAvps({ assignedSessionId: 4 })[0]!, 'k', rv, 7)];
    c.push(encodeControl(h, encodeRawAvps(hidden)));
    c.push(encodeControl(h, new Uint8Array(0)));
    c.push(
      encodeData(
        { tunnelId: 5, sessionId: 6, ns: 3, priority: true, withLength: true, offsetSize: 4 },
        new Uint8Array([0xff, 3, 0xc0, 0x21]),
      ),
    );
    return c;
  })();

  const mutated = fc
    .tuple(
      fc.integer({ min: 0, max: corpus.length - 1 }),
      fc.array(fc.tuple(fc.nat(), u8), { maxLength: 6 }),
      fc.option(fc.nat(), { nil: undefined }),
    )
    .map(([i, edits, cut]) => {
      const b = new Uint8Array(corpus[i]!);
      for (const [pos, val] of edits) b[pos % b.length] = val;
      return cut === undefined ? b : b.subarray(0, cut % (b.length + 1));
    });
  const input = fc.oneof(bytes(0, 300), mutated);

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

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { parseL2tpAnswer } from '../../src/sdp/l2tp';
import {
  parseSdp,
  type SdpAttribute,
  type SdpBandwidth,
  type SdpConnection,
  SdpError,
  type SdpMedia,
  type SdpSession,
  serializeSdp,
} from '../../src/sdp/sdp';

const FUZZ_RUNS = Number(process.env.FUZZ_RUNS ?? 1000);

/** Runs `fn` and fails the property if anything but an SdpError escapes. */
function onlySdpError(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof SdpError)) throw new Error(`non-SdpError escaped: ${String(e)}`, { cause: e });
    assert.ok(e.line >= 0 && e.reason.length > 0);
  }
}

/** Drops parser-only line numbers and undefined fields so models compare by content. */
const norm = (x: unknown) => JSON.parse(JSON.stringify(x, (k, v) => (k === 'line' ? undefined : v)));

const ANSWER_LINES = [
  'v=0',
  'o=lns 3900000000 3900000001 IN IP4 192.0.2.1',
  's=-',
  'c=IN IP4 192.0.2.1',
  't=0 0',
  'a=sendrecv',
  'm=application 1701 UDP l2tp',
  'c=IN IP6 2001:db8::1',
  'b=AS:64',
  'a=tool:x',
];

test('random bytes and strings: only SdpError escapes the parsers', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
      onlySdpError(() => parseSdp(b));
      onlySdpError(() => parseL2tpAnswer(b));
    }),
    { numRuns: FUZZ_RUNS },
  );
  fc.assert(
    fc.property(fc.array(fc.string({ unit: 'binary', maxLength: 30 }), { maxLength: 12 }), (lines) => {
      onlySdpError(() => parseSdp(lines.join('\n')));
      onlySdpError(() => parseL2tpAnswer(lines.join('\r\n')));
    }),
    { numRuns: FUZZ_RUNS },
  );
});

test('mutated valid answers: only SdpError escapes, and whatever parses re-serializes stably', () => {
  const pieces = fc.constantFrom(' ', '/', ':', '=', '0', '99999', 'ff02::1', '224.0.0.1', '\r', '\0', 'é', 'IP6', 'x', '');
  const mutation = fc.oneof(
    fc.record({ op: fc.constant('delete' as const), at: fc.nat() }),
    fc.record({ op: fc.constant('dup' as const), at: fc.nat() }),
    fc.record({ op: fc.constant('swap' as const), at: fc.nat(), to: fc.nat() }),
    fc.record({ op: fc.constant('insert' as const), at: fc.nat(), col: fc.nat(), piece: pieces }),
    fc.record({ op: fc.constant('cut' as const), at: fc.nat(), col: fc.nat() }),
  );
  fc.assert(
    fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (muts) => {
      const lines = [...ANSWER_LINES];
      for (const m of muts) {
        if (lines.length === 0) break;
        const i = m.at % lines.length;
        if (m.op === 'delete') lines.splice(i, 1);
        else if (m.op === 'dup') lines.splice(i, 0, lines[i]);
        else if (m.op === 'swap') {
          const j = m.to % lines.length;
          [lines[i], lines[j]] = [lines[j], lines[i]];
        } else {
          const col = m.col % (lines[i].length + 1);
          lines[i] = m.op === 'cut' ? lines[i].slice(0, col) : lines[i].slice(0, col) + m.piece + lines[i].slice(col);
        }
      }
      const text = lines.join('\n');
      onlySdpError(() => parseL2tpAnswer(text));
      let parsed: SdpSession | undefined;
      try {
        parsed = parseSdp(text);
      } catch (e) {
        if (!(e instanceof SdpError)) throw e;
      }
      if (parsed) {
        const again = serializeSdp(parseSdp(serializeSdp(parsed)));
        assert.equal(again, serializeSdp(parsed));
      }
    }),
    { numRuns: FUZZ_RUNS },
  );
});

// Generators for valid models, within the grammar the parser enforces.
const token = fc.stringMatching(/^[!#-'*+\-.0-9A-Z^-~]{1,8}$/);
const digits = fc.stringMatching(/^[0-9]{1,12}$/);
const textField = fc.stringMatching(/^[!-~](?:[ -~]{0,12}[!-~])?$/);
const v4 = fc.ipV4().filter((a) => {
  const first = Number(a.split('.')[0]);
  return first < 224 || first > 239;
});
const v6 = fc.ipV6();
const connection: fc.Arbitrary<SdpConnection> = fc.oneof(
  fc.record({ netType: fc.constant('IN'), addrType: fc.constant('IP4'), address: v4 }),
  fc.record({ netType: fc.constant('IN'), addrType: fc.constant('IP6'), address: v6 }),
  fc.record({ netType: fc.constant('IN'), addrType: fc.constant('IP4'), address: fc.constant('224.2.1.1'), ttl: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ netType: fc.constant('IN'), addrType: fc.constant('IP4'), address: fc.constant('sc.example.net') }),
);
const bandwidth: fc.Arbitrary<SdpBandwidth> = fc.record({ type: token, kbps: fc.integer({ min: 0, max: 0xffffffff }) });
const attribute: fc.Arbitrary<SdpAttribute> = fc.oneof(
  fc.record({ name: token }),
  fc.record({ name: token, value: textField }),
);
const opt = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
const media: fc.Arbitrary<SdpMedia> = fc.record({
  media: token,
  port: fc.integer({ min: 0, max: 65535 }),
  portCount: opt(fc.integer({ min: 1, max: 65535 })),
  proto: fc.array(token, { minLength: 1, maxLength: 3 }).map((p) => p.join('/')),
  formats: fc.array(token, { minLength: 1, maxLength: 3 }),
  info: opt(textField),
  connections: fc.array(connection, { minLength: 1, maxLength: 2 }),
  bandwidths: fc.array(bandwidth, { maxLength: 2 }),
  key: opt(textField),
  attributes: fc.array(attribute, { maxLength: 3 }),
});
const session: fc.Arbitrary<SdpSession> = fc.record({
  origin: fc.record({
    username: token,
    sessionId: digits,
    sessionVersion: digits,
    netType: fc.constant('IN'),
    addrType: fc.constant('IP4'),
    address: v4,
  }),
  name: textField,
  info: opt(textField),
  uri: opt(textField),
  emails: fc.array(textField, { maxLength: 2 }),
  phones: fc.array(textField, { maxLength: 2 }),
  connection: opt(connection),
  bandwidths: fc.array(bandwidth, { maxLength: 2 }),
  times: fc.array(fc.record({ start: digits, stop: digits, repeats: fc.array(textField, { maxLength: 2 }) }), { minLength: 1, maxLength: 2 }),
  zone: opt(textField),
  key: opt(textField),
  attributes: fc.array(attribute, { maxLength: 3 }),
  media: fc.array(media, { maxLength: 3 }),
});

test('generated descriptions round-trip: parse(serialize(m)) equals m', () => {
  fc.assert(
    fc.property(session, (s) => {
      const text = serializeSdp(s);
      const back = parseSdp(text);
      assert.deepEqual(norm(back), norm(s));
      assert.equal(serializeSdp(back), text);
      // LF-only input means the same thing.
      assert.deepEqual(norm(parseSdp(text.replace(/\r\n/g, '\n'))), norm(s));
    }),
    { numRuns: FUZZ_RUNS },
  );
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { fuzzRuns, sdpMutatedAnswer, sdpSession } from '../property/arbitraries';
import { parseL2tpAnswer } from '../../src/sdp/l2tp';
import { parseSdp, SdpError, type SdpSession, serializeSdp } from '../../src/sdp/sdp';

const FUZZ_RUNS = fuzzRuns(1000);

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
  fc.assert(
    fc.property(sdpMutatedAnswer, (text) => {
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

test('generated descriptions round-trip: parse(serialize(m)) equals m', () => {
  fc.assert(
    fc.property(sdpSession, (s) => {
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

/**
 * Hostile bytes into every PPP decoder and into the link: nothing but
 * PppDecodeError may escape a decoder, and nothing at all may escape the
 * automata, the auth clients or PppLink.receive(). FUZZ_RUNS raises the count.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { fuzzRuns, pppBytes, pppFrame, pppPacket } from './arbitraries';
import { openPppLink, pppAutomata } from './fuzz-targets';
import { ChapClient, PapClient } from '../../src/ppp/auth';
import { decodeFrame, decodeOptions, decodePacket, PppDecodeError } from '../../src/ppp/frame';
import type { LinkAction } from '../../src/ppp/link';

const RUNS = fuzzRuns();
const bytes = pppBytes;

function onlyDecodeErrors(fn: () => unknown) {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof PppDecodeError)) throw e;
  }
}

test('decoders throw only PppDecodeError', () => {
  fc.assert(
    fc.property(bytes, (b) => {
      onlyDecodeErrors(() => decodeFrame(b));
      onlyDecodeErrors(() => decodePacket(b));
      onlyDecodeErrors(() => decodeOptions(b));
    }),
    { numRuns: RUNS },
  );
});

const packet = pppPacket;

test('automata and auth clients accept any sequence of hostile packets', () => {
  fc.assert(
    fc.property(fc.array(packet, { maxLength: 12 }), fc.array(fc.nat(3), { maxLength: 4 }), (pkts, timeouts) => {
      const fsms = pppAutomata();
      const chap = new ChapClient({ username: 'u', password: 'p' });
      const pap = new PapClient({ username: 'u', password: 'p' });
      chap.start();
      pap.start();
      for (const p of pkts) {
        for (const a of fsms) {
          const before = a.state;
          const out = a.receive(p);
          for (const o of out) if (o.type === 'send') decodePacket(o.bytes); // our output is always well-formed
          assert.ok(a.state, `state defined after ${before}`);
        }
        chap.receive(p);
        pap.receive(p);
      }
      for (const t of timeouts) fsms[t % 3]!.timeout();
    }),
    { numRuns: Math.max(200, Math.floor(RUNS / 4)) },
  );
});

const frame = pppFrame;

test('PppLink.receive() never throws, whatever arrives, and only emits well-formed frames', () => {
  fc.assert(
    fc.property(
      fc.array(frame, { maxLength: 16 }),
      fc.array(fc.constantFrom('lcp.restart', 'ipcp.restart', 'ipv6cp.restart', 'echo', 'link.ipcp-fallback'), { maxLength: 4 }),
      (frames, timers) => {
        const link = openPppLink();
        let now = 0;
        const check = (acts: LinkAction[]) => {
          for (const a of acts) if (a.type === 'send') decodeFrame(a.frame);
        };
        for (const f of frames) {
          now += 100;
          check(link.receive(f, now));
        }
        for (const t of timers) {
          now += 3000;
          check(link.timerFired(t, now));
        }
        const st = link.status();
        assert.ok(st.counters.framesIn >= frames.length);
      },
    ),
    { numRuns: Math.max(200, Math.floor(RUNS / 4)) },
  );
});

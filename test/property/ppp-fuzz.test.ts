/**
 * Hostile bytes into every PPP decoder and into the link: nothing but
 * PppDecodeError may escape a decoder, and nothing at all may escape the
 * automata, the auth clients or PppLink.receive(). FUZZ_RUNS raises the count.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Automaton } from '../../src/ppp/automaton';
import { ChapClient, PapClient } from '../../src/ppp/auth';
import {
  CODE,
  decodeFrame,
  decodeOptions,
  decodePacket,
  encodeFrame,
  encodeOptions,
  encodePacket,
  opt,
  PppDecodeError,
  PROTO,
  u16,
  u32,
} from '../../src/ppp/frame';
import { IpcpHandler } from '../../src/ppp/ipcp';
import { Ipv6cpHandler } from '../../src/ppp/ipv6cp';
import { LcpHandler } from '../../src/ppp/lcp';
import { type LinkAction, PppLink } from '../../src/ppp/link';

const RUNS = Number(process.env.FUZZ_RUNS ?? 2000);
const rnd = (n: number) => Buffer.alloc(n, 0x42);
const bytes = fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a));

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

/** Valid control packets of every code, to be mutated. */
const templates: Buffer[] = [
  encodePacket(CODE.CONF_REQ, 1, encodeOptions([opt(1, u16(1462)), opt(3, [0xc2, 0x23, 5]), opt(5, u32(7)), opt(17, u16(1614))])),
  encodePacket(CODE.CONF_REQ, 2, encodeOptions([opt(3, [198, 51, 100, 1]), opt(129, [0, 0, 0, 0])])),
  encodePacket(CODE.CONF_REQ, 3, encodeOptions([opt(1, Buffer.alloc(8, 1))])),
  encodePacket(CODE.CONF_ACK, 1, encodeOptions([opt(5, u32(1))])),
  encodePacket(CODE.CONF_NAK, 1, encodeOptions([opt(1, u16(1300)), opt(3, [10, 0, 0, 1])])),
  encodePacket(CODE.CONF_REJ, 1, encodeOptions([opt(1, u16(1300))])),
  encodePacket(CODE.TERM_REQ, 4, Buffer.from('bye')),
  encodePacket(CODE.TERM_ACK, 1),
  encodePacket(CODE.CODE_REJ, 5, encodePacket(1, 1)),
  encodePacket(CODE.PROTO_REJ, 6, u16(PROTO.IPV6CP)),
  encodePacket(CODE.ECHO_REQ, 7, u32(9)),
  encodePacket(CODE.ECHO_REPLY, 1, u32(9)),
  encodePacket(1, 1, Buffer.concat([Buffer.from([16]), Buffer.alloc(16, 3), Buffer.from('lns')])), // CHAP challenge
  encodePacket(3, 1, Buffer.from('ok')),
];

const mutated = fc
  .tuple(
    fc.constantFrom(...templates),
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
    fc.nat(),
  )
  .map(([t, flips, cut]) => {
    const b = Buffer.from(t);
    for (const [i, v] of flips) b[i % b.length] = v;
    return b.subarray(0, cut % (b.length + 2));
  });

const packet = fc.oneof(bytes, mutated);

function automata() {
  const r = rnd;
  const list = [
    new Automaton('lcp', PROTO.LCP, new LcpHandler({ randomBytes: r, credentials: { username: 'u', password: 'p' } })),
    new Automaton('ipcp', PROTO.IPCP, new IpcpHandler()),
    new Automaton('ipv6cp', PROTO.IPV6CP, new Ipv6cpHandler({ randomBytes: (n) => Buffer.alloc(n, 7) })),
  ];
  for (const a of list) {
    a.open();
    a.up();
  }
  return list;
}

test('automata and auth clients accept any sequence of hostile packets', () => {
  fc.assert(
    fc.property(fc.array(packet, { maxLength: 12 }), fc.array(fc.nat(3), { maxLength: 4 }), (pkts, timeouts) => {
      const fsms = automata();
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

/** A link brought to the Network phase by a minimal honest peer. */
function openLink(): PppLink {
  const link = new PppLink({ randomBytes: (n) => Buffer.alloc(n, 0x33), echo: { intervalMs: 10_000 } });
  const acts = link.lowerUp(0);
  const ourReq = acts.find((a): a is Extract<LinkAction, { type: 'send' }> => a.type === 'send')!;
  const req = decodePacket(decodeFrame(ourReq.frame).payload);
  link.receive(encodeFrame(PROTO.LCP, encodePacket(CODE.CONF_ACK, req.id, req.data)), 0);
  link.receive(encodeFrame(PROTO.LCP, encodePacket(CODE.CONF_REQ, 1, encodeOptions([opt(5, u32(0x1234))]))), 0);
  assert.equal(link.phase, 'network');
  return link;
}

const protocols = [PROTO.LCP, PROTO.IPCP, PROTO.IPV6CP, PROTO.CHAP, PROTO.PAP, PROTO.IPV6, PROTO.IPV4, 0x80fd];
const frame = fc.oneof(
  bytes,
  fc.tuple(fc.constantFrom(...protocols), packet).map(([proto, p]) => encodeFrame(proto, p)),
);

test('PppLink.receive() never throws, whatever arrives, and only emits well-formed frames', () => {
  fc.assert(
    fc.property(
      fc.array(frame, { maxLength: 16 }),
      fc.array(fc.constantFrom('lcp.restart', 'ipcp.restart', 'ipv6cp.restart', 'echo', 'link.ipcp-fallback'), { maxLength: 4 }),
      (frames, timers) => {
        const link = openLink();
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

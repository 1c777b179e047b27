/**
 * The fuzz campaign's targets: every decoder on the packet path and the stateful
 * cores behind them, each with its input generator (from arbitraries.ts) and the
 * rule it is held to. A decoder may reject input only with its own typed error;
 * a core may throw nothing at all. scripts/fuzz.ts runs them by the million;
 * fuzz-campaign.test.ts runs each briefly in CI so the campaign itself cannot rot.
 *
 * Stateful targets build a fresh core per input (a short sequence of datagrams),
 * so a seed and a counterexample path reproduce a failure exactly.
 */
import fc from 'fast-check';
import { locateIp, ipv6NeedsCores, type IpLocation } from '../../src/dataplane/frame';
import { clampMss } from '../../src/dataplane/mss';
import { Dhcp6Client } from '../../src/ipv6/dhcp6-client';
import { decodeDhcp6, type Dhcp6Message, encodeDhcp6, encodeDuid, parseDuid, parseDuidText } from '../../src/ipv6/dhcpv6';
import { decodeDnsNames } from '../../src/ipv6/dnsname';
import { decodeNdMessage, parseNdPacket } from '../../src/ipv6/nd';
import { buildUdp6, classifyControl, Ipv6DecodeError, parseAddress, parseIcmpv6, parseIpv6, parsePrefix, parseUdp6 } from '../../src/ipv6/packet';
import { Slaac } from '../../src/ipv6/slaac';
import {
  AVP_CODECS,
  AVP_NAMES,
  type AvpName,
  challengeResponse,
  decodeAvps,
  decodeControlBody,
  decodeMessage,
  decodePacket as decodeL2tpPacket,
  decodeRawAvps,
  encodeControl,
  encodeData,
  encodeRawAvps,
  hideValue,
  encodeControlBody,
  L2tpDecodeError,
  Lac,
  type LacAction,
  type MessageName,
  MessageType,
  rawAvps,
  typeAvps,
  unhideValue,
} from '../../src/l2tp';
import { ChapClient, PapClient } from '../../src/ppp/auth';
import { Automaton } from '../../src/ppp/automaton';
import { CODE, decodeFrame, decodeOptions, decodePacket, encodeFrame, encodeOptions, encodePacket, opt, PppDecodeError, PROTO, u32 } from '../../src/ppp/frame';
import { IpcpHandler } from '../../src/ppp/ipcp';
import { Ipv6cpHandler } from '../../src/ppp/ipv6cp';
import { LcpHandler } from '../../src/ppp/lcp';
import { type LinkAction, PppLink } from '../../src/ppp/link';
import { parseL2tpAnswer } from '../../src/sdp/l2tp';
import { parseSdp, SdpError, serializeSdp } from '../../src/sdp/sdp';
import {
  bytes,
  dataDatagrams,
  dhcp6Message,
  FAST_SESSION,
  FAST_TUNNEL,
  hostile,
  ipv6BodyHostile,
  ipv6PacketHostile,
  ipv6Textish,
  L2TP_SECRET,
  l2tpHostile,
  u16,
  messageValues,
  mssPackets,
  ndPacketPool,
  pppBytes,
  pppFrame,
  pppPacket,
  sampled,
  sdpHostile,
  tcpChecksum,
} from './arbitraries';

export type Verdict = 'accepted' | 'rejected';

export interface FuzzTarget<T = unknown> {
  name: string;
  /** What runs, for the report. */
  covers: string;
  input: fc.Arbitrary<T>;
  /** One input; throws only on a defect (typed decode errors are turned into 'rejected'). */
  run(x: T): Verdict;
}

/** A defect found by a target: not a typed rejection. */
export class FuzzDefect extends Error {
  override readonly name = 'FuzzDefect';
}

function check(ok: boolean, what: string): void {
  if (!ok) throw new FuzzDefect(what);
}

/** Runs `fn`; the error class `E` means the input was rejected, anything else escapes. */
function typed(E: new (...a: never[]) => Error, fn: () => unknown): Verdict {
  try {
    fn();
    return 'accepted';
  } catch (e) {
    if (e instanceof E) return 'rejected';
    throw e;
  }
}

const sum = (o: Record<string, number>): number => Object.values(o).reduce((a, b) => a + b, 0);
const target = <T>(t: FuzzTarget<T>): FuzzTarget => t as FuzzTarget;

// ------------------------------------------------------------------ L2TP

const L2TP_TARGETS: FuzzTarget[] = [
  target({
    name: 'l2tp.header',
    covers: 'decodePacket (header, length, offset)',
    input: l2tpHostile,
    run: (b) => typed(L2tpDecodeError, () => decodeL2tpPacket(b)),
  }),
  target({
    name: 'l2tp.message',
    covers: 'decodeMessage with and without the secret (hidden AVPs)',
    input: l2tpHostile,
    run: (b) => {
      typed(L2tpDecodeError, () => decodeMessage(b));
      return typed(L2tpDecodeError, () => decodeMessage(b, { secret: L2TP_SECRET }));
    },
  }),
  target({
    name: 'l2tp.avps',
    covers: 'decodeRawAvps, decodeAvps, decodeControlBody (hidden, secret set)',
    input: l2tpHostile,
    run: (b) => {
      const body = b.subarray(12);
      typed(L2tpDecodeError, () => decodeRawAvps(body));
      typed(L2tpDecodeError, () => decodeAvps(body));
      return typed(L2tpDecodeError, () => decodeControlBody(body, { secret: L2TP_SECRET }));
    },
  }),
  target({
    name: 'l2tp.avp-values',
    covers: 'typeAvps: every AVP codec of RFC 2661 4.4 on values of any length, either M bit',
    // Lengths near each codec's own are where the length checks sit; the rest of the range
    // reaches the variable-length ones (strings, Result Code, Q.931 Cause).
    input: fc.tuple(fc.constantFrom(...AVP_NAMES), fc.oneof(bytes(0, 12), bytes(0, 64)), fc.boolean()),
    run: ([name, value, mandatory]: [AvpName, Uint8Array, boolean]) => {
      const { values, malformed, unknown } = typeAvps([{ mandatory, hidden: false, reserved: 0, vendorId: 0, type: AVP_CODECS[name].type, value }]);
      // A malformed value never throws out of the decoder: it is typed or listed, never both.
      const typed = (values as Record<string, unknown>)[name] !== undefined;
      check(unknown.length === 0 && typed !== (malformed.length === 1), `${name}: typed ${typed}, malformed ${malformed.length}`);
      check(malformed.every((m) => m.name === name && m.mandatory === mandatory && m.length === value.length), `${name}: malformed record`);
      return typed ? 'accepted' : 'rejected';
    },
  }),
  target({
    name: 'l2tp.unhide',
    covers: 'unhideValue (RFC 2661 4.3) on any value and vector',
    input: fc
      .tuple(fc.integer({ min: 0, max: 0xffff }), bytes(1, 16), bytes(0, 40), fc.integer({ min: 0, max: 20 }))
      .chain(([type, rv, value, pad]) => hostile(fc.constant(hideValue(type, value, L2TP_SECRET, rv, pad)), 60).map((b) => [type, rv, b] as const)),
    run: ([type, rv, b]) => typed(L2tpDecodeError, () => unhideValue(type, b, L2TP_SECRET, rv)),
  }),
];

/** Where an L2TP header's tunnel ID, session ID and Ns sit, whatever optional fields it has. */
function aimAt(b: Uint8Array, tunnelId: number, sessionId: number, ns: number | undefined): Uint8Array {
  if (b.length < 6) return b;
  const c = Uint8Array.from(b);
  let at = (c[0]! & 0x40) !== 0 ? 4 : 2;
  if (at + 4 > c.length) return c;
  c[at] = tunnelId >> 8;
  c[at + 1] = tunnelId & 0xff;
  c[at + 2] = sessionId >> 8;
  c[at + 3] = sessionId & 0xff;
  at += 4;
  if (ns !== undefined && (c[0]! & 0x08) !== 0 && at + 2 <= c.length) {
    c[at] = ns >> 8;
    c[at + 1] = ns & 0xff;
  }
  return c;
}

const sendsOf = (acts: LacAction[]) => acts.flatMap((a) => (a.type === 'send' ? [a.bytes] : []));

/** The SCCRQ challenge and the deterministic IDs a Lac with zeroed randomness uses. */
const LAC_PEER = '192.0.2.1:1701';
const SC_TUNNEL = 40;
const SC_SESSION = 41;

const newLac = () => new Lac({ hostName: 'si', secret: L2TP_SECRET, random: (n) => new Uint8Array(n), lingerMs: 1000 });
/** The SC's SCCRP and ICRP for a Lac with zeroed randomness (the same IDs and challenge every time). */
let handshake: { sccrp: Uint8Array; icrp: Uint8Array } | undefined;
function scHandshake(): { sccrp: Uint8Array; icrp: Uint8Array } {
  if (handshake) return handshake;
  const lac = newLac();
  const sccrq = decodeMessage(sendsOf(lac.open())[0]!, { secret: L2TP_SECRET });
  const challenge = sccrq.kind === 'control' ? sccrq.message?.values.challenge : undefined;
  const sccrp = encodeControl(
    { tunnelId: lac.localTunnelId, sessionId: 0, ns: 0, nr: 1 },
    encodeControlBody('SCCRP', {
      protocolVersion: { version: 1, revision: 0 },
      framingCapabilities: { sync: true, async: true },
      hostName: 'lns',
      assignedTunnelId: SC_TUNNEL,
      ...(challenge ? { challengeResponse: challengeResponse(MessageType.SCCRP, L2TP_SECRET, challenge) } : {}),
    }),
  );
  lac.receive(sccrp, LAC_PEER);
  const localSession = lac.status().session.localId ?? 0;
  const icrp = encodeControl({ tunnelId: lac.localTunnelId, sessionId: localSession, ns: 1, nr: 3 }, encodeControlBody('ICRP', { assignedSessionId: SC_SESSION }));
  return (handshake = { sccrp, icrp });
}

/** A Lac with tunnel and session up, talking to an SC that has sent Ns 0 and 1. */
export function establishedLac(): Lac {
  const { sccrp, icrp } = scHandshake();
  const lac = newLac();
  lac.open();
  lac.receive(sccrp, LAC_PEER);
  lac.receive(icrp, LAC_PEER);
  check(lac.status().session.state === 'established', 'fuzz harness: Lac did not reach an established session');
  return lac;
}

const L2TP_MESSAGE_NAMES = Object.keys(MessageType) as MessageName[];
/** Well-formed control messages of any type, with any AVPs, for the FSM behind the channel. */
const anyControlBody = sampled(
  fc.constantFrom(...L2TP_MESSAGE_NAMES).chain((name) =>
    messageValues(name).map((v) => {
      try {
        return encodeControlBody(name, v as never);
      } catch {
        return new Uint8Array(0);
      }
    }),
  ),
);
/** The same with one AVP's value replaced by bytes of any length and either M bit (RFC 2661 7.1 paths). */
const malformedControlBody = sampled(
  fc
    .tuple(fc.constantFrom(...L2TP_MESSAGE_NAMES), fc.nat(), bytes(0, 12), fc.boolean())
    .chain(([name, which, value, mandatory]) =>
      messageValues(name).map((v) => {
        const raw = rawAvps({ ...v, messageType: MessageType[name] });
        if (raw.length < 2) return encodeRawAvps(raw);
        const at = 1 + (which % (raw.length - 1));
        raw[at] = { ...raw[at]!, value, mandatory };
        return encodeRawAvps(raw);
      }),
    ),
);
const inOrder = (body: Uint8Array) => ({ b: encodeControl({ tunnelId: 0, sessionId: 0, ns: 0, nr: 0 }, body), aim: true, inOrder: true });
const lacInput = fc.array(
  fc.oneof(
    { weight: 3, arbitrary: fc.tuple(l2tpHostile, fc.boolean()).map(([b, aim]) => ({ b, aim, inOrder: false })) },
    { weight: 1, arbitrary: anyControlBody.map(inOrder) },
    { weight: 1, arbitrary: malformedControlBody.map(inOrder) },
    // Data for our session with and without Ns: sequencing on and off (RFC 2661 5.4).
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.option(u16, { nil: undefined }), bytes(0, 12))
        .map(([ns, ppp]) => ({ b: encodeData({ tunnelId: 0, sessionId: 0, ns }, ppp), aim: true, inOrder: false })),
    },
  ),
  { minLength: 1, maxLength: 6 },
);

const LAC_TARGET = target({
  name: 'core.lac',
  covers: 'Lac.receive on an established tunnel+session (hostile datagrams, any control message in order, malformed AVPs, data with and without Ns)',
  input: lacInput,
  run: (seq) => {
    const lac = establishedLac();
    const drops = () => sum(lac.status().counters.drops);
    let verdict: Verdict = 'rejected';
    let ns = 2;
    for (const { b, aim, inOrder } of seq) {
      const bytes = aim ? aimAt(b, lac.localTunnelId, inOrder ? (lac.status().session.localId ?? 0) : 1, inOrder ? ns++ : undefined) : b;
      const before = drops();
      const acts = lac.receive(bytes, LAC_PEER);
      for (const a of acts) if (a.type === 'send') decodeMessage(a.bytes, { secret: L2TP_SECRET });
      if (drops() === before) verdict = 'accepted';
      // 5.4: a data frame without Ns that was taken turns sequencing off.
      const took = acts.some((a) => a.type === 'frame');
      const unsequenced = took && (bytes[0]! & 0x08) === 0;
      if (unsequenced) check(lac.dataHeader()?.sequencing === false, 'S=0 data taken but sequencing still on');
    }
    for (const t of ['ctl-rtx', 'ctl-ack', 'hello', 'linger']) lac.timerFired(t);
    return verdict;
  },
});

// ------------------------------------------------------------------ PPP

const PPP_TARGETS: FuzzTarget[] = [
  target({
    name: 'ppp.frame',
    covers: 'decodeFrame (address/control, PFC, protocol)',
    input: fc.oneof(pppBytes, pppFrame),
    run: (b) => typed(PppDecodeError, () => decodeFrame(b)),
  }),
  target({
    name: 'ppp.packet',
    covers: 'decodePacket + decodeOptions (LCP/IPCP/IPV6CP/CHAP/PAP packets)',
    input: pppPacket,
    run: (b) => {
      typed(PppDecodeError, () => decodeOptions(b));
      return typed(PppDecodeError, () => decodeOptions(decodePacket(b).data));
    },
  }),
];

/** LCP, IPCP and IPV6CP automata, opened and up, as the link runs them. */
export function pppAutomata(): Automaton[] {
  const list = [
    new Automaton('lcp', PROTO.LCP, new LcpHandler({ randomBytes: (n) => Buffer.alloc(n, 0x42), credentials: { username: 'u', password: 'p' } })),
    new Automaton('ipcp', PROTO.IPCP, new IpcpHandler()),
    new Automaton('ipv6cp', PROTO.IPV6CP, new Ipv6cpHandler({ randomBytes: (n) => Buffer.alloc(n, 7) })),
  ];
  for (const a of list) {
    a.open();
    a.up();
  }
  return list;
}

/** A link brought to the Network phase by a minimal honest peer. */
export function openPppLink(): PppLink {
  const link = new PppLink({ randomBytes: (n) => Buffer.alloc(n, 0x33), echo: { intervalMs: 10_000 } });
  const acts = link.lowerUp(0);
  const ourReq = acts.find((a): a is Extract<LinkAction, { type: 'send' }> => a.type === 'send')!;
  const req = decodePacket(decodeFrame(ourReq.frame).payload);
  link.receive(encodeFrame(PROTO.LCP, encodePacket(CODE.CONF_ACK, req.id, req.data)), 0);
  link.receive(encodeFrame(PROTO.LCP, encodePacket(CODE.CONF_REQ, 1, encodeOptions([opt(5, u32(0x1234))]))), 0);
  check(link.phase === 'network', 'fuzz harness: PPP link did not reach the network phase');
  return link;
}

const AUTOMATA_TARGET = target({
  name: 'core.ppp-fsm',
  covers: 'LCP/IPCP/IPV6CP automata + CHAP/PAP clients on packet sequences',
  input: fc.tuple(fc.array(pppPacket, { minLength: 1, maxLength: 8 }), fc.array(fc.nat(2), { maxLength: 3 })),
  run: ([pkts, timeouts]) => {
    const fsms = pppAutomata();
    const chap = new ChapClient({ username: 'u', password: 'p' });
    const pap = new PapClient({ username: 'u', password: 'p' });
    chap.start();
    pap.start();
    let verdict: Verdict = 'rejected';
    for (const p of pkts) {
      if (typed(PppDecodeError, () => decodePacket(p)) === 'accepted') verdict = 'accepted';
      for (const a of fsms) for (const o of a.receive(p)) if (o.type === 'send') decodePacket(o.bytes); // ours must be well-formed
      chap.receive(p);
      pap.receive(p);
    }
    for (const t of timeouts) fsms[t]!.timeout();
    return verdict;
  },
});

const LINK_TIMERS = ['lcp.restart', 'ipcp.restart', 'ipv6cp.restart', 'echo', 'link.ipcp-fallback'];
const LINK_TARGET = target({
  name: 'core.ppp-link',
  covers: 'PppLink.receive in the network phase (+ timers); our frames stay well-formed',
  input: fc.tuple(fc.array(pppFrame, { minLength: 1, maxLength: 8 }), fc.array(fc.constantFrom(...LINK_TIMERS), { maxLength: 3 })),
  run: ([frames, timers]) => {
    const link = openPppLink();
    const drops = () => sum(link.status().counters.drops);
    let verdict: Verdict = 'rejected';
    let now = 0;
    const ours = (acts: LinkAction[]) => {
      for (const a of acts) if (a.type === 'send') decodeFrame(a.frame);
    };
    for (const f of frames) {
      const before = drops();
      ours(link.receive(f, (now += 100)));
      if (drops() === before) verdict = 'accepted';
    }
    for (const t of timers) ours(link.timerFired(t, (now += 3000)));
    return verdict;
  },
});

// ------------------------------------------------------------------ IPv6

const IPV6_TARGETS: FuzzTarget[] = [
  target({
    name: 'ipv6.packet',
    covers: 'parseIpv6, parseUdp6, parseIcmpv6, parseNdPacket, classifyControl',
    input: ipv6PacketHostile,
    run: (b) => {
      classifyControl(b);
      typed(Ipv6DecodeError, () => parseUdp6(b));
      typed(Ipv6DecodeError, () => parseIcmpv6(b));
      typed(Ipv6DecodeError, () => parseNdPacket(b));
      return typed(Ipv6DecodeError, () => parseIpv6(b));
    },
  }),
  target({
    name: 'ipv6.nd',
    covers: 'decodeNdMessage (RS/RA/NS/NA + options)',
    input: ipv6BodyHostile,
    run: (b) => typed(Ipv6DecodeError, () => decodeNdMessage(b)),
  }),
  target({
    name: 'ipv6.dhcpv6',
    covers: 'decodeDhcp6 (messages, IA_NA/IA_PD, options), decodeDnsNames, parseDuid',
    input: ipv6BodyHostile,
    run: (b) => {
      typed(Ipv6DecodeError, () => decodeDnsNames(b));
      typed(Ipv6DecodeError, () => parseDuid(b));
      return typed(Ipv6DecodeError, () => decodeDhcp6(b));
    },
  }),
  target({
    name: 'ipv6.text',
    covers: 'parseAddress, parsePrefix, parseDuidText',
    input: ipv6Textish,
    run: (s) => {
      typed(Ipv6DecodeError, () => parsePrefix(s));
      typed(Ipv6DecodeError, () => parseDuidText(s));
      return typed(Ipv6DecodeError, () => parseAddress(s));
    },
  }),
];

const SLAAC_TARGET = target({
  name: 'core.slaac',
  covers: 'Slaac.receive (RA/NS/NA handling, DAD) on packet sequences (+ timers)',
  input: fc.array(fc.oneof(ipv6PacketHostile, ndPacketPool), { minLength: 1, maxLength: 6 }),
  run: (pkts) => {
    let now = 0;
    const slaac = new Slaac({ iid: new Uint8Array(8).fill(1), clock: () => now, rng: () => 0.5, linkMtu: 1460 });
    const bad = () => {
      const c = slaac.status().counters;
      return c.invalid + c.ignoredPrefixes;
    };
    let verdict: Verdict = 'rejected';
    for (const p of pkts) {
      now += 1000;
      const before = bad();
      slaac.receive(p);
      if (bad() === before) verdict = 'accepted';
    }
    now += 7_200_000;
    slaac.timerFired('expire');
    check(slaac.status().addresses.length <= 16, 'SLAAC keeps at most 16 addresses');
    return verdict;
  },
});

const CLIENT_DUID = encodeDuid({ type: 'uuid', uuid: new Uint8Array(16).fill(9) });
/** Server messages aimed at our client (its DUID); the live transaction ID is put in at run time. */
const CLIENT_IAID = 1;
const dhcpForUs = fc.tuple(sampled(dhcp6Message), fc.constantFrom(2, 7), fc.boolean()).map(([m, type, ours]): Dhcp6Message => {
  if (!ours) return { ...m, type };
  // Ours: our DUID and IAID, no error statuses, so that the client gets past its checks into the lease logic.
  const { status: _s, ...rest } = m;
  return {
    ...rest,
    type,
    clientId: CLIENT_DUID,
    iaPd: m.iaPd.map(({ status: _x, ...ia }) => ({ ...ia, iaid: CLIENT_IAID, prefixes: ia.prefixes.map(({ status: _y, ...p }) => p) })),
    iaNa: m.iaNa.map(({ status: _x, ...ia }) => ({ ...ia, iaid: CLIENT_IAID, addresses: ia.addresses.map(({ status: _y, ...a }) => a) })),
  };
});

const DHCP_TARGET = target({
  name: 'core.dhcp6-client',
  covers: 'Dhcp6Client.receive in stateful mode on sequences (hostile bytes, server messages with the live xid) + timers',
  input: fc.array(fc.oneof(ipv6PacketHostile, dhcpForUs), { minLength: 1, maxLength: 6 }),
  run: (seq) => {
    let now = 0;
    const client = new Dhcp6Client({
      duid: CLIENT_DUID,
      linkLocal: 'fe80::2',
      clock: () => now,
      rng: () => 0.5,
      initialDelay: false,
      mode: 'stateful',
      requestPrefix: true,
      requestAddress: 'always',
      iaid: CLIENT_IAID,
    });
    client.start();
    const ignored = () => sum(client.status().counters.ignored);
    let verdict: Verdict = 'rejected';
    for (const p of seq) {
      now += 500;
      const pkt =
        p instanceof Uint8Array
          ? p
          : buildUdp6({ src: 'fe80::1', dst: 'fe80::2', srcPort: 547, dstPort: 546, hopLimit: 64, payload: encodeDhcp6({ ...p, xid: client.status().xid ?? p.xid }) });
      const before = ignored();
      client.receive(pkt);
      if (ignored() === before) verdict = 'accepted';
    }
    for (const t of ['tx', 'renew', 'rebind', 'expire']) {
      now += 60_000;
      client.timerFired(t);
    }
    return verdict;
  },
});

// ------------------------------------------------------------------ dataplane

/** Guard bytes around the region a data-path function may touch. */
const GUARD = 7;
function framed(b: Uint8Array): { buf: Uint8Array; off: number; len: number } {
  const buf = new Uint8Array(b.length + 2 * GUARD).fill(0xa5);
  buf.set(b, GUARD);
  return { buf, off: GUARD, len: b.length };
}

const DATAPLANE_TARGETS: FuzzTarget[] = [
  target({
    name: 'dataplane.frame',
    covers: 'locateIp + ipv6NeedsCores (fast-path L2TP/PPP parse): in bounds, never throws',
    input: dataDatagrams,
    run: (b) => {
      const { buf, off, len } = framed(b);
      const loc: IpLocation = { protocol: 0, offset: 0, length: 0 };
      locateIp(buf, off, len, FAST_TUNNEL, FAST_SESSION, loc);
      if (loc.protocol === 0) return 'rejected';
      check(loc.offset >= off && loc.length > 0 && loc.offset + loc.length <= off + len, `IP packet located out of bounds: ${loc.offset}+${loc.length}`);
      ipv6NeedsCores(buf, loc.offset, loc.length);
      return 'accepted';
    },
  }),
  target({
    name: 'dataplane.mss',
    covers: 'clampMss: touches only the MSS and checksum, keeps a valid checksum valid',
    input: fc.tuple(mssPackets, fc.integer({ min: 500, max: 1460 })),
    run: ([b, mss]) => {
      const { buf, off, len } = framed(b);
      const before = Uint8Array.from(buf);
      const tcpAt = tcpOffset(before, off, len);
      const validBefore = tcpAt !== undefined && checksumOk(before, off, len, tcpAt);
      const changed = clampMss(buf, off, len, mss, mss);
      let diffs = 0;
      for (let i = 0; i < buf.length; i++) {
        if (buf[i] === before[i]) continue;
        diffs++;
        check(i >= off && i < off + len, `byte ${i - off} outside the packet changed`);
      }
      if (!changed) {
        check(diffs === 0, 'packet changed although clampMss returned false');
        return 'rejected';
      }
      check(diffs <= 4, `clampMss changed ${diffs} bytes`);
      if (validBefore) check(checksumOk(buf, off, len, tcpAt!), 'valid TCP checksum broken by the clamp');
      return 'accepted';
    },
  }),
];

/** TCP header offset for packets without extension headers (enough for the checksum invariant). */
function tcpOffset(buf: Uint8Array, off: number, len: number): number | undefined {
  if (len < 40) return undefined;
  const v = buf[off]! >> 4;
  if (v === 4 && buf[off + 9] === 6) return (buf[off]! & 0x0f) * 4;
  if (v === 6 && buf[off + 6] === 6) return 40;
  return undefined;
}

function checksumOk(buf: Uint8Array, off: number, len: number, tcpAt: number): boolean {
  if (tcpAt + 20 > len) return false;
  const pkt = buf.subarray(off, off + len);
  const want = tcpChecksum(pkt, tcpAt, len);
  const have = (pkt[tcpAt + 16]! << 8) | pkt[tcpAt + 17]!;
  // One's complement has two zeros.
  return want === have || (want === 0 && have === 0xffff) || (want === 0xffff && have === 0);
}

// ------------------------------------------------------------------ SDP

const SDP_TARGET = target({
  name: 'sdp',
  covers: 'parseSdp + parseL2tpAnswer; what parses re-serializes stably',
  input: sdpHostile,
  run: (x) => {
    typed(SdpError, () => parseL2tpAnswer(x));
    let parsed: ReturnType<typeof parseSdp> | undefined;
    const v = typed(SdpError, () => (parsed = parseSdp(x)));
    if (parsed) {
      const text = serializeSdp(parsed);
      check(serializeSdp(parseSdp(text)) === text, 'SDP re-serialization is not stable');
    }
    return v;
  },
});

export const TARGETS: readonly FuzzTarget[] = [
  ...L2TP_TARGETS,
  ...PPP_TARGETS,
  ...IPV6_TARGETS,
  ...DATAPLANE_TARGETS,
  SDP_TARGET,
  LAC_TARGET,
  AUTOMATA_TARGET,
  LINK_TARGET,
  SLAAC_TARGET,
  DHCP_TARGET,
];

// ------------------------------------------------------------------ running

export interface TargetResult {
  name: string;
  inputs: number;
  rejected: number;
  accepted: number;
  ms: number;
  seed: number;
  failure?: { path: string; input: string; error: string };
}

/** Renders an input for a failure report (bytes as hex). */
export function describeInput(x: unknown): string {
  return JSON.stringify(x, (_k, v: unknown) => (v instanceof Uint8Array ? `hex:${Buffer.from(v).toString('hex')}` : v));
}

/**
 * Runs `runs` inputs of one target. With `path` (from a failure report) it replays
 * just that counterexample.
 */
export function runTarget(t: FuzzTarget, runs: number, seed: number, path?: string): TargetResult {
  let rejected = 0;
  let accepted = 0;
  let counting = true;
  const t0 = performance.now();
  const out = fc.check(
    fc.property(t.input, (x) => {
      let v: Verdict;
      try {
        v = t.run(x);
      } catch (e) {
        // Shrinking re-runs the predicate: only the campaign's own inputs are counted.
        counting = false;
        throw e;
      }
      if (!counting) return;
      if (v === 'rejected') rejected++;
      else accepted++;
    }),
    { numRuns: runs, seed, ...(path ? { path } : {}) },
  );
  counting = false;
  const ms = performance.now() - t0;
  const r: TargetResult = { name: t.name, inputs: rejected + accepted, rejected, accepted, ms, seed };
  if (out.failed) {
    const err = out.errorInstance;
    r.failure = {
      path: out.counterexamplePath ?? '',
      input: describeInput(out.counterexample?.[0]),
      error: err instanceof Error ? (err.stack ?? err.message) : String(err),
    };
  }
  return r;
}

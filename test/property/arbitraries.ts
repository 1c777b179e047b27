/**
 * Input generators shared by the property tests (short runs in CI) and the fuzz
 * campaign (scripts/fuzz.ts, a million inputs per target): valid messages for
 * round trips, and hostile bytes made of random data and mutated valid samples.
 * One definition per generator, so that what CI checks and what the campaign
 * fuzzes cannot drift apart.
 */
import fc from 'fast-check';
import { encodeDhcp6, encodeDuid, type Dhcp6Message } from '../../src/ipv6/dhcpv6';
import { encodeDnsNames } from '../../src/ipv6/dnsname';
import { buildNdPacket, emptyOptions, encodeNdMessage, type NdMessage } from '../../src/ipv6/nd';
import { buildUdp6, formatAddress } from '../../src/ipv6/packet';
import {
  type AvpName,
  type AvpValues,
  encodeControl,
  encodeControlBody,
  encodeData,
  encodeRawAvps,
  hide,
  type MessageName,
  REQUIRED_AVPS,
  rawAvps,
} from '../../src/l2tp';
import { CODE, encodeFrame, encodeOptions, encodePacket, opt, PROTO, u16 as ppp16, u32 as ppp32 } from '../../src/ppp/frame';
import type { SdpAttribute, SdpBandwidth, SdpConnection, SdpMedia, SdpSession } from '../../src/sdp/sdp';

// ------------------------------------------------------------------ common

/** Runs per property: FUZZ_RUNS raises it; CI keeps the small default. */
export const fuzzRuns = (dflt = 2000): number => Number(process.env.FUZZ_RUNS ?? dflt);

export const u8 = fc.integer({ min: 0, max: 0xff });
export const u16 = fc.integer({ min: 0, max: 0xffff });
export const u32 = fc.integer({ min: 0, max: 0xffffffff });
export const bytes = (minLength = 0, maxLength = 40): fc.Arbitrary<Uint8Array> => fc.uint8Array({ minLength, maxLength });

/**
 * fc.record may build null-prototype objects, which deepEqual tells apart from
 * what the decoders return; this one always builds plain objects.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- thin pass-through to fc.record's overloads
export const rec: typeof fc.record = ((m: any, o?: any) => fc.record(m, { ...o, noNullPrototype: true })) as any;

/** `arb` once in `oneIn` draws, undefined otherwise (fc.option gives a value 4 times in 5). */
export const rarely = <T>(arb: fc.Arbitrary<T>, oneIn: number): fc.Arbitrary<T | undefined> =>
  fc.oneof({ weight: oneIn - 1, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: arb });

/** Valid samples with bytes overwritten, then maybe cut short or extended with junk. */
export function mutated(samples: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  return fc
    .tuple(samples, fc.array(fc.tuple(fc.nat(), u8), { maxLength: 6 }), rarely(fc.nat(), 3), rarely(bytes(1, 16), 6))
    .map(([s, edits, cut, tail]) => {
      let b = Uint8Array.from(s);
      if (b.length > 0) for (const [pos, val] of edits) b[pos % b.length] = val;
      if (cut !== undefined) b = b.subarray(0, cut % (b.length + 1));
      if (tail !== undefined) {
        const out = new Uint8Array(b.length + tail.length);
        out.set(b);
        out.set(tail, b.length);
        b = out;
      }
      return b;
    });
}

/** What an attacker on the path can send: random bytes, or valid samples damaged. */
export function hostile(samples: fc.Arbitrary<Uint8Array>, maxRandom = 300): fc.Arbitrary<Uint8Array> {
  return fc.oneof(bytes(0, maxRandom), mutated(samples));
}

/**
 * A fixed pool of `size` samples of an expensive generator, drawn once (seeded, so
 * runs stay reproducible) on first use. The campaign mutates these instead of
 * building a fresh DHCPv6 message or RA for each of its million inputs.
 */
export function sampled<T>(arb: fc.Arbitrary<T>, size = 4000, seed = 0x5eed): fc.Arbitrary<T> {
  let pool: T[] | undefined;
  return fc.nat(size - 1).map((i) => (pool ??= fc.sample(arb, { numRuns: size, seed }))[i]!);
}

export const toBuffer = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

// ------------------------------------------------------------------ L2TP

const text = (minLength = 0) => bytes(minLength).map((b) => Buffer.from(b).toString('latin1'));
const framing = rec({ sync: fc.boolean(), async: fc.boolean() });
const bearer = rec({ digital: fc.boolean(), analog: fc.boolean() });

/** One arbitrary per AVP, restricted to values whose encoding is canonical. */
export const AVP_ARBS: { [K in Exclude<AvpName, 'messageType'>]-?: fc.Arbitrary<NonNullable<AvpValues[K]>> } = {
  resultCode: fc.oneof(rec({ result: u16 }), rec({ result: u16, error: u16 }), rec({ result: u16, error: u16, message: text(1) })),
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

export const allAvpValues = rec(AVP_ARBS);
export const someAvpValues = rec(AVP_ARBS, { requiredKeys: [] });

/** Values for one message type: its required AVPs plus any others. */
export const messageValues = (name: MessageName): fc.Arbitrary<AvpValues> =>
  fc.tuple(allAvpValues, someAvpValues).map(([all, some]) => {
    const v: Record<string, unknown> = { ...some };
    for (const k of REQUIRED_AVPS[name] as readonly AvpName[]) v[k] = (all as Record<string, unknown>)[k];
    return v as AvpValues;
  });

/** The tunnel secret the L2TP corpus hides its AVPs with. */
export const L2TP_SECRET = 'k';

/** Valid L2TP datagrams of several kinds (control with hidden AVPs, ZLB, data with every optional field). */
export const l2tpCorpus: readonly Uint8Array[] = (() => {
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
  c.push(encodeControl(h, encodeControlBody('StopCCN', { assignedTunnelId: 9, resultCode: { result: 2, error: 7, message: 'bye' } })));
  c.push(
    encodeControl(
      h,
      encodeControlBody('WEN', {
        callErrors: { crcErrors: 1, framingErrors: 2, hardwareOverruns: 3, bufferOverruns: 4, timeoutErrors: 5, alignmentErrors: 6 },
      }),
    ),
  );
  const rv = new Uint8Array([1, 2, 3]);
  const hidden = [...rawAvps({ messageType: 11, randomVector: rv }), hide(rawAvps({ assignedSessionId: 4 })[0]!, L2TP_SECRET, rv, 7)];
  c.push(encodeControl(h, encodeRawAvps(hidden)));
  c.push(encodeControl(h, new Uint8Array(0)));
  c.push(encodeData({ tunnelId: 5, sessionId: 6, ns: 3, priority: true, withLength: true, offsetSize: 4 }, new Uint8Array([0xff, 3, 0xc0, 0x21])));
  return c;
})();

/** Hostile L2TP datagrams: random bytes and mutations of the corpus. */
export const l2tpHostile: fc.Arbitrary<Uint8Array> = hostile(fc.constantFrom(...l2tpCorpus));

// ------------------------------------------------------------------ PPP

/** Valid PPP control packets of every code, to be mutated. */
export const pppTemplates: readonly Buffer[] = [
  encodePacket(CODE.CONF_REQ, 1, encodeOptions([opt(1, ppp16(1462)), opt(3, [0xc2, 0x23, 5]), opt(5, ppp32(7)), opt(17, ppp16(1614))])),
  encodePacket(CODE.CONF_REQ, 2, encodeOptions([opt(3, [198, 51, 100, 1]), opt(129, [0, 0, 0, 0])])),
  encodePacket(CODE.CONF_REQ, 3, encodeOptions([opt(1, Buffer.alloc(8, 1))])),
  encodePacket(CODE.CONF_ACK, 1, encodeOptions([opt(5, ppp32(1))])),
  encodePacket(CODE.CONF_NAK, 1, encodeOptions([opt(1, ppp16(1300)), opt(3, [10, 0, 0, 1])])),
  encodePacket(CODE.CONF_REJ, 1, encodeOptions([opt(1, ppp16(1300))])),
  encodePacket(CODE.TERM_REQ, 4, Buffer.from('bye')),
  encodePacket(CODE.TERM_ACK, 1),
  encodePacket(CODE.CODE_REJ, 5, encodePacket(1, 1)),
  encodePacket(CODE.PROTO_REJ, 6, ppp16(PROTO.IPV6CP)),
  encodePacket(CODE.ECHO_REQ, 7, ppp32(9)),
  encodePacket(CODE.ECHO_REPLY, 1, ppp32(9)),
  encodePacket(1, 1, Buffer.concat([Buffer.from([16]), Buffer.alloc(16, 3), Buffer.from('lns')])), // CHAP challenge
  encodePacket(3, 1, Buffer.from('ok')),
];

export const pppBytes: fc.Arbitrary<Buffer> = bytes(0, 300).map(toBuffer);
/** Hostile PPP control packets (LCP/NCP/CHAP/PAP payloads). */
export const pppPacket: fc.Arbitrary<Buffer> = hostile(fc.constantFrom(...pppTemplates)).map(toBuffer);

export const pppProtocols = [PROTO.LCP, PROTO.IPCP, PROTO.IPV6CP, PROTO.CHAP, PROTO.PAP, PROTO.IPV6, PROTO.IPV4, 0x80fd] as const;
/** Hostile PPP frames: random bytes, or hostile packets framed under a protocol the link knows. */
export const pppFrame: fc.Arbitrary<Buffer> = fc.oneof(pppBytes, fc.tuple(fc.constantFrom(...pppProtocols), pppPacket).map(([p, b]) => encodeFrame(p, b)));

// ------------------------------------------------------------------ IPv6, ND, DHCPv6

/** fc.record builds null-prototype objects; decoders return ordinary ones. */
export const record = <T extends Record<string, fc.Arbitrary<unknown>>>(shape: T) =>
  fc.record(shape).map((r) => ({ ...r }) as { [K in keyof T]: T[K] extends fc.Arbitrary<infer U> ? U : never });
export const address = bytes(16, 16).map(formatAddress);
const label = fc.stringMatching(/^[A-Za-z0-9_-]{1,20}$/);
export const domain = fc.array(label, { minLength: 1, maxLength: 4 }).map((l) => l.join('.'));

export const ndOptions = record({
  prefixes: fc.array(
    record({
      prefix: address,
      prefixLength: fc.integer({ min: 0, max: 128 }),
      onLink: fc.boolean(),
      autonomous: fc.boolean(),
      validLifetime: u32,
      preferredLifetime: u32,
    }),
    { maxLength: 3 },
  ),
  rdnss: fc.array(record({ lifetime: u32, servers: fc.array(address, { minLength: 1, maxLength: 3 }) }), { maxLength: 2 }),
  dnssl: fc.array(record({ lifetime: u32, domains: fc.array(domain, { minLength: 1, maxLength: 3 }) }), { maxLength: 2 }),
  unknown: fc.array(record({ type: fc.constantFrom(9, 24, 200, 253), data: bytes(0, 30) }), { maxLength: 2 }),
  mtu: fc.option(u32, { nil: undefined }),
  sourceLinkLayer: fc.option(bytes(6, 6), { nil: undefined }),
  nonce: fc.option(bytes(6, 6), { nil: undefined }),
});

export const ndMessage: fc.Arbitrary<NdMessage> = fc.oneof(
  ndOptions.map((options) => ({ kind: 'rs' as const, options: emptyOptions(options) })),
  record({
    curHopLimit: fc.nat(255),
    managed: fc.boolean(),
    other: fc.boolean(),
    routerLifetime: fc.nat(0xffff),
    reachableTime: u32,
    retransTimer: u32,
    options: ndOptions,
  }).map((r) => ({ kind: 'ra' as const, ...r, options: emptyOptions(r.options) })),
  record({ target: address, options: ndOptions }).map((r) => ({ kind: 'ns' as const, ...r, options: emptyOptions(r.options) })),
  record({ router: fc.boolean(), solicited: fc.boolean(), override: fc.boolean(), target: address, options: ndOptions }).map((r) => ({
    kind: 'na' as const,
    ...r,
    options: emptyOptions(r.options),
  })),
);

const status = fc.option(
  record({ code: fc.nat(0xffff), message: fc.string({ maxLength: 40 }).filter((s) => !/[\ud800-\udfff]/.test(s)) }),
  { nil: undefined },
);
const rawOpt = record({ code: fc.constantFrom(15, 16, 39, 1000, 0xffff), data: bytes(0, 20) });
export const duid = fc.oneof(
  bytes(6, 6).map((mac) => encodeDuid({ type: 'll', hwType: 1, linkLayer: mac })),
  bytes(16, 16).map((uuid) => encodeDuid({ type: 'uuid', uuid })),
  bytes(1, 100).map((data) => encodeDuid({ type: 'en', enterprise: 9, id: data })),
);
const dropUndefined = <T extends object>(o: T): T => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
export const dhcp6Message: fc.Arbitrary<Dhcp6Message> = fc
  .record({
    type: fc.integer({ min: 1, max: 11 }),
    xid: fc.nat(0xffffff),
    clientId: fc.option(duid, { nil: undefined }),
    serverId: fc.option(duid, { nil: undefined }),
    iaNa: fc.array(
      record({
        iaid: u32,
        t1: u32,
        t2: u32,
        addresses: fc.array(
          record({ address, preferredLifetime: u32, validLifetime: u32, status, unknown: fc.array(rawOpt, { maxLength: 1 }) }).map(dropUndefined),
          { maxLength: 3 },
        ),
        status,
        unknown: fc.array(rawOpt, { maxLength: 1 }),
      }).map(dropUndefined),
      { maxLength: 2 },
    ),
    iaPd: fc.array(
      record({
        iaid: u32,
        t1: u32,
        t2: u32,
        prefixes: fc.array(
          record({
            prefix: address,
            prefixLength: fc.nat(128),
            preferredLifetime: u32,
            validLifetime: u32,
            status,
            unknown: fc.array(rawOpt, { maxLength: 1 }),
          }).map(dropUndefined),
          { maxLength: 3 },
        ),
        status,
        unknown: fc.array(rawOpt, { maxLength: 1 }),
      }).map(dropUndefined),
      { maxLength: 2 },
    ),
    oro: fc.option(fc.array(fc.nat(0xffff), { maxLength: 8 }), { nil: undefined }),
    preference: fc.option(fc.nat(255), { nil: undefined }),
    elapsedTime: fc.option(fc.nat(0xffff), { nil: undefined }),
    status,
    rapidCommit: fc.boolean(),
    dnsServers: fc.option(fc.array(address, { maxLength: 4 }), { nil: undefined }),
    domainList: fc.option(fc.array(domain, { maxLength: 4 }), { nil: undefined }),
    solMaxRt: fc.option(u32, { nil: undefined }),
    infMaxRt: fc.option(u32, { nil: undefined }),
    informationRefreshTime: fc.option(u32, { nil: undefined }),
    unknown: fc.array(rawOpt, { maxLength: 3 }),
  })
  .map((m) => dropUndefined(m) as Dhcp6Message);

/** Complete IPv6 packets carrying ND messages, as an SC sends them. */
export const ndPackets = ndMessage.map((m) => buildNdPacket(m.kind === 'ns' ? '::' : 'fe80::1', m.kind === 'ns' ? 'ff02::1:ff00:1' : 'ff02::1', m));
export const dhcpPayloads = dhcp6Message.map(encodeDhcp6);
/** Complete IPv6/UDP packets carrying DHCPv6 server messages. */
export const dhcpPackets = dhcpPayloads.map((payload) =>
  buildUdp6({ src: 'fe02::1:2', dst: 'fe80::1', srcPort: 547, dstPort: 546, hopLimit: 1, payload }),
);
/** Pools of valid packets and bodies for the mutators (see `sampled`). */
export const ndPacketPool = sampled(ndPackets);
export const dhcpPacketPool = sampled(dhcpPackets);
/** Hostile whole IPv6 packets (the packet, UDP, ICMPv6 and ND parsers, SLAAC and the DHCPv6 client). */
export const ipv6PacketHostile: fc.Arbitrary<Uint8Array> = hostile(fc.oneof(ndPacketPool, dhcpPacketPool));
/** Hostile ND, DHCPv6, DNS-name and DUID bodies (the decoders below the packet layer). */
export const ipv6BodyHostile: fc.Arbitrary<Uint8Array> = hostile(
  sampled(fc.oneof(ndMessage.map(encodeNdMessage), dhcpPayloads, fc.array(domain, { maxLength: 5 }).map(encodeDnsNames), duid), 8000),
);
/** Text that looks like addresses, prefixes and DUIDs, or does not. */
export const ipv6Textish = fc.oneof(fc.string({ maxLength: 50 }), fc.stringMatching(/^[0-9a-fA-F:./]{0,48}$/));

// ------------------------------------------------------------------ dataplane

import { tcpSyn } from '../helpers/tcp';

export { tcpChecksum, tcpSyn } from '../helpers/tcp';

/** IP packets for the MSS clamp: SYNs with and without extension headers and other TCP options, damaged or not. */
export const mssPackets: fc.Arbitrary<Uint8Array> = hostile(
  fc.oneof(
    fc.tuple(fc.constantFrom(4 as const, 6 as const), u16, fc.array(fc.constantFrom(1, 3, 4, 8), { maxLength: 6 })).map(([v, mss, extra]) =>
      tcpSyn(v, mss, extra),
    ),
    u16.map((mss) => {
      // IPv6 with a hop-by-hop header in front of TCP.
      const s = tcpSyn(6, mss);
      const hbh = Buffer.from([6, 0, 1, 4, 0, 0, 0, 0]);
      const out = Buffer.concat([s.subarray(0, 40), hbh, s.subarray(40)]);
      out[6] = 0;
      out.writeUInt16BE(out.length - 40, 4);
      return out;
    }),
  ),
  120,
);

/** L2TP data datagrams as the fast path sees them, around IPv4/IPv6 payloads, for tunnel 7 / session 9. */
export const FAST_TUNNEL = 7;
export const FAST_SESSION = 9;
export const dataDatagrams: fc.Arbitrary<Uint8Array> = hostile(
  fc.oneof(
    fc
      .tuple(
        fc.constantFrom(PROTO.IPV4, PROTO.IPV6, PROTO.LCP, 0x21 as number),
        mssPackets,
        fc.boolean(),
        rarely(fc.integer({ min: 0, max: 8 }), 3),
        rarely(u16, 4),
      )
      .map(([proto, ip, withLength, offsetSize, ns]) =>
        encodeData({ tunnelId: FAST_TUNNEL, sessionId: FAST_SESSION, withLength, offsetSize, ns, priority: false }, encodeFrame(proto, ip)),
      ),
    fc.constantFrom(...l2tpCorpus),
  ),
);

// ------------------------------------------------------------------ SDP

export const SDP_ANSWER_LINES = [
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

const sdpPieces = fc.constantFrom(' ', '/', ':', '=', '0', '99999', 'ff02::1', '224.0.0.1', '\r', '\0', 'é', 'IP6', 'x', '');
const sdpMutation = fc.oneof(
  fc.record({ op: fc.constant('delete' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('dup' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('swap' as const), at: fc.nat(), to: fc.nat() }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), col: fc.nat(), piece: sdpPieces }),
  fc.record({ op: fc.constant('cut' as const), at: fc.nat(), col: fc.nat() }),
);

/** The valid L2TP answer with lines deleted, duplicated, swapped, cut or spliced. */
export const sdpMutatedAnswer: fc.Arbitrary<string> = fc.array(sdpMutation, { minLength: 1, maxLength: 4 }).map((muts) => {
  const lines = [...SDP_ANSWER_LINES];
  for (const m of muts) {
    if (lines.length === 0) break;
    const i = m.at % lines.length;
    if (m.op === 'delete') lines.splice(i, 1);
    else if (m.op === 'dup') lines.splice(i, 0, lines[i]!);
    else if (m.op === 'swap') {
      const j = m.to % lines.length;
      [lines[i], lines[j]] = [lines[j]!, lines[i]!];
    } else {
      const col = m.col % (lines[i]!.length + 1);
      lines[i] = m.op === 'cut' ? lines[i]!.slice(0, col) : lines[i]!.slice(0, col) + m.piece + lines[i]!.slice(col);
    }
  }
  return lines.join('\n');
});

/** Lines of binary junk, joined as an SDP body would be. */
export const sdpJunkLines = fc.tuple(fc.array(fc.string({ unit: 'binary', maxLength: 30 }), { maxLength: 12 }), fc.boolean()).map(([l, crlf]) => l.join(crlf ? '\r\n' : '\n'));

/** Any input an SDP answer file could hold. */
export const sdpHostile: fc.Arbitrary<string | Uint8Array> = fc.oneof(bytes(0, 300), sdpJunkLines, sdpMutatedAnswer);

// Valid models, within the grammar the parser enforces.
const token = fc.stringMatching(/^[!#-'*+\-.0-9A-Z^-~]{1,8}$/);
const digits = fc.stringMatching(/^[0-9]{1,12}$/);
const textField = fc.stringMatching(/^[!-~](?:[ -~]{0,12}[!-~])?$/);
const v4 = fc.ipV4().filter((a) => {
  const first = Number(a.split('.')[0]);
  return first < 224 || first > 239;
});
const connection: fc.Arbitrary<SdpConnection> = fc.oneof(
  fc.record({ netType: fc.constant('IN'), addrType: fc.constant('IP4'), address: v4 }),
  fc.record({ netType: fc.constant('IN'), addrType: fc.constant('IP6'), address: fc.ipV6() }),
  fc.record({ netType: fc.constant('IN'), addrType: fc.constant('IP4'), address: fc.constant('224.2.1.1'), ttl: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ netType: fc.constant('IN'), addrType: fc.constant('IP4'), address: fc.constant('sc.example.net') }),
);
const bandwidth: fc.Arbitrary<SdpBandwidth> = fc.record({ type: token, kbps: fc.integer({ min: 0, max: 0xffffffff }) });
const attribute: fc.Arbitrary<SdpAttribute> = fc.oneof(fc.record({ name: token }), fc.record({ name: token, value: textField }));
const optional = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
const media: fc.Arbitrary<SdpMedia> = fc.record({
  media: token,
  port: fc.integer({ min: 0, max: 65535 }),
  portCount: optional(fc.integer({ min: 1, max: 65535 })),
  proto: fc.array(token, { minLength: 1, maxLength: 3 }).map((p) => p.join('/')),
  formats: fc.array(token, { minLength: 1, maxLength: 3 }),
  info: optional(textField),
  connections: fc.array(connection, { minLength: 1, maxLength: 2 }),
  bandwidths: fc.array(bandwidth, { maxLength: 2 }),
  key: optional(textField),
  attributes: fc.array(attribute, { maxLength: 3 }),
});
export const sdpSession: fc.Arbitrary<SdpSession> = fc.record({
  origin: fc.record({ username: token, sessionId: digits, sessionVersion: digits, netType: fc.constant('IN'), addrType: fc.constant('IP4'), address: v4 }),
  name: textField,
  info: optional(textField),
  uri: optional(textField),
  emails: fc.array(textField, { maxLength: 2 }),
  phones: fc.array(textField, { maxLength: 2 }),
  connection: optional(connection),
  bandwidths: fc.array(bandwidth, { maxLength: 2 }),
  times: fc.array(fc.record({ start: digits, stop: digits, repeats: fc.array(textField, { maxLength: 2 }) }), { minLength: 1, maxLength: 2 }),
  zone: optional(textField),
  key: optional(textField),
  attributes: fc.array(attribute, { maxLength: 3 }),
  media: fc.array(media, { maxLength: 3 }),
});

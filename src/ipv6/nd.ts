import {
  ALL_ROUTERS,
  isLinkLocal,
  isMulticast,
  isUnspecified,
  parseAddress,
  formatAddress,
  solicitedNode,
  UNSPECIFIED,
} from './address';
import { decodeDnsNames, encodeDnsNames } from './dnsname';
import { fail, Ipv6DecodeError } from './errors';
import { buildIcmpv6, decodeIcmpv6, encodeIcmpv6, type Ipv6Header, parseIcmpv6 } from './packet';

/**
 * Neighbor Discovery messages (RFC 4861) with the options this agent uses:
 * Prefix Information, MTU, RDNSS and DNSSL (RFC 8106), link-layer addresses and
 * the Nonce (RFC 3971 5.3.2, used by RFC 7527 to recognise our own DAD probes).
 * Encoders produce bare ICMPv6 (for a raw socket on the LAN) or whole IPv6
 * packets (for the PPP link, where the agent is the IP stack).
 */

export const ICMPV6_RS = 133;
export const ICMPV6_RA = 134;
export const ICMPV6_NS = 135;
export const ICMPV6_NA = 136;

export const OPT_SOURCE_LL = 1;
export const OPT_TARGET_LL = 2;
export const OPT_PREFIX_INFO = 3;
export const OPT_MTU = 5;
export const OPT_NONCE = 14;
export const OPT_RDNSS = 25;
export const OPT_DNSSL = 31;

/** ND messages must arrive with this hop limit (RFC 4861 6.1, 7.1). */
export const ND_HOP_LIMIT = 255;
/** More options than this in one message is treated as hostile. */
export const MAX_ND_OPTIONS = 64;
export const INFINITE_LIFETIME = 0xffffffff;

export interface PrefixInformation {
  prefix: string;
  prefixLength: number;
  onLink: boolean;
  autonomous: boolean;
  /** Seconds; 0xffffffff is infinity. */
  validLifetime: number;
  preferredLifetime: number;
}

export interface Rdnss {
  lifetime: number;
  servers: string[];
}

export interface Dnssl {
  lifetime: number;
  domains: string[];
}

export interface RawNdOption {
  type: number;
  /** Option bytes after the type and length octets. */
  data: Uint8Array;
}

export interface NdOptions {
  sourceLinkLayer?: Uint8Array;
  targetLinkLayer?: Uint8Array;
  nonce?: Uint8Array;
  mtu?: number;
  prefixes: PrefixInformation[];
  rdnss: Rdnss[];
  dnssl: Dnssl[];
  /** Options this codec does not interpret, kept in arrival order. */
  unknown: RawNdOption[];
}

export interface RouterSolicitation {
  kind: 'rs';
  options: NdOptions;
}

export interface RouterAdvertisement {
  kind: 'ra';
  curHopLimit: number;
  managed: boolean;
  other: boolean;
  /** Seconds; 0 means "not a default router". */
  routerLifetime: number;
  /** Milliseconds; 0 means unspecified. */
  reachableTime: number;
  /** Milliseconds; 0 means unspecified. */
  retransTimer: number;
  options: NdOptions;
}

export interface NeighborSolicitation {
  kind: 'ns';
  target: string;
  options: NdOptions;
}

export interface NeighborAdvertisement {
  kind: 'na';
  router: boolean;
  solicited: boolean;
  override: boolean;
  target: string;
  options: NdOptions;
}

export type NdMessage = RouterSolicitation | RouterAdvertisement | NeighborSolicitation | NeighborAdvertisement;

export function emptyOptions(extra: Partial<NdOptions> = {}): NdOptions {
  return { prefixes: [], rdnss: [], dnssl: [], unknown: [], ...extra };
}

// ---------------------------------------------------------------- options

function u32(b: Uint8Array, off: number): number {
  return ((b[off]! << 24) | (b[off + 1]! << 16) | (b[off + 2]! << 8) | b[off + 3]!) >>> 0;
}

function put32(b: Uint8Array, off: number, v: number): void {
  b[off] = (v >>> 24) & 0xff;
  b[off + 1] = (v >>> 16) & 0xff;
  b[off + 2] = (v >>> 8) & 0xff;
  b[off + 3] = v & 0xff;
}

/** One option: type, length in 8-octet units, `data` zero-padded to fit. */
function option(type: number, data: Uint8Array): Uint8Array {
  const units = Math.ceil((data.length + 2) / 8);
  if (units > 255) throw new RangeError(`ND option ${type} longer than 2040 bytes`);
  const out = new Uint8Array(units * 8);
  out[0] = type;
  out[1] = units;
  out.set(data, 2);
  return out;
}

function encodeOptions(o: NdOptions): Uint8Array[] {
  const parts: Uint8Array[] = [];
  if (o.sourceLinkLayer) parts.push(option(OPT_SOURCE_LL, o.sourceLinkLayer));
  if (o.targetLinkLayer) parts.push(option(OPT_TARGET_LL, o.targetLinkLayer));
  if (o.nonce) parts.push(option(OPT_NONCE, o.nonce));
  if (o.mtu !== undefined) {
    const d = new Uint8Array(6);
    put32(d, 2, o.mtu);
    parts.push(option(OPT_MTU, d));
  }
  for (const p of o.prefixes) {
    const d = new Uint8Array(30);
    d[0] = p.prefixLength;
    d[1] = (p.onLink ? 0x80 : 0) | (p.autonomous ? 0x40 : 0);
    put32(d, 2, p.validLifetime);
    put32(d, 6, p.preferredLifetime);
    d.set(parseAddress(p.prefix), 14);
    parts.push(option(OPT_PREFIX_INFO, d));
  }
  for (const r of o.rdnss) {
    const d = new Uint8Array(6 + 16 * r.servers.length);
    put32(d, 2, r.lifetime);
    r.servers.forEach((s, i) => {
      d.set(parseAddress(s), 6 + 16 * i);
    });
    parts.push(option(OPT_RDNSS, d));
  }
  for (const s of o.dnssl) {
    const names = encodeDnsNames(s.domains);
    const d = new Uint8Array(6 + names.length);
    put32(d, 2, s.lifetime);
    d.set(names, 6);
    parts.push(option(OPT_DNSSL, d));
  }
  for (const u of o.unknown) parts.push(option(u.type, u.data));
  return parts;
}

/**
 * Walks the option area. A zero length is fatal (RFC 4861 4.6); an option too
 * short for its fixed fields is malformed; trailing bytes of a longer known
 * option are ignored so that extended options still parse.
 */
function decodeOptions(b: Uint8Array): NdOptions {
  const o = emptyOptions();
  let count = 0;
  for (let off = 0; off < b.length; ) {
    if (off + 2 > b.length) fail('truncated', 'ND option header');
    const type = b[off]!;
    const len = b[off + 1]! * 8;
    if (len === 0) fail('malformed', 'ND option with length 0');
    if (off + len > b.length) fail('truncated', 'ND option body');
    if (++count > MAX_ND_OPTIONS) fail('bounds', 'too many ND options');
    const d = b.subarray(off + 2, off + len);
    off += len;
    switch (type) {
      case OPT_SOURCE_LL:
        o.sourceLinkLayer ??= d.slice();
        break;
      case OPT_TARGET_LL:
        o.targetLinkLayer ??= d.slice();
        break;
      case OPT_NONCE:
        o.nonce ??= d.slice();
        break;
      case OPT_MTU:
        if (d.length < 6) fail('malformed', 'MTU option length');
        o.mtu ??= u32(d, 2);
        break;
      case OPT_PREFIX_INFO: {
        if (d.length < 30) fail('malformed', 'Prefix Information length');
        const prefixLength = d[0]!;
        if (prefixLength > 128) fail('malformed', 'prefix length > 128');
        o.prefixes.push({
          prefix: formatAddress(d.subarray(14, 30)),
          prefixLength,
          onLink: (d[1]! & 0x80) !== 0,
          autonomous: (d[1]! & 0x40) !== 0,
          validLifetime: u32(d, 2),
          preferredLifetime: u32(d, 6),
        });
        break;
      }
      case OPT_RDNSS: {
        // RFC 8106 5.1: length is 1 + 2n with n >= 1; a shorter option carries nothing.
        if (d.length < 22) fail('malformed', 'RDNSS option length');
        const servers: string[] = [];
        for (let i = 6; i + 16 <= d.length; i += 16) servers.push(formatAddress(d.subarray(i, i + 16)));
        o.rdnss.push({ lifetime: u32(d, 2), servers });
        break;
      }
      case OPT_DNSSL: {
        if (d.length < 14) fail('malformed', 'DNSSL option length');
        // A DNSSL whose names do not decode is dropped on its own; the rest of the RA stays usable.
        try {
          o.dnssl.push({ lifetime: u32(d, 2), domains: decodeDnsNames(d.subarray(6)) });
        } catch (e) {
          if (!(e instanceof Ipv6DecodeError)) throw e;
        }
        break;
      }
      default:
        o.unknown.push({ type, data: d.slice() });
    }
  }
  return o;
}

// ---------------------------------------------------------------- messages

export function encodeNdMessage(m: NdMessage): Uint8Array {
  let fixed: Uint8Array;
  let type: number;
  switch (m.kind) {
    case 'rs':
      type = ICMPV6_RS;
      fixed = new Uint8Array(4);
      break;
    case 'ra':
      type = ICMPV6_RA;
      fixed = new Uint8Array(12);
      fixed[0] = m.curHopLimit;
      fixed[1] = (m.managed ? 0x80 : 0) | (m.other ? 0x40 : 0);
      fixed[2] = (m.routerLifetime >> 8) & 0xff;
      fixed[3] = m.routerLifetime & 0xff;
      put32(fixed, 4, m.reachableTime);
      put32(fixed, 8, m.retransTimer);
      break;
    case 'ns':
      type = ICMPV6_NS;
      fixed = new Uint8Array(20);
      fixed.set(parseAddress(m.target), 4);
      break;
    case 'na':
      type = ICMPV6_NA;
      fixed = new Uint8Array(20);
      fixed[0] = (m.router ? 0x80 : 0) | (m.solicited ? 0x40 : 0) | (m.override ? 0x20 : 0);
      fixed.set(parseAddress(m.target), 4);
      break;
  }
  const parts = [fixed, ...encodeOptions(m.options)];
  const body = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    body.set(p, off);
    off += p.length;
  }
  return encodeIcmpv6({ type, code: 0, body });
}

/** Structural decode of ICMPv6 bytes (no IP-level checks); 'unsupported' for other ICMPv6 types. */
export function decodeNdMessage(icmp: Uint8Array): NdMessage {
  const { type, code, body } = decodeIcmpv6(icmp);
  return decodeNdBody(type, code, body);
}

function decodeNdBody(type: number, code: number, body: Uint8Array): NdMessage {
  if (type < ICMPV6_RS || type > ICMPV6_NA) fail('unsupported', `ICMPv6 type ${type} is not ND`);
  if (code !== 0) fail('invalid', 'ND code is not 0');
  switch (type) {
    case ICMPV6_RS:
      if (body.length < 4) fail('truncated', 'Router Solicitation');
      return { kind: 'rs', options: decodeOptions(body.subarray(4)) };
    case ICMPV6_RA:
      if (body.length < 12) fail('truncated', 'Router Advertisement');
      return {
        kind: 'ra',
        curHopLimit: body[0]!,
        managed: (body[1]! & 0x80) !== 0,
        other: (body[1]! & 0x40) !== 0,
        routerLifetime: (body[2]! << 8) | body[3]!,
        reachableTime: u32(body, 4),
        retransTimer: u32(body, 8),
        options: decodeOptions(body.subarray(12)),
      };
    case ICMPV6_NS:
      if (body.length < 20) fail('truncated', 'Neighbor Solicitation');
      return { kind: 'ns', target: formatAddress(body.subarray(4, 20)), options: decodeOptions(body.subarray(20)) };
    case ICMPV6_NA:
      if (body.length < 20) fail('truncated', 'Neighbor Advertisement');
      return {
        kind: 'na',
        router: (body[0]! & 0x80) !== 0,
        solicited: (body[0]! & 0x40) !== 0,
        override: (body[0]! & 0x20) !== 0,
        target: formatAddress(body.subarray(4, 20)),
        options: decodeOptions(body.subarray(20)),
      };
    default:
      return fail('unsupported', `ICMPv6 type ${type} is not ND`);
  }
}

export interface NdPacket<M extends NdMessage = NdMessage> {
  ip: Ipv6Header;
  message: M;
}

export function buildNdPacket(src: string, dst: string, m: NdMessage): Uint8Array {
  const icmp = decodeIcmpv6(encodeNdMessage(m));
  return buildIcmpv6(src, dst, ND_HOP_LIMIT, icmp);
}

/**
 * Parses an IPv6 packet holding an ND message and applies the receiver validity
 * checks of RFC 4861 6.1.1, 6.1.2, 7.1.1 and 7.1.2 (hop limit 255, code 0,
 * checksum, minimum length, RA from a link-local source, NS/NA target not
 * multicast, DAD probes without SLLA and to a solicited-node group, solicited
 * NA not multicast). Failures throw Ipv6DecodeError 'invalid'.
 */
export function parseNdPacket(bytes: Uint8Array): NdPacket {
  const icmp = parseIcmpv6(bytes);
  const { ip } = icmp;
  const message = decodeNdBody(icmp.type, icmp.code, icmp.body);
  if (ip.hopLimit !== ND_HOP_LIMIT) fail('invalid', 'ND hop limit is not 255');
  const fromUnspecified = isUnspecified(ip.src);
  switch (message.kind) {
    case 'rs':
      if (fromUnspecified && message.options.sourceLinkLayer) fail('invalid', 'RS from :: with SLLA');
      break;
    case 'ra':
      if (!isLinkLocal(ip.src)) fail('invalid', 'RA source is not link-local');
      break;
    case 'ns':
      if (isMulticast(message.target)) fail('invalid', 'NS target is multicast');
      if (fromUnspecified) {
        // dst is a solicited-node group exactly when mapping its own low 24 bits gives it back.
        if (ip.dst !== solicitedNode(ip.dst)) fail('invalid', 'DAD NS not sent to a solicited-node group');
        if (message.options.sourceLinkLayer) fail('invalid', 'DAD NS with SLLA');
      }
      break;
    case 'na':
      if (isMulticast(message.target)) fail('invalid', 'NA target is multicast');
      if (isMulticast(ip.dst) && message.solicited) fail('invalid', 'solicited NA to multicast');
      break;
  }
  return { ip, message };
}

// ---------------------------------------------------------------- convenience

/** An RS to all-routers. On PPP there is no link-layer address, so no SLLA option (and none from ::). */
export function buildRouterSolicitation(src: string = UNSPECIFIED, sourceLinkLayer?: Uint8Array): Uint8Array {
  const options = emptyOptions(sourceLinkLayer && !isUnspecified(src) ? { sourceLinkLayer } : {});
  return buildNdPacket(src, ALL_ROUTERS, { kind: 'rs', options });
}

/** A DAD probe (RFC 4862 5.4.2): from :: to the target's solicited-node group. */
export function buildDadSolicitation(target: string, nonce?: Uint8Array): Uint8Array {
  return buildNdPacket(UNSPECIFIED, solicitedNode(target), {
    kind: 'ns',
    target,
    options: emptyOptions(nonce ? { nonce } : {}),
  });
}

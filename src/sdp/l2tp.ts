import { isIP } from 'node:net';
import { isMulticast, parseSdp, SdpError, type SdpAttribute, type SdpMedia, type SdpSession, serializeSdp } from './sdp';

/**
 * L2TP over an SDP offer/answer exchange (draft-tveretin-dispatch-l2tp-sdp-02).
 *
 * The draft registers the media type application/l2tp and nothing else: the
 * offerer (us, the LAC) sends "m=application <port> UDP l2tp" with a non-zero
 * port whose value the answerer need not honour (3.1); the answerer replies
 * with a similar line, normally port 1701 (3.2); the offerer then opens the
 * tunnel with SCCRQ to the answer's address and port (3.3). The draft defines
 * no attributes or parameters (7): no tunnel or session IDs, no secrets. Its
 * security section leaves authentication to the signalling layer, so a tunnel
 * secret still comes from our own configuration, never from the SDP.
 */

export const L2TP_MEDIA = 'application';
export const L2TP_PROTO = 'UDP';
export const L2TP_FORMAT = 'l2tp';
/** The port an answerer uses unless it says otherwise (draft 3.2, RFC 2661). */
export const L2TP_PORT = 1701;

/** Seconds between the NTP epoch (1900) and the Unix epoch; RFC 8866 5.2 suggests NTP times for session ids. */
const NTP_UNIX_OFFSET = 2208988800;

/** The o= session id comes from the caller: given as is, or derived from `now` (the core has no clock). */
export type L2tpOfferOptions = L2tpOfferFields & ({ sessionId: string; now?: Date } | { sessionId?: undefined; now: Date });

interface L2tpOfferFields {
  /** Our address as an IPv4 or IPv6 literal: where the SC should expect us. */
  address: string;
  /** Non-zero port to put on the m= line (draft 3.1); default 1701. */
  port?: number;
  /** o= session version; default: the session id. Increase it for each re-offer (draft 6). */
  sessionVersion?: string;
  /** s= session name. */
  name?: string;
}

export function ntpSeconds(now: Date): string {
  return String(Math.floor(now.getTime() / 1000) + NTP_UNIX_OFFSET);
}

/** Builds the offer as a model; see `l2tpOfferText` for the wire form. Throws Error on bad options. */
export function buildL2tpOffer(opts: L2tpOfferOptions): SdpSession {
  const family = isIP(opts.address);
  if (family === 0) throw new Error(`offer address ${JSON.stringify(opts.address)} is not an IPv4 or IPv6 address`);
  if (isMulticast(opts.address)) throw new Error(`offer address ${opts.address} is a multicast address`);
  const port = opts.port ?? L2TP_PORT;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`offer port ${port} is not 1-65535 (the draft forbids 0)`);
  const sessionId = opts.sessionId !== undefined ? opts.sessionId : ntpSeconds(opts.now);
  const sessionVersion = opts.sessionVersion ?? sessionId;
  for (const [what, v] of [
    ['session id', sessionId],
    ['session version', sessionVersion],
  ]) {
    if (!/^[0-9]{1,20}$/.test(v)) throw new Error(`offer ${what} ${JSON.stringify(v)} is not a number`);
  }
  const addrType = family === 4 ? 'IP4' : 'IP6';
  return {
    origin: { username: '-', sessionId, sessionVersion, netType: 'IN', addrType, address: opts.address },
    name: opts.name ?? 'softwire',
    emails: [],
    phones: [],
    connection: { netType: 'IN', addrType, address: opts.address },
    bandwidths: [],
    times: [{ start: '0', stop: '0', repeats: [] }],
    attributes: [],
    media: [
      {
        media: L2TP_MEDIA,
        port,
        proto: L2TP_PROTO,
        formats: [L2TP_FORMAT],
        connections: [],
        bandwidths: [],
        attributes: [],
      },
    ],
  };
}

export function l2tpOfferText(opts: L2tpOfferOptions): string {
  return serializeSdp(buildL2tpOffer(opts));
}

/** Where the answer tells us to send SCCRQ. */
export interface L2tpAnswer {
  /** IPv4 or IPv6 literal, or a DNS name (RFC 8866 allows one in c=). */
  address: string;
  port: number;
  addrType: 'IP4' | 'IP6';
}

const DIRECTIONS = new Set(['sendrecv', 'sendonly', 'recvonly', 'inactive']);

function direction(attrs: SdpAttribute[]): string | undefined {
  return attrs.find((a) => a.value === undefined && DIRECTIONS.has(a.name))?.name;
}

function describeMedia(m: SdpMedia): string {
  return `${m.media} ${m.port}${m.portCount === undefined ? '' : `/${m.portCount}`} ${m.proto} ${m.formats.join(' ')}`;
}

const EXPECTED = `"m=${L2TP_MEDIA} <port> ${L2TP_PROTO} ${L2TP_FORMAT}"`;

/**
 * Takes the SC's address and port from a parsed answer. Throws `SdpError`
 * with kind `unusable` when the answer does not describe an L2TP stream we can
 * dial and `rejected` when the answerer declined it.
 */
export function l2tpAnswerFromSession(s: SdpSession): L2tpAnswer {
  const unusable = (line: number, reason: string): never => {
    throw new SdpError(line, reason, 'unusable');
  };
  if (s.media.length === 0) unusable(0, `the answer has no m= line; expected ${EXPECTED}`);
  const lower = (x: string) => x.toLowerCase();
  const l2tp = s.media.filter((m) => lower(m.media) === L2TP_MEDIA && m.formats.some((f) => lower(f) === L2TP_FORMAT));
  if (l2tp.length === 0) {
    const m = s.media[0];
    unusable(m.line ?? 0, `the answer's media is "${describeMedia(m)}", not ${EXPECTED}`);
  }
  // We offer one stream, so an answer carries one (RFC 3264 6); two would leave the SC ambiguous.
  if (l2tp.length > 1) unusable(l2tp[1].line ?? 0, `more than one l2tp m= line; the offer had one`);
  const m = l2tp[0];
  const line = m.line ?? 0;
  if (m.proto.toUpperCase() !== L2TP_PROTO) unusable(line, `transport is "${m.proto}", but L2TP in SDP runs over ${L2TP_PROTO} (${EXPECTED})`);
  // RFC 3264 6: a zero port in an answer declines the stream.
  if (m.port === 0) throw new SdpError(line, 'the answerer rejected the L2TP stream (port 0)', 'rejected');
  if (m.portCount !== undefined && m.portCount !== 1) unusable(line, `a port range (/${m.portCount}) makes no sense for one L2TP tunnel`);
  const dir = direction(m.attributes) ?? direction(s.attributes);
  if (dir === 'inactive') throw new SdpError(line, 'the answerer marked the L2TP stream inactive (a=inactive)', 'rejected');
  if (dir === 'sendonly' || dir === 'recvonly') unusable(line, `the answer makes the stream one-way (a=${dir}); an L2TP tunnel needs both directions`);

  if (m.connections.length > 1) unusable(m.connections[1].line ?? line, 'more than one c= line for the L2TP stream; expected one unicast address');
  const c = m.connections[0] ?? s.connection;
  if (!c) return unusable(line, 'no c= line gives the SC address');
  const cl = c.line ?? line;
  if (c.netType !== 'IN') unusable(cl, `network type is "${c.netType}", expected IN`);
  if (c.addrType !== 'IP4' && c.addrType !== 'IP6') unusable(cl, `address type is "${c.addrType}", expected IP4 or IP6`);
  if (c.ttl !== undefined || c.count !== undefined || isMulticast(c.address)) {
    unusable(cl, `${c.address} is a multicast address; the SC must be a unicast address`);
  }
  // RFC 3264 8.4 uses the unspecified address to put a stream on hold: there is nobody to dial.
  if (c.address === '0.0.0.0' || (isIP(c.address) === 6 && /^[0:]+$/.test(c.address))) {
    unusable(cl, `${c.address} is the unspecified address (stream on hold); the answer names no SC`);
  }
  return { address: c.address, port: m.port, addrType: c.addrType as 'IP4' | 'IP6' };
}

/** Parses an SDP answer and returns the SC address and port. Throws only `SdpError`. */
export function parseL2tpAnswer(input: string | Uint8Array): L2tpAnswer {
  return l2tpAnswerFromSession(parseSdp(input));
}

/** HOST:PORT as `--sc` accepts it: IPv6 literals in brackets. */
export function formatHostPort(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

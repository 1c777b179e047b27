import { isIP } from 'node:net';

/**
 * A small, strict SDP (RFC 8866, formerly RFC 4566) parser and serializer.
 *
 * It understands the line types and their order, validates the fields the
 * softwire needs (origin, connection, time, media) and keeps every other line
 * as text so that a description survives a round trip. Input comes from a
 * SIP system we do not control, so size and line count are bounded and every
 * problem is an `SdpError` naming the line and the reason.
 */

/** Largest description accepted; real offers and answers are well under 2 KiB. */
export const MAX_SDP_BYTES = 64 * 1024;
/** Most lines accepted, blank trailing lines excluded. */
export const MAX_SDP_LINES = 1024;

/**
 * What kind of failure: `syntax` (not valid SDP), `unusable` (valid SDP that does
 * not describe what we need), `rejected` (the answerer refused the offer).
 */
export type SdpErrorKind = 'syntax' | 'unusable' | 'rejected';

export class SdpError extends Error {
  override readonly name = 'SdpError';
  /**
   * @param line 1-based line number, or 0 when the problem is the description as a whole
   * @param reason what is wrong, phrased for an operator
   */
  constructor(
    readonly line: number,
    readonly reason: string,
    readonly kind: SdpErrorKind = 'syntax',
  ) {
    super(line > 0 ? `line ${line}: ${reason}` : reason);
  }
}

export interface SdpOrigin {
  username: string;
  /** Kept as digit strings: they are often NTP timestamps wider than 2^53. */
  sessionId: string;
  sessionVersion: string;
  netType: string;
  addrType: string;
  address: string;
}

export interface SdpConnection {
  netType: string;
  addrType: string;
  /** The address without any /ttl or /count suffix. */
  address: string;
  /** IPv4 multicast TTL. */
  ttl?: number;
  /** Number of consecutive multicast addresses. */
  count?: number;
  /** Line it was read from (parser output only; ignored by the serializer). */
  line?: number;
}

export interface SdpBandwidth {
  type: string;
  kbps: number;
}

export interface SdpTime {
  start: string;
  stop: string;
  /** r= lines, verbatim. */
  repeats: string[];
}

export interface SdpAttribute {
  name: string;
  /** Absent for a property attribute (a=name); present for a=name:value. */
  value?: string;
}

export interface SdpMedia {
  media: string;
  port: number;
  portCount?: number;
  proto: string;
  formats: string[];
  info?: string;
  connections: SdpConnection[];
  bandwidths: SdpBandwidth[];
  key?: string;
  attributes: SdpAttribute[];
  /** Line of the m= line (parser output only). */
  line?: number;
}

export interface SdpSession {
  origin: SdpOrigin;
  name: string;
  info?: string;
  uri?: string;
  emails: string[];
  phones: string[];
  connection?: SdpConnection;
  bandwidths: SdpBandwidth[];
  times: SdpTime[];
  /** z= line, verbatim. */
  zone?: string;
  key?: string;
  attributes: SdpAttribute[];
  media: SdpMedia[];
}

// RFC 8866 section 9 token-char: visible ASCII except separators such as / : ; = @ [ ] and quotes.
const TOKEN = /^[!#-'*+\-.0-9A-Z^-~]+$/;
const DIGITS = /^[0-9]+$/;
const NON_WS = /^[!-~\u0080-\u{10ffff}]+$/u;

/**
 * Position of each session-level line type; lines must come in this order.
 * t= and r= form repeated time descriptions, handled specially.
 */
const SESSION_ORDER = 'vosiuepcbtrzka';
const SESSION_REPEATABLE = new Set(['e', 'p', 'b', 't', 'r', 'a']);
const MEDIA_ORDER = 'micbka';
const MEDIA_REPEATABLE = new Set(['c', 'b', 'a']);
/** Session lines a description cannot do without, with what to say when one is missing. */
const REQUIRED = [
  ['v', 'v=0'],
  ['o', 'an o= (origin) line'],
  ['s', 'an s= (session name) line'],
  ['t', 'a t= (timing) line'],
] as const;

function fail(line: number, reason: string): never {
  throw new SdpError(line, reason);
}

/** Splits a field into exactly single-space separated words. */
function words(value: string, line: number, what: string): string[] {
  const w = value.split(' ');
  if (w.some((x) => x === '')) fail(line, `${what}: fields must be separated by exactly one space`);
  return w;
}

function token(v: string, line: number, what: string): string {
  if (!TOKEN.test(v)) fail(line, `${what} ${JSON.stringify(v)} is not a valid token`);
  return v;
}

function boundedInt(v: string, line: number, what: string, min: number, max: number): number {
  if (!DIGITS.test(v) || v.length > 10) fail(line, `${what} ${JSON.stringify(v)} is not a number`);
  const n = Number(v);
  if (n < min || n > max) fail(line, `${what} ${n} is out of range ${min}-${max}`);
  return n;
}

/** A DNS name as RFC 8866 allows in place of an address (at least 4 characters, with a letter). */
export function isFqdn(s: string): boolean {
  if (s.length < 4 || s.length > 254 || !/[A-Za-z]/.test(s)) return false;
  const labels = (s.endsWith('.') ? s.slice(0, -1) : s).split('.');
  return labels.every((l) => /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(l));
}

export function isMulticast(address: string): boolean {
  const v = isIP(address);
  if (v === 4) {
    const first = Number(address.split('.')[0]);
    return first >= 224 && first <= 239;
  }
  return v === 6 && /^ff/i.test(address);
}

/** Checks an IN IP4 / IN IP6 unicast address (o= lines and unicast c= lines). */
function checkUnicast(addrType: string, address: string, line: number, what: string): void {
  const family = addrType === 'IP4' ? 4 : 6;
  const v = isIP(address);
  if (v === family || (v === 0 && isFqdn(address))) return;
  if (v !== 0) fail(line, `${what}: ${address} is an IPv${v} address but the address type is ${addrType}`);
  fail(line, `${what}: ${JSON.stringify(address)} is neither an ${addrType === 'IP4' ? 'IPv4' : 'IPv6'} address nor a DNS name`);
}

function parseOrigin(value: string, line: number): SdpOrigin {
  const w = words(value, line, 'o=');
  if (w.length !== 6) fail(line, `o= needs 6 fields (username sess-id sess-version nettype addrtype address), found ${w.length}`);
  const [username, sessionId, sessionVersion, netType, addrType, address] = w;
  if (!NON_WS.test(username)) fail(line, 'o= username contains control characters');
  if (!DIGITS.test(sessionId)) fail(line, `o= session id ${JSON.stringify(sessionId)} is not a number`);
  if (!DIGITS.test(sessionVersion)) fail(line, `o= session version ${JSON.stringify(sessionVersion)} is not a number`);
  token(netType, line, 'o= network type');
  token(addrType, line, 'o= address type');
  if (!NON_WS.test(address)) fail(line, 'o= address contains control characters');
  if (netType === 'IN' && (addrType === 'IP4' || addrType === 'IP6')) checkUnicast(addrType, address, line, 'o=');
  return { username, sessionId, sessionVersion, netType, addrType, address };
}

function parseConnection(value: string, line: number): SdpConnection {
  const w = words(value, line, 'c=');
  if (w.length !== 3) fail(line, `c= needs 3 fields (nettype addrtype address), found ${w.length}`);
  const [netType, addrType, spec] = w;
  token(netType, line, 'c= network type');
  token(addrType, line, 'c= address type');
  if (!NON_WS.test(spec)) fail(line, 'c= address contains control characters');
  const c: SdpConnection = { netType, addrType, address: spec, line };
  if (netType !== 'IN' || (addrType !== 'IP4' && addrType !== 'IP6')) return c;
  const [address, ...suffix] = spec.split('/');
  c.address = address;
  if (!isMulticast(address)) {
    if (suffix.length) fail(line, `c=: "/${suffix.join('/')}" is only allowed after a multicast address`);
    checkUnicast(addrType, address, line, 'c=');
    return c;
  }
  if (isIP(address) !== (addrType === 'IP4' ? 4 : 6)) fail(line, `c=: ${address} does not match address type ${addrType}`);
  if (addrType === 'IP4') {
    // RFC 8866 5.7: an IPv4 multicast address must carry a TTL.
    if (suffix.length < 1 || suffix.length > 2) fail(line, 'c=: an IPv4 multicast address needs /ttl and at most one /count');
    c.ttl = boundedInt(suffix[0], line, 'c= TTL', 0, 255);
    if (suffix.length === 2) c.count = boundedInt(suffix[1], line, 'c= address count', 1, 65535);
  } else if (suffix.length) {
    if (suffix.length > 1) fail(line, 'c=: an IPv6 multicast address takes only /count');
    c.count = boundedInt(suffix[0], line, 'c= address count', 1, 65535);
  }
  return c;
}

function parseBandwidth(value: string, line: number): SdpBandwidth {
  const m = /^([^:]+):([0-9]+)$/.exec(value);
  if (!m) fail(line, 'b= must be <type>:<kilobits per second>');
  return { type: token(m[1], line, 'b= type'), kbps: boundedInt(m[2], line, 'b= bandwidth', 0, 0xffffffff) };
}

function parseTime(value: string, line: number): SdpTime {
  const w = words(value, line, 't=');
  if (w.length !== 2 || !w.every((x) => DIGITS.test(x))) fail(line, 't= must be <start> <stop> in decimal seconds');
  return { start: w[0], stop: w[1], repeats: [] };
}

function parseAttribute(value: string, line: number): SdpAttribute {
  const colon = value.indexOf(':');
  if (colon < 0) return { name: token(value, line, 'a= attribute name') };
  const name = token(value.slice(0, colon), line, 'a= attribute name');
  const v = value.slice(colon + 1);
  if (v === '') fail(line, `a=${name}: empty value after ":"`);
  return { name, value: v };
}

function parseMedia(value: string, line: number): SdpMedia {
  const w = words(value, line, 'm=');
  if (w.length < 4) fail(line, `m= needs at least 4 fields (media port proto fmt...), found ${w.length}`);
  const [media, portSpec, proto, ...formats] = w;
  token(media, line, 'm= media type');
  const pm = /^([0-9]+)(?:\/([0-9]+))?$/.exec(portSpec);
  if (!pm) fail(line, `m= port ${JSON.stringify(portSpec)} is not <port> or <port>/<count>`);
  const m: SdpMedia = {
    media,
    port: boundedInt(pm[1], line, 'm= port', 0, 65535),
    proto,
    formats,
    connections: [],
    bandwidths: [],
    attributes: [],
    line,
  };
  if (pm[2] !== undefined) m.portCount = boundedInt(pm[2], line, 'm= port count', 1, 65535);
  for (const p of proto.split('/')) token(p, line, 'm= protocol part');
  for (const f of formats) token(f, line, 'm= format');
  return m;
}

function text(value: string, line: number, type: string): string {
  if (value === '') fail(line, `${type}= must not be empty`);
  return value;
}

/** Decodes bytes as UTF-8, rejecting invalid sequences (SDP text is UTF-8). */
function decode(input: string | Uint8Array): string {
  if (typeof input === 'string') {
    if (input.length > MAX_SDP_BYTES) fail(0, `description is longer than ${MAX_SDP_BYTES} bytes`);
    return input;
  }
  if (input.length > MAX_SDP_BYTES) fail(0, `description is longer than ${MAX_SDP_BYTES} bytes`);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(input);
  } catch {
    return fail(0, 'description is not valid UTF-8');
  }
}

/**
 * Parses one session description. Lines may end in CRLF or LF (RFC 8866 5
 * asks parsers to accept both); blank lines at the very end are ignored,
 * anywhere else they are an error. Throws only `SdpError`.
 */
export function parseSdp(input: string | Uint8Array): SdpSession {
  const lines = decode(input).split('\n');
  for (let i = 0; i < lines.length; i++) if (lines[i].endsWith('\r')) lines[i] = lines[i].slice(0, -1);
  while (lines.length && lines[lines.length - 1] === '') lines.pop();
  if (lines.length === 0) fail(0, 'description is empty');
  if (lines.length > MAX_SDP_LINES) fail(0, `description has more than ${MAX_SDP_LINES} lines`);

  const session: Partial<SdpSession> & Pick<SdpSession, 'emails' | 'phones' | 'bandwidths' | 'times' | 'attributes' | 'media'> = {
    emails: [],
    phones: [],
    bandwidths: [],
    times: [],
    attributes: [],
    media: [],
  };
  const seen = new Set<string>();
  let lastType = '';
  let media: SdpMedia | undefined;

  const requireBefore = (rank: number, line: number, what: string) => {
    for (const [type, desc] of REQUIRED) {
      if (SESSION_ORDER.indexOf(type) < rank && !seen.has(type)) fail(line, `expected ${desc} before ${what}`);
    }
  };

  for (let i = 0; i < lines.length; i++) {
    const n = i + 1;
    const l = lines[i];
    if (l === '') fail(n, 'empty line');
    if (l.length < 2 || l[1] !== '=') fail(n, 'expected <type>=<value>');
    const type = l[0];
    if (!/^[a-z]$/.test(type)) fail(n, `line type ${JSON.stringify(type)} is not one lower-case letter`);
    const value = l.slice(2);
    if (/[\0\r]/.test(value)) fail(n, 'contains a NUL or a stray carriage return');
    if (value !== value.trimEnd() && type !== 's') fail(n, 'trailing white space');

    if (type === 'm') {
      if (!media) requireBefore(SESSION_ORDER.length, n, 'the first m= line');
      media = parseMedia(value, n);
      session.media.push(media);
      lastType = 'm';
      continue;
    }

    if (media) {
      const rank = MEDIA_ORDER.indexOf(type);
      if (rank < 0) {
        if (SESSION_ORDER.includes(type)) fail(n, `${type}= is only allowed before the first m= line`);
        fail(n, `unknown line type "${type}="`);
      }
      const lastRank = MEDIA_ORDER.indexOf(lastType);
      if (rank < lastRank) fail(n, `${type}= must come before ${lastType}= in a media section`);
      if (rank === lastRank && !MEDIA_REPEATABLE.has(type)) fail(n, `more than one ${type}= line in a media section`);
      lastType = type;
      switch (type) {
        case 'i':
          media.info = text(value, n, type);
          break;
        case 'c':
          media.connections.push(parseConnection(value, n));
          break;
        case 'b':
          media.bandwidths.push(parseBandwidth(value, n));
          break;
        case 'k':
          media.key = text(value, n, type);
          break;
        default:
          media.attributes.push(parseAttribute(value, n));
      }
      continue;
    }

    const rank = SESSION_ORDER.indexOf(type);
    if (rank < 0) {
      if (MEDIA_ORDER.includes(type)) fail(n, `${type}= is only allowed in a media section`);
      fail(n, `unknown line type "${type}="`);
    }
    if (i === 0 && type !== 'v') fail(n, 'a description must start with v=0');
    const lastRank = lastType === '' ? -1 : SESSION_ORDER.indexOf(lastType);
    // A new time description (t=) may follow the r= lines of the previous one.
    const newTime = type === 't' && (lastType === 't' || lastType === 'r');
    if (!newTime) {
      if (rank < lastRank) fail(n, `${type}= must come before ${lastType}=`);
      if (rank === lastRank && !SESSION_REPEATABLE.has(type)) fail(n, `more than one ${type}= line`);
    }
    if (type === 'r' && lastType !== 't' && lastType !== 'r') fail(n, 'r= must follow a t= line');
    requireBefore(rank, n, `${type}=`);
    seen.add(type);
    lastType = type;
    switch (type) {
      case 'v':
        if (value !== '0') fail(n, `unsupported SDP version ${JSON.stringify(value)} (only v=0 exists)`);
        break;
      case 'o':
        session.origin = parseOrigin(value, n);
        break;
      case 's':
        session.name = text(value, n, type);
        break;
      case 'i':
        session.info = text(value, n, type);
        break;
      case 'u':
        session.uri = text(value, n, type);
        break;
      case 'e':
        session.emails.push(text(value, n, type));
        break;
      case 'p':
        session.phones.push(text(value, n, type));
        break;
      case 'c':
        session.connection = parseConnection(value, n);
        break;
      case 'b':
        session.bandwidths.push(parseBandwidth(value, n));
        break;
      case 't':
        session.times.push(parseTime(value, n));
        break;
      case 'r':
        session.times[session.times.length - 1].repeats.push(text(value, n, type));
        break;
      case 'z':
        session.zone = text(value, n, type);
        break;
      case 'k':
        session.key = text(value, n, type);
        break;
      default:
        session.attributes.push(parseAttribute(value, n));
    }
  }

  if (!media) requireBefore(SESSION_ORDER.length, lines.length, 'the end of the description');
  // RFC 8866 5.7: every media stream needs a connection address, from its own c= or the session's.
  if (!session.connection) {
    for (const m of session.media) if (m.connections.length === 0) fail(m.line ?? 0, 'no c= line in this media section and none at session level');
  }
  return session as SdpSession;
}

function connectionText(c: SdpConnection): string {
  let addr = c.address;
  if (c.ttl !== undefined) addr += `/${c.ttl}`;
  if (c.count !== undefined) addr += `/${c.count}`;
  return `${c.netType} ${c.addrType} ${addr}`;
}

function attributeText(a: SdpAttribute): string {
  return a.value === undefined ? a.name : `${a.name}:${a.value}`;
}

/** Writes a description with CRLF line ends (RFC 8866 5), in the required line order. */
export function serializeSdp(s: SdpSession): string {
  const out: string[] = ['v=0'];
  const o = s.origin;
  out.push(`o=${o.username} ${o.sessionId} ${o.sessionVersion} ${o.netType} ${o.addrType} ${o.address}`);
  out.push(`s=${s.name}`);
  if (s.info !== undefined) out.push(`i=${s.info}`);
  if (s.uri !== undefined) out.push(`u=${s.uri}`);
  for (const e of s.emails) out.push(`e=${e}`);
  for (const p of s.phones) out.push(`p=${p}`);
  if (s.connection) out.push(`c=${connectionText(s.connection)}`);
  for (const b of s.bandwidths) out.push(`b=${b.type}:${b.kbps}`);
  for (const t of s.times) {
    out.push(`t=${t.start} ${t.stop}`);
    for (const r of t.repeats) out.push(`r=${r}`);
  }
  if (s.zone !== undefined) out.push(`z=${s.zone}`);
  if (s.key !== undefined) out.push(`k=${s.key}`);
  for (const a of s.attributes) out.push(`a=${attributeText(a)}`);
  for (const m of s.media) {
    const port = m.portCount === undefined ? `${m.port}` : `${m.port}/${m.portCount}`;
    out.push(`m=${m.media} ${port} ${m.proto} ${m.formats.join(' ')}`);
    if (m.info !== undefined) out.push(`i=${m.info}`);
    for (const c of m.connections) out.push(`c=${connectionText(c)}`);
    for (const b of m.bandwidths) out.push(`b=${b.type}:${b.kbps}`);
    if (m.key !== undefined) out.push(`k=${m.key}`);
    for (const a of m.attributes) out.push(`a=${attributeText(a)}`);
  }
  return `${out.join('\r\n')}\r\n`;
}

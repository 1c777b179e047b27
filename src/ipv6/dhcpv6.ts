import { formatAddress, parseAddress } from './address';
import { decodeDnsNames, encodeDnsNames } from './dnsname';
import { fail, Ipv6DecodeError } from './errors';

export * from './duid';

/**
 * DHCPv6 client/server message codec (RFC 8415 8 and 21, RFC 3646). Messages
 * decode into one structured record; options we do not interpret are kept raw so
 * that they survive a decode/encode round trip. Every list is bounded.
 */

export const DHCP6_CLIENT_PORT = 546;
export const DHCP6_SERVER_PORT = 547;

export const MSG_SOLICIT = 1;
export const MSG_ADVERTISE = 2;
export const MSG_REQUEST = 3;
export const MSG_CONFIRM = 4;
export const MSG_RENEW = 5;
export const MSG_REBIND = 6;
export const MSG_REPLY = 7;
export const MSG_RELEASE = 8;
export const MSG_DECLINE = 9;
export const MSG_RECONFIGURE = 10;
export const MSG_INFORMATION_REQUEST = 11;

export const OPT_CLIENTID = 1;
export const OPT_SERVERID = 2;
export const OPT_IA_NA = 3;
export const OPT_IAADDR = 5;
export const OPT_ORO = 6;
export const OPT_PREFERENCE = 7;
export const OPT_ELAPSED_TIME = 8;
export const OPT_STATUS_CODE = 13;
export const OPT_RAPID_COMMIT = 14;
export const OPT_DNS_SERVERS = 23;
export const OPT_DOMAIN_LIST = 24;
export const OPT_IA_PD = 25;
export const OPT_IAPREFIX = 26;
export const OPT_INFORMATION_REFRESH_TIME = 32;
export const OPT_SOL_MAX_RT = 82;
export const OPT_INF_MAX_RT = 83;

export const STATUS_SUCCESS = 0;
export const STATUS_UNSPEC_FAIL = 1;
export const STATUS_NO_ADDRS_AVAIL = 2;
export const STATUS_NO_BINDING = 3;
export const STATUS_NOT_ON_LINK = 4;
export const STATUS_USE_MULTICAST = 5;
export const STATUS_NO_PREFIX_AVAIL = 6;

export const MAX_OPTIONS = 64;
export const MAX_IAS = 8;
export const MAX_LEASES_PER_IA = 16;
export const MAX_ORO_CODES = 32;
export const MAX_DNS_SERVERS = 16;
export const MAX_STATUS_MESSAGE = 256;
export const MAX_DUID_OPTION = 130;

export interface StatusCode {
  code: number;
  message: string;
}

export interface RawOption {
  code: number;
  data: Uint8Array;
}

export interface IaAddress {
  address: string;
  preferredLifetime: number;
  validLifetime: number;
  status?: StatusCode;
  unknown: RawOption[];
}

export interface IaPrefix {
  prefix: string;
  prefixLength: number;
  preferredLifetime: number;
  validLifetime: number;
  status?: StatusCode;
  unknown: RawOption[];
}

export interface IaNa {
  iaid: number;
  t1: number;
  t2: number;
  addresses: IaAddress[];
  status?: StatusCode;
  unknown: RawOption[];
}

export interface IaPd {
  iaid: number;
  t1: number;
  t2: number;
  prefixes: IaPrefix[];
  status?: StatusCode;
  unknown: RawOption[];
}

export interface Dhcp6Message {
  type: number;
  /** 24-bit transaction id. */
  xid: number;
  clientId?: Uint8Array;
  serverId?: Uint8Array;
  iaNa: IaNa[];
  iaPd: IaPd[];
  oro?: number[];
  preference?: number;
  /** Hundredths of a second. */
  elapsedTime?: number;
  status?: StatusCode;
  rapidCommit: boolean;
  dnsServers?: string[];
  domainList?: string[];
  /** Seconds. */
  solMaxRt?: number;
  infMaxRt?: number;
  informationRefreshTime?: number;
  unknown: RawOption[];
}

export function emptyMessage(type: number, xid: number, extra: Partial<Dhcp6Message> = {}): Dhcp6Message {
  return { type, xid, iaNa: [], iaPd: [], rapidCommit: false, unknown: [], ...extra };
}

// ---------------------------------------------------------------- encoding

class Writer {
  private parts: number[] = [];
  u8(v: number): this {
    this.parts.push(v & 0xff);
    return this;
  }
  u16(v: number): this {
    return this.u8(v >> 8).u8(v);
  }
  u32(v: number): this {
    return this.u16((v >>> 16) & 0xffff).u16(v & 0xffff);
  }
  bytes(b: Uint8Array): this {
    for (const x of b) this.parts.push(x);
    return this;
  }
  option(code: number, data: Uint8Array): this {
    if (data.length > 0xffff) throw new RangeError(`DHCPv6 option ${code} longer than 65535 bytes`);
    return this.u16(code).u16(data.length).bytes(data);
  }
  done(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

function statusData(s: StatusCode): Uint8Array {
  return new Writer().u16(s.code).bytes(new TextEncoder().encode(s.message)).done();
}

function tail(w: Writer, status: StatusCode | undefined, unknown: RawOption[]): Writer {
  if (status) w.option(OPT_STATUS_CODE, statusData(status));
  for (const u of unknown) w.option(u.code, u.data);
  return w;
}

function iaNaData(ia: IaNa): Uint8Array {
  const w = new Writer().u32(ia.iaid).u32(ia.t1).u32(ia.t2);
  for (const a of ia.addresses) {
    const aw = new Writer().bytes(parseAddress(a.address)).u32(a.preferredLifetime).u32(a.validLifetime);
    w.option(OPT_IAADDR, tail(aw, a.status, a.unknown).done());
  }
  return tail(w, ia.status, ia.unknown).done();
}

function iaPdData(ia: IaPd): Uint8Array {
  const w = new Writer().u32(ia.iaid).u32(ia.t1).u32(ia.t2);
  for (const p of ia.prefixes) {
    const pw = new Writer().u32(p.preferredLifetime).u32(p.validLifetime).u8(p.prefixLength).bytes(parseAddress(p.prefix));
    w.option(OPT_IAPREFIX, tail(pw, p.status, p.unknown).done());
  }
  return tail(w, ia.status, ia.unknown).done();
}

export function encodeDhcp6(m: Dhcp6Message): Uint8Array {
  const w = new Writer()
    .u8(m.type)
    .u8(m.xid >> 16)
    .u16(m.xid & 0xffff);
  if (m.clientId) w.option(OPT_CLIENTID, m.clientId);
  if (m.serverId) w.option(OPT_SERVERID, m.serverId);
  for (const ia of m.iaNa) w.option(OPT_IA_NA, iaNaData(ia));
  for (const ia of m.iaPd) w.option(OPT_IA_PD, iaPdData(ia));
  if (m.oro) {
    const ow = new Writer();
    for (const c of m.oro) ow.u16(c);
    w.option(OPT_ORO, ow.done());
  }
  if (m.preference !== undefined) w.option(OPT_PREFERENCE, Uint8Array.of(m.preference));
  if (m.elapsedTime !== undefined) w.option(OPT_ELAPSED_TIME, new Writer().u16(m.elapsedTime).done());
  if (m.status) w.option(OPT_STATUS_CODE, statusData(m.status));
  if (m.rapidCommit) w.option(OPT_RAPID_COMMIT, new Uint8Array(0));
  if (m.dnsServers) {
    const dw = new Writer();
    for (const s of m.dnsServers) dw.bytes(parseAddress(s));
    w.option(OPT_DNS_SERVERS, dw.done());
  }
  if (m.domainList) w.option(OPT_DOMAIN_LIST, encodeDnsNames(m.domainList));
  if (m.solMaxRt !== undefined) w.option(OPT_SOL_MAX_RT, new Writer().u32(m.solMaxRt).done());
  if (m.infMaxRt !== undefined) w.option(OPT_INF_MAX_RT, new Writer().u32(m.infMaxRt).done());
  if (m.informationRefreshTime !== undefined)
    w.option(OPT_INFORMATION_REFRESH_TIME, new Writer().u32(m.informationRefreshTime).done());
  for (const u of m.unknown) w.option(u.code, u.data);
  return w.done();
}

// ---------------------------------------------------------------- decoding

function u32(b: Uint8Array, off: number): number {
  return ((b[off]! << 24) | (b[off + 1]! << 16) | (b[off + 2]! << 8) | b[off + 3]!) >>> 0;
}

/** Splits an option area into (code, data) pairs, bounded in count. */
function options(b: Uint8Array): RawOption[] {
  const out: RawOption[] = [];
  for (let off = 0; off < b.length; ) {
    if (off + 4 > b.length) fail('truncated', 'DHCPv6 option header');
    const code = (b[off]! << 8) | b[off + 1]!;
    const len = (b[off + 2]! << 8) | b[off + 3]!;
    if (off + 4 + len > b.length) fail('truncated', `DHCPv6 option ${code} body`);
    if (out.length >= MAX_OPTIONS) fail('bounds', 'too many DHCPv6 options');
    out.push({ code, data: b.subarray(off + 4, off + 4 + len) });
    off += 4 + len;
  }
  return out;
}

function need(d: Uint8Array, min: number, what: string): void {
  if (d.length < min) fail('malformed', `${what} too short`);
}

function exact(d: Uint8Array, n: number, what: string): void {
  if (d.length !== n) fail('malformed', `${what} length`);
}

function decodeStatus(d: Uint8Array): StatusCode {
  need(d, 2, 'Status Code');
  const text = new TextDecoder('utf-8', { fatal: false }).decode(d.subarray(2, 2 + MAX_STATUS_MESSAGE * 4));
  return { code: (d[0]! << 8) | d[1]!, message: text.slice(0, MAX_STATUS_MESSAGE) };
}

function raw(o: RawOption): RawOption {
  return { code: o.code, data: o.data.slice() };
}

/** Status Code and unknown options inside an IA or lease; nested known options are not expected there. */
function splitTail(opts: RawOption[]): { status?: StatusCode; unknown: RawOption[] } {
  let status: StatusCode | undefined;
  const unknown: RawOption[] = [];
  for (const o of opts) {
    if (o.code === OPT_STATUS_CODE) status ??= decodeStatus(o.data);
    else unknown.push(raw(o));
  }
  return status ? { status, unknown } : { unknown };
}

function decodeIaHeader(d: Uint8Array, what: string) {
  need(d, 12, what);
  return { iaid: u32(d, 0), t1: u32(d, 4), t2: u32(d, 8), rest: options(d.subarray(12)) };
}

function decodeIaNa(d: Uint8Array): IaNa {
  const { iaid, t1, t2, rest } = decodeIaHeader(d, 'IA_NA');
  const addresses: IaAddress[] = [];
  const others: RawOption[] = [];
  for (const o of rest) {
    if (o.code !== OPT_IAADDR) {
      others.push(o);
      continue;
    }
    need(o.data, 24, 'IAADDR');
    if (addresses.length >= MAX_LEASES_PER_IA) fail('bounds', 'too many IAADDR options');
    addresses.push({
      address: formatAddress(o.data.subarray(0, 16)),
      preferredLifetime: u32(o.data, 16),
      validLifetime: u32(o.data, 20),
      ...splitTail(options(o.data.subarray(24))),
    });
  }
  return { iaid, t1, t2, addresses, ...splitTail(others) };
}

function decodeIaPd(d: Uint8Array): IaPd {
  const { iaid, t1, t2, rest } = decodeIaHeader(d, 'IA_PD');
  const prefixes: IaPrefix[] = [];
  const others: RawOption[] = [];
  for (const o of rest) {
    if (o.code !== OPT_IAPREFIX) {
      others.push(o);
      continue;
    }
    need(o.data, 25, 'IAPREFIX');
    const prefixLength = o.data[8]!;
    if (prefixLength > 128) fail('malformed', 'IAPREFIX length > 128');
    if (prefixes.length >= MAX_LEASES_PER_IA) fail('bounds', 'too many IAPREFIX options');
    prefixes.push({
      prefix: formatAddress(o.data.subarray(9, 25)),
      prefixLength,
      preferredLifetime: u32(o.data, 0),
      validLifetime: u32(o.data, 4),
      ...splitTail(options(o.data.subarray(25))),
    });
  }
  return { iaid, t1, t2, prefixes, ...splitTail(others) };
}

function duidOption(d: Uint8Array, what: string): Uint8Array {
  if (d.length < 3 || d.length > MAX_DUID_OPTION) fail('malformed', `${what} length`);
  return d.slice();
}

/**
 * Decodes a client/server message. Relay messages are 'unsupported'. When an
 * option that may appear once appears again, the first one counts. A Domain
 * List whose names do not decode is dropped on its own.
 */
export function decodeDhcp6(b: Uint8Array): Dhcp6Message {
  if (b.length < 4) fail('truncated', 'DHCPv6 header');
  const type = b[0]!;
  if (type === 0 || type > MSG_INFORMATION_REQUEST) fail('unsupported', `DHCPv6 message type ${type}`);
  const m = emptyMessage(type, (b[1]! << 16) | (b[2]! << 8) | b[3]!);
  for (const o of options(b.subarray(4))) {
    const d = o.data;
    switch (o.code) {
      case OPT_CLIENTID:
        m.clientId ??= duidOption(d, 'Client Identifier');
        break;
      case OPT_SERVERID:
        m.serverId ??= duidOption(d, 'Server Identifier');
        break;
      case OPT_IA_NA:
        if (m.iaNa.length >= MAX_IAS) fail('bounds', 'too many IA_NA');
        m.iaNa.push(decodeIaNa(d));
        break;
      case OPT_IA_PD:
        if (m.iaPd.length >= MAX_IAS) fail('bounds', 'too many IA_PD');
        m.iaPd.push(decodeIaPd(d));
        break;
      case OPT_ORO: {
        if (d.length % 2 !== 0) fail('malformed', 'ORO length');
        if (d.length / 2 > MAX_ORO_CODES) fail('bounds', 'too many ORO codes');
        const codes: number[] = [];
        for (let i = 0; i < d.length; i += 2) codes.push((d[i]! << 8) | d[i + 1]!);
        m.oro ??= codes;
        break;
      }
      case OPT_PREFERENCE:
        exact(d, 1, 'Preference');
        m.preference ??= d[0]!;
        break;
      case OPT_ELAPSED_TIME:
        exact(d, 2, 'Elapsed Time');
        m.elapsedTime ??= (d[0]! << 8) | d[1]!;
        break;
      case OPT_STATUS_CODE:
        m.status ??= decodeStatus(d);
        break;
      case OPT_RAPID_COMMIT:
        exact(d, 0, 'Rapid Commit');
        m.rapidCommit = true;
        break;
      case OPT_DNS_SERVERS: {
        if (d.length % 16 !== 0) fail('malformed', 'DNS servers length');
        if (d.length / 16 > MAX_DNS_SERVERS) fail('bounds', 'too many DNS servers');
        const servers: string[] = [];
        for (let i = 0; i < d.length; i += 16) servers.push(formatAddress(d.subarray(i, i + 16)));
        m.dnsServers ??= servers;
        break;
      }
      case OPT_DOMAIN_LIST:
        try {
          m.domainList ??= decodeDnsNames(d);
        } catch (e) {
          if (!(e instanceof Ipv6DecodeError)) throw e;
        }
        break;
      case OPT_SOL_MAX_RT:
        exact(d, 4, 'SOL_MAX_RT');
        m.solMaxRt ??= u32(d, 0);
        break;
      case OPT_INF_MAX_RT:
        exact(d, 4, 'INF_MAX_RT');
        m.infMaxRt ??= u32(d, 0);
        break;
      case OPT_INFORMATION_REFRESH_TIME:
        exact(d, 4, 'Information Refresh Time');
        m.informationRefreshTime ??= u32(d, 0);
        break;
      default:
        m.unknown.push(raw(o));
    }
  }
  return m;
}

export const MESSAGE_NAMES: Record<number, string> = {
  [MSG_SOLICIT]: 'Solicit',
  [MSG_ADVERTISE]: 'Advertise',
  [MSG_REQUEST]: 'Request',
  [MSG_CONFIRM]: 'Confirm',
  [MSG_RENEW]: 'Renew',
  [MSG_REBIND]: 'Rebind',
  [MSG_REPLY]: 'Reply',
  [MSG_RELEASE]: 'Release',
  [MSG_DECLINE]: 'Decline',
  [MSG_RECONFIGURE]: 'Reconfigure',
  [MSG_INFORMATION_REQUEST]: 'Information-request',
};

export const STATUS_NAMES: Record<number, string> = {
  [STATUS_SUCCESS]: 'Success',
  [STATUS_UNSPEC_FAIL]: 'UnspecFail',
  [STATUS_NO_ADDRS_AVAIL]: 'NoAddrsAvail',
  [STATUS_NO_BINDING]: 'NoBinding',
  [STATUS_NOT_ON_LINK]: 'NotOnLink',
  [STATUS_USE_MULTICAST]: 'UseMulticast',
  [STATUS_NO_PREFIX_AVAIL]: 'NoPrefixAvail',
};

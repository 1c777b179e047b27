import { type RawAvp, decodeRawAvps, type AvpDecodeOptions } from './avp';
import { decodeFail, L2tpDecodeError } from './errors';

/**
 * Typed values for every AVP of RFC 2661 4.4. One table drives both directions: each entry
 * names the attribute type, the M bit we send it with, and a codec whose decoder throws only
 * L2tpDecodeError('avp-value').
 */

export interface ResultCode {
  result: number;
  error?: number;
  message?: string;
}
export interface ProtocolVersion {
  version: number;
  revision: number;
}
/** Framing Capabilities / Framing Type bits (4.4.3, 4.4.5). */
export interface Framing {
  sync: boolean;
  async: boolean;
}
/** Bearer Capabilities / Bearer Type bits. */
export interface Bearer {
  digital: boolean;
  analog: boolean;
}
export interface Q931Cause {
  cause: number;
  message: number;
  advisory?: string;
}
export interface CallErrors {
  crcErrors: number;
  framingErrors: number;
  hardwareOverruns: number;
  bufferOverruns: number;
  timeoutErrors: number;
  alignmentErrors: number;
}
export interface Accm {
  send: number;
  receive: number;
}

export interface AvpValues {
  messageType?: number;
  resultCode?: ResultCode;
  protocolVersion?: ProtocolVersion;
  framingCapabilities?: Framing;
  bearerCapabilities?: Bearer;
  tieBreaker?: Uint8Array;
  firmwareRevision?: number;
  hostName?: string;
  vendorName?: string;
  assignedTunnelId?: number;
  receiveWindowSize?: number;
  challenge?: Uint8Array;
  q931Cause?: Q931Cause;
  challengeResponse?: Uint8Array;
  assignedSessionId?: number;
  callSerialNumber?: number;
  minimumBps?: number;
  maximumBps?: number;
  bearerType?: Bearer;
  framingType?: Framing;
  calledNumber?: string;
  callingNumber?: string;
  subAddress?: string;
  txConnectSpeed?: number;
  physicalChannelId?: number;
  initialReceivedLcpConfreq?: Uint8Array;
  lastSentLcpConfreq?: Uint8Array;
  lastReceivedLcpConfreq?: Uint8Array;
  proxyAuthenType?: number;
  proxyAuthenName?: string;
  proxyAuthenChallenge?: Uint8Array;
  proxyAuthenId?: number;
  proxyAuthenResponse?: Uint8Array;
  callErrors?: CallErrors;
  accm?: Accm;
  randomVector?: Uint8Array;
  privateGroupId?: Uint8Array;
  rxConnectSpeed?: number;
  sequencingRequired?: true;
}
export type AvpName = keyof AvpValues;

interface AvpCodec<T> {
  type: number;
  /** M bit we set when sending (the value RFC 2661 4.4 gives for this attribute). */
  mandatory: boolean;
  decode(v: Uint8Array): T;
  encode(x: T): Uint8Array;
}

const bad = (what: string): never => decodeFail('avp-value', what);

const rd16 = (v: Uint8Array, at: number) => (v[at]! << 8) | v[at + 1]!;
const rd32 = (v: Uint8Array, at: number) => ((v[at]! << 24) | (v[at + 1]! << 16) | (v[at + 2]! << 8) | v[at + 3]!) >>> 0;
const put = (size: number, fill: (dv: DataView) => void): Uint8Array => {
  const out = new Uint8Array(size);
  fill(new DataView(out.buffer));
  return out;
};
const latin1 = (v: Uint8Array): string => Buffer.from(v.buffer, v.byteOffset, v.length).toString('latin1');
const fromLatin1 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'latin1'));
// Copies so that a decoded value does not pin (or alias) the whole receive buffer.
const copy = (v: Uint8Array): Uint8Array => new Uint8Array(v);

const u16 = (type: number, mandatory: boolean, name: string): AvpCodec<number> => ({
  type,
  mandatory,
  decode: (v) => (v.length === 2 ? rd16(v, 0) : bad(`${name} length ${v.length}`)),
  encode: (x) => put(2, (dv) => dv.setUint16(0, x)),
});
const u32 = (type: number, mandatory: boolean, name: string): AvpCodec<number> => ({
  type,
  mandatory,
  decode: (v) => (v.length === 4 ? rd32(v, 0) : bad(`${name} length ${v.length}`)),
  encode: (x) => put(4, (dv) => dv.setUint32(0, x >>> 0)),
});
const bytes = (
  type: number,
  mandatory: boolean,
  name: string,
  min = 0,
  max = Number.POSITIVE_INFINITY,
): AvpCodec<Uint8Array> => ({
  type,
  mandatory,
  decode: (v) => (v.length >= min && v.length <= max ? copy(v) : bad(`${name} length ${v.length}`)),
  encode: (x) => x,
});
const text = (type: number, mandatory: boolean, name: string, min = 0): AvpCodec<string> => ({
  type,
  mandatory,
  // Strings are octet strings on the wire; latin1 maps every byte to one char and back.
  decode: (v) => (v.length >= min ? latin1(v) : bad(`${name} length ${v.length}`)),
  encode: fromLatin1,
});
const framing = (type: number, name: string): AvpCodec<Framing> => ({
  type,
  mandatory: true,
  decode: (v) => {
    if (v.length !== 4) bad(`${name} length ${v.length}`);
    const bits = rd32(v, 0);
    return { sync: (bits & 1) !== 0, async: (bits & 2) !== 0 };
  },
  encode: (x) => put(4, (dv) => dv.setUint32(0, (x.sync ? 1 : 0) | (x.async ? 2 : 0))),
});
const bearer = (type: number, name: string): AvpCodec<Bearer> => ({
  type,
  mandatory: true,
  decode: (v) => {
    if (v.length !== 4) bad(`${name} length ${v.length}`);
    const bits = rd32(v, 0);
    return { digital: (bits & 1) !== 0, analog: (bits & 2) !== 0 };
  },
  encode: (x) => put(4, (dv) => dv.setUint32(0, (x.digital ? 1 : 0) | (x.analog ? 2 : 0))),
});

const CALL_ERROR_FIELDS = [
  'crcErrors',
  'framingErrors',
  'hardwareOverruns',
  'bufferOverruns',
  'timeoutErrors',
  'alignmentErrors',
] as const;

export const AVP_CODECS: { [K in AvpName]-?: AvpCodec<NonNullable<AvpValues[K]>> } = {
  messageType: u16(0, true, 'Message Type'),
  resultCode: {
    type: 1,
    mandatory: true,
    decode: (v) => {
      // 2 bytes (result only) or 4+ (result, error, optional message); 3 is malformed.
      if (v.length < 2 || v.length === 3) bad(`Result Code length ${v.length}`);
      const rc: ResultCode = { result: rd16(v, 0) };
      if (v.length >= 4) rc.error = rd16(v, 2);
      if (v.length > 4) rc.message = latin1(v.subarray(4));
      return rc;
    },
    encode: (x) => {
      const msg = x.message !== undefined ? fromLatin1(x.message) : new Uint8Array(0);
      const withError = x.error !== undefined || msg.length > 0;
      const out = new Uint8Array(withError ? 4 + msg.length : 2);
      const dv = new DataView(out.buffer);
      dv.setUint16(0, x.result);
      if (withError) {
        dv.setUint16(2, x.error ?? 0);
        out.set(msg, 4);
      }
      return out;
    },
  },
  protocolVersion: {
    type: 2,
    mandatory: true,
    decode: (v) => (v.length === 2 ? { version: v[0]!, revision: v[1]! } : bad(`Protocol Version length ${v.length}`)),
    encode: (x) => new Uint8Array([x.version, x.revision]),
  },
  framingCapabilities: framing(3, 'Framing Capabilities'),
  bearerCapabilities: bearer(4, 'Bearer Capabilities'),
  tieBreaker: bytes(5, false, 'Tie Breaker', 8, 8),
  firmwareRevision: u16(6, false, 'Firmware Revision'),
  hostName: text(7, true, 'Host Name', 1),
  vendorName: text(8, false, 'Vendor Name'),
  assignedTunnelId: u16(9, true, 'Assigned Tunnel ID'),
  receiveWindowSize: u16(10, true, 'Receive Window Size'),
  challenge: bytes(11, true, 'Challenge', 1),
  q931Cause: {
    type: 12,
    mandatory: true,
    decode: (v) => {
      if (v.length < 3) bad(`Q.931 Cause length ${v.length}`);
      const q: Q931Cause = { cause: rd16(v, 0), message: v[2]! };
      if (v.length > 3) q.advisory = latin1(v.subarray(3));
      return q;
    },
    encode: (x) => {
      const adv = x.advisory !== undefined ? fromLatin1(x.advisory) : new Uint8Array(0);
      const out = new Uint8Array(3 + adv.length);
      out[0] = x.cause >> 8;
      out[1] = x.cause & 0xff;
      out[2] = x.message;
      out.set(adv, 3);
      return out;
    },
  },
  challengeResponse: bytes(13, true, 'Challenge Response', 16, 16),
  assignedSessionId: u16(14, true, 'Assigned Session ID'),
  callSerialNumber: u32(15, true, 'Call Serial Number'),
  minimumBps: u32(16, true, 'Minimum BPS'),
  maximumBps: u32(17, true, 'Maximum BPS'),
  bearerType: bearer(18, 'Bearer Type'),
  framingType: framing(19, 'Framing Type'),
  calledNumber: text(21, true, 'Called Number'),
  callingNumber: text(22, true, 'Calling Number'),
  subAddress: text(23, true, 'Sub-Address'),
  txConnectSpeed: u32(24, true, '(Tx) Connect Speed'),
  physicalChannelId: u32(25, false, 'Physical Channel ID'),
  initialReceivedLcpConfreq: bytes(26, false, 'Initial Received LCP CONFREQ'),
  lastSentLcpConfreq: bytes(27, false, 'Last Sent LCP CONFREQ'),
  lastReceivedLcpConfreq: bytes(28, false, 'Last Received LCP CONFREQ'),
  proxyAuthenType: u16(29, false, 'Proxy Authen Type'),
  proxyAuthenName: text(30, false, 'Proxy Authen Name'),
  proxyAuthenChallenge: bytes(31, false, 'Proxy Authen Challenge'),
  proxyAuthenId: {
    type: 32,
    mandatory: false,
    // A reserved octet, then the PPP authentication ID.
    decode: (v) => (v.length === 2 ? v[1]! : bad(`Proxy Authen ID length ${v.length}`)),
    encode: (x) => new Uint8Array([0, x & 0xff]),
  },
  proxyAuthenResponse: bytes(33, false, 'Proxy Authen Response'),
  callErrors: {
    type: 34,
    mandatory: true,
    decode: (v) => {
      if (v.length !== 26) bad(`Call Errors length ${v.length}`);
      const e = {} as CallErrors;
      CALL_ERROR_FIELDS.forEach((f, i) => {
        e[f] = rd32(v, 2 + 4 * i);
      });
      return e;
    },
    encode: (x) =>
      put(26, (dv) => {
        CALL_ERROR_FIELDS.forEach((f, i) => {
          dv.setUint32(2 + 4 * i, x[f] >>> 0);
        });
      }),
  },
  accm: {
    type: 35,
    mandatory: true,
    decode: (v) => (v.length === 10 ? { send: rd32(v, 2), receive: rd32(v, 6) } : bad(`ACCM length ${v.length}`)),
    encode: (x) =>
      put(10, (dv) => {
        dv.setUint32(2, x.send >>> 0);
        dv.setUint32(6, x.receive >>> 0);
      }),
  },
  randomVector: bytes(36, true, 'Random Vector', 1),
  privateGroupId: bytes(37, false, 'Private Group ID'),
  rxConnectSpeed: u32(38, false, 'Rx Connect Speed'),
  sequencingRequired: {
    type: 39,
    mandatory: true,
    decode: (v) => (v.length === 0 ? true : bad(`Sequencing Required length ${v.length}`)),
    encode: () => new Uint8Array(0),
  },
};

/** Names in the order we encode them; Message Type is first, as 4.4.1 requires. */
export const AVP_NAMES = Object.keys(AVP_CODECS) as AvpName[];

const NAME_BY_TYPE = new Map<number, AvpName>(AVP_NAMES.map((n) => [AVP_CODECS[n].type, n]));

export function avpNameOf(type: number, vendorId = 0): AvpName | undefined {
  return vendorId === 0 ? NAME_BY_TYPE.get(type) : undefined;
}

/** A known AVP whose value has the wrong size (every codec failure is a length error). */
export interface MalformedAvp {
  name: AvpName;
  type: number;
  /** M bit as received: decides between clearing the tunnel and ignoring the AVP (RFC 2661 4.1, 7.1). */
  mandatory: boolean;
  length: number;
  detail: string;
}

export interface TypedAvps {
  values: AvpValues;
  /** AVPs we do not understand, in order (unknown type or vendor, or reserved bits set). */
  unknown: RawAvp[];
  /** Known AVPs whose value could not be read; left out of `values` for the FSM to judge. */
  malformed: MalformedAvp[];
}

/** True when the AVP must be treated as unrecognised by 4.1 even if the type is known. */
const unrecognised = (a: RawAvp): boolean => a.reserved !== 0 || avpNameOf(a.type, a.vendorId) === undefined;

/**
 * Gives typed values to raw AVPs. A repeated known AVP keeps its first occurrence. A value
 * of the wrong size does not fail the message: it is listed in `malformed`, because what to
 * do about it depends on the M bit and on the message (a StopCCN or CDN still tears down).
 */
export function typeAvps(raw: readonly RawAvp[]): TypedAvps {
  const values: AvpValues = {};
  const unknown: RawAvp[] = [];
  const malformed: MalformedAvp[] = [];
  const seen = new Set<AvpName>();
  const v = values as Record<AvpName, unknown>;
  for (const a of raw) {
    if (unrecognised(a)) {
      unknown.push(a);
      continue;
    }
    const name = avpNameOf(a.type)!;
    if (seen.has(name)) continue;
    seen.add(name);
    try {
      v[name] = AVP_CODECS[name].decode(a.value);
    } catch (e) {
      if (!(e instanceof L2tpDecodeError)) throw e;
      malformed.push({ name, type: a.type, mandatory: a.mandatory, length: a.value.length, detail: e.message });
    }
  }
  return { values, unknown, malformed };
}

export function decodeAvps(body: Uint8Array, opts?: AvpDecodeOptions): TypedAvps & { raw: RawAvp[] } {
  const raw = decodeRawAvps(body, opts);
  return { raw, ...typeAvps(raw) };
}

/** Raw AVPs for typed values, Message Type first, then in table order. */
export function rawAvps(values: AvpValues): RawAvp[] {
  const out: RawAvp[] = [];
  const v = values as Record<AvpName, unknown>;
  for (const name of AVP_NAMES) {
    const x = v[name];
    if (x === undefined) continue;
    const c = AVP_CODECS[name] as AvpCodec<unknown>;
    out.push({ mandatory: c.mandatory, hidden: false, reserved: 0, vendorId: 0, type: c.type, value: c.encode(x) });
  }
  return out;
}

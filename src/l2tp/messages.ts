import { type AvpDecodeOptions, type RawAvp, decodeRawAvps, encodeRawAvps } from './avp';
import { type AvpName, type AvpValues, AVP_CODECS, type MalformedAvp, rawAvps, typeAvps } from './avps';
import { decodeFail, L2tpDecodeError } from './errors';
import { decodePacket, encodePacket, type L2tpHeader } from './header';

/** Control message types (RFC 2661 3.2); 0, 5 and 13 are reserved. */
export const MessageType = {
  SCCRQ: 1,
  SCCRP: 2,
  SCCCN: 3,
  StopCCN: 4,
  HELLO: 6,
  OCRQ: 7,
  OCRP: 8,
  OCCN: 9,
  ICRQ: 10,
  ICRP: 11,
  ICCN: 12,
  CDN: 14,
  WEN: 15,
  SLI: 16,
} as const;
export type MessageName = keyof typeof MessageType;

const NAME_BY_TYPE = new Map<number, MessageName>((Object.keys(MessageType) as MessageName[]).map((n) => [MessageType[n], n]));
export const messageNameOf = (type: number): MessageName | undefined => NAME_BY_TYPE.get(type);

/** The "MUST be present" AVPs of RFC 2661 section 6, besides Message Type itself. */
export const REQUIRED_AVPS = {
  SCCRQ: ['protocolVersion', 'hostName', 'framingCapabilities', 'assignedTunnelId'],
  SCCRP: ['protocolVersion', 'framingCapabilities', 'hostName', 'assignedTunnelId'],
  SCCCN: [],
  StopCCN: ['assignedTunnelId', 'resultCode'],
  HELLO: [],
  OCRQ: ['assignedSessionId', 'callSerialNumber', 'minimumBps', 'maximumBps', 'bearerType', 'framingType', 'calledNumber'],
  OCRP: ['assignedSessionId'],
  OCCN: ['txConnectSpeed', 'framingType'],
  ICRQ: ['assignedSessionId', 'callSerialNumber'],
  ICRP: ['assignedSessionId'],
  ICCN: ['txConnectSpeed', 'framingType'],
  CDN: ['resultCode', 'assignedSessionId'],
  WEN: ['callErrors'],
  SLI: ['accm'],
} as const satisfies { [K in MessageName]: readonly AvpName[] };

/** Messages about one call: an unknown M=1 AVP in these clears only the session (4.1). */
export const SESSION_MESSAGES: ReadonlySet<MessageName> = new Set([
  'OCRQ',
  'OCRP',
  'OCCN',
  'ICRQ',
  'ICRP',
  'ICCN',
  'CDN',
  'WEN',
  'SLI',
]);

/** Largest control message we parse: real ones are a few hundred bytes. */
export const MAX_CONTROL_SIZE = 8192;

export interface ControlMessage {
  /** Numeric Message Type, known or not. */
  type: number;
  /** Undefined when the type is not one RFC 2661 defines. */
  name: MessageName | undefined;
  /** M bit of the Message Type AVP: an unknown type with M=1 must clear the tunnel (4.4.1). */
  typeMandatory: boolean;
  values: AvpValues;
  /** Unrecognised AVPs (kept, so the FSM can see whether any had M=1). */
  unknown: RawAvp[];
  /** Known AVPs with a value of the wrong length (RFC 2661 7.1: M=1 clears the tunnel, M=0 is ignored). */
  malformed: MalformedAvp[];
}

export type RequiredValues<K extends MessageName> = AvpValues & Required<Pick<AvpValues, (typeof REQUIRED_AVPS)[K][number]>>;

/** A control message known to be of type K with every required AVP present. */
export type MessageOf<K extends MessageName> = ControlMessage & { name: K; values: RequiredValues<K> };

export interface ControlPacket {
  tunnelId: number;
  sessionId: number;
  ns: number;
  nr: number;
  /** Null for a ZLB (header only, an explicit acknowledgement). */
  message: ControlMessage | null;
}

export interface DataPacket {
  tunnelId: number;
  sessionId: number;
  ns?: number;
  priority: boolean;
  payload: Uint8Array;
}

export type L2tpMessage = ({ kind: 'control' } & ControlPacket) | ({ kind: 'data' } & DataPacket);

/** Decodes the AVPs of a control message body. Throws only L2tpDecodeError. */
export function decodeControlBody(body: Uint8Array, opts?: AvpDecodeOptions): ControlMessage {
  const raw = decodeRawAvps(body, opts);
  const first = raw[0];
  // 4.4.1: Message Type is the first AVP and has exactly a 2-octet value.
  if (first?.vendorId !== 0 || first.type !== 0 || first.reserved !== 0 || first.value.length !== 2) {
    decodeFail('message-type');
  }
  const { values, unknown, malformed } = typeAvps(raw);
  const type = values.messageType!;
  return { type, name: messageNameOf(type), typeMandatory: first.mandatory, values, unknown, malformed };
}

/** Parses any L2TPv2 datagram. Throws only L2tpDecodeError. */
export function decodeMessage(bytes: Uint8Array, opts?: AvpDecodeOptions): L2tpMessage {
  const { header, payload } = decodePacket(bytes);
  if (!header.control) {
    const d: DataPacket = { tunnelId: header.tunnelId, sessionId: header.sessionId, priority: header.priority, payload };
    if (header.ns !== undefined) d.ns = header.ns;
    return { kind: 'data', ...d };
  }
  if (payload.length > MAX_CONTROL_SIZE) decodeFail('too-long');
  return {
    kind: 'control',
    tunnelId: header.tunnelId,
    sessionId: header.sessionId,
    ns: header.ns!,
    nr: header.nr!,
    message: payload.length === 0 ? null : decodeControlBody(payload, opts),
  };
}

/** Required AVPs missing from a message of known type. */
export function missingAvps(msg: ControlMessage): AvpName[] {
  if (!msg.name) return [];
  return REQUIRED_AVPS[msg.name].filter((n) => msg.values[n] === undefined);
}

/** Narrows `msg` to its typed form, or throws L2tpDecodeError('missing-avp'). */
export function requireAvps<K extends MessageName>(msg: ControlMessage, name: K): MessageOf<K> {
  if (msg.name !== name) throw new L2tpDecodeError('message-type', `expected ${name}, got ${msg.name ?? msg.type}`);
  const missing = missingAvps(msg);
  if (missing.length > 0) throw new L2tpDecodeError('missing-avp', `${name} without ${missing.join(', ')}`);
  return msg as MessageOf<K>;
}

/** Known AVPs with M=1 whose value has the wrong length (7.1: these clear the tunnel). */
export const malformedMandatory = (msg: ControlMessage): MalformedAvp[] => msg.malformed.filter((a) => a.mandatory);

/** Unrecognised AVPs with M=1 (4.1: these clear the session or the tunnel). */
export const unknownMandatory = (msg: ControlMessage): RawAvp[] => msg.unknown.filter((a) => a.mandatory);

/**
 * Encodes a control message body (the AVPs). `extra` raw AVPs are appended after the typed
 * ones; test peers use it for vendor AVPs, unknown AVPs and hidden AVPs.
 */
export function encodeControlBody<K extends MessageName>(
  name: K,
  values: Omit<RequiredValues<K>, 'messageType'>,
  extra: readonly RawAvp[] = [],
): Uint8Array {
  for (const n of REQUIRED_AVPS[name] as readonly AvpName[]) {
    if ((values as AvpValues)[n] === undefined) throw new RangeError(`${name} needs ${n}`);
  }
  return encodeRawAvps([...rawAvps({ ...values, messageType: MessageType[name] }), ...extra]);
}

export interface ControlHeaderFields {
  tunnelId: number;
  sessionId: number;
  ns: number;
  nr: number;
}

/** A whole control datagram: header + body (an empty body is a ZLB). */
export function encodeControl(h: ControlHeaderFields, body: Uint8Array): Uint8Array {
  const header: L2tpHeader = { control: true, withLength: true, priority: false, ...h };
  return encodePacket(header, body);
}

export interface DataHeaderFields {
  tunnelId: number;
  sessionId: number;
  /** Set when data sequencing is on; Nr is reserved in data messages and sent as 0. */
  ns?: number;
  priority?: boolean;
  withLength?: boolean;
  offsetSize?: number;
}

/** Encapsulates one PPP frame in an L2TP data message. */
export function encodeData(h: DataHeaderFields, ppp: Uint8Array): Uint8Array {
  const header: L2tpHeader = {
    control: false,
    withLength: h.withLength ?? false,
    tunnelId: h.tunnelId,
    sessionId: h.sessionId,
    priority: h.priority ?? false,
  };
  if (h.ns !== undefined) {
    header.ns = h.ns;
    header.nr = 0;
  }
  if (h.offsetSize !== undefined) header.offsetSize = h.offsetSize;
  return encodePacket(header, ppp);
}

/** Exposed for tests that want to check the table covers every AVP type. */
export const KNOWN_AVP_TYPES: readonly number[] = Object.values(AVP_CODECS).map((c) => c.type);

/**
 * PPP frame and control-packet codecs (RFC 1661 sections 2, 5 and 6).
 *
 * Frames reach us with the L2TP header already removed. Every decoder here takes
 * hostile bytes: it either returns a value or throws `PppDecodeError`, nothing else.
 */

export const PROTO = {
  IPV4: 0x0021,
  IPV6: 0x0057,
  IPCP: 0x8021,
  IPV6CP: 0x8057,
  LCP: 0xc021,
  PAP: 0xc023,
  CHAP: 0xc223,
} as const;

/** Control-packet codes shared by LCP and the NCPs (RFC 1661 section 5). */
export const CODE = {
  CONF_REQ: 1,
  CONF_ACK: 2,
  CONF_NAK: 3,
  CONF_REJ: 4,
  TERM_REQ: 5,
  TERM_ACK: 6,
  CODE_REJ: 7,
  PROTO_REJ: 8,
  ECHO_REQ: 9,
  ECHO_REPLY: 10,
  DISCARD_REQ: 11,
} as const;

/** Cap on options per packet: a real ConfReq carries a handful; this bounds work per packet. */
export const MAX_OPTIONS = 32;

export type PppDecodeReason =
  | 'short-frame'
  | 'bad-protocol'
  | 'short-packet'
  | 'bad-length'
  | 'bad-option-length'
  | 'too-many-options'
  | 'bad-field';

export class PppDecodeError extends Error {
  constructor(
    readonly reason: PppDecodeReason,
    detail?: string,
  ) {
    super(detail ? `${reason}: ${detail}` : reason);
    this.name = 'PppDecodeError';
  }
}

export interface PppFrame {
  protocol: number;
  payload: Buffer;
}

/** Protocol numbers have an odd low octet and an even high octet (RFC 1661 section 2). */
export function isValidProtocol(p: number): boolean {
  return Number.isInteger(p) && p > 0 && p <= 0xffff && (p & 0x01) === 1 && (p & 0x0100) === 0;
}

/**
 * Decodes `[FF 03] protocol payload`. Address/Control may be absent (ACFC) and the
 * protocol may be one octet (PFC); we never negotiate either, but accepting them on
 * input costs nothing and RFC 1661 6.5/6.6 asks receivers to be liberal.
 */
export function decodeFrame(buf: Uint8Array): PppFrame {
  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  let off = 0;
  if (b.length >= 2 && b[0] === 0xff && b[1] === 0x03) off = 2;
  if (b.length <= off) throw new PppDecodeError('short-frame');
  let protocol: number;
  if (b[off]! & 1) {
    protocol = b[off]!;
    off += 1;
  } else {
    if (b.length < off + 2) throw new PppDecodeError('short-frame');
    protocol = b.readUInt16BE(off);
    off += 2;
  }
  if (!isValidProtocol(protocol)) throw new PppDecodeError('bad-protocol', protocol.toString(16));
  return { protocol, payload: b.subarray(off) };
}

/** Always sends the full Address/Control and two-octet protocol: ACFC/PFC are never negotiated. */
export function encodeFrame(protocol: number, payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(4 + payload.length);
  out[0] = 0xff;
  out[1] = 0x03;
  out.writeUInt16BE(protocol & 0xffff, 2);
  out.set(payload, 4);
  return out;
}

export interface ControlPacket {
  code: number;
  id: number;
  data: Buffer;
}

/** Code/Identifier/Length/data. Octets beyond Length are padding and ignored (RFC 1661 5). */
export function decodePacket(buf: Uint8Array): ControlPacket {
  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.length < 4) throw new PppDecodeError('short-packet');
  const len = b.readUInt16BE(2);
  if (len < 4 || len > b.length) throw new PppDecodeError('bad-length', `length ${len}, have ${b.length}`);
  return { code: b[0]!, id: b[1]!, data: b.subarray(4, len) };
}

export function encodePacket(code: number, id: number, data: Uint8Array = Buffer.alloc(0)): Buffer {
  const len = 4 + data.length;
  if (len > 0xffff) throw new RangeError('control packet too long');
  const out = Buffer.allocUnsafe(len);
  out[0] = code & 0xff;
  out[1] = id & 0xff;
  out.writeUInt16BE(len, 2);
  out.set(data, 4);
  return out;
}

export interface PppOption {
  type: number;
  data: Buffer;
}

export function decodeOptions(data: Uint8Array): PppOption[] {
  const b = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const out: PppOption[] = [];
  let off = 0;
  while (off < b.length) {
    if (out.length >= MAX_OPTIONS) throw new PppDecodeError('too-many-options');
    if (off + 2 > b.length) throw new PppDecodeError('bad-option-length', 'truncated option header');
    const type = b[off]!;
    const len = b[off + 1]!;
    if (len < 2 || off + len > b.length) throw new PppDecodeError('bad-option-length', `option ${type} length ${len}`);
    out.push({ type, data: b.subarray(off + 2, off + len) });
    off += len;
  }
  return out;
}

export function encodeOptions(opts: readonly PppOption[]): Buffer {
  const parts: Buffer[] = [];
  for (const o of opts) {
    if (o.data.length > 253) throw new RangeError(`option ${o.type} too long`);
    parts.push(Buffer.from([o.type, o.data.length + 2]), o.data);
  }
  return Buffer.concat(parts);
}

export const opt = (type: number, data: Uint8Array | number[] = []): PppOption => ({
  type,
  data: Buffer.from(data as Uint8Array),
});

export const u16 = (v: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v & 0xffff);
  return b;
};

export const u32 = (v: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
};

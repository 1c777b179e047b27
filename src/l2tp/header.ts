import { decodeFail } from './errors';

/**
 * The L2TPv2 header (RFC 2661 3.1):
 *
 *   |T|L|x|x|S|x|O|P|x|x|x|x|  Ver  |  Length (opt)  |
 *   |  Tunnel ID  |  Session ID  |  Ns (opt)  |  Nr (opt)  |  Offset Size (opt)  | pad
 *
 * Reserved (x) bits are written as 0 and ignored on input, as 3.1 requires.
 */
export const FLAG_T = 0x8000;
export const FLAG_L = 0x4000;
export const FLAG_S = 0x0800;
export const FLAG_O = 0x0200;
export const FLAG_P = 0x0100;
export const VERSION_MASK = 0x000f;
export const L2TP_VERSION = 2;

/** UDP can carry at most this much; a Length field above it cannot be honest. */
export const MAX_PACKET = 0xffff;

export interface L2tpHeader {
  control: boolean;
  /** L bit: the header carries the total message length. */
  withLength: boolean;
  tunnelId: number;
  sessionId: number;
  /** Present exactly when the S bit is set. */
  ns?: number;
  nr?: number;
  /** Present exactly when the O bit is set; the padding itself is written as zeros. */
  offsetSize?: number;
  /** P bit: data messages the receiver should queue ahead of others (e.g. LCP echoes). */
  priority: boolean;
}

export interface L2tpPacket {
  header: L2tpHeader;
  /** The bytes after the header (and after any offset padding), up to Length if present. */
  payload: Uint8Array;
}

const u16 = (b: Uint8Array, at: number): number => (b[at]! << 8) | b[at + 1]!;

/** Parses the header of one datagram. Throws only L2tpDecodeError. */
export function decodePacket(buf: Uint8Array): L2tpPacket {
  if (buf.length < 6) decodeFail('short');
  const flags = u16(buf, 0);
  if ((flags & VERSION_MASK) !== L2TP_VERSION) decodeFail('version', `ver=${flags & VERSION_MASK}`);
  const control = (flags & FLAG_T) !== 0;
  const withLength = (flags & FLAG_L) !== 0;
  const seq = (flags & FLAG_S) !== 0;
  const offset = (flags & FLAG_O) !== 0;
  if (control && (!withLength || !seq || offset)) decodeFail('control-flags');

  let at = 2;
  let end = buf.length;
  if (withLength) {
    const len = u16(buf, at);
    at += 2;
    if (len > buf.length) decodeFail('length', `length ${len} > datagram ${buf.length}`);
    end = len; // bytes beyond Length (e.g. link padding) are not part of the message
  }
  const fixed = at + 4 + (seq ? 4 : 0) + (offset ? 2 : 0);
  if (end < fixed) decodeFail(withLength ? 'length' : 'short');

  const header: L2tpHeader = {
    control,
    withLength,
    tunnelId: u16(buf, at),
    sessionId: u16(buf, at + 2),
    priority: (flags & FLAG_P) !== 0,
  };
  at += 4;
  if (seq) {
    header.ns = u16(buf, at);
    header.nr = u16(buf, at + 2);
    at += 4;
  }
  if (offset) {
    const size = u16(buf, at);
    at += 2;
    header.offsetSize = size;
    if (at + size > end) decodeFail('offset', `offset ${size} past end`);
    at += size;
  }
  return { header, payload: buf.subarray(at, end) };
}

/** Size of the header `h` would be encoded into, including offset padding. */
export function headerSize(h: L2tpHeader): number {
  return 6 + (h.withLength ? 2 : 0) + (h.ns !== undefined ? 4 : 0) + (h.offsetSize !== undefined ? 2 + h.offsetSize : 0);
}

/**
 * Builds one datagram. Programming errors (a control header without Ns/Nr, out-of-range
 * fields) throw RangeError: they are our bugs, not hostile input.
 */
export function encodePacket(h: L2tpHeader, payload: Uint8Array): Uint8Array {
  if (h.control && (!h.withLength || h.ns === undefined || h.nr === undefined || h.offsetSize !== undefined)) {
    throw new RangeError('control messages need L and S and no O (RFC 2661 3.1)');
  }
  if ((h.ns === undefined) !== (h.nr === undefined)) throw new RangeError('Ns and Nr go together');
  const hs = headerSize(h);
  const total = hs + payload.length;
  if (total > MAX_PACKET) throw new RangeError(`L2TP message of ${total} bytes`);
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  let flags = L2TP_VERSION;
  if (h.control) flags |= FLAG_T;
  if (h.withLength) flags |= FLAG_L;
  if (h.ns !== undefined) flags |= FLAG_S;
  if (h.offsetSize !== undefined) flags |= FLAG_O;
  if (h.priority) flags |= FLAG_P;
  dv.setUint16(0, flags);
  let at = 2;
  if (h.withLength) {
    dv.setUint16(at, total);
    at += 2;
  }
  dv.setUint16(at, h.tunnelId);
  dv.setUint16(at + 2, h.sessionId);
  at += 4;
  if (h.ns !== undefined && h.nr !== undefined) {
    dv.setUint16(at, h.ns);
    dv.setUint16(at + 2, h.nr);
    at += 4;
  }
  if (h.offsetSize !== undefined) {
    dv.setUint16(at, h.offsetSize);
    at += 2 + h.offsetSize;
  }
  out.set(payload, at);
  return out;
}

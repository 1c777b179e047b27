/**
 * strongSwan's VICI wire format, encoded and decoded without I/O. A packet on the
 * unix socket is a 32-bit big-endian length followed by that many bytes: one
 * packet-type byte, a length-prefixed name for the named types, then a message.
 * A message is a flat run of elements (section start/end, key/value, list
 * start/item/end) that nests into sections and lists.
 *
 * charon is trusted but the bytes are still treated as hostile: every length is
 * checked against what is left, nesting depth and packet size are bounded, and a
 * bad packet is a ViciDecodeError (counted and dropped by the edge), never a crash.
 */

export const PacketType = {
  CMD_REQUEST: 0,
  CMD_RESPONSE: 1,
  CMD_UNKNOWN: 2,
  EVENT_REGISTER: 3,
  EVENT_UNREGISTER: 4,
  EVENT_CONFIRM: 5,
  EVENT_UNKNOWN: 6,
  EVENT: 7,
} as const;

const SECTION_START = 1;
const SECTION_END = 2;
const KEY_VALUE = 3;
const LIST_START = 4;
const LIST_ITEM = 5;
const LIST_END = 6;

/** A value is bytes on the wire; strings are UTF-8. */
export type ViciValue = string | Buffer | ViciMessage | (string | Buffer)[];
export interface ViciMessage {
  [key: string]: ViciValue;
}

export interface ViciPacket {
  type: number;
  /** For CMD_REQUEST, EVENT_REGISTER, EVENT_UNREGISTER and EVENT. */
  name?: string;
  message: ViciMessage;
}

/** charon's own limit is 512 KiB per message; list-sas events stay far below. */
export const MAX_PACKET = 512 * 1024;
const MAX_DEPTH = 16;

export class ViciDecodeError extends Error {
  constructor(readonly reason: string) {
    super(`vici: ${reason}`);
    this.name = 'ViciDecodeError';
  }
}

const NAMED = new Set<number>([PacketType.CMD_REQUEST, PacketType.EVENT_REGISTER, PacketType.EVENT_UNREGISTER, PacketType.EVENT]);

function name8(parts: Buffer[], name: string): void {
  const b = Buffer.from(name, 'utf8');
  if (b.length === 0 || b.length > 255) throw new RangeError(`vici: name "${name}" must be 1..255 bytes`);
  parts.push(Buffer.from([b.length]), b);
}

function value16(parts: Buffer[], v: string | Buffer): void {
  const b = typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
  if (b.length > 0xffff) throw new RangeError('vici: value longer than 65535 bytes');
  const len = Buffer.alloc(2);
  len.writeUInt16BE(b.length);
  parts.push(len, b);
}

function encodeMessage(parts: Buffer[], m: ViciMessage, depth: number): void {
  if (depth > MAX_DEPTH) throw new RangeError('vici: message nested too deeply');
  for (const [k, v] of Object.entries(m)) {
    if (Array.isArray(v)) {
      parts.push(Buffer.from([LIST_START]));
      name8(parts, k);
      for (const item of v) {
        parts.push(Buffer.from([LIST_ITEM]));
        value16(parts, item);
      }
      parts.push(Buffer.from([LIST_END]));
    } else if (typeof v === 'string' || Buffer.isBuffer(v)) {
      parts.push(Buffer.from([KEY_VALUE]));
      name8(parts, k);
      value16(parts, v);
    } else {
      parts.push(Buffer.from([SECTION_START]));
      name8(parts, k);
      encodeMessage(parts, v, depth + 1);
      parts.push(Buffer.from([SECTION_END]));
    }
  }
}

/** One packet with its 4-byte length prefix, ready for the socket. */
export function encodePacket(p: ViciPacket): Buffer {
  const parts: Buffer[] = [Buffer.alloc(4), Buffer.from([p.type])];
  if (NAMED.has(p.type)) name8(parts, p.name ?? '');
  encodeMessage(parts, p.message, 0);
  const out = Buffer.concat(parts);
  if (out.length - 4 > MAX_PACKET) throw new RangeError('vici: packet too large');
  out.writeUInt32BE(out.length - 4, 0);
  return out;
}

/** Decodes one packet body (without the length prefix). */
export function decodePacket(body: Buffer): ViciPacket {
  let off = 0;
  const need = (n: number, what: string) => {
    if (off + n > body.length) throw new ViciDecodeError(`truncated ${what}`);
  };
  const readName = (): string => {
    need(1, 'name length');
    const n = body[off++]!;
    need(n, 'name');
    const s = body.toString('utf8', off, off + n);
    off += n;
    return s;
  };
  const readValue = (): Buffer => {
    need(2, 'value length');
    const n = body.readUInt16BE(off);
    off += 2;
    need(n, 'value');
    const v = Buffer.from(body.subarray(off, off + n));
    off += n;
    return v;
  };
  need(1, 'packet type');
  const type = body[off++]!;
  if (type > PacketType.EVENT) throw new ViciDecodeError(`unknown packet type ${type}`);
  const name = NAMED.has(type) ? readName() : undefined;
  const root: ViciMessage = Object.create(null) as ViciMessage;
  const stack: ViciMessage[] = [root];
  let list: { into: ViciMessage; key: string; items: (string | Buffer)[] } | null = null;
  while (off < body.length) {
    const el = body[off++]!;
    const top = stack[stack.length - 1]!;
    if (list && el !== LIST_ITEM && el !== LIST_END) throw new ViciDecodeError(`element ${el} inside a list`);
    switch (el) {
      case SECTION_START: {
        if (stack.length > MAX_DEPTH) throw new ViciDecodeError('sections nested too deeply');
        const k = readName();
        const s = Object.create(null) as ViciMessage;
        top[k] = s;
        stack.push(s);
        break;
      }
      case SECTION_END:
        if (stack.length === 1) throw new ViciDecodeError('section end without start');
        stack.pop();
        break;
      case KEY_VALUE: {
        const k = readName();
        top[k] = text(readValue());
        break;
      }
      case LIST_START: {
        const k = readName();
        list = { into: top, key: k, items: [] };
        break;
      }
      case LIST_ITEM:
        if (!list) throw new ViciDecodeError('list item outside a list');
        list.items.push(text(readValue()));
        break;
      case LIST_END:
        if (!list) throw new ViciDecodeError('list end without start');
        list.into[list.key] = list.items;
        list = null;
        break;
      default:
        throw new ViciDecodeError(`unknown element type ${el}`);
    }
  }
  if (list || stack.length !== 1) throw new ViciDecodeError('message ends inside a section or list');
  return name === undefined ? { type, message: root } : { type, name, message: root };
}

/** Values are text in every message we read; a value that is not valid UTF-8 stays bytes. */
function text(b: Buffer): string | Buffer {
  const s = b.toString('utf8');
  return Buffer.byteLength(s) === b.length && !s.includes('\uFFFD') ? s : b;
}

/**
 * Splits a byte stream into packets. Bounded: a length above MAX_PACKET poisons
 * the stream (the edge closes the socket), since no resynchronisation is possible.
 */
export class ViciFramer {
  private buf: Buffer = Buffer.alloc(0);

  /** Feeds bytes; returns complete packet bodies. Throws ViciDecodeError on an impossible length. */
  push(chunk: Buffer): Buffer[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: Buffer[] = [];
    while (this.buf.length >= 4) {
      const n = this.buf.readUInt32BE(0);
      if (n > MAX_PACKET) throw new ViciDecodeError(`packet length ${n} above ${MAX_PACKET}`);
      if (this.buf.length < 4 + n) break;
      out.push(Buffer.from(this.buf.subarray(4, 4 + n)));
      this.buf = this.buf.subarray(4 + n);
    }
    return out;
  }
}

/** Reads a text value by path, or undefined; for parsing charon's answers without casts everywhere. */
export function str(m: ViciMessage | undefined, key: string): string | undefined {
  const v = m?.[key];
  return typeof v === 'string' ? v : undefined;
}

export function section(m: ViciMessage | undefined, key: string): ViciMessage | undefined {
  const v = m?.[key];
  return v !== undefined && typeof v === 'object' && !Array.isArray(v) && !Buffer.isBuffer(v) ? v : undefined;
}

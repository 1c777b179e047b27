import type { Rng } from './backoff';
import { fail } from './errors';

/**
 * DHCP Unique Identifiers (RFC 8415 11). The agent persists the DUID it first
 * generates, so that the server keeps recognising it (and keeps delegating the
 * same prefix, RFC 5571 7) across restarts.
 */

export const DUID_LLT = 1;
export const DUID_EN = 2;
export const DUID_LL = 3;
export const DUID_UUID = 4;
/** Type code plus at most 128 octets. */
export const MAX_DUID_LENGTH = 130;
export const HWTYPE_ETHERNET = 1;

export type Duid =
  | { type: 'llt'; hwType: number; time: number; linkLayer: Uint8Array }
  | { type: 'en'; enterprise: number; id: Uint8Array }
  | { type: 'll'; hwType: number; linkLayer: Uint8Array }
  | { type: 'uuid'; uuid: Uint8Array }
  | { type: 'unknown'; code: number; data: Uint8Array };

export function parseDuid(b: Uint8Array): Duid {
  if (b.length < 3 || b.length > MAX_DUID_LENGTH) fail('malformed', 'DUID length');
  const code = (b[0]! << 8) | b[1]!;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  switch (code) {
    case DUID_LLT:
      if (b.length < 8) fail('truncated', 'DUID-LLT');
      return { type: 'llt', hwType: dv.getUint16(2), time: dv.getUint32(4), linkLayer: b.slice(8) };
    case DUID_EN:
      if (b.length < 7) fail('truncated', 'DUID-EN');
      return { type: 'en', enterprise: dv.getUint32(2), id: b.slice(6) };
    case DUID_LL:
      if (b.length < 4) fail('truncated', 'DUID-LL');
      return { type: 'll', hwType: dv.getUint16(2), linkLayer: b.slice(4) };
    case DUID_UUID:
      if (b.length !== 18) fail('malformed', 'DUID-UUID is not 16 octets');
      return { type: 'uuid', uuid: b.slice(2) };
    default:
      return { type: 'unknown', code, data: b.slice(2) };
  }
}

export function encodeDuid(d: Duid): Uint8Array {
  const head = (code: number, rest: number[], tail: Uint8Array) => {
    const out = new Uint8Array(2 + rest.length + tail.length);
    out[0] = code >> 8;
    out[1] = code & 0xff;
    out.set(rest, 2);
    out.set(tail, 2 + rest.length);
    if (out.length > MAX_DUID_LENGTH) throw new RangeError('DUID longer than 130 octets');
    return out;
  };
  const u16 = (v: number) => [(v >> 8) & 0xff, v & 0xff];
  const u32 = (v: number) => [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
  switch (d.type) {
    case 'llt':
      return head(DUID_LLT, [...u16(d.hwType), ...u32(d.time)], d.linkLayer);
    case 'en':
      return head(DUID_EN, u32(d.enterprise), d.id);
    case 'll':
      return head(DUID_LL, u16(d.hwType), d.linkLayer);
    case 'uuid':
      if (d.uuid.length !== 16) throw new RangeError('UUID must be 16 octets');
      return head(DUID_UUID, [], d.uuid);
    case 'unknown':
      return head(d.code, [], d.data);
  }
}

/**
 * A fresh DUID. With a MAC address, DUID-LL (stable for that hardware); without
 * one, as on a PPP-only host, DUID-UUID with a random version-4 UUID.
 */
export function generateDuid(rng: Rng, mac?: Uint8Array): Uint8Array {
  if (mac) return encodeDuid({ type: 'll', hwType: HWTYPE_ETHERNET, linkLayer: mac });
  const uuid = new Uint8Array(16);
  for (let i = 0; i < 16; i++) uuid[i] = Math.floor(rng() * 256) & 0xff;
  uuid[6] = (uuid[6]! & 0x0f) | 0x40; // version 4
  uuid[8] = (uuid[8]! & 0x3f) | 0x80; // RFC 4122 variant
  return encodeDuid({ type: 'uuid', uuid });
}

/** "00:04:…" colon-separated hex, the usual way DUIDs are written in configs and logs. */
export function formatDuid(b: Uint8Array): string {
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/** Accepts colon-separated or plain hex. */
export function parseDuidText(text: string): Uint8Array {
  const hex = text.trim().replace(/[:-]/g, '');
  if (!/^([0-9a-fA-F]{2})+$/.test(hex) || hex.length / 2 > MAX_DUID_LENGTH) fail('malformed', 'DUID text');
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  parseDuid(out);
  return out;
}

export function duidEquals(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  return a !== undefined && b !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);
}

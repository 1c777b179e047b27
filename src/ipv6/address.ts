import { fail } from './errors';

/**
 * IPv6 address helpers. Throughout src/ipv6 an address is passed around as its
 * canonical RFC 5952 text (lower case, longest zero run compressed), so that two
 * strings are equal exactly when the addresses are; bytes appear only at codec
 * boundaries.
 */

export const UNSPECIFIED = '::';
export const ALL_NODES = 'ff02::1';
export const ALL_ROUTERS = 'ff02::2';
export const ALL_DHCP_RELAY_AGENTS_AND_SERVERS = 'ff02::1:2';

/** Parses IPv6 text (with `::` and an optional dotted IPv4 tail) into 16 bytes. */
export function parseAddress(text: string): Uint8Array {
  if (typeof text !== 'string' || text.length === 0 || text.length > 45) fail('malformed', 'address text length');
  let body = text;
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.', lastColon)) {
    // Rewrite a dotted IPv4 tail as two hex groups so one parser handles both.
    const q = parseDottedQuad(text.slice(lastColon + 1));
    body = text.slice(0, lastColon + 1) + (((q[0]! << 8) | q[1]!).toString(16) + ':' + ((q[2]! << 8) | q[3]!).toString(16));
  }
  const halves = body.split('::');
  if (halves.length > 2) fail('malformed', 'more than one ::');
  const parseGroups = (s: string): number[] => (s === '' ? [] : s.split(':').map(parseGroup));
  let groups: number[];
  if (halves.length === 2) {
    const left = parseGroups(halves[0]!);
    const right = parseGroups(halves[1]!);
    const fill = 8 - left.length - right.length;
    if (fill < 1) fail('malformed', ':: stands for no group');
    groups = [...left, ...new Array<number>(fill).fill(0), ...right];
  } else {
    groups = parseGroups(body);
  }
  if (groups.length !== 8) fail('malformed', 'wrong number of groups');
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[i * 2] = g >> 8;
    out[i * 2 + 1] = g & 0xff;
  });
  return out;
}

function parseGroup(s: string): number {
  if (!/^[0-9a-fA-F]{1,4}$/.test(s)) fail('malformed', 'bad hex group');
  return Number.parseInt(s, 16);
}

function parseDottedQuad(s: string): number[] {
  const parts = s.split('.');
  if (parts.length !== 4) fail('malformed', 'bad IPv4 tail');
  return parts.map((p) => {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) fail('malformed', 'bad IPv4 octet');
    const n = Number(p);
    if (n > 255) fail('malformed', 'IPv4 octet > 255');
    return n;
  });
}

/** Formats 16 bytes as RFC 5952 text. */
export function formatAddress(bytes: Uint8Array): string {
  if (bytes.length !== 16) fail('malformed', 'address is not 16 bytes');
  const g: number[] = [];
  for (let i = 0; i < 16; i += 2) g.push((bytes[i]! << 8) | bytes[i + 1]!);
  // Longest run of two or more zero groups; the first one wins a tie.
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(':');
  if (bestAt < 0) return hex(g);
  return `${hex(g.slice(0, bestAt))}::${hex(g.slice(bestAt + bestLen))}`;
}

/** Canonical text of any accepted spelling of an address. */
export function canonical(text: string): string {
  return formatAddress(parseAddress(text));
}

export function isValidAddress(text: string): boolean {
  try {
    parseAddress(text);
    return true;
  } catch {
    return false;
  }
}

export interface Prefix {
  prefix: string;
  length: number;
}

/** Parses "2001:db8::/56"; the host bits are cleared. */
export function parsePrefix(text: string): Prefix {
  const slash = text.indexOf('/');
  if (slash < 0) fail('malformed', 'prefix without /length');
  const lenText = text.slice(slash + 1);
  if (!/^[0-9]{1,3}$/.test(lenText)) fail('malformed', 'bad prefix length');
  const length = Number(lenText);
  if (length > 128) fail('malformed', 'prefix length > 128');
  return { prefix: maskPrefix(text.slice(0, slash), length), length };
}

export function formatPrefix(p: Prefix): string {
  return `${p.prefix}/${p.length}`;
}

function checkLength(length: number): void {
  if (!Number.isInteger(length) || length < 0 || length > 128) throw new RangeError(`prefix length ${length}`);
}

function maskBytes(b: Uint8Array, length: number): Uint8Array {
  checkLength(length);
  const out = new Uint8Array(b);
  for (let i = 0; i < 16; i++) {
    const keep = Math.max(0, Math.min(8, length - i * 8));
    out[i] = out[i]! & ((0xff << (8 - keep)) & 0xff);
  }
  return out;
}

/** The first `length` bits of `address`, the rest zero. */
export function maskPrefix(address: string | Uint8Array, length: number): string {
  const b = typeof address === 'string' ? parseAddress(address) : address;
  return formatAddress(maskBytes(b, length));
}

/** Whether `address` lies inside `prefix/length`. */
export function prefixContains(prefix: string, length: number, address: string): boolean {
  const a = maskBytes(parseAddress(address), length);
  const p = maskBytes(parseAddress(prefix), length);
  return a.every((x, i) => x === p[i]);
}

/**
 * Sub-prefix number `subId` of length `subLength` carved out of `prefix/length`,
 * e.g. subPrefix('2001:db8:100::', 56, 3) is 2001:db8:100:3::/64 (RFC 7084 L-2).
 */
export function subPrefix(prefix: string, length: number, subId: number, subLength = 64): Prefix {
  checkLength(length);
  checkLength(subLength);
  const bits = subLength - length;
  if (bits < 0) throw new RangeError('sub-prefix shorter than the prefix');
  if (!Number.isInteger(subId) || subId < 0 || (bits < 53 && subId >= 2 ** bits)) {
    throw new RangeError(`sub-prefix id ${subId} does not fit in ${bits} bits`);
  }
  const out = maskBytes(parseAddress(prefix), length);
  // Write subId into bits [length, subLength), least significant bit last.
  let id = subId;
  for (let bit = subLength - 1; bit >= length && id > 0; bit--) {
    if (id % 2 === 1) out[bit >> 3] = out[bit >> 3]! | (0x80 >> (bit & 7));
    id = Math.floor(id / 2);
  }
  return { prefix: formatAddress(out), length: subLength };
}

/** How many sub-prefixes of `subLength` a prefix of `length` holds (capped at 2^32). */
export function subPrefixCount(length: number, subLength = 64): number {
  checkLength(length);
  checkLength(subLength);
  if (subLength < length) return 0;
  return 2 ** Math.min(32, subLength - length);
}

function checkIid(iid: Uint8Array): void {
  if (iid.length !== 8) throw new RangeError('interface identifier must be 8 bytes');
}

/** The /64 `prefix` joined with a 64-bit interface identifier. */
export function addressFromPrefix(prefix: string, iid: Uint8Array): string {
  checkIid(iid);
  const out = parseAddress(prefix);
  out.set(iid, 8);
  return formatAddress(out);
}

export function linkLocalFromIid(iid: Uint8Array): string {
  return addressFromPrefix('fe80::', iid);
}

export function interfaceId(address: string): Uint8Array {
  return parseAddress(address).slice(8);
}

/** ff02::1:ffXX:XXXX for the low 24 bits of `address` (RFC 4291 2.7.1). */
export function solicitedNode(address: string): string {
  const a = parseAddress(address);
  const out = parseAddress('ff02::1:ff00:0');
  out.set(a.subarray(13), 13);
  return formatAddress(out);
}

export function isUnspecified(address: string): boolean {
  return parseAddress(address).every((x) => x === 0);
}

export function isMulticast(address: string): boolean {
  return parseAddress(address)[0] === 0xff;
}

export function isLinkLocal(address: string): boolean {
  const a = parseAddress(address);
  return a[0] === 0xfe && (a[1]! & 0xc0) === 0x80;
}

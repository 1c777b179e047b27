import { isIP } from 'node:net';
import { formatAddress } from '../../ipv6/address';

/**
 * Text <-> bytes for the addresses that rtnetlink carries as raw attributes.
 * Kept here (not in src/ipv6) because netlink needs exactly the kernel's view:
 * 4 or 16 bytes, no zone ids, prefixes without host bits.
 */

export type IpFamily = 4 | 6;

/** Address family numbers as the kernel wants them in rtmsg/ifaddrmsg. */
export const AF_INET = 2;
export const AF_INET6 = 10;

export interface IpAddress {
  family: IpFamily;
  bytes: Buffer;
}

export interface IpPrefix extends IpAddress {
  length: number;
}

export function afOf(family: IpFamily): number {
  return family === 4 ? AF_INET : AF_INET6;
}

export function familyOfAf(af: number): IpFamily | undefined {
  return af === AF_INET ? 4 : af === AF_INET6 ? 6 : undefined;
}

/** Parses a literal IPv4 or IPv6 address; throws an Error naming the text otherwise. */
export function parseIp(text: string): IpAddress {
  const family = isIP(text);
  // isIP accepts zone ids ("fe80::1%eth0"); a zone has no meaning in a netlink attribute.
  if (family === 0 || text.includes('%')) throw new Error(`invalid IP address "${text}"`);
  if (family === 4) return { family: 4, bytes: Buffer.from(text.split('.').map(Number)) };
  return { family: 6, bytes: parseIpv6(text) };
}

function parseIpv6(text: string): Buffer {
  const out = Buffer.alloc(16);
  let tail = text;
  // An embedded dotted quad occupies the last 32 bits.
  let v4: number[] | undefined;
  const lastColon = tail.lastIndexOf(':');
  if (tail.includes('.', lastColon)) {
    v4 = tail
      .slice(lastColon + 1)
      .split('.')
      .map(Number);
    tail = `${tail.slice(0, lastColon + 1)}0:0`;
  }
  const [head, rest] = tail.split('::') as [string, string | undefined];
  const hi = head ? head.split(':') : [];
  const lo = rest === undefined ? [] : rest ? rest.split(':') : [];
  const groups = rest === undefined ? hi : [...hi, ...new Array<string>(8 - hi.length - lo.length).fill('0'), ...lo];
  for (const [i, g] of groups.entries()) out.writeUInt16BE(Number.parseInt(g, 16), i * 2);
  if (v4) out.set(v4, 12);
  return out;
}

/** Formats 4 or 16 bytes the way iproute2 prints them (RFC 5952 for IPv6). */
export function formatIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return Array.from(bytes).join('.');
  if (bytes.length !== 16) throw new Error(`address of ${bytes.length} bytes is neither IPv4 nor IPv6`);
  const b = Buffer.from(bytes);
  const groups = Array.from({ length: 8 }, (_, i) => b.readUInt16BE(i * 2));
  // IPv4-mapped addresses keep the dotted tail, as inet_ntop does.
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${Array.from(b.subarray(12)).join('.')}`;
  }
  return formatAddress(bytes);
}

/**
 * Parses "addr/len". Host bits must be clear: the kernel rejects them for IPv4
 * routes and silently masks them for IPv6, and either way the caller meant
 * something else.
 */
export function parsePrefix(text: string): IpPrefix {
  const slash = text.indexOf('/');
  if (slash < 0) throw new Error(`invalid prefix "${text}": missing /length`);
  const addr = parseIp(text.slice(0, slash));
  const lenText = text.slice(slash + 1);
  const length = Number(lenText);
  const max = addr.family === 4 ? 32 : 128;
  if (!/^\d{1,3}$/.test(lenText) || length > max) throw new Error(`invalid prefix "${text}": length must be 0..${max}`);
  if (!hostBitsClear(addr.bytes, length)) throw new Error(`invalid prefix "${text}": host bits set`);
  return { ...addr, length };
}

function hostBitsClear(bytes: Buffer, length: number): boolean {
  for (let bit = length; bit < bytes.length * 8; bit++) {
    if (bytes[bit >> 3]! & (0x80 >> (bit & 7))) return false;
  }
  return true;
}

export function formatPrefix(bytes: Uint8Array, length: number): string {
  return `${formatIp(bytes)}/${length}`;
}

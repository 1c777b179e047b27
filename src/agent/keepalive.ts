import { isIP } from 'node:net';

/**
 * NAT-safe keepalive timers.
 *
 * RFC 5571 5.1.2 asks the SI to send something periodically "to detect tunnel
 * or peer failure and maintain NAT/NAPT contexts", with HELLO every 60 s and
 * LCP Echo every 30 s as defaults. RFC 4787 REQ-5 says a NAT's UDP mapping
 * MUST NOT expire in less than 2 minutes, but deployed NATs do not all follow
 * it: Linux conntrack (the NAT of most home routers, OpenWrt included) keeps an
 * unreplied UDP flow 30 s and a replied one 120 s by default, many vendors use
 * 30-60 s, and operators tune them lower. RFC 6888 (CGN) inherits REQ-5 but
 * carrier NATs are tuned aggressively to save ports. A 30 s echo sits right at
 * the edge of a 30 s timer, and the 60 s HELLO beyond it.
 *
 * So when the address we dial from cannot be the one the SC sees (private,
 * shared or otherwise non-global), a NAT is almost certainly in the path and we
 * refresh every 15 s, which survives a 20 s mapping timer with margin and keeps
 * the cost to one LCP Echo pair per 15 s (~100 bytes). From a global address
 * the RFC defaults stay: there is no binding to keep. Values the user set
 * (file, flag or UCI) are never overridden.
 */

/** Refresh interval (s) used for both LCP Echo and HELLO when a NAT is likely. */
export const NAT_KEEPALIVE_S = 15;

export type AddressClass =
  | 'private'
  | 'shared'
  | 'ietf-assignments'
  | 'link-local'
  | 'unique-local'
  | 'loopback'
  | 'unspecified'
  | 'global';

export interface AddressInfo {
  class: AddressClass;
  /** The range it fell in, for the log line (e.g. "100.64.0.0/10 (RFC 6598 shared)"). */
  range: string;
  /** Traffic from this address reaches the SC only through a translator. */
  behindNat: boolean;
}

interface V4Range {
  base: number;
  len: number;
  info: Omit<AddressInfo, 'range'>;
  range: string;
}

function v4(text: string): number | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return null;
    n = n * 256 + Number(p);
  }
  return n;
}

const V4_RANGES: V4Range[] = [
  ['10.0.0.0', 8, 'private', 'RFC 1918 private', true],
  ['172.16.0.0', 12, 'private', 'RFC 1918 private', true],
  ['192.168.0.0', 16, 'private', 'RFC 1918 private', true],
  ['100.64.0.0', 10, 'shared', 'RFC 6598 shared (carrier-grade NAT)', true],
  // Includes the DS-Lite B4 addresses (RFC 6333, 192.0.0.0/29), always NATed at the AFTR.
  ['192.0.0.0', 24, 'ietf-assignments', 'RFC 6890 IETF protocol assignments', true],
  ['169.254.0.0', 16, 'link-local', 'RFC 3927 link-local', true],
  ['127.0.0.0', 8, 'loopback', 'loopback', false],
  ['0.0.0.0', 8, 'unspecified', '"this network"', false],
].map(([base, len, cls, what, nat]) => ({
  base: v4(base as string)!,
  len: len as number,
  range: `${base as string}/${len as number} (${what as string})`,
  info: { class: cls as AddressClass, behindNat: nat as boolean },
}));

function classifyV4(n: number): AddressInfo {
  for (const r of V4_RANGES) {
    const mask = r.len === 0 ? 0 : (0xffffffff << (32 - r.len)) >>> 0;
    if (((n & mask) >>> 0) === r.base) return { ...r.info, range: r.range };
  }
  // Documentation (192.0.2/24, 198.51.100/24, 203.0.113/24) and benchmarking (198.18/15)
  // ranges stand for public addresses in examples and labs, so they count as global.
  return { class: 'global', range: 'global unicast', behindNat: false };
}

/** The eight 16-bit groups of an IPv6 address, or null. Accepts an embedded IPv4 tail. */
function v6groups(text: string): number[] | null {
  let s = text.split('%')[0]!;
  const tail: number[] = [];
  const lastColon = s.lastIndexOf(':');
  if (s.slice(lastColon + 1).includes('.')) {
    const n = v4(s.slice(lastColon + 1));
    if (n === null) return null;
    tail.push(n >>> 16, n & 0xffff);
    s = `${s.slice(0, lastColon + 1)}0:0`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return null;
  const parse = (h: string) => (h === '' ? [] : h.split(':').map((g) => (/^[0-9a-fA-F]{1,4}$/.test(g) ? parseInt(g, 16) : Number.NaN)));
  const head = parse(halves[0]!);
  const rest = halves.length === 2 ? parse(halves[1]!) : [];
  const fill = halves.length === 2 ? 8 - head.length - rest.length : 0;
  const groups = [...head, ...new Array<number>(Math.max(0, fill)).fill(0), ...rest];
  if (groups.length !== 8 || groups.some((g) => Number.isNaN(g))) return null;
  if (tail.length) groups.splice(6, 2, ...tail);
  return groups;
}

/** Classifies the local address the agent dials from. Throws on something that is not an address. */
export function classifyAddress(address: string): AddressInfo {
  const fam = isIP(address.split('%')[0]!);
  if (fam === 4) return classifyV4(v4(address)!);
  if (fam !== 6) throw new Error(`"${address}" is not an IP address`);
  const g = v6groups(address)!;
  // IPv4-mapped ::ffff:a.b.c.d: a v4 socket seen through a dual-stack one.
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) return classifyV4(((g[6]! << 16) | g[7]!) >>> 0);
  if (g.every((x) => x === 0)) return { class: 'unspecified', range: '::/128 (unspecified)', behindNat: false };
  if (g.slice(0, 7).every((x) => x === 0) && g[7] === 1) return { class: 'loopback', range: '::1/128 (loopback)', behindNat: false };
  if ((g[0]! & 0xffc0) === 0xfe80) return { class: 'link-local', range: 'fe80::/10 (link-local)', behindNat: true };
  // A ULA reaches a remote SC only through NPTv6 (RFC 6296) or NAT66.
  if ((g[0]! & 0xfe00) === 0xfc00) return { class: 'unique-local', range: 'fc00::/7 (RFC 4193 unique local)', behindNat: true };
  return { class: 'global', range: 'global unicast', behindNat: false };
}

export interface KeepaliveTimers {
  helloInterval: number;
  lcpEchoInterval: number;
}

export interface EffectiveKeepalive extends KeepaliveTimers {
  /** Whether the NAT-safe interval replaced a default. */
  natSafe: boolean;
  /** One line for the log and status: why these timers. */
  reason: string;
}

/**
 * The timers to run with, given the configured ones, which of them the user set
 * explicitly, and the local address of this dial. Keeps RFC 5571 5.1.2's rule
 * (echo <= min(hello, 60)) true for every outcome.
 */
export function effectiveKeepalive(configured: KeepaliveTimers, explicit: ReadonlySet<string>, local: string): EffectiveKeepalive {
  let info: AddressInfo;
  try {
    info = classifyAddress(local);
  } catch {
    return { ...configured, natSafe: false, reason: `local address ${local} not understood; configured timers kept` };
  }
  const setHello = explicit.has('helloInterval');
  const setEcho = explicit.has('lcpEchoInterval');
  if (!info.behindNat) return { ...configured, natSafe: false, reason: `${local} is ${info.range}: no NAT expected, RFC 5571 timers kept` };
  if (setHello && setEcho) {
    return { ...configured, natSafe: false, reason: `${local} is in ${info.range}, likely behind NAT; keeping the configured helloInterval and lcpEchoInterval` };
  }
  const lcpEchoInterval = setEcho ? configured.lcpEchoInterval : Math.min(NAT_KEEPALIVE_S, configured.lcpEchoInterval, configured.helloInterval);
  // A HELLO below the echo interval would break 5.1.2's ordering; the echo already refreshes the binding.
  const helloInterval = setHello ? configured.helloInterval : Math.max(lcpEchoInterval, Math.min(NAT_KEEPALIVE_S, configured.helloInterval));
  const changed = lcpEchoInterval !== configured.lcpEchoInterval || helloInterval !== configured.helloInterval;
  return {
    helloInterval,
    lcpEchoInterval,
    natSafe: changed,
    reason: changed
      ? `${local} is in ${info.range}, likely behind NAT: LCP Echo every ${lcpEchoInterval} s and HELLO after ${helloInterval} s idle keep the UDP binding alive`
      : `${local} is in ${info.range}, likely behind NAT; configured timers already refresh often enough`,
  };
}

import { rt } from 'netlink';
import { familyOfAf, formatIp, type IpFamily } from './ip';

/** Address lifetime meaning "forever" in IFA_CACHEINFO and `ip -j` output. */
export const INFINITY_LIFETIME = 0xffffffff;

/** The main routing table (RT_TABLE_MAIN). */
export const RT_TABLE_MAIN = 254;

/**
 * rtm_protocol for routes this agent installs, so it can find and remove its own
 * routes after a crash without touching anyone else's. Unassigned in Linux's
 * rtnetlink.h and in iproute2's rt_protos.
 */
export const RTPROT_SOFTWIRE = 157;

/** A link by name or by ifindex. */
export type LinkRef = string | number;

export interface LinkInfo {
  index: number;
  name: string;
  mtu: number;
  /** Administratively up (IFF_UP). */
  up: boolean;
  /** Operationally up (IFF_RUNNING). */
  running: boolean;
  /** IFF_* flag names as the netlink library spells them, e.g. "up", "lowerUp", "pointopoint". */
  flags: string[];
}

export type AddressFlagName =
  | 'secondary'
  | 'nodad'
  | 'optimistic'
  | 'dadfailed'
  | 'homeaddress'
  | 'deprecated'
  | 'tentative'
  | 'permanent'
  | 'managetempaddr'
  | 'noprefixroute'
  | 'mcautojoin'
  | 'stablePrivacy';

export interface AddressInfo {
  family: IpFamily;
  address: string;
  prefixLength: number;
  ifindex: number;
  /** Seconds; INFINITY_LIFETIME for forever. */
  validLifetime: number;
  preferredLifetime: number;
  scope: number;
  flags: AddressFlagName[];
  tentative: boolean;
  deprecated: boolean;
}

export type RouteType = 'unicast' | 'unreachable' | 'blackhole' | 'prohibit';

export interface RouteInfo {
  family: IpFamily;
  /** CIDR; "::/0" or "0.0.0.0/0" for a default route. */
  destination: string;
  /** Lower-case kernel type name ("unicast", "unreachable", "local", ...) or "type-N". */
  type: string;
  table: number;
  protocol: number;
  scope: number;
  metric: number;
  ifindex?: number;
  gateway?: string;
  source?: string;
}

export type NetlinkEvent =
  | { kind: 'address-added'; address: AddressInfo }
  | { kind: 'address-removed'; address: AddressInfo }
  | { kind: 'link-changed'; link: LinkInfo }
  | { kind: 'link-removed'; link: LinkInfo }
  /** The kernel dropped notifications (ENOBUFS): list again to resynchronise. */
  | { kind: 'overrun' }
  | { kind: 'error'; error: Error };

export const ROUTE_TYPE_NUMBERS: Record<RouteType, number> = {
  unicast: rt.RouteType.UNICAST,
  blackhole: rt.RouteType.BLACKHOLE,
  unreachable: rt.RouteType.UNREACHABLE,
  prohibit: rt.RouteType.PROHIBIT,
};

/** Route scopes (RT_SCOPE_*) this layer sets. */
export const SCOPE = { universe: 0, link: 253, host: 254, nowhere: 255 } as const;

/** The library hands enums back as a key when it knows one, as a number otherwise. */
function enumNumber(value: number | string | undefined, names: object): number {
  if (typeof value === 'number') return value;
  if (value === undefined) return 0;
  const n = (names as Record<string, unknown>)[value];
  return typeof n === 'number' ? n : 0;
}

function trueKeys(flags: object | undefined): string[] {
  if (!flags) return [];
  return Object.entries(flags)
    .filter(([k, v]) => v === true && k !== '__unknown')
    .map(([k]) => k);
}

export function toLinkInfo(m: rt.LinkMessage): LinkInfo {
  const flags = trueKeys(m.data.flags);
  return {
    index: m.data.index ?? 0,
    name: m.attrs.ifname ?? '',
    mtu: m.attrs.mtu ?? 0,
    up: flags.includes('up'),
    running: flags.includes('running'),
    flags,
  };
}

/** Returns undefined for families other than IPv4/IPv6 (the kernel dumps those too). */
export function toAddressInfo(m: rt.AddressMessage): AddressInfo | undefined {
  const family = familyOfAf(m.data.family ?? 0);
  // On point-to-point links IFA_ADDRESS is the peer; IFA_LOCAL is ours.
  const raw = m.attrs.local ?? m.attrs.address;
  if (!family || !raw || raw.length !== (family === 4 ? 4 : 16)) return undefined;
  // IFA_FLAGS (u32) supersedes the u8 in ifaddrmsg when present.
  const flags = trueKeys(m.attrs.flags ?? m.data.flags) as AddressFlagName[];
  return {
    family,
    address: formatIp(raw),
    prefixLength: m.data.prefixlen ?? 0,
    ifindex: m.data.index ?? 0,
    validLifetime: m.attrs.cacheInfo?.ifaValid ?? INFINITY_LIFETIME,
    preferredLifetime: m.attrs.cacheInfo?.ifaPrefered ?? INFINITY_LIFETIME,
    scope: m.data.scope ?? 0,
    flags,
    tentative: flags.includes('tentative'),
    deprecated: flags.includes('deprecated'),
  };
}

export function toRouteInfo(m: rt.RouteMessage): RouteInfo | undefined {
  const family = familyOfAf(m.data.family ?? 0);
  if (!family) return undefined;
  const size = family === 4 ? 4 : 16;
  const dst = m.attrs.dst && m.attrs.dst.length === size ? m.attrs.dst : Buffer.alloc(size);
  const typeNum = enumNumber(m.data.type, rt.RouteType);
  const info: RouteInfo = {
    family,
    destination: `${formatIp(dst)}/${m.data.dstLen ?? 0}`,
    type: (rt.RouteType[typeNum] as string | undefined)?.toLowerCase() ?? `type-${typeNum}`,
    // RTA_TABLE carries ids above 255, for which rtm_table is RT_TABLE_UNSPEC.
    table: m.attrs.table ?? m.data.table ?? 0,
    protocol: enumNumber(m.data.protocol, rt.RouteProtocol),
    scope: enumNumber(m.data.scope, rt.RouteScope),
    metric: m.attrs.priority ?? 0,
  };
  if (m.attrs.oif !== undefined) info.ifindex = m.attrs.oif;
  if (m.attrs.gateway?.length === size) info.gateway = formatIp(m.attrs.gateway);
  if (m.attrs.prefsrc?.length === size) info.source = formatIp(m.attrs.prefsrc);
  return info;
}

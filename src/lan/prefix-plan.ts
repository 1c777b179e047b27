import type { LanInterface } from '../config/schema';
import { addressFromPrefix, formatPrefix, isValidAddress, maskPrefix, type Prefix, subPrefix } from '../ipv6/address';

/**
 * How a delegated prefix is spread over the LAN (RFC 7084 L-2, WPD-5): each
 * configured interface gets the /64 numbered by its sub-prefix id and the router
 * takes ::1 in it; the whole delegated prefix gets an unreachable route so that
 * traffic for unassigned /64s is answered locally instead of looping back to the
 * concentrator over the default route. Pure: no kernel, no clock.
 */

/** What DHCPv6 delegated; lifetimes are seconds remaining (0xffffffff = infinite). */
export interface DelegatedPrefix {
  prefix: string;
  length: number;
  preferredLifetime: number;
  validLifetime: number;
}

export interface LanAssignment {
  ifname: string;
  subPrefixId: number;
  /** The interface's /64. */
  prefix: Prefix;
  /** The /64 + ::1, configured on the interface. */
  routerAddress: string;
}

export interface PrefixPlan {
  delegated: DelegatedPrefix;
  /** Interfaces that could be numbered, in configuration order. */
  lans: LanAssignment[];
  /** CIDR of the delegated prefix, routed as unreachable (RFC 7084 WPD-5). */
  unreachable: string;
  /** One message per interface that could not be numbered. */
  errors: string[];
}

export const LAN_PREFIX_LENGTH = 64;
const ROUTER_IID = Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 1);

export function planPrefix(delegated: DelegatedPrefix, lans: readonly LanInterface[]): PrefixPlan {
  const { length } = delegated;
  if (!Number.isInteger(length) || length < 0 || length > 128) throw new RangeError(`delegated prefix length ${length}`);
  if (!isValidAddress(delegated.prefix)) throw new RangeError(`delegated prefix ${JSON.stringify(delegated.prefix)}`);
  const base = maskPrefix(delegated.prefix, length);
  const unreachable = formatPrefix({ prefix: base, length });
  const plan: PrefixPlan = { delegated: { ...delegated, prefix: base }, lans: [], unreachable, errors: [] };
  if (length > LAN_PREFIX_LENGTH) {
    // SLAAC needs a /64; a longer delegation cannot number any LAN.
    if (lans.length > 0) plan.errors.push(`delegated prefix ${unreachable} is longer than /64: no LAN can be numbered`);
    return plan;
  }
  const ids = new Map<number, string>();
  const names = new Set<string>();
  const room = 2 ** (LAN_PREFIX_LENGTH - length);
  for (const lan of lans) {
    const id = lan.subPrefixId;
    if (names.has(lan.ifname)) {
      plan.errors.push(`${lan.ifname}: listed more than once; only the first entry is used`);
      continue;
    }
    if (!Number.isInteger(id) || id < 0 || id >= room) {
      plan.errors.push(
        `${lan.ifname}: sub-prefix id ${id} does not fit in ${unreachable} (ids 0..${room - 1} for /64s)`,
      );
      continue;
    }
    const taken = ids.get(id);
    if (taken !== undefined) {
      plan.errors.push(`${lan.ifname}: sub-prefix id ${id} is already used by ${taken}`);
      continue;
    }
    ids.set(id, lan.ifname);
    names.add(lan.ifname);
    const p = subPrefix(base, length, id, LAN_PREFIX_LENGTH);
    plan.lans.push({ ifname: lan.ifname, subPrefixId: id, prefix: p, routerAddress: addressFromPrefix(p.prefix, ROUTER_IID) });
  }
  return plan;
}

export interface PlanDiff {
  /** Assignments to install (new /64 on an interface). */
  add: LanAssignment[];
  /** Unchanged assignments whose lifetimes are refreshed from the new lease. */
  keep: LanAssignment[];
  /**
   * Assignments that leave the plan: still announced for a while with preferred
   * lifetime 0 so hosts move off them (RFC 7084 L-13), then removed.
   */
  deprecate: LanAssignment[];
  /**
   * Assignments to remove at once: their /64 moves to another interface, and one
   * /64 cannot be on-link on two links.
   */
  remove: LanAssignment[];
  /** Unreachable routes to install / withdraw. */
  addRoutes: string[];
  removeRoutes: string[];
}

function assignmentKey(a: LanAssignment): string {
  return `${a.ifname} ${formatPrefix(a.prefix)}`;
}

/** What changes on the way from `old` to `next` (either may be absent: no prefix). */
export function diffPlans(old: PrefixPlan | undefined, next: PrefixPlan | undefined): PlanDiff {
  const oldLans = old?.lans ?? [];
  const newLans = next?.lans ?? [];
  const oldKeys = new Set(oldLans.map(assignmentKey));
  const newKeys = new Set(newLans.map(assignmentKey));
  const newPrefixes = new Set(newLans.map((a) => formatPrefix(a.prefix)));
  const diff: PlanDiff = { add: [], keep: [], deprecate: [], remove: [], addRoutes: [], removeRoutes: [] };
  for (const a of newLans) (oldKeys.has(assignmentKey(a)) ? diff.keep : diff.add).push(a);
  for (const a of oldLans) {
    if (newKeys.has(assignmentKey(a))) continue;
    (newPrefixes.has(formatPrefix(a.prefix)) ? diff.remove : diff.deprecate).push(a);
  }
  if (old && old.unreachable !== next?.unreachable) diff.removeRoutes.push(old.unreachable);
  if (next && old?.unreachable !== next.unreachable) diff.addRoutes.push(next.unreachable);
  return diff;
}

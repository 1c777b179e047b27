/**
 * The agent's status model: what `softwire status --json` prints and what the
 * control socket's "status" command returns. Scripts (and the OpenWrt netifd
 * handler) parse it, so fields are only ever added, never renamed.
 */

import type { IpsecStatus } from '../ipsec/guard';

export type AgentState = 'down' | 'connecting' | 'up';

export interface DelegatedPrefixStatus {
  prefix: string;
  length: number;
  /** ISO 8601 times; null for infinite lifetimes. */
  preferredUntil: string | null;
  validUntil: string | null;
}

/** One LAN's numbering; defined with the provisioner that fills it in (a lower layer). */
export type { LanStatus } from '../lan/provisioner';
import type { LanStatus } from '../lan/provisioner';

export interface Status {
  state: AgentState;
  /** ISO time the current state began. */
  since: string;
  sc: { address: string; port: number } | null;
  /** Local (WAN) address the tunnel runs from. */
  local: { address: string; port: number } | null;
  /** `unacknowledged`: our control messages the SC has not acknowledged yet (RFC 2661 5.8); a queue that only grows means a deaf SC. */
  tunnel: { localId: number; remoteId: number; state: string; unacknowledged?: number } | null;
  session: { localId: number; remoteId: number; state: string } | null;
  ppp: {
    lcp: string;
    ncp: { ipv6cp?: string; ipcp?: string };
    auth: string;
    mru: number | null;
    echoRttMs: number | null;
  } | null;
  ipv6: {
    linkLocal: string | null;
    address: string | null;
    /** Prefix length of `address` (64 from SLAAC, 128 from DHCPv6 IA_NA alone); added for the netifd notify script. */
    addressLength?: number | null;
    delegatedPrefix: DelegatedPrefixStatus | null;
    dns: string[];
    domains: string[];
    defaultRoute: boolean;
    lan: LanStatus[];
  } | null;
  ipv4: { address: string | null; peer: string | null; dns: string[]; carryTraffic: boolean } | null;
  /** Issue 16 item 3: the softwire MTU in use and what limits it. */
  mtu?: { mtu: number; limitedBy: string };
  counters: {
    l2tp: Record<string, number>;
    ppp: Record<string, number>;
    data: Record<string, number>;
    drops: Record<string, number>;
  };
  /** Data-path kernel offloads in use (issue 17); [] or absent: one packet per system call. */
  offloads?: string[];
  reconnects: number;
  lastError: { at: string; layer: string; message: string } | null;
  /** Keepalive timers in force for the current attempt (they adapt to a NATed WAN address); null before the first dial. */
  keepalive?: KeepaliveStatus | null;
  /** The IPsec step (RFC 3193) when `ipsec` is on: SA phase, NAT-T, algorithms, rekey times, MTU cost. */
  ipsec?: IpsecStatus | null;
  /** When the current attempt reached each setup milestone (ISO times; null: not yet). */
  phases?: Record<'dial' | 'tunnel' | 'session' | 'lcp' | 'auth' | 'ncp' | 'address' | 'prefix', string | null> | null;
  /** Up, but something the SC should provide did not come in time (e.g. "no delegated prefix ..."); null when whole. */
  degraded?: string | null;
}

export interface KeepaliveStatus {
  /** Seconds of silence before an L2TP HELLO. */
  helloInterval: number;
  /** Seconds between LCP Echo-Requests. */
  lcpEchoInterval: number;
  lcpEchoFailure: number;
  /** True when the NAT-safe interval replaced a default because the WAN address is private/shared. */
  natSafe: boolean;
  /** Why these timers, e.g. "100.64.0.2 is in 100.64.0.0/10 (RFC 6598 shared ...), likely behind NAT: ...". */
  reason: string;
  /** Longest time an unanswered LCP Echo run takes to declare the path dead: interval x (failures + 1). */
  deadTimeS: number;
}

export function emptyStatus(now = new Date()): Status {
  return {
    state: 'down',
    since: now.toISOString(),
    sc: null,
    local: null,
    tunnel: null,
    session: null,
    ppp: null,
    ipv6: null,
    ipv4: null,
    counters: { l2tp: {}, ppp: {}, data: {}, drops: {} },
    reconnects: 0,
    lastError: null,
    keepalive: null,
    phases: null,
    degraded: null,
  };
}

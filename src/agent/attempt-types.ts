import type { Prefix } from '../ipv6/packet';

/**
 * What goes into and comes out of the Attempt core (attempt.ts): the inputs a
 * driver feeds it, each with `now`, and the typed actions it answers with. Kept
 * apart from the core so drivers and tests read the contract in one screen.
 */

export type Layer = 'transport' | 'tunnel' | 'session' | 'ppp' | 'auth' | 'ipv6' | 'ipv4' | 'wan' | 'ipsec';

export interface DownInfo {
  layer: Layer;
  reason: string;
  /** Retrying unchanged will not help (bad credentials, bad secret, protocol version). */
  permanent?: boolean;
  /** The SC asked us to try another SC. */
  retryElsewhere?: boolean;
}

export type ConnectionEvent =
  | { type: 'progress'; layer: Layer; message: string }
  /** The link is usable (see session-core.ts); `degraded` names what the SC did not provide in time. */
  | { type: 'up'; degraded?: string | null }
  /** While up, what is missing changed. */
  | { type: 'degraded'; reason: string | null }
  | { type: 'prefix'; prefix: Prefix }
  | { type: 'down'; info: DownInfo };

/** Who an address or DNS list came from: the installer keeps each source's apart. */
export type AddressSource = 'slaac' | 'dhcp6';
export type DnsSource = 'ra' | 'dhcp6';

/** What to put into (or take out of) the kernel; the driver hands each to the Installer in order. */
export type Provision =
  | { type: 'tun-up'; mtu: number; linkLocal: string | null }
  | { type: 'tun-mtu'; mtu: number }
  | { type: 'address'; source: AddressSource; address: string; prefixLength: number; validLifetime: number; preferredLifetime: number }
  | { type: 'remove-address'; source: AddressSource; address: string; prefixLength: number }
  | { type: 'default-route'; present: boolean }
  | { type: 'dns'; source: DnsSource; servers: string[]; search: string[] }
  /** The delegated prefix (null: withdrawn); the installer's LAN hook numbers and advertises the LANs with it. */
  | { type: 'delegated-prefix'; prefix: string; length: number; preferredLifetime: number; validLifetime: number }
  | { type: 'no-delegated-prefix' }
  | { type: 'ipv4'; address: string; peer: string | null; dns: string[] };

/** What the core waits to learn once the installer has put in the kernel everything queued so far. */
export type Settle = 'address' | 'default-route' | 'no-default-route' | 'prefix' | 'ipv4';

export type AttemptInput =
  /** Dial: SCCRQ out, setup deadlines start. */
  | { type: 'open' }
  /** A datagram the UDP edge admitted from the SC (control, or data the fast path left to the cores). */
  | { type: 'datagram'; bytes: Uint8Array; from: string }
  /** An IP packet the kernel routed into the softwire that the fast path did not take. */
  | { type: 'tun-packet'; packet: Uint8Array }
  /** A timer the core armed is due. */
  | { type: 'timer'; key: string }
  /** Answers to `open-tun`. */
  | { type: 'tun-opened' }
  | { type: 'tun-failed'; message: string }
  /** Answer to `settle`: the installer is done with what was queued; `globalAddress` is whether one is in the kernel now. */
  | { type: 'settled'; what: Settle; globalAddress: boolean }
  /** Leave: DHCPv6 Release (if `release`), LCP Terminate, StopCCN, each waited for, all within `budgetMs`. */
  | { type: 'stop'; release: boolean; budgetMs: number };

export type LogLevel = 'info' | 'warn' | 'error';

export type AttemptAction =
  /** A datagram to the SC. */
  | { type: 'send'; bytes: Uint8Array }
  /** The SC answers from another source (RFC 2661 8.1): send there from now on. */
  | { type: 'retarget'; from: string }
  /** Arm timer `key` for monotonic time `at` (replaces an armed one), or disarm it. */
  | { type: 'arm'; key: string; at: number }
  | { type: 'cancel'; key: string }
  /** Open the TUN device with receive slots of `slotSize` bytes; answer with tun-opened or tun-failed. */
  | { type: 'open-tun'; slotSize: number; mtu: number }
  | { type: 'close-tun' }
  /** A packet from the SC for the kernel. */
  | { type: 'tun-write'; packet: Buffer }
  /** The softwire MTU changed: the data path's MSS clamp follows (the TUN gets a `tun-mtu` provision). */
  | { type: 'set-mtu'; mtu: number }
  | { type: 'install'; op: Provision }
  /** Answer with `settled` once the installer has finished what was queued before. */
  | { type: 'settle'; what: Settle }
  | { type: 'event'; event: ConnectionEvent }
  | { type: 'log'; level: LogLevel; msg: string; data: Record<string, unknown> }
  /** The goodbyes of `stop` are over (or out of budget); everything above L2TP has ended. */
  | { type: 'stopped' }
  /** The tunnel's end is over (StopCCN acknowledged, linger spent, or the cap): the socket may go. */
  | { type: 'closed' };

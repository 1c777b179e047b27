/**
 * Every configuration key, described once. The same table drives validation
 * (messages name the key, the bad value and what is allowed), the `run` flags,
 * the README's key reference, and (later) the UCI mapping, so a key cannot be
 * added in one place and forgotten in another.
 */

import { DEFAULT_ESP_PROPOSALS, DEFAULT_IKE_PROPOSALS } from './ipsec-proposals';

export type Mode = 'router' | 'host';
export type Ncp = 'ipv6' | 'ipv4' | 'dual';
export type RaBackend = 'builtin' | 'odhcpd' | 'radvd' | 'none';
/** Who puts the softwire's own address and default routes into the kernel. */
export type Provision = 'agent' | 'netifd';

export interface LanInterface {
  ifname: string;
  /** Which /64 of the delegated prefix this interface gets. */
  subPrefixId: number;
}

export interface Config {
  sc: string[];
  scSdp?: string;
  user?: string;
  auth: 'auto' | 'chap' | 'pap';
  password?: string;
  passwordFile?: string;
  tunnelSecret?: string;
  tunnelSecretFile?: string;
  hostname: string;
  mode: Mode;
  ncp: Ncp;
  lan: LanInterface[];
  ra: RaBackend;
  provision: Provision;
  helloInterval: number;
  lcpEchoInterval: number;
  lcpEchoFailure: number;
  retransmitInitial: number;
  retransmitCap: number;
  retransmitRetries: number;
  reconnectInitial: number;
  reconnectCap: number;
  reconnectJitter: number;
  tunDevice: string;
  mtu: number;
  routeMetric: number;
  ipv4DefaultRoute: boolean;
  nat44: boolean;
  dhcpv4: boolean;
  prefixLengthHint: number;
  rapidCommit: boolean;
  controlSocket: string;
  notifyCommand?: string;
  stateDir: string;
  resolvFile: string;
  /** Data-path kernel offloads (issue 17). */
  offloads: boolean;
  logLevel: string;
  // --- IPsec (RFC 3193) ---
  ipsec: 'off' | 'ikev1' | 'ikev2';
  ipsecPsk?: string;
  ipsecPskFile?: string;
  ipsecCert?: string;
  ipsecKey?: string;
  ipsecCaCert?: string;
  ipsecIkeProposals: string[];
  ipsecEspProposals: string[];
  ipsecAllowWeak: boolean;
  ipsecTimeout: number;
  ipsecViciSocket: string;
  // --- RFC conformance (issue 16) ---
  optimisticDad: boolean;
  scAnswerFromOtherAddress: boolean;
  sdpOfferFile?: string;
  // --- Setup deadlines and readiness (issue 15: orchestration) ---
  sccrpTimeout: number;
  icrpTimeout: number;
  lcpTimeout: number;
  authTimeout: number;
  ncpTimeout: number;
  provisionWait: number;
}

export type FieldKind = 'int' | 'number' | 'string' | 'enum' | 'bool' | 'list' | 'lan';

export interface Field {
  key: keyof Config;
  kind: FieldKind;
  /** Default value; undefined means the key is optional with no default. */
  default?: unknown;
  min?: number;
  max?: number;
  choices?: readonly string[];
  /** The value is a secret: masked in output and logs. */
  secret?: boolean;
  /** Flag argument name shown in --help, e.g. "S" for seconds. */
  arg?: string;
  /** One line for --help and the README: what it is and why the default. */
  doc: string;
}

export const FIELDS: readonly Field[] = [
  {
    key: 'sc',
    kind: 'list',
    default: [],
    arg: 'HOST[:PORT]',
    doc: 'Softwire Concentrator address(es), tried in turn; IPv4, [IPv6] or a DNS name, port 1701 by default',
  },
  { key: 'scSdp', kind: 'string', arg: 'FILE', doc: 'take the SC address and port from an SDP answer in FILE (- for stdin)' },
  { key: 'user', kind: 'string', arg: 'NAME', doc: 'PPP user name for CHAP/PAP' },
  {
    key: 'auth',
    kind: 'enum',
    choices: ['auto', 'chap', 'pap'],
    default: 'auto',
    doc: 'PPP authentication we agree to: auto takes CHAP-MD5 (RFC 1994, which RFC 5571 requires) and falls back to PAP',
  },
  { key: 'password', kind: 'string', secret: true, arg: 'SECRET', doc: 'PPP password (prefer passwordFile: it keeps the secret out of ps and shell history)' },
  { key: 'passwordFile', kind: 'string', arg: 'FILE', doc: 'file holding the PPP password (trailing newline ignored)' },
  { key: 'tunnelSecret', kind: 'string', secret: true, arg: 'SECRET', doc: 'L2TP tunnel secret for tunnel authentication and hidden AVPs' },
  { key: 'tunnelSecretFile', kind: 'string', arg: 'FILE', doc: 'file holding the L2TP tunnel secret' },
  { key: 'hostname', kind: 'string', default: 'softwire', arg: 'NAME', doc: 'Host Name AVP sent in SCCRQ' },
  {
    key: 'mode',
    kind: 'enum',
    choices: ['router', 'host'],
    default: 'host',
    doc: 'router: delegate a prefix to the LAN (RFC 5571 3.1.2/3.1.4); host: only this machine gets IPv6 (3.1.1/3.1.3)',
  },
  {
    key: 'ncp',
    kind: 'enum',
    choices: ['ipv6', 'ipv4', 'dual'],
    default: 'ipv6',
    doc: 'which network protocols run over the softwire: IPv6 (IPV6CP), IPv4 (IPCP) or both',
  },
  {
    key: 'lan',
    kind: 'lan',
    default: [],
    arg: 'IFNAME[=ID]',
    doc: 'LAN interface to number from the delegated prefix (router mode); ID is its /64 sub-prefix id (default: its position)',
  },
  {
    key: 'ra',
    kind: 'enum',
    choices: ['builtin', 'odhcpd', 'radvd', 'none'],
    default: 'builtin',
    doc: 'who sends Router Advertisements on the LAN: the agent itself, odhcpd (OpenWrt), radvd, or nobody',
  },
  {
    key: 'provision',
    kind: 'enum',
    choices: ['agent', 'netifd'],
    default: 'agent',
    doc: 'who installs the softwire address, IPv4 address and default routes: the agent, or OpenWrt netifd from what the notify command reports (the netifd handler sets it)',
  },
  {
    key: 'helloInterval',
    kind: 'int',
    default: 60,
    min: 10,
    max: 3600,
    arg: 'S',
    doc: 'seconds without traffic before an L2TP HELLO is sent (RFC 2661 6.5 / RFC 5571 5.1.2 default 60; 15 when unset and the WAN address is private or shared, i.e. behind NAT)',
  },
  {
    key: 'lcpEchoInterval',
    kind: 'int',
    default: 30,
    min: 10,
    max: 60,
    arg: 'S',
    doc: 'seconds between LCP Echo-Requests (RFC 5571 5.1.2: default 30, at least 10, at most the lesser of helloInterval and 60; 15 when unset and the WAN address is private or shared, i.e. behind NAT)',
  },
  {
    key: 'lcpEchoFailure',
    kind: 'int',
    default: 3,
    min: 1,
    max: 100,
    arg: 'N',
    doc: 'unanswered LCP Echo-Requests in a row before the link is declared dead',
  },
  { key: 'retransmitInitial', kind: 'number', default: 1, min: 0.1, max: 30, arg: 'S', doc: 'first L2TP control retransmission timeout (RFC 2661 5.8: 1 s)' },
  { key: 'retransmitCap', kind: 'number', default: 8, min: 1, max: 120, arg: 'S', doc: 'cap on the doubling retransmission timeout (RFC 2661 5.8: at least 8 s)' },
  { key: 'retransmitRetries', kind: 'int', default: 5, min: 1, max: 20, arg: 'N', doc: 'retransmissions before the tunnel is declared dead (RFC 2661 5.8 suggests 5)' },
  { key: 'reconnectInitial', kind: 'number', default: 2, min: 0.1, max: 600, arg: 'S', doc: 'first delay before dialling again after a failure' },
  { key: 'reconnectCap', kind: 'number', default: 300, min: 1, max: 86400, arg: 'S', doc: 'cap on the doubling reconnect delay; after a failure that will not fix itself (rejected login or tunnel secret, StopCCN result 4 or 5) the agent waits at least a quarter of it' },
  {
    key: 'reconnectJitter',
    kind: 'number',
    default: 0.5,
    min: 0,
    max: 1,
    arg: 'F',
    doc: 'fraction of each reconnect delay drawn at random, so routers that lost the same SC do not return in lock-step',
  },
  { key: 'tunDevice', kind: 'string', default: 'sw0', arg: 'IFNAME', doc: 'name of the TUN device that carries the softwire' },
  {
    key: 'mtu',
    kind: 'int',
    default: 0,
    min: 0,
    max: 65535,
    arg: 'BYTES',
    doc: 'softwire MTU / LCP MRU; 0 derives it from the WAN path MTU minus IP+UDP+L2TP+PPP overhead (RFC 5571 5.2.1)',
  },
  { key: 'routeMetric', kind: 'int', default: 1024, min: 0, max: 4294967295, arg: 'N', doc: 'metric of the default routes the agent installs' },
  {
    key: 'ipv4DefaultRoute',
    kind: 'bool',
    default: false,
    doc: 'route IPv4 via the softwire when IPCP is up with ncp=ipv6 (RFC 5571 3.1: off unless configured)',
  },
  {
    key: 'nat44',
    kind: 'bool',
    default: true,
    doc: 'router mode with IPv4 routed into the softwire: masquerade the LAN behind the IPCP address (nftables table "softwire", removed on exit); not with provision=netifd',
  },
  {
    key: 'dhcpv4',
    kind: 'bool',
    default: false,
    doc: 'router mode with IPv4 routed into the softwire: serve DHCPv4 on the first LAN interface (its IPv4 subnet, router = its address, DNS from IPCP, 1 h leases); refuses to start if UDP port 67 is taken (dnsmasq, odhcpd); not with provision=netifd',
  },
  { key: 'prefixLengthHint', kind: 'int', default: 56, min: 0, max: 64, arg: 'LEN', doc: 'delegated prefix length to ask for in IA_PD (0: no hint)' },
  { key: 'rapidCommit', kind: 'bool', default: false, doc: 'ask for DHCPv6 Rapid Commit (two-message exchange)' },
  { key: 'controlSocket', kind: 'string', default: '/run/softwire/softwire.sock', arg: 'PATH', doc: 'Unix socket for status and control verbs (root only)' },
  {
    key: 'notifyCommand',
    kind: 'string',
    arg: 'PATH',
    doc: 'program run as "PATH STATE" (up, connecting, down) whenever state, addresses, prefix or DNS change; runs one at a time, bursts merged (OpenWrt netifd uses it)',
  },
  { key: 'stateDir', kind: 'string', default: '/var/lib/softwire', arg: 'DIR', doc: 'where the DHCPv6 DUID and last delegated prefix are kept across restarts' },
  { key: 'resolvFile', kind: 'string', default: '/run/softwire/resolv.conf', arg: 'FILE', doc: 'resolv.conf-format file the learned DNS servers and search list are written to' },
  // --- data-path offloads (issue 17) ---
  {
    key: 'offloads',
    kind: 'bool',
    default: true,
    doc: 'use the kernel offloads where it has them: TUN super-packets (IFF_VNET_HDR, TSO/USO, checksum) cut into MTU-sized packets, UDP GSO trains out, UDP GRO trains in with TCP segments joined for the TUN; --no-offloads gives the one-packet-per-call path (status shows which are on)',
  },
  // --- end data-path offloads ---
  {
    key: 'logLevel',
    kind: 'enum',
    choices: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
    default: 'info',
    doc: 'log verbosity',
  },
  // --- IPsec (RFC 3193) ---
  {
    key: 'ipsec',
    kind: 'enum',
    choices: ['off', 'ikev1', 'ikev2'],
    default: 'off',
    doc: 'protect L2TP with transport-mode ESP before the SCCRQ (RFC 5571 5 step 0, RFC 3193), negotiated by strongSwan charon over VICI: ikev1 is what RFC 3193 requires, ikev2 the better choice where the SC has it',
  },
  { key: 'ipsecPsk', kind: 'string', secret: true, arg: 'SECRET', doc: 'IPsec pre-shared key (prefer ipsecPskFile); handed to charon over its socket, never on a command line' },
  { key: 'ipsecPskFile', kind: 'string', arg: 'FILE', doc: 'file holding the IPsec pre-shared key' },
  { key: 'ipsecCert', kind: 'string', arg: 'FILE', doc: 'our X.509 certificate (PEM or DER): authenticate with it instead of a pre-shared key' },
  { key: 'ipsecKey', kind: 'string', arg: 'FILE', doc: 'private key of ipsecCert (PEM or DER)' },
  { key: 'ipsecCaCert', kind: 'string', arg: 'FILE', doc: "CA certificate that signed the SC's certificate" },
  {
    key: 'ipsecIkeProposals',
    kind: 'list',
    default: DEFAULT_IKE_PROPOSALS,
    arg: 'PROPOSAL',
    doc: 'IKE proposals in strongSwan syntax, best first; MD5, SHA-1, DES/3DES and DH groups below 14 are refused unless ipsecAllowWeak',
  },
  {
    key: 'ipsecEspProposals',
    kind: 'list',
    default: DEFAULT_ESP_PROPOSALS,
    arg: 'PROPOSAL',
    doc: 'ESP proposals in strongSwan syntax, best first; the negotiated one sets the MTU reduction',
  },
  { key: 'ipsecAllowWeak', kind: 'bool', default: false, doc: 'accept weak IKE/ESP algorithms in the proposals (only for an SC that offers nothing better)' },
  { key: 'ipsecTimeout', kind: 'int', default: 30, min: 5, max: 300, arg: 'S', doc: 'seconds to wait for the IPsec SA before the attempt fails and backs off' },
  { key: 'ipsecViciSocket', kind: 'string', default: '/var/run/charon.vici', arg: 'PATH', doc: "charon's VICI socket (strongSwan's default)" },
  // --- RFC conformance (issue 16) ---
  {
    key: 'optimisticDad',
    kind: 'bool',
    default: true,
    doc: 'use a SLAAC or DHCPv6 address as Optimistic (RFC 4429: installed deprecated, so other addresses are preferred) while Duplicate Address Detection runs, instead of waiting ~1 s for it',
  },
  {
    key: 'scAnswerFromOtherAddress',
    kind: 'bool',
    default: false,
    doc: 'accept the SCCRP from another address of the SC (RFC 2661 8.1: VIP, anycast, loopback source) when tunnel authentication (tunnelSecret) proves it is the SC; off, only the dialled address is answered (docs/CONFORMANCE.md)',
  },
  {
    key: 'sdpOfferFile',
    kind: 'string',
    arg: 'FILE',
    doc: 'write an SDP offer (draft-tveretin-dispatch-l2tp-sdp) naming the bound tunnel socket to FILE before each dial from a new address or port; a WAN address change makes a re-offer',
  },
  // --- Setup deadlines and readiness (issue 15: orchestration) ---
  { key: 'sccrpTimeout', kind: 'number', default: 20, min: 1, max: 600, arg: 'S', doc: 'longest wait for the SC\'s SCCRP after SCCRQ (an SC that acknowledges and never answers); then StopCCN and back off' },
  { key: 'icrpTimeout', kind: 'number', default: 20, min: 1, max: 600, arg: 'S', doc: 'longest wait for the SC\'s ICRP after ICRQ; then StopCCN and back off' },
  { key: 'lcpTimeout', kind: 'number', default: 30, min: 1, max: 600, arg: 'S', doc: 'longest wait for LCP to open once the session is up' },
  { key: 'authTimeout', kind: 'number', default: 30, min: 1, max: 600, arg: 'S', doc: 'longest wait for PAP/CHAP to finish once LCP is open (RADIUS behind the SC may be slow)' },
  { key: 'ncpTimeout', kind: 'number', default: 30, min: 1, max: 600, arg: 'S', doc: 'longest wait for IPV6CP/IPCP to open after authentication' },
  {
    key: 'provisionWait',
    kind: 'number',
    default: 10,
    min: 0,
    max: 600,
    arg: 'S',
    doc: 'after the NCPs are up, longest wait for a global address, default route, DNS and (router) delegated prefix before reporting up with a "degraded" reason',
  },
];

export const FIELD_BY_KEY: ReadonlyMap<string, Field> = new Map(FIELDS.map((f) => [f.key, f]));

/** camelCase key -> kebab-case flag name. */
export function flagName(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

import type { RemoteInfo, Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import type { Logger } from '../log';
import type { Netlink } from '../platform/netlink';

/**
 * The optional LAN DHCPv4 server of the router role with an IPv4 softwire
 * (RFC 5571 3.2): LAN hosts get an address from the LAN interface's subnet, the
 * router (the LAN address) as gateway and the DNS servers IPCP gave.
 *
 * The `dhcp` package does the BOOTP formatting; this wrapper decides everything
 * else, because the package, fed straight from the socket, can be made to throw
 * inside its socket handler (a Parameter Request List naming option 52, 53 or 56
 * throws "Invalid option undefined"), to spin forever (randomIP with a full
 * pool), to grow without bound (a lease per spoofed chaddr, never expired) and to
 * write to stderr per packet (unknown options, RELEASE/INFORM). So every packet
 * is checked and rebuilt here first (known options only, sane lengths), only
 * DISCOVER and REQUEST reach the package, the address is chosen here, and the
 * package's handler runs inside try/catch.
 */

/** The subset of the package's Server this file uses (it ships no types). */
interface PackageServer {
  _sock: Socket;
  _getOptions: (pre: Record<number, unknown>, required: number[], requested?: number[]) => Record<number, unknown>;
  _state: Record<string, Lease>;
  _conf: Record<string, unknown>;
  _send: (host: string, data: unknown) => void;
  sendNak(req: unknown): void;
  listen(port: number, host: string, fn: () => void): void;
  on(ev: 'error', fn: (e: unknown) => void): void;
}
interface DhcpPackage {
  createServer(conf: Record<string, unknown>): PackageServer;
}
interface PackageOption {
  type?: string;
  config?: string;
}
/* eslint-disable @typescript-eslint/no-require-imports */
const dhcpPackage = (): DhcpPackage => require('dhcp') as DhcpPackage;
const protocol = (): { parse(b: Buffer): unknown; format(d: unknown): { _data: Buffer; _w: number } } => require('dhcp/lib/protocol.js');
const packageOptions = (): Record<string, PackageOption> => (require('dhcp/lib/options.js') as { opts: Record<string, PackageOption> }).opts;
/* eslint-enable @typescript-eslint/no-require-imports */

/** What the package keeps per client (it adds state, bindTime, leasePeriod, server). */
interface Lease {
  address: string;
  state?: string;
  bindTime?: Date;
  leasePeriod?: number;
  /** When we offered the address (ms); an offer nobody took is reusable after OFFER_HOLD_MS. */
  offeredAt: number;
}

const DISCOVER = 1;
const REQUEST = 3;
const DECLINE = 4;
const RELEASE = 7;
const MAGIC = 0x63825363;
/** Fixed BOOTP header (236) + magic cookie. */
const HEADER = 240;
/** The package's selection and exclusion are linear in the lease count per packet: a home LAN does not need more. */
export const MAX_POOL = 1024;
const OFFER_HOLD_MS = 60_000;
/** An address a client declined (someone else uses it) is not offered again for this long. */
const DECLINE_HOLD_S = 600;

export interface Dhcpv4Pool {
  /** The router's LAN address: gateway, server identifier, and never leased. */
  address: string;
  prefixLength: number;
  netmask: string;
  broadcast: string;
  first: string;
  last: string;
  /** Leasable addresses (the range without the router's own). */
  size: number;
}

export const ipToInt = (a: string): number => a.split('.').reduce((n, o) => ((n << 8) | Number(o)) >>> 0, 0);
export const intToIp = (n: number): string => [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');
const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;

/**
 * The pool for a LAN address/prefix: every host address of the subnet but the
 * router's, at most MAX_POOL of them. Throws when the subnet has no host to give.
 */
export function dhcpPool(address: string, prefixLength: number): Dhcpv4Pool {
  if (!IPV4.test(address)) throw new Error(`dhcpv4: "${address}" is not an IPv4 address`);
  if (!Number.isInteger(prefixLength) || prefixLength < 8 || prefixLength > 30) {
    throw new Error(`dhcpv4: ${address}/${prefixLength}: the LAN prefix must be /8 to /30 to leave addresses to lease`);
  }
  const mask = (0xffffffff << (32 - prefixLength)) >>> 0;
  const a = ipToInt(address);
  const net = (a & mask) >>> 0;
  const bcast = (net | ~mask) >>> 0;
  if (a === net || a === bcast) throw new Error(`dhcpv4: ${address}/${prefixLength} is the subnet's network or broadcast address`);
  const first = net + 1;
  let last = Math.min(bcast - 1, first + MAX_POOL - 1);
  const routerInside = a >= first && a <= last;
  // The router's own address is skipped, so the range grows by one to keep MAX_POOL leasable.
  if (routerInside && last < bcast - 1) last++;
  const size = last - first + 1 - (routerInside ? 1 : 0);
  return { address, prefixLength, netmask: intToIp(mask), broadcast: intToIp(bcast), first: intToIp(first), last: intToIp(last), size };
}

/** The package's configuration for a pool. */
export function packageConfig(pool: Dhcpv4Pool, dns: readonly string[], leaseTime: number): Record<string, unknown> {
  return {
    range: [pool.first, pool.last],
    // The package's random pick loops forever on a full pool; addresses are chosen here anyway.
    randomIP: false,
    netmask: pool.netmask,
    router: [pool.address],
    server: pool.address,
    // Also where every reply goes: 255.255.255.255 would follow the default route into the tunnel.
    broadcast: pool.broadcast,
    dns: [...dns],
    leaseTime,
    renewalTime: Math.floor(leaseTime / 2),
    rebindingTime: Math.floor((leaseTime * 7) / 8),
  };
}

/**
 * Sockets on UDP port 67 in /proc/net/udp text ("0100007F:0043" style local
 * addresses). The package binds with SO_REUSEADDR, so a second DHCP server
 * (dnsmasq, odhcpd) on the port would not make it fail: both would answer.
 */
export function port67Users(procNetUdp: string): string[] {
  const out: string[] = [];
  for (const line of procNetUdp.split('\n').slice(1)) {
    const local = line.trim().split(/\s+/)[1];
    const m = local && /^([0-9A-Fa-f]{8}):([0-9A-Fa-f]{4})$/.exec(local);
    if (!m || parseInt(m[2]!, 16) !== 67) continue;
    // /proc prints the network-order address as a host-order u32: the bytes come reversed on little-endian hosts (only the log text depends on it).
    out.push(`${m[1]!.match(/../g)!.reverse().map((h) => parseInt(h, 16)).join('.')}:67`);
  }
  return out;
}

export interface CheckedRequest {
  /** The packet rebuilt with only options the package knows, each of a sane length. */
  bytes: Buffer;
  type: number;
  chaddr: string;
  ciaddr: string;
  requested?: string;
  serverId?: string;
}

const FIXED_LEN: Record<string, number> = { IP: 4, UInt8: 1, Int8: 1, UInt16: 2, Int16: 2, UInt32: 4, Int32: 4, Bool: 0 };

/**
 * Checks a BOOTREQUEST from a LAN client and rebuilds it for the package.
 * Returns a reason string when the packet is dropped.
 */
export function checkRequest(buf: Buffer): CheckedRequest | string {
  if (buf.length < HEADER + 3) return 'short packet';
  if (buf[0] !== 1) return 'not a BOOTREQUEST';
  if (buf[1] !== 1 || buf[2] !== 6) return 'not Ethernet';
  if (buf.readUInt32BE(24) !== 0) return 'relayed (giaddr set): relays are not served';
  if (buf.readUInt32BE(236) !== MAGIC) return 'no DHCP magic cookie';
  const known = packageOptions();
  const opts: Buffer[] = [];
  const seen = new Set<number>();
  let type = 0;
  let requested: string | undefined;
  let serverId: string | undefined;
  let i = HEADER;
  let ended = false;
  while (i < buf.length) {
    const code = buf[i]!;
    if (code === 255) {
      ended = true;
      break;
    }
    if (code === 0) {
      i++;
      continue;
    }
    if (i + 1 >= buf.length) return 'option runs past the end';
    const len = buf[i + 1]!;
    const val = buf.subarray(i + 2, i + 2 + len);
    if (val.length !== len) return 'option runs past the end';
    i += 2 + len;
    if (seen.has(code)) continue; // first one wins; the package would take the last
    seen.add(code);
    if (code === 53) {
      if (len !== 1) return 'bad message type option';
      type = val[0]!;
      continue; // written first, below
    }
    const o = known[code];
    if (!o || !o.type) continue;
    const fixed = FIXED_LEN[o.type];
    if (fixed !== undefined ? len !== fixed : o.type === 'IPs' ? len === 0 || len % 4 !== 0 : o.type === 'UInt16s' ? len % 2 !== 0 : false) continue;
    let v = val;
    if (code === 55) {
      // Only what the package can look up: 52/53/56 and friends make it throw.
      v = Buffer.from([...val].filter((c) => known[c]?.config !== undefined));
    }
    if (code === 50) requested = intToIp(val.readUInt32BE(0));
    if (code === 54) serverId = intToIp(val.readUInt32BE(0));
    opts.push(Buffer.from([code, v.length]), v);
  }
  if (!ended) return 'no end option';
  if (type === 0) return 'no message type';
  const bytes = Buffer.concat([buf.subarray(0, HEADER), Buffer.from([53, 1, type]), ...opts, Buffer.from([255])]);
  // The server-name and file fields are free text to the package: blank them rather than echo a client's bytes.
  bytes.fill(0, 44, 236);
  const chaddr = [...buf.subarray(28, 34)].map((b) => b.toString(16).padStart(2, '0').toUpperCase()).join('-');
  return { bytes, type, chaddr, ciaddr: intToIp(buf.readUInt32BE(12)), requested, serverId };
}

export interface Dhcpv4Stats {
  received: number;
  dropped: number;
  offers: number;
  acks: number;
  naks: number;
  /** Exceptions and 'error' events from the package. */
  errors: number;
  /** Addresses held (bound, or offered within the last minute) after the last DISCOVER or REQUEST. */
  leases: number;
}

export interface Dhcpv4ServerOptions {
  /** The LAN interface served (its first IPv4 address gives the pool). */
  lan: string;
  netlink: Pick<Netlink, 'listAddresses'>;
  log: Logger;
  /** Seconds; default 3600. */
  leaseTime?: number;
  /** The text of /proc/net/udp (injectable for tests). */
  udpTable?: () => string;
  /** Tests: a port other than 67/68 and an address other than 0.0.0.0. */
  port?: number;
  clientPort?: number;
  bindAddress?: string;
  now?: () => number;
}

/** Where the installer drives the server; all three never throw. */
export interface Dhcpv4Control {
  start(dns: readonly string[]): Promise<void>;
  setDns(dns: readonly string[]): void;
  stop(): Promise<void>;
}

export class Dhcpv4Server implements Dhcpv4Control {
  private srv: PackageServer | null = null;
  private pool: Dhcpv4Pool | null = null;
  private dns: string[] = [];
  /** Kept across stop/start (softwire reconnects): a restarted server must not hand out addresses still leased. */
  private readonly leases: Record<string, Lease> = Object.create(null) as Record<string, Lease>;
  private logged = 0;
  private serving = false;
  readonly stats: Dhcpv4Stats = { received: 0, dropped: 0, offers: 0, acks: 0, naks: 0, errors: 0, leases: 0 };
  private readonly leaseTime: number;
  private readonly now: () => number;

  constructor(private readonly o: Dhcpv4ServerOptions) {
    this.leaseTime = o.leaseTime ?? 3600;
    this.now = o.now ?? Date.now;
  }

  get active(): boolean {
    return this.serving;
  }

  /** Starts serving the LAN, unless something else holds UDP port 67 or the LAN has no IPv4 address. */
  async start(dns: readonly string[]): Promise<void> {
    this.dns = [...dns];
    if (this.srv) {
      this.setDns(dns);
      return;
    }
    const log = this.o.log;
    try {
      const users = port67Users(this.o.udpTable ? this.o.udpTable() : readFileSync('/proc/net/udp', 'utf8'));
      if (users.length) {
        log.error({ sockets: users }, 'DHCPv4 server not started: UDP port 67 is already in use (dnsmasq or odhcpd?); turn one of the two off');
        return;
      }
      const addrs = await this.o.netlink.listAddresses({ family: 4, link: this.o.lan });
      const a = addrs.find((x) => x.scope === 0) ?? addrs[0];
      if (!a) {
        log.warn({ lan: this.o.lan }, 'DHCPv4 server not started: the LAN interface has no IPv4 address');
        return;
      }
      const pool = dhcpPool(a.address, a.prefixLength);
      if (this.pool && (this.pool.first !== pool.first || this.pool.last !== pool.last)) {
        for (const k of Object.keys(this.leases)) delete this.leases[k];
      }
      this.pool = pool;
      const srv = dhcpPackage().createServer(packageConfig(pool, this.dns, this.leaseTime));
      // Owned from here on, so that a failed bind below still closes the socket.
      this.srv = srv;
      this.wrap(srv);
      await new Promise<void>((resolve, reject) => {
        srv._sock.once('error', reject);
        srv.listen(this.o.port ?? 67, this.o.bindAddress ?? '0.0.0.0', () => {
          srv._sock.off('error', reject);
          resolve();
        });
      });
      this.serving = true;
      log.info({ lan: this.o.lan, pool: `${pool.first}-${pool.last}`, router: pool.address, dns: this.dns, leaseTime: this.leaseTime }, 'DHCPv4 server started');
    } catch (e) {
      this.stats.errors++;
      const code = (e as { code?: string }).code;
      // A port below 1024: the least-privilege OpenWrt setup grants only CAP_NET_ADMIN and CAP_NET_RAW.
      const hint = code === 'EACCES' || code === 'EPERM' ? ' (binding UDP port 67 needs CAP_NET_BIND_SERVICE: run as root or grant it)' : '';
      log.error({ err: (e as Error).message, lan: this.o.lan }, `DHCPv4 server not started${hint}`);
      await this.stop();
    }
  }

  setDns(dns: readonly string[]): void {
    this.dns = [...dns];
    // The package reads its config per packet: the next reply carries the new servers.
    if (this.srv) this.srv._conf.dns = [...dns];
  }

  /** Closes the socket; leases stay in memory for the next start. */
  async stop(): Promise<void> {
    const srv = this.srv;
    const serving = this.serving;
    this.srv = null;
    this.serving = false;
    if (!srv) return;
    await new Promise<void>((resolve) => {
      try {
        srv._sock.close(() => resolve());
      } catch {
        resolve(); // already closed
      }
    });
    if (serving) this.o.log.info({ lan: this.o.lan, ...this.stats }, 'DHCPv4 server stopped');
  }

  private wrap(srv: PackageServer): void {
    srv._state = this.leases;
    // Before listening, the only error is the bind failure, which start() reports.
    srv.on('error', (e) => {
      if (this.serving) this.packageError(e);
    });
    const sock = srv._sock;
    const handlers = sock.listeners('message') as ((b: Buffer, r: RemoteInfo) => void)[];
    sock.removeAllListeners('message');
    sock.on('message', (buf: Buffer, rinfo: RemoteInfo) => {
      try {
        this.onPacket(srv, buf, rinfo, (b) => {
          for (const h of handlers) h.call(sock, b, rinfo);
        });
      } catch (e) {
        this.packageError(e);
      }
    });
    // Without DNS from IPCP the package would send option 6 with no address in it (RFC 2132 wants at least one).
    const getOptions = srv._getOptions;
    srv._getOptions = function (this: PackageServer, pre, required, requested) {
      const out = getOptions.call(this, pre, required, requested);
      if (Array.isArray(out[6]) && out[6].length === 0) delete out[6];
      return out;
    };
    // The package's own _send logs to stdout on failure and always uses port 68.
    const clientPort = this.o.clientPort ?? 68;
    srv._send = (host: string, data: unknown) => {
      const sb = protocol().format(data);
      sock.send(sb._data.subarray(0, sb._w), clientPort, host, (err) => {
        if (err) this.packageError(err);
      });
    };
  }

  private packageError(e: unknown): void {
    this.stats.errors++;
    // A LAN host can make this happen per packet: log the first few, then every 1000th.
    if (this.logged++ < 5 || this.stats.errors % 1000 === 0) {
      this.o.log.warn({ err: e instanceof Error ? e.message : String(e), errors: this.stats.errors }, 'DHCPv4: packet not handled');
    }
  }

  private drop(why: string, mac?: string): void {
    this.stats.dropped++;
    this.o.log.debug({ why, mac }, 'DHCPv4: request dropped');
  }

  /** One packet from the socket: checked, the address chosen, then handed to the package. */
  private onPacket(srv: PackageServer, buf: Buffer, rinfo: RemoteInfo, pkg: (b: Buffer) => void): void {
    this.stats.received++;
    const pool = this.pool!;
    if (rinfo.address !== '0.0.0.0' && !inSubnet(rinfo.address, pool)) return this.drop(`source ${rinfo.address} is not on the LAN`);
    const r = checkRequest(buf);
    if (typeof r === 'string') return this.drop(r);
    const now = this.now();
    const own = this.leases[r.chaddr];
    switch (r.type) {
      case DISCOVER: {
        const addr = this.choose(r.chaddr, r.requested, now);
        if (!addr) return this.drop('pool exhausted', r.chaddr);
        pkg(r.bytes);
        this.stats.offers++;
        this.stats.leases = this.held(now).size;
        return;
      }
      case REQUEST: {
        if (r.serverId !== undefined && r.serverId !== pool.address) {
          // The client took another server's offer: ours is free again.
          if (own && own.state !== 'BOUND') delete this.leases[r.chaddr];
          return this.drop(`request for server ${r.serverId}`, r.chaddr);
        }
        const wanted = r.requested ?? (r.ciaddr !== '0.0.0.0' ? r.ciaddr : undefined);
        if (!wanted) return this.drop('request without an address', r.chaddr);
        // RFC 2131 4.3.2: a wrong address (another network, or someone else's) is NAKed so the client starts over.
        if (!this.claim(r.chaddr, wanted, now)) {
          srv.sendNak(protocol().parse(r.bytes));
          this.stats.naks++;
          this.o.log.info({ mac: r.chaddr, requested: wanted }, 'DHCPv4: NAK');
          return;
        }
        pkg(r.bytes);
        const l = this.leases[r.chaddr];
        if (l?.state === 'BOUND') {
          this.stats.acks++;
          this.stats.leases = this.held(now).size;
          this.o.log.info({ mac: r.chaddr, address: l.address, leaseTime: this.leaseTime }, 'DHCPv4 lease');
        }
        return;
      }
      case RELEASE:
        if (own && own.address === r.ciaddr) delete this.leases[r.chaddr];
        return;
      case DECLINE:
        if (own && r.requested === own.address) {
          delete this.leases[r.chaddr];
          this.leases[`declined ${own.address}`] = { address: own.address, state: 'BOUND', bindTime: new Date(now), leasePeriod: DECLINE_HOLD_S, offeredAt: now };
        }
        return;
      default:
        return this.drop(`message type ${r.type} not served`, r.chaddr);
    }
  }

  /** Addresses held by someone, after forgetting expired leases and stale offers. */
  private held(now: number): Map<string, string> {
    const m = new Map<string, string>();
    for (const [mac, l] of Object.entries(this.leases)) {
      const expired = l.bindTime ? l.bindTime.getTime() + (l.leasePeriod ?? this.leaseTime) * 1000 < now : l.offeredAt + OFFER_HOLD_MS < now;
      if (expired || !l.address || !inPool(l.address, this.pool!)) delete this.leases[mac];
      else m.set(l.address, mac);
    }
    return m;
  }

  /** Gives `mac` exactly `addr` if it may have it. */
  private claim(mac: string, addr: string, now: number): boolean {
    const pool = this.pool!;
    const own = this.leases[mac];
    if (own && own.address === addr) return true;
    if (!inPool(addr, pool) || addr === pool.address) return false;
    const holder = this.held(now).get(addr);
    if (holder !== undefined && holder !== mac) return false;
    this.leases[mac] = { address: addr, offeredAt: now };
    return true;
  }

  /** The address to offer `mac`: its lease, the one it asks for if free, else the first free one. */
  private choose(mac: string, requested: string | undefined, now: number): string | null {
    const own = this.leases[mac];
    if (own && this.held(now).get(own.address) === mac) return own.address;
    if (requested && this.claim(mac, requested, now)) return requested;
    const held = this.held(now);
    const pool = this.pool!;
    for (let n = ipToInt(pool.first); n <= ipToInt(pool.last); n++) {
      const ip = intToIp(n);
      if (ip === pool.address || held.has(ip)) continue;
      this.leases[mac] = { address: ip, offeredAt: now };
      return ip;
    }
    return null;
  }
}

function inSubnet(ip: string, pool: Dhcpv4Pool): boolean {
  return IPV4.test(ip) && ((ipToInt(ip) ^ ipToInt(pool.address)) & ipToInt(pool.netmask)) >>> 0 === 0;
}

function inPool(ip: string, pool: Dhcpv4Pool): boolean {
  if (!IPV4.test(ip)) return false;
  const n = ipToInt(ip);
  return n >= ipToInt(pool.first) && n <= ipToInt(pool.last);
}

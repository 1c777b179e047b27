import type { Provision } from '../config/schema';
import type { Dhcpv4Control } from '../lan/dhcpv4-server';
import type { Logger } from '../log';
import type { Netlink } from '../platform/netlink';
import { INFINITY_LIFETIME, RT_TABLE_MAIN } from '../platform/netlink';
import type { Sysctl } from '../platform/sysctl';
import type { LanStatus, Status } from './status';

/**
 * Turns what the protocol cores learned into kernel state (addresses, routes,
 * sysctls) and remembers every object it created so that `clear()` can remove
 * exactly those, also after a failure half-way. Netlink calls are queued and
 * run one at a time in the order the cores asked for them; a failing call is
 * logged and counted but does not stop the ones after it.
 */

export interface PrefixLease {
  prefix: string;
  length: number;
  preferredLifetime: number;
  validLifetime: number;
}

export interface DnsInfo {
  servers: string[];
  domains: string[];
}

export interface InstallerHooks {
  /** The softwire MTU changed: the LAN's RAs announce it (issue 16 item 3). */
  onMtu?: (mtu: number) => Promise<void> | void;
  /** Router role: number the LAN from the delegated prefix (null: withdraw). */
  onPrefix?: (lease: PrefixLease | null) => Promise<void> | void;
  /** The merged DNS servers and search list changed. */
  onDns?: (dns: DnsInfo) => Promise<void> | void;
  /** LAN entries for status. */
  lanStatus?: () => LanStatus[];
  /** A reconnect keeps the LAN numbered from the last lease (the next onPrefix re-applies or replaces it). */
  onLanHeld?: () => void;
}

export interface InstallerOptions {
  routeMetric: number;
  /** The SC's address: IPv4 routed into the softwire must not capture the tunnel's own packets. */
  scAddress?: string;
  /** Route IPv4 through the softwire (IPCP carries traffic). */
  ipv4DefaultRoute: boolean;
  /**
   * 'netifd': the global and IPv4 addresses and the routes through the TUN are
   * left to OpenWrt's netifd, which installs what the notify script reports;
   * installing them here as well would double them. The TUN itself, its
   * link-local address and the pin to the SC (which keeps the tunnel's own
   * packets off netifd's IPv4 default route) stay ours. Default 'agent'.
   */
  provision?: Provision;
  /**
   * Router role with an IPv4 softwire: the LAN is masqueraded behind the one IPCP
   * address (RFC 5571 3.2), installed once IPv4 routes into the TUN, removed by clear().
   */
  nat44?: Nat44Control;
  /**
   * Router role with an IPv4 softwire: the LAN DHCPv4 server (src/lan/dhcpv4-server.ts),
   * started once IPv4 routes into the TUN, given IPCP's DNS, stopped by clear().
   */
  dhcpv4?: Dhcpv4Control;
}

/** What the installer needs of src/ipv4/nat44.ts's Nat44 (injectable for tests). */
export interface Nat44Control {
  install(): void;
  remove(): void;
  readonly active: boolean;
}

type DnsSource = 'ra' | 'dhcp6' | 'ipcp';

const isoIn = (seconds: number): string | null =>
  seconds >= INFINITY_LIFETIME ? null : new Date(Date.now() + seconds * 1000).toISOString();

export class Installer {
  private queue: Promise<void> = Promise.resolve();
  private tun: string | null = null;
  private tunReady = false;
  private linkLocalDone = false;
  private readonly addresses = new Map<string, { plen: number; sources: Set<string> }>();
  private readonly routes = new Map<string, { destination: string; metric: number }>();
  private readonly dnsBySource = new Map<DnsSource, DnsInfo>();
  private lease: (PrefixLease & { at: number }) | null = null;
  private globalAddress: string | null = null;
  private defaultRoute = false;
  private scPin: { destination: string; link: number; metric: number } | null = null;
  /** We turned net.ipv4.ip_forward on for NAT44, so clear() turns it back off. */
  private ipv4ForwardingOurs = false;
  private nat44Queued = false;
  private dhcpv4Queued = false;
  readonly errors: Record<string, number> = {};

  constructor(
    private readonly nl: Netlink,
    private readonly sysctl: Sysctl,
    private readonly log: Logger,
    private readonly opts: InstallerOptions,
    private readonly hooks: InstallerHooks = {},
  ) {}

  /** Queues one kernel operation; `what` names it in logs and error counters. */
  private enqueue(what: string, op: () => Promise<void>, opts: { goneIsDone?: boolean } = {}): void {
    this.queue = this.queue.then(async () => {
      try {
        await op();
      } catch (e) {
        // Removing something from a device that no longer exists: the kernel removed it with the device.
        if (opts.goneIsDone && (e as { code?: string }).code === 'ENODEV') return;
        this.errors[what] = (this.errors[what] ?? 0) + 1;
        this.log.error({ err: (e as Error).message, op: what }, 'kernel configuration failed');
      }
    });
  }

  /** Queues a kernel operation on the softwire's address or routes, unless netifd installs those. */
  private enqueueWan(what: string, op: () => Promise<void>, opts: { goneIsDone?: boolean } = {}): void {
    if (this.opts.provision !== 'netifd') this.enqueue(what, op, opts);
  }

  /** Resolves when every queued operation has run. */
  settled(): Promise<void> {
    return this.queue;
  }

  /**
   * Prepares the TUN: the agent owns this link, so the kernel must not
   * autoconfigure it (no accept_ra, no SLAAC, no DAD, no link-local of its own).
   */
  tunUp(name: string, mtu: number, linkLocal: string | null): void {
    if (!this.tunReady) {
      this.tunReady = true;
      this.tun = name;
      this.enqueue('tun-setup', async () => {
        for (const k of ['accept_ra', 'autoconf', 'accept_dad'] as const) await this.sysctl.setIpv6(name, k, 0);
        await this.sysctl.write(['net', 'ipv6', 'conf', name, 'addr_gen_mode'], '1');
        await this.nl.setMtu(name, mtu);
        await this.nl.setLinkUp(name, true);
      });
      const hook = this.hooks.onMtu;
      if (hook) this.enqueue('lan-mtu', async () => hook(mtu));
    }
    if (linkLocal && !this.linkLocalDone) {
      this.linkLocalDone = true;
      this.enqueue('link-local', () => this.nl.addAddress({ link: name, address: linkLocal, prefixLength: 64, nodad: true, replace: true }));
    }
  }

  /** Issue 16 item 3: a new softwire MTU for the TUN (after tunUp) and the LAN's RAs. */
  tunMtu(mtu: number): void {
    const tun = this.tun;
    if (tun) this.enqueue('tun-mtu', () => this.nl.setMtu(tun, mtu));
    const hook = this.hooks.onMtu;
    if (hook) this.enqueue('lan-mtu', async () => hook(mtu));
  }

  /** An address from a source ('slaac', 'dhcp6'); the same address from two sources is installed once. */
  address(source: string, address: string, plen: number, valid: number, preferred: number): void {
    const tun = this.tun;
    if (!tun) return;
    const cur = this.addresses.get(address);
    if (cur) {
      cur.sources.add(source);
      // DHCPv6 IA_NA (/128) and SLAAC (/64) can name the same address (l2tpns does): keep the /64, which carries the on-link prefix.
      if (plen < cur.plen) {
        const old = cur.plen;
        cur.plen = plen;
        this.enqueueWan('address-replace', () => this.nl.deleteAddress({ link: tun, address, prefixLength: old }), { goneIsDone: true });
      }
    } else this.addresses.set(address, { plen, sources: new Set([source]) });
    const installedPlen = this.addresses.get(address)!.plen;
    if (source === 'slaac' || !this.globalAddress) this.globalAddress = address;
    this.enqueueWan('address', () =>
      this.nl.addAddress({
        link: tun,
        address,
        prefixLength: installedPlen,
        validLifetime: valid,
        preferredLifetime: Math.min(preferred, valid),
        nodad: true,
        replace: true,
      }),
    );
  }

  removeAddress(source: string, address: string, _plen: number): void {
    const cur = this.addresses.get(address);
    const tun = this.tun;
    if (!cur || !tun) return;
    cur.sources.delete(source);
    if (cur.sources.size > 0) return;
    this.addresses.delete(address);
    if (this.globalAddress === address) this.globalAddress = [...this.addresses.keys()][0] ?? null;
    this.enqueueWan('address-remove', () => this.nl.deleteAddress({ link: tun, address, prefixLength: cur.plen }));
  }

  private route(key: string, destination: string, present: boolean): void {
    const tun = this.tun;
    if (!tun) return;
    const metric = this.opts.routeMetric;
    // Every route here goes through the TUN: netifd's to install when it provisions.
    if (this.opts.provision === 'netifd') return;
    if (present) {
      this.routes.set(key, { destination, metric });
      this.enqueue(`route ${destination}`, () => this.nl.addRoute({ destination, link: tun, metric, replace: true }));
    } else if (this.routes.delete(key)) {
      this.enqueue(`route-remove ${destination}`, () => this.nl.deleteRoute({ destination, link: tun, metric }));
    }
  }

  defaultRoute6(present: boolean): void {
    this.defaultRoute = present;
    this.route('default6', '::/0', present);
  }

  ipv4(address: string, peer: string | null, dns: string[]): void {
    const tun = this.tun;
    if (!tun) return;
    this.addresses.set(address, { plen: 32, sources: new Set(['ipcp']) });
    this.enqueueWan('ipv4-address', () => this.nl.addAddress({ link: tun, address, prefixLength: 32, replace: true }));
    // l2tpns gives its own tunnel address as the IPCP peer: a host route to it via the TUN
    // would send the tunnel into itself. The default route covers the peer anyway.
    if (peer && peer !== this.opts.scAddress) this.route('peer4', `${peer}/32`, true);
    if (this.opts.ipv4DefaultRoute) {
      this.pinScRoute();
      this.route('default4', '0.0.0.0/0', true);
      this.nat44Up();
      this.dhcpv4Up(dns);
    }
    this.dns('ipcp', dns, []);
  }

  private nat44Up(): void {
    const nat = this.opts.nat44;
    // With netifd provisioning, OpenWrt's firewall zone does the masquerading.
    if (!nat || this.nat44Queued || this.opts.provision === 'netifd') return;
    this.nat44Queued = true;
    this.enqueue('nat44', async () => {
      // A NAT that does not forward is no router: like the LAN's IPv6 forwarding, turned on here and back off by clear().
      if (!(await this.sysctl.ipv4Forwarding())) {
        await this.sysctl.setIpv4Forwarding(true);
        this.ipv4ForwardingOurs = true;
      }
      nat.install();
      this.log.info({ tun: this.tun }, 'NAT44: LAN masqueraded behind the IPCP address');
    });
  }

  private dhcpv4Up(dns: string[]): void {
    const d = this.opts.dhcpv4;
    // With netifd provisioning, OpenWrt's own DHCP server (dnsmasq, odhcpd) has the LAN.
    if (!d || this.opts.provision === 'netifd') return;
    if (this.dhcpv4Queued) {
      // IPCP renegotiated: new DNS servers go into the next replies.
      this.enqueue('dhcpv4-dns', async () => d.setDns(dns));
      return;
    }
    this.dhcpv4Queued = true;
    this.enqueue('dhcpv4', () => d.start(dns));
  }

  /** Pins a /32 to the SC along the WAN route that reaches it now, before IPv4 default goes into the TUN. */
  private pinScRoute(): void {
    const sc = this.opts.scAddress;
    if (!sc || !/^\d+\.\d+\.\d+\.\d+$/.test(sc) || this.scPin) return;
    this.enqueue('sc-route', async () => {
      const tunIndex = this.tun ? await this.nl.linkIndex(this.tun).catch(() => -1) : -1;
      const routes = await this.nl.listRoutes({ family: 4, table: RT_TABLE_MAIN });
      let best: (typeof routes)[number] | undefined;
      let bestLen = -1;
      for (const r of routes) {
        const [net, len] = r.destination.split('/');
        const plen = Number(len);
        if (r.type !== 'unicast' || r.ifindex === undefined || r.ifindex === tunIndex || !ipv4Contains(net!, plen, sc)) continue;
        if (plen > bestLen || (plen === bestLen && best && r.metric < best.metric)) {
          best = r;
          bestLen = plen;
        }
      }
      if (!best || bestLen === 32) return;
      const pin = { destination: `${sc}/32`, link: best.ifindex!, metric: best.metric };
      await this.nl.addRoute({ ...pin, gateway: best.gateway, replace: true });
      this.scPin = pin;
    });
  }

  dns(source: DnsSource, servers: string[], domains: string[]): void {
    this.dnsBySource.set(source, { servers, domains });
    const merged = this.mergedDns();
    const hook = this.hooks.onDns;
    if (hook) this.enqueue('dns', async () => hook(merged));
  }

  mergedDns(): DnsInfo {
    const servers: string[] = [];
    const domains: string[] = [];
    for (const src of ['dhcp6', 'ra', 'ipcp'] as DnsSource[]) {
      const d = this.dnsBySource.get(src);
      for (const s of d?.servers ?? []) if (!servers.includes(s)) servers.push(s);
      for (const s of d?.domains ?? []) if (!domains.includes(s)) domains.push(s);
    }
    return { servers, domains };
  }

  delegatedPrefix(lease: PrefixLease | null): void {
    this.lease = lease ? { ...lease, at: Date.now() } : null;
    const hook = this.hooks.onPrefix;
    if (hook) this.enqueue('lan', async () => hook(lease));
  }

  ipv6Status(linkLocal: string): NonNullable<Status['ipv6']> {
    const l = this.lease;
    const left = (s: number) => (l && s < INFINITY_LIFETIME ? Math.max(0, s - (Date.now() - l.at) / 1000) : s);
    return {
      linkLocal,
      address: this.globalAddress,
      addressLength: this.globalAddress ? (this.addresses.get(this.globalAddress)?.plen ?? null) : null,
      delegatedPrefix: l
        ? { prefix: l.prefix, length: l.length, preferredUntil: isoIn(left(l.preferredLifetime)), validUntil: isoIn(left(l.validLifetime)) }
        : null,
      dns: this.mergedDns().servers,
      domains: this.mergedDns().domains,
      defaultRoute: this.defaultRoute,
      lan: this.hooks.lanStatus?.() ?? [],
    };
  }

  /**
   * Removes everything installed, in reverse order of dependence: LAN, routes, addresses, DNS.
   * With `holdLan` (a reconnect, not a stop) the LAN numbering and the DNS handed to it stay:
   * LAN hosts see no withdrawal if the same prefix comes back within its valid lifetime.
   * Returns for how long (s) the held LAN's lease is still valid, or 0 if nothing is held.
   */
  async clear(opts: { holdLan?: boolean } = {}): Promise<{ heldForS: number }> {
    let heldForS = 0;
    const l = this.lease;
    if (l && this.hooks.onPrefix) {
      const left = l.validLifetime >= INFINITY_LIFETIME ? INFINITY_LIFETIME : Math.max(0, l.validLifetime - (Date.now() - l.at) / 1000);
      if (opts.holdLan && left > 0) heldForS = left;
      else {
        const hook = this.hooks.onPrefix;
        this.enqueue('lan-clear', async () => hook(null));
      }
    }
    this.lease = null;
    const tun = this.tun;
    if (tun) {
      for (const [key, r] of [...this.routes]) {
        this.routes.delete(key);
        this.enqueue(`route-remove ${r.destination}`, () => this.nl.deleteRoute({ destination: r.destination, link: tun, metric: r.metric }), {
          goneIsDone: true,
        });
      }
      for (const [address, a] of [...this.addresses]) {
        this.addresses.delete(address);
        this.enqueueWan('address-remove', () => this.nl.deleteAddress({ link: tun, address, prefixLength: a.plen }), { goneIsDone: true });
      }
    }
    if (this.dnsBySource.size) {
      this.dnsBySource.clear();
      const hook = this.hooks.onDns;
      // A held LAN keeps advertising the DNS it had; the next attempt's DNS replaces it.
      if (hook && heldForS === 0) this.enqueue('dns-clear', async () => hook({ servers: [], domains: [] }));
    }
    const dhcpv4 = this.opts.dhcpv4;
    if (dhcpv4 && this.dhcpv4Queued) {
      this.dhcpv4Queued = false;
      this.enqueue('dhcpv4-stop', () => dhcpv4.stop());
    }
    const nat = this.opts.nat44;
    if (nat && this.nat44Queued) {
      this.nat44Queued = false;
      // Queued behind the install, so an install still pending is undone too.
      this.enqueue('nat44-remove', async () => {
        nat.remove();
        if (this.ipv4ForwardingOurs) {
          this.ipv4ForwardingOurs = false;
          await this.sysctl.setIpv4Forwarding(false);
        }
      });
    }
    const pin = this.scPin;
    if (pin) {
      this.scPin = null;
      this.enqueue('sc-route-remove', () => this.nl.deleteRoute(pin), { goneIsDone: true });
    }
    this.defaultRoute = false;
    this.globalAddress = null;
    await this.settled();
    return { heldForS };
  }
}

function ipv4ToInt(a: string): number {
  return a.split('.').reduce((n, o) => ((n << 8) | Number(o)) >>> 0, 0);
}

function ipv4Contains(net: string, plen: number, addr: string): boolean {
  if (!(plen >= 0 && plen <= 32)) return false;
  const mask = plen === 0 ? 0 : (0xffffffff << (32 - plen)) >>> 0;
  return ((ipv4ToInt(net) & mask) >>> 0) === ((ipv4ToInt(addr) & mask) >>> 0);
}

import { lookup } from 'node:dns/promises';
import { rename, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { type Secrets, explicitKeys, parseScAddress } from '../config/load';
import type { Config } from '../config/schema';
import { RealScheduler, type Scheduler } from '../core/scheduler';
import { openDataTransport } from '../dataplane/udp';
import type { DatagramTransport, Endpoint } from '../io/udp-socket';
import { Nat44 } from '../ipv4/nat44';
import type { Prefix } from '../ipv6/packet';
import { Dhcpv4Server } from '../lan/dhcpv4-server';
import type { Logger } from '../log';
import type { Netlink } from '../platform/netlink';
import type { Sysctl } from '../platform/sysctl';
import { SdpOfferer } from '../sdp/offerer';
import { Connection, type ConnectionEvent, OVERHEAD_IPV4, OVERHEAD_IPV6, type TunLike } from './connection';
import { Installer, type InstallerHooks } from './installer';
import { type EffectiveKeepalive, effectiveKeepalive } from './keepalive';
import type { KeepaliveStatus, Status } from './status';

/**
 * Carries out the Supervisor's "resolve endpoints" and "dial": resolves the SC names,
 * and builds one attempt (MTU from the WAN link, keepalive timers, an installer with
 * NAT44/DHCPv4 in router mode, and in production the UDP transport, the SDP offer
 * and the Connection). Everything here is I/O or its set-up; no policy.
 */

/** What the agent needs of one softwire attempt; `Connection` in production, a fake in unit tests. */
export interface ConnectionLike {
  readonly sc: Endpoint;
  start(): void;
  /** Goodbyes within `budgetMs`, then release everything; `release: false` keeps the DHCPv6 lease (a reconnect). */
  stop(budgetMs: number, opts?: { release?: boolean }): Promise<void>;
  /** Release at once, no goodbyes. */
  dispose(): void;
  /**
   * After stop() the tunnel may still hold its socket to retransmit StopCCN and answer
   * the SC's retransmissions (RFC 2661 5.7); `cb` runs when it let go.
   */
  onReleased?(cb: () => void): void;
  localAddress(): string;
  fillStatus(s: Status): void;
}

export interface DialRequest {
  sc: Endpoint;
  local: string;
  mtu: number;
  installer: Installer;
  previousPrefix?: Prefix;
  log: Logger;
  emit: (ev: ConnectionEvent) => void;
  /** HELLO/Echo timers for this dial: the configured ones, or NAT-safe ones when the local address is private/shared. */
  keepalive: EffectiveKeepalive;
}

/** What the dialer reads of the agent's deps (re-read on every dial: a reload replaces them). */
export interface DialerDeps {
  config: Config;
  secrets: Secrets;
  log: Logger;
  netlink: Netlink;
  sysctl: Sysctl;
  openTun: (name: string, opts?: { slotSize?: number }) => TunLike;
  duid: Uint8Array;
  scOverride?: Endpoint[];
  /** Builds the attempt's connection; default: a UDP transport and Node timers (dialUdp). The soak passes connectionOf over a fake network. */
  dial?: (r: DialRequest) => Promise<ConnectionLike>;
}

/** One dial carried out: the connection to start, its installer, the MTU it runs at. (The attempt's wiring is the Attempt core, attempt.ts.) */
export interface DialledAttempt {
  conn: ConnectionLike;
  installer: Installer;
  mtu: number;
  /** Child loggers of the attempt: pino children keep the level they were made with, so a reload sets theirs too. */
  logs: Logger[];
}

/**
 * The Connection of one dial over an opened transport, with its own timers: the
 * production dial and the soak (test/helpers/soak.ts, over a fake network and clock)
 * build it the same way, the dial's keepalive timers in place of the configured ones.
 */
export function connectionOf(r: DialRequest, d: Pick<DialerDeps, 'config' | 'secrets' | 'openTun' | 'duid'>, transport: DatagramTransport, scheduler: Scheduler): Connection {
  return new Connection(r.sc, {
    config: { ...d.config, helloInterval: r.keepalive.helloInterval, lcpEchoInterval: r.keepalive.lcpEchoInterval },
    secrets: d.secrets,
    log: r.log,
    scheduler,
    transport,
    openTun: d.openTun,
    installer: r.installer,
    duid: d.duid,
    previousPrefix: r.previousPrefix,
    mtu: r.mtu,
    emit: r.emit,
  });
}

export class Dialer {
  /** The keepalive timers of the last dial, for status. */
  keepalive: KeepaliveStatus | null = null;
  /** One for the agent's life: its lease table must outlive a reconnect, or a restarted server would hand out leased addresses. */
  private dhcpv4: Dhcpv4Server | undefined;
  /** Issue 16 item 8: offers for sdpOfferFile, made from the bound tunnel socket. */
  private readonly offerer = new SdpOfferer(new Date());

  constructor(private readonly deps: () => DialerDeps) {}

  private get log(): Logger {
    return this.deps().log;
  }

  async endpoints(): Promise<Endpoint[]> {
    // Issue 16 item 8: an SDP answer's c= may be a DNS name (RFC 8866 5.7); it is resolved like a configured one.
    const { scOverride, config } = this.deps();
    const sources = scOverride?.length ? scOverride.map((e) => ({ host: e.address, port: e.port })) : config.sc.map((s) => parseScAddress(s));
    const out: Endpoint[] = [];
    for (const { host, port } of sources) {
      if (isIP(host)) out.push({ address: host, port });
      else {
        try {
          for (const a of await lookup(host, { all: true })) out.push({ address: a.address, port });
        } catch (e) {
          this.log.warn({ host, err: (e as Error).message }, 'cannot resolve SC name');
        }
      }
    }
    return out;
  }

  /** Builds one attempt from `local` to `sc`; rejects when the transport cannot be opened. */
  async dial(sc: Endpoint, local: string, ipsecOverhead: number, previousPrefix: Prefix | undefined, hooks: InstallerHooks, emit: (ev: ConnectionEvent) => void): Promise<DialledAttempt> {
    const c = this.deps().config;
    const mtu = c.mtu ? c.mtu : (await this.wanMtu(local)) - (isIP(sc.address) === 6 ? OVERHEAD_IPV6 : OVERHEAD_IPV4) - ipsecOverhead;
    const keepalive = this.keepaliveFor(local);
    const installerLog = this.log.child({ part: 'installer' });
    const connLog = this.log.child({ sc: `${sc.address}:${sc.port}` });
    const installer = new Installer(
      this.deps().netlink,
      this.deps().sysctl,
      installerLog,
      { routeMetric: c.routeMetric, ipv4DefaultRoute: c.ncp !== 'ipv6' || c.ipv4DefaultRoute, scAddress: sc.address, provision: c.provision, nat44: this.nat44For(c), dhcpv4: this.dhcpv4For(c) },
      hooks,
    );
    const r: DialRequest = { sc, local, mtu, installer, previousPrefix, log: connLog, emit, keepalive };
    const d = this.deps().dial;
    const conn = await (d ? d(r) : this.dialUdp(r));
    return { conn, installer, mtu, logs: [installerLog, connLog] };
  }

  private async wanMtu(local: string): Promise<number> {
    try {
      const addrs = await this.deps().netlink.listAddresses();
      const a = addrs.find((x) => x.address === local);
      if (a) return (await this.deps().netlink.getLink(a.ifindex)).mtu;
    } catch {
      /* fall through */
    }
    return 1500;
  }

  private async dialUdp(r: DialRequest): Promise<ConnectionLike> {
    const d = this.deps();
    // Issue 16 item 7: an SCCRP from another SC address is admitted only with a tunnel secret (the LAC's Challenge proves it).
    const acceptOtherAddress = d.config.scAnswerFromOtherAddress && d.secrets.tunnelSecret !== undefined;
    if (d.config.scAnswerFromOtherAddress && !acceptOtherAddress) this.log.warn('scAnswerFromOtherAddress needs tunnelSecret: only the dialled address is answered');
    const transport = await openDataTransport(r.sc, r.local, { acceptOtherAddress, offload: d.config.offloads });
    // Issue 16 item 8: bound first, so the offer names the real address and port; a new one after a WAN change (draft 6).
    const file = d.config.sdpOfferFile;
    const offer = file ? this.offerer.bound(transport.local.address, transport.local.port) : undefined;
    if (offer && file) {
      try {
        await writeFile(`${file}.tmp`, offer, { mode: 0o644 });
        await rename(`${file}.tmp`, file);
        this.log.info({ file, local: `${transport.local.address}:${transport.local.port}` }, 'SDP offer written');
      } catch (e) {
        this.log.error({ file, err: (e as Error).message }, 'cannot write the SDP offer');
      }
    }
    return connectionOf(r, this.deps(), transport, new RealScheduler());
  }

  /**
   * Router role with IPv4 routed into the softwire: the LAN goes out behind the one
   * IPCP address. Not with netifd provisioning (OpenWrt's firewall masquerades) nor
   * in host mode (no LAN to translate).
   */
  private dhcpv4For(c: Config): Dhcpv4Server | undefined {
    const ipv4Routed = c.ncp !== 'ipv6' || c.ipv4DefaultRoute;
    const lan = c.lan[0]?.ifname;
    // The same conditions as NAT44; load.ts warns when dhcpv4 is set and one fails.
    if (c.mode !== 'router' || !c.dhcpv4 || !ipv4Routed || c.provision === 'netifd' || !lan) return undefined;
    if (!this.dhcpv4) {
      // Node's dgram cannot bind to one interface, so one server serves one LAN.
      if (c.lan.length > 1) this.log.warn({ lan }, 'dhcpv4: only the first lan interface is served');
      this.dhcpv4 = new Dhcpv4Server({ lan, netlink: this.deps().netlink, log: this.log.child({ part: 'dhcpv4' }) });
    }
    return this.dhcpv4;
  }

  private nat44For(c: Config): Nat44 | undefined {
    const ipv4Routed = c.ncp !== 'ipv6' || c.ipv4DefaultRoute;
    if (c.mode !== 'router' || !c.nat44 || !ipv4Routed || c.provision === 'netifd') return undefined;
    return new Nat44({ tun: c.tunDevice, lan: c.lan.map((l) => l.ifname) });
  }

  /** Timers for a dial from `local`; the reason is logged when it changes, not on every redial. */
  private keepaliveFor(local: string): EffectiveKeepalive {
    const c = this.deps().config;
    const k = effectiveKeepalive(c, explicitKeys(c), local);
    if (k.reason !== this.keepalive?.reason) {
      this.log.info({ helloInterval: k.helloInterval, lcpEchoInterval: k.lcpEchoInterval, natSafe: k.natSafe }, `keepalive: ${k.reason}`);
    }
    this.keepalive = { ...k, lcpEchoFailure: c.lcpEchoFailure, deadTimeS: k.lcpEchoInterval * (c.lcpEchoFailure + 1) };
    return k;
  }

}

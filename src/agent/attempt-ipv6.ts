import type { Config } from '../config/schema';
import type { TimerAction } from '../core/actions';
import type { Prefix } from '../ipv6/packet';
import { Slaac, type SlaacAction } from '../ipv6/slaac';
import { RouterSolicitor, type RsAction } from '../ipv6/rs';
import { Dhcp6Client, type Dhcp6Action, HOST_PROBE_SOLICITS, hostDhcp6Mode } from '../ipv6/dhcp6-client';
import { LeaseDad, type LeaseDadAction } from '../ipv6/dad';
import { parseNdPacket } from '../ipv6/nd';
import { Ipv6DecodeError } from '../ipv6/errors';
import type { SessionInput } from './session-core';
import type { ConnectionEvent, LogLevel, Provision, Settle } from './attempt-types';

/**
 * The IPv6 half of an attempt once IPV6CP is up: Router Solicitation, SLAAC (with
 * DAD), DHCPv6 (IA_NA and DNS for a host as the RA's M/O flags say, IA_PD for a
 * router) and DAD for leased addresses. Pure like the Attempt that owns it: it
 * reaches the outside only through the Attempt's typed hooks (Ipv6Host).
 */

export type Ipv6Core = 'rs' | 'slaac' | 'dhcp6' | 'dad';

/** What the Attempt lends its IPv6 part: core runs (gated, exceptions counted), sending, provisioning, setup inputs. */
export interface Ipv6Host {
  run<A>(core: Ipv6Core, input: () => readonly A[], handle: (a: A) => void): void;
  timer(core: Ipv6Core, a: TimerAction): void;
  sendIpv6(packet: Uint8Array): void;
  emit(ev: ConnectionEvent): void;
  log(level: LogLevel, msg: string, data?: Record<string, unknown>): void;
  install(op: Provision): void;
  settle(what: Settle): void;
  feed(ev: SessionInput): void;
  /** The RA's MTU option. */
  raMtu(mtu: number): void;
  /** DHCPv6 Release is over (answered or given up). */
  released(): void;
}

export interface Ipv6Options {
  config: Config;
  duid: Uint8Array;
  previousPrefix?: Prefix;
  random: () => number;
  clock: () => number;
  ourIid: Buffer;
  linkLocal: string;
  linkMtu: number;
}

export class Ipv6Provisioning {
  private readonly rs: RouterSolicitor;
  private readonly slaac: Slaac;
  private readonly dhcp: Dhcp6Client;
  /** Issue 16 item 2: DAD (and Optimistic use, item 10) for DHCPv6 IA_NA addresses. */
  private readonly leaseDad: LeaseDad;
  /** Host mode: the DHCPv6 exchange is the bounded M=O=0 probe, not one the RA announced. */
  private dhcpProbe = false;

  constructor(
    private readonly o: Ipv6Options,
    private readonly h: Ipv6Host,
  ) {
    const c = o.config;
    const rng = o.random;
    const clock = o.clock;
    // Issue 16 item 10: Optimistic DAD (RFC 4429) for SLAAC and DHCPv6 addresses.
    this.slaac = new Slaac({ iid: o.ourIid, clock, rng, linkMtu: o.linkMtu, optimistic: c.optimisticDad });
    this.leaseDad = new LeaseDad({ rng, clock, optimistic: c.optimisticDad });
    // Issue 16 item 10: no random delay before the first RS (RFC 4861 6.3.7's SHOULD spreads
    // many hosts starting on one link; a PPP link has one, and reconnects are already
    // jittered). l2tpns's one RA at IPV6CP open can arrive before our IPV6CP is open
    // and be lost, so the RS is what brings the RA: at once, not 0-1 s later.
    this.rs = new RouterSolicitor({ rng, source: o.linkLocal, maxDelayMs: 0 });
    this.dhcp = new Dhcp6Client({
      duid: o.duid,
      linkLocal: o.linkLocal,
      clock,
      rng,
      mode: c.mode === 'router' ? 'stateful' : 'stateless',
      requestPrefix: c.mode === 'router',
      prefixLengthHint: c.prefixLengthHint || undefined,
      previousPrefix: o.previousPrefix,
      // Issue 16 item 1: a host asks for IA_NA whenever it solicits (hostDhcp picks when).
      requestAddress: c.mode === 'router' ? 'if-managed' : 'always',
      rapidCommit: c.rapidCommit,
      requestDns: true,
      // l2tpns ignores Release; two tries keep shutdown inside its 3 s budget.
      releaseMaxRc: 1,
    });
  }

  start(): void {
    this.h.run('rs', () => this.rs.start(), this.onRs);
    // RFC 7084 WPD-2: a router solicits IA_PD whatever the RA's M/O flags say.
    if (this.o.config.mode === 'router') this.h.run('dhcp6', () => this.dhcp.start(), this.onDhcp);
  }

  /** An IPv6 control packet from the SC (classifyControl's kinds the agent handles). */
  receive(kind: 'ra' | 'dhcpv6-client' | 'ns' | 'na', payload: Buffer): void {
    if (kind === 'dhcpv6-client') return this.h.run('dhcp6', () => this.dhcp.receive(payload), this.onDhcp);
    this.h.run('slaac', () => this.slaac.receive(payload), this.onSlaac);
    // DAD of leased addresses watches NS and NA too.
    if (kind !== 'ra') this.h.run('dad', () => this.leaseNd(payload), this.onLeaseDad);
  }

  /** Each core's timers, routed back to it. */
  readonly timers: Record<Ipv6Core, (name: string) => void> = {
    rs: (n) => this.h.run('rs', () => this.rs.timerFired(n), this.onRs),
    slaac: (n) => this.h.run('slaac', () => this.slaac.timerFired(n), this.onSlaac),
    dhcp6: (n) => this.h.run('dhcp6', () => this.dhcp.timerFired(n), this.onDhcp),
    dad: (n) => this.h.run('dad', () => this.leaseDad.timerFired(n), this.onLeaseDad),
  };

  setLinkMtu(mtu: number): void {
    this.slaac.setLinkMtu(mtu);
  }

  /** Whether DHCPv6 holds (or is after) something a Release should give back. */
  get releasable(): boolean {
    return this.dhcp.status().state !== 'idle';
  }

  release(): void {
    this.h.run('dhcp6', () => this.dhcp.release(), this.onDhcp);
  }

  /** After each DHCPv6 input: whether an exchange that may bring DNS still runs ("up" waits for it). */
  dnsPending(): void {
    const ds = this.dhcp.status();
    const st = ds.state;
    // A host's M=O=0 probe (issue 16 item 1) asks a server the SC did not announce: "up" does not wait for it.
    // Nor does a Solicit the server already answered with no lease (RFC 8415 18.2.9: that Advertise, and
    // its DNS, is ignored): it keeps soliciting for an IA_NA on its backoff but will not bring DNS soon.
    const leaseless = st === 'soliciting' && (ds.counters.ignored['advertise-without-leases'] ?? 0) > 0;
    const probing = this.dhcpProbe && st === 'soliciting';
    this.h.feed({ type: 'dns-pending', pending: !probing && !leaseless && (st === 'soliciting' || st === 'requesting' || st === 'informing') });
  }

  status(): { slaacDrops: Record<string, number>; dhcpIgnored: Record<string, number> } {
    return { slaacDrops: this.slaac.status().drops, dhcpIgnored: this.dhcp.status().counters.ignored };
  }

  private readonly onRs = (a: RsAction): void => {
    switch (a.type) {
      case 'timer-start':
      case 'timer-stop':
        return this.h.timer('rs', a);
      case 'send':
        return this.h.sendIpv6(a.packet);
      case 'rs-gave-up':
        return this.h.log('warn', 'no Router Advertisement after soliciting', { sent: a.sent });
    }
  };

  private readonly onSlaac = (a: SlaacAction): void => {
    const h = this.h;
    switch (a.type) {
      case 'timer-start':
      case 'timer-stop':
        return h.timer('slaac', a);
      case 'send':
        return h.sendIpv6(a.packet);
      case 'ra-flags':
        h.run('rs', () => this.rs.raReceived(), this.onRs);
        this.dhcp.raFlags(a.managed);
        if (this.o.config.mode === 'host') this.hostDhcp(a.managed, a.other);
        return;
      case 'address':
        // Optimistic (RFC 4429 2.1): deprecated in the kernel until DAD passes, so a preferred address wins source selection.
        h.emit({ type: 'progress', layer: 'ipv6', message: `address ${a.address}/${a.prefixLength} (SLAAC${a.optimistic ? ', optimistic while DAD runs' : ''})` });
        h.install({ type: 'address', source: 'slaac', address: a.address, prefixLength: 64, validLifetime: a.validLifetime, preferredLifetime: a.optimistic ? 0 : a.preferredLifetime });
        // An Optimistic address counts as usable (RFC 4429 3.1: it may be used while DAD runs), so "up" need not wait for DAD.
        return h.settle('address');
      case 'address-removed':
        if (a.reason === 'duplicate') h.log('error', 'optimistic SLAAC address is a duplicate; removed', { address: a.address });
        h.install({ type: 'remove-address', source: 'slaac', address: a.address, prefixLength: 64 });
        return h.settle('address');
      case 'dad-failed':
        return h.log('error', 'duplicate address detected on the softwire; address not used', { address: a.address });
      case 'default-route':
        h.install({ type: 'default-route', present: a.present });
        return h.settle(a.present ? 'default-route' : 'no-default-route');
      case 'dns':
        return h.install({ type: 'dns', source: 'ra', servers: a.servers, search: a.search });
      case 'mtu':
        h.log('info', 'RA MTU option', { mtu: a.mtu });
        return h.raMtu(a.mtu);
    }
  };

  private readonly onDhcp = (a: Dhcp6Action): void => {
    const h = this.h;
    switch (a.type) {
      case 'timer-start':
      case 'timer-stop':
        return h.timer('dhcp6', a);
      case 'send':
        return h.sendIpv6(a.packet);
      case 'prefix':
        h.emit({ type: 'progress', layer: 'ipv6', message: `delegated prefix ${a.prefix}/${a.length}` });
        h.emit({ type: 'prefix', prefix: { prefix: a.prefix, length: a.length } });
        h.install({ type: 'delegated-prefix', prefix: a.prefix, length: a.length, preferredLifetime: a.preferredLifetime, validLifetime: a.validLifetime });
        // The installer's LAN hook numbers and advertises the LANs inside its queue.
        return h.settle('prefix');
      case 'prefix-removed':
        h.log('info', 'delegated prefix removed', { prefix: a.prefix, length: a.length, reason: a.reason });
        h.install({ type: 'no-delegated-prefix' });
        return h.feed({ type: 'prefix', present: false });
      case 'address':
        // Issue 16 item 2: DAD before use (or Optimistic use while it runs); LeaseDad installs.
        return h.run('dad', () => this.leaseDad.leased(a.address, a.validLifetime, a.preferredLifetime), this.onLeaseDad);
      case 'address-removed':
        return h.run('dad', () => this.leaseDad.removed(a.address), this.onLeaseDad);
      case 'dns':
        return h.install({ type: 'dns', source: 'dhcp6', servers: a.servers, search: a.domains });
      case 'released':
        return h.released();
      case 'failed':
        return h.log('warn', 'DHCPv6', { reason: a.reason, terminal: a.terminal });
    }
  };

  /** Host mode: what to ask DHCPv6 for follows the RA's M and O flags (hostDhcp6Mode; issue 16 items 1, 2). */
  private hostDhcp(managed: boolean, other: boolean): void {
    const dhcp = this.dhcp;
    const want = hostDhcp6Mode(managed, other);
    const st = dhcp.state;
    const idle = st === 'idle' || st === 'stopped' || st === 'failed' || st === 'released';
    const holding = st === 'requesting' || st === 'bound' || st === 'renewing' || st === 'rebinding' || st === 'declining';
    if (want !== 'probe') this.dhcpProbe = false;
    if (want === 'address') {
      if (holding) return;
      if (!idle) this.h.run('dhcp6', () => dhcp.stop(), this.onDhcp);
      this.h.run('dhcp6', () => dhcp.start({ mode: 'stateful', solicitMaxRc: 0 }), this.onDhcp);
    } else if (want === 'information') {
      // A binding (or a Solicit under way) brings the DNS too.
      if (!idle) return;
      this.h.run('dhcp6', () => dhcp.start({ mode: 'stateless' }), this.onDhcp);
    } else if (st === 'idle') {
      this.dhcpProbe = true;
      this.h.run('dhcp6', () => dhcp.start({ mode: 'stateful', solicitMaxRc: HOST_PROBE_SOLICITS }), this.onDhcp);
    }
  }

  private leaseNd(payload: Buffer): LeaseDadAction[] {
    try {
      return this.leaseDad.receive(parseNdPacket(payload));
    } catch (e) {
      if (e instanceof Ipv6DecodeError) return []; // counted by SLAAC, which saw the same packet
      throw e;
    }
  }

  private readonly onLeaseDad = (a: LeaseDadAction): void => {
    const h = this.h;
    switch (a.type) {
      case 'timer-start':
      case 'timer-stop':
        return h.timer('dad', a);
      case 'send':
        return h.sendIpv6(a.packet);
      case 'install':
        h.emit({ type: 'progress', layer: 'ipv6', message: `address ${a.address}/128 (DHCPv6${a.optimistic ? ', optimistic while DAD runs' : ''})` });
        h.install({ type: 'address', source: 'dhcp6', address: a.address, prefixLength: 128, validLifetime: a.validLifetime, preferredLifetime: a.preferredLifetime });
        // Host mode with M=1 (no SLAAC): the IA_NA address is the global address "up" waits for; Optimistic counts (RFC 4429 3.1).
        return h.settle('address');
      case 'uninstall':
        h.install({ type: 'remove-address', source: 'dhcp6', address: a.address, prefixLength: 128 });
        return h.settle('address');
      case 'decline':
        h.log('error', 'DHCPv6 address is a duplicate on the softwire; declining it (RFC 8415 18.2.8)', { address: a.address });
        return h.run('dhcp6', () => this.dhcp.decline(a.address), this.onDhcp);
    }
  };
}

import type { RaBackend, LanInterface } from '../config/schema';
import type { Scheduler } from '../core/scheduler';
import { formatPrefix, maskPrefix } from '../ipv6/address';
import { INFINITE_LIFETIME } from '../ipv6/nd';
import type { AddressKey, AddressSpec, RouteKey, RouteSpec } from '../platform/netlink';
import type { Rng } from '../util/random';
import {
  type DelegatedPrefix,
  diffPlans,
  LAN_PREFIX_LENGTH,
  type LanAssignment,
  planPrefix,
  type PrefixPlan,
} from './prefix-plan';
import { type RadvdControlOptions, RadvdControl, type RadvdInterface, renderRadvdConf } from './radvd';
import type { RaContent, RaCoreOptions, RaPrefix } from './ra-core';
import { RaSender, type RaSenderOptions } from './ra-sender';

/** One LAN's numbering as `softwire status` shows it (agent/status.ts re-exports it). */
export interface LanStatus {
  ifname: string;
  prefix: string;
  address: string;
}

/**
 * Applies a prefix plan to the router: the router address (/64 + ::1) on each
 * LAN interface with the lease's lifetimes, the unreachable route for the whole
 * delegated prefix (RFC 7084 WPD-5), IPv6 forwarding, and whatever announces the
 * prefixes to LAN hosts:
 *
 * - builtin: one RaSender per LAN interface (this agent sends the RAs);
 * - odhcpd: addresses only. On OpenWrt odhcpd (with `ra server` on the interface)
 *   builds its RAs from the global addresses it sees on the interface through
 *   netlink, lifetimes included, so configuring the address is the whole job;
 *   a deprecated address (preferred 0) is announced deprecated the same way;
 * - radvd: addresses plus a generated radvd.conf, reloaded with SIGHUP;
 * - none: addresses only; nobody announces them.
 *
 * It remembers exactly what it installed so that clear() can take it all away
 * (and nothing else), including the forwarding switch if it was the one to turn
 * it on.
 */

/** The netlink calls used here (Netlink implements them). */
export interface LanNetlink {
  addAddress(spec: AddressSpec): Promise<void>;
  deleteAddress(key: AddressKey): Promise<void>;
  addRoute(spec: RouteSpec): Promise<void>;
  deleteRoute(key: RouteKey): Promise<void>;
}

/** The sysctl calls used here (Sysctl implements them). */
export interface LanSysctl {
  ipv6Forwarding(): Promise<boolean>;
  setIpv6Forwarding(on: boolean): Promise<void>;
}

/** What the softwire offers the LAN besides the prefix. */
export interface LanServices {
  dns: string[];
  domains: string[];
  mtu?: number;
  /** The softwire carries a default route: announce ourselves as a default router. */
  defaultRoute: boolean;
}

/** The RaSender surface the provisioner drives (replaceable in tests). */
export interface LanRaSender {
  update(content: RaContent): void;
  stop(opts?: { now?: boolean }): Promise<void>;
  close(): void;
}

export interface LanProvisionerOptions {
  lan: readonly LanInterface[];
  backend: RaBackend;
  netlink: LanNetlink;
  sysctl: LanSysctl;
  scheduler: Scheduler;
  rng: Rng;
  ra?: Omit<RaCoreOptions, 'rng' | 'clock'>;
  radvd?: RadvdControlOptions;
  /** How long a replaced /64 stays on the interface (deprecated) before removal. Default 300 s. */
  deprecationHoldS?: number;
  /** Turn forwarding back off in clear() if apply() turned it on. Default true. */
  restoreForwarding?: boolean;
  openRaSender?: (ifname: string, opts: RaSenderOptions) => LanRaSender;
  onWarning?: (message: string) => void;
}

export interface ApplyResult {
  plan: PrefixPlan | undefined;
  /** Plan errors and failed kernel operations; the rest was applied. */
  errors: string[];
}

type Lifetimes = Pick<RaPrefix, 'preferredLifetime' | 'validLifetime'>;

interface Installed {
  ifname: string;
  address: string;
  prefix: RaPrefix;
}

interface Held extends Installed {
  timerKey: string;
  removeAt: number;
}

/** rtm_protocol of routes the kernel makes for an address's prefix. */
const RTPROT_KERNEL = 2;
const NOT_THERE = new Set(['EADDRNOTAVAIL', 'ESRCH', 'ENOENT', 'ENODEV']);

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function errCode(e: unknown): string | undefined {
  return (e as { code?: string }).code;
}

function keyOf(a: { ifname: string; address: string }): string {
  return `${a.ifname} ${a.address}`;
}

export class LanProvisioner {
  private plan: PrefixPlan | undefined;
  private appliedAt = 0;
  private services: LanServices = { dns: [], domains: [], defaultRoute: false };
  private readonly addresses = new Map<string, Installed>();
  private readonly held = new Map<string, Held>();
  private readonly routes = new Set<string>();
  private readonly senders = new Map<string, LanRaSender>();
  private readonly radvd: RadvdControl | undefined;
  private turnedForwardingOn = false;
  private forwardingChecked = false;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly holdS: number;

  constructor(private readonly o: LanProvisionerOptions) {
    this.holdS = o.deprecationHoldS ?? 300;
    if (!(Number.isInteger(this.holdS) && this.holdS >= 1)) throw new RangeError(`deprecationHoldS ${this.holdS}`);
    if (o.backend === 'radvd') {
      if (!o.radvd) throw new RangeError('the radvd backend needs radvd.configPath and radvd.pidFile');
      this.radvd = new RadvdControl(o.radvd);
    }
  }

  /** The current plan's LAN interfaces, for the status model. */
  status(): LanStatus[] {
    return (this.plan?.lans ?? []).map((a) => ({ ifname: a.ifname, prefix: formatPrefix(a.prefix), address: a.routerAddress }));
  }

  get currentPlan(): PrefixPlan | undefined {
    return this.plan;
  }

  /**
   * A delegated prefix arrived, was renewed or changed (`delegated`), or went away
   * (null, or a valid lifetime of 0). Calls are serialised.
   */
  apply(delegated: DelegatedPrefix | null, services?: LanServices): Promise<ApplyResult> {
    return this.serial(() => this.doApply(delegated, services));
  }

  /** DNS, MTU or default route changed; the prefix did not. */
  updateServices(services: LanServices): Promise<void> {
    return this.serial(async () => {
      this.services = services;
      await this.announce();
    });
  }

  /** Removes everything installed: final RAs first, then addresses, routes and forwarding. */
  clear(): Promise<void> {
    return this.serial(() => this.doClear());
  }

  /** Resolves once queued work (including timer-driven removals) has finished. */
  async whenIdle(): Promise<void> {
    for (let q = this.queue; ; q = this.queue) {
      await q;
      if (q === this.queue) return;
    }
  }

  private serial<T>(f: () => Promise<T>): Promise<T> {
    const run = this.queue.then(f);
    this.queue = run.catch(() => {});
    return run;
  }

  private async doApply(delegated: DelegatedPrefix | null, services?: LanServices): Promise<ApplyResult> {
    if (services) this.services = services;
    const errors: string[] = [];
    const next = delegated && delegated.validLifetime > 0 ? planPrefix(delegated, this.o.lan) : undefined;
    if (next) errors.push(...next.errors);
    const diff = diffPlans(this.plan, next);
    const now = this.o.scheduler.now();

    for (const a of diff.remove) await this.removeAddress(a.ifname, a.routerAddress, errors);
    for (const a of diff.deprecate) await this.deprecate(a, now, errors);

    if (next) {
      await this.ensureForwarding(errors);
      const lease = leasePrefix(next.delegated);
      for (const a of [...diff.add, ...diff.keep]) await this.install(a, lease, errors);
      for (const r of diff.addRoutes) {
        try {
          await this.o.netlink.addRoute({ destination: r, type: 'unreachable', replace: true });
          this.routes.add(r);
        } catch (e) {
          errors.push(`unreachable route ${r}: ${errText(e)}`);
        }
      }
    }
    for (const r of diff.removeRoutes) await this.removeRoute(r, errors);

    this.plan = next;
    this.appliedAt = now;
    await this.announce(errors);
    return { plan: next, errors };
  }

  private async ensureForwarding(errors: string[]): Promise<void> {
    if (this.forwardingChecked) return;
    try {
      if (!(await this.o.sysctl.ipv6Forwarding())) {
        await this.o.sysctl.setIpv6Forwarding(true);
        this.turnedForwardingOn = true;
      }
      this.forwardingChecked = true;
    } catch (e) {
      errors.push(`IPv6 forwarding: ${errText(e)}`);
    }
  }

  /** Adds or refreshes the router address with the lease's lifetimes. */
  private async install(a: LanAssignment, lease: Lifetimes, errors: string[]): Promise<void> {
    const key = keyOf({ ifname: a.ifname, address: a.routerAddress });
    const held = this.held.get(key);
    if (held) {
      // The /64 came back before its removal: keep it, fresh.
      this.o.scheduler.clear(held.timerKey);
      this.held.delete(key);
    }
    const valid = Math.max(1, lease.validLifetime);
    try {
      await this.o.netlink.addAddress({
        link: a.ifname,
        address: a.routerAddress,
        prefixLength: a.prefix.length,
        validLifetime: valid,
        preferredLifetime: Math.min(lease.preferredLifetime, valid),
        replace: true,
      });
      this.addresses.set(key, { ifname: a.ifname, address: a.routerAddress, prefix: { ...a.prefix, ...lease } });
    } catch (e) {
      errors.push(`${a.ifname}: address ${a.routerAddress}/${a.prefix.length}: ${errText(e)}`);
    }
  }

  /**
   * Keeps a leaving /64 on its interface with preferred lifetime 0 for the hold
   * time (so hosts with addresses in it still reach the router and each other
   * while they move to the new prefix), then removes it.
   */
  private async deprecate(a: LanAssignment, now: number, errors: string[]): Promise<void> {
    const key = keyOf({ ifname: a.ifname, address: a.routerAddress });
    const inst = this.addresses.get(key);
    if (!inst) return;
    this.addresses.delete(key);
    const remaining = this.remainingLease(inst.prefix, now).validLifetime;
    const valid = Math.max(1, Math.min(remaining, this.holdS));
    try {
      await this.o.netlink.addAddress({
        link: a.ifname,
        address: a.routerAddress,
        prefixLength: a.prefix.length,
        validLifetime: valid,
        preferredLifetime: 0,
        replace: true,
      });
    } catch (e) {
      errors.push(`${a.ifname}: deprecate ${a.routerAddress}: ${errText(e)}`);
    }
    const timerKey = `lan:hold:${key}`;
    const entry: Held = {
      ...inst,
      prefix: { ...inst.prefix, preferredLifetime: 0, validLifetime: valid },
      timerKey,
      removeAt: now + valid * 1000,
    };
    this.held.set(key, entry);
    this.o.scheduler.set(timerKey, valid * 1000, () => {
      void this.serial(async () => {
        if (this.held.get(key) !== entry) return;
        this.held.delete(key);
        const errs: string[] = [];
        await this.removeAddress(entry.ifname, entry.address, errs);
        await this.announce(errs);
        for (const m of errs) this.warn(m);
      });
    });
  }

  private async removeAddress(ifname: string, address: string, errors: string[]): Promise<void> {
    const key = keyOf({ ifname, address });
    this.addresses.delete(key);
    const held = this.held.get(key);
    if (held) {
      this.o.scheduler.clear(held.timerKey);
      this.held.delete(key);
    }
    try {
      await this.o.netlink.deleteAddress({ link: ifname, address, prefixLength: LAN_PREFIX_LENGTH });
    } catch (e) {
      // Gone already (interface removed, lifetime expired): that is the goal.
      if (!NOT_THERE.has(errCode(e) ?? '')) errors.push(`${ifname}: remove ${address}/${LAN_PREFIX_LENGTH}: ${errText(e)}`);
    }
    // An address with finite lifetimes leaves its kernel prefix route behind when it is
    // deleted (the kernel lets that route expire on its own, up to the valid lifetime):
    // the old /64 would stay routed onto the LAN after a renumbering.
    const net = `${maskPrefix(address, LAN_PREFIX_LENGTH)}/${LAN_PREFIX_LENGTH}`;
    try {
      await this.o.netlink.deleteRoute({ destination: net, link: ifname, protocol: RTPROT_KERNEL });
    } catch (e) {
      if (!NOT_THERE.has(errCode(e) ?? '')) errors.push(`${ifname}: remove route ${net}: ${errText(e)}`);
    }
  }

  private async removeRoute(r: string, errors: string[]): Promise<void> {
    if (!this.routes.has(r)) return;
    this.routes.delete(r);
    try {
      await this.o.netlink.deleteRoute({ destination: r, type: 'unreachable' });
    } catch (e) {
      if (!NOT_THERE.has(errCode(e) ?? '')) errors.push(`remove unreachable route ${r}: ${errText(e)}`);
    }
  }

  /** Lifetimes of `p` as they stand `now` (they were remaining at the last apply). */
  private remainingLease(p: RaPrefix, now: number): Lifetimes {
    const elapsed = Math.floor((now - this.appliedAt) / 1000);
    const left = (v: number) => (v >= INFINITE_LIFETIME ? INFINITE_LIFETIME : Math.max(0, v - elapsed));
    return { preferredLifetime: left(p.preferredLifetime), validLifetime: left(p.validLifetime) };
  }

  /** Brings the announcing backend in line with the installed addresses. */
  private async announce(errors?: string[]): Promise<void> {
    const now = this.o.scheduler.now();
    const byIf = new Map<string, RaPrefix[]>();
    for (const inst of this.addresses.values()) {
      const list = byIf.get(inst.ifname) ?? [];
      list.push({ prefix: inst.prefix.prefix, length: inst.prefix.length, ...this.remainingLease(inst.prefix, now) });
      byIf.set(inst.ifname, list);
    }
    if (this.o.backend === 'builtin') {
      for (const ifname of new Set([...byIf.keys(), ...this.senders.keys()])) {
        let sender = this.senders.get(ifname);
        const prefixes = byIf.get(ifname) ?? [];
        if (!sender) {
          if (prefixes.length === 0) continue;
          try {
            sender = this.openSender(ifname);
          } catch (e) {
            const m = `${ifname}: cannot start Router Advertisements: ${errText(e)}`;
            if (errors) errors.push(m);
            else this.warn(m);
            continue;
          }
          this.senders.set(ifname, sender);
        }
        // An interface that lost its prefix keeps advertising it deprecated (the core does that).
        sender.update({ ...this.services, prefixes });
      }
    } else if (this.o.backend === 'radvd' && this.radvd) {
      const interfaces: RadvdInterface[] = [];
      for (const ifname of new Set([...byIf.keys(), ...[...this.held.values()].map((h) => h.ifname)])) {
        const deprecated = [...this.held.values()]
          .filter((h) => h.ifname === ifname)
          .map((h) => ({ ...h.prefix, preferredLifetime: 0, validLifetime: Math.max(1, Math.floor((h.removeAt - now) / 1000)) }));
        interfaces.push({ ifname, prefixes: byIf.get(ifname) ?? [], deprecated });
      }
      await this.writeRadvd(interfaces, this.services, errors);
    }
  }

  private async writeRadvd(interfaces: RadvdInterface[], services: LanServices, errors?: string[]): Promise<void> {
    try {
      const text = renderRadvdConf({ interfaces, ...services }, this.o.ra);
      const r = await this.radvd!.apply(text);
      if (r.warning) this.warn(r.warning);
    } catch (e) {
      const m = `radvd configuration: ${errText(e)}`;
      if (errors) errors.push(m);
      else this.warn(m);
    }
  }

  private openSender(ifname: string): LanRaSender {
    const opts: RaSenderOptions = {
      ...this.o.ra,
      rng: this.o.rng,
      scheduler: this.o.scheduler,
      onWarning: (m) => this.warn(m),
    };
    return this.o.openRaSender ? this.o.openRaSender(ifname, opts) : new RaSender(ifname, opts);
  }

  private async doClear(): Promise<void> {
    const errors: string[] = [];
    const now = this.o.scheduler.now();
    // Hosts hear "no longer a router, prefixes deprecated" before the addresses go. Not
    // held back by the RA rate limit: clear() runs inside the agent's teardown budget.
    await Promise.all([...this.senders.values()].map((s) => s.stop({ now: true })));
    this.senders.clear();
    if (this.radvd) {
      // radvd keeps running (it is not ours); leave it announcing a withdrawal.
      const interfaces: RadvdInterface[] = [];
      for (const inst of [...this.addresses.values(), ...this.held.values()]) {
        let i = interfaces.find((x) => x.ifname === inst.ifname);
        if (!i) interfaces.push((i = { ifname: inst.ifname, prefixes: [], deprecated: [] }));
        const left = this.remainingLease(inst.prefix, now).validLifetime;
        i.deprecated!.push({ ...inst.prefix, preferredLifetime: 0, validLifetime: Math.max(1, Math.min(left, this.holdS)) });
      }
      await this.writeRadvd(interfaces, { ...this.services, defaultRoute: false }, errors);
    }
    for (const inst of [...this.addresses.values(), ...this.held.values()]) {
      await this.removeAddress(inst.ifname, inst.address, errors);
    }
    for (const r of [...this.routes]) await this.removeRoute(r, errors);
    if (this.turnedForwardingOn && (this.o.restoreForwarding ?? true)) {
      try {
        await this.o.sysctl.setIpv6Forwarding(false);
        this.turnedForwardingOn = false;
      } catch (e) {
        errors.push(`IPv6 forwarding: ${errText(e)}`);
      }
    }
    this.forwardingChecked = false;
    this.plan = undefined;
    for (const m of errors) this.warn(m);
  }

  private warn(message: string): void {
    this.o.onWarning?.(message);
  }
}

function leasePrefix(d: DelegatedPrefix): Lifetimes {
  return { preferredLifetime: Math.min(d.preferredLifetime, d.validLifetime), validLifetime: d.validLifetime };
}

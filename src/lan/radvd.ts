import { readFile } from 'node:fs/promises';
import { formatPrefix, isValidAddress, maskPrefix } from '../ipv6/address';
import { isValidDomainName } from '../ipv6/dnsname';
import { INFINITE_LIFETIME } from '../ipv6/nd';
import { writeFileAtomic } from '../platform/state-store';
import { type RaPrefix, validateRaOptions, type RaCoreOptions } from './ra-core';

/**
 * The radvd backend: the agent renders radvd.conf for the LAN prefixes and asks
 * a running radvd to reload it with SIGHUP. radvd does the timing; we only
 * describe what to announce. Every value is checked before it is written: the
 * interface name and DNS data end up inside a brace-structured file, and a name
 * holding "}" or ";" would let upstream data rewrite the configuration.
 */

export interface RadvdInterface {
  ifname: string;
  prefixes: RaPrefix[];
  /** Prefixes leaving: announced with AdvPreferredLifetime 0. */
  deprecated?: RaPrefix[];
}

export interface RadvdContent {
  interfaces: RadvdInterface[];
  dns: string[];
  domains: string[];
  mtu?: number;
  defaultRoute: boolean;
}

export type RadvdOptions = Omit<RaCoreOptions, 'rng' | 'clock' | 'finalRas' | 'deprecationRas'>;

/** Characters radvd's lexer takes in an interface name that cannot break its grammar. */
const SAFE_IFNAME = /^[A-Za-z0-9._@-]{1,15}$/;

export class RadvdConfigError extends Error {
  override readonly name = 'RadvdConfigError';
}

function lifetime(v: number): string {
  return v >= INFINITE_LIFETIME ? 'infinity' : String(v);
}

function onOff(b: boolean): string {
  return b ? 'on' : 'off';
}

/** radvd.conf text for `content`; throws RadvdConfigError for a value it refuses to write. */
export function renderRadvdConf(content: RadvdContent, options: RadvdOptions = {}): string {
  const o = validateRaOptions(options);
  const servers = content.dns.filter((s) => {
    if (!isValidAddress(s)) throw new RadvdConfigError(`refusing DNS server ${JSON.stringify(s)}: not an IPv6 address`);
    return true;
  });
  const domains = content.domains.filter((d) => {
    if (!isValidDomainName(d)) throw new RadvdConfigError(`refusing search domain ${JSON.stringify(d)}`);
    return true;
  });
  const mtu = content.mtu && content.mtu >= 1280 ? content.mtu : 0;
  const out: string[] = ['# Written by softwire for the LAN prefixes of the softwire. Do not edit.'];
  for (const iface of content.interfaces) {
    if (!SAFE_IFNAME.test(iface.ifname)) throw new RadvdConfigError(`refusing interface name ${JSON.stringify(iface.ifname)}`);
    out.push(`interface ${iface.ifname} {`);
    out.push('\tAdvSendAdvert on;');
    out.push(`\tMinRtrAdvInterval ${o.minIntervalS};`);
    out.push(`\tMaxRtrAdvInterval ${o.maxIntervalS};`);
    out.push(`\tAdvDefaultLifetime ${content.defaultRoute ? o.routerLifetimeS : 0};`);
    out.push(`\tAdvManagedFlag ${onOff(o.managed)};`);
    out.push(`\tAdvOtherConfigFlag ${onOff(o.other)};`);
    out.push(`\tAdvCurHopLimit ${o.curHopLimit};`);
    if (mtu) out.push(`\tAdvLinkMTU ${mtu};`);
    const all = [
      ...iface.prefixes.map((p) => ({ p, deprecated: false })),
      ...(iface.deprecated ?? []).map((p) => ({ p, deprecated: true })),
    ];
    for (const { p, deprecated } of all) {
      if (!isValidAddress(p.prefix) || !Number.isInteger(p.length) || p.length < 1 || p.length > 128)
        throw new RadvdConfigError(`refusing prefix ${JSON.stringify(p.prefix)}/${p.length}`);
      const valid = Math.min(p.validLifetime, o.validLimitS);
      const preferred = deprecated ? 0 : Math.min(p.preferredLifetime, o.preferredLimitS, valid);
      out.push(`\tprefix ${formatPrefix({ prefix: maskPrefix(p.prefix, p.length), length: p.length })} {`);
      out.push('\t\tAdvOnLink on;');
      out.push('\t\tAdvAutonomous on;');
      out.push(`\t\tAdvValidLifetime ${lifetime(valid)};`);
      out.push(`\t\tAdvPreferredLifetime ${lifetime(preferred)};`);
      // Lease lifetimes are finite: let radvd count them down between our rewrites (RFC 9096: never longer than the lease).
      if (valid < INFINITE_LIFETIME) out.push('\t\tDecrementLifetimes on;');
      out.push('\t};');
    }
    if (servers.length > 0) {
      out.push(`\tRDNSS ${servers.join(' ')} {`);
      out.push(`\t\tAdvRDNSSLifetime ${lifetime(o.dnsLifetimeS)};`);
      out.push('\t};');
    }
    if (domains.length > 0) {
      out.push(`\tDNSSL ${domains.map((d) => d.replace(/\.$/, '')).join(' ')} {`);
      out.push(`\t\tAdvDNSSLLifetime ${lifetime(o.dnsLifetimeS)};`);
      out.push('\t};');
    }
    out.push('};');
  }
  return `${out.join('\n')}\n`;
}

export interface RadvdControlOptions {
  configPath: string;
  pidFile: string;
  /** Sends a signal; process.kill by default (replaceable in tests). */
  kill?: (pid: number, signal: NodeJS.Signals) => void;
}

export interface RadvdApplyResult {
  written: boolean;
  /** Whether radvd was told to reload; false with `warning` when it is not running. */
  reloaded: boolean;
  warning?: string;
}

/** Writes the configuration (when changed) and sends SIGHUP to the radvd in the pid file. */
export class RadvdControl {
  private last: string | undefined;

  constructor(private readonly o: RadvdControlOptions) {}

  async apply(text: string): Promise<RadvdApplyResult> {
    if (text === this.last) return { written: false, reloaded: false };
    await writeFileAtomic(this.o.configPath, text, { mode: 0o644 });
    this.last = text;
    const pid = await readPid(this.o.pidFile);
    if (typeof pid === 'string') return { written: true, reloaded: false, warning: pid };
    try {
      (this.o.kill ?? process.kill)(pid, 'SIGHUP');
      return { written: true, reloaded: true };
    } catch (e) {
      return { written: true, reloaded: false, warning: `radvd (pid ${pid}) not signalled: ${(e as Error).message}` };
    }
  }
}

/** The pid in `file`, or a message saying why there is none. */
export async function readPid(file: string): Promise<number | string> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    return `radvd pid file ${file} unreadable (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): is radvd running?`;
  }
  const t = text.trim();
  // Never signal 0, 1 or a negative pid (a process group): only a plain positive number > 1.
  if (!/^[0-9]{1,10}$/.test(t) || Number(t) <= 1 || Number(t) > 0x3fffffff) return `radvd pid file ${file} holds no valid pid`;
  return Number(t);
}

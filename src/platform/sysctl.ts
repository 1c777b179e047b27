import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { needsCapability } from './privileges';

/**
 * Reads and writes the few /proc/sys values the agent needs. Like netlink,
 * net.* values belong to the network namespace of the calling process.
 *
 * Keys are handled as path segments, never as a dotted string split on ".",
 * because interface names may contain dots (VLANs: "eth0.100").
 */

/** Per-interface IPv6 settings under net/ipv6/conf/IF/. */
export type Ipv6Setting = 'accept_ra' | 'forwarding' | 'disable_ipv6' | 'autoconf' | 'accept_dad';

/** The values each setting accepts, so a typo fails here, not as a kernel EINVAL. */
const IPV6_RANGES: Record<Ipv6Setting, readonly number[]> = {
  accept_ra: [0, 1, 2],
  forwarding: [0, 1],
  disable_ipv6: [0, 1],
  autoconf: [0, 1],
  accept_dad: [0, 1, 2],
};

export const DEFAULT_SYSCTL_ROOT = '/proc/sys';

export class SysctlError extends Error {
  override readonly name = 'SysctlError';
  constructor(
    /** Dotted key as sysctl(8) prints it, e.g. "net.ipv6.conf.eth0.accept_ra". */
    readonly key: string,
    detail: string,
    readonly code?: string,
  ) {
    super(`sysctl ${key}: ${detail}`);
  }
}

/**
 * Accepts what the kernel accepts as a device name (dev_valid_name): 1..15
 * bytes, not "." or "..", no "/", ":" or whitespace. "all" and "default" are
 * the conf directories for every interface and for new ones.
 */
export function isValidInterfaceName(name: string): boolean {
  return (
    typeof name === 'string' &&
    name.length > 0 &&
    Buffer.byteLength(name) <= 15 &&
    name !== '.' &&
    name !== '..' &&
    !/[\s/:\0]/.test(name)
  );
}

export class Sysctl {
  /** `root` replaces /proc/sys, so tests can point it at a temporary directory. */
  constructor(readonly root: string = DEFAULT_SYSCTL_ROOT) {}

  async read(segments: readonly string[]): Promise<string> {
    const key = this.keyOf(segments);
    try {
      return (await readFile(join(this.root, ...segments), 'utf8')).trim();
    } catch (e) {
      throw this.fsError(key, 'read', e);
    }
  }

  async write(segments: readonly string[], value: string | number): Promise<void> {
    const key = this.keyOf(segments);
    const text = String(value);
    if (/[\n\0]/.test(text)) throw new SysctlError(key, 'value must be a single line');
    try {
      // "r+": never create a file. Under /proc/sys a missing key means a missing
      // interface, and a temp-dir root must fail the same way.
      await writeFile(join(this.root, ...segments), `${text}\n`, { flag: 'r+' });
    } catch (e) {
      throw this.fsError(key, `write ${text}`, e);
    }
  }

  async getIpv6(ifname: string, setting: Ipv6Setting): Promise<number> {
    const segs = ipv6Segments(ifname, setting);
    return this.readInt(segs);
  }

  async setIpv6(ifname: string, setting: Ipv6Setting, value: number): Promise<void> {
    const segs = ipv6Segments(ifname, setting);
    const allowed = IPV6_RANGES[setting];
    if (!allowed) throw new SysctlError(dotted(segs), 'unknown setting');
    if (!allowed.includes(value)) throw new SysctlError(dotted(segs), `value ${value} is not one of ${allowed.join(', ')}`);
    await this.write(segs, value);
  }

  /** net.ipv6.conf.all.forwarding: also turns forwarding on/off on every interface. */
  setIpv6Forwarding(on: boolean): Promise<void> {
    return this.write(['net', 'ipv6', 'conf', 'all', 'forwarding'], on ? 1 : 0);
  }

  setIpv4Forwarding(on: boolean): Promise<void> {
    return this.write(['net', 'ipv4', 'ip_forward'], on ? 1 : 0);
  }

  async ipv6Forwarding(): Promise<boolean> {
    return (await this.readInt(['net', 'ipv6', 'conf', 'all', 'forwarding'])) !== 0;
  }

  async ipv4Forwarding(): Promise<boolean> {
    return (await this.readInt(['net', 'ipv4', 'ip_forward'])) !== 0;
  }

  private async readInt(segments: readonly string[]): Promise<number> {
    const text = await this.read(segments);
    if (!/^-?\d+$/.test(text)) throw new SysctlError(dotted(segments), `not an integer: "${text}"`);
    return Number(text);
  }

  private keyOf(segments: readonly string[]): string {
    const key = dotted(segments);
    if (segments.length === 0 || !segments.every(isSafeSegment)) throw new SysctlError(key, 'invalid key');
    return key;
  }

  private fsError(key: string, what: string, e: unknown): SysctlError {
    const code = (e as { code?: string }).code;
    const why =
      code === 'ENOENT'
        ? 'no such key (missing interface?)'
        : code === 'EACCES' || code === 'EPERM'
          ? // /proc/sys/net files are root's 0644; CAP_NET_ADMIN grants a non-root process the owner's rights.
            `permission denied: ${needsCapability('CAP_NET_ADMIN')}`
          : String((e as Error).message ?? e);
    return new SysctlError(key, `${what}: ${why}`, code);
  }
}

/** Segment check for every key: the interface check plus nothing path-like. */
function isSafeSegment(s: string): boolean {
  return typeof s === 'string' && s.length > 0 && s !== '.' && s !== '..' && !/[/\0]/.test(s);
}

function ipv6Segments(ifname: string, setting: Ipv6Setting): string[] {
  const segs = ['net', 'ipv6', 'conf', ifname, setting];
  if (!isValidInterfaceName(ifname)) throw new SysctlError(dotted(segs), `invalid interface name ${JSON.stringify(ifname)}`);
  return segs;
}

/** sysctl(8) writes a "." inside a segment as "/". */
function dotted(segments: readonly string[]): string {
  return segments.map((s) => String(s).replaceAll('.', '/')).join('.');
}

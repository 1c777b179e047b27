import { isIP } from 'node:net';
import { mkdir, readFile, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { isValidDomainName } from '../ipv6/dnsname';
import { writeFileAtomic } from './state-store';

/**
 * Writes the DNS servers and search domains learned over the softwire (IPV6CP
 * does not carry them; RA RDNSS/DNSSL, DHCPv6 and IPCP do) to a resolv.conf-format
 * file that the system resolver or dnsmasq is pointed at. The values come from
 * the network, so every one is checked before it becomes a line: a server must be
 * an IP address and a domain a plain host name, or it is refused, so no crafted
 * option can add a line of its own.
 */

export const RESOLV_HEADER = '# Written by softwire: DNS learned over the softwire. Do not edit; rewritten when it changes.';
/** glibc reads at most three nameserver lines (MAXNS) and six search domains historically. */
export const MAX_NAMESERVERS = 3;
export const MAX_SEARCH_DOMAINS = 6;

export interface DnsInfo {
  servers: readonly string[];
  domains: readonly string[];
}

export class ResolvError extends Error {
  override readonly name = 'ResolvError';
}

/** Renders the file; throws ResolvError for a value that is not an address or domain name. */
export function renderResolv(info: DnsInfo): string {
  const lines = [RESOLV_HEADER];
  const servers: string[] = [];
  for (const s of info.servers) {
    if (!isServer(s)) throw new ResolvError(`refusing DNS server ${JSON.stringify(s)}: not an IP address`);
    if (!servers.includes(s)) servers.push(s);
  }
  const domains: string[] = [];
  for (const d of info.domains) {
    if (typeof d !== 'string' || !isValidDomainName(d)) throw new ResolvError(`refusing search domain ${JSON.stringify(d)}`);
    const name = d.replace(/\.$/, '').toLowerCase();
    if (!domains.includes(name)) domains.push(name);
  }
  for (const s of servers.slice(0, MAX_NAMESERVERS)) lines.push(`nameserver ${s}`);
  if (domains.length > 0) lines.push(`search ${domains.slice(0, MAX_SEARCH_DOMAINS).join(' ')}`);
  return `${lines.join('\n')}\n`;
}

/**
 * An IPv4 or IPv6 address; a link-local one may carry a zone ("fe80::1%br-lan",
 * which glibc accepts) made of interface-name characters only.
 */
function isServer(s: unknown): s is string {
  if (typeof s !== 'string' || isIP(s) === 0) return false;
  const zone = s.indexOf('%');
  return zone < 0 || /^[A-Za-z0-9._@-]{1,15}$/.test(s.slice(zone + 1));
}

export class ResolvWriter {
  private last: string | undefined;

  constructor(readonly path: string) {}

  /**
   * Writes the file unless it already holds exactly this content. Returns whether
   * it wrote. Throws ResolvError (nothing written) for an unsafe value.
   */
  async write(info: DnsInfo): Promise<boolean> {
    const text = renderResolv(info);
    if (this.last === undefined) {
      // After a restart the file may already be right; do not touch its mtime then.
      try {
        this.last = await readFile(this.path, 'utf8');
      } catch {
        this.last = '';
      }
    }
    if (text === this.last) return false;
    await mkdir(dirname(this.path), { recursive: true });
    await writeFileAtomic(this.path, text, { mode: 0o644 });
    this.last = text;
    return true;
  }

  /** Removes the file if it is ours (it starts with our header); returns whether it removed it. */
  async remove(): Promise<boolean> {
    this.last = undefined;
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch {
      return false;
    }
    if (!text.startsWith(RESOLV_HEADER)) return false;
    try {
      await unlink(this.path);
      return true;
    } catch {
      return false;
    }
  }
}

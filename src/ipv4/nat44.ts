import { execFileSync } from 'node:child_process';

/**
 * NAT44 for the router role of an IPv4 softwire (RFC 5571 3.2): the SC gives one
 * address by IPCP, so the LAN is masqueraded behind it on the way into the TUN.
 * The rules live in an nftables table of their own, so creating it is one atomic
 * `nft -f` and removing it drops exactly what we added, whatever else the host has.
 */

export interface Nat44Options {
  /** The softwire TUN (outgoing interface). */
  tun: string;
  /** LAN interfaces whose traffic is masqueraded; empty means everything leaving via the TUN. */
  lan?: string[];
  /** nftables table name (family ip). */
  table?: string;
  /** Runs `nft` with stdin; injectable for tests. */
  nft?: (args: string[], input?: string) => string;
}

const NAME = /^[A-Za-z0-9_.:-]{1,15}$/;

const runNft = (args: string[], input?: string): string => execFileSync('nft', args, { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });

/** The ruleset text: one table with a NAT postrouting chain. */
export function nat44Ruleset(o: Nat44Options): string {
  const table = o.table ?? 'softwire';
  for (const n of [o.tun, table, ...(o.lan ?? [])]) {
    if (!NAME.test(n)) throw new Error(`nat44: bad interface or table name "${n}"`);
  }
  const from = o.lan && o.lan.length > 0 ? `iifname { ${o.lan.map((l) => `"${l}"`).join(', ')} } ` : '';
  return [
    `table ip ${table} {`,
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    `    ${from}oifname "${o.tun}" masquerade`,
    '  }',
    '}',
    '',
  ].join('\n');
}

export class Nat44 {
  private installed = false;
  private readonly table: string;
  private readonly nft: (args: string[], input?: string) => string;

  constructor(private readonly o: Nat44Options) {
    this.table = o.table ?? 'softwire';
    this.nft = o.nft ?? runNft;
  }

  /** Creates (or replaces) the table. */
  install(): void {
    const text = nat44Ruleset(this.o);
    // Delete-then-add in one transaction, so a leftover table from a crash is replaced atomically.
    this.nft(['-f', '-'], `table ip ${this.table}\ndelete table ip ${this.table}\n${text}`);
    this.installed = true;
  }

  /** Removes the table if we created it; safe to call twice. */
  remove(): void {
    if (!this.installed) return;
    this.installed = false;
    try {
      this.nft(['delete', 'table', 'ip', this.table]);
    } catch {
      /* already gone */
    }
  }

  get active(): boolean {
    return this.installed;
  }
}

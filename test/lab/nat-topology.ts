import { link, type Netns, run, Topology } from './netns';

/**
 * The CPE behind a real NAT: cpe <-> nat <-> sc, three namespaces.
 *
 *   cpe 100.64.0.2/24 (RFC 6598, as behind a CGN; or 192.168.77.2/24)
 *     |  default route via the nat
 *   nat 100.64.0.1 / 192.0.2.254: nftables masquerade towards the SC, unsolicited
 *     |  inbound dropped (as a home router or CGN does), conntrack UDP timeouts low
 *   sc  192.0.2.1/24 (l2tpns binds here); an nft set records every UDP source
 *        port that reached port 1701, i.e. every NAT binding the SC has seen.
 *
 * The conntrack sysctls are per network namespace (checked on this kernel), so
 * the short timeouts stay inside `nat`. The field names match ScLayout so that
 * helpers written for scLayout() take this one too.
 */

export type PortMapping = 'preserve' | 'random' | 'fully-random';

export interface NatLayoutOptions {
  /** The CPE's subnet: RFC 6598 shared (default) or RFC 1918 private. */
  cpeSubnet?: 'shared' | 'private';
  /** nf_conntrack_udp_timeout: a flow that has not been answered (s). */
  udpTimeout?: number;
  /** nf_conntrack_udp_timeout_stream: a flow seen in both directions (s). */
  udpTimeoutStream?: number;
  /** preserve: plain masquerade, keeps the source port when free; random/fully-random: new port per mapping. */
  portMapping?: PortMapping;
}

export interface NatBinding {
  /** Seconds until conntrack forgets it. */
  ttl: number;
  insideSport: number;
  /** The port the SC sees. */
  outsidePort: number;
  assured: boolean;
}

export interface NatLayout {
  topo: Topology;
  sc: Netns;
  nat: Netns;
  cpe: Netns;
  scAddress: string;
  cpeAddress: string;
  /** The address the SC sees the CPE as. */
  natOutsideAddress: string;
  scDev: string;
  cpeDev: string;
  natInsideDev: string;
  natOutsideDev: string;
  /** The conntrack UDP timeouts in force in `nat`, read back. */
  timeouts(): { udp: number; stream: number };
  /** Replaces the masquerade rule; existing bindings keep their mapping. */
  setPortMapping(m: PortMapping): void;
  /** Every UDP source port that reached the SC's port 1701 since the layout was built (or since resetSeen). */
  sourcePortsSeen(): number[];
  resetSeen(): void;
  /** The NAT's UDP bindings towards the SC's L2TP port (needs the `conntrack` tool). */
  bindings(): NatBinding[];
  /** Forgets every NAT binding at once, as a NAT reboot or a CGN failover does (needs `conntrack`). */
  flushBindings(): void;
}

/** Whether the `conntrack` tool (Debian package conntrack) can be run here. */
export function conntrackAvailable(): { ok: boolean; message: string } {
  try {
    run('conntrack', ['--version']);
    return { ok: true, message: 'conntrack found' };
  } catch {
    return { ok: false, message: 'the conntrack tool is not installed (apt-get install conntrack)' };
  }
}

const L2TP = 1701;

export function natLayout(opts: NatLayoutOptions = {}): NatLayout {
  const topo = new Topology();
  try {
    return build(topo, opts);
  } catch (e) {
    topo.destroy();
    throw e;
  }
}

function build(topo: Topology, opts: NatLayoutOptions): NatLayout {
  const sc = topo.ns('sc');
  const nat = topo.ns('nat');
  const cpe = topo.ns('cpe');
  const inside = opts.cpeSubnet === 'private' ? '192.168.77' : '100.64.0';
  const scAddress = '192.0.2.1';
  const natOutsideAddress = '192.0.2.254';
  const cpeAddress = `${inside}.2`;
  const wan = link(cpe, `${cpeAddress}/24`, nat, `${inside}.1/24`);
  const up = link(nat, `${natOutsideAddress}/24`, sc, `${scAddress}/24`);
  cpe.ip(['route', 'add', 'default', 'via', `${inside}.1`]);
  nat.sysctl('net.ipv4.ip_forward', '1');

  const mapping = (m: PortMapping) => (m === 'preserve' ? 'masquerade' : `masquerade ${m}`);
  // Loading this ruleset loads nf_conntrack and nf_nat, which is what makes the sysctls below exist.
  nat.exec('nft', ['-f', '-'], {
    input: `table ip swnat {
  chain postrouting { type nat hook postrouting priority srcnat; policy accept; oifname "${up.a}" ${mapping(opts.portMapping ?? 'preserve')}; }
  chain input_outside { type filter hook input priority filter; policy accept; iifname "${up.a}" ct state new drop; }
  chain forward_outside { type filter hook forward priority filter; policy accept; iifname "${up.a}" ct state new drop; }
}
`,
  });
  nat.sysctl('net.netfilter.nf_conntrack_udp_timeout', String(opts.udpTimeout ?? 30));
  nat.sysctl('net.netfilter.nf_conntrack_udp_timeout_stream', String(opts.udpTimeoutStream ?? 120));

  sc.exec('nft', ['-f', '-'], {
    input: `table inet swlab {
  set l2tp_sources { type inet_service; flags dynamic; size 65536; }
  chain in { type filter hook input priority filter; policy accept; udp dport ${L2TP} add @l2tp_sources { udp sport }; }
}
`,
  });

  const readSysctl = (key: string) => Number(nat.exec('sysctl', ['-n', key]).trim());
  return {
    topo,
    sc,
    nat,
    cpe,
    scAddress,
    cpeAddress,
    natOutsideAddress,
    scDev: up.b,
    cpeDev: wan.a,
    natInsideDev: wan.b,
    natOutsideDev: up.a,
    timeouts: () => ({ udp: readSysctl('net.netfilter.nf_conntrack_udp_timeout'), stream: readSysctl('net.netfilter.nf_conntrack_udp_timeout_stream') }),
    setPortMapping(m) {
      nat.exec('nft', ['flush', 'chain', 'ip', 'swnat', 'postrouting']);
      nat.exec('nft', ['add', 'rule', 'ip', 'swnat', 'postrouting', 'oifname', up.a, ...mapping(m).split(' ')]);
    },
    sourcePortsSeen() {
      const out = JSON.parse(sc.exec('nft', ['-j', 'list', 'set', 'inet', 'swlab', 'l2tp_sources'])) as { nftables: { set?: { elem?: number[] } }[] };
      const set = out.nftables.find((x) => x.set)?.set;
      return [...(set?.elem ?? [])].sort((a, b) => a - b);
    },
    resetSeen() {
      sc.exec('nft', ['flush', 'set', 'inet', 'swlab', 'l2tp_sources']);
    },
    bindings() {
      // conntrack prints the entries on stdout and a summary line on stderr.
      return parseConntrack(nat.exec('conntrack', ['-L', '-p', 'udp', '--orig-port-dst', String(L2TP)]));
    },
    flushBindings() {
      nat.exec('conntrack', ['-F']);
    },
  };
}

/** Parses `conntrack -L -p udp` lines: "udp 17 28 src=.. dst=.. sport=A dport=1701 src=.. dst=.. sport=1701 dport=B [ASSURED] ...". */
export function parseConntrack(text: string): NatBinding[] {
  const out: NatBinding[] = [];
  for (const line of text.split('\n')) {
    const m = /^udp\s+\d+\s+(\d+)\s+src=\S+ dst=\S+ sport=(\d+) dport=\d+ (?:\[UNREPLIED\] )?src=\S+ dst=\S+ sport=\d+ dport=(\d+)/.exec(line.trim());
    if (!m) continue;
    out.push({ ttl: Number(m[1]), insideSport: Number(m[2]), outsidePort: Number(m[3]), assured: line.includes('[ASSURED]') });
  }
  return out;
}

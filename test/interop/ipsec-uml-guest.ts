import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AgentProc } from '../helpers/agent-proc';
import { Charon } from '../lab/charon';
import { DEFAULT_USER, L2tpnsSc } from '../lab/l2tpns';
import { type Netns, Topology, link, run } from '../lab/netns';

/**
 * Runs INSIDE the UML guest (ipsec-uml.test.ts boots it): the kernel there has
 * ESP/xfrm. For each case it builds SI -- MID -- SC namespaces, an SC made of
 * l2tpns + FreeRADIUS + charon that requires ESP for UDP 1701, and the agent with
 * its own charon, then records facts (never verdicts) as one JSON line per case in
 * OUT/results.jsonl for the host-side test to judge.
 *
 * argv: OUT [perf]
 */

const OUT = process.argv[2] ?? '/mnt';
const PERF = process.argv[3] === 'perf';
const BASE = '/tmp/ipsec-lab';
const SC_ADDR = '192.0.2.1';
const PSK = 'correct horse battery staple 42';

function note(line: string): void {
  appendFileSync(join(OUT, 'progress.log'), `${new Date().toISOString()} ${line}\n`);
}

interface Case {
  name: string;
  version: 'ikev1' | 'ikev2';
  nat: boolean;
  wrongPsk?: boolean;
  /** Throughput only: no IPsec at all (agent and SC both plain L2TP). */
  plain?: boolean;
  /** While up, the SC deletes the IKE SA: the softwire must reconnect through a new SA. */
  scKillsSa?: boolean;
}

function scSwanctl(): string {
  return `connections {
  l2tp {
    # 0: IKEv1 and IKEv2 both accepted, as an SC serving old and new clients would.
    version = 0
    local_addrs = ${SC_ADDR}
    proposals = aes256-sha256-modp2048
    local {
      auth = psk
    }
    remote {
      auth = psk
    }
    children {
      l2tp {
        mode = transport
        local_ts = dynamic[udp/1701]
        remote_ts = dynamic[udp]
        esp_proposals = aes256gcm16,aes256-sha256
      }
    }
  }
}
secrets {
  ike-softwire {
    secret = "${PSK}"
  }
}
`;
}

/**
 * iptables-legacy counters in MID: what crossed the wire between one SI and the SC.
 * Each SI has its own chain (jumped to on its address either way), so a late packet
 * of one case cannot count for the next.
 */
const COUNTERS: [string, string[]][] = [
  ['l2tpClear', ['-p', 'udp', '--dport', '1701']],
  ['l2tpClearBack', ['-p', 'udp', '--sport', '1701']],
  ['esp', ['-p', 'esp']],
  ['natt', ['-p', 'udp', '--dport', '4500']],
  ['nattBack', ['-p', 'udp', '--sport', '4500']],
  ['ike500', ['-p', 'udp', '--dport', '500']],
];

const SI_CHAINS = { direct: ['cnt-direct', '10.1.0.2'], nat: ['cnt-nat', '10.3.0.2'] } as const;

function counters(mid: Netns, nat: boolean): Record<string, number> {
  const out: Record<string, number> = {};
  const text = mid.exec('iptables-legacy', ['-L', SI_CHAINS[nat ? 'nat' : 'direct'][0], '-n', '-v', '-x']);
  const lines = text.split('\n').slice(2).filter((l) => l.trim());
  COUNTERS.forEach(([name], i) => {
    out[name] = Number(lines[i]?.trim().split(/\s+/)[0] ?? -1);
  });
  return out;
}

interface Lab {
  topo: Topology;
  mid: Netns;
  sc: Netns;
  /** SI reaching the SC directly (routed by MID) and SI behind MID's masquerade. */
  si: { direct: Netns; nat: Netns };
  charon: { direct?: Charon; nat?: Charon; sc?: Charon };
  lns: L2tpnsSc;
  requireEsp: (on: boolean) => void;
  stop: () => Promise<void>;
}

/**
 * One SC (l2tpns + FreeRADIUS + charon accepting IKEv1 and IKEv2) and two SIs:
 * one routed straight through MID, one behind MID's masquerade. Cases reuse it;
 * what each case asserts on is reset or read per case.
 */
async function buildLab(): Promise<Lab> {
  const topo = new Topology();
  const mid = topo.ns('mid');
  const sc = topo.ns('sc');
  const direct = topo.ns('si');
  const nat = topo.ns('sinat');
  link(direct, '10.1.0.2/24', mid, '10.1.0.1/24');
  const n = link(nat, '10.3.0.2/24', mid, '10.3.0.1/24');
  const b = link(mid, '192.0.2.254/24', sc, `${SC_ADDR}/24`);
  direct.ip(['route', 'add', 'default', 'via', '10.1.0.1']);
  nat.ip(['route', 'add', 'default', 'via', '10.3.0.1']);
  sc.ip(['route', 'add', '10.1.0.0/24', 'via', '192.0.2.254']);
  mid.sysctl('net.ipv4.ip_forward', '1');
  for (const [chain, addr] of Object.values(SI_CHAINS)) {
    mid.exec('iptables-legacy', ['-N', chain]);
    for (const [, m] of COUNTERS) mid.exec('iptables-legacy', ['-A', chain, ...m]);
    mid.exec('iptables-legacy', ['-A', 'FORWARD', '-s', addr, '-j', chain]);
    mid.exec('iptables-legacy', ['-A', 'FORWARD', '-d', addr, '-j', chain]);
  }
  mid.exec('iptables-legacy', ['-t', 'nat', '-A', 'POSTROUTING', '-s', '10.3.0.0/24', '-o', b.a, '-j', 'MASQUERADE']);
  void n;
  note('lab: namespaces ready');
  const lns = await L2tpnsSc.start(sc, { bindAddress: SC_ADDR, startTimeoutMs: 90_000 });
  note('lab: l2tpns ready');
  const charons: Charon[] = [];
  const lab: Lab = {
    topo,
    mid,
    sc,
    si: { direct, nat },
    charon: {},
    lns,
    // The SC requires IPsec: L2TP that did not arrive through an SA (or would not leave through one) is dropped.
    requireEsp: (on) => {
      const op = on ? '-A' : '-D';
      sc.exec('iptables-legacy', [op, 'INPUT', '-p', 'udp', '--dport', '1701', '-m', 'policy', '--dir', 'in', '--pol', 'none', '-j', 'DROP']);
      sc.exec('iptables-legacy', [op, 'OUTPUT', '-p', 'udp', '--sport', '1701', '-m', 'policy', '--dir', 'out', '--pol', 'none', '-j', 'DROP']);
    },
    stop: async () => {
      for (const c of charons) c.stop();
      await lns.stop(500);
      lns.cleanup();
      topo.destroy();
    },
  };
  const scCharon = await Charon.start(sc, BASE, 'sc');
  charons.push(scCharon);
  lab.charon.sc = scCharon;
  lab.charon.direct = await Charon.start(direct, BASE, 'si');
  lab.charon.nat = await Charon.start(nat, BASE, 'sinat');
  charons.push(lab.charon.direct, lab.charon.nat);
  note(`lab: SC charon: ${scCharon.load(sc, scSwanctl()).trim().split('\n').slice(-1)[0]}`);
  lab.requireEsp(true);
  note('lab: charons ready');
  return lab;
}

/** `ip xfrm policy` without charon's own per-socket bypass policies (they belong to its IKE sockets, not to us). */
function ourPolicies(ns: Netns): string {
  const blocks = ns.exec('ip', ['xfrm', 'policy']).split(/\n(?=src )/);
  return blocks.filter((b) => b.trim() && !/\bsocket (in|out)\b/.test(b)).join('\n').trim();
}

async function runCase(lab: Lab, c: Case): Promise<Record<string, unknown>> {
  const facts: Record<string, unknown> = { name: c.name, version: c.version, nat: c.nat, wrongPsk: !!c.wrongPsk };
  const si = c.nat ? lab.si.nat : lab.si.direct;
  const charon = c.nat ? lab.charon.nat : lab.charon.direct;
  const { mid, sc } = lab;
  let agent: AgentProc | undefined;
  // Throughput without IPsec: the SC stops requiring it for this case only.
  if (c.plain) lab.requireEsp(false);
  try {
    mid.exec('iptables-legacy', ['-Z', SI_CHAINS[c.nat ? 'nat' : 'direct'][0]]);
    const pskFile = join(BASE, `psk-${c.name}`);
    writeFileSync(pskFile, `${c.wrongPsk ? 'not the right key' : PSK}\n`, { mode: 0o600 });
    const args = ['--sc', SC_ADDR, '--user', DEFAULT_USER.name, '--mode', 'host'];
    if (!c.plain) args.push('--ipsec', c.version, '--ipsec-psk-file', pskFile, '--ipsec-vici-socket', charon!.socket, '--ipsec-timeout', c.wrongPsk ? '10' : '30');
    if (c.wrongPsk) args.push('--reconnect-initial', '1', '--reconnect-cap', '24', '--reconnect-jitter', '0');
    agent = AgentProc.start(si, args, { password: DEFAULT_USER.password });

    if (c.wrongPsk) {
      // Two failed attempts: the error words, and the pause between them (cap/4 = 6 s for a permanent failure).
      const end = Date.now() + 120_000;
      while (Date.now() < end && agent.lines.filter((l) => /IPsec: negotiating/.test(l.msg)).length < 2 && agent.proc.exitCode === null) await new Promise((r) => setTimeout(r, 200));
      facts.attempts = agent.lines.filter((l) => /IPsec: negotiating/.test(l.msg)).map((l) => l.time);
      facts.errors = agent.lines.filter((l) => l.level >= 50 || /down: /.test(l.msg)).map((l) => l.msg).slice(0, 6);
      facts.status = await agent.status().catch((e: Error) => e.message);
      facts.counters = counters(mid, c.nat);
      facts.siCharonTail = charon!.log().split('\n').filter((l) => /retransmit|AUTH|HASH|NOTIFY|error|failed|establish/i.test(l)).slice(-15);
      const { code } = await agent.stop(8000);
      facts.exitCode = code;
      facts.xfrmStateAfter = si.exec('ip', ['xfrm', 'state']).trim();
      facts.xfrmPolicyAfter = ourPolicies(si);
      return facts;
    }

    const up = await agent.waitState('up', 120_000);
    note(`${c.name}: up`);
    facts.up = true;
    facts.ipsecStatus = up.ipsec ?? null;
    await agent.waitLog(/\(SLAAC\)/, 30_000);
    facts.mtu = si.ipJson<{ mtu: number }[]>(['link', 'show', 'sw0'])[0]?.mtu;
    facts.xfrmStateUp = si.exec('ip', ['xfrm', 'state']).split('\n').filter((l) => l.startsWith('src')).length;
    facts.xfrmPolicyUp = ourPolicies(si);
    try {
      si.exec('ping', ['-6', '-c', '3', '-i', '0.3', '-W', '3', '2001:db8:200::1']);
      facts.ping6 = true;
    } catch (e) {
      facts.ping6 = (e as Error).message.slice(0, 500);
    }
    note(`${c.name}: pinged`);
    if (c.scKillsSa) {
      // The SC's operator deletes the IKE SA (and so its CHILD SA): the agent must notice and reconnect through a new SA.
      const mark = agent.lines.length;
      sc.exec('swanctl', ['--terminate', '--ike', 'l2tp', '--force', '--uri', lab.charon.sc!.uri]);
      const end = Date.now() + 60_000;
      while (Date.now() < end && !agent.lines.slice(mark).some((l) => /^ipsec down: /.test(l.msg))) await new Promise((r) => setTimeout(r, 100));
      facts.lostLines = agent.lines.slice(mark).filter((l) => /ipsec|IPsec/.test(l.msg)).map((l) => l.msg).slice(0, 4);
      const again = await agent.waitState('up', 120_000);
      // Up is PPP up; the global address comes with the next RA (SLAAC), as at the first dial.
      const slaacBy = Date.now() + 30_000;
      while (Date.now() < slaacBy && !agent.lines.slice(mark).some((l) => /\(SLAAC\)/.test(l.msg))) await new Promise((r) => setTimeout(r, 100));
      facts.afterKill = { reconnects: again.reconnects, lastError: again.lastError, ipsecPhase: again.ipsec?.phase };
      try {
        si.exec('ping', ['-6', '-c', '3', '-i', '0.3', '-W', '3', '2001:db8:200::1']);
        facts.ping6AfterKill = true;
      } catch (e) {
        facts.ping6AfterKill = (e as Error).message.slice(0, 300);
      }
      note(`${c.name}: reconnected after the SC deleted the SA`);
    }
    if (PERF) {
      // iperf3 across the softwire to the SC's side of it (l2tpns answers on 2001:db8:200::1 through its tun).
      const srv = sc.spawn('iperf3', ['-s', '-1'], { stdio: 'ignore' });
      await new Promise((r) => setTimeout(r, 1500));
      try {
        const j = JSON.parse(si.exec('iperf3', ['-6', '-c', '2001:db8:200::1', '-t', '15', '-J'])) as { end: { sum_received: { bits_per_second: number } } };
        facts.mbps = Math.round(j.end.sum_received.bits_per_second / 1e5) / 10;
      } catch (e) {
        facts.mbps = (e as Error).message.slice(0, 300);
      }
      srv.kill('SIGKILL');
      note(`${c.name}: iperf3 ${String(facts.mbps)}`);
    }
    facts.counters = counters(mid, c.nat);
    facts.statusAfterTraffic = (await agent.status()).ipsec ?? null;
    const { code, tookMs } = await agent.stop(8000);
    facts.exitCode = code;
    facts.stopMs = tookMs;
    facts.agentTail = agent.lines.filter((l) => /IPsec|ipsec/.test(l.msg)).map((l) => l.msg).slice(-8);
    facts.xfrmStateAfter = si.exec('ip', ['xfrm', 'state']).trim();
    facts.xfrmPolicyAfter = ourPolicies(si);
    if (charon) facts.siSasAfter = si.exec('swanctl', ['--list-sas', '--uri', charon.uri]).trim();
    facts.scXfrmStatesAfter = sc.exec('ip', ['xfrm', 'state']).split('\n').filter((l) => l.startsWith('src')).length;
    if (charon) facts.siConnsAfter = si.exec('swanctl', ['--list-conns', '--uri', charon.uri]).trim();
    return facts;
  } catch (e) {
    facts.error = (e as Error).stack?.slice(0, 3000);
    facts.agentTail = agent?.tail(30);
    if (charon) facts.siCharonTail = charon.log().split('\n').slice(-30);
    return facts;
  } finally {
    await agent?.stop(3000).catch(() => undefined);
    if (c.plain) lab.requireEsp(true);
  }
}

async function main(): Promise<void> {
  run('mkdir', ['-p', BASE]);
  const only = process.env.IPSEC_CASES ? process.env.IPSEC_CASES.split(",") : undefined;
  const cases: Case[] = PERF
    ? [
        { name: 'perf-plain', version: 'ikev2', nat: false, plain: true },
        { name: 'perf-ikev2', version: 'ikev2', nat: false },
        { name: 'perf-ikev2-nat', version: 'ikev2', nat: true },
        // The same plain run again: the spread between the two shows the noise of a busy host.
        { name: 'perf-plain-again', version: 'ikev2', nat: false, plain: true },
      ]
    : [
        { name: 'ikev2', version: 'ikev2', nat: false, scKillsSa: true },
        { name: 'ikev2-nat', version: 'ikev2', nat: true },
        { name: 'ikev1', version: 'ikev1', nat: false },
        { name: 'ikev1-nat', version: 'ikev1', nat: true },
        { name: 'ikev2-wrong-psk', version: 'ikev2', nat: false, wrongPsk: true },
        { name: 'ikev1-wrong-psk', version: 'ikev1', nat: true, wrongPsk: true },
      ];
  const lab = await buildLab();
  try {
    for (const c of cases) {
      if (only && !only.includes(c.name)) continue;
      note(`case ${c.name} start`);
      const facts = await runCase(lab, c);
      appendFileSync(join(OUT, 'results.jsonl'), `${JSON.stringify(facts)}\n`);
      note(`case ${c.name} done`);
    }
  } finally {
    await lab.stop();
  }
}

main().then(
  () => process.exit(0),
  (e: Error) => {
    note(`guest script failed: ${e.stack}`);
    process.exit(1);
  },
);

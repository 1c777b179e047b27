/**
 * A real long run: the shipped agent (bin/softwire) against l2tpns in namespaces,
 * router role, dual stack, with user traffic the whole time (iperf3 TCP at a fixed rate over the
 * IPv4 softwire, ping6 over the IPv6 one) and DHCPv6 leases short enough to renew
 * every minute. Samples the agent's RSS and prints what changed between start and end.
 *
 *   node --import tsx scripts/long-run.ts [--seconds 600] [--rate 20M]
 *
 * test/interop/long-run.test.ts runs it shortened; `npm run soak:real` is the
 * 10-minute form (docs/RELIABILITY.md).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_USER, L2tpnsSc } from '../test/lab/l2tpns';
import { scLayout } from '../test/lab/topology';
import { AgentProc } from '../test/helpers/agent-proc';

/** Behind the SC: an IPv4 address reached only through the softwire. */
const FAR4 = '203.0.113.1';
/** l2tpns's own address on the RA /64 (ipv6_prefix 2001:db8:200::/64 in the harness). */
const FAR6 = '2001:db8:200::1';

export interface LongRunResult {
  seconds: number;
  rssStartMb: number;
  rssEndMb: number;
  rssMaxMb: number;
  /** VmRSS every sampling interval, MB. */
  rssSamples: number[];
  reconnects: number;
  stateAtEnd: string;
  tcpBytes: number;
  tcpRetransmits: number;
  pingsSent: number;
  pingsLost: number;
  dhcp6Renews: number;
  drops: Record<string, number>;
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

const scLog = (sc: L2tpnsSc): string => {
  const f = join(sc.dir, 'l2tpns.log');
  return existsSync(f) ? readFileSync(f, 'utf8') : '';
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function longRun(opts: { seconds: number; rate?: string; sampleMs?: number; log?: (line: string) => void }): Promise<LongRunResult> {
  const log = opts.log ?? (() => {});
  const sampleMs = opts.sampleMs ?? 5000;
  const lay = scLayout();
  lay.sc.ip(['addr', 'add', `${FAR4}/32`, 'dev', 'lo']);
  // Preferred 120 s: the client renews at T1 = 60 s, ten times in ten minutes.
  const sc = await L2tpnsSc.start(lay.sc, { bindAddress: lay.scAddress, dhcp6PreferredLifetime: 120, dhcp6ValidLifetime: 240 });
  let agent: AgentProc | undefined;
  try {
    agent = AgentProc.start(lay.cpe, ['--sc', lay.scAddress, '--user', DEFAULT_USER.name, '--ncp', 'dual', '--mode', 'router'], {
      password: DEFAULT_USER.password,
    });
    await agent.waitState('up', 20_000);
    const pid = agent.proc.pid!;
    // Let the first DHCPv6 exchange and SLAAC settle before the baseline.
    await sleep(2000);
    const logStart = scLog(sc).length;
    const samples = [rssMb(pid)];
    log(`up; RSS ${samples[0]!.toFixed(1)} MB; running ${opts.seconds} s of traffic`);

    const srv = lay.sc.spawn('iperf3', ['-s', '-1', '-B', FAR4]);
    await sleep(300);
    const cli = lay.cpe.spawn('iperf3', ['-c', FAR4, '-t', String(opts.seconds), '-b', opts.rate ?? '20M', '-J']);
    let iperfOut = '';
    cli.stdout!.on('data', (d: Buffer) => (iperfOut += d));
    const iperfDone = new Promise((r) => cli.on('exit', r));

    let pingsSent = 0;
    let pingsLost = 0;
    const end = Date.now() + opts.seconds * 1000;
    let nextSample = Date.now() + sampleMs;
    while (Date.now() < end) {
      pingsSent++;
      const r = spawnSync('ip', ['netns', 'exec', lay.cpe.name, 'ping', '-6', '-c', '1', '-W', '2', FAR6], { stdio: 'ignore' });
      if (r.status !== 0) pingsLost++;
      if (Date.now() >= nextSample) {
        samples.push(rssMb(pid));
        nextSample += sampleMs;
        if (samples.length % 12 === 0) log(`${Math.round((Date.now() - end) / 1000 + opts.seconds)} s: RSS ${samples.at(-1)!.toFixed(1)} MB`);
      }
      await sleep(1000);
    }
    await iperfDone;
    await new Promise((r) => (srv.exitCode !== null ? r(null) : srv.on('exit', r)));
    samples.push(rssMb(pid));
    const j = JSON.parse(iperfOut) as { error?: string; end: { sum_received?: { bytes: number }; sum_sent?: { retransmits?: number } } };
    if (j.error) throw new Error(`iperf3: ${j.error}`);
    const status = await agent.status();
    const renews = (scLog(sc).slice(logStart).match(/Got DHCPv6 message Type: Renew/g) ?? []).length;
    return {
      seconds: opts.seconds,
      rssStartMb: samples[0]!,
      rssEndMb: samples.at(-1)!,
      rssMaxMb: Math.max(...samples),
      rssSamples: samples,
      reconnects: status.reconnects,
      stateAtEnd: status.state,
      tcpBytes: j.end.sum_received?.bytes ?? 0,
      tcpRetransmits: j.end.sum_sent?.retransmits ?? 0,
      pingsSent,
      pingsLost,
      dhcp6Renews: renews,
      drops: status.counters.drops,
    };
  } finally {
    await agent?.stop();
    await sc.stop();
    sc.cleanup();
    lay.topo.destroy();
  }
}

if (require.main === module) {
  const args = process.argv.slice(2);
  const opt = (name: string, dflt: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1]! : dflt;
  };
  longRun({ seconds: Number(opt('seconds', '600')), rate: opt('rate', '20M'), log: (l) => console.log(l) })
    .then((r) => {
      const { rssSamples, ...summary } = r;
      console.log(JSON.stringify({ ...summary, rssSamples: rssSamples.map((x) => Math.round(x * 10) / 10) }, null, 2));
      const grew = r.rssEndMb - r.rssStartMb;
      console.log(`RSS start ${r.rssStartMb.toFixed(1)} MB, end ${r.rssEndMb.toFixed(1)} MB (${grew >= 0 ? '+' : ''}${grew.toFixed(1)}), max ${r.rssMaxMb.toFixed(1)} MB; reconnects ${r.reconnects}; DHCPv6 renews ${r.dhcp6Renews}; ping lost ${r.pingsLost}/${r.pingsSent}; TCP ${(r.tcpBytes / 1e6).toFixed(0)} MB`);
      process.exit(r.reconnects === 0 && r.stateAtEnd === 'up' ? 0 : 1);
    })
    .catch((e: Error) => {
      console.error(e.stack ?? e.message);
      process.exit(1);
    });
}

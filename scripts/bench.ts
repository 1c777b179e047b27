/**
 * npm run bench: data-path throughput of the agent, in one run, on this machine.
 *
 *   (a) kernel  plain routing between the two namespaces (the upper bound)
 *   (b) fast    the agent's IPv4 softwire against l2tpns, native data path
 *   (c) dgram   the same with Node's dgram socket (every packet through the cores)
 *
 * Each: iperf3 TCP 1 and 4 streams, and 64-byte UDP (packets/s at the receiver), with
 * the agent's and l2tpns's CPU% and the agent's peak RSS sampled from /proc. Medians
 * of BENCH_REPEATS runs (default 3). Writes docs/PERFORMANCE.md.
 *
 *   node --import tsx scripts/bench.ts [--repeats N] [--seconds S] [--no-write]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_USER, L2tpnsSc, l2tpnsAvailable } from '../src/lab/l2tpns';
import { scLayout, type ScLayout } from '../src/lab/topology';
import { AgentProc } from '../test/helpers/agent-proc';
import { startFastAgent } from '../test/integration/dataplane-lab';

const args = process.argv.slice(2);
const opt = (name: string, dflt: number): number => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const REPEATS = opt('repeats', Number(process.env.BENCH_REPEATS ?? 3));
const SECONDS = opt('seconds', 4);
const WRITE = !args.includes('--no-write');
const FAR = '203.0.113.1';
const HZ = 100;

type Test = 'tcp1' | 'tcp4' | 'udp64';
const TESTS: Test[] = ['tcp1', 'tcp4', 'udp64'];
interface Sample {
  value: number; // Mbit/s for TCP, packets/s for UDP
  agentCpu: number | null;
  lnsCpu: number | null;
  agentRssMb: number | null;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)]! : NaN;
};

function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]); // utime + stime (fields 14, 15)
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function iperf(lay: ScLayout, target: string, test: Test, agentPid?: number, lnsPid?: number): Promise<Sample> {
  const srv = lay.sc.spawn('iperf3', ['-s', '-1', '-B', target]);
  await new Promise((r) => setTimeout(r, 300));
  const a0 = agentPid ? cpuTicks(agentPid) : 0;
  const l0 = lnsPid ? cpuTicks(lnsPid) : 0;
  const t0 = Date.now();
  let peak = 0;
  const sampler = setInterval(() => {
    if (agentPid) peak = Math.max(peak, rssMb(agentPid));
  }, 200);
  const flags = test === 'udp64' ? ['-u', '-b', '0', '-l', '64'] : test === 'tcp4' ? ['-P', '4'] : [];
  const cli = lay.cpe.spawn('iperf3', ['-c', target, '-t', String(SECONDS), '-J', ...flags]);
  let out = '';
  cli.stdout!.on('data', (d: Buffer) => (out += d));
  await new Promise((r) => cli.on('exit', r));
  clearInterval(sampler);
  const secs = (Date.now() - t0) / 1000;
  const agentCpu = agentPid ? ((cpuTicks(agentPid) - a0) / HZ / secs) * 100 : null;
  const lnsCpu = lnsPid ? ((cpuTicks(lnsPid) - l0) / HZ / secs) * 100 : null;
  await new Promise((r) => (srv.exitCode !== null ? r(null) : srv.on('exit', r)));
  const j = JSON.parse(out) as { end: { sum_received?: { bits_per_second: number }; sum?: { packets: number; lost_packets: number; seconds: number } } };
  const value =
    test === 'udp64'
      ? (j.end.sum!.packets - j.end.sum!.lost_packets) / j.end.sum!.seconds
      : j.end.sum_received!.bits_per_second / 1e6;
  return { value, agentCpu, lnsCpu, agentRssMb: agentPid ? peak : null };
}

type Scenario = 'kernel' | 'fast' | 'dgram';
const results: Record<Scenario, Record<Test, Sample[]>> = {
  kernel: { tcp1: [], tcp4: [], udp64: [] },
  fast: { tcp1: [], tcp4: [], udp64: [] },
  dgram: { tcp1: [], tcp4: [], udp64: [] },
};

async function withSoftwire(kind: 'fast' | 'dgram', body: (lay: ScLayout, agentPid: number, lnsPid: number) => Promise<void>): Promise<void> {
  const lay = scLayout();
  lay.sc.ip(['addr', 'add', `${FAR}/32`, 'dev', 'lo']);
  const sc = await L2tpnsSc.start(lay.sc, { bindAddress: lay.scAddress, ipv6Prefix: null });
  const flags = ['--sc', lay.scAddress, '--user', DEFAULT_USER.name, '--ncp', 'ipv4', '--mode', 'host'];
  const a = kind === 'fast' ? startFastAgent(lay.cpe, flags, DEFAULT_USER.password) : AgentProc.start(lay.cpe, flags, { password: DEFAULT_USER.password });
  try {
    await a.waitState('up', 20_000);
    // The installer's host route to the IPCP peer (= l2tpns's tunnel address) would loop the tunnel; see PERFORMANCE.md.
    for (let i = 0; i < 40; i++) {
      try {
        lay.cpe.ip(['route', 'del', `${lay.scAddress}/32`, 'dev', 'sw0']);
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    await body(lay, a.proc.pid!, sc.pid()!);
  } finally {
    await a.stop();
    await sc.stop();
    sc.cleanup();
    lay.topo.destroy();
  }
}

async function main(): Promise<void> {
  const avail = l2tpnsAvailable();
  if (!avail.ok) throw new Error(`l2tpns not available: ${avail.message}`);
  const lay = scLayout();
  try {
    for (let r = 0; r < REPEATS; r++) for (const t of TESTS) results.kernel[t].push(await iperf(lay, lay.scAddress, t));
  } finally {
    lay.topo.destroy();
  }
  for (const kind of ['fast', 'dgram'] as const) {
    await withSoftwire(kind, async (l, agentPid, lnsPid) => {
      for (let r = 0; r < REPEATS; r++) for (const t of TESTS) results[kind][t].push(await iperf(l, FAR, t, agentPid, lnsPid));
    });
  }
  const table = render();
  process.stdout.write(`${table}\n`);
  if (WRITE) writeDoc(table);
}

const fmt = (v: number | null, d = 0): string => (v === null || Number.isNaN(v) ? '-' : v.toFixed(d));

function render(): string {
  const rows = ['| scenario | test | median | vs kernel | agent CPU % | l2tpns CPU % | agent peak RSS MB |', '|---|---|---|---|---|---|---|'];
  for (const s of ['kernel', 'fast', 'dgram'] as Scenario[]) {
    for (const t of TESTS) {
      const xs = results[s][t];
      const v = median(xs.map((x) => x.value));
      const k = median(results.kernel[t].map((x) => x.value));
      const unit = t === 'udp64' ? 'pps' : 'Mbit/s';
      const cpu = (f: (x: Sample) => number | null) => (xs[0] && f(xs[0]) !== null ? median(xs.map((x) => f(x)!)) : null);
      rows.push(
        `| ${s} | ${t} | ${fmt(v)} ${unit} | ${s === 'kernel' ? '1.00' : (v / k).toFixed(2)} | ${fmt(cpu((x) => x.agentCpu))} | ${fmt(cpu((x) => x.lnsCpu))} | ${fmt(cpu((x) => x.agentRssMb), 1)} |`,
      );
    }
  }
  return rows.join('\n');
}

function writeDoc(table: string): void {
  const file = join(__dirname, '..', 'docs', 'PERFORMANCE.md');
  let doc: string;
  try {
    doc = readFileSync(file, 'utf8');
  } catch {
    doc = '# Performance\n\n<!-- bench:start -->\n<!-- bench:end -->\n';
  }
  const block = [
    '<!-- bench:start -->',
    `Last run: ${new Date().toISOString()}, ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), Node ${process.version}, ${REPEATS} repeats of ${SECONDS} s, medians.`,
    `Command: \`node --import tsx scripts/bench.ts --repeats ${REPEATS} --seconds ${SECONDS}\` (npm run bench).`,
    '',
    table,
    '<!-- bench:end -->',
  ].join('\n');
  doc = doc.includes('<!-- bench:start -->') ? doc.replace(/<!-- bench:start -->[\s\S]*<!-- bench:end -->/, block) : `${doc}\n${block}\n`;
  writeFileSync(file, doc);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});

/**
 * npm run bench: data-path throughput of the agent, in one run, on this machine.
 *
 *   (a) kernel    plain routing between the two namespaces (the upper bound)
 *   (b) l2tpns    the agent (bin/softwire, the shipped bundle) with an IPv4 softwire against l2tpns
 *   (c) emulator  the same agent against the project's SC emulator in data mode
 *                 (test/peer/emulator-data.ts: native batched UDP and TUN on the SC side)
 *
 * Each: iperf3 TCP 1 and 4 streams, and 64-byte UDP (packets/s at the receiver), with
 * the agent's and the SC's CPU% and the agent's RSS sampled from /proc. Medians of
 * the repeats. Writes the table into docs/PERFORMANCE.md.
 *
 *   node --import tsx scripts/bench.ts [--repeats N] [--seconds S] [--quick]
 *                                      [--only kernel,l2tpns,emulator] [--no-write]
 *
 * --quick is one repeat of 2 s (a smoke run; not for the record).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_USER, L2tpnsSc, l2tpnsAvailable } from '../test/lab/l2tpns';
import { scLayout, type ScLayout } from '../test/lab/topology';
import type { AgentProc } from '../test/helpers/agent-proc';
import { startFastAgent } from '../test/integration/dataplane-lab';
import { EmulatorProc } from '../test/peer/emulator-proc';

const args = process.argv.slice(2);
const QUICK = args.includes('--quick');
const opt = (name: string, dflt: number): number => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const REPEATS = opt('repeats', Number(process.env.BENCH_REPEATS ?? (QUICK ? 1 : 3)));
const SECONDS = opt('seconds', QUICK ? 2 : 4);
const WRITE = !args.includes('--no-write') && !QUICK;
const onlyAt = args.indexOf('--only');
const SCENARIOS = ['kernel', 'l2tpns', 'emulator'] as const;
type Scenario = (typeof SCENARIOS)[number];
const ONLY: Scenario[] = onlyAt >= 0 ? (args[onlyAt + 1]!.split(',') as Scenario[]) : [...SCENARIOS];
const FAR = '203.0.113.1';
const HZ = 100;
const ROOT = join(__dirname, '..');

type Test = 'tcp1' | 'tcp4' | 'udp64';
const TESTS: Test[] = ['tcp1', 'tcp4', 'udp64'];
interface Sample {
  value: number; // Mbit/s for TCP, packets/s for UDP
  agentCpu: number | null;
  scCpu: number | null;
  /** Highest VmRSS of the agent seen while iperf3 ran. */
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

function statusMb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function iperf(lay: ScLayout, target: string, test: Test, agentPid?: number, scPid?: number): Promise<Sample> {
  const srv = lay.sc.spawn('iperf3', ['-s', '-1', '-B', target]);
  await new Promise((r) => setTimeout(r, 300));
  const a0 = agentPid ? cpuTicks(agentPid) : 0;
  const s0 = scPid ? cpuTicks(scPid) : 0;
  const t0 = Date.now();
  let peak = 0;
  const sampler = setInterval(() => {
    if (agentPid) peak = Math.max(peak, statusMb(agentPid, 'VmRSS'));
  }, 200);
  const flags = test === 'udp64' ? ['-u', '-b', '0', '-l', '64'] : test === 'tcp4' ? ['-P', '4'] : [];
  const cli = lay.cpe.spawn('iperf3', ['-c', target, '-t', String(SECONDS), '-J', ...flags]);
  let out = '';
  cli.stdout!.on('data', (d: Buffer) => (out += d));
  await new Promise((r) => cli.on('exit', r));
  clearInterval(sampler);
  const secs = (Date.now() - t0) / 1000;
  const agentCpu = agentPid ? ((cpuTicks(agentPid) - a0) / HZ / secs) * 100 : null;
  const scCpu = scPid ? ((cpuTicks(scPid) - s0) / HZ / secs) * 100 : null;
  await new Promise((r) => (srv.exitCode !== null ? r(null) : srv.on('exit', r)));
  const j = JSON.parse(out) as { error?: string; end: { sum_received?: { bits_per_second: number }; sum?: { packets: number; lost_packets: number; seconds: number } } };
  if (j.error) throw new Error(`iperf3 ${test} to ${target}: ${j.error}`);
  const value =
    test === 'udp64'
      ? (j.end.sum!.packets - j.end.sum!.lost_packets) / j.end.sum!.seconds
      : j.end.sum_received!.bits_per_second / 1e6;
  return { value, agentCpu, scCpu, agentRssMb: agentPid ? peak : null };
}

const results = Object.fromEntries(SCENARIOS.map((s) => [s, { tcp1: [], tcp4: [], udp64: [] }])) as unknown as Record<Scenario, Record<Test, Sample[]>>;
const hwm: Partial<Record<Scenario, number>> = {};

/** The agent in cpe with an IPv4 softwire (host role: the default route goes into sw0). */
async function startAgent(lay: ScLayout, user: string, password: string): Promise<AgentProc> {
  const a = startFastAgent(lay.cpe, ['--sc', lay.scAddress, '--user', user, '--ncp', 'ipv4', '--mode', 'host'], password);
  await a.waitState('up', 20_000);
  return a;
}

async function withL2tpns(body: (lay: ScLayout, agentPid: number, scPid: number) => Promise<void>): Promise<number> {
  const lay = scLayout();
  lay.sc.ip(['addr', 'add', `${FAR}/32`, 'dev', 'lo']);
  const sc = await L2tpnsSc.start(lay.sc, { bindAddress: lay.scAddress, ipv6Prefix: null });
  let a: AgentProc | undefined;
  try {
    a = await startAgent(lay, DEFAULT_USER.name, DEFAULT_USER.password);
    await body(lay, a.proc.pid!, sc.pid()!);
    return statusMb(a.proc.pid!, 'VmHWM');
  } finally {
    await a?.stop();
    await sc.stop();
    sc.cleanup();
    lay.topo.destroy();
  }
}

async function withEmulator(body: (lay: ScLayout, agentPid: number, scPid: number) => Promise<void>): Promise<number> {
  const lay = scLayout();
  lay.sc.ip(['addr', 'add', `${FAR}/32`, 'dev', 'lo']);
  const emu = await EmulatorProc.start(lay.sc, {
    host: lay.scAddress,
    port: 1701,
    ppp: { users: [{ name: 'bench', password: 'bench' }], ipcp: { local: '100.64.0.1', peer: '100.64.0.2', dns: ['192.0.2.53'] } },
    data: { tun: 'emu0' },
  });
  let a: AgentProc | undefined;
  try {
    a = await startAgent(lay, 'bench', 'bench');
    await emu.waitEvent((e) => e.type === 'data-route', 5000, 'route of the IPCP peer into the emulator TUN');
    await body(lay, a.proc.pid!, emu.proc.pid!);
    return statusMb(a.proc.pid!, 'VmHWM');
  } finally {
    await a?.stop();
    await emu.stop();
    lay.topo.destroy();
  }
}

async function main(): Promise<void> {
  // bin/softwire runs dist/: build it so a clean clone (or a stale bundle) measures the sources.
  execFileSync(process.execPath, [join(ROOT, 'scripts', 'build.mjs')], { stdio: 'inherit' });
  if (ONLY.includes('kernel')) {
    const lay = scLayout();
    try {
      for (let r = 0; r < REPEATS; r++) for (const t of TESTS) results.kernel[t].push(await iperf(lay, lay.scAddress, t));
    } finally {
      lay.topo.destroy();
    }
  }
  const run = (s: Scenario) => async (l: ScLayout, agentPid: number, scPid: number) => {
    for (let r = 0; r < REPEATS; r++) for (const t of TESTS) results[s][t].push(await iperf(l, FAR, t, agentPid, scPid));
  };
  if (ONLY.includes('l2tpns')) {
    const avail = l2tpnsAvailable();
    if (avail.ok) hwm.l2tpns = await withL2tpns(run('l2tpns'));
    else process.stderr.write(`bench: l2tpns scenario skipped: ${avail.message}\n`);
  }
  if (ONLY.includes('emulator')) hwm.emulator = await withEmulator(run('emulator'));
  const table = render();
  process.stdout.write(`${table}\n`);
  if (WRITE) writeDoc(table);
}

const fmt = (v: number | null | undefined, d = 0): string => (v === null || v === undefined || Number.isNaN(v) ? '-' : v.toFixed(d));

function render(): string {
  const rows = [
    '| scenario | test | median | vs kernel | agent CPU % | SC CPU % | agent RSS MB (peak during test) | agent VmHWM MB (whole run) |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const s of SCENARIOS) {
    for (const t of TESTS) {
      const xs = results[s][t];
      if (xs.length === 0) continue;
      const v = median(xs.map((x) => x.value));
      const k = median(results.kernel[t].map((x) => x.value));
      const unit = t === 'udp64' ? 'pps' : 'Mbit/s';
      const col = (f: (x: Sample) => number | null) => (f(xs[0]!) !== null ? median(xs.map((x) => f(x)!)) : null);
      const ratio = s === 'kernel' ? '1.00' : Number.isNaN(k) ? '-' : (v / k).toFixed(2);
      rows.push(
        `| ${s} | ${t} | ${fmt(v)} ${unit} | ${ratio} | ${fmt(col((x) => x.agentCpu))} | ${fmt(col((x) => x.scCpu))} | ${fmt(col((x) => x.agentRssMb), 1)} | ${fmt(hwm[s], 1)} |`,
      );
    }
  }
  return rows.join('\n');
}

function writeDoc(table: string): void {
  const file = join(ROOT, 'docs', 'PERFORMANCE.md');
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

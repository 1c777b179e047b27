/**
 * npm run bench: data-path throughput and cost of the agent, in one run, on this machine.
 *
 * Host scenarios: iperf3 from the cpe namespace (where the agent runs, host role) to
 * an address on the SC side's loopback. Router scenarios: iperf3 from a LAN-host
 * namespace behind the cpe (the agent in router role, NAT44), forwarded traffic,
 * which is where the kernel hands the TUN GSO super-packets.
 *
 *   kernel-host, kernel-router   plain routing over the veths (the upper bound)
 *   relay-host, relay-router     the baseline: a minimal C TUN<->UDP relay pair with
 *                                recvmmsg/sendmmsg and no offloads (scripts/bench/relay.c,
 *                                built here with cc); every figure is divided by it
 *   l2tpns-off, l2tpns-on        the agent (bin/softwire, the shipped bundle) against l2tpns,
 *                                offloads switched off (--no-offloads) and on
 *   emu-off, emu-on              against the project's SC emulator in data mode, with the
 *                                emulator's offloads off/on as the agent's (so the SC is not
 *                                the bottleneck when measuring the agent's offloads)
 *   router-emu-off, router-emu-on
 *
 * Each: iperf3 TCP one stream up (tcp1) and down (tcp1r, -R), 4 streams up (tcp4) and
 * 64-byte UDP up (udp64: packets/s at the receiver); the agent's (or cpe relay's) CPU
 * seconds per GB and per million packets, SC CPU%, peak RSS, machine busy % and load.
 * Medians of the repeats; each repeat is a round over all scenarios (a pair compared in
 * the targets then shares the machine's load drift). Writes the tables into
 * docs/PERFORMANCE.md. --diag prints per test the agent's system calls by kind (perf),
 * UDP receive drops in the SC's and the agent's namespace (nstat), TUN queue drops and
 * the GSO/GRO counters.
 *
 *   node --import tsx scripts/bench.ts [--repeats N] [--seconds S] [--quick]
 *                                      [--only kernel-host,emu-on,...] [--tests tcp1,udp64]
 *                                      [--diag] [--no-write]
 *
 * --quick is one repeat of 2 s (a smoke run; nothing written unless --write).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { DEFAULT_USER, L2tpnsSc, l2tpnsAvailable } from '../test/lab/l2tpns';
import { type Netns, link } from '../test/lab/netns';
import { scLayout, type ScLayout } from '../test/lab/topology';
import type { AgentProc } from '../test/helpers/agent-proc';
import { startFastAgent } from '../test/integration/dataplane-lab';
import { EmulatorProc } from '../test/peer/emulator-proc';
import { bytes, superPacket, sum16 } from '../test/helpers/offload';

const args = process.argv.slice(2);
const QUICK = args.includes('--quick');
const opt = (name: string, dflt: number): number => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const REPEATS = opt('repeats', Number(process.env.BENCH_REPEATS ?? (QUICK ? 1 : 3)));
const SECONDS = opt('seconds', QUICK ? 2 : 4);
const WRITE = !args.includes('--no-write') && (!QUICK || args.includes('--write'));
const SCENARIOS = [
  'kernel-host',
  'relay-host',
  'l2tpns-off',
  'l2tpns-on',
  'emu-off',
  'emu-on',
  'kernel-router',
  'relay-router',
  'router-emu-off',
  'router-emu-on',
  // Not in a default run (--only): offloads on but one of them vetoed (SOFTWIRE_OFFLOADS_OFF), to see what each does against l2tpns.
  'l2tpns-nogso',
  'l2tpns-nogro',
  'l2tpns-novnet',
] as const;
type Scenario = (typeof SCENARIOS)[number];
const EXTRA: readonly Scenario[] = ['l2tpns-nogso', 'l2tpns-nogro', 'l2tpns-novnet'];
const VETO: Partial<Record<Scenario, string>> = { 'l2tpns-nogso': 'udp-gso', 'l2tpns-nogro': 'udp-gro', 'l2tpns-novnet': 'vnet-hdr' };
const onlyAt = args.indexOf('--only');
const ONLY: Scenario[] = onlyAt >= 0 ? (args[onlyAt + 1]!.split(',') as Scenario[]) : SCENARIOS.filter((s) => !EXTRA.includes(s));
/** --diag: per test, the agent's system calls by kind (perf, where it works), the SC's UDP drops (nstat) and the offload counters. */
const DIAG = args.includes('--diag');
const FAR = '203.0.113.1';
const LAN_NET = '192.168.77.0/24';
const HZ = 100;
const ROOT = join(__dirname, '..');
/** The softwire MTU the agent derives on a 1500-byte WAN; the relay's TUNs use it too. */
const TUN_MTU = 1460;

type Test = 'tcp1' | 'tcp1r' | 'tcp4' | 'udp64';
const testsAt = args.indexOf('--tests');
const ALL_TESTS: Test[] = ['tcp1', 'tcp1r', 'tcp4', 'udp64'];
const TESTS: Test[] = testsAt >= 0 ? (args[testsAt + 1]!.split(',') as Test[]) : ALL_TESTS;
interface Sample {
  value: number; // Mbit/s for TCP, packets/s for UDP
  /** CPU seconds of the agent (or the cpe relay) during the test, and the system part of it. */
  agentCpuS: number | null;
  agentSysS: number | null;
  /** TUN read/write system calls of the agent during the test. */
  agentRw: number | null;
  scCpu: number | null;
  secs: number;
  /** Bytes received; packets the agent moved (UDP: from its status counters, or received where there is none). */
  bytes: number;
  packets: number;
  agentRssMb: number | null;
  /** Whole machine: busy share of all CPUs during the test, and the 1-minute load at its start. */
  busyPct: number;
  load1: number;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)]! : NaN;
};

function cpuTicks(pid: number): number {
  const [u, s] = userSys(pid);
  return u + s;
}

/** utime and stime (fields 14, 15): user time is ours, system time the kernel's work in our context. */
function userSys(pid: number): [number, number] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return [Number(f[11]), Number(f[12])];
}

/** read-like plus write-like system calls (/proc/PID/io): the TUN reads and writes (socket calls are not counted there). */
function rwCalls(pid: number): number {
  const io = readFileSync(`/proc/${pid}/io`, 'utf8');
  return Number(/syscr: (\d+)/.exec(io)?.[1] ?? NaN) + Number(/syscw: (\d+)/.exec(io)?.[1] ?? NaN);
}

function statusMb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** [busy, total] jiffies of all CPUs. */
function machineTicks(): [number, number] {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return [total - f[3]! - (f[4] ?? 0), total];
}

const load1 = (): number => Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);

/** Resolves once iperf3 -s says it listens (--forceflush: a pipe is block-buffered), or after 10 s: the client retries. */
function listening(srv: ChildProcess): Promise<void> {
  return new Promise((res) => {
    const t = setTimeout(res, 10_000);
    let seen = '';
    srv.stdout!.on('data', (d: Buffer) => {
      seen += d;
      if (seen.includes('listening')) {
        clearTimeout(t);
        res();
      }
    });
  });
}

/** Waits for a process to exit, killing it after `ms` (a server whose client never came). */
function exited(p: ChildProcess, ms: number): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
  return new Promise((res) => {
    const t = setTimeout(() => p.kill(), ms);
    p.on('exit', () => {
      clearTimeout(t);
      res();
    });
  });
}

interface Env {
  client: Netns;
  sc: Netns;
  /** Where the agent (or relay) runs. */
  cpe?: Netns;
  agentPid?: number;
  scPid?: number;
  /** Packets the agent moved so far (status: tunIn + tunOut); absent for the relay. */
  moved?: () => Promise<number>;
  /** The agent's status counters (counters.data). */
  data?: () => Promise<Record<string, number>>;
  hwm(): number;
}

async function iperf(env: Env, test: Test): Promise<Sample> {
  const srv = env.sc.spawn('iperf3', ['-s', '-1', '--forceflush', '-B', FAR]);
  await listening(srv);
  const { agentPid, scPid } = env;
  const a0 = agentPid ? userSys(agentPid) : [0, 0];
  const rw0 = agentPid ? rwCalls(agentPid) : 0;
  const mv0 = env.moved ? await env.moved() : 0;
  const s0 = scPid ? cpuTicks(scPid) : 0;
  const m0 = machineTicks();
  const l1 = load1();
  const diag = DIAG ? await startDiag(env) : undefined;
  const t0 = Date.now();
  let peak = 0;
  const sampler = setInterval(() => {
    if (agentPid) peak = Math.max(peak, statusMb(agentPid, 'VmRSS'));
  }, 200);
  const flags = test === 'udp64' ? ['-u', '-b', '0', '-l', '64'] : test === 'tcp4' ? ['-P', '4'] : test === 'tcp1r' ? ['-R'] : [];
  let out = '';
  // A loaded machine can refuse the first connection (server not yet accepting): try again, it waits for one client.
  for (let attempt = 0; attempt < 3; attempt++) {
    out = '';
    const cli = env.client.spawn('iperf3', ['-c', FAR, '-t', String(SECONDS), '-J', ...flags]);
    cli.stdout!.on('data', (d: Buffer) => (out += d));
    await new Promise((r) => cli.on('exit', r));
    if (!out.includes('unable to connect')) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  clearInterval(sampler);
  const secs = (Date.now() - t0) / 1000;
  const m1 = machineTicks();
  const a1 = agentPid ? userSys(agentPid) : [0, 0];
  const agentCpuS = agentPid ? (a1[0]! + a1[1]! - a0[0]! - a0[1]!) / HZ : null;
  const agentSysS = agentPid ? (a1[1]! - a0[1]!) / HZ : null;
  const agentRw = agentPid ? rwCalls(agentPid) - rw0 : null;
  const moved = env.moved ? (await env.moved()) - mv0 : null;
  const scCpu = scPid ? ((cpuTicks(scPid) - s0) / HZ / secs) * 100 : null;
  await exited(srv, 10_000);
  const j0 = JSON.parse(out) as { end: { sum_received?: { bytes: number }; sum?: { packets: number } } };
  if (diag) await diag(test, j0.end.sum_received?.bytes ?? (j0.end.sum?.packets ?? 0) * 64);
  const j = JSON.parse(out) as {
    error?: string;
    end: { sum_received?: { bits_per_second: number; bytes: number }; sum?: { packets: number; lost_packets: number; seconds: number } };
  };
  if (j.error) throw new Error(`iperf3 ${test} to ${FAR}: ${j.error}`);
  const busyPct = ((m1[0] - m0[0]) / Math.max(1, m1[1] - m0[1])) * 100;
  if (test === 'udp64') {
    const received = j.end.sum!.packets - j.end.sum!.lost_packets;
    // Cost per packet the agent handled (the SC may drop many of them); the relay has no counter: per packet received.
    const packets = moved ?? received;
    return { value: received / j.end.sum!.seconds, agentCpuS, agentSysS, agentRw, scCpu, secs, bytes: packets * 64, packets, agentRssMb: agentPid ? peak : null, busyPct, load1: l1 };
  }
  const b = j.end.sum_received!.bytes;
  return { value: j.end.sum_received!.bits_per_second / 1e6, agentCpuS, agentSysS, agentRw, scCpu, secs, bytes: b, packets: b / (TUN_MTU - 40), agentRssMb: agentPid ? peak : null, busyPct, load1: l1 };
}

const SYSCALLS = ['read', 'write', 'writev', 'sendmmsg', 'sendmsg', 'sendto', 'recvmmsg', 'recvfrom', 'epoll_wait', 'epoll_pwait'];

/** Packets the namespace's links dropped on transmit (a full TUN queue: the reader fell behind). */
function linkDrops(ns: Netns): number {
  const j = JSON.parse(ns.exec('ip', ['-s', '-j', 'link'])) as { stats64?: { tx?: { dropped?: number } } }[];
  return j.reduce((a, l) => a + (l.stats64?.tx?.dropped ?? 0), 0);
}

/** nstat counters of a namespace (absolute, history untouched). */
function nstat(ns: Netns): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of ns.exec('nstat', ['-saz']).split('\n')) {
    const m = /^(\w+)\s+(\d+)/.exec(line);
    if (m) out[m[1]!] = Number(m[2]);
  }
  return out;
}

/**
 * Starts the --diag probes for one test; the returned function stops them and prints
 * one line: system calls per GB (per Mpkt for UDP) by kind, the SC namespace's UDP
 * receive drops, the agent's GSO/GRO counters, and the SC's CPU.
 */
async function startDiag(env: Env): Promise<(test: Test, bytes: number) => Promise<void>> {
  const n0 = nstat(env.sc);
  const k0 = env.cpe ? nstat(env.cpe) : {};
  const l0 = env.cpe ? linkDrops(env.cpe) : 0;
  const c0 = env.data ? await env.data() : {};
  let perfOut = '';
  const perf = env.agentPid
    ? spawn('perf', ['stat', '-x', ',', '-e', SYSCALLS.map((c) => `syscalls:sys_enter_${c}`).join(','), '-p', String(env.agentPid)], { stdio: ['ignore', 'ignore', 'pipe'] })
    : undefined;
  perf?.stderr!.on('data', (d: Buffer) => (perfOut += d));
  perf?.on('error', () => {});
  return async (test, bytes) => {
    if (perf) {
      perf.kill('SIGINT');
      await exited(perf, 5000);
    }
    const n1 = nstat(env.sc);
    const k1 = env.cpe ? nstat(env.cpe) : {};
    const l1 = env.cpe ? linkDrops(env.cpe) : 0;
    const c1 = env.data ? await env.data() : {};
    const per = test === 'udp64' ? bytes / 64 / 1e6 : bytes / 1e9;
    const unit = test === 'udp64' ? 'Mpkt' : 'GB';
    const calls = perfOut
      .split('\n')
      .map((l) => l.split(','))
      .filter((f) => f.length > 2 && /^\d+$/.test(f[0]!))
      .map((f) => `${f[2]!.replace('syscalls:sys_enter_', '')}=${Math.round(Number(f[0]) / per)}`)
      .filter((x) => !x.endsWith('=0'));
    const d = (k: string) => (n1[k] ?? 0) - (n0[k] ?? 0);
    const c = (k: string) => (c1[k] ?? 0) - (c0[k] ?? 0);
    const trains = c('udp.gsoTrains');
    process.stderr.write(
      `diag ${test}: calls per ${unit}: ${calls.join(' ') || '(perf unavailable)'}; SC UDP in ${d('UdpInDatagrams')} rcvbuf-drops ${d('UdpRcvbufErrors')}; agent side UDP rcvbuf-drops ${(k1.UdpRcvbufErrors ?? 0) - (k0.UdpRcvbufErrors ?? 0)}, cpe tx drops ${l1 - l0}; ` +
        `agent gso trains ${trains} (${trains ? (c('udp.gsoDatagrams') / trains).toFixed(1) : '-'} per train), gro trains ${c('udp.groTrains')}, joined ${c('tun.joinedOut')} (${c('tun.joinedSegments')} segs), tunIn ${c('tunIn')} tunOut ${c('tunOut')}\n`,
    );
  };
}

const results = Object.fromEntries(SCENARIOS.map((s) => [s, Object.fromEntries(ALL_TESTS.map((t) => [t, []]))])) as unknown as Record<Scenario, Record<Test, Sample[]>>;
const hwm: Partial<Record<Scenario, number>> = {};

/** sc -- cpe, and for the router role a LAN host behind cpe. FAR is on sc's loopback. */
function layout(router: boolean): { lay: ScLayout; client: Netns; lanDev?: string } {
  const lay = scLayout();
  lay.sc.ip(['addr', 'add', `${FAR}/32`, 'dev', 'lo']);
  if (!router) return { lay, client: lay.cpe };
  const lan = lay.topo.ns('lan');
  const v = link(lay.cpe, '192.168.77.1/24', lan, '192.168.77.2/24');
  lan.ip(['route', 'add', 'default', 'via', '192.168.77.1']);
  return { lay, client: lan, lanDev: v.a };
}

function agentArgs(lay: ScLayout, user: string, router: boolean, lanDev: string | undefined, offload: boolean): string[] {
  const a = ['--sc', lay.scAddress, '--user', user, '--ncp', 'ipv4', '--mode', router ? 'router' : 'host'];
  if (router) a.push('--lan', lanDev!);
  if (!offload) a.push('--no-offloads');
  return a;
}

let relayBin = '';
function buildRelay(): string {
  if (!relayBin) {
    relayBin = join(mkdtempSync(join(tmpdir(), 'softwire-bench-')), 'relay');
    execFileSync('cc', ['-O2', '-Wall', '-o', relayBin, join(ROOT, 'scripts', 'bench', 'relay.c')], { stdio: 'inherit' });
  }
  return relayBin;
}

function ready(p: ChildProcess): Promise<void> {
  return new Promise((res, rej) => {
    const t = setTimeout(() => rej(new Error('relay did not start')), 10_000);
    p.stdout!.once('data', () => {
      clearTimeout(t);
      res();
    });
    p.on('exit', (c) => rej(new Error(`relay exited ${c}`)));
  });
}

/** Runs `body` with the scenario's setup; returns the agent's VmHWM. */
async function withScenario(s: Scenario, body: (env: Env) => Promise<void>): Promise<void> {
  const router = s.includes('router');
  const { lay, client, lanDev } = layout(router);
  const cleanups: (() => Promise<void> | void)[] = [() => lay.topo.destroy()];
  try {
    let env: Env;
    if (s.startsWith('kernel')) {
      lay.cpe.ip(['route', 'add', `${FAR}/32`, 'via', lay.scAddress]);
      if (router) {
        lay.cpe.sysctl('net.ipv4.ip_forward', '1');
        lay.sc.ip(['route', 'add', LAN_NET, 'via', lay.cpeAddress]);
      }
      env = { client, sc: lay.sc, hwm: () => NaN };
    } else if (s.startsWith('relay')) {
      const bin = buildRelay();
      const a = lay.cpe.spawn(bin, ['rly0', lay.cpeAddress, '1702', lay.scAddress, '1702']);
      const b = lay.sc.spawn(bin, ['rly1', lay.scAddress, '1702', lay.cpeAddress, '1702']);
      cleanups.push(() => {
        a.kill();
        b.kill();
      });
      await Promise.all([ready(a), ready(b)]);
      lay.cpe.ip(['addr', 'add', '100.64.9.2/32', 'dev', 'rly0']);
      lay.cpe.ip(['link', 'set', 'rly0', 'mtu', String(TUN_MTU), 'up']);
      lay.cpe.ip(['route', 'add', `${FAR}/32`, 'dev', 'rly0', 'src', '100.64.9.2']);
      lay.sc.ip(['link', 'set', 'rly1', 'mtu', String(TUN_MTU), 'up']);
      lay.sc.ip(['route', 'add', '100.64.9.2/32', 'dev', 'rly1']);
      if (router) {
        lay.cpe.sysctl('net.ipv4.ip_forward', '1');
        lay.sc.ip(['route', 'add', LAN_NET, 'dev', 'rly1']);
      }
      env = { client, sc: lay.sc, agentPid: a.pid, scPid: b.pid, hwm: () => statusMb(a.pid!, 'VmHWM') };
    } else {
      const offload = !s.endsWith('-off');
      let user = 'bench';
      let password = 'bench';
      let scPid: number | undefined;
      if (s.startsWith('l2tpns')) {
        const sc = await L2tpnsSc.start(lay.sc, { bindAddress: lay.scAddress, ipv6Prefix: null });
        cleanups.push(async () => {
          await sc.stop();
          sc.cleanup();
        });
        user = DEFAULT_USER.name;
        password = DEFAULT_USER.password;
        scPid = sc.pid();
      } else {
        const emu = await EmulatorProc.start(lay.sc, {
          host: lay.scAddress,
          port: 1701,
          ppp: { users: [{ name: 'bench', password: 'bench' }], ipcp: { local: '100.64.0.1', peer: '100.64.0.2', dns: ['192.0.2.53'] } },
          data: { tun: 'emu0', offload },
        });
        cleanups.push(() => emu.stop());
        scPid = emu.proc.pid;
      }
      const veto = VETO[s];
      const a: AgentProc = startFastAgent(lay.cpe, agentArgs(lay, user, router, lanDev, offload), password, veto ? { SOFTWIRE_OFFLOADS_OFF: veto } : undefined);
      cleanups.push(async () => {
        await a.stop();
      });
      await a.waitState('up', 20_000);
      if (router) await a.waitLog(/NAT44/, 10_000);
      // The SC routes the IPCP peer address into the session: wait until FAR answers.
      for (let i = 0; ; i++) {
        try {
          client.exec('ping', ['-c', '1', '-W', '1', FAR]);
          break;
        } catch (e) {
          if (i === 20) throw e;
        }
      }
      const st = await a.status();
      offloadsSeen[s] = st.offloads ?? [];
      const moved = async () => {
        const d = (await a.status()).counters.data;
        return (d.tunIn ?? 0) + (d.tunOut ?? 0);
      };
      const data = async () => (await a.status()).counters.data as Record<string, number>;
      env = { client, sc: lay.sc, cpe: lay.cpe, agentPid: a.proc.pid, scPid, moved, data, hwm: () => statusMb(a.proc.pid!, 'VmHWM') };
    }
    await body(env);
    const h = env.hwm();
    if (!Number.isNaN(h)) hwm[s] = Math.max(hwm[s] ?? 0, h);
  } finally {
    for (const c of cleanups.reverse()) await c();
  }
}

const offloadsSeen: Partial<Record<Scenario, string[]>> = {};

/**
 * Why the cutting is in C: gso_split on a 64 KB super-packet (scripts/bench/split-cost.c,
 * built here) against the checksum pass alone in TypeScript (the independent checksum
 * of the tests), the least a TypeScript cut would have to do per byte.
 */
function splitCost(): string {
  const bin = join(dirname(buildRelay()), 'split-cost');
  execFileSync('cc', ['-O2', '-Wall', '-o', bin, join(ROOT, 'scripts', 'bench', 'split-cost.c')], { stdio: 'inherit' });
  const n = QUICK ? 2000 : 20000;
  const [cSplit, cSum, segs, cJoin] = execFileSync(bin, [String(n)], { encoding: 'utf8' }).trim().split(' ').map(Number) as [number, number, number, number];
  const sp = superPacket({ version: 4, flags: 0x18, options: [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2], payload: bytes(65535 - 52, 1) }, 1408);
  const m = QUICK ? 200 : 2000;
  const t = process.hrtime.bigint();
  let x = 0;
  for (let i = 0; i < m; i++) x += sum16(sp, VNET_HDR, sp.length);
  const jsNs = Number(process.hrtime.bigint() - t) / m;
  if (x === -1) process.stderr.write('unreachable: keeps the checksum loop from being optimised away\n');
  const gbps = (ns: number) => ((65535 * 8) / ns).toFixed(1);
  return (
    `Where the cutting runs (load ${load1()}): gso_split in C cuts a 64 KB TCP super-packet into ${segs} packets (copy, IPv4 and TCP checksums) in ` +
    `${(cSplit / 1000).toFixed(1)} µs (${gbps(cSplit)} Gbit/s) and gro_coalesce joins them again (checking each checksum) in ${(cJoin / 1000).toFixed(1)} µs; the checksum pass alone takes ${(cSum / 1000).toFixed(1)} µs in C and ` +
    `${(jsNs / 1000).toFixed(1)} µs in TypeScript (${gbps(jsNs)} Gbit/s), so a TypeScript cut would cost more per byte than the whole C one.`
  );
}
const VNET_HDR = 10;

async function main(): Promise<void> {
  // bin/softwire runs dist/: build it so a clean clone (or a stale bundle) measures the sources.
  execFileSync(process.execPath, [join(ROOT, 'scripts', 'build.mjs')], { stdio: 'inherit' });
  const l2 = l2tpnsAvailable();
  // Rounds: every scenario once per repeat, so that a pair compared in the targets (offloads
  // on/off, agent/relay) sees the same drift of a shared machine's load, not one scenario
  // the quiet minutes and the other the busy ones.
  for (let r = 0; r < REPEATS; r++) {
    for (const s of ONLY) {
      if (s.startsWith('l2tpns') && !l2.ok) {
        if (r === 0) process.stderr.write(`bench: ${s} skipped: ${l2.message}\n`);
        continue;
      }
      process.stderr.write(`bench: round ${r + 1}/${REPEATS} ${s} (load ${load1()})\n`);
      await withScenario(s, async (env) => {
        for (const t of TESTS) results[s][t].push(await iperf(env, t));
      });
    }
  }
  const split = splitCost();
  const table = render();
  const targets = renderTargets();
  process.stdout.write(`${table}\n\n${targets}\n\n${split}\n`);
  if (WRITE) writeDoc(table, targets, split);
}

const fmt = (v: number | null | undefined, d = 0): string => (v === null || v === undefined || Number.isNaN(v) ? '-' : v.toFixed(d));

function med(s: Scenario, t: Test, f: (x: Sample) => number | null): number {
  const xs = results[s][t].map(f).filter((v): v is number => v !== null);
  return median(xs);
}

/** CPU seconds (or another per-sample quantity) per GB (TCP) or per million packets (UDP), from the summed samples. */
function cost(s: Scenario, t: Test, f: (x: Sample) => number | null = (x) => x.agentCpuS): number {
  const xs = results[s][t];
  if (!xs.length || f(xs[0]!) === null) return NaN;
  const cpu = xs.reduce((a, x) => a + f(x)!, 0);
  return t === 'udp64' ? cpu / (xs.reduce((a, x) => a + x.packets, 0) / 1e6) : cpu / (xs.reduce((a, x) => a + x.bytes, 0) / 1e9);
}

const baseline = (s: Scenario): Scenario => (s.includes('router') ? 'relay-router' : 'relay-host');
const kernelOf = (s: Scenario): Scenario => (s.includes('router') ? 'kernel-router' : 'kernel-host');

function render(): string {
  const rows = [
    '| scenario | test | median | vs C relay | vs kernel | agent CPU % | agent CPU-s per GB (TCP) / per Mpkt (UDP) | of which system | TUN read+write calls per GB / Mpkt | SC CPU % | agent RSS MB (peak) | machine busy % | load1 |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const s of SCENARIOS) {
    for (const t of TESTS) {
      const xs = results[s][t];
      if (xs.length === 0) continue;
      const v = med(s, t, (x) => x.value);
      const ratio = (o: Scenario) => {
        const b = med(o, t, (x) => x.value);
        return Number.isNaN(b) ? '-' : (v / b).toFixed(2);
      };
      const unit = t === 'udp64' ? 'pps' : 'Mbit/s';
      const cpuPct = med(s, t, (x) => (x.agentCpuS === null ? null : (x.agentCpuS / x.secs) * 100));
      rows.push(
        `| ${s} | ${t} | ${fmt(v)} ${unit} | ${ratio(baseline(s))} | ${ratio(kernelOf(s))} | ${fmt(cpuPct)} | ${fmt(cost(s, t), 2)} | ${fmt(cost(s, t, (x) => x.agentSysS), 2)} | ${fmt(cost(s, t, (x) => x.agentRw))} | ${fmt(med(s, t, (x) => x.scCpu))} | ${fmt(med(s, t, (x) => x.agentRssMb), 1)} | ${fmt(med(s, t, (x) => x.busyPct))} | ${fmt(med(s, t, (x) => x.load1), 2)} |`,
      );
    }
  }
  const seen = Object.entries(offloadsSeen).map(([s, o]) => `${s}: ${o.length ? o.join(' ') : 'none'}`);
  if (seen.length) rows.push('', `Offloads in the agent's status: ${seen.join('; ')}.`);
  const hw = Object.entries(hwm).filter(([, v]) => !Number.isNaN(v)).map(([s, v]) => `${s} ${v.toFixed(1)}`);
  if (hw.length) rows.push('', `Agent (or cpe relay) VmHWM over the whole scenario, MB: ${hw.join(', ')}.`);
  return rows.join('\n');
}

function renderTargets(): string {
  const lines = ['Targets (issue 17), ratios within this run:', ''];
  const check = (what: string, got: number, want: string, ok: boolean) => lines.push(`- ${what}: ${Number.isNaN(got) ? 'not measured' : `${got.toFixed(2)} (${want}) ${ok ? 'met' : 'MISSED'}`}`);
  for (const [s, t] of [
    ['emu-on', 'tcp1'],
    ['emu-on', 'tcp1r'],
    ['router-emu-on', 'tcp1'],
    ['router-emu-on', 'tcp1r'],
  ] as [Scenario, Test][]) {
    const r = med(s, t, (x) => x.value) / med(baseline(s), t, (x) => x.value);
    check(`${s} ${t} / ${baseline(s)} ${t}`, r, 'want >= 3', r >= 3);
  }
  for (const t of ['tcp1', 'tcp1r'] as Test[]) {
    const r = cost('l2tpns-on', t) / cost('l2tpns-off', t);
    check(`agent CPU-s per GB against l2tpns, offloads on / off, ${t}`, r, 'want <= 0.5', r <= 0.5);
  }
  for (const [on, off] of [
    ['l2tpns-on', 'l2tpns-off'],
    ['emu-on', 'emu-off'],
  ] as [Scenario, Scenario][]) {
    const r = med(on, 'udp64', (x) => x.value) / med(off, 'udp64', (x) => x.value);
    check(`64-byte UDP pps ${on} / ${off}`, r, 'want >= 1 (noise ±10%)', r >= 0.9);
  }
  // What bounds the two l2tpns targets, from the same samples.
  for (const t of ['tcp1', 'tcp1r'] as Test[]) {
    const r = cost('l2tpns-on', t, (x) => x.agentSysS) / cost('l2tpns-off', t);
    lines.push(`- floor of the CPU ratio, ${t}: the kernel's work in the agent's context alone with offloads is ${Number.isNaN(r) ? 'not measured' : r.toFixed(2)} of all the agent's CPU without (l2tpns moves one datagram per PPP frame)`);
  }
  for (const [on, off] of [
    ['l2tpns-on', 'l2tpns-off'],
    ['emu-on', 'emu-off'],
  ] as [Scenario, Scenario][]) {
    const rate = (sc: Scenario) => med(sc, 'udp64', (x) => x.packets / x.secs);
    const r = rate(on) / rate(off);
    if (!Number.isNaN(r)) lines.push(`- 64-byte UDP packets the agent moved per second (its counters, before the SC's socket), ${on} / ${off}: ${r.toFixed(2)}`);
  }
  const rss = Math.max(...(['l2tpns-on', 'emu-on', 'router-emu-on'] as Scenario[]).flatMap((s) => TESTS.map((t) => med(s, t, (x) => x.agentRssMb))).filter((v) => !Number.isNaN(v)));
  check('highest agent RSS while forwarding with offloads, MB', Number.isFinite(rss) ? rss : NaN, 'want <= 60', rss <= 60);
  return lines.join('\n');
}

function writeDoc(table: string, targets: string, split: string): void {
  const file = join(ROOT, 'docs', 'PERFORMANCE.md');
  let doc: string;
  try {
    doc = readFileSync(file, 'utf8');
  } catch {
    doc = '# Performance\n\n<!-- bench:start -->\n<!-- bench:end -->\n';
  }
  const block = [
    '<!-- bench:start -->',
    `Last run: ${new Date().toISOString()}, ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), kernel ${readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim()}, Node ${process.version}, ${REPEATS} repeats of ${SECONDS} s, medians.`,
    `Command: \`node --import tsx scripts/bench.ts --repeats ${REPEATS} --seconds ${SECONDS}${onlyAt >= 0 ? ` --only ${ONLY.join(',')}` : ''}\` (npm run bench).`,
    '',
    table,
    '',
    targets,
    '',
    split,
    '<!-- bench:end -->',
  ].join('\n');
  doc = doc.includes('<!-- bench:start -->') ? doc.replace(/<!-- bench:start -->[\s\S]*<!-- bench:end -->/, block) : `${doc}\n${block}\n`;
  writeFileSync(file, doc);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});

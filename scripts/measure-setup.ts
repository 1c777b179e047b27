/**
 * Measures how fast the agent brings a softwire up against a real SC (l2tpns +
 * FreeRADIUS in a namespace), over N runs (default 20):
 *   1. process start -> tunnel and session up
 *   2. session up -> IPV6CP opened
 *   3. process start -> delegated prefix numbered on the LAN (router mode, one LAN veth)
 * from the agent's own JSON log timestamps. Prints median/min/max as a table and JSON.
 *
 *   node --import tsx scripts/measure-setup.ts [N]
 *
 * Needs root and l2tpns/freeradius (apt). A measurement, not a test: not part of npm test.
 */
import { DEFAULT_USER, L2tpnsSc, l2tpnsAvailable } from '../test/lab/l2tpns';
import { link } from '../test/lab/netns';
import { scLayout } from '../test/lab/topology';
import { AgentProc, type LogLine } from '../test/helpers/agent-proc';

interface Run {
  sessionUpMs: number;
  ipv6cpAfterSessionMs: number;
  lanPrefixMs: number;
}

const METRICS: { key: keyof Run; label: string }[] = [
  { key: 'sessionUpMs', label: 'start -> tunnel+session up' },
  { key: 'ipv6cpAfterSessionMs', label: 'session up -> IPV6CP opened' },
  { key: 'lanPrefixMs', label: 'start -> delegated prefix on LAN' },
];

const at = (l: LogLine | undefined, what: string): number => {
  if (!l || typeof l.time !== 'string') throw new Error(`no timestamped log line for ${what}`);
  return Date.parse(l.time);
};

function summary(xs: number[]): { median: number; min: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, min: s[0]!, max: s[s.length - 1]! };
}

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 20);
  if (!Number.isInteger(n) || n < 1) throw new Error('N must be a positive integer');
  const avail = l2tpnsAvailable();
  if (!avail.ok) throw new Error(avail.message);
  const lay = scLayout();
  const lanNs = lay.topo.ns('lan');
  const lanIf = link(lay.cpe, undefined, lanNs, undefined).a;
  let sc: L2tpnsSc | undefined;
  const runs: Run[] = [];
  try {
    sc = await L2tpnsSc.start(lay.sc, { bindAddress: lay.scAddress });
    for (let i = 0; i < n; i++) {
      const t0 = Date.now();
      const a = AgentProc.start(lay.cpe, ['--sc', lay.scAddress, '--user', DEFAULT_USER.name, '--mode', 'router', '--lan', lanIf], {
        password: DEFAULT_USER.password,
      });
      try {
        const lan = await a.waitLog(/^LAN numbered from/, 20_000);
        const session = at(a.find(/^session up/), 'session up');
        const ipv6cp = at(a.find(/^IPV6CP up/), 'IPV6CP up');
        const r: Run = { sessionUpMs: session - t0, ipv6cpAfterSessionMs: ipv6cp - session, lanPrefixMs: at(lan, 'LAN numbered') - t0 };
        runs.push(r);
        process.stderr.write(`run ${i + 1}/${n}: ${JSON.stringify(r)}\n`);
      } finally {
        await a.stop();
      }
    }
  } finally {
    if (sc) {
      await sc.stop();
      sc.cleanup();
    }
    lay.topo.destroy();
  }
  const result = Object.fromEntries(METRICS.map((m) => [m.key, summary(runs.map((r) => r[m.key]))]));
  const w = Math.max(...METRICS.map((m) => m.label.length));
  console.log(`${'metric (ms)'.padEnd(w)}  ${'median'.padStart(8)} ${'min'.padStart(8)} ${'max'.padStart(8)}   (N=${runs.length})`);
  for (const m of METRICS) {
    const s = result[m.key]!;
    console.log(`${m.label.padEnd(w)}  ${s.median.toFixed(0).padStart(8)} ${s.min.toFixed(0).padStart(8)} ${s.max.toFixed(0).padStart(8)}`);
  }
  console.log(JSON.stringify({ n: runs.length, ...result, runs }));
}

main().catch((e: unknown) => {
  console.error((e as Error).message);
  process.exit(1);
});

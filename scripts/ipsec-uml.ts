// Runs the IPsec lab of test/interop/ipsec-uml.test.ts by hand and prints what the
// guest recorded: `node --import tsx scripts/ipsec-uml.ts [perf] [CASE,...]` (root).
// With `perf` it measures iperf3 across the softwire with IPsec off, on, and on
// behind NAT, in the same guest (docs/PERFORMANCE.md). Needs what the test needs.
import { build } from 'esbuild';
import { join, resolve } from 'node:path';
import { bootGuest, readGuestFile, removeGuestDir, umlUnavailable } from '../test/lab/uml';

const ROOT = resolve(__dirname, '..');

async function main(): Promise<void> {
  const why = umlUnavailable();
  if (why) throw new Error(why);
  const perf = process.argv.includes('perf');
  const cases = process.argv.slice(2).filter((a) => a !== 'perf')[0] ?? '';
  const out = join(ROOT, 'dist/uml/ipsec-guest.js');
  await build({ entryPoints: [join(ROOT, 'test/interop/ipsec-uml-guest.ts')], outfile: out, bundle: true, platform: 'node', target: 'node20', format: 'cjs', logLevel: 'warning' });
  const t0 = Date.now();
  const g = await bootGuest(`IPSEC_CASES=${cases} node ${out} /mnt ${perf ? 'perf' : ''}`, { timeoutMs: 900_000 });
  process.stdout.write(`guest ran ${((Date.now() - t0) / 1000).toFixed(0)} s${g.timedOut ? ' (timed out)' : ''}\n${readGuestFile(g, 'progress.log')}`);
  for (const line of readGuestFile(g, 'results.jsonl').split('\n').filter(Boolean)) {
    const f = JSON.parse(line) as Record<string, unknown>;
    process.stdout.write(perf ? `${String(f.name)}: ${String(f.mbps)} Mbit/s, MTU ${String(f.mtu)}\n` : `${line}\n`);
  }
  removeGuestDir(g.dir);
}

main().catch((e: Error) => {
  process.stderr.write(`${e.message}\n`);
  process.exit(1);
});

/**
 * The fuzz campaign (npm run fuzz): every decoder on the packet path and the
 * protocol cores behind them, FUZZ_RUNS inputs each (default 1,000,000).
 *
 *   npm run fuzz                       every target
 *   npm run fuzz -- l2tp core.lac      targets whose name starts with an argument
 *   FUZZ_RUNS=20000 npm run fuzz       a shorter campaign
 *   FUZZ_SEED=123 FUZZ_PATH=45:1:0 npm run fuzz -- core.lac   replay a reported failure
 *
 * Exits 1 if any target let an unexpected exception out (the report names the
 * seed, counterexample path and input), 2 on bad arguments.
 */
import { runTarget, TARGETS, type TargetResult } from '../test/property/fuzz-targets';

const runs = Number(process.env.FUZZ_RUNS ?? 1_000_000);
if (!Number.isInteger(runs) || runs < 1) {
  console.error(`FUZZ_RUNS must be a positive integer, not "${process.env.FUZZ_RUNS}"`);
  process.exit(2);
}
const filters = process.argv.slice(2);
const chosen = TARGETS.filter((t) => filters.length === 0 || filters.some((f) => t.name.startsWith(f)));
if (chosen.length === 0) {
  console.error(`no target matches ${filters.join(' ')}; targets: ${TARGETS.map((t) => t.name).join(', ')}`);
  process.exit(2);
}
const fixedSeed = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : undefined;
const path = process.env.FUZZ_PATH;

const fmt = (n: number) => n.toLocaleString('en-US');
const cols = ['target', 'inputs', 'rejected', 'accepted', 'time s', 'inputs/s'];
const widths = [20, 11, 11, 11, 8, 9];
const row = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');

console.log(`fuzz campaign: ${fmt(runs)} inputs per target, ${chosen.length} targets${path ? ` (replaying path ${path})` : ''}`);
console.log('rejected: the decoder threw its typed error; for a core (a sequence of 1-8 datagrams), every datagram was counted as dropped/ignored');
console.log(row(cols));
const results: TargetResult[] = [];
for (const t of chosen) {
  const seed = fixedSeed ?? (Date.now() ^ (Math.random() * 0x7fffffff)) | 0;
  const r = runTarget(t, runs, seed, path);
  results.push(r);
  const rate = r.inputs / (r.ms / 1000);
  console.log(row([r.name, fmt(r.inputs), fmt(r.rejected), fmt(r.accepted), (r.ms / 1000).toFixed(1), fmt(Math.round(rate))]));
  if (r.failure) {
    console.log(`  FAILED (${t.covers})`);
    console.log(`  reproduce: FUZZ_SEED=${r.seed} FUZZ_PATH=${r.failure.path} npm run fuzz -- ${r.name}`);
    console.log(`  input: ${r.failure.input}`);
    console.log(`  ${r.failure.error.split('\n').slice(0, 8).join('\n  ')}`);
  }
}
const failed = results.filter((r) => r.failure);
const total = results.reduce((a, r) => a + r.inputs, 0);
const secs = results.reduce((a, r) => a + r.ms, 0) / 1000;
console.log(`${fmt(total)} inputs in ${secs.toFixed(1)} s; ${failed.length === 0 ? 'no unexpected exception' : `${failed.length} target(s) FAILED: ${failed.map((r) => r.name).join(', ')}`}`);
process.exit(failed.length === 0 ? 0 : 1);

/**
 * Long-run soak (npm run soak): simulated days (default 30) of the real Agent and
 * Connection against an in-process SC on a fake clock (see test/helpers/soak.ts).
 * Prints one line per day and a summary; exits 1 if the soak is unhealthy
 * (soakProblems). Run with --expose-gc (the npm script does) for exact heap figures.
 */
import { Command, InvalidArgumentError } from 'commander';
import { type DaySample, runSoak, soakProblems, type SoakOptions } from '../test/helpers/soak';

const integerAtLeast = (min: number) => (v: string) => {
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || n < min) throw new InvalidArgumentError(`expected a whole number of at least ${min}`);
  return n;
};

const envDays = process.env.SOAK_DAYS;
const program = new Command('soak')
  .description('Simulate days of softwire life in seconds: the real agent (Supervisor, Connection, installer) against an in-process SC on a fake clock, with a StopCCN, 5 minutes of SC silence and a CDN every day.')
  .option('--days <n>', 'simulated days (at least 2: growth is judged from day 1 to the last)', integerAtLeast(2), 30)
  .option('--seed <n>', "seed of the Supervisor's backoff jitter (the run repeats for a seed)", integerAtLeast(0), 1)
  .addHelpText(
    'after',
    `
Timers: L2TP HELLO 60 s, LCP echo 30 s (3 failures), SC HELLO 30 s, DHCPv6 T1/T2
600/900 s (valid 1800 s), reconnect backoff from 2 s, capped at 60 s. Faults at 05:00
(StopCCN), 11:00 (5 minutes of silence: echo failure, then dials that fail until it
ends) and 17:00 (CDN) every day; the agent's Supervisor must bring the softwire back.

Each line is a sample at a day boundary: pending timers, heap after GC, open fake UDP
transports, tunnels the SC holds, unacknowledged control messages (LAC/SC), leaves of
"softwire status", and addresses/routes in the fake kernel. None of them may grow.

Exit status: 0 healthy; 1 when the softwire is not up at the end, a count is off what
its interval gives (echoes, HELLOs, renewals, ups, redials), or anything grew; 2 on a
bad option. SOAK_DAYS sets the default of --days (for npm run soak).

Examples:
  npm run soak                      30 days (about a minute)
  npm run soak -- --days 7
  npx tsx scripts/soak.ts --days 3 --seed 42`,
  )
  .showHelpAfterError('(soak --help shows the options)')
  // A bad option is status 2, so that 1 always means an unhealthy soak.
  .exitOverride((e) => process.exit(e.exitCode === 0 ? 0 : 2));
if (envDays !== undefined) {
  try {
    program.setOptionValueWithSource('days', integerAtLeast(2)(envDays), 'env');
  } catch (e) {
    program.error(`SOAK_DAYS: ${(e as Error).message}, not "${envDays}"`);
  }
}
program.parse();

const { days, seed } = program.opts<{ days: number; seed: number }>();
const opts: SoakOptions = { days, seed, helloS: 60, echoS: 30, scHelloS: 30, t1: 600, t2: 900, preferred: 1200, valid: 1800 };
const mib = (b: number) => (b / 1048576).toFixed(2);

console.log(
  `soak: ${days} simulated days (seed ${seed}); hello ${opts.helloS} s, echo ${opts.echoS} s, SC HELLO ${opts.scHelloS} s, DHCPv6 T1/T2 ${opts.t1}/${opts.t2} s (valid ${opts.valid} s); StopCCN, 5 min silence and CDN daily`,
);
console.log('day   wall s  up   timers  heap MiB  transports  SC tunnels  unacked LAC/SC  status leaves  kernel objs');
const line = (s: DaySample) =>
  console.log(
    [
      String(s.day).padStart(3),
      (s.wallMs / 1000).toFixed(1).padStart(8),
      (s.up ? 'yes' : 'NO').padStart(4),
      String(s.timers).padStart(8),
      mib(s.heapUsed).padStart(9),
      String(s.transports).padStart(11),
      String(s.scTunnels).padStart(11),
      `${s.lacUnacknowledged}/${s.scUnacknowledged}`.padStart(15),
      String(s.statusLeaves).padStart(14),
      String(s.kernelObjects).padStart(12),
    ].join(' '),
  );

void (async () => {
  if (!(globalThis as { gc?: unknown }).gc) console.log('(no --expose-gc: heap figures taken after a gc obtained through V8 flags)');
  const r = await runSoak({ ...opts, onDay: line });
  const first = r.samples[0]!;
  const last = r.samples.at(-1)!;
  const secs = days * 86400;
  const perDay = last.day > first.day ? (last.heapUsed - first.heapUsed) / (last.day - first.day) : 0;
  console.log('');
  console.log(`simulated days        ${r.days}`);
  console.log(`wall time             ${(r.wallMs / 1000).toFixed(1)} s`);
  console.log(
    `events processed      ${r.events.toLocaleString('en-US')} (${r.timersFired.toLocaleString('en-US')} timers fired, ${r.datagrams.toLocaleString('en-US')} datagrams), ${Math.round(r.events / (r.wallMs / 1000)).toLocaleString('en-US')}/s`,
  );
  console.log(`timers pending        min ${r.timersMin}, max ${r.timersMax}; ${r.timersAfterStop} left after graceful stop`);
  console.log(
    `heap (after gc)       day 1 ${mib(first.heapUsed)} MiB, day ${last.day} ${mib(last.heapUsed)} MiB (${last.heapUsed >= first.heapUsed ? '+' : ''}${mib(last.heapUsed - first.heapUsed)} MiB, ${(perDay / 1024).toFixed(1)} KiB/day)`,
  );
  console.log(`connections           ${r.connections} dialled by the Supervisor (${r.reconnects} reconnects), up ${r.ups} times; faults ${JSON.stringify(r.faults)}`);
  console.log(`downs                 ${Object.entries(r.downs).map(([k, v]) => `${k} x${v}`).join('; ')}`);
  console.log(`LCP Echo-Requests     ${r.echoRequests} (ideal ${Math.round(secs / opts.echoS!)})`);
  console.log(`SC HELLOs             ${r.scHellos} (ideal ${Math.round(secs / opts.scHelloS!)}); LAC HELLOs ${r.lacHellos} (only in silences: ${r.faults.silence})`);
  console.log(`DHCPv6                Renew ${r.renews} (ideal ${Math.round(secs / opts.t1!)}), Rebind ${r.rebinds}, Solicit ${r.solicits}`);
  const problems = soakProblems(r, opts);
  console.log(problems.length === 0 ? 'soak: OK' : `soak: FAILED\n  ${problems.join('\n  ')}`);
  process.exit(problems.length === 0 ? 0 : 1);
})();

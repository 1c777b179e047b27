/**
 * Long-run soak (npm run soak): SOAK_DAYS simulated days (default 30) of the
 * agent's Connection against an in-process SC on a fake clock (see
 * test/helpers/soak.ts): HELLOs, LCP echoes, DHCPv6 renewals every 10 minutes,
 * and a StopCCN, a 5-minute silence and a CDN each day. Prints one line per day
 * and a summary; exits 1 if the session is not up at the end, if the counts are
 * off what the intervals give, or if timers, transports, queues, status or heap
 * grew. Run with --expose-gc (the npm script does) for exact heap figures.
 */
import { type DaySample, runSoak, soakProblems, type SoakOptions } from '../test/helpers/soak';

const days = Number(process.env.SOAK_DAYS ?? 30);
if (!Number.isInteger(days) || days < 2) {
  console.error(`SOAK_DAYS must be an integer of at least 2, not "${process.env.SOAK_DAYS}"`);
  process.exit(2);
}
const opts: SoakOptions = { days, helloS: 60, echoS: 30, scHelloS: 30, t1: 600, t2: 900, preferred: 1200, valid: 1800 };
const mib = (b: number) => (b / 1048576).toFixed(2);

console.log(
  `soak: ${days} simulated days; hello ${opts.helloS} s, echo ${opts.echoS} s, SC HELLO ${opts.scHelloS} s, DHCPv6 T1/T2 ${opts.t1}/${opts.t2} s (valid ${opts.valid} s); StopCCN, 5 min silence and CDN daily`,
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
  console.log('');
  console.log(`simulated days        ${r.days}`);
  console.log(`wall time             ${(r.wallMs / 1000).toFixed(1)} s`);
  console.log(`events processed      ${r.events.toLocaleString('en-US')} (${r.timersFired.toLocaleString('en-US')} timers fired, ${r.datagrams.toLocaleString('en-US')} datagrams)`);
  console.log(`timers pending        min ${r.timersMin}, max ${r.timersMax}; ${r.timersAfterStop} left after graceful stop`);
  console.log(`heap (after gc)       day 1 ${mib(first.heapUsed)} MiB, day ${last.day} ${mib(last.heapUsed)} MiB (${last.heapUsed >= first.heapUsed ? '+' : ''}${mib(last.heapUsed - first.heapUsed)} MiB)`);
  console.log(`connections           ${r.connections} dialled, up ${r.ups} times; faults ${JSON.stringify(r.faults)}`);
  console.log(`downs                 ${Object.entries(r.downs).map(([k, v]) => `${k} x${v}`).join('; ')}`);
  console.log(`LCP Echo-Requests     ${r.echoRequests} (ideal ${Math.round(secs / opts.echoS!)})`);
  console.log(`SC HELLOs             ${r.scHellos} (ideal ${Math.round(secs / opts.scHelloS!)}); LAC HELLOs ${r.lacHellos} (only in silences: ${r.faults.silence})`);
  console.log(`DHCPv6                Renew ${r.renews} (ideal ${Math.round(secs / opts.t1!)}), Rebind ${r.rebinds}, Solicit ${r.solicits}`);
  const problems = soakProblems(r, opts);
  console.log(problems.length === 0 ? 'soak: OK' : `soak: FAILED\n  ${problems.join('\n  ')}`);
  process.exit(problems.length === 0 ? 0 : 1);
})();

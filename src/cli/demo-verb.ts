import type { Command } from 'commander';
import { runDemo } from '../lab/demo';

export function registerDemoVerb(program: Command): void {
  program
    .command('demo')
    .description('run the whole job on a built-in lab: a local SC, this router and a LAN host in network namespaces')
    .option('--timeout <S>', 'seconds to wait for each step', '30')
    .addHelpText(
      'after',
      `
Builds three network namespaces (an SC running l2tpns + FreeRADIUS, a router
running "softwire run --mode router", and a LAN host with no configuration),
shows the layers coming up, prints the status, pings the SC side from the LAN
host across the softwire, and removes everything it made. Needs root and the
Debian packages l2tpns and freeradius (apt-get install l2tpns freeradius).

Exit codes: 0 the ping crossed the softwire, 1 a step failed, 2 missing root or packages.

Example:
  sudo softwire demo`,
    )
    .action(async (opts: { timeout: string }) => {
      // Start the agent the same way this process was started (bundle or source).
      const agentCommand = [process.execPath, ...process.execArgv, process.argv[1]!];
      process.exitCode = await runDemo({
        agentCommand,
        out: (l) => process.stdout.write(`${l}\n`),
        timeoutMs: Math.max(1, Number(opts.timeout) || 30) * 1000,
      });
    });
}

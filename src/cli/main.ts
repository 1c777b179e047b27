import { Command, Option } from 'commander';
import { VERSION } from '../version';
import { registerCheckConfigVerb } from './check-config-verb';
import { registerClientVerbs } from './client-verbs';
import { registerRunVerb } from './run-verb';
import { registerSdpVerb } from './sdp-verb';
import { registerUciVerb } from './uci-verb';

/**
 * The `softwire` command line. Only verbs that work are registered; each
 * feature adds its own in src/cli.
 */
export function buildProgram(): Command {
  const program = new Command();
  program
    .name('softwire')
    .description(
      'Softwire Initiator (RFC 5571): an L2TPv2 client that brings IPv6 to a host or home network across an IPv4-only access network (or IPv4 across IPv6-only).',
    )
    .version(VERSION, '-V, --version', 'print the version and exit')
    .helpOption('-h, --help', 'show help for softwire or for one verb')
    .addOption(
      new Option('--log-level <level>', 'log verbosity (default: info, or logLevel from the config file)').choices([
        'fatal',
        'error',
        'warn',
        'info',
        'debug',
        'trace',
        'silent',
      ]),
    )
    .showHelpAfterError('(run "softwire --help" for usage)')
    .addHelpText(
      'after',
      '\nLogs are JSON lines (pino) on stdout; pipe them through "pino-pretty" to read them.\n' +
        '\nExamples:\n' +
        '  softwire run --sc 192.0.2.1 --user cpe1 --password-file /etc/softwire/pw\n' +
        '  softwire check-config -c /etc/softwire.json\n' +
        '  softwire help run',
    );
  registerRunVerb(program);
  registerCheckConfigVerb(program);
  registerClientVerbs(program);
  registerSdpVerb(program);
  registerUciVerb(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  if (argv.length <= 2) {
    program.outputHelp();
    return;
  }
  await program.parseAsync(argv);
}

if (require.main === module) {
  main(process.argv).catch((e: unknown) => {
    process.stderr.write(`softwire: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
}

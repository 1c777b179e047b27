import type { Command } from 'commander';
import { ConfigError, maskSecrets, resolveSecrets } from '../config/load';
import { addConfigFlags, configFromFlags } from './config-flags';

export function registerCheckConfigVerb(program: Command): void {
  const cmd = program
    .command('check-config')
    .description('validate a configuration (file and flags) and print the effective config, secrets masked')
    .addHelpText(
      'after',
      `
Every problem is listed with the key, the bad value and what is allowed. Secret
files (--password-file, --tunnel-secret-file) are read, so a missing or
world-readable file is reported too.

Exit codes: 0 valid (warnings may be printed on stderr), 2 invalid.

Examples:
  softwire check-config -c /etc/softwire.json
  softwire check-config --sc 192.0.2.1 --lcp-echo-interval 90`,
    );
  addConfigFlags(cmd);
  cmd.action((_o, c: Command) => {
    try {
      const { config, warnings } = configFromFlags(c, true);
      resolveSecrets(config, warnings);
      for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
      process.stdout.write(`${JSON.stringify(maskSecrets(config), null, 2)}\n`);
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      process.stderr.write(`softwire: ${e.message}\n`);
      process.exitCode = 2;
    }
  });
}

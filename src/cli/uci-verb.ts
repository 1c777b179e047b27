import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { ConfigError } from '../config/load';
import { type UciConversion, convertNetifdJson, convertUci } from '../config/uci';

export const DEFAULT_UCI_FILE = '/etc/config/softwire';

function readInput(file: string): string {
  try {
    return readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (e) {
    throw new ConfigError([`${file}: cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`]);
  }
}

/** Runs the verb; returns the exit status (0, or 2 for a configuration that cannot run). */
export function uciConfig(file: string, opts: { section?: string; netifdJson?: boolean }, out: NodeJS.WritableStream, err: NodeJS.WritableStream): number {
  let result: UciConversion;
  try {
    const text = readInput(file);
    if (opts.netifdJson) {
      let data: unknown;
      try {
        data = JSON.parse(text);
      } catch (e) {
        throw new ConfigError([`${file}: not valid JSON: ${(e as Error).message}`]);
      }
      result = convertNetifdJson(data);
    } else {
      result = convertUci(text, file, opts.section);
    }
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    for (const p of e.problems) err.write(`softwire: ${p}\n`);
    return 2;
  }
  for (const w of result.warnings) err.write(`softwire: warning: ${w}\n`);
  out.write(`${JSON.stringify(result.json, null, 2)}\n`);
  return 0;
}

/**
 * `softwire uci-config [--section NAME] [--netifd-json] [FILE]`: prints the JSON
 * config for `softwire run -c`. Secrets are printed as they are: the init script
 * and the netifd handler write the output to a 0600 file under /var/run/softwire.
 */
export function registerUciVerb(program: Command): void {
  program
    .command('uci-config')
    .description(
      'print the JSON config (for "run -c") converted from an OpenWrt UCI file; secrets are included,\n' +
        'so write it to a file only root can read. Exits 2 and lists every bad option on failure.',
    )
    .argument('[file]', `UCI file, or "-" for stdin (default ${DEFAULT_UCI_FILE})`, DEFAULT_UCI_FILE)
    .option('-s, --section <name>', 'section to convert (name or @softwire[0]); default: the only softwire section')
    .option('--netifd-json', 'FILE holds the JSON netifd passes a protocol handler, not UCI text')
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  softwire uci-config --section main /etc/config/softwire\n' +
        '  softwire uci-config --section sw6 /etc/config/network',
    )
    .action((file: string, opts: { section?: string; netifdJson?: boolean }) => {
      process.exitCode = uciConfig(file, opts, process.stdout, process.stderr);
    });
}

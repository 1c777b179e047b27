import { type Command, Option } from 'commander';
import { ConfigError, type Loaded, readConfigFile, resolveConfig } from '../config/load';
import { FIELDS, flagName } from '../config/schema';

/**
 * Adds one flag per configuration key (generated from the schema, so every key
 * in the JSON file has a flag of the same meaning) plus `-c/--config FILE`.
 */
export function addConfigFlags(cmd: Command): Command {
  cmd.option('-c, --config <FILE>', 'JSON configuration file; flags override its keys');
  for (const f of FIELDS) {
    if (f.key === 'logLevel') continue; // a global option of the program
    const name = `--${flagName(f.key)}`;
    const def = f.default !== undefined && !(Array.isArray(f.default) && f.default.length === 0) ? ` (default: ${JSON.stringify(f.default)})` : '';
    if (f.kind === 'bool') {
      cmd.addOption(new Option(name, `${f.doc}${def}`));
      cmd.addOption(new Option(`--no-${flagName(f.key)}`, `turn ${f.key} off`).hideHelp());
      continue;
    }
    const repeat = f.kind === 'list' || f.kind === 'lan';
    const opt = new Option(`${name} <${f.arg ?? 'VALUE'}>`, `${f.doc}${repeat ? ' (repeatable)' : ''}${def}`);
    if (repeat) opt.argParser((v: string, prev: string[] | undefined) => [...(prev ?? []), v]);
    if (f.choices) opt.choices([...f.choices]);
    cmd.addOption(opt);
  }
  return cmd;
}

/** Builds the effective config from `-c FILE` and the flags of `cmd` (plus the global --log-level). */
export function configFromFlags(cmd: Command, forRun: boolean): Loaded {
  const opts = cmd.optsWithGlobals() as Record<string, unknown>;
  const fileWarnings: string[] = [];
  const file = typeof opts.config === 'string' ? readConfigFile(opts.config, fileWarnings) : {};
  const flags: Record<string, unknown> = {};
  for (const f of FIELDS) {
    const v = opts[f.key];
    if (v !== undefined) flags[f.key] = v;
  }
  const loaded = resolveConfig(file, flags, { forRun });
  loaded.warnings.unshift(...fileWarnings);
  return loaded;
}

export { ConfigError };

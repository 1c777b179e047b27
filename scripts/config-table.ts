// Prints the README's configuration table from the schema (src/config/schema.ts),
// so the documentation cannot drift from what the loader accepts.
import { FIELDS, flagName } from '../src/config/schema';

export function configTable(): string {
  const rows = FIELDS.map((f) => {
    const range =
      f.choices?.join(' \\| ') ??
      (f.min !== undefined ? `${f.min}–${f.max}` : f.kind === 'bool' ? 'true \\| false' : f.kind === 'list' || f.kind === 'lan' ? 'list' : 'text');
    const def = f.default === undefined || (Array.isArray(f.default) && f.default.length === 0) ? '—' : `\`${JSON.stringify(f.default)}\``;
    return `| \`${f.key}\` | \`--${flagName(f.key)}\` | ${def} | ${range} | ${f.doc.replace(/\|/g, '\\|')} |`;
  });
  return ['| key | flag | default | allowed | what and why |', '|---|---|---|---|---|', ...rows].join('\n');
}

if (require.main === module) process.stdout.write(`${configTable()}\n`);

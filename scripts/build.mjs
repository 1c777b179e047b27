// Bundles the CLI into one file (dist/softwire.js) for the router package and for
// `npx softwire`. netlink stays external: it loads its own prebuilt .node file.
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));

await build({
  entryPoints: ['src/cli/main.ts'],
  outfile: 'dist/softwire.js',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  minify: false,
  sourcemap: 'linked',
  external: ['netlink'],
  define: { SOFTWIRE_VERSION: JSON.stringify(pkg.version) },
  logLevel: 'warning',
});

import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { test } from 'node:test';
import { tsFiles } from '../helpers/source-files';

/**
 * The layer order of src/ (docs: the project brief): a module may import from its
 * own layer or a lower one, never from a layer above. Checked over the real import
 * graph so that a new upward import fails here rather than in review.
 */

const SRC = resolve(__dirname, '../../src');

/** Lowest first. Top-level files (log.ts, version.ts) and config sit with util/core: everything may read them. */
const LAYERS: readonly (readonly string[])[] = [
  ['util', 'core', 'config', '.'],
  ['l2tp', 'ppp', 'ipv6', 'ipv4', 'sdp'],
  // ipsec: IPsec step 0 (RFC 3193) drives charon over its VICI socket, an I/O edge like platform's netlink; the agent calls it.
  ['dataplane', 'lan', 'platform', 'native', 'io', 'ipsec'],
  ['agent'],
  ['cli'],
];

function layerOf(file: string): { dir: string; rank: number } {
  const rel = relative(SRC, file).split(sep);
  const dir = rel.length === 1 ? '.' : rel[0]!;
  const rank = LAYERS.findIndex((l) => l.includes(dir));
  return { dir, rank };
}


/** Relative import specifiers of a module: static imports/exports, import() and require(). */
export function importsOf(source: string): string[] {
  const out: string[] = [];
  const re = /(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*|^\s*import\s+)['"](\.{1,2}\/[^'"]+)['"]/gm;
  for (const m of source.matchAll(re)) out.push(m[1]!);
  return out;
}

test('every directory under src/ has a place in the layer order', () => {
  const dirs = readdirSync(SRC).filter((n) => statSync(join(SRC, n)).isDirectory());
  for (const d of dirs) assert.ok(LAYERS.some((l) => l.includes(d)), `src/${d} is in no layer`);
});

test('the import scanner sees static, type-only, re-export and dynamic imports', () => {
  const src = "import a from './a';\nimport type { B } from '../b';\nexport { C } from './c';\nconst d = await import('./d');\nimport './e';\n";
  assert.deepEqual(importsOf(src), ['./a', '../b', './c', './d', './e']);
});

test('no module under src/ imports from a layer above its own', () => {
  const upward: string[] = [];
  for (const file of tsFiles(SRC)) {
    const from = layerOf(file);
    for (const spec of importsOf(readFileSync(file, 'utf8'))) {
      const target = resolve(dirname(file), spec);
      if (!target.startsWith(SRC + sep)) continue;
      const to = layerOf(target);
      if (to.rank > from.rank) upward.push(`${relative(SRC, file)} -> ${spec} (${from.dir} below ${to.dir})`);
    }
  }
  assert.deepEqual(upward, []);
});

// Exit 0 when node_modules holds exactly what package-lock.json asks for, else
// print why not and exit 1. npm ci writes node_modules/.package-lock.json (its
// record of what it installed); we compare the two rather than file times, which
// git checkouts and copies change without changing any dependency.
import { existsSync, readFileSync } from 'node:fs';

const read = (f) => JSON.parse(readFileSync(f, 'utf8')).packages ?? {};
if (!existsSync('node_modules/.package-lock.json')) {
  console.log('node_modules is missing');
  process.exit(1);
}
const want = read('package-lock.json');
const have = read('node_modules/.package-lock.json');
for (const [path, entry] of Object.entries(want)) {
  if (path === '') continue;
  // Optional packages for other platforms (esbuild's, for one) are never installed.
  if (!have[path]) {
    if (entry.optional || entry.devOptional) continue;
    console.log(`node_modules lacks ${path}`);
    process.exit(1);
  }
  if (have[path].version !== entry.version) {
    console.log(`node_modules has ${path} ${have[path].version}, package-lock.json wants ${entry.version}`);
    process.exit(1);
  }
}
const extra = Object.keys(have).find((p) => !want[p]);
if (extra) {
  console.log(`node_modules has ${extra}, which package-lock.json does not list`);
  process.exit(1);
}

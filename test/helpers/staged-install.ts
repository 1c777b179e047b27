import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildSync } from 'esbuild';

/**
 * softwire installed the way the package installs it (scripts/build-ipk.sh --stage:
 * usr/bin/softwire, usr/lib/softwire/ with the bundle, the addon and netlink) in a
 * fresh directory every user can read, for tests that run the agent as an
 * unprivileged user. The checkout cannot serve: it may sit where that user cannot
 * even enter (root's home, /root, is 0700 on Debian, and that is where a newcomer
 * working as root clones). Made once per test process, removed when it exits.
 */
export interface StagedInstall {
  /** The staging root (0755). */
  readonly root: string;
  /** usr/bin/softwire: run it as `node <bin> ...`. */
  readonly bin: string;
  /** usr/lib/softwire: the bundle, softwire.node and node_modules/netlink. */
  readonly lib: string;
  /**
   * Bundles a TypeScript entry point (netlink left external, as in the shipped
   * bundle) into lib/<name>.js, where it finds the addon and netlink as the agent
   * does; returns its path.
   */
  bundle(entry: string, name: string): string;
}

const REPO = resolve(__dirname, '../..');
let staged: StagedInstall | undefined;

export function stagedInstall(): StagedInstall {
  if (staged) return staged;
  const root = mkdtempSync(join(tmpdir(), 'softwire-staged-'));
  process.on('exit', () => rmSync(root, { recursive: true, force: true }));
  chmodSync(root, 0o755);
  execFileSync('bash', [join(REPO, 'scripts/build-ipk.sh'), '--stage', root], { cwd: REPO, stdio: 'pipe' });
  const lib = join(root, 'usr/lib/softwire');
  const bundled = new Map<string, string>();
  staged = {
    root,
    bin: join(root, 'usr/bin/softwire'),
    lib,
    bundle(entry, name) {
      const done = bundled.get(entry);
      if (done) return done;
      const outfile = join(lib, `${name}.js`);
      bundled.set(entry, outfile);
      buildSync({ entryPoints: [entry], outfile, bundle: true, platform: 'node', target: 'node20', format: 'cjs', external: ['netlink'], logLevel: 'warning' });
      chmodSync(outfile, 0o644);
      return outfile;
    },
  };
  return staged;
}

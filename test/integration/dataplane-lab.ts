import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Netns } from '../../src/lab/netns';
import { AgentProc } from '../helpers/agent-proc';

/**
 * Starts the agent from source with the native UDP transport (src/dataplane/dev-main.ts)
 * inside `ns`, wrapped in the AgentProc helper so tests use its status/wait/stop. Used
 * by the dataplane tests and scripts/bench.ts until the agent opens the native
 * transport itself; then AgentProc.start on the bundle does the same.
 */
const ROOT = resolve(__dirname, '../..');

export function startFastAgent(ns: Netns, args: string[], password: string): AgentProc {
  const dir = mkdtempSync(join(tmpdir(), 'softwire-dp-'));
  const socket = join(dir, 'softwire.sock');
  const pw = join(dir, 'password');
  writeFileSync(pw, `${password}\n`, { mode: 0o600 });
  const proc = ns.spawn(
    'node',
    [
      '--import',
      'tsx',
      join(ROOT, 'src/dataplane/dev-main.ts'),
      'run',
      '--control-socket',
      socket,
      '--state-dir',
      join(dir, 'state'),
      '--resolv-file',
      join(dir, 'resolv.conf'),
      '--password-file',
      pw,
      ...args,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT },
  );
  const Ctor = AgentProc as unknown as new (p: typeof proc, socket: string, dir: string) => AgentProc;
  return new Ctor(proc, socket, dir);
}

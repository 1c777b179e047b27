import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/**
 * Runs the netifd protocol handler (openwrt/files/softwire.proto) and the agent's
 * notify script (softwire.script) under a POSIX shell against a recording shim of
 * netifd-proto.sh and jshn.sh (test/integration/fixtures/openwrt-netifd/shim.sh).
 * Every proto_* call lands in a log as one "name [arg] ..." line; proto_run_command
 * really starts the agent when the harness is told to (NETIFD_SHIM_EXEC=1).
 *
 * The agent on PATH as `softwire` is a parameter: the fake in the fixtures (runs its
 * --notify-command once, answers "status --json" with a canned status), or the
 * shipped bin/softwire for end-to-end runs against a real SC.
 */

export const REPO = resolve(__dirname, '../..');
export const FILES = join(REPO, 'openwrt/files');
export const SHIM_DIR = join(REPO, 'test/integration/fixtures/openwrt-netifd');
export const FAKE_AGENT = join(SHIM_DIR, 'bin/softwire');
export const REAL_AGENT = join(REPO, 'bin/softwire');
/** Shell under test: busybox ash when present (what OpenWrt runs), else dash. */
export const SH = process.env.SOFTWIRE_TEST_SH ?? (existsSync('/bin/busybox') ? '/bin/busybox' : 'dash');
export const SH_ARGS = SH.endsWith('busybox') ? ['sh'] : [];

const dirs: string[] = [];

/** Removes every harness directory made so far; register it with node:test's after(). */
export function removeHarnessDirs(): void {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

export interface HarnessOptions {
  /** The program installed as `softwire` on PATH (default: the fake agent). */
  agent?: string;
  /** Fixed "date +%s" for the fake clock in the fixtures (lifetime arithmetic). */
  fakeNow?: number;
  /** Network namespace the shell (and so the agent it starts) runs in. */
  netns?: string;
}

export interface Harness {
  dir: string;
  env: NodeJS.ProcessEnv;
  /** Runs shell code after sourcing the shim and the handler (INCLUDE_ONLY, as netifd's includes do). */
  sh(code: string, args?: string[]): { status: number | null; stdout: string; stderr: string };
  /** The recorded proto_* calls, one "name [arg] ..." line each. */
  calls(): string[];
  /** What the command started by proto_run_command wrote (stdout and stderr). */
  commandOutput(): string;
  /** Pid of the command started by proto_run_command, if any. */
  commandPid(): number | undefined;
  fakeLog(): string[];
  setStatus(s: unknown): void;
  clearCalls(): void;
}

// ip (for netns exec) lives in sbin, which a non-login PATH may lack.
const SBIN = ['/usr/sbin', '/sbin'];

export function harness(opts: HarnessOptions = {}): Harness {
  const dir = mkdtempSync(join(tmpdir(), 'softwire-netifd-'));
  dirs.push(dir);
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  // PATH: our date first (fixed clock when SOFTWIRE_FAKE_NOW is set), then the agent under test.
  symlinkSync(join(SHIM_DIR, 'bin/date'), join(bin, 'date'));
  symlinkSync(opts.agent ?? FAKE_AGENT, join(bin, 'softwire'));
  const log = join(dir, 'proto.log');
  const statusFile = join(dir, 'status.json');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: [bin, ...(process.env.PATH ?? '').split(':').filter(Boolean), ...SBIN].join(':'),
    NETIFD_SHIM_DIR: SHIM_DIR,
    NETIFD_SHIM_LOG: log,
    SOFTWIRE_OPENWRT_FILES: FILES,
    SOFTWIRE_RUNDIR: join(dir, 'run'),
    SOFTWIRE_NOTIFY: join(SHIM_DIR, 'notify'),
    SOFTWIRE_REPO: REPO,
    SOFTWIRE_FAKE_LOG: join(dir, 'fake.log'),
    SOFTWIRE_FAKE_STATUS: statusFile,
    ...(opts.fakeNow !== undefined ? { SOFTWIRE_FAKE_NOW: String(opts.fakeNow) } : {}),
  };
  const read = (f: string) => (existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter(Boolean) : []);
  return {
    dir,
    env,
    sh(code, args = []) {
      const script = `INCLUDE_ONLY=1\n. "$NETIFD_SHIM_DIR/shim.sh"\n. "$SOFTWIRE_OPENWRT_FILES/softwire.proto"\n${code}`;
      const argv = [...SH_ARGS, '-c', script, 'sh', ...args];
      const [cmd, full] = opts.netns ? ['ip', ['netns', 'exec', opts.netns, SH, ...argv]] : [SH, argv];
      const r: SpawnSyncReturns<string> = spawnSync(cmd, full, { env, encoding: 'utf8', timeout: 30_000 });
      return { status: r.status, stdout: r.stdout, stderr: r.stderr };
    },
    calls: () => read(log),
    commandOutput: () => (existsSync(`${log}.out`) ? readFileSync(`${log}.out`, 'utf8') : ''),
    commandPid: () => {
      const n = existsSync(`${log}.pid`) ? Number(readFileSync(`${log}.pid`, 'utf8').trim()) : NaN;
      return Number.isInteger(n) && n > 0 ? n : undefined;
    },
    fakeLog: () => read(join(dir, 'fake.log')),
    setStatus: (s) => writeFileSync(statusFile, JSON.stringify(s)),
    clearCalls: () => rmSync(log, { force: true }),
  };
}

/** Polls for a condition on a child process's output (not timer logic: the child runs for real). */
export async function until(what: string, check: () => boolean, ms = 15_000, detail?: () => string): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${detail ? `\n${detail()}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Runs the notify script as the agent would: `softwire.script STATE`, with the handler's exports. */
export function notify(h: Harness, state: string, extra: NodeJS.ProcessEnv = {}) {
  return spawnSync(join(SHIM_DIR, 'notify'), [state], {
    env: { ...h.env, INTERFACE: 'wan6', SOFTWIRE_DEVICE: 'sw-wan6', SOFTWIRE_CONTROL_SOCKET: join(h.dir, 'run/wan6.sock'), ...extra },
    encoding: 'utf8',
  });
}

/**
 * Splits the recorded calls into the updates netifd would have received: each
 * runs from proto_init_update to proto_send_update (calls outside one, such as
 * proto_export and proto_run_command, are left out).
 */
export function updates(calls: readonly string[]): string[][] {
  const out: string[][] = [];
  let cur: string[] | null = null;
  for (const c of calls) {
    if (c.startsWith('proto_init_update ')) cur = [];
    if (!cur) continue;
    cur.push(c);
    if (c.startsWith('proto_send_update ')) {
      out.push(cur);
      cur = null;
    }
  }
  return out;
}

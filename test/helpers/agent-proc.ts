import type { ChildProcess } from 'node:child_process';
import { chownSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { controlRequest } from '../../src/agent/control';
import type { AgentState, Status } from '../../src/agent/status';
import { onLines } from '../lab/lines';
import type { Netns } from '../lab/netns';

/**
 * Runs the shipped CLI bundle (`bin/softwire run`) inside a namespace, the way an
 * operator would, and talks to it through its control socket.
 */

const BIN = resolve(__dirname, '../../bin/softwire');

export interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

/**
 * Run the agent as an unprivileged user that keeps only `caps` (ambient
 * capabilities through setpriv), the way a systemd unit with User= and
 * AmbientCapabilities= would.
 */
export interface RunAs {
  uid: number;
  gid: number;
  /** Capability names without the CAP_ prefix, lower case (e.g. 'net_admin'); [] keeps none. */
  caps: readonly string[];
  /**
   * A character device bind-mounted over /dev/net/tun for this process only (`ip netns
   * exec` gives it a private mount namespace), for hosts whose /dev/net/tun is 0600
   * where most distributions ship 0666.
   */
  tunNode?: string;
}

export class AgentProc {
  readonly lines: LogLine[] = [];
  readonly stderr: string[] = [];
  private exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  private constructor(
    readonly proc: ChildProcess,
    readonly socket: string,
    readonly dir: string,
  ) {
    onLines(proc.stdout!, (line) => {
      try {
        this.lines.push(JSON.parse(line) as LogLine);
      } catch {
        this.lines.push({ level: 0, msg: line });
      }
    });
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (d: string) => this.stderr.push(d));
    this.exit = new Promise((res) => proc.on('exit', (code, signal) => res({ code, signal })));
  }

  /**
   * Starts `softwire run` in `ns` with the given flags (a control socket and state dir
   * are added). `bin` replaces the checkout's bin/softwire, e.g. with a staged install
   * an unprivileged runAs user can read (test/helpers/staged-install.ts).
   */
  static start(ns: Netns, args: string[], opts: { password?: string; runAs?: RunAs; bin?: string; env?: Record<string, string> } = {}): AgentProc {
    const dir = mkdtempSync(join(tmpdir(), 'softwire-agent-'));
    const runAs = opts.runAs;
    if (runAs) chownSync(dir, runAs.uid, runAs.gid);
    const socket = join(dir, 'softwire.sock');
    const extra: string[] = [];
    if (opts.password !== undefined) {
      const pw = join(dir, 'password');
      writeFileSync(pw, `${opts.password}\n`, { mode: 0o600 });
      if (runAs) chownSync(pw, runAs.uid, runAs.gid);
      extra.push('--password-file', pw);
    }
    const argv = ['node', opts.bin ?? BIN, 'run', '--control-socket', socket, '--state-dir', join(dir, 'state'), '--resolv-file', join(dir, 'resolv.conf'), ...extra, ...args];
    const [cmd, cmdArgs] = runAs ? dropPrivileges(runAs, argv) : [argv[0]!, argv.slice(1)];
    const p = ns.spawn(cmd, cmdArgs, { stdio: ['ignore', 'pipe', 'pipe'], ...(opts.env ? { env: { ...process.env, ...opts.env } } : {}) });
    return new AgentProc(p, socket, dir);
  }

  async status(): Promise<Status> {
    const r = await controlRequest(this.socket, { cmd: 'status' });
    if (!r.ok) throw new Error(r.error);
    return r.status as Status;
  }

  /** Polls status until `state` is reached; throws with the recent log on timeout. */
  async waitState(state: AgentState, ms: number): Promise<Status> {
    const end = Date.now() + ms;
    let last: Status | undefined;
    for (;;) {
      try {
        last = await this.status();
        if (last.state === state) return last;
      } catch {
        /* socket not there yet */
      }
      if (this.proc.exitCode !== null) throw new Error(`agent exited (${this.proc.exitCode}) before ${state}:\n${this.tail()}`);
      if (Date.now() > end) throw new Error(`agent not ${state} after ${ms} ms (state ${last?.state}):\n${this.tail()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** First log line whose message matches. */
  find(re: RegExp): LogLine | undefined {
    return this.lines.find((l) => re.test(l.msg));
  }

  async waitLog(re: RegExp, ms: number): Promise<LogLine> {
    const end = Date.now() + ms;
    for (;;) {
      const l = this.find(re);
      if (l) return l;
      if (Date.now() > end) throw new Error(`no log line matching ${re} within ${ms} ms:\n${this.tail()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  tail(n = 25): string {
    return [...this.lines.slice(-n).map((l) => `${l.level} ${l.msg} ${JSON.stringify({ ...l, level: undefined, msg: undefined, time: undefined, pid: undefined, name: undefined })}`), ...this.stderr].join('\n');
  }

  /** SIGTERM, then waits for exit; returns the exit code and how long the shutdown took. */
  async stop(ms = 5000): Promise<{ code: number | null; tookMs: number }> {
    const t0 = Date.now();
    if (this.proc.exitCode === null) this.proc.kill('SIGTERM');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), ms);
    const r = await this.exit;
    clearTimeout(timer);
    return { code: r.code, tookMs: Date.now() - t0 };
  }
}

/** The command line that runs `argv` as runAs.uid with only runAs.caps (for Netns.spawn/exec). */
export function dropPrivileges(runAs: RunAs, argv: string[]): [string, string[]] {
  const caps = runAs.caps.map((c) => `+${c}`).join(',');
  const setpriv = [
    'setpriv',
    `--reuid=${runAs.uid}`,
    `--regid=${runAs.gid}`,
    '--clear-groups',
    `--inh-caps=-all${caps ? `,${caps}` : ''}`,
    ...(caps ? [`--ambient-caps=${caps}`] : []),
    `--bounding-set=-all${caps ? `,${caps}` : ''}`,
    '--no-new-privs',
  ];
  if (!runAs.tunNode) return [setpriv[0]!, [...setpriv.slice(1), ...argv]];
  // The bind mount needs root, so it happens before setpriv drops it.
  return ['sh', ['-c', 'mount --bind "$0" /dev/net/tun && exec "$@"', runAs.tunNode, ...setpriv, ...argv]];
}

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { DEFAULT_USER, L2tpnsSc } from '../../src/lab/l2tpns';
import { link, type Netns } from '../../src/lab/netns';
import { scLayout, type ScLayout } from '../../src/lab/topology';
import { AgentProc, type LogLine } from '../helpers/agent-proc';

/** Shared set-up of the lifecycle tests: namespaces, l2tpns, the agent, the CLI. */

type After = { after: (fn: () => unknown) => void };

export async function withSc(t: After, opts: Partial<Parameters<typeof L2tpnsSc.start>[1]> = {}): Promise<{ lay: ScLayout; sc: L2tpnsSc }> {
  const lay = scLayout();
  t.after(() => lay.topo.destroy());
  const sc = await L2tpnsSc.start(lay.sc, { bindAddress: lay.scAddress, ...opts });
  t.after(async () => {
    await sc.stop();
    sc.cleanup();
  });
  return { lay, sc };
}

export function startAgent(t: After, lay: ScLayout, args: string[], password = DEFAULT_USER.password): AgentProc {
  const a = AgentProc.start(lay.cpe, ['--sc', lay.scAddress, '--user', DEFAULT_USER.name, ...args], { password });
  t.after(() => a.stop());
  return a;
}

/** A LAN segment behind the CPE: a veth into a namespace of its own; returns the CPE-side name. */
export function addLan(lay: ScLayout): { ifname: string; host: Netns } {
  const host = lay.topo.ns('lan');
  const l = link(lay.cpe, undefined, host, undefined);
  return { ifname: l.a, host };
}

/**
 * Waits until the agent's control socket exists. `softwire wait` run before the
 * agent has created it fails with exit 2 (cannot reach), so scripts started
 * together with the agent must wait for the file first.
 */
export async function socketReady(a: AgentProc, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!existsSync(a.socket)) {
    if (Date.now() > end) throw new Error(`no control socket after ${ms} ms:\n${a.tail()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const BIN = resolve(__dirname, '../../bin/softwire');

/** Runs `softwire VERB ...` from the root namespace (the control socket is a file, reachable from here). */
export function cli(args: string[], timeoutMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string; tookMs: number }> {
  const t0 = Date.now();
  return new Promise((res) => {
    const p = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('exit', (code) => {
      clearTimeout(timer);
      res({ code, stdout, stderr, tookMs: Date.now() - t0 });
    });
  });
}

/** When a log line was written (pino writes ISO times), in ms since the epoch. */
export const at = (l: LogLine): number => Date.parse(l.time as string);

/** Log lines after index `from` whose message matches. */
export function linesAfter(a: AgentProc, from: number, re: RegExp): LogLine[] {
  return a.lines.slice(from).filter((l) => re.test(l.msg));
}

/** Waits for a log line after index `from`. */
export async function waitLogAfter(a: AgentProc, from: number, re: RegExp, ms: number): Promise<LogLine> {
  const end = Date.now() + ms;
  for (;;) {
    const l = a.lines.slice(from).find((x) => re.test(x.msg));
    if (l) return l;
    if (Date.now() > end) throw new Error(`no log line matching ${re} within ${ms} ms:\n${a.tail()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

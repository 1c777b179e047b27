import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { DEFAULT_USER, L2tpnsSc } from '../lab/l2tpns';
import { onLines } from '../lab/lines';
import { link, type Netns } from '../lab/netns';
import { scLayout, type ScLayout } from '../lab/topology';
import { AgentProc, type LogLine } from '../helpers/agent-proc';
import type { Impairment, RelayStats } from '../peer/relay';

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

// ------------------------------------------------------------------ fault tests

const TOOLS = resolve(__dirname, 'fault-tools-main.ts');

/** A fault-tools-main.ts child in a namespace: JSON lines out, lines in. */
export class ToolProc {
  readonly out: Record<string, unknown>[] = [];
  readonly stderr: string[] = [];

  private constructor(readonly proc: ChildProcess) {
    onLines(proc.stdout!, (line) => {
      try {
        this.out.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        /* not ours */
      }
    });
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (d: string) => this.stderr.push(d));
  }

  static async start(t: After, ns: Netns, args: string[], ms = 15_000): Promise<ToolProc> {
    const p = new ToolProc(ns.spawn('node', ['--import', 'tsx', TOOLS, ...args], { stdio: ['pipe', 'pipe', 'pipe'] }));
    t.after(() => p.stop());
    await p.wait((o) => o.ready === true, ms, 'ready');
    return p;
  }

  send(line: string): void {
    this.proc.stdin!.write(`${line}\n`);
  }

  async wait(pred: (o: Record<string, unknown>) => boolean, ms: number, what: string, from = 0): Promise<Record<string, unknown>> {
    const end = Date.now() + ms;
    for (;;) {
      const o = this.out.slice(from).find(pred);
      if (o) return o;
      if (this.proc.exitCode !== null) throw new Error(`fault tool exited (${this.proc.exitCode}) waiting for ${what}: ${this.stderr.join('')}`);
      if (Date.now() > end) throw new Error(`fault tool: no ${what} within ${ms} ms: ${this.stderr.join('')}`);
      await sleep(25);
    }
  }

  stop(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
  }
}

export interface RaSeen {
  at: number;
  from: string;
  routerLifetime: number;
  prefixes: { prefix: string; valid: number; preferred: number }[];
}

/** Listens for Router Advertisements on a LAN host's interface. */
export class RaWatch {
  private constructor(private readonly tool: ToolProc) {}

  static async start(t: After, host: Netns, ifname: string): Promise<RaWatch> {
    return new RaWatch(await ToolProc.start(t, host, ['ra', ifname]));
  }

  get all(): RaSeen[] {
    return this.tool.out.flatMap((o) => (o.ra ? [o.ra as RaSeen] : []));
  }

  /** Sends a Router Solicitation from the LAN host (a router answers with an RA). */
  solicit(): void {
    this.tool.send('rs');
  }

  /** The first RA at or after `since` that makes us a default router and carries `prefix` (a /64) with a non-zero preferred lifetime. */
  async waitAnnounce(prefix: string, since: number, ms: number): Promise<RaSeen> {
    const end = Date.now() + ms;
    let lastRs = 0;
    for (;;) {
      const ra = this.all.find((r) => r.at >= since && r.routerLifetime > 0 && r.prefixes.some((p) => p.prefix === prefix && p.preferred > 0));
      if (ra) return ra;
      if (Date.now() > end || this.tool.proc.exitCode !== null) {
        throw new Error(`no RA announcing ${prefix} on the LAN within ${ms} ms; saw ${JSON.stringify(this.all.slice(-4))} ${this.tool.stderr.join('')} ${JSON.stringify(this.tool.out.slice(-4))}`);
      }
      // Unsolicited RAs follow changes only; ask now and then so a router that is up but quiet still shows it answers.
      if (Date.now() - lastRs > 4000) {
        lastRs = Date.now();
        this.solicit();
      }
      await sleep(25);
    }
  }
}

/** The impairment relay (test/peer/relay.ts) as a process in a namespace. */
export class RelayProc {
  private constructor(private readonly tool: ToolProc) {}

  static async start(t: After, ns: Netns, opts: { listenHost: string; listenPort: number; targetHost: string; targetPort: number; seed: number }): Promise<RelayProc> {
    return new RelayProc(await ToolProc.start(t, ns, ['relay', JSON.stringify(opts)]));
  }

  /** Replaces the impairment; resolves with the relay's counters so far. */
  async impair(imp: Partial<Impairment>): Promise<Record<'up' | 'down', RelayStats>> {
    const from = this.tool.out.length;
    this.tool.send(JSON.stringify(imp));
    return (await this.tool.wait((o) => o.stats !== undefined, 5000, 'relay stats', from)).stats as Record<'up' | 'down', RelayStats>;
  }
}

/** The fault line the reliability table is built from. */
export function faultLine(name: string, detectMs: number, upMs: number, extra: Record<string, string | number | boolean> = {}): string {
  const tail = Object.entries(extra).map(([k, v]) => ` ${k}=${typeof v === 'string' && /\s/.test(v) ? JSON.stringify(v) : v}`);
  return `fault=${name} detect_ms=${Math.round(detectMs)} up_ms=${Math.round(upMs)}${tail.join('')}`;
}

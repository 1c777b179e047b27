import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';

/**
 * Helpers for tests that build hosts out of network namespaces. Every name is
 * unique per call so that test files can run in parallel, and every object made
 * here is registered for removal so a failing test still cleans up.
 */

// ip, sysctl, nft live in sbin, which a non-login or service PATH may lack.
const PATH = [...new Set([...(process.env.PATH ?? '').split(':').filter(Boolean), '/usr/sbin', '/sbin', '/usr/bin', '/bin'])].join(':');
const ENV = { ...process.env, PATH };

/** Runs a command and returns stdout; throws with stderr in the message. */
export function run(cmd: string, args: string[], opts: { input?: string } = {}): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], input: opts.input, env: ENV });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${err.stderr?.trim() || err.message}`, { cause: e });
  }
}

/** A short unique tag; interface names must stay within 15 characters. */
export function tag(): string {
  return randomBytes(3).toString('hex');
}

export class Netns {
  private procs: ChildProcess[] = [];

  private constructor(readonly name: string) {}

  static create(role: string): Netns {
    const name = `sw-${role}-${tag()}`;
    run('ip', ['netns', 'add', name]);
    const ns = new Netns(name);
    ns.ip(['link', 'set', 'lo', 'up']);
    return ns;
  }

  /** `ip -n NS ...` */
  ip(args: string[]): string {
    return run('ip', ['-n', this.name, ...args]);
  }

  /** `ip -j -n NS ...` parsed as JSON. */
  ipJson<T = unknown>(args: string[]): T {
    const out = run('ip', ['-j', '-n', this.name, ...args]);
    return (out.trim() ? JSON.parse(out) : []) as T;
  }

  /** Runs a command inside the namespace and returns stdout. */
  exec(cmd: string, args: string[], opts: { input?: string } = {}): string {
    return run('ip', ['netns', 'exec', this.name, cmd, ...args], opts);
  }

  /** Starts a long-running process inside the namespace; killed by destroy(). */
  spawn(cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
    const p = spawn('ip', ['netns', 'exec', this.name, cmd, ...args], { stdio: 'pipe', env: ENV, ...opts });
    this.procs.push(p);
    return p;
  }

  sysctl(key: string, value: string): void {
    this.exec('sysctl', ['-qw', `${key}=${value}`]);
  }

  destroy(): void {
    for (const p of this.procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    this.procs = [];
    // Processes started outside spawn() (e.g. by the code under test) are killed too.
    try {
      const pids = run('ip', ['netns', 'pids', this.name]).split(/\s+/).filter(Boolean);
      for (const pid of pids) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
    } catch {
      /* namespace already gone */
    }
    try {
      run('ip', ['netns', 'del', this.name]);
    } catch {
      /* already gone */
    }
  }
}

/**
 * Connects two namespaces with a veth pair and gives each end an address
 * (CIDR notation, IPv4 or IPv6; either may be omitted). Returns the interface names.
 */
export function link(a: Netns, aAddr: string | undefined, b: Netns, bAddr: string | undefined): { a: string; b: string } {
  const t = tag();
  const an = `va${t}`;
  const bn = `vb${t}`;
  run('ip', ['link', 'add', an, 'netns', a.name, 'type', 'veth', 'peer', 'name', bn, 'netns', b.name]);
  for (const [ns, dev, addr] of [
    [a, an, aAddr],
    [b, bn, bAddr],
  ] as const) {
    if (addr) ns.ip(['addr', 'add', addr, 'dev', dev, ...(addr.includes(':') ? ['nodad'] : [])]);
    ns.ip(['link', 'set', dev, 'up']);
  }
  return { a: an, b: bn };
}

/** A set of namespaces torn down together; use with node:test's `t.after`. */
export class Topology {
  private readonly all: Netns[] = [];

  ns(role: string): Netns {
    const n = Netns.create(role);
    this.all.push(n);
    return n;
  }

  destroy(): void {
    for (const n of this.all.splice(0).reverse()) n.destroy();
  }
}

type Falsy = undefined | null | false | '' | 0;

/** Polls `check` until it returns a truthy value (returned) or `ms` passes. */
export async function waitFor<T>(what: string, ms: number, check: () => T | Falsy | Promise<T | Falsy>, everyMs = 50): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v as T;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

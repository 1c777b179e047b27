import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Netns } from './netns';

/**
 * A real Softwire Concentrator for tests, the demo and the benchmark: Debian's
 * l2tpns (user-space LNS) authenticating PPP logins against FreeRADIUS, both
 * running inside one network namespace with generated configuration.
 *
 * The quirks that shape this file are written up in shared/notes/l2tpns.md:
 * l2tpns signals its whole process group on exit (so it runs under setsid), its
 * pool and users files are at fixed paths under /etc (so they are bind-mounted
 * in a private mount namespace), and it answers L2TP only after it has elected
 * itself cluster master (so start() waits for that line in its log).
 */

export interface ScUser {
  name: string;
  password: string;
  /** RADIUS Framed-IP-Address; l2tpns takes one from its pool when absent. */
  framedIp?: string;
  /** RADIUS Delegated-IPv6-Prefix, e.g. 2001:db8:100::/56. Without it l2tpns answers no DHCPv6 at all. */
  delegatedPrefix?: string;
}

export interface L2tpnsOptions {
  /** The SC's address on its veth; l2tpns binds here. */
  bindAddress: string;
  /** L2TP tunnel secret (l2tp_secret). */
  tunnelSecret?: string;
  users?: ScUser[];
  /** `ipv6_prefix`: turns on IPV6CP and sets the RA /64. null turns IPv6 off. */
  ipv6Prefix?: string | null;
  pool?: string;
  dns?: [string, string];
  ipv6Dns?: string[];
  pppMaxConfigure?: number;
  pppRestartTime?: number;
  echoTimeout?: number;
  idleEchoTimeout?: number;
  debug?: number;
  dhcp6PreferredLifetime?: number;
  dhcp6ValidLifetime?: number;
  /** Extra raw config lines. */
  extra?: string[];
  /** How long FreeRADIUS and l2tpns each get to become ready (slow guests such as UML need more). */
  startTimeoutMs?: number;
}

export const DEFAULT_USER: Required<ScUser> = {
  name: 'cpe1',
  password: 'secret1',
  framedIp: '198.51.100.128',
  delegatedPrefix: '2001:db8:100::/56',
};

const RADIUS_SECRET = 'radsecret';

function radiusConf(dir: string): string {
  return `prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = /usr/sbin
logdir = ${dir}
raddbdir = ${dir}
radacctdir = ${dir}
name = radiusd
confdir = ${dir}
modconfdir = ${dir}
run_dir = ${dir}
db_dir = ${dir}
libdir = /usr/lib/freeradius
dictdir = /usr/share/freeradius
pidfile = ${dir}/radiusd.pid
max_request_time = 30
cleanup_delay = 0
max_requests = 1024
hostname_lookups = no
log {
  destination = files
  file = ${dir}/radius.log
  auth = yes
}
security {
  allow_core_dumps = no
  max_attributes = 200
  reject_delay = 0
  status_server = no
}
client localhost {
  ipaddr = 127.0.0.1
  secret = ${RADIUS_SECRET}
}
modules {
  pap {
  }
  chap {
  }
  files {
    filename = ${dir}/users
  }
  always ok {
    rcode = ok
  }
}
server default {
  listen {
    type = auth
    ipaddr = 127.0.0.1
    port = 1812
  }
  listen {
    type = acct
    ipaddr = 127.0.0.1
    port = 1813
  }
  authorize {
    chap
    files
    pap
  }
  authenticate {
    Auth-Type PAP {
      pap
    }
    Auth-Type CHAP {
      chap
    }
  }
  preacct {
  }
  accounting {
    ok
  }
  post-auth {
  }
}
`;
}

function radiusUsers(users: ScUser[]): string {
  return users
    .map((u) => {
      const reply: string[] = [];
      if (u.framedIp) reply.push(`Framed-IP-Address = ${u.framedIp}`);
      if (u.delegatedPrefix) reply.push(`Delegated-IPv6-Prefix = ${u.delegatedPrefix}`);
      const head = `${u.name} Cleartext-Password := "${u.password}"`;
      return reply.length ? `${head}\n\t${reply.join(',\n\t')}\n` : `${head}\n`;
    })
    .join('\n');
}

function l2tpnsConf(dir: string, o: L2tpnsOptions): string {
  const dns = o.dns ?? ['192.0.2.53', '192.0.2.54'];
  const lines = [
    `set debug ${o.debug ?? 3}`,
    `set log_file "${dir}/l2tpns.log"`,
    `set pid_file "${dir}/l2tpns.pid"`,
    `set bind_address ${o.bindAddress}`,
    `set l2tp_secret "${o.tunnelSecret ?? ''}"`,
    `set primary_dns ${dns[0]}`,
    `set secondary_dns ${dns[1]}`,
    'set primary_radius 127.0.0.1',
    `set radius_secret "${RADIUS_SECRET}"`,
    'set radius_authtypes "chap,pap"',
    'set cluster_interface lo',
    // The election waits one heartbeat timeout (tenths of a second); keep it short.
    'set cluster_hb_interval 5',
    'set cluster_hb_timeout 11',
    'set send_garp no',
    'set cli_bind_address 127.0.0.1',
    // Finite DHCPv6 lifetimes (l2tpns's default is infinite), so renewals and status show real numbers.
    `set dhcp6_preferred_lifetime ${o.dhcp6PreferredLifetime ?? 3600}`,
    `set dhcp6_valid_lifetime ${o.dhcp6ValidLifetime ?? 7200}`,
    'load plugin "sessionctl"',
  ];
  const v6 = o.ipv6Prefix === undefined ? '2001:db8:200::' : o.ipv6Prefix;
  if (v6) {
    lines.push(`set ipv6_prefix ${v6}`);
    const v6dns = o.ipv6Dns ?? [`${v6}53`];
    if (v6dns[0]) lines.push(`set primary_ipv6_dns ${v6dns[0]}`);
    if (v6dns[1]) lines.push(`set secondary_ipv6_dns ${v6dns[1]}`);
  }
  if (o.pppMaxConfigure !== undefined) lines.push(`set ppp_max_configure ${o.pppMaxConfigure}`);
  if (o.pppRestartTime !== undefined) lines.push(`set ppp_restart_time ${o.pppRestartTime}`);
  if (o.echoTimeout !== undefined) lines.push(`set echo_timeout ${o.echoTimeout}`);
  if (o.idleEchoTimeout !== undefined) lines.push(`set idle_echo_timeout ${o.idleEchoTimeout}`);
  lines.push(...(o.extra ?? []));
  return `${lines.join('\n')}\n`;
}

/** Whether l2tpns and freeradius are installed; the message says how to get them. */
export function l2tpnsAvailable(): { ok: boolean; message: string } {
  const missing = ['/usr/sbin/l2tpns', '/usr/sbin/freeradius'].filter((p) => !existsSync(p));
  if (missing.length === 0) return { ok: true, message: '' };
  return {
    ok: false,
    // npm run demo and npm test install them first (scripts/setup.sh); this is for a test file run on its own.
    message: `missing ${missing.join(', ')}: install them with "apt-get install l2tpns freeradius" (or run "bash scripts/setup.sh test" as root)`,
  };
}

async function waitForFile(path: string, re: RegExp, ms: number, what: string, proc: ChildProcess): Promise<RegExpMatchArray> {
  const end = Date.now() + ms;
  for (;;) {
    const text = existsSync(path) ? readFileSync(path, 'utf8') : '';
    const m = text.match(re);
    if (m) return m;
    if (proc.exitCode !== null) throw new Error(`${what} exited with code ${proc.exitCode} before ready:\n${text.slice(-2000)}`);
    if (Date.now() > end) throw new Error(`${what} not ready after ${ms} ms:\n${text.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export class L2tpnsSc {
  private stopped = false;

  private constructor(
    readonly ns: Netns,
    readonly dir: string,
    readonly options: L2tpnsOptions,
    private readonly radius: ChildProcess,
    private readonly lns: ChildProcess,
  ) {}

  get address(): string {
    return this.options.bindAddress;
  }

  /** Starts FreeRADIUS and l2tpns in `ns` and resolves once l2tpns answers L2TP. */
  static async start(ns: Netns, options: L2tpnsOptions): Promise<L2tpnsSc> {
    const avail = l2tpnsAvailable();
    if (!avail.ok) throw new Error(avail.message);
    const dir = mkdtempSync(join(tmpdir(), 'softwire-sc-'));
    const users = options.users ?? [DEFAULT_USER];
    writeFileSync(join(dir, 'radiusd.conf'), radiusConf(dir));
    writeFileSync(join(dir, 'users'), radiusUsers(users));
    writeFileSync(join(dir, 'startup-config'), l2tpnsConf(dir, options));
    writeFileSync(join(dir, 'ip_pool'), `${options.pool ?? '198.51.100.128/25'}\n`);
    writeFileSync(join(dir, 'cli-users'), '');

    const radius = ns.spawn('freeradius', ['-f', '-d', dir, '-n', 'radiusd'], { stdio: 'ignore' });
    try {
      await waitForFile(join(dir, 'radius.log'), /Ready to process requests/, options.startTimeoutMs ?? 10_000, 'freeradius', radius);
    } catch (e) {
      radius.kill('SIGKILL');
      throw e;
    }
    const script =
      `mount --bind ${dir}/ip_pool /etc/l2tpns/ip_pool && ` +
      `mount --bind ${dir}/cli-users /etc/l2tpns/users && ` +
      `exec setsid l2tpns -c ${dir}/startup-config`;
    const lns = ns.spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], { stdio: 'ignore' });
    const sc = new L2tpnsSc(ns, dir, options, radius, lns);
    try {
      await waitForFile(join(dir, 'l2tpns.log'), /declaring myself the master/, options.startTimeoutMs ?? 20_000, 'l2tpns', lns);
    } catch (e) {
      await sc.stop();
      throw e;
    }
    return sc;
  }

  log(): string {
    const p = join(this.dir, 'l2tpns.log');
    return existsSync(p) ? readFileSync(p, 'utf8') : '';
  }

  radiusLog(): string {
    const p = join(this.dir, 'radius.log');
    return existsSync(p) ? readFileSync(p, 'utf8') : '';
  }

  /** Waits until the l2tpns log matches `re` (searching only text after `fromOffset`). */
  async waitForLog(re: RegExp, ms = 10_000, fromOffset = 0): Promise<RegExpMatchArray> {
    return waitForFile(join(this.dir, 'l2tpns.log'), re, ms, 'l2tpns log', this.lns).then(async (m) => {
      if (fromOffset === 0) return m;
      const end = Date.now() + ms;
      for (;;) {
        const found = this.log().slice(fromOffset).match(re);
        if (found) return found;
        if (Date.now() > end) throw new Error(`l2tpns log did not show ${re} within ${ms} ms`);
        await new Promise((r) => setTimeout(r, 50));
      }
    });
  }

  /** Runs nsctl (the sessionctl plugin's CLI) inside the SC namespace, e.g. ['drop', 'cpe1'] or ['kill', 'cpe1']. */
  nsctl(args: string[]): string {
    return this.ns.exec('nsctl', args);
  }

  pid(): number | undefined {
    const p = join(this.dir, 'l2tpns.pid');
    if (!existsSync(p)) return undefined;
    const n = Number(readFileSync(p, 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  }

  /**
   * Stops l2tpns the way an operator would (SIGQUIT: it sends StopCCN to every
   * tunnel and waits for the acks), then KILLs it after `graceMs` because a LAC
   * that has already gone never acks.
   */
  async stop(graceMs = 2000): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const pid = this.pid();
    if (pid !== undefined && this.lns.exitCode === null) {
      try {
        process.kill(pid, 'SIGQUIT');
      } catch {
        /* gone */
      }
      const end = Date.now() + graceMs;
      while (this.lns.exitCode === null && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    for (const p of [this.lns, this.radius]) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await this.gone(pid);
  }

  /**
   * Resolves once l2tpns (`pid`) and both child processes are gone, or after 5 s: a
   * killed process lingers until it is reaped, longer on a loaded machine.
   */
  private async gone(pid: number | undefined): Promise<void> {
    const end = Date.now() + 5000;
    const alive = (p: number | undefined) => {
      if (p === undefined) return false;
      try {
        process.kill(p, 0);
        return true;
      } catch {
        return false;
      }
    };
    const running = (c: ChildProcess) => c.exitCode === null && c.signalCode === null;
    while ((alive(pid) || running(this.lns) || running(this.radius)) && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /**
   * A crash: SIGKILL to l2tpns, so no StopCCN or CDN goes out and its tun0 vanishes
   * with the process. FreeRADIUS is killed too, so that a new instance (start()
   * again in the same namespace) can take its port. Resolves once both are gone.
   */
  async kill(): Promise<void> {
    this.stopped = true;
    const pid = this.pid();
    for (const p of [pid, this.lns.pid, this.radius.pid]) {
      if (p === undefined) continue;
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    await this.gone(pid);
  }

  /** Removes the generated config and logs. */
  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

import { execFileSync, type ChildProcess } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { L2tpnsSc, type L2tpnsOptions } from '../lab/l2tpns';
import { link, run, Topology, waitFor, type Netns } from '../lab/netns';

/**
 * OpenWrt's own ubusd, netifd and odhcpd (built from OpenWrt's sources by
 * build.sh, cached) running the softwire ipk's netifd handler, with a real SC:
 *
 *   netns lns  : l2tpns + FreeRADIUS (test/lab/l2tpns.ts) on 192.0.2.1
 *   netns cpe  : ubusd, netifd, odhcpd in a private mount namespace whose root is an
 *                overlay of / plus the staged ipk and what an OpenWrt image provides
 *                (/bin/sh is busybox ash, as on OpenWrt)
 *                interfaces: wan (static 192.0.2.2/24), sw6 (proto softwire), lan
 *                (static, ip6assign 64; odhcpd serves RA and DHCPv6 there)
 *   netns host : a LAN host on the other end of the lan veth
 *
 * Nothing here stands in for netifd: the handler, the notify script and the agent
 * talk to the real daemons, and the test reads the result back over ubus and from
 * the kernel.
 */

const REPO = resolve(__dirname, '../..');

/** Builds (once, cached) and returns the prefix holding sbin/netifd, sbin/ubusd, sbin/odhcpd, bin/ubus... */
export function openwrtPrefix(): string {
  // Generous: the first build on a busy 2-core machine compiles seven projects.
  const out = execFileSync('bash', [join(__dirname, 'build.sh')], { encoding: 'utf8', timeout: 20 * 60_000, stdio: ['ignore', 'pipe', 'pipe'] });
  return out.trim().split('\n').pop()!;
}

/** Why the rig cannot run here, or '' when it can (root, the sources, the build tools). */
export function rigUnavailable(): string {
  if (process.getuid?.() !== 0) return 'needs root (namespaces, mounts)';
  const sources = process.env.OPENWRT_SOURCES ?? join(REPO, '..', 'shared', 'openwrt-rig');
  if (!existsSync(join(sources, 'sources.tar.gz'))) return `OpenWrt sources not found at ${sources} (OPENWRT_SOURCES)`;
  return '';
}

export interface RigOptions {
  /** The whole /etc/config/network instead of the default one ({WAN}, {LAN}: the WAN and LAN devices; it needs a 'lan'). */
  network?: string;
  /** Extra files for the router's root (path inside it -> content; mode 0755 under libexec/ and cgi-bin/). */
  files?: Record<string, string>;
  /** Host files or directories copied into the router's root (path inside it -> host path), before `files`. */
  trees?: Record<string, string>;
  /** More daemons, started after netifd: [name, command...] (run by the rig's shell, logged to NAME.log). */
  daemons?: string[][];
  /** Extra UCI sections appended to /etc/config/network. */
  extraNetwork?: string;
  /** Options of the sw6 section beyond the defaults (server, username, password, tun_device, auto 0). */
  sw6?: Record<string, string>;
  sc?: Partial<L2tpnsOptions>;
}

/** What `ubus call network.interface.NAME status` answers (the parts the tests read). */
export interface IfStatus {
  up: boolean;
  pending?: boolean;
  autostart?: boolean;
  l3_device?: string;
  'ipv4-address'?: { address: string; mask: number; ptpaddress?: string }[];
  'ipv6-address'?: { address: string; mask: number }[];
  'ipv6-prefix'?: { address: string; mask: number; preferred?: number; valid?: number }[];
  'ipv6-prefix-assignment'?: { address: string; mask: number; 'local-address'?: { address: string; mask: number } }[];
  route?: { target: string; mask: number; nexthop: string; source?: string }[];
  'dns-server'?: string[];
  errors?: { subsystem: string; code: string }[];
}

export const SW6_DEVICE = 'sw-sw6';
const SC_ADDRESS = '192.0.2.1';

export class OpenWrtRig {
  private holder?: ChildProcess;
  private constructor(
    readonly dir: string,
    readonly prefix: string,
    readonly topo: Topology,
    readonly lns: Netns,
    readonly cpe: Netns,
    readonly host: Netns,
    readonly wanDev: string,
    readonly lanDev: string,
    readonly hostDev: string,
    public sc: L2tpnsSc,
  ) {}

  get log(): string {
    return join(this.dir, 'log');
  }

  static async start(opts: RigOptions = {}): Promise<OpenWrtRig> {
    const prefix = openwrtPrefix();
    const dir = mkdtempSync('/tmp/softwire-owrt-');
    const topo = new Topology();
    let sc: L2tpnsSc | undefined;
    try {
      const lns = topo.ns('owl');
      const cpe = topo.ns('owc');
      const host = topo.ns('owh');
      const wan = link(lns, `${SC_ADDRESS}/24`, cpe, undefined);
      const lan = link(cpe, undefined, host, undefined);
      // A router forwards (OpenWrt's sysctl.d turns it on; netifd does not).
      cpe.sysctl('net.ipv6.conf.all.forwarding', '1');
      cpe.sysctl('net.ipv4.ip_forward', '1');
      // The LAN host learns its addresses and default route from odhcpd's RAs.
      host.sysctl(`net.ipv6.conf.${lan.b}.accept_ra`, '2');
      host.sysctl(`net.ipv6.conf.${lan.b}.accept_dad`, '0');
      sc = await L2tpnsSc.start(lns, { bindAddress: SC_ADDRESS, ...opts.sc });
      const rig = new OpenWrtRig(dir, prefix, topo, lns, cpe, host, wan.b, lan.a, lan.b, sc);
      rig.stage(opts);
      await rig.boot();
      return rig;
    } catch (e) {
      await sc?.stop();
      topo.destroy();
      sc?.cleanup();
      if (!process.env.KEEP_RIG) rmSync(dir, { recursive: true, force: true });
      throw e;
    }
  }

  /** Lays out the root's upper layer: the ipk, the OpenWrt pieces, /etc/config. */
  private stage(opts: RigOptions): void {
    const up = join(this.dir, 'upper');
    const ipk = join(this.dir, 'ipk');
    for (const d of ['usr/lib/netifd/proto', 'usr/share/libubox', 'usr/bin', 'usr/sbin', 'etc/config', 'root']) mkdirSync(join(up, d), { recursive: true });
    mkdirSync(this.log, { recursive: true });
    // The package, laid out by the same code that builds the ipk.
    run('bash', [join(REPO, 'scripts/build-ipk.sh'), '--stage', ipk]);
    // Debian's /lib is a link to usr/lib: the package's lib/ goes to usr/lib/.
    cpSync(join(ipk, 'usr'), join(up, 'usr'), { recursive: true });
    cpSync(join(ipk, 'etc'), join(up, 'etc'), { recursive: true });
    cpSync(join(ipk, 'lib'), join(up, 'usr/lib'), { recursive: true });
    // What an OpenWrt image has: netifd's shell API, functions.sh, jshn, the tools.
    cpSync(join(this.prefix, 'share/openwrt/lib'), join(up, 'usr/lib'), { recursive: true });
    cpSync(join(this.prefix, 'share/libubox/jshn.sh'), join(up, 'usr/share/libubox/jshn.sh'));
    for (const b of ['jshn', 'ubus', 'uci']) symlinkSync(join(this.prefix, 'bin', b), join(up, 'usr/bin', b));
    for (const b of ['netifd', 'ubusd', 'odhcpd']) symlinkSync(join(this.prefix, 'sbin', b), join(up, 'usr/sbin', b));
    symlinkSync('/usr/bin/busybox', join(up, 'usr/bin/sh'));
    // OpenWrt's /sbin/ifup: "network reload", then the interface's down and up.
    writeFileSync(
      join(up, 'usr/sbin/ifup'),
      `#!/bin/sh
case "$0" in *ifdown) modes=down ;; *) modes="down up" ;; esac
[ "$modes" = "down up" ] && ubus call network reload
ubus -S list "network.interface.$1" >/dev/null || { echo "Interface $1 not found"; exit 1; }
for mode in $modes; do
	ubus call network.interface $mode "{ \\"interface\\" : \\"$1\\" }"
done
`,
    );
    chmodSync(join(up, 'usr/sbin/ifup'), 0o755);
    symlinkSync('ifup', join(up, 'usr/sbin/ifdown'));
    writeFileSync(join(up, 'usr/sbin/hotplug-call'), '#!/bin/sh\necho "hotplug $1 ACTION=$ACTION INTERFACE=$INTERFACE" >>/var/log/owrt/hotplug.log\n');
    chmodSync(join(up, 'usr/sbin/hotplug-call'), 0o755);
    const sw6 = { tun_device: SW6_DEVICE, ...opts.sw6 };
    writeFileSync(
      join(up, 'etc/config/network'),
      opts.network?.replaceAll('{WAN}', this.wanDev).replaceAll('{LAN}', this.lanDev) ??
      `config interface 'loopback'
	option device 'lo'
	option proto 'static'
	option ipaddr '127.0.0.1'
	option netmask '255.0.0.0'

config globals 'globals'
	option ula_prefix 'fd00:5571:1::/48'

config interface 'wan'
	option device '${this.wanDev}'
	option proto 'static'
	option ipaddr '192.0.2.2'
	option netmask '255.255.255.0'

config interface 'sw6'
	option proto 'softwire'
	list server '${SC_ADDRESS}'
	option username 'cpe1'
	option password 'secret1'
	option auto '0'
${Object.entries(sw6)
  .map(([k, v]) => `\toption ${k} '${v}'\n`)
  .join('')}
config interface 'lan'
	option device '${this.lanDev}'
	option proto 'static'
	option ipaddr '192.168.1.1'
	option netmask '255.255.255.0'
	option ip6assign '64'
${opts.extraNetwork ?? ''}`,
    );
    // As OpenWrt's default /etc/config/dhcp for the LAN, IPv6 part (odhcpd).
    writeFileSync(
      join(up, 'etc/config/dhcp'),
      `config dhcp 'lan'
	option interface 'lan'
	option ra 'server'
	option dhcpv6 'server'
	# Addresses both ways, so a test sees SLAAC and a DHCPv6 IA_NA lease.
	list ra_flags 'managed-config'
	list ra_flags 'other-config'
	option ra_slaac '1'
	# Unsolicited RAs every 4-10 s instead of up to 600 s: a change reaches the
	# host within a test's patience even when a triggered RA is lost.
	option ra_mininterval '4'
	option ra_maxinterval '10'

config dhcp 'wan'
	option interface 'wan'
	option ignore '1'

config odhcpd 'odhcpd'
	option maindhcp '0'
	option leasefile '/tmp/hosts/odhcpd'
	option leasetrigger '/bin/true'
	option loglevel '7'
`,
    );
    for (const [path, host] of Object.entries(opts.trees ?? {})) cpSync(host, join(up, path.replace(/^\/(lib|sbin|bin)\//, '/usr/$1/')), { recursive: true });
    for (const [path, content] of Object.entries(opts.files ?? {})) {
      const p = join(up, path.replace(/^\/(lib|sbin|bin)\//, '/usr/$1/'));
      mkdirSync(dirname(p), { recursive: true });
      writeFileSync(p, content);
      chmodSync(p, /\/(libexec|cgi-bin)\//.test(path) ? 0o755 : 0o644);
    }
    const inner = join(this.dir, 'inner.sh');
    const m = join(this.dir, 'merged');
    const mnt = join(this.dir, 'mnt');
    mkdirSync(m);
    mkdirSync(mnt);
    writeFileSync(
      inner,
      `#!/bin/bash
set -euo pipefail
mount -t tmpfs -o mode=0755 owrt-rig "${mnt}"
cp -a "${up}" "${mnt}/upper"
mkdir "${mnt}/work"
mount -t overlay owrt-root -o "lowerdir=/,upperdir=${mnt}/upper,workdir=${mnt}/work" "${m}"
mount -t proc proc "${m}/proc"
mount -t sysfs sysfs "${m}/sys"
mount --rbind /dev "${m}/dev"
mount -t tmpfs -o mode=0755 tmpfs "${m}/run"
mount -t tmpfs -o mode=1777 tmpfs "${m}/tmp"
mkdir -p "${m}/var/log/owrt"
mount --bind "${this.log}" "${m}/var/log/owrt"
echo $$ >"${this.dir}/holder.pid"
exec chroot "${m}" /bin/bash -c '
	cd /
	mkdir -p /var/run/ubus /tmp/resolv.conf.d /var/state /run/lock /tmp/hosts
	setsid /usr/sbin/ubusd -s /var/run/ubus/ubus.sock >>/var/log/owrt/ubusd.log 2>&1 &
	echo $! >/var/log/owrt/ubusd.pid
	for i in $(seq 100); do [ -S /var/run/ubus/ubus.sock ] && break; sleep 0.1; done
	# daemon NAME CMD...: starts CMD in its own session (as procd does: a signal to the
	# process group of the test runner must not reach it), records its PID, logs how it ended.
	daemon() {
		local name=$1; shift
		( setsid "$@" >>/var/log/owrt/$name.log 2>&1 &
		  echo $! >/var/log/owrt/$name.pid
		  wait $!
		  echo "rig: $name exited with status $?" >>/var/log/owrt/$name.log ) &
	}
	daemon netifd /usr/sbin/netifd -S -l 4 -c /etc/config -p /lib/netifd -h /sbin/hotplug-call \\
		-r /tmp/resolv.conf.d/resolv.conf.auto -s /var/run/ubus/ubus.sock
	# As procd starts it on OpenWrt: reads /etc/config/dhcp, follows netifd over ubus.
	daemon odhcpd /usr/sbin/odhcpd
${(opts.daemons ?? []).map((d) => `\tdaemon ${d.join(' ')}\n`).join('')}	exec sleep infinity
'
`,
    );
    chmodSync(inner, 0o755);
  }

  private async boot(): Promise<void> {
    const out = openSync(join(this.log, 'inner.out'), 'a');
    this.holder = this.cpe.spawn('unshare', ['-m', '--propagation', 'private', join(this.dir, 'inner.sh')], { stdio: ['ignore', out, out] });
    await waitFor('netifd to start', 30_000, () => existsSync(join(this.log, 'odhcpd.pid')) || this.holder!.exitCode !== null);
    if (this.holder.exitCode !== null) throw new Error(`rig did not start: ${this.file('inner.out')}`);
    // netifd is ready once it answers for its interfaces.
    await waitFor('netifd on ubus', 30_000, () => this.tryUbus('network.interface.lan', 'status') !== undefined);
  }

  file(name: string): string {
    const p = join(this.log, name);
    return existsSync(p) ? readFileSync(p, 'utf8') : '';
  }

  netifdLog(): string {
    return this.file('netifd.log');
  }

  holderPid(): number {
    return Number(readFileSync(join(this.dir, 'holder.pid'), 'utf8').trim());
  }

  /** Runs a command inside the rig (its network, mount and root namespaces), as a shell on the router would. */
  exec(cmd: string, args: string[] = [], opts: { input?: string } = {}): string {
    try {
      return this.execRaw(cmd, args, opts);
    } catch (e) {
      // netifd gone makes every network.* object "Not found": say so, and how it ended.
      const end = this.netifdLog().match(/rig: netifd exited with status \d+/);
      if (end) throw new Error(`${(e as Error).message}\n${end[0]} (0 = SIGTERM/SIGINT: from this rig's stop(), or from outside)`, { cause: e });
      throw e;
    }
  }

  private execRaw(cmd: string, args: string[], opts: { input?: string }): string {
    return run(
      'nsenter',
      ['-t', String(this.holderPid()), '-m', '-n', '-r', '-w', '--', '/usr/bin/env', '-i', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'HOME=/root', cmd, ...args],
      opts,
    );
  }

  ubus<T = unknown>(path: string, method: string, arg?: unknown): T {
    const out = this.exec('ubus', ['call', path, method, ...(arg === undefined ? [] : [JSON.stringify(arg)])]);
    return (out.trim() ? JSON.parse(out) : {}) as T;
  }

  tryUbus<T = unknown>(path: string, method: string, arg?: unknown): T | undefined {
    try {
      return this.ubus<T>(path, method, arg);
    } catch {
      return undefined;
    }
  }

  status(iface: string): IfStatus {
    return this.ubus<IfStatus>(`network.interface.${iface}`, 'status');
  }

  /** PIDs of the agents netifd started (processes in the CPE namespace running "softwire run"). */
  agentPids(): number[] {
    const pids = run('ip', ['netns', 'pids', this.cpe.name]).split(/\s+/).filter(Boolean).map(Number);
    return pids.filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').join(' ').includes('/usr/bin/softwire run ');
      } catch {
        return false;
      }
    });
  }

  /** Stops netifd first (so it tears its interfaces down and stops the agent), then everything else. */
  async stop(): Promise<void> {
    for (const f of ['netifd.pid', 'odhcpd.pid', 'ubusd.pid']) {
      const text = this.file(f).trim();
      // PIDs as seen from the host: the rig shares the host's PID namespace.
      const pid = Number(text);
      if (!pid) continue;
      try {
        process.kill(pid, 'SIGTERM');
        await waitFor(`${f} to exit`, 10_000, () => !existsSync(`/proc/${pid}`));
      } catch {
        /* gone, or killed with the namespace below */
      }
    }
    await this.sc.stop();
    this.topo.destroy();
    if (!process.env.KEEP_RIG) this.sc.cleanup();
    if (!process.env.KEEP_RIG) rmSync(this.dir, { recursive: true, force: true });
  }
}

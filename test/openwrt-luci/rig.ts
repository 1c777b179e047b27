import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { L2tpnsSc } from '../lab/l2tpns';
import { link, Netns, run, waitFor } from '../lab/netns';

/**
 * An OpenWrt router's management plane on this machine, for the LuCI page: OpenWrt's
 * own ubusd, netifd, rpcd and uhttpd (built from OpenWrt's sources by
 * test/openwrt-luci/build.sh), the softwire ipk and the luci-proto-softwire ipk laid
 * out as opkg installs them, and a real SC (l2tpns + FreeRADIUS) on the WAN.
 *
 *   netns cpe: ubusd, netifd (wan static 192.0.2.2/24, sw6 proto softwire), rpcd, and
 *              the agent netifd starts; a private mount namespace whose root is an
 *              overlay of / with the router's files on top, /bin/sh = busybox ash
 *   netns lns: l2tpns on 192.0.2.1
 *   uhttpd:    the router's mount namespace and root, but the host's network, on
 *              127.0.0.1:<port>, so a browser or fetch() on the host reaches it
 *
 * Not OpenWrt's: procd. Its part in LuCI's "Save & Apply" (rpcd reports the changed
 * package with "ubus call service event"; procd's reload trigger for /etc/config/network
 * runs "ubus call network reload") is a ucode script that answers that one method.
 */

export const REPO = resolve(__dirname, '../..');
const SOURCES = process.env.OPENWRT_SOURCES ?? resolve(REPO, '../shared/openwrt-rig');
const HOST_PATH = [...new Set([dirname(process.execPath), '/usr/sbin', '/usr/bin', '/sbin', '/bin'])].join(':');

/** Why the rig cannot run here, or '' when it can. */
export function rigUnavailable(): string {
  if (process.getuid?.() !== 0) return 'needs root (namespaces, mounts)';
  for (const t of ['sources.tar.gz', 'sources-extra.tar.gz']) {
    if (!existsSync(join(SOURCES, t))) return `OpenWrt sources ${join(SOURCES, t)} missing (OPENWRT_SOURCES)`;
  }
  for (const p of ['/usr/sbin/l2tpns', '/usr/sbin/freeradius', '/usr/bin/busybox', '/usr/bin/cmake', '/usr/bin/openssl']) {
    if (!existsSync(p)) return `${p} missing`;
  }
  return '';
}

/** Builds (once, cached) and returns the base prefix (ubusd, netifd, uci, jshn) and the rpcd/uhttpd root. */
export function buildPrefixes(): { base: string; luci: string } {
  const out = execFileSync('bash', [join(REPO, 'test/openwrt-luci/build.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 30 * 60_000,
  });
  const [base, luci] = out.trim().split('\n').pop()!.split(' ');
  return { base, luci };
}

/** A free TCP port on 127.0.0.1 (uhttpd takes no port 0). */
async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => res(port));
    });
  });
}

/** An rpcd login: crypt(3) MD5 hash of the password, as /etc/config/rpcd may hold it. */
export interface Login {
  username: string;
  password: string;
  read: string[];
  write: string[];
}

export interface RigOptions {
  /** /etc/config/network (wan, sw6 ...); the WAN device is named by WAN_DEVICE in it. */
  network: string;
  logins: Login[];
  /** Extra files for the router's root: path inside the root -> content. */
  files?: Record<string, string>;
  /** Directories copied into the router's root: path inside the root -> host directory. */
  trees?: Record<string, string>;
  /** Use this file as /lib/netifd/softwire.script instead of the package's. */
  notifyScript?: string;
}

/** The WAN device's name inside the cpe namespace; the network config refers to it. */
export const WAN_DEVICE = 'wan0';

export class LuciRig {
  private procs: ChildProcess[] = [];

  private constructor(
    readonly dir: string,
    readonly cpe: Netns,
    readonly lns: Netns,
    readonly sc: L2tpnsSc,
    readonly holderPid: number,
    readonly port: number,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  static async start(o: RigOptions): Promise<LuciRig> {
    const { base, luci } = buildPrefixes();
    const dir = mkdtempSync(join(tmpdir(), 'sw-luci-rig-'));
    const up = join(dir, 'upper');
    const put = (path: string, content: string, mode = 0o644) => {
      const p = join(up, path.replace(/^\/(lib|sbin|bin)\//, '/usr/$1/'));
      mkdirSync(dirname(p), { recursive: true });
      writeFileSync(p, content);
      chmodSync(p, mode);
    };
    for (const d of ['usr/lib/netifd/proto', 'usr/share/libubox', 'usr/bin', 'usr/sbin', 'etc/config', 'usr/lib/rpcd', 'usr/share/rpcd/acl.d', 'www', 'root']) {
      mkdirSync(join(up, d), { recursive: true });
    }
    mkdirSync(join(dir, 'log'));

    // The two packages, laid out by the scripts that build their ipks. On Debian /lib
    // is a link to usr/lib, so the package's lib/ goes to usr/lib/.
    run('bash', [join(REPO, 'scripts/build-ipk.sh'), '--stage', join(dir, 'ipk')]);
    run('bash', [join(REPO, 'scripts/build-luci-ipk.sh'), '--stage', join(dir, 'luci-ipk')]);
    for (const stage of ['ipk', 'luci-ipk']) {
      for (const top of readdirSync(join(dir, stage))) {
        cpSync(join(dir, stage, top), join(up, top === 'lib' ? 'usr/lib' : top), { recursive: true });
      }
    }
    if (o.notifyScript) put('/lib/netifd/softwire.script', readFileSync(o.notifyScript, 'utf8'), 0o755);

    // What an OpenWrt image provides: netifd's shell API, base-files' functions.sh,
    // jshn, the ubus/uci tools, the daemons, rpcd's plugins and its base ACL.
    const src = join(dir, 'src');
    mkdirSync(src);
    run('tar', ['-xzf', join(SOURCES, 'sources.tar.gz'), '-C', src, 'netifd/scripts', 'openwrt-base-files/lib/functions.sh']);
    run('tar', ['-xzf', join(SOURCES, 'sources-extra.tar.gz'), '-C', src, 'rpcd/unauthenticated.json']);
    cpSync(join(src, 'netifd/scripts/netifd-proto.sh'), join(up, 'usr/lib/netifd/netifd-proto.sh'));
    cpSync(join(src, 'netifd/scripts/utils.sh'), join(up, 'usr/lib/netifd/utils.sh'));
    cpSync(join(src, 'openwrt-base-files/lib/functions.sh'), join(up, 'usr/lib/functions.sh'));
    cpSync(join(src, 'rpcd/unauthenticated.json'), join(up, 'usr/share/rpcd/acl.d/unauthenticated.json'));
    cpSync(join(base, 'share/libubox/jshn.sh'), join(up, 'usr/share/libubox/jshn.sh'));
    for (const b of ['jshn', 'ubus', 'uci', 'ucode']) symlinkSync(join(base, 'bin', b), join(up, 'usr/bin', b));
    for (const b of ['netifd', 'ubusd']) symlinkSync(join(base, 'sbin', b), join(up, 'usr/sbin', b));
    symlinkSync(join(luci, 'usr/sbin/rpcd'), join(up, 'usr/sbin/rpcd'));
    symlinkSync(join(luci, 'usr/bin/uhttpd'), join(up, 'usr/sbin/uhttpd'));
    for (const so of readdirSync(join(luci, 'usr/lib/rpcd'))) cpSync(join(luci, 'usr/lib/rpcd', so), join(up, 'usr/lib/rpcd', so));
    symlinkSync('/usr/bin/busybox', join(up, 'usr/bin/sh'));

    // /sbin/ifup, /sbin/ifdown: the ubus calls OpenWrt's make.
    put(
      '/sbin/ifup',
      `#!/bin/sh
case "$0" in *ifdown) modes=down ;; *) modes="down up" ;; esac
[ "$modes" = "down up" ] && ubus call network reload
for mode in $modes; do ubus call network.interface $mode "{ \\"interface\\" : \\"$1\\" }"; done
`,
      0o755,
    );
    symlinkSync('ifup', join(up, 'usr/sbin/ifdown'));
    put('/sbin/hotplug-call', '#!/bin/sh\necho "hotplug $1 ACTION=$ACTION INTERFACE=$INTERFACE" >>/var/log/rig/hotplug.log\n', 0o755);
    // procd's part of "Save & Apply": rpcd's uci apply/commit sends ubus "service
    // event" {type: config.change, data: {package}}; procd runs the reload triggers
    // of the services that watch that package, and for "network" that is
    // /etc/init.d/network reload, i.e. "ubus call network reload". This ucode
    // script (OpenWrt's ucode, ubus and uloop modules) answers that method, and
    // get_data (which netifd asks on reload) with no data.
    put(
      '/sbin/procd-service.uc',
      `import * as ubus from 'ubus';
import * as uloop from 'uloop';
import * as fs from 'fs';

uloop.init();
let conn = ubus.connect('/var/run/ubus/ubus.sock');
conn.publish('service', {
	event: {
		call: function(req) {
			let a = req.args;
			if (a.type == 'config.change' && a.data?.package == 'network') {
				let log = fs.open('/var/log/rig/reload.log', 'a');
				log.write('config.change network\\n');
				log.close();
				// In the background: netifd's reload asks this object for get_data.
				system('ubus call network reload >/dev/null 2>&1 &');
			}
			return 0;
		},
		args: { type: '', data: {} }
	},
	// What procd holds for other daemons (netifd asks on reload): nothing here.
	get_data: {
		call: function(req) { return {}; },
		args: { name: '', type: '', instance: '' }
	}
});
uloop.run();
`,
    );

    put('/etc/config/network', o.network);
    const rpcdConf = ["config rpcd\n\toption socket /var/run/ubus/ubus.sock\n\toption timeout 30\n"];
    for (const l of o.logins) {
      const hash = run('openssl', ['passwd', '-1', l.password]).trim();
      rpcdConf.push(
        `config login\n\toption username '${l.username}'\n\toption password '${hash}'\n${l.read.map((r) => `\tlist read '${r}'\n`).join('')}${l.write.map((w) => `\tlist write '${w}'\n`).join('')}`,
      );
    }
    put('/etc/config/rpcd', rpcdConf.join('\n'), 0o600);
    // Trees first: the files given are what the test means, whatever a tree holds.
    for (const [path, host] of Object.entries(o.trees ?? {})) cpSync(host, join(up, path), { recursive: true });
    for (const [path, content] of Object.entries(o.files ?? {})) put(path, content, /\/(libexec|cgi-bin)\//.test(path) ? 0o755 : 0o644);

    // Runs in the cpe namespace inside a new mount namespace: mounts the overlay
    // root, enters it, starts ubusd, netifd and rpcd, then stays as the holder.
    const merged = join(dir, 'merged');
    mkdirSync(merged);
    mkdirSync(join(dir, 'mnt'));
    const inner = `#!/bin/bash
set -euo pipefail
M=${merged}
mount -t tmpfs -o mode=0755 sw-luci-rig ${dir}/mnt
cp -a ${up} ${dir}/mnt/upper
mkdir ${dir}/mnt/work
mount -t overlay sw-luci-root -o lowerdir=/,upperdir=${dir}/mnt/upper,workdir=${dir}/mnt/work "$M"
mount -t proc proc "$M/proc"
mount -t sysfs sysfs "$M/sys"
mount --rbind /dev "$M/dev"
mount -t tmpfs -o mode=0755 tmpfs "$M/run"
mount -t tmpfs -o mode=1777 tmpfs "$M/tmp"
for p in ${base} ${luci}; do mkdir -p "$M$p"; mount --bind "$p" "$M$p"; done
mkdir -p "$M/var/log/rig"
mount --bind ${dir}/log "$M/var/log/rig"
echo $$ >${dir}/holder.pid
exec chroot "$M" /usr/bin/env -i PATH=${HOST_PATH} HOME=/root /bin/bash -c '
	cd /
	mkdir -p /var/run/ubus /tmp/resolv.conf.d /var/state /run/lock
	ubusd -s /var/run/ubus/ubus.sock >>/var/log/rig/ubusd.log 2>&1 &
	for i in $(seq 100); do [ -S /var/run/ubus/ubus.sock ] && break; sleep 0.1; done
	netifd -S -l 4 -c /etc/config -p /lib/netifd -h /sbin/hotplug-call \\
		-r /tmp/resolv.conf.d/resolv.conf.auto -s /var/run/ubus/ubus.sock >>/var/log/rig/netifd.log 2>&1 &
	ucode /sbin/procd-service.uc >>/var/log/rig/procd-service.log 2>&1 &
	rpcd -s /var/run/ubus/ubus.sock -t 30 >>/var/log/rig/rpcd.log 2>&1 &
	exec sleep infinity
'
`;
    writeFileSync(join(dir, 'inner.sh'), inner, { mode: 0o755 });

    const lns = Netns.create('llns');
    const cpe = Netns.create('lcpe');
    let rig: LuciRig | undefined;
    try {
      const { a } = link(cpe, undefined, lns, '192.0.2.1/24');
      cpe.ip(['link', 'set', a, 'down']);
      cpe.ip(['link', 'set', a, 'name', WAN_DEVICE]);
      cpe.sysctl('net.ipv6.conf.all.forwarding', '1');
      const sc = await L2tpnsSc.start(lns, { bindAddress: '192.0.2.1' });
      const holder = cpe.spawn('unshare', ['-m', '--propagation', 'private', join(dir, 'inner.sh')], { stdio: ['ignore', 'pipe', 'pipe'], detached: false });
      let innerErr = '';
      holder.stderr?.on('data', (d: Buffer) => (innerErr += d.toString()));
      const holderPid = await waitFor(`the rig's root (${innerErr})`, 30_000, () => {
        if (holder.exitCode !== null) throw new Error(`inner.sh exited ${holder.exitCode}: ${innerErr}`);
        return existsSync(join(dir, 'holder.pid')) && Number(readFileSync(join(dir, 'holder.pid'), 'utf8'));
      });
      const port = await freePort();
      rig = new LuciRig(dir, cpe, lns, sc, holderPid, port);
      await waitFor('ubus: network and session objects', 60_000, () => /network\.interface\.sw6/.test(rig!.exec('ubus', ['list'])) && /session/.test(rig!.exec('ubus', ['list'])));
      // uhttpd: static files from /www, JSON-RPC to ubus on /ubus with rpcd's
      // session checks, as OpenWrt's /etc/config/uhttpd sets it up for LuCI.
      const uhttpd = spawn(
        'nsenter',
        ['-t', String(holderPid), '-m', '-r', '-w', '--', '/usr/bin/env', '-i', `PATH=${HOST_PATH}`, 'uhttpd', '-f', '-h', '/www', '-u', '/ubus', '-p', `127.0.0.1:${port}`, '-t', '60', '-T', '30', '-U', '/var/run/ubus/ubus.sock'],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      rig.procs.push(uhttpd);
      let uerr = '';
      uhttpd.stderr?.on('data', (d: Buffer) => (uerr += d.toString()));
      await waitFor(`uhttpd on port ${port}`, 30_000, async () => {
        if (uhttpd.exitCode !== null) throw new Error(`uhttpd exited ${uhttpd.exitCode}: ${uerr}`);
        return (await fetch(`${rig!.url}/`).catch(() => null)) !== null;
      });
      return rig;
    } catch (e) {
      if (rig) await rig.stop();
      else {
        cpe.destroy();
        lns.destroy();
      }
      throw e;
    }
  }

  /** Runs a command in the router (its network, mounts and root). */
  exec(cmd: string, args: string[]): string {
    return run('nsenter', ['-t', String(this.holderPid), '-m', '-n', '-r', '-w', '--', '/usr/bin/env', '-i', `PATH=${HOST_PATH}`, cmd, ...args]);
  }

  ubus<T = unknown>(path: string, method: string, args: object = {}): T {
    const out = this.exec('ubus', ['call', path, method, JSON.stringify(args)]);
    return (out.trim() ? JSON.parse(out) : {}) as T;
  }

  /** A file of the router's root, as the router sees it. */
  read(path: string): string {
    return this.exec('cat', [path]);
  }

  logs(): string {
    const d = join(this.dir, 'log');
    return readdirSync(d)
      .map((f) => `=== ${f}\n${readFileSync(join(d, f), 'utf8').split('\n').slice(-60).join('\n')}`)
      .join('\n');
  }

  async stop(): Promise<void> {
    for (const p of this.procs) if (p.exitCode === null) p.kill('SIGKILL');
    // netifd first, so that it stops the agent (StopCCN) itself; then the rest.
    try {
      this.exec('sh', ['-c', 'kill $(pidof netifd) 2>/dev/null; for i in $(seq 50); do pidof softwire node >/dev/null || break; sleep 0.1; done']);
    } catch {
      /* already gone */
    }
    this.cpe.destroy();
    await this.sc.stop().catch(() => {});
    this.lns.destroy();
    try {
      run('umount', ['-l', join(this.dir, 'merged')]);
    } catch {
      /* the mount namespace died with the holder */
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

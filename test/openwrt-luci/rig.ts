import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { run, waitFor } from '../lab/netns';
import { OpenWrtRig, rigUnavailable as owrtUnavailable } from '../openwrt/rig';

/**
 * The router of test/openwrt/rig.ts (OpenWrt's ubusd, netifd, odhcpd from source,
 * the softwire ipk, l2tpns as the SC) with LuCI's server side added: OpenWrt's rpcd
 * and uhttpd (test/openwrt-luci/build.sh) and the luci-proto-softwire package as its
 * ipk lays it out.
 *
 *   rpcd:   in the router, beside netifd (session, uci, file, rc objects, exec plugins
 *           such as our luci.softwire, ucode plugins)
 *   uhttpd: the router's mount namespace and root, but the host's network, on
 *           127.0.0.1:<port>, so a browser or fetch() on the host reaches it; /www,
 *           and ubus JSON-RPC on /ubus with rpcd's session checks
 *
 * Not OpenWrt's: procd. Its part in LuCI's "Save & Apply" (rpcd reports the changed
 * package with "ubus call service event"; procd's reload trigger for /etc/config/network
 * runs "ubus call network reload") is a ucode script that answers that method, and
 * get_data (which netifd asks on reload) with no data.
 */

export const REPO = resolve(__dirname, '../..');
const SOURCES = process.env.OPENWRT_SOURCES ?? resolve(REPO, '../shared/openwrt-rig');
const PATH = '/usr/sbin:/usr/bin:/sbin:/bin';

/** Why the rig cannot run here, or '' when it can. */
export function rigUnavailable(): string {
  const base = owrtUnavailable();
  if (base) return base;
  if (!existsSync(join(SOURCES, 'sources-extra.tar.gz'))) return `OpenWrt sources ${join(SOURCES, 'sources-extra.tar.gz')} missing (OPENWRT_SOURCES)`;
  for (const p of ['/usr/sbin/l2tpns', '/usr/sbin/freeradius', '/usr/bin/busybox', '/usr/bin/cmake', '/usr/bin/openssl']) {
    if (!existsSync(p)) return `${p} missing`;
  }
  return '';
}

/** Builds (once, cached) and returns the base prefix (ubusd, netifd, ucode) and the rpcd/uhttpd root. */
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

/** An rpcd login (/etc/config/rpcd): the password is stored as its crypt(3) MD5 hash. */
export interface Login {
  username: string;
  password: string;
  read: string[];
  write: string[];
}

export interface LuciRigOptions {
  /** /etc/config/network; {WAN} and {LAN} stand for the devices, and it needs 'wan' and 'lan'. */
  network: string;
  logins: Login[];
  /** Extra files for the router's root: path inside it -> content. */
  files?: Record<string, string>;
  /** Host files or directories copied into the router's root: path inside it -> host path. */
  trees?: Record<string, string>;
}

// Answers procd's "service" methods that rpcd and netifd call (see above).
const PROCD_SERVICE = `import * as ubus from 'ubus';
import * as uloop from 'uloop';
import * as fs from 'fs';

uloop.init();
let conn = ubus.connect('/var/run/ubus/ubus.sock');
conn.publish('service', {
	event: {
		call: function(req) {
			let a = req.args;
			if (a.type == 'config.change' && a.data?.package == 'network') {
				let log = fs.open('/var/log/owrt/reload.log', 'a');
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
`;

export class LuciRig {
  private constructor(
    readonly router: OpenWrtRig,
    private readonly uhttpd: ChildProcess,
    readonly port: number,
    private readonly dir: string,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  static async start(o: LuciRigOptions): Promise<LuciRig> {
    const { base, luci } = buildPrefixes();
    const dir = mkdtempSync(join(tmpdir(), 'sw-luci-rig-'));
    let router: OpenWrtRig | undefined;
    try {
      // The LuCI package, laid out by the script that builds its ipk.
      run('bash', [join(REPO, 'scripts/build-luci-ipk.sh'), '--stage', join(dir, 'luci-ipk')]);
      // rpcd's own ACL for logging in (OpenWrt's rpcd package installs it).
      run('tar', ['-xzf', join(SOURCES, 'sources-extra.tar.gz'), '-C', dir, 'rpcd/unauthenticated.json']);
      const rpcdConf = ['config rpcd\n\toption socket /var/run/ubus/ubus.sock\n\toption timeout 30\n'];
      for (const l of o.logins) {
        const hash = run('openssl', ['passwd', '-1', l.password]).trim();
        const lists = [...l.read.map((r) => `\tlist read '${r}'\n`), ...l.write.map((w) => `\tlist write '${w}'\n`)].join('');
        rpcdConf.push(`config login\n\toption username '${l.username}'\n\toption password '${hash}'\n${lists}`);
      }
      router = await OpenWrtRig.start({
        network: o.network,
        trees: {
          ...Object.fromEntries(readdirSync(join(dir, 'luci-ipk')).map((top) => [`/${top}`, join(dir, 'luci-ipk', top)])),
          // rpcd dlopens its plugins from /usr/lib/rpcd (built for prefix /usr).
          '/usr/lib/rpcd': join(luci, 'usr/lib/rpcd'),
          '/usr/share/rpcd/acl.d/unauthenticated.json': join(dir, 'rpcd/unauthenticated.json'),
          ...o.trees,
        },
        files: {
          '/etc/config/rpcd': rpcdConf.join('\n'),
          '/sbin/procd-service.uc': PROCD_SERVICE,
          ...o.files,
        },
        daemons: [
          ['procd-service', join(base, 'bin/ucode'), '/sbin/procd-service.uc'],
          ['rpcd', join(luci, 'usr/sbin/rpcd'), '-s', '/var/run/ubus/ubus.sock', '-t', '30'],
        ],
      });
      const r = router;
      await waitFor('rpcd on ubus (session, uci)', 60_000, () => {
        const objects = r.exec('ubus', ['list']);
        return /^session$/m.test(objects) && /^uci$/m.test(objects);
      });
      const port = await freePort();
      const uhttpd = spawn(
        'nsenter',
        ['-t', String(r.holderPid()), '-m', '-r', '-w', '--', '/usr/bin/env', '-i', `PATH=${PATH}`,
          join(luci, 'usr/bin/uhttpd'), '-f', '-h', '/www', '-u', '/ubus', '-p', `127.0.0.1:${port}`, '-t', '60', '-T', '30', '-U', '/var/run/ubus/ubus.sock'],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      const rig = new LuciRig(r, uhttpd, port, dir);
      let uerr = '';
      uhttpd.stderr?.on('data', (d: Buffer) => (uerr += d.toString()));
      await waitFor(`uhttpd on port ${port}`, 30_000, async () => {
        if (uhttpd.exitCode !== null) throw new Error(`uhttpd exited ${uhttpd.exitCode}: ${uerr}`);
        return (await fetch(`${rig.url}/`).catch(() => null)) !== null;
      });
      return rig;
    } catch (e) {
      await router?.stop();
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
  }

  /** Runs a command in the router (its network, mounts and root). */
  exec(cmd: string, args: string[]): string {
    return this.router.exec(cmd, args);
  }

  ubus<T = unknown>(path: string, method: string, args: object = {}): T {
    return this.router.ubus<T>(path, method, args);
  }

  /** A file of the router's root, as the router sees it. */
  read(path: string): string {
    return this.exec('cat', [path]);
  }

  /** The tail of every daemon's log, for a failure message. */
  logs(): string {
    const d = this.router.log;
    return readdirSync(d)
      .map((f) => `=== ${f}\n${readFileSync(join(d, f), 'utf8').split('\n').slice(-60).join('\n')}`)
      .join('\n');
  }

  async stop(): Promise<void> {
    if (this.uhttpd.exitCode === null) this.uhttpd.kill('SIGKILL');
    await this.router.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * /etc/config/network of the LuCI tests: WAN and LAN with static addresses, the LAN
 * numbered from the delegated prefix (ip6assign 64), and a softwire section sw6 that the
 * page edits: its user name is left out, so saving it unchanged must be refused.
 */
export const LUCI_TEST_NETWORK = `config interface 'loopback'
	option device 'lo'
	option proto 'static'
	option ipaddr '127.0.0.1'
	option netmask '255.0.0.0'

config interface 'wan'
	option device '{WAN}'
	option proto 'static'
	option ipaddr '192.0.2.2'
	option netmask '255.255.255.0'

config interface 'sw6'
	option proto 'softwire'
	list server '192.0.2.9'
	option password 'secret1'
	option auto '0'

config interface 'lan'
	option device '{LAN}'
	option proto 'static'
	option ipaddr '192.168.1.1'
	option netmask '255.255.255.0'
	option ip6assign '64'
`;

import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Netns } from './netns';
import { waitFor } from './netns';

/**
 * strongSwan's charon for tests, one per network namespace: its own
 * strongswan.conf, log and VICI socket in a private directory. charon writes its
 * pid file to a fixed /var/run/charon.pid, so each instance runs in a private
 * mount namespace with that directory bound over /run.
 */

export const CHARON = '/usr/lib/ipsec/charon';
export const SWANCTL = '/usr/sbin/swanctl';

export function charonUnavailable(): string | null {
  if (!existsSync(CHARON)) return `${CHARON} missing: apt-get install strongswan-charon`;
  if (!existsSync(SWANCTL)) return `${SWANCTL} missing: apt-get install strongswan-swanctl`;
  return null;
}

/** Plugins that Debian's strongswan-charon ships and that IKE with PSK or certificates needs. */
const PLUGINS = 'random nonce aes sha1 sha2 md5 hmac gmp pem pkcs1 pkcs8 x509 pubkey constraints revocation kernel-netlink socket-default vici kdf drbg';

export class Charon {
  private constructor(
    readonly dir: string,
    readonly proc: ChildProcess,
  ) {}

  get socket(): string {
    return join(this.dir, 'charon.vici');
  }

  get uri(): string {
    return `unix://${this.socket}`;
  }

  static async start(ns: Netns, base: string, name: string): Promise<Charon> {
    mkdirSync(base, { recursive: true });
    const dir = mkdtempSync(join(base, `charon-${name}-`));
    writeFileSync(
      join(dir, 'strongswan.conf'),
      `charon {
  load = ${PLUGINS}
  install_routes = no
  retransmit_tries = 3
  retransmit_timeout = 2.0
  plugins {
    vici { socket = unix://${dir}/charon.vici }
  }
  filelog {
    log { path = ${dir}/charon.log
      default = 1
      ike = 2
      cfg = 2
      flush_line = yes
    }
  }
}
`,
    );
    const script = `mount --bind ${dir} /run && exec ${CHARON}`;
    const proc = ns.spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], { stdio: 'ignore', env: { ...process.env, STRONGSWAN_CONF: join(dir, 'strongswan.conf') } });
    const c = new Charon(dir, proc);
    await waitFor(`charon in ${ns.name}`, 20_000, () => {
      if (proc.exitCode !== null) throw new Error(`charon exited with ${proc.exitCode}: ${c.log().slice(-1000)}`);
      return existsSync(c.socket);
    });
    return c;
  }

  log(): string {
    const p = join(this.dir, 'charon.log');
    return existsSync(p) ? readFileSync(p, 'utf8') : '';
  }

  /** Loads a swanctl.conf text through swanctl, as the SC's operator would. */
  load(ns: Netns, swanctlConf: string): string {
    const f = join(this.dir, 'swanctl.conf');
    writeFileSync(f, swanctlConf, { mode: 0o600 });
    return ns.exec(SWANCTL, ['--load-all', '--noprompt', '--uri', this.uri, '--file', f]);
  }

  stop(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
  }
}

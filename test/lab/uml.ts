import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Boots one User-Mode Linux guest (Debian's `user-mode-linux`) whose root is this
 * machine's own filesystem, read-only over hostfs, to run a script under a kernel
 * that has what this machine's kernel lacks (ESP/xfrm). Recipe and quirks:
 * shared/notes/uml-kernel.md. The guest reports through a host directory mounted
 * writable at /mnt; /tmp and /run are its own tmpfs.
 *
 * Everything lives under /var/tmp (not /tmp): the guest sees the host's /tmp
 * hidden under its own tmpfs, but the host's /var/tmp at the same path.
 */

export const UML_KERNEL = '/usr/bin/linux';
const UML_MODULES = '/usr/lib/uml/modules';

/** Modules the guest loads by hand (the kernel cannot autoload from the odd module path). The DRBG needs hmac(sha512) first. */
export const GUEST_MODULES = [
  'sha512_generic', 'hmac', 'sha256_generic', 'sha1_generic', 'cbc', 'aes_generic', 'authenc', 'ecb', 'ctr', 'ghash-generic', 'gcm',
  'seqiv', 'echainiv', 'drbg', 'xfrm_user', 'esp4', 'ipv6', 'esp6', 'tun', 'veth', 'af_key',
  'x_tables', 'ip_tables', 'iptable_filter', 'nf_conntrack', 'nf_nat', 'iptable_nat', 'xt_MASQUERADE', 'xt_policy', 'xt_tcpudp', 'xt_conntrack',
];

/** Why the guest cannot run here, or null. */
export function umlUnavailable(): string | null {
  if (!existsSync(UML_KERNEL)) return `${UML_KERNEL} missing: apt-get install user-mode-linux`;
  if (!existsSync(UML_MODULES) || readdirSync(UML_MODULES).length === 0) return `${UML_MODULES} has no module tree (user-mode-linux package incomplete)`;
  if (!existsSync('/usr/sbin/modprobe') && !existsSync('/sbin/modprobe')) return 'modprobe missing: apt-get install kmod';
  return null;
}

export interface GuestRun {
  /** Host directory the guest wrote to (its /mnt). */
  out: string;
  /** The guest console (kernel messages and the init script's own output). */
  console: string;
  code: number | null;
  timedOut: boolean;
}

/**
 * Boots a guest that loads GUEST_MODULES and runs `command` (a shell command line)
 * with /mnt = a fresh host directory, then halts. Resolves when the UML process has
 * exited or `timeoutMs` passed (then it is killed).
 */
export async function bootGuest(command: string, opts: { timeoutMs: number; memMb?: number; keep?: boolean }): Promise<GuestRun & { dir: string }> {
  mkdirSync('/var/tmp', { recursive: true });
  const dir = mkdtempSync('/var/tmp/softwire-uml-');
  const out = join(dir, 'out');
  mkdirSync(out);
  const version = readdirSync(UML_MODULES)[0]!;
  mkdirSync(join(dir, 'mods/lib/modules'), { recursive: true });
  symlinkSync(join(UML_MODULES, version), join(dir, 'mods/lib/modules', version));
  const init = join(dir, 'init.sh');
  writeFileSync(
    init,
    `#!/bin/sh
# /usr/local/bin: where node lives when it did not come from Debian's package.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/tmp
mount -t proc proc /proc; mount -t sysfs sys /sys
mount -t tmpfs tmp /tmp; mount -t tmpfs run /run
mount -t hostfs none /mnt -o ${out}
exec >/mnt/guest.log 2>&1
echo "boot $(date +%T.%N)"
# One modprobe for all: it reads the module index once (each read crosses hostfs, which is slow).
modprobe -a -d ${dir}/mods ${GUEST_MODULES.join(' ')} || for m in ${GUEST_MODULES.join(' ')}; do modprobe -d ${dir}/mods "$m" || echo "module $m did not load"; done
echo "modules $(date +%T.%N)"
ip link set lo up
( ${command} ); echo "exit=$?" > /mnt/exit
sync
# A minbase Debian has no halt (no init system); busybox (in the test packages) has one.
halt -f 2>/dev/null || busybox halt -f
`,
    { mode: 0o755 },
  );
  const args = [`mem=${opts.memMb ?? 1024}M`, 'root=/dev/root', 'rootfstype=hostfs', 'rootflags=/', 'ro', `init=${init}`, 'con=null', 'con0=fd:0,fd:1'];
  const p = spawn(UML_KERNEL, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir, detached: true });
  let console = '';
  p.stdout.setEncoding('utf8').on('data', (d: string) => (console = (console + d).slice(-200_000)));
  p.stderr.setEncoding('utf8').on('data', (d: string) => (console = (console + d).slice(-200_000)));
  let timedOut = false;
  const code = await new Promise<number | null>((res) => {
    const timer = setTimeout(() => {
      timedOut = true;
      // UML runs as a process group of helper threads; kill the group leader's children too.
      try {
        process.kill(-p.pid!, 'SIGKILL');
      } catch {
        p.kill('SIGKILL');
      }
    }, opts.timeoutMs);
    p.on('exit', (c) => {
      clearTimeout(timer);
      res(c);
    });
  });
  return { dir, out, console, code, timedOut };
}

export function readGuestFile(run: GuestRun, name: string): string {
  try {
    return readFileSync(join(run.out, name), 'utf8');
  } catch {
    return '';
  }
}

export function removeGuestDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

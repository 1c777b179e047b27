import { accessSync, constants as fsConstants, readFileSync, statSync } from 'node:fs';

/**
 * What the agent needs from the kernel when it does not run as root, and the
 * messages that say so. Needed (see README "Least privilege"):
 * - CAP_NET_ADMIN: TUNSETIFF on /dev/net/tun, rtnetlink changes (addresses, routes,
 *   link up/MTU), writes under /proc/sys/net (the kernel grants a process with
 *   CAP_NET_ADMIN in the namespace's user namespace the owner's rights on those
 *   root-owned 0644 files) and the larger socket buffers (SO_RCVBUFFORCE).
 * - CAP_NET_RAW: the raw ICMPv6 socket of the built-in RA sender (router mode,
 *   ra builtin) and, on kernels before 5.7, its SO_BINDTODEVICE.
 * - read/write access to the /dev/net/tun node itself: a capability does not
 *   override file permissions, and some systems ship the node 0600.
 */

export type Capability = 'CAP_NET_ADMIN' | 'CAP_NET_RAW' | 'CAP_NET_BIND_SERVICE';

/** Bit numbers from linux/capability.h. */
const CAP_BIT: Record<Capability, number> = { CAP_NET_BIND_SERVICE: 10, CAP_NET_ADMIN: 12, CAP_NET_RAW: 13 };

export const TUN_PATH = '/dev/net/tun';

/** The advice appended to every permission failure. */
export function needsCapability(cap: Capability): string {
  return `needs ${cap} (run as root or grant the capability; see README "Least privilege")`;
}

/** EPERM or EACCES, as a Node system error, an addon error (negative errno) or a netlink errno. */
export function isPermissionError(e: unknown): boolean {
  const err = e as { code?: unknown; errno?: unknown } | null;
  if (!err || typeof err !== 'object') return false;
  if (err.code === 'EPERM' || err.code === 'EACCES') return true;
  return typeof err.errno === 'number' && (Math.abs(err.errno) === 1 || Math.abs(err.errno) === 13);
}

/**
 * A permission failure with the advice in its message; keeps `code` and `errno`
 * so callers that branch on them still can.
 */
export class PrivilegeError extends Error {
  override readonly name = 'PrivilegeError';
  readonly code: string | undefined;
  readonly errno: number | undefined;

  constructor(
    message: string,
    readonly capability: Capability | undefined,
    cause: unknown,
  ) {
    super(message, { cause });
    const c = cause as { code?: unknown; errno?: unknown };
    this.code = typeof c?.code === 'string' ? c.code : undefined;
    this.errno = typeof c?.errno === 'number' ? c.errno : undefined;
  }
}

/**
 * Rethrows `e` with the advice when it is a permission failure. `open /dev/net/tun`
 * failing with EACCES is the node's file mode, not a capability, and says so.
 */
export function explainPermission(e: unknown, cap: Capability): unknown {
  if (!isPermissionError(e) || e instanceof PrivilegeError) return e;
  const msg = (e as Error).message ?? String(e);
  if (/open \/dev\/net\/tun/.test(msg) && (e as { code?: string }).code === 'EACCES') {
    return new PrivilegeError(`${msg}: ${tunAccessAdvice()}`, undefined, e);
  }
  return new PrivilegeError(`${msg}: ${needsCapability(cap)}`, cap, e);
}

function tunAccessAdvice(path = TUN_PATH): string {
  let mode = '';
  try {
    const st = statSync(path);
    mode = ` (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}, owner ${st.uid}:${st.gid})`;
  } catch {
    /* the open error already says what happened */
  }
  return `${path}${mode} is not readable and writable by uid ${process.getuid?.() ?? '?'}; most systems ship it 0666 (udev), else give the agent's user a group that may open it (see README "Least privilege")`;
}

/** The effective capability set from /proc/self/status (CapEff), or null where there is none (not Linux). */
export function effectiveCapabilities(statusText?: string): bigint | null {
  let text = statusText;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/status', 'utf8');
    } catch {
      return null;
    }
  }
  const m = /^CapEff:\s*([0-9a-fA-F]+)\s*$/m.exec(text);
  return m ? BigInt(`0x${m[1]}`) : null;
}

export function hasCapability(cap: Capability, statusText?: string): boolean {
  const eff = effectiveCapabilities(statusText);
  // Without a CapEff line we cannot tell; let the kernel decide at the real call.
  return eff === null || (eff & (1n << BigInt(CAP_BIT[cap]))) !== 0n;
}

export interface PreflightOptions {
  /** The built-in RA sender will run (router mode with LAN interfaces and ra builtin). */
  rawIcmp6?: boolean;
  /** The LAN DHCPv4 server will run: it binds UDP port 67. */
  dhcpServer?: boolean;
  /** For tests: /proc/self/status text and the TUN node path. */
  statusText?: string;
  tunPath?: string;
}

/**
 * What stops `softwire run` from working with the privileges it has, one line
 * each; empty when nothing does. Meant to run once at startup so that a missing
 * capability is a clear exit instead of a failure at every reconnect.
 */
export function privilegeProblems(opts: PreflightOptions = {}): string[] {
  const problems: string[] = [];
  if (!hasCapability('CAP_NET_ADMIN', opts.statusText)) {
    problems.push(`missing CAP_NET_ADMIN: the TUN device, addresses, routes and /proc/sys/net settings ${needsCapability('CAP_NET_ADMIN')}`);
  }
  if (opts.rawIcmp6 && !hasCapability('CAP_NET_RAW', opts.statusText)) {
    problems.push(`missing CAP_NET_RAW: the Router Advertisements on the LAN (ra builtin) ${needsCapability('CAP_NET_RAW')}`);
  }
  if (opts.dhcpServer && !hasCapability('CAP_NET_BIND_SERVICE', opts.statusText)) {
    problems.push(`missing CAP_NET_BIND_SERVICE: the LAN DHCPv4 server (dhcpv4) binds port 67 ${needsCapability('CAP_NET_BIND_SERVICE')}`);
  }
  const tun = opts.tunPath ?? TUN_PATH;
  try {
    accessSync(tun, fsConstants.R_OK | fsConstants.W_OK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') problems.push(tunAccessAdvice(tun));
    else if (code === 'ENOENT') problems.push(`${tun} does not exist: load the tun module (modprobe tun; OpenWrt: kmod-tun)`);
  }
  return problems;
}

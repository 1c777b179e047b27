import { readFileSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { proposalProblems } from './ipsec-proposals';
import { type Config, FIELDS, FIELD_BY_KEY, type Field, type LanInterface, flagName } from './schema';

/** Raised for a configuration that cannot run; `problems` holds one line per bad key. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.length === 1 ? problems[0] : `invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

export interface ScAddress {
  host: string;
  port: number;
}

export const L2TP_PORT = 1701;

/** Parses "HOST", "HOST:PORT", "[V6]:PORT" or a bare IPv6 address. */
export function parseScAddress(text: string): ScAddress {
  const s = text.trim();
  let host = s;
  let port = L2TP_PORT;
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
  if (bracket) {
    host = bracket[1];
    if (bracket[2] !== undefined) port = Number(bracket[2]);
  } else if (isIP(s) !== 6) {
    const m = /^([^:]+):(\d+)$/.exec(s);
    if (m) {
      host = m[1];
      port = Number(m[2]);
    }
  }
  if (!host || !/^[A-Za-z0-9.:_-]+$/.test(host) || (host.includes(':') && isIP(host) !== 6)) {
    throw new Error(`"${text}" is not HOST, HOST:PORT or [IPv6]:PORT`);
  }
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`port in "${text}" is not 1-65535`);
  return { host, port };
}

const IFNAME = /^[A-Za-z0-9_.@-]{1,15}$/;

export function isInterfaceName(s: string): boolean {
  return IFNAME.test(s) && s !== '.' && s !== '..';
}

function describe(v: unknown): string {
  return typeof v === 'number' ? String(v) : (JSON.stringify(v) ?? String(v));
}

/** Converts one raw value (from JSON or a flag string) to the field's type, or returns a problem. */
function coerce(f: Field, raw: unknown, fromFlag: boolean): { value?: unknown; problem?: string } {
  const bad = (allowed: string) => ({ problem: `${f.key}: ${describe(raw)} is not allowed; expected ${allowed}` });
  switch (f.kind) {
    case 'int':
    case 'number': {
      const n = typeof raw === 'string' && fromFlag && raw.trim() !== '' ? Number(raw) : raw;
      const range = `${f.kind === 'int' ? 'a whole number' : 'a number'} from ${f.min} to ${f.max}`;
      if (typeof n !== 'number' || !Number.isFinite(n)) return bad(range);
      if (f.kind === 'int' && !Number.isInteger(n)) return bad(range);
      if ((f.min !== undefined && n < f.min) || (f.max !== undefined && n > f.max)) return bad(range);
      return { value: n };
    }
    case 'bool': {
      if (typeof raw === 'boolean') return { value: raw };
      if (fromFlag && (raw === 'true' || raw === 'false')) return { value: raw === 'true' };
      return bad('true or false');
    }
    case 'enum':
      if (typeof raw === 'string' && f.choices?.includes(raw)) return { value: raw };
      return bad(`one of ${f.choices?.join(', ')}`);
    case 'string':
      if (typeof raw === 'string' && raw.length > 0 && raw.length <= 4096 && !raw.includes('\0')) return { value: raw };
      return bad('a non-empty string');
    case 'list': {
      const items = Array.isArray(raw) ? raw : [raw];
      if (!items.every((x) => typeof x === 'string' && x.length > 0)) return bad('a list of strings');
      return { value: items };
    }
    case 'lan': {
      const items = Array.isArray(raw) ? raw : [raw];
      const out: LanInterface[] = [];
      for (const [i, x] of items.entries()) {
        let ifname: unknown;
        let id: unknown = i;
        if (typeof x === 'string') {
          const [name, sub] = x.split('=');
          ifname = name;
          if (sub !== undefined) id = sub.trim() === '' ? Number.NaN : Number(sub);
        } else if (x && typeof x === 'object') {
          ifname = (x as Record<string, unknown>).ifname;
          if ((x as Record<string, unknown>).subPrefixId !== undefined) id = (x as Record<string, unknown>).subPrefixId;
        }
        if (typeof ifname !== 'string' || !isInterfaceName(ifname)) {
          return { problem: `lan: ${describe(x)} does not name an interface (1-15 characters of A-Z a-z 0-9 _ . @ -)` };
        }
        if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > 65535) {
          return { problem: `lan: sub-prefix id of ${ifname} is ${describe(id)}; expected a whole number from 0 to 65535` };
        }
        out.push({ ifname, subPrefixId: id });
      }
      return { value: out };
    }
  }
}

export interface Loaded {
  config: Config;
  warnings: string[];
  /** Keys the user set (file or flag), as opposed to defaults: some defaults adapt to the network (see agent/keepalive.ts). */
  explicit: ReadonlySet<keyof Config>;
}

/** Remembers which keys of a resolved config were set by the user, without adding a field to Config. */
const EXPLICIT = new WeakMap<Config, ReadonlySet<keyof Config>>();

/**
 * The keys the user set in the config that `resolveConfig` returned. A config
 * built some other way (tests, a spread copy) has no record: then a key counts
 * as set when its value differs from the default, the best guess left.
 */
export function explicitKeys(c: Config): ReadonlySet<keyof Config> {
  const known = EXPLICIT.get(c);
  if (known) return known;
  const out = new Set<keyof Config>();
  for (const f of FIELDS) {
    const v = c[f.key];
    if (v !== undefined && JSON.stringify(v) !== JSON.stringify(f.default)) out.add(f.key);
  }
  return out;
}

export interface ResolveOptions {
  /** Skip the checks that only matter for `run` (an SC must be given, credentials in pairs). */
  forRun?: boolean;
}

/**
 * Builds the effective config: defaults, then the file's keys, then flags.
 * `flags` holds raw strings as given on the command line (lists as arrays).
 */
export function resolveConfig(file: Record<string, unknown>, flags: Record<string, unknown>, opts: ResolveOptions = {}): Loaded {
  const problems: string[] = [];
  const warnings: string[] = [];
  const out: Record<string, unknown> = {};
  const explicit = new Set<keyof Config>();
  for (const f of FIELDS) if (f.default !== undefined) out[f.key] = f.default;

  for (const [key, raw] of Object.entries(file)) {
    const f = FIELD_BY_KEY.get(key);
    if (!f) {
      problems.push(`${key}: unknown key (known keys: ${FIELDS.map((x) => x.key).join(', ')})`);
      continue;
    }
    const r = coerce(f, raw, false);
    if (r.problem) problems.push(r.problem);
    else {
      out[key] = r.value;
      explicit.add(f.key);
    }
  }
  for (const [key, raw] of Object.entries(flags)) {
    if (raw === undefined) continue;
    const f = FIELD_BY_KEY.get(key);
    if (!f) continue;
    const r = coerce(f, raw, true);
    if (r.problem) problems.push(r.problem.replace(`${key}:`, `--${flagName(key)}:`));
    else {
      out[key] = r.value;
      explicit.add(f.key);
    }
  }
  const c = out as unknown as Config;
  if (problems.length === 0) crossCheck(c, problems, warnings, opts);
  if (problems.length) throw new ConfigError(problems);
  EXPLICIT.set(c, explicit);
  return { config: c, warnings, explicit };
}

function crossCheck(c: Config, problems: string[], warnings: string[], opts: ResolveOptions): void {
  // RFC 5571 5.1.2: the Echo interval is at most the lesser of the HELLO interval and 60 s.
  const echoMax = Math.min(c.helloInterval, 60);
  if (c.lcpEchoInterval > echoMax) {
    problems.push(
      `lcpEchoInterval: ${c.lcpEchoInterval} is above ${echoMax}; RFC 5571 5.1.2 wants it at most the lesser of helloInterval (${c.helloInterval}) and 60 seconds`,
    );
  }
  if (c.retransmitCap < c.retransmitInitial) problems.push(`retransmitCap: ${c.retransmitCap} is below retransmitInitial (${c.retransmitInitial})`);
  if (c.reconnectCap < c.reconnectInitial) problems.push(`reconnectCap: ${c.reconnectCap} is below reconnectInitial (${c.reconnectInitial})`);
  for (const s of c.sc) {
    try {
      parseScAddress(s);
    } catch (e) {
      problems.push(`sc: ${(e as Error).message}`);
    }
  }
  if (!isInterfaceName(c.tunDevice)) problems.push(`tunDevice: ${describe(c.tunDevice)} is not a valid interface name (1-15 characters)`);
  if (c.mtu !== 0 && c.mtu < 1280 && c.ncp !== 'ipv4') problems.push(`mtu: ${c.mtu} is below 1280, the IPv6 minimum (RFC 8200); use 0 to derive it`);
  if (c.mtu !== 0 && c.mtu < 576) problems.push(`mtu: ${c.mtu} is below 576; use 0 to derive it`);
  if (c.password !== undefined && c.passwordFile !== undefined) problems.push('password: give either password or passwordFile, not both');
  if (c.tunnelSecret !== undefined && c.tunnelSecretFile !== undefined) problems.push('tunnelSecret: give either tunnelSecret or tunnelSecretFile, not both');
  // --- IPsec (RFC 3193) ---
  if (c.ipsecPsk !== undefined && c.ipsecPskFile !== undefined) problems.push('ipsecPsk: give either ipsecPsk or ipsecPskFile, not both');
  if (c.ipsec !== 'off') {
    problems.push(...proposalProblems('ipsecIkeProposals', c.ipsecIkeProposals, c.ipsecAllowWeak), ...proposalProblems('ipsecEspProposals', c.ipsecEspProposals, c.ipsecAllowWeak));
    const hasPsk = c.ipsecPsk !== undefined || c.ipsecPskFile !== undefined;
    if (!hasPsk && !c.ipsecCert) problems.push('ipsec: needs a pre-shared key (ipsecPskFile) or a certificate (ipsecCert + ipsecKey)');
    if (c.ipsecCert && !c.ipsecKey) problems.push('ipsecCert: needs ipsecKey, the private key of the certificate');
    // The SA's policies name the dialled address: a tunnel moved to another SC address would run outside it, in cleartext.
    if (c.scAnswerFromOtherAddress) problems.push('scAnswerFromOtherAddress: not with ipsec, whose SA covers only the dialled SC address (the tunnel would leave it in cleartext)');
  }
  const ids = new Set<number>();
  for (const l of c.lan) {
    if (ids.has(l.subPrefixId)) problems.push(`lan: sub-prefix id ${l.subPrefixId} is used twice`);
    ids.add(l.subPrefixId);
  }
  if (c.lan.length && c.mode !== 'router') warnings.push('lan: LAN interfaces are only numbered in router mode; they are ignored in host mode');
  if (c.dhcpv4) {
    const why =
      c.mode !== 'router'
        ? 'it serves the LAN in router mode only'
        : c.ncp === 'ipv6' && !c.ipv4DefaultRoute
          ? 'IPv4 does not run over the softwire (ncp ipv6 without ipv4DefaultRoute)'
          : c.provision === 'netifd'
            ? "with provision netifd, OpenWrt's own DHCP server (dnsmasq or odhcpd) serves the LAN"
            : c.lan.length === 0
              ? 'no lan interface is configured'
              : undefined;
    if (why) warnings.push(`dhcpv4: ignored: ${why}`);
  }
  if (opts.forRun) {
    if (c.sc.length === 0 && !c.scSdp) problems.push('sc: no Softwire Concentrator given; use --sc HOST[:PORT] or --sc-sdp FILE');
    const hasPassword = c.password !== undefined || c.passwordFile !== undefined;
    if (hasPassword && !c.user) problems.push('user: a password is configured but no user name (--user NAME)');
  }
}

/**
 * Checks the mode of a file the agent trusts. Refused (ConfigError): writable by
 * every user (it could set notifyCommand, which runs with the agent's
 * privileges), or holding a secret and readable by every user. Warned: a secret
 * readable by a group the agent is not in (a root-owned 0640 file whose group is
 * the agent's own is how a non-root agent reads its config; no warning then).
 */
export function checkFileMode(what: string, path: string, st: { mode: number; gid: number }, holdsSecret: boolean, warnings: string[]): void {
  const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
  if (st.mode & 0o002) throw new ConfigError([`${what}: ${path} is writable by every user (mode ${mode}); chmod 600 ${path}`]);
  if (!holdsSecret) return;
  if (st.mode & 0o004) {
    throw new ConfigError([`${what}: ${path} holds a secret and is readable by every user (mode ${mode}); chmod 600 ${path}`]);
  }
  if (st.mode & 0o040 && !ownGroups().includes(st.gid)) {
    warnings.push(`${what}: ${path} holds a secret and is readable by its group ${st.gid} (mode ${mode}); chmod 600 ${path}`);
  }
}

function ownGroups(): number[] {
  return [process.getegid?.() ?? -1, ...(process.getgroups?.() ?? [])];
}

/** Reads a JSON config file; errors name the file. `warnings` receives mode warnings (see checkFileMode). */
export function readConfigFile(path: string, warnings: string[] = []): Record<string, unknown> {
  let text: string;
  let st: { mode: number; gid: number };
  try {
    st = statSync(path);
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError([`${path}: cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`]);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new ConfigError([`${path}: not valid JSON: ${(e as Error).message}`]);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new ConfigError([`${path}: must hold one JSON object`]);
  const obj = parsed as Record<string, unknown>;
  checkFileMode('config', path, st, FIELDS.some((f) => f.secret && obj[f.key] !== undefined), warnings);
  return obj;
}

/** Reads a secret from a file (first line, trailing newline dropped); refuses or warns on its mode (checkFileMode). */
export function readSecretFile(key: string, path: string, warnings: string[]): string {
  let text: string;
  let st: { mode: number; gid: number };
  try {
    st = statSync(path);
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError([`${key}: cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`]);
  }
  checkFileMode(key, path, st, true, warnings);
  const secret = text.replace(/\r?\n$/, '');
  if (!secret) throw new ConfigError([`${key}: ${path} is empty`]);
  return secret;
}

export interface Secrets {
  password?: string;
  tunnelSecret?: string;
  ipsecPsk?: string;
}

/** Resolves the secrets of a config, reading the *File keys. */
export function resolveSecrets(c: Config, warnings: string[]): Secrets {
  return {
    password: c.passwordFile ? readSecretFile('passwordFile', c.passwordFile, warnings) : c.password,
    tunnelSecret: c.tunnelSecretFile ? readSecretFile('tunnelSecretFile', c.tunnelSecretFile, warnings) : c.tunnelSecret,
    // Only with IPsec on: callers and tests compare the whole object.
    ...(c.ipsec === 'off' ? {} : { ipsecPsk: c.ipsecPskFile ? readSecretFile('ipsecPskFile', c.ipsecPskFile, warnings) : c.ipsecPsk }),
  };
}

/** A copy of the config that is safe to print or log. */
export function maskSecrets(c: Config): Record<string, unknown> {
  const out: Record<string, unknown> = { ...c };
  for (const f of FIELDS) if (f.secret && out[f.key] !== undefined) out[f.key] = '********';
  return out;
}

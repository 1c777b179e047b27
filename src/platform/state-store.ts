import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { isValidAddress, maskPrefix } from '../ipv6/address';

/**
 * Small files the agent owns: written atomically (a temporary file in the same
 * directory, fsync, rename, then fsync of the directory) so that a crash or power
 * loss leaves either the old or the new content, never a torn file.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, opts: { mode?: number } = {}): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${randomBytes(4).toString('hex')}.tmp`);
  const mode = opts.mode ?? 0o644;
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(data);
    // The umask may have narrowed `mode`; the file must end up exactly as asked.
    await fh.chmod(mode);
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw e;
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw e;
  }
  // Make the rename itself durable; some filesystems refuse fsync on a directory.
  try {
    const d = await open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  } catch {
    /* best effort */
  }
}

/**
 * Agent state that must survive a restart (RFC 5571 7 / RFC 8415 18.2.1): the
 * DHCPv6 DUID, so the server keeps recognising us, and the last delegated
 * prefix, sent as a hint so the LAN keeps its numbering.
 */
export interface AgentState {
  /** DUID as lower-case hex. */
  duid?: string;
  lastPrefix?: { prefix: string; length: number };
}

export interface LoadResult {
  state: AgentState;
  /** Why (part of) the file was ignored; the agent logs these and carries on. */
  warnings: string[];
}

export const STATE_FILE = 'state.json';
/** A DUID is 2..130 octets (RFC 8415 11.1). */
const DUID_HEX = /^(?:[0-9a-f]{2}){3,130}$/;

export class StateStore {
  readonly file: string;

  constructor(readonly dir: string) {
    this.file = join(dir, STATE_FILE);
  }

  /** Never throws: a missing, unreadable or corrupt file yields fresh state and a warning. */
  async load(): Promise<LoadResult> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return { state: {}, warnings: [] };
      return { state: {}, warnings: [`cannot read ${this.file}: ${(e as Error).message}; starting fresh`] };
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      return { state: {}, warnings: [`${this.file} is not valid JSON; starting fresh`] };
    }
    return parseState(raw, this.file);
  }

  /** Replaces the file with `state` (mode 0600 in a 0700 directory). */
  async save(state: AgentState): Promise<void> {
    const clean = parseState(state, 'state to save');
    if (clean.warnings.length > 0) throw new RangeError(clean.warnings.join('; '));
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    // mkdir leaves an existing directory's mode alone; the DUID is not for other users.
    await chmod(this.dir, 0o700);
    await writeFileAtomic(this.file, `${JSON.stringify(clean.state, null, 2)}\n`, { mode: 0o600 });
  }

  /** Loads, applies `change`, saves; returns the saved state. */
  async update(change: (s: AgentState) => AgentState): Promise<AgentState> {
    const next = change((await this.load()).state);
    await this.save(next);
    return next;
  }
}

/** Keeps the fields that are well-formed; reports the rest. */
export function parseState(raw: unknown, where: string): LoadResult {
  const warnings: string[] = [];
  const state: AgentState = {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return { state, warnings: [`${where} does not hold a JSON object; starting fresh`] };
  }
  const r = raw as Record<string, unknown>;
  if (r.duid !== undefined) {
    if (typeof r.duid === 'string' && DUID_HEX.test(r.duid.toLowerCase())) state.duid = r.duid.toLowerCase();
    else warnings.push(`${where}: ignoring malformed duid`);
  }
  if (r.lastPrefix !== undefined) {
    const p = r.lastPrefix as { prefix?: unknown; length?: unknown } | null;
    if (
      p !== null &&
      typeof p === 'object' &&
      typeof p.prefix === 'string' &&
      isValidAddress(p.prefix) &&
      Number.isInteger(p.length) &&
      (p.length as number) >= 1 &&
      (p.length as number) <= 128
    ) {
      state.lastPrefix = { prefix: maskPrefix(p.prefix, p.length as number), length: p.length as number };
    } else warnings.push(`${where}: ignoring malformed lastPrefix`);
  }
  return { state, warnings };
}

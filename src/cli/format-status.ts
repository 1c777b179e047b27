import type { Status } from '../agent/status';

/**
 * The one-screen human summary `softwire status` prints. Scripts should use
 * `--json`; this text may change. Fields an older or newer agent leaves out
 * print as "-" instead of failing, so the verb stays useful across versions.
 */

const LABEL_WIDTH = 12;
const NONE = '-';

function row(label: string, value: string): string {
  return `${label.padEnd(LABEL_WIDTH)}${value}`;
}

/** Compact duration: 45s, 12m05s, 3h07m, 2d04h. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const pad = (n: number) => String(n).padStart(2, '0');
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${pad(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${pad(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86400)}d${pad(Math.floor((s % 86400) / 3600))}h`;
}

/** Time left until an ISO instant: "infinite" for null, "expired" once past. */
function remaining(until: string | null | undefined, now: Date): string {
  if (until === null || until === undefined) return 'infinite';
  const t = Date.parse(until);
  if (Number.isNaN(t)) return '?';
  const left = t - now.getTime();
  return left <= 0 ? 'expired' : formatDuration(left);
}

function hostPort(a: { address: string; port: number } | null | undefined): string {
  if (!a) return NONE;
  return a.address.includes(':') ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}

function ids(x: { localId: number; remoteId: number; state: string } | null | undefined): string {
  return x ? `${x.state} (local id ${x.localId}, remote id ${x.remoteId})` : NONE;
}

/** "k=v k=v" for the non-zero counters of one group; zero counters are noise on one screen. */
function counterGroup(c: Record<string, number> | undefined): string {
  return Object.entries(c ?? {})
    .filter(([, v]) => v !== 0)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
}

export function formatStatus(status: Status, now: Date = new Date()): string {
  // The status comes over a socket from another process: tolerate missing fields.
  const s = status as Partial<Status>;
  const out: string[] = [];
  const since = s.since ? Date.parse(s.since) : Number.NaN;
  const age = Number.isNaN(since) ? '' : ` for ${formatDuration(now.getTime() - since)} (since ${s.since})`;
  out.push(row('state', `${s.state ?? 'unknown'}${age}`));
  out.push(row('SC', s.local ? `${hostPort(s.sc)} from ${hostPort(s.local)}` : hostPort(s.sc)));
  const ip = s.ipsec;
  if (ip) {
    // --- IPsec (RFC 3193) ---
    const sa = ip.sa;
    const parts = [`${ip.mode.toUpperCase()} ${ip.phase}`];
    if (sa) {
      parts.push(`IKE SA ${sa.ike.state} ${[sa.ike.encr, sa.ike.integ || sa.ike.prf, sa.ike.dh].filter(Boolean).join('/')}, rekey in ${remaining(sa.ike.rekeyAt, now)}`);
      if (sa.child) parts.push(`CHILD SA ${sa.child.state} ${sa.child.mode.toLowerCase()} ${[sa.child.encr, sa.child.integ].filter(Boolean).join('/')}, rekey in ${remaining(sa.child.rekeyAt, now)}`);
      parts.push(sa.child?.encap ? 'NAT-T (UDP 4500)' : 'no NAT-T');
    }
    if (ip.overhead !== null) parts.push(`MTU cost ${ip.overhead} B`);
    if (ip.lastError && ip.phase !== 'up') parts.push(`last error: ${ip.lastError}`);
    out.push(row('IPsec', parts.join(', ')));
  }
  out.push(row('tunnel', ids(s.tunnel)));
  out.push(row('session', ids(s.session)));

  const p = s.ppp;
  if (p) {
    const ncp = Object.entries(p.ncp ?? {})
      .map(([k, v]) => `${k.toUpperCase()} ${v}`)
      .join(', ');
    const parts = [`LCP ${p.lcp}`, ncp || 'no NCP', `auth ${p.auth}`];
    if (p.mru !== null && p.mru !== undefined) parts.push(`MRU ${p.mru}`);
    parts.push(`echo RTT ${p.echoRttMs === null || p.echoRttMs === undefined ? NONE : `${p.echoRttMs} ms`}`);
    out.push(row('PPP', parts.join(', ')));
  } else {
    out.push(row('PPP', NONE));
  }
  const k = s.keepalive;
  if (k) {
    const nat = k.natSafe ? ' (NAT-safe: WAN address is private or shared)' : '';
    out.push(row('keepalive', `echo ${k.lcpEchoInterval} s, hello ${k.helloInterval} s${nat}, dead after ${k.deadTimeS} s`));
  }

  const v6 = s.ipv6;
  if (v6) {
    const head = [`address ${v6.address ?? NONE}`, `link-local ${v6.linkLocal ?? NONE}`];
    if (v6.defaultRoute) head.push('default route');
    out.push(row('IPv6', head.join(', ')));
    const d = v6.delegatedPrefix;
    if (d) {
      out.push(
        row('  prefix', `${d.prefix}/${d.length}, preferred ${remaining(d.preferredUntil, now)}, valid ${remaining(d.validUntil, now)}`),
      );
    }
    if (v6.dns?.length || v6.domains?.length) {
      const search = v6.domains?.length ? ` (search ${v6.domains.join(' ')})` : '';
      out.push(row('  DNS', `${v6.dns?.length ? v6.dns.join(' ') : NONE}${search}`));
    }
    for (const l of v6.lan ?? []) out.push(row('  LAN', `${l.ifname} ${l.prefix} (${l.address})`));
  } else {
    out.push(row('IPv6', NONE));
  }

  const v4 = s.ipv4;
  if (v4) {
    const parts = [`address ${v4.address ?? NONE}`, `peer ${v4.peer ?? NONE}`];
    if (v4.dns?.length) parts.push(`DNS ${v4.dns.join(' ')}`);
    parts.push(v4.carryTraffic ? 'default route' : 'no default route');
    out.push(row('IPv4', parts.join(', ')));
  } else {
    out.push(row('IPv4', NONE));
  }

  // Data-path kernel offloads (issue 17); absent from an agent that predates them.
  if (s.offloads) out.push(row('offloads', s.offloads.length ? s.offloads.join(' ') : 'none (one packet per system call)'));

  const groups = (['l2tp', 'ppp', 'data', 'drops'] as const)
    .map((g) => [g, counterGroup(s.counters?.[g])] as const)
    .filter(([, text]) => text !== '');
  if (groups.length === 0) out.push(row('counters', NONE));
  groups.forEach(([g, text], i) => {
    out.push(row(i === 0 ? 'counters' : '', `${g}: ${text}`));
  });
  out.push(row('reconnects', String(s.reconnects ?? 0)));
  const e = s.lastError;
  out.push(row('last error', e ? `${e.at} ${e.layer}: ${e.message}` : NONE));
  return `${out.join('\n')}\n`;
}

/**
 * What `status` shows of the data-path offloads (issue 17): which ones the kernel
 * granted on the TUN and the tunnel's UDP socket, and their counters. An edge without
 * offloads (Node's dgram socket, a test double, an old kernel) contributes nothing.
 */

/** An edge that may use offloads: TunDevice and NativeUdpTransport have these. */
export interface OffloadEdge {
  readonly offloads?: string[];
  offloadStats?(): Record<string, number>;
}

export interface OffloadStatus {
  /** e.g. ['vnet-hdr', 'csum', 'tso4', 'tso6', 'uso4', 'uso6', 'tcp-coalesce', 'udp-coalesce', 'udp-gso', 'udp-gro']; [] is today's path. */
  offloads: string[];
  /** Counters by name, prefixed 'tun.' or 'udp.' (non-zero ones). */
  counters: Record<string, number>;
}

export function offloadStatus(tun: OffloadEdge | null | undefined, udp: OffloadEdge | null | undefined): OffloadStatus {
  const out: OffloadStatus = { offloads: [], counters: {} };
  for (const [prefix, edge] of [
    ['tun', tun],
    ['udp', udp],
  ] as const) {
    if (!edge) continue;
    out.offloads.push(...(edge.offloads ?? []));
    const c = edge.offloadStats?.() ?? {};
    for (const k in c) out.counters[`${prefix}.${k}`] = c[k]!;
  }
  return out;
}

/**
 * Data-path counters, per direction. Plain numeric fields so the hot path only
 * increments; drops are keyed by reason and direction ('tx.' towards the SC, 'rx.'
 * towards the TUN) and bounded in number like the cores' drop maps.
 */

const MAX_DROP_KEYS = 32;

export class DataCounters {
  /** Packets read from the TUN and sent towards the SC, and their IP octets. */
  txPackets = 0;
  txOctets = 0;
  /** Packets from the SC written to the TUN, and their IP octets. */
  rxPackets = 0;
  rxOctets = 0;
  /** SYNs whose MSS option was lowered (both directions). */
  mssClamped = 0;
  /** IPv6 packets from the SC the agent's own cores consumed or watched (RA, DHCPv6, NS/NA). */
  toCores = 0;
  /** Wake-ups on each side: packets per batch = packets / batches. */
  txBatches = 0;
  rxBatches = 0;
  readonly drops: Record<string, number> = {};

  drop(dir: 'tx' | 'rx', reason: string, n = 1): void {
    const d = this.drops;
    let key = `${dir}.${reason}`;
    if (!(key in d) && Object.keys(d).length >= MAX_DROP_KEYS) key = `${dir}.other`;
    d[key] = (d[key] ?? 0) + n;
  }

  /**
   * The status view (`counters.data`). tunIn/tunOut and their octets keep the names
   * the status model had before; the rest are additions.
   */
  snapshot(): Record<string, number> {
    return {
      tunIn: this.txPackets,
      tunInOctets: this.txOctets,
      tunOut: this.rxPackets,
      tunOutOctets: this.rxOctets,
      mssClamped: this.mssClamped,
      toCores: this.toCores,
      txBatches: this.txBatches,
      rxBatches: this.rxBatches,
      txDrops: sumPrefix(this.drops, 'tx.'),
      rxDrops: sumPrefix(this.drops, 'rx.'),
    };
  }
}

function sumPrefix(o: Record<string, number>, p: string): number {
  let n = 0;
  for (const k in o) if (k.startsWith(p)) n += o[k]!;
  return n;
}

/**
 * The softwire MTU and where it comes from (issue 16 item 3).
 *
 * The MTU the kernel may send into the softwire is the smallest of:
 * - the base: the configured `mtu`, or the WAN path MTU minus IP + UDP + L2TP + PPP
 *   overhead (RFC 5571 5.2.1), less 4 more bytes while data messages carry Ns/Nr
 *   (RFC 2661 5.4 sequencing; only when derived: a configured MTU is the operator's);
 * - the SC's MRU from LCP (RFC 1661 6.1: the most the SC will receive);
 * - the MTU option of the SC's Router Advertisement (RFC 4861 6.3.4), when it is
 *   at least the IPv6 minimum and not above the link's own.
 *
 * Pure: the connection feeds what it learns and applies the MTU each input reports
 * as changed to the TUN, the MSS clamp, SLAAC and the LAN's RAs.
 */

/** Ns and Nr in every data message header while sequencing is on (RFC 2661 3.1). */
export const SEQUENCING_OVERHEAD = 4;
/** RFC 8200 5: no IPv6 link is smaller. */
export const IPV6_MIN_MTU = 1280;
/** RFC 1661 6.1: a peer MRU below this is not taken (the LCP handler Naks it). */
export const MIN_MRU = 576;

export type MtuLimit = 'configured' | 'wan' | 'sc-mru' | 'ra';

export interface MtuPlanOptions {
  /** The configured MTU, or the WAN-derived one before sequencing. */
  base: number;
  /** The base came from the WAN path MTU (not configured): sequencing then costs 4 bytes. */
  derived: boolean;
}

export class MtuPlan {
  private sequencing = false;
  private scMru: number | undefined;
  private ra: number | undefined;
  private current: number;

  constructor(private readonly o: MtuPlanOptions) {
    this.current = this.compute().mtu;
  }

  /** The MTU to use now. */
  get mtu(): number {
    return this.current;
  }

  /** The MTU without the RA's say: the ceiling an RA MTU option may not exceed. */
  get linkMtu(): number {
    return Math.min(this.ownBase(), this.scMru ?? Number.POSITIVE_INFINITY);
  }

  /** The largest the MTU can ever become (TUN receive slots are sized from it). */
  get ceiling(): number {
    return this.o.base;
  }

  get limitedBy(): MtuLimit {
    return this.compute().by;
  }

  /** Data sequencing turned on or off. Returns the new MTU if it changed. */
  setSequencing(on: boolean): number | undefined {
    this.sequencing = on;
    return this.refresh();
  }

  /** The SC's MRU as acknowledged in LCP (0 or undefined: none, i.e. the default 1500). */
  setScMru(mru: number | undefined): number | undefined {
    this.scMru = mru && mru >= MIN_MRU ? mru : undefined;
    return this.refresh();
  }

  /** The RA's MTU option; one out of range (below 1280, above the link) is ignored. */
  setRaMtu(mtu: number | undefined): number | undefined {
    this.ra = mtu !== undefined && mtu >= IPV6_MIN_MTU ? mtu : undefined;
    return this.refresh();
  }

  private ownBase(): number {
    return this.o.base - (this.o.derived && this.sequencing ? SEQUENCING_OVERHEAD : 0);
  }

  private compute(): { mtu: number; by: MtuLimit } {
    let mtu = this.ownBase();
    let by: MtuLimit = this.o.derived ? 'wan' : 'configured';
    if (this.scMru !== undefined && this.scMru < mtu) {
      mtu = this.scMru;
      by = 'sc-mru';
    }
    if (this.ra !== undefined && this.ra < mtu) {
      mtu = this.ra;
      by = 'ra';
    }
    return { mtu, by };
  }

  private refresh(): number | undefined {
    const next = this.compute().mtu;
    if (next === this.current) return undefined;
    this.current = next;
    return next;
  }
}

/**
 * Receive slot size for a TUN whose MTU can reach `mtu`: the whole packet must fit
 * or the read is truncated and dropped. Rounded up to 64 bytes, never below the
 * 2048 that keeps small-MTU rings cheap, never above the IPv4/IPv6 packet limit.
 */
export function tunSlotSize(mtu: number): number {
  const want = Math.max(2048, Math.min(65535, Math.ceil(mtu)));
  return Math.min(65536, Math.ceil(want / 64) * 64);
}

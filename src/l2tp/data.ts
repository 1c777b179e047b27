import { encodeData } from './messages';
import { seqAdd, seqLt } from './seq';

/**
 * Data-message sequencing for one session (RFC 2661 5.4): our next Ns, the next Ns we
 * expect from the SC, and whether sequencing is on. The rest of the data path is framing
 * (messages.ts) and, for unsequenced IP, the fast path in src/dataplane, which asks
 * Lac.dataHeader() on every batch and so follows `sequencing` without being told.
 */
export class DataSequencing {
  /** Data carries Ns: we asked for it (Sequencing Required) or the SC sends S=1. */
  on: boolean;
  private ns = 0;
  private nr: number | undefined;

  /** `required`: we send Sequencing Required in ICCN (4.4.6), so it holds for the whole session. */
  constructor(private readonly required: boolean) {
    this.on = required;
  }

  /** A new call starts unsequenced unless we require it. */
  reset(): void {
    this.on = this.required;
    this.ns = 0;
    this.nr = undefined;
  }

  /**
   * Looks at the Ns of one data message from the SC: undefined to take the frame, or the
   * drop reason for a stale one.
   */
  receive(ns: number | undefined): string | undefined {
    if (ns !== undefined) {
      // The SC sequences its data, so we do too; stale frames are dropped.
      this.on = true;
      if (this.nr !== undefined && seqLt(ns, this.nr)) return 'data-out-of-order';
      this.nr = seqAdd(ns, 1);
    } else if (this.on && !this.required) {
      // 5.4: the LNS turns sequencing off by sending data without Ns, and the LAC then MUST
      // stop too: no Ns on our data (4 octets less), and the fast path takes the data again.
      this.on = false;
      this.nr = undefined;
    }
    return undefined;
  }

  /** One PPP frame in a data message to the SC, with our next Ns when sequencing. */
  frame(to: { tunnelId: number; sessionId: number }, ppp: Uint8Array, priority: boolean): Uint8Array {
    const ns = this.on ? this.ns : undefined;
    if (ns !== undefined) this.ns = seqAdd(ns, 1);
    return encodeData({ tunnelId: to.tunnelId, sessionId: to.sessionId, ns, priority }, ppp);
  }
}

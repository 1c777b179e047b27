import { l2tpOfferText, ntpSeconds } from './l2tp';

/**
 * The SDP offers of one agent run (draft-tveretin-dispatch-l2tp-sdp-02, issue 16 item 8).
 *
 * An offer names where the SC should expect our SCCRQ to come from, so it is made
 * only once the tunnel's socket is bound: the real local address and the real
 * (ephemeral) port, not 1701 and a guess. When the tunnel leaves from another address
 * or port (the WAN address changed, section 6, or a redial bound a new port) the next
 * offer keeps the o= session id and carries a higher session version, as a re-offer
 * must (RFC 3264 8). Pure: the agent writes what `bound` returns.
 */
export class SdpOfferer {
  private readonly sessionId: string;
  private version: bigint;
  private last: string | undefined;

  constructor(now: Date) {
    this.sessionId = ntpSeconds(now);
    this.version = BigInt(this.sessionId);
  }

  /** The tunnel socket is bound at address:port. Returns a new offer, or undefined if the last one still holds. */
  bound(address: string, port: number): string | undefined {
    const key = `${address}|${port}`;
    if (key === this.last) return undefined;
    if (this.last !== undefined) this.version++;
    this.last = key;
    return l2tpOfferText({ address, port, sessionId: this.sessionId, sessionVersion: String(this.version) });
  }
}

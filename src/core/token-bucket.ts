/**
 * A token bucket driven by the caller's clock (sans-I/O: `now` in ms on every call).
 * Used where a reply to unsolicited input must be bounded so that a forged sender
 * cannot turn us into a traffic reflector (e.g. PPP Protocol-Reject, RFC 1661 5.7,
 * rate-limited the way ICMPv6 errors are in RFC 4443 2.4(f)).
 */
export class TokenBucket {
  private tokens: number;
  private last: number | null = null;

  /**
   * @param burst   replies allowed back to back (and the bucket's size)
   * @param perSecond  steady rate the bucket refills at
   */
  constructor(
    private readonly burst: number,
    private readonly perSecond: number,
  ) {
    this.tokens = burst;
  }

  /** Takes one token if there is one; false means the reply should be suppressed. */
  take(now: number): boolean {
    if (this.last !== null && now > this.last) this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.perSecond) / 1000);
    if (this.last === null || now > this.last) this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

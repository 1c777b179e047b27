/**
 * Which source addresses may reach the L2TP cores (issue 16 item 7).
 *
 * Strict (the default): only the address we dialled. RFC 2661 8.1 lets an LNS answer
 * the SCCRQ from another address (a VIP, an anycast address, a loopback source), and
 * with `acceptOther` the first reply of the tunnel may come from anywhere. The trade-off:
 * until the tunnel latches, anyone who can guess our port and Tunnel ID can inject a
 * forged SCCRP. So the agent turns this on only with a tunnel secret, where the LAC's
 * Challenge makes an SCCRP without the right Challenge Response end the attempt instead
 * of being believed (RFC 2661 5.1.1); it is therefore a denial of service at worst, as it
 * already is with a forged SCCRP from the dialled address. Once the LAC latched onto
 * the SCCRP's source, only that address is let in.
 */
export class ScSourceGate {
  private current: string;
  private latched = false;

  constructor(
    dialled: string,
    private readonly acceptOther: boolean,
  ) {
    this.current = dialled;
  }

  /** The address sends go to and datagrams are taken from. */
  get address(): string {
    return this.current;
  }

  /** Whether a datagram from `address` may reach the cores. */
  admits(address: string): boolean {
    return address === this.current || (this.acceptOther && !this.latched);
  }

  /** The LAC latched onto a reply from `address`; returns whether the transport follows it. */
  latch(address: string): boolean {
    if (this.latched && address !== this.current) return false;
    if (address !== this.current && !this.acceptOther) return false;
    this.current = address;
    this.latched = true;
    return true;
  }
}

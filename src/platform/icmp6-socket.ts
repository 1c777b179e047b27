import { META_FLAGS, META_HOPLIMIT, META_IFINDEX, META_LENGTH, NativeChannel, type NativeHandle, addon } from '../native/addon';
import { formatAddress } from '../ipv6/address';
import { explainPermission } from './privileges';

export interface Icmp6Options {
  /** Messages read per wake-up at most (default 8). */
  batch?: number;
  /** Largest message accepted; longer ones are dropped (default 2048). */
  slotSize?: number;
  /** Hop limit of sent messages, unicast and multicast (default 255, as Neighbor Discovery requires). */
  hopLimit?: number;
}

export interface Icmp6Message {
  /** The ICMPv6 message from its type byte on (no IPv6 header). A view valid only during the callback. */
  data: Buffer;
  type: number;
  code: number;
  /** Source address, without scope. */
  from: string;
  /** Destination address (a multicast group for RS/RA), without scope. */
  to: string;
  /** Interface it arrived on; the scope of a link-local `from`. */
  ifindex: number;
  /** The IPv6 hop limit it arrived with; ND receivers must check it is 255. -1 if unknown. */
  hopLimit: number;
}

/** Well-known groups. */
export const ALL_NODES = 'ff02::1';
export const ALL_ROUTERS = 'ff02::2';

/**
 * A raw ICMPv6 socket bound to one interface, for Router Solicitations and
 * Advertisements on a LAN or WAN link. The kernel computes the checksum of what we
 * send and verifies it on what we receive.
 */
export class Icmp6Socket extends NativeChannel<NativeHandle> {
  /** Messages dropped because they did not fit a receive slot. */
  truncatedDrops = 0;

  private constructor(
    handle: NativeHandle,
    /** The interface this socket is bound to. */
    readonly ifname: string,
  ) {
    super(addon(), handle);
  }

  static open(ifname: string, opts: Icmp6Options = {}): Icmp6Socket {
    const native = addon();
    let handle: NativeHandle;
    try {
      handle = native.icmp6Open(ifname, opts.batch ?? 8, opts.slotSize ?? 2048, opts.hopLimit ?? 255);
    } catch (e) {
      // A raw socket (and SO_BINDTODEVICE before Linux 5.7) needs CAP_NET_RAW.
      throw explainPermission(e, 'CAP_NET_RAW');
    }
    return new Icmp6Socket(handle, ifname);
  }

  /** Receive multicast to `group` on the bound interface (e.g. ALL_ROUTERS to hear RS). */
  joinGroup(group: string): void {
    this.native.icmp6Membership(this.handle, group, true);
  }

  leaveGroup(group: string): void {
    this.native.icmp6Membership(this.handle, group, false);
  }

  /** Only these ICMPv6 types wake us (filtered in the kernel); null accepts all. */
  setTypeFilter(types: readonly number[] | null): void {
    this.native.icmp6Filter(this.handle, types);
  }

  /** Starts delivering messages, one call each. Replaces a previous handler. */
  onMessage(cb: (msg: Icmp6Message) => void, onError?: (err: Error) => void): void {
    const { ring, meta, addrs, slotSize } = this.handle;
    const stride = this.native.META_STRIDE;
    const addrStride = this.native.ADDR_STRIDE;
    const truncated = this.native.FLAG_TRUNCATED;
    this.listen((count) => {
      for (let slot = 0; slot < count; slot++) {
        const m = slot * stride;
        const length = meta[m + META_LENGTH]!;
        // Shorter than an ICMPv6 header is not a message we can name; the kernel should not pass it anyway.
        if (meta[m + META_FLAGS]! & truncated || length < 4) {
          this.truncatedDrops++;
          continue;
        }
        const data = ring.subarray(slot * slotSize, slot * slotSize + length);
        cb({
          data,
          type: data[0]!,
          code: data[1]!,
          from: formatIpv6(addrs, slot * addrStride),
          to: formatIpv6(addrs, slot * addrStride + 16),
          ifindex: meta[m + META_IFINDEX]!,
          hopLimit: meta[m + META_HOPLIMIT]!,
        });
        if (this.closed) return;
      }
    }, onError);
  }

  /**
   * Sends an ICMPv6 message (type byte first; checksum left to the kernel) to
   * `address`. `scopeId` defaults to the bound interface, which is what link-local
   * and multicast destinations need. False if the socket buffer is full (EAGAIN).
   */
  send(message: Uint8Array, address: string, scopeId = 0): boolean {
    return this.native.icmp6Send(this.handle, message, address, scopeId) === 1;
  }
}

/** RFC 5952 text form of the 16 bytes at `off` (one formatter for the project: src/ipv6/address.ts). */
export function formatIpv6(b: Uint8Array, off = 0): string {
  return formatAddress(b.subarray(off, off + 16));
}

import { META_FLAGS, META_LENGTH, META_OFFSET, NativeChannel, type NativeTunHandle, addon } from '../native/addon';
import { explainPermission } from './privileges';

export interface TunOptions {
  /** Packets read per wake-up at most (default 64). */
  batch?: number;
  /** Bytes per receive slot; must be at least the device MTU or packets are dropped as truncated (default 4096). */
  slotSize?: number;
  /**
   * Kernel offloads (IFF_VNET_HDR, TSO/USO, checksum): reads may be 64 KB super-packets,
   * which the addon cuts into MTU-sized packets, and writes join TCP segments. The
   * ring is then sized for that (OFFLOAD_BATCH entries of OFFLOAD_SLOT bytes) and
   * batch/slotSize are ignored. Falls back to a plain device where the kernel refuses.
   */
  offload?: boolean;
}

/** Ring for an offloading TUN: room for one 64 KB super-packet cut at TCP's smallest MSS, and more. */
const OFFLOAD_BATCH = 1536;
const OFFLOAD_SLOT = 512;

/**
 * The packets of one wake-up, all in one buffer that is reused for the next wake-up.
 * Packet i is entry slots[i] of the ring's metadata.
 *
 * Lifetime rule: `packet(i)` views (and the batch itself) are valid only during the
 * onPackets callback. Copy (`Buffer.from(view)`) whatever must outlive it.
 */
export class PacketBatch {
  /** Number of packets in this batch. */
  count = 0;
  /** Slot index of the i-th packet (truncated slots are skipped). */
  readonly slots: Uint16Array;

  constructor(
    /** The shared receive ring; packet i starts at offset(i). */
    readonly buffer: Buffer,
    /** The ring's metadata (META_STRIDE entries per slot): the C send path reads it directly. */
    readonly meta: Int32Array,
    private readonly stride: number,
  ) {
    this.slots = new Uint16Array(Math.max(1, Math.floor(meta.length / stride)));
  }

  offset(i: number): number {
    return this.meta[this.slots[i]! * this.stride + META_OFFSET]!;
  }

  length(i: number): number {
    return this.meta[this.slots[i]! * this.stride + META_LENGTH]!;
  }

  /** A view (no copy) of packet i. */
  packet(i: number): Buffer {
    const off = this.offset(i);
    return this.buffer.subarray(off, off + this.length(i));
  }
}

/**
 * A TUN device (layer 3, no packet-info header): the kernel side of the softwire.
 * Reads are batched on the event loop; writes never block and report a full kernel
 * queue by returning false / a short count rather than throwing.
 */
export class TunDevice extends NativeChannel<NativeTunHandle> {
  /** Packets dropped because they did not fit a receive slot. */
  truncatedDrops = 0;
  private readonly batchView: PacketBatch;

  private constructor(handle: NativeTunHandle) {
    super(addon(), handle);
    this.batchView = new PacketBatch(handle.ring, handle.meta, this.native.META_STRIDE);
  }

  /** Creates (or attaches to) the TUN device `name`; '' lets the kernel choose tunN. */
  static open(name = '', opts: TunOptions = {}): TunDevice {
    const native = addon();
    let handle: NativeTunHandle;
    try {
      handle = opts.offload
        ? native.tunOpen(name, OFFLOAD_BATCH, OFFLOAD_SLOT, true)
        : native.tunOpen(name, opts.batch ?? 64, opts.slotSize ?? 4096);
    } catch (e) {
      // TUNSETIFF refuses with EPERM without CAP_NET_ADMIN; say which capability, not just "not permitted".
      throw explainPermission(e, 'CAP_NET_ADMIN');
    }
    return new TunDevice(handle);
  }

  /** The device name the kernel gave us. */
  get name(): string {
    return this.handle.name;
  }

  /** Starts delivering packets (see PacketBatch for the lifetime rule). Replaces a previous handler. */
  onPackets(cb: (batch: PacketBatch) => void, onError?: (err: Error) => void): void {
    const { meta } = this.handle;
    const stride = this.native.META_STRIDE;
    const truncated = this.native.FLAG_TRUNCATED;
    const batch = this.batchView;
    this.listen((count) => {
      let n = 0;
      for (let slot = 0; slot < count; slot++) {
        if (meta[slot * stride + META_FLAGS]! & truncated) this.truncatedDrops++;
        else batch.slots[n++] = slot;
      }
      batch.count = n;
      if (n > 0) cb(batch);
    }, onError);
  }

  /** Sends one packet to the kernel; false if its queue is full (EAGAIN). */
  write(packet: Uint8Array): boolean {
    return this.native.write(this.handle, packet) === 1;
  }

  /**
   * Writes packets straight from `source` (e.g. a UDP receive ring): packet i is
   * source[desc[3i] .. desc[3i] + desc[3i+1]]. Returns how many were taken (fewer only on EAGAIN).
   */
  writeFrames(source: Uint8Array, desc: Int32Array, count: number): number {
    return this.native.tunWriteFrames(this.handle, source, desc, count);
  }

  /** Sends packets in order; returns how many were taken (fewer than given only on EAGAIN). */
  writeBatch(packets: readonly Uint8Array[]): number {
    return this.native.writeBatch(this.handle, packets);
  }
}

import type { FrameTun, TunBatch } from '../dataplane/dataplane';

/**
 * The TUN edge as the agent's Connection sees it: packets arrive in batches (one
 * callback per wake-up), go out one at a time or, with the native device, as a
 * batch of frames written from where they were received. platform/tun.ts's
 * TunDevice is the real one; tests pass a double. A write the kernel refuses
 * throws (EINVAL for a non-IP payload): the caller counts it (io/drops.ts), it is
 * never fatal.
 */
export interface TunLike {
  readonly name: string;
  onPackets(cb: (batch: { count: number; packet(i: number): Uint8Array } & Partial<TunBatch>) => void, onError?: (e: Error) => void): void;
  /** False when the kernel queue is full (the packet is dropped). */
  write(pkt: Uint8Array): boolean;
  /** Packets the kernel sent that did not fit a receive slot (native TUN; issue 16 item 3). */
  readonly truncatedDrops?: number;
  /** The native TUN's batched write; with it (and the native UDP transport) the data fast path runs. */
  writeFrames?: FrameTun['writeFrames'];
  close(): void;
}

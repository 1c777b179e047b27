import { isIP } from 'node:net';
import { META_FAMILY, META_FLAGS, META_LENGTH, META_OFFSET, META_PORT, NativeChannel, type NativeUdpHandle, addon } from '../native/addon';
import { formatAddress, parseAddress } from '../ipv6/address';
import { ScSourceGate } from '../l2tp/sc-gate';
import { type DatagramHandler, type DatagramTransport, type Endpoint, UdpTransport, endpointKey, parseEndpointKey } from '../io/udp-socket';

/**
 * The tunnel's UDP socket owned by the native addon: recvmmsg into a reused ring on
 * receive, sendmmsg of header template + payload on send. It keeps UdpTransport's
 * contract (the L2TP core sees every control datagram unchanged, as a Buffer of its
 * own, with the same source key; foreign sources are dropped here) and adds a data
 * sink: the dataplane may take data datagrams in place before they would be copied.
 */

/** The receiving half of the data fast path (the Dataplane). */
export interface DatagramSink {
  /** A wake-up starts: refresh per-batch state. */
  begin(): void;
  /** Takes a data datagram at buf[off..off+len) in place; false leaves it to the protocol cores. */
  take(buf: Buffer, off: number, len: number): boolean;
  /** Writes out what was taken; called before a datagram goes to the cores (keeps order) and at the end. */
  flush(buf: Buffer): void;
}

/** Receive slots per wake-up; the C side caps recvmmsg at 256. */
const BATCH = 64;
/** A slot takes any datagram a 9000-byte path could carry. */
const SLOT = 9216;
/**
 * With UDP GRO a slot takes a train of up to 64 KB (up to 64 datagrams, one entry each).
 * 32 of them: an SC that sends no trains (l2tpns) still gets 32 datagrams per wake-up;
 * a single datagram touches one page of its slot, so resident memory follows the trains.
 */
const GRO_BATCH = 32;
const GRO_SLOT = 65536;
const SOCKET_BUFFER = 4 << 20;

/** A receive ring the data path can classify in C (NativeUdpTransport.takeData). */
export interface DataRunSource {
  readonly ring: Buffer;
  takeData(from: number, count: number, params: Int32Array, desc: Int32Array, descStart: number, descMax: number, out: Int32Array): number;
}

/** A DatagramSink that takes runs of data datagrams through the C classifier (the Dataplane). */
export interface RunSink extends DatagramSink {
  /** Takes data entries from `from` on; returns the first entry it left (to be handled one by one). */
  takeRun(src: DataRunSource, from: number, count: number): number;
}

const isRunSink = (s: DatagramSink | null): s is RunSink => s !== null && typeof (s as Partial<RunSink>).takeRun === 'function';

export class NativeUdpTransport extends NativeChannel<NativeUdpHandle> implements DatagramTransport, DataRunSource {
  readonly drops: Record<string, number> = {};
  private handler: DatagramHandler = () => {};
  private sink: DatagramSink | null = null;
  private peer: Endpoint;
  /** The SC's address as bytes, compared in place against each datagram's source. */
  private scBytes: Buffer;
  private readonly scFamily: number;
  /** Issue 16 item 7: the dialled address only, or (opt-in) the SCCRP's source. */
  private readonly gate: ScSourceGate;
  private lastPort = -1;
  private lastKey = '';

  private constructor(
    handle: NativeUdpHandle,
    readonly sc: Endpoint,
    acceptOtherAddress: boolean,
  ) {
    super(addon(), handle);
    this.peer = { ...sc };
    this.gate = new ScSourceGate(sc.address, acceptOtherAddress);
    this.scFamily = isIP(sc.address);
    this.scBytes = addressBytes(sc.address);
    this.native.udpSetPeer(handle, sc.address, sc.port);
    this.listen((count) => this.onSlots(count));
  }

  /**
   * Opens a socket for `sc`, bound to `localAddress` (any if omitted) and an ephemeral
   * port; with `offload`, UDP GSO/GRO where the kernel has them.
   */
  static async open(sc: Endpoint, localAddress?: string, opts: { acceptOtherAddress?: boolean; offload?: boolean } = {}): Promise<NativeUdpTransport> {
    const family = isIP(sc.address);
    if (family === 0) throw new Error(`SC address "${sc.address}" is not an IP address`);
    const bindTo = localAddress ?? (family === 6 ? '::' : '0.0.0.0');
    const h = opts.offload
      ? addon().udpOpen(bindTo, 0, GRO_BATCH, GRO_SLOT, SOCKET_BUFFER, true)
      : addon().udpOpen(bindTo, 0, BATCH, SLOT, SOCKET_BUFFER);
    return new NativeUdpTransport(h, sc, opts.acceptOtherAddress ?? false);
  }

  private count(reason: string): void {
    this.drops[reason] = (this.drops[reason] ?? 0) + 1;
  }

  private onSlots(count: number): void {
    const { ring, meta, addrs } = this.handle;
    const stride = this.native.META_STRIDE;
    const sink = this.sink;
    sink?.begin();
    const run = isRunSink(sink) ? sink : null;
    for (let slot = 0; slot < count && !this.closed; slot++) {
      if (run) {
        // Runs of our session's data go through the C classifier; the entry it stops at is handled below.
        slot = run.takeRun(this, slot, count);
        if (slot >= count) break;
      }
      const m = slot * stride;
      if (meta[m + META_FLAGS]! !== 0) {
        this.count('truncated');
        continue;
      }
      let key: string | undefined;
      if (meta[m + META_FAMILY] !== this.scFamily || !this.fromSc(addrs, slot * 32)) {
        // Another address of the SC may answer the SCCRP when the gate allows it (slow path, before latching).
        const other = this.scFamily === 6 ? formatAddress(addrs.subarray(slot * 32, slot * 32 + 16)) : [...addrs.subarray(slot * 32, slot * 32 + 4)].join('.');
        if (meta[m + META_FAMILY] !== this.scFamily || !this.gate.admits(other)) {
          this.count('foreign-source');
          continue;
        }
        key = endpointKey({ address: other, port: meta[m + META_PORT]! });
      }
      const off = meta[m + META_OFFSET]!;
      const len = meta[m + META_LENGTH]!;
      if (sink) {
        if (sink.take(ring, off, len)) continue;
        sink.flush(ring);
      }
      this.handler(Buffer.from(ring.subarray(off, off + len)), key ?? this.sourceKey(meta[m + META_PORT]!));
    }
    sink?.flush(ring);
  }

  get ring(): Buffer {
    return this.handle.ring;
  }

  /** TUN batch to the SC, classified and clamped in C (SoftwireAddon.udpSendTun); 0 once closed. */
  sendTun(headers: Uint8Array, headerLen: number, source: Uint8Array, meta: Int32Array, slots: Uint16Array, from: number, to: number, params: Int32Array, out: Int32Array): number {
    if (this.closed || from >= to) return 0;
    return this.native.udpSendTun(this.handle, headers, headerLen, source, meta, slots, from, to, params, out);
  }

  /** The C classifier over the receive ring (SoftwireAddon.udpTakeData). */
  takeData(from: number, count: number, params: Int32Array, desc: Int32Array, descStart: number, descMax: number, out: Int32Array): number {
    return this.native.udpTakeData(this.handle, from, count, params, desc, descStart, descMax, out);
  }

  private fromSc(addrs: Buffer, at: number): boolean {
    const b = this.scBytes;
    for (let i = 0; i < b.length; i++) if (addrs[at + i] !== b[i]) return false;
    return true;
  }

  /** The same key UdpTransport gives; the string is reused while the port stays. */
  private sourceKey(port: number): string {
    if (port !== this.lastPort) {
      this.lastPort = port;
      this.lastKey = endpointKey({ address: this.gate.address, port });
    }
    return this.lastKey;
  }

  onDatagram(h: DatagramHandler): void {
    this.handler = h;
  }

  /** Installs (or with null removes) the data fast path's receiver. */
  setSink(sink: DatagramSink | null): void {
    this.sink = sink;
  }

  retarget(from: string): void {
    const e = parseEndpointKey(from);
    if (this.closed || !this.gate.latch(e.address)) return;
    if (e.address !== this.sc.address) {
      this.scBytes = addressBytes(e.address);
      this.lastPort = -1;
    }
    this.peer = e;
    this.native.udpSetPeer(this.handle, e.address, e.port);
  }

  get remote(): Endpoint {
    return this.peer;
  }

  get local(): Endpoint {
    return { address: this.handle.localAddress, port: this.handle.localPort };
  }

  send(bytes: Uint8Array): void {
    if (this.closed) return;
    if (this.native.udpSend(this.handle, bytes) !== 1) this.count('send-dropped');
  }

  /** sendmmsg of header templates + payloads (see SoftwireAddon.udpSendFrames); 0 once closed. */
  sendFrames(headers: Uint8Array, headerLen: number, source: Uint8Array, desc: Int32Array, count: number): number {
    if (this.closed || count === 0) return 0;
    return this.native.udpSendFrames(this.handle, headers, headerLen, source, desc, count);
  }
}

function addressBytes(address: string): Buffer {
  return isIP(address) === 4 ? Buffer.from(address.split('.').map(Number)) : Buffer.from(parseAddress(address));
}

/**
 * The transport the agent should use: the native one, or Node's dgram one when the
 * addon cannot be loaded (the control plane still works; the data path is slower).
 */
export async function openDataTransport(sc: Endpoint, localAddress?: string, opts: { acceptOtherAddress?: boolean; offload?: boolean } = {}): Promise<DatagramTransport> {
  try {
    addon();
  } catch {
    return UdpTransport.open(sc, localAddress, opts);
  }
  return NativeUdpTransport.open(sc, localAddress, opts);
}

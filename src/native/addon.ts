import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

/**
 * Loader and typed interface of the C addon in src/native/softwire.c. `npm ci` gets
 * it from prebuilds/linux-<arch>/ (committed, made by `npm run prebuilds`) or, where
 * none of those loads, compiles it with node-gyp into build/Release/softwire.node.
 *
 * The addon is loaded lazily, on the first open of a device or socket, so code that
 * merely imports the platform layer (unit tests, `softwire --help`) runs where the
 * addon was never built.
 */

/** Error thrown by the addon (or passed to a read callback). `errno` is negative, as in Node's own system errors. */
export interface NativeError extends Error {
  code: string;
  errno: number;
  /** writeBatch only: the packet that failed; the packets before it were written. */
  index?: number;
}

/**
 * A polled fd plus the receive ring the C side fills on each wake-up: entry i has its
 * metadata at `meta[i * META_STRIDE ...]`, its bytes at `ring[meta[i * META_STRIDE +
 * META_OFFSET] ...]` and (ICMPv6, UDP) addresses at `addrs[i * ADDR_STRIDE ...]`.
 * Without offloads entry i is slot i (offset i * slotSize); with them one read may
 * yield many entries (a cut TUN super-packet, a UDP GRO train), packed in the ring.
 */
export interface NativeHandle {
  readonly fd: number;
  readonly ifindex: number;
  readonly batch: number;
  readonly slotSize: number;
  readonly ring: Buffer;
  readonly meta: Int32Array;
  readonly addrs: Buffer;
  /** Offload counters, indexed by STAT_* below. */
  readonly stats: Float64Array;
}

export interface NativeTunHandle extends NativeHandle {
  /** The name the kernel gave the device (useful when opened with ''). */
  readonly name: string;
}

/** UDP slots: meta is [length, source port, source family (4|6), flags], addrs the source address. */
export interface NativeUdpHandle extends NativeHandle {
  readonly localAddress: string;
  readonly localPort: number;
}

/** Called once per wake-up with the number of filled slots; `err` stops reading until readStart again. */
export type ReadCallback = (count: number, err?: NativeError) => void;

export interface SoftwireAddon {
  /**
   * With `offload`, IFF_VNET_HDR + TUNSETOFFLOAD when the kernel has them and the ring
   * (batch entries of slotSize bytes) holds a cut 64 KB super-packet; else a plain TUN.
   */
  tunOpen(name: string, batch: number, slotSize: number, offload?: boolean): NativeTunHandle;
  icmp6Open(ifname: string, batch: number, slotSize: number, hopLimit: number): NativeHandle;
  readStart(h: NativeHandle, cb: ReadCallback): void;
  readStop(h: NativeHandle): void;
  setRef(h: NativeHandle, ref: boolean): void;
  /** Idempotent. */
  close(h: NativeHandle): void;
  /** 1 when written, 0 when the kernel queue is full (EAGAIN). */
  write(h: NativeTunHandle, packet: Uint8Array): number;
  /** Packets written, in order; stops early at EAGAIN. */
  writeBatch(h: NativeTunHandle, packets: readonly Uint8Array[]): number;
  /** 1 when sent, 0 on EAGAIN. scopeId 0 means the bound interface. */
  icmp6Send(h: NativeHandle, message: Uint8Array, address: string, scopeId: number): number;
  icmp6Membership(h: NativeHandle, group: string, join: boolean): void;
  icmp6Filter(h: NativeHandle, types: readonly number[] | null): void;
  /** A non-blocking UDP socket bound to address:port (0: ephemeral), read with recvmmsg into the ring. */
  udpOpen(bindAddress: string, port: number, batch: number, slotSize: number, bufferBytes: number, offload?: boolean): NativeUdpHandle;
  /** Where udpSend and udpSendFrames go. */
  udpSetPeer(h: NativeUdpHandle, address: string, port: number): void;
  /** 1 when sent, 0 when dropped (full queue, ICMP error). */
  udpSend(h: NativeUdpHandle, bytes: Uint8Array): number;
  /**
   * sendmmsg of `count` datagrams, each a header template (`headers[d[2]*headerLen..]`)
   * followed by `source[d[0] .. d[0]+d[1]]`, d being desc[i*DESC_STRIDE..]. Returns how many went out.
   */
  udpSendFrames(h: NativeUdpHandle, headers: Uint8Array, headerLen: number, source: Uint8Array, desc: Int32Array, count: number): number;
  /**
   * The receive half of the data fast path in C (src/native/rxdata.h): from entry `from`,
   * appends [IP offset, IP length, 0] to desc (from descStart, at most descMax) for each
   * datagram that is our session's IP data from the peer, clamping SYNs' MSS; stops at the
   * first it does not take. params: [tunnel, session, open4, open6, mss4, mss6];
   * out: [desc entries now, SYNs clamped]. Returns the entry it stopped at.
   */
  udpTakeData(h: NativeUdpHandle, from: number, count: number, params: Int32Array, desc: Int32Array, descStart: number, descMax: number, out: Int32Array): number;
  /** Test hook of udpTakeData's decision for one datagram: [IP offset, IP length, clamped 0|1], or null when not taken. Edits the datagram. */
  rxTake(datagram: Uint8Array, params: Int32Array): [number, number, number] | null;
  /**
   * The send half of the data fast path in C: TUN batch entries from..to (slot slots[i],
   * offset/length in meta) checked (IP version, NCP open), SYNs clamped, sent as
   * udpSendFrames sends, template 0 for IPv4 and 1 for IPv6. params: [open4, open6, mss4, mss6];
   * out: [sent, ipv6 not open, ipv4 not carried, bad version, SYNs clamped, octets sent]. Returns sent.
   */
  udpSendTun(h: NativeUdpHandle, headers: Uint8Array, headerLen: number, source: Uint8Array, meta: Int32Array, slots: Uint16Array, from: number, to: number, params: Int32Array, out: Int32Array): number;
  /** Writes `source[d[0] .. d[0]+d[1]]` for each descriptor to the TUN; returns how many were taken. */
  tunWriteFrames(h: NativeTunHandle, source: Uint8Array, desc: Int32Array, count: number): number;
  /** The offloads a handle uses: TUN 'vnet-hdr', 'csum', 'tso4', 'tso6', 'uso4', 'uso6', 'tcp-coalesce', 'udp-coalesce'; UDP 'udp-gso', 'udp-gro'. */
  offloads(h: NativeHandle): string[];
  /** Test hook: cuts a virtio-net header + packet as a vnet TUN read would; a negative number is the reason it could not. */
  gsoSplit(vnetHeaderAndPacket: Uint8Array): Buffer[] | number;
  /** Test hook: what a vnet TUN write (with USO when `udp`) of these packets sends, each a virtio-net header + packet. Edits the inputs. */
  groCoalesce(packets: readonly Uint8Array[], udp?: boolean): Buffer[];
  readonly META_STRIDE: number;
  readonly DESC_STRIDE: number;
  readonly ADDR_STRIDE: number;
  readonly FLAG_TRUNCATED: number;
  readonly META_OFFSET: number;
}

/** Offsets within one slot's metadata (META_STRIDE entries). */
export const META_LENGTH = 0;
export const META_IFINDEX = 1;
export const META_HOPLIMIT = 2;
export const META_FLAGS = 3;
/** Where the entry's bytes start in the ring. */
export const META_OFFSET = 4;
/** UDP slots reuse the ifindex and hop-limit entries for the source port and family. */
export const META_PORT = 1;
export const META_FAMILY = 2;

/** Offload counters in NativeHandle.stats (the STAT_* enum in softwire.c). */
export const OFFLOAD_STATS = [
  'superIn',
  'segmentsOut',
  'splitDrops',
  'groTrains',
  'groDatagrams',
  'joinedOut',
  'joinedSegments',
  'gsoTrains',
  'gsoDatagrams',
  'groDrops',
] as const;

/** gsoSplit's negative results (enum split_error). */
export const SPLIT_ERRORS: Record<number, string> = { [-1]: 'bad-vnet-header', [-2]: 'unsupported-gso', [-3]: 'no-room' };

const ADDON_FILE = join('build', 'Release', 'softwire.node');
/** node-gyp-build's name for a prebuild that fits any Node version (N-API) on glibc. */
const PREBUILD_FILE = join('prebuilds', `${process.platform}-${process.arch}`, 'node.napi.glibc.node');
/** From src/native (tsx) the root is two levels up; from dist/softwire.js one; leave room for packaging. */
const SEARCH_DEPTH = 4;

/**
 * Where the addon may be, in search order: a local source build first (as
 * node-gyp-build orders them, so a developer's rebuild wins), then one installed beside
 * the bundle (the ipk), then the committed prebuild.
 */
export function addonCandidates(fromDir: string = __dirname, env: NodeJS.ProcessEnv = process.env): string[] {
  if (env.SOFTWIRE_ADDON) return [resolve(env.SOFTWIRE_ADDON)];
  const out: string[] = [];
  let dir = resolve(fromDir);
  for (let i = 0; i <= SEARCH_DEPTH; i++) {
    out.push(join(dir, ADDON_FILE), join(dir, 'softwire.node'), join(dir, PREBUILD_FILE));
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return out;
}

/** The candidates that exist, in order, or an error that tells the user how to build one. */
export function findAddons(fromDir: string = __dirname, env: NodeJS.ProcessEnv = process.env): string[] {
  const candidates = addonCandidates(fromDir, env);
  const found = candidates.filter((p) => existsSync(p));
  if (found.length > 0) return found;
  const where = env.SOFTWIRE_ADDON
    ? `SOFTWIRE_ADDON=${env.SOFTWIRE_ADDON} does not exist`
    : `looked in: ${candidates.join(', ')}`;
  throw new Error(
    `softwire native addon (softwire.node) not found; ${where}. ` +
      'Get it by running "npm ci" in the softwire source directory (it compiles one with node-gyp when no prebuild fits).',
  );
}

let loaded: SoftwireAddon | undefined;

/**
 * Loads the addon once; later calls return the same module. A file that exists but
 * does not load (a glibc prebuild on musl, another architecture) passes the turn to
 * the next candidate; the error names every file tried.
 */
export function addon(): SoftwireAddon {
  if (!loaded) {
    const failures: string[] = [];
    for (const file of findAddons()) {
      const mod = { exports: {} as SoftwireAddon };
      // dlopen, not require: a bundler leaves it alone, and the path is computed.
      try {
        process.dlopen(mod, file);
        loaded = mod.exports;
        break;
      } catch (e) {
        failures.push(`${file}: ${(e as Error).message}`);
      }
    }
    if (!loaded) {
      throw new Error(
        `cannot load the softwire native addon (${failures.join('; ')}); rebuild it with "npx node-gyp rebuild" (needs python3, make and a C compiler)`,
      );
    }
  }
  return loaded;
}

/**
 * What TunDevice and Icmp6Socket share: pause/resume that survive a read callback
 * replacement, ref/unref, idempotent close, and read errors routed to a handler (or
 * thrown from the loop, like an 'error' event nobody listens to).
 */
export abstract class NativeChannel<H extends NativeHandle> {
  private reader: ReadCallback | undefined;
  private paused = false;
  private isClosed = false;

  protected constructor(
    protected readonly native: SoftwireAddon,
    protected readonly handle: H,
  ) {}

  get closed(): boolean {
    return this.isClosed;
  }

  get ifindex(): number {
    return this.handle.ifindex;
  }

  /** The kernel offloads this handle uses (empty: today's path). */
  get offloads(): string[] {
    return this.isClosed ? [] : this.native.offloads(this.handle);
  }

  /** Offload counters by name (OFFLOAD_STATS), non-zero ones only. */
  offloadStats(): Record<string, number> {
    const out: Record<string, number> = {};
    const s = this.handle.stats;
    OFFLOAD_STATS.forEach((name, i) => {
      if (s[i]) out[name] = s[i]!;
    });
    return out;
  }

  /** Installs the wake-up handler and starts reading unless paused. */
  protected listen(onSlots: (count: number) => void, onError?: (err: NativeError) => void): void {
    this.reader = (count, err) => {
      if (count > 0) onSlots(count);
      if (err) {
        // The addon has stopped reading; resume() restarts it.
        this.paused = true;
        if (onError) onError(err);
        else throw err;
      }
    };
    if (!this.paused && !this.isClosed) this.native.readStart(this.handle, this.reader);
  }

  /** Stops reading; packets queue in the kernel (and are dropped when its queue is full). */
  pause(): void {
    this.paused = true;
    if (!this.isClosed) this.native.readStop(this.handle);
  }

  resume(): void {
    this.paused = false;
    if (this.reader && !this.isClosed) this.native.readStart(this.handle, this.reader);
  }

  /** Lets the process exit while this is still reading. */
  unref(): this {
    if (!this.isClosed) this.native.setRef(this.handle, false);
    return this;
  }

  ref(): this {
    if (!this.isClosed) this.native.setRef(this.handle, true);
    return this;
  }

  /** Idempotent. Any further write or send throws EBADF. */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.reader = undefined;
    this.native.close(this.handle);
  }
}

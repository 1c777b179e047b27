import { execFileSync } from 'node:child_process';
import type { RemoteInfo } from 'node:dgram';
import { isIP } from 'node:net';
import { META_FAMILY, META_FLAGS, META_LENGTH, META_OFFSET, META_PORT, NativeChannel, type NativeUdpHandle, addon } from '../../src/native/addon';
import { TunDevice, type PacketBatch } from '../../src/platform/tun';

/**
 * The emulator's data mode: the SC side of the softwire's data plane, so that traffic
 * can run between the agent's side and a host behind the emulator (the bench's
 * scenario (c)). L2TP/PPP data of the established session is decapsulated into a
 * TUN in the emulator's namespace, and what the kernel routes into that TUN goes
 * back to the agent as L2TP data.
 *
 * It uses the addon's batched UDP (recvmmsg/sendmmsg) and TUN paths so the SC side
 * is not what limits a throughput run, but its framing is written here, separately
 * from src/dataplane, so that the agent is not checked against its own code. Data
 * datagrams of the session bypass the emulator's impairment rules; everything else
 * (control, LCP/NCP, RS, DHCPv6, other sessions) reaches the emulator unchanged.
 */

export interface DataModeOptions {
  /** Name of the TUN the emulator creates in its namespace. */
  tun: string;
  /** TUN MTU (default 1500: larger than the softwire's, so the agent's MTU decides). */
  mtu?: number;
  /**
   * The same kernel offloads the agent uses (issue 17): TSO TUN reads cut into packets,
   * UDP GSO/GRO trains, TCP segments joined on TUN writes; all in the addon, so the SC
   * side is not what limits a throughput run of the agent's offloads.
   */
  offload?: boolean;
}

/** The part of dgram.Socket the emulator uses; dgram sockets and NativeServerSocket fit it. */
export interface EmuSocket {
  send(msg: Uint8Array, port: number, address: string): void;
  address(): { address: string; port: number };
  close(): void;
}

/** The session whose data takes the fast path (ids as the emulator and the agent assigned them). */
export interface DataSession {
  /** Ids in datagrams from the agent (ours). */
  localTunnelId: number;
  localSessionId: number;
  /** Ids we write into datagrams to the agent. */
  peerTunnelId: number;
  peerSessionId: number;
  /** Whether IPCP / IPV6CP are open. */
  open4(): boolean;
  open6(): boolean;
}

const PPP_IPV4 = 0x0021;
const PPP_IPV6 = 0x0057;
const HEADER = 10;
const DESC = 3;
const MAX = 256;
const BATCH = 64;
const SLOT = 2048;
/** With UDP GRO: 32 slots of one 64 KB train each. */
const GRO_BATCH = 32;
const GRO_SLOT = 65536;

/** A UDP socket owned by the addon, bound to the emulator's address and port. */
export class NativeServerSocket extends NativeChannel<NativeUdpHandle> implements EmuSocket {
  private handler: (msg: Buffer, rinfo: RemoteInfo) => void = () => {};
  private tap: DataTap | null = null;
  private peerKey = '';
  private readonly family: 4 | 6;

  private constructor(handle: NativeUdpHandle, family: 4 | 6) {
    super(addon(), handle);
    this.family = family;
    this.listen((count) => this.onSlots(count));
  }

  static open(host: string, port: number, offload = false): NativeServerSocket {
    const family = isIP(host);
    if (family === 0) throw new Error(`data mode needs an IP address to bind, not "${host}"`);
    const h = offload ? addon().udpOpen(host, port, GRO_BATCH, GRO_SLOT, 4 << 20, true) : addon().udpOpen(host, port, BATCH, SLOT, 4 << 20);
    return new NativeServerSocket(h, family as 4 | 6);
  }

  onMessage(fn: (msg: Buffer, rinfo: RemoteInfo) => void): void {
    this.handler = fn;
  }

  setTap(tap: DataTap | null): void {
    this.tap = tap;
  }

  private onSlots(count: number): void {
    const { ring, meta, addrs } = this.handle;
    const stride = this.native.META_STRIDE;
    const tap = this.tap;
    tap?.begin();
    for (let slot = 0; slot < count && !this.closed; slot++) {
      const m = slot * stride;
      if (meta[m + META_FLAGS] !== 0) continue;
      const off = meta[m + META_OFFSET]!;
      const len = meta[m + META_LENGTH]!;
      if (tap) {
        if (tap.take(ring, off, len)) continue;
        tap.flush(ring);
      }
      const fam = meta[m + META_FAMILY]!;
      const a = addrs.subarray(slot * 32, slot * 32 + (fam === 6 ? 16 : 4));
      const address = fam === 6 ? formatIpv6(a) : Array.from(a).join('.');
      this.handler(Buffer.from(ring.subarray(off, off + len)), { address, family: fam === 6 ? 'IPv6' : 'IPv4', port: meta[m + META_PORT]!, size: len });
    }
    tap?.flush(ring);
  }

  private target(port: number, address: string): void {
    const k = `${address}|${port}`;
    if (k === this.peerKey) return;
    this.peerKey = k;
    this.native.udpSetPeer(this.handle, address, port);
  }

  send(msg: Uint8Array, port: number, address: string): void {
    if (this.closed) return;
    this.target(port, address);
    this.native.udpSend(this.handle, msg);
  }

  /** Data to the peer the last control message went to (one LAC per data-mode emulator). */
  sendFrames(headers: Uint8Array, source: Uint8Array, desc: Int32Array, count: number): number {
    if (this.closed || count === 0) return 0;
    return this.native.udpSendFrames(this.handle, headers, HEADER, source, desc, count);
  }

  address(): { address: string; port: number } {
    return { address: this.handle.localAddress, port: this.handle.localPort };
  }

  get ipFamily(): 4 | 6 {
    return this.family;
  }
}

function formatIpv6(b: Uint8Array): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i]! << 8) | b[i + 1]!).toString(16));
  return groups.join(':');
}

/** Moves one session's data between the UDP socket and the TUN. */
export class DataTap {
  readonly counters = { toTun: 0, toAgent: 0, tunDrops: 0, udpDrops: 0 };
  private session: DataSession | null = null;
  private templates = Buffer.alloc(2 * HEADER);
  private readonly rxDesc = new Int32Array(MAX * DESC);
  private readonly txDesc = new Int32Array(MAX * DESC);
  private rxCount = 0;
  private open4 = false;
  private open6 = false;
  readonly tun: TunDevice;

  constructor(
    private readonly sock: NativeServerSocket,
    readonly o: DataModeOptions,
  ) {
    this.tun = TunDevice.open(o.tun, { batch: BATCH, slotSize: SLOT, offload: o.offload ?? false });
    execFileSync('ip', ['link', 'set', 'dev', this.tun.name, 'mtu', String(o.mtu ?? 1500), 'up']);
    this.tun.onPackets((b) => this.fromTun(b));
    sock.setTap(this);
  }

  /** The session whose data is carried (null: none; everything goes to the emulator). */
  attach(s: DataSession | null): void {
    this.session = s;
    if (!s) return;
    const t = Buffer.alloc(2 * HEADER);
    for (const [i, proto] of [
      [0, PPP_IPV4],
      [1, PPP_IPV6],
    ] as const) {
      const at = i * HEADER;
      t.writeUInt16BE(0x0002, at); // version 2, no T/L/S/O/P
      t.writeUInt16BE(s.peerTunnelId, at + 2);
      t.writeUInt16BE(s.peerSessionId, at + 4);
      t.writeUInt16BE(0xff03, at + 6);
      t.writeUInt16BE(proto, at + 8);
    }
    this.templates = t;
  }

  /** Routes `prefix` (CIDR) into the TUN, so replies to the agent's side reach it. */
  route(prefix: string): void {
    execFileSync('ip', [prefix.includes(':') ? '-6' : '-4', 'route', 'replace', prefix, 'dev', this.tun.name]);
  }

  /** A PPP data frame the emulator's slow path received (before the NCP was seen open, or sequenced). */
  writeIp(packet: Uint8Array): void {
    if (this.tun.write(packet)) this.counters.toTun++;
    else this.counters.tunDrops++;
  }

  take(buf: Buffer, off: number, len: number): boolean {
    const s = this.session;
    if (!s || len < 6) return false;
    const f = buf.readUInt16BE(off);
    // Control (T), sequenced (S: Ns to check) or not version 2: the emulator's.
    if (f & 0x8000 || f & 0x0800 || (f & 0x000f) !== 2) return false;
    const end = off + len;
    let at = off + 2;
    if (f & 0x4000) at += 2;
    if (at + 4 > end || buf.readUInt16BE(at) !== s.localTunnelId || buf.readUInt16BE(at + 2) !== s.localSessionId) return false;
    at += 4;
    if (f & 0x0200) {
      if (at + 2 > end) return false;
      at += 2 + buf.readUInt16BE(at);
    }
    if (at + 2 <= end && buf[at] === 0xff && buf[at + 1] === 0x03) at += 2;
    if (at + 1 > end) return false;
    let proto = buf[at]!;
    if (proto & 1) at += 1;
    else {
      if (at + 2 > end) return false;
      proto = buf.readUInt16BE(at);
      at += 2;
    }
    const n = end - at;
    if (n <= 0) return false;
    if (proto === PPP_IPV4) {
      if (!this.open4) return false;
    } else if (proto === PPP_IPV6) {
      // ICMPv6 (RS, NS/NA) and DHCPv6 to the server port are the PPP server's.
      if (!this.open6 || n < 48) return false;
      const nh = buf[at + 6];
      if (nh === 58 || (nh === 17 && buf.readUInt16BE(at + 42) === 547)) return false;
    } else return false;
    if (this.rxCount === MAX) this.flush(buf);
    const d = this.rxCount++ * DESC;
    this.rxDesc[d] = at;
    this.rxDesc[d + 1] = n;
    this.rxDesc[d + 2] = 0;
    return true;
  }

  /** A wake-up starts: NCP state is read once for its datagrams. */
  begin(): void {
    const s = this.session;
    this.open4 = s ? s.open4() : false;
    this.open6 = s ? s.open6() : false;
  }

  flush(buf: Buffer): void {
    const n = this.rxCount;
    if (n === 0) return;
    this.rxCount = 0;
    const w = this.tun.writeFrames(buf, this.rxDesc, n);
    this.counters.toTun += w;
    this.counters.tunDrops += n - w;
  }

  private fromTun(b: PacketBatch): void {
    const s = this.session;
    if (!s) return;
    const o4 = s.open4();
    const o6 = s.open6();
    // A cut super-packet can exceed one descriptor table: send it in pieces.
    for (let from = 0; from < b.count; from += MAX) this.sendRange(b, from, Math.min(b.count, from + MAX), o4, o6);
  }

  private sendRange(b: PacketBatch, from: number, to: number, o4: boolean, o6: boolean): void {
    const buf = b.buffer;
    const desc = this.txDesc;
    let n = 0;
    for (let i = from; i < to; i++) {
      const off = b.offset(i);
      const v = buf[off]! >> 4;
      if (!((v === 4 && o4) || (v === 6 && o6))) continue;
      const d = n++ * DESC;
      desc[d] = off;
      desc[d + 1] = b.length(i);
      desc[d + 2] = v === 4 ? 0 : 1;
    }
    const sent = this.sock.sendFrames(this.templates, buf, desc, n);
    this.counters.toAgent += sent;
    this.counters.udpDrops += n - sent;
  }

  close(): void {
    this.sock.setTap(null);
    this.tun.close();
  }
}

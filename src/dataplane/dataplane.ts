import { DataCounters } from './counters';
import { DATA_HEADER_LEN, type IpLocation, PPP_IPV4, PPP_IPV6, TEMPLATE_IPV4, TEMPLATE_IPV6, buildHeaderTemplates, ipv6NeedsCores, locateIp } from './frame';
import { MSS_OVERHEAD_IPV4, MSS_OVERHEAD_IPV6, clampMss } from './mss';
import type { DataRunSource, RunSink } from './udp';

/**
 * The softwire's packet pump: TUN -> PPP -> L2TP -> UDP and back, a batch per
 * wake-up, without copying a payload or allocating per packet.
 *
 * The protocol state stays in the cores: every batch asks the L2TP core for the
 * session's header parameters and the PPP link which protocols may flow, and reports
 * what it forwarded. Anything that is not plain IPv4/IPv6 data of our session (control
 * messages, LCP, NCPs, authentication, sequenced data, RA, NS/NA, DHCPv6, ICMPv6 in
 * general) is left to the cores, unchanged.
 */

/** What the L2TP core tells the data path (Lac.dataHeader / Lac.dataReceived). */
export interface DataHeader {
  /** The SC's ids: written into our data headers. */
  tunnelId: number;
  sessionId: number;
  /** Our ids: what the SC's data carries. */
  localTunnelId: number;
  localSessionId: number;
  /** Data carries Ns/Nr: the fast path steps aside and the core frames and checks it. */
  sequencing: boolean;
}

export interface DataplaneLac {
  dataHeader(): DataHeader | undefined;
  dataReceived(frames: number): void;
  dataSent(frames: number): void;
}

export interface DataplanePpp {
  /** Whether the NCP for this PPP protocol (0x0021, 0x0057) is open and carries traffic. */
  canCarry(protocol: number): boolean;
}

/** The native TUN (TunDevice.writeFrames). */
export interface FrameTun {
  writeFrames(source: Uint8Array, desc: Int32Array, count: number): number;
}

/** The native UDP socket (NativeUdpTransport.sendFrames). */
export interface FrameUdp {
  sendFrames(headers: Uint8Array, headerLen: number, source: Uint8Array, desc: Int32Array, count: number): number;
  /** The whole TUN batch classified and sent in C (NativeUdpTransport.sendTun); absent: sendFrames per chunk. */
  sendTun?(headers: Uint8Array, headerLen: number, source: Uint8Array, meta: Int32Array, slots: Uint16Array, from: number, to: number, params: Int32Array, out: Int32Array): number;
}

/** One TUN wake-up (PacketBatch). */
export interface TunBatch {
  readonly count: number;
  readonly buffer: Buffer;
  offset(i: number): number;
  length(i: number): number;
  /** The native ring's metadata and the slot of each packet (PacketBatch): what udpSendTun reads. */
  readonly meta?: Int32Array;
  readonly slots?: Uint16Array;
}

/** [offset, length, header template] per packet, as the addon reads them. */
const DESC = 3;
/** Descriptors per send or write call; a larger TUN batch (a cut super-packet) goes in several. */
const MAX_BATCH = 512;

export interface DataplaneOptions {
  tun: FrameTun;
  udp: FrameUdp;
  lac: DataplaneLac;
  ppp: DataplanePpp;
  /** Softwire MTU: TCP MSS is clamped to fit it. */
  mtu: number;
  counters?: DataCounters;
}

export class Dataplane implements RunSink {
  readonly counters: DataCounters;
  private readonly tun: FrameTun;
  private readonly udp: FrameUdp;
  private readonly lac: DataplaneLac;
  private readonly ppp: DataplanePpp;
  private mss4: number;
  private mss6: number;
  private readonly txDesc = new Int32Array(MAX_BATCH * DESC);
  private readonly rxDesc = new Int32Array(MAX_BATCH * DESC);
  private readonly loc: IpLocation = { protocol: 0, offset: 0, length: 0 };
  private templates: Buffer = Buffer.alloc(0);
  private templateTunnel = -1;
  private templateSession = -1;
  // Receive-side state, refreshed once per wake-up in begin().
  private rxTunnel = -1;
  private rxSession = -1;
  private rxOpen4 = false;
  private rxOpen6 = false;
  private rxCount = 0;
  private rxTaken = 0;
  /** What takeRun's C classifier needs: [tunnel, session, open4, open6, mss4, mss6], and its answer. */
  private readonly rxParams = new Int32Array(6);
  private readonly rxOut = new Int32Array(2);
  /** sendTun's [open4, open6, mss4, mss6] and its answer. */
  private readonly txParams = new Int32Array(4);
  private readonly txOut = new Int32Array(6);

  constructor(o: DataplaneOptions) {
    this.tun = o.tun;
    this.udp = o.udp;
    this.lac = o.lac;
    this.ppp = o.ppp;
    this.mss4 = o.mtu - MSS_OVERHEAD_IPV4;
    this.mss6 = o.mtu - MSS_OVERHEAD_IPV6;
    this.counters = o.counters ?? new DataCounters();
  }

  /** The softwire MTU changed (SC MRU, RA MTU, sequencing): clamp the MSS to the new one. */
  setMtu(mtu: number): void {
    this.mss4 = mtu - MSS_OVERHEAD_IPV4;
    this.mss6 = mtu - MSS_OVERHEAD_IPV6;
  }

  // ------------------------------------------------------------ TUN -> SC

  /**
   * Sends a TUN batch to the SC. Returns false, having touched nothing, when the fast
   * path cannot carry it (no session, or sequenced data): the caller frames it through
   * the cores instead.
   */
  fromTun(batch: TunBatch): boolean {
    const h = this.lac.dataHeader();
    if (!h || h.sequencing) return false;
    if (h.tunnelId !== this.templateTunnel || h.sessionId !== this.templateSession) {
      this.templates = buildHeaderTemplates(h.tunnelId, h.sessionId);
      this.templateTunnel = h.tunnelId;
      this.templateSession = h.sessionId;
    }
    const open4 = this.ppp.canCarry(PPP_IPV4);
    const open6 = this.ppp.canCarry(PPP_IPV6);
    if (this.udp.sendTun && batch.meta && batch.slots) {
      this.sendNative(batch, batch.meta, batch.slots, open4, open6);
      return true;
    }
    for (let from = 0; from < batch.count; from += MAX_BATCH) this.sendChunk(batch, from, Math.min(batch.count, from + MAX_BATCH), open4, open6);
    return true;
  }

  /**
   * sendChunk's work for the whole batch in C (no JS per packet: under the agent's V8
   * flags that was ~0.3 µs a packet), with the same checks and counters.
   */
  private sendNative(batch: TunBatch, meta: Int32Array, slots: Uint16Array, open4: boolean, open6: boolean): void {
    const c = this.counters;
    const p = this.txParams;
    const o = this.txOut;
    p[0] = open4 ? 1 : 0;
    p[1] = open6 ? 1 : 0;
    p[2] = this.mss4;
    p[3] = this.mss6;
    const sent = this.udp.sendTun!(this.templates, DATA_HEADER_LEN, batch.buffer, meta, slots, 0, batch.count, p, o);
    if (o[1]) c.drop('tx', 'ipv6-not-open', o[1]);
    if (o[2]) c.drop('tx', 'ipv4-not-carried', o[2]);
    if (o[3]) c.drop('tx', 'bad-version', o[3]);
    c.mssClamped += o[4]!;
    const accepted = batch.count - o[1]! - o[2]! - o[3]!;
    if (accepted === 0) return;
    if (accepted > sent) c.drop('tx', 'udp-queue-full', accepted - sent);
    c.txPackets += sent;
    c.txOctets += o[5]!;
    c.txBatches++;
    this.lac.dataSent(sent);
  }

  private sendChunk(batch: TunBatch, from: number, to: number, open4: boolean, open6: boolean): void {
    const c = this.counters;
    const buf = batch.buffer;
    const desc = this.txDesc;
    let n = 0;
    let octets = 0;
    for (let i = from; i < to; i++) {
      const off = batch.offset(i);
      const len = batch.length(i);
      const version = len > 0 ? buf[off]! >> 4 : 0;
      let template: number;
      if (version === 6) {
        if (!open6) {
          c.drop('tx', 'ipv6-not-open');
          continue;
        }
        template = TEMPLATE_IPV6;
      } else if (version === 4) {
        if (!open4) {
          c.drop('tx', 'ipv4-not-carried');
          continue;
        }
        template = TEMPLATE_IPV4;
      } else {
        c.drop('tx', 'bad-version');
        continue;
      }
      if (clampMss(buf, off, len, this.mss4, this.mss6)) c.mssClamped++;
      const d = n * DESC;
      desc[d] = off;
      desc[d + 1] = len;
      desc[d + 2] = template;
      octets += len;
      n++;
    }
    if (n === 0) return;
    const sent = this.udp.sendFrames(this.templates, DATA_HEADER_LEN, buf, desc, n);
    if (sent < n) {
      c.drop('tx', 'udp-queue-full', n - sent);
      // Octets of the unsent tail are not counted as sent.
      for (let i = sent; i < n; i++) octets -= desc[i * DESC + 1]!;
    }
    c.txPackets += sent;
    c.txOctets += octets;
    c.txBatches++;
    this.lac.dataSent(sent);
  }

  // ------------------------------------------------------------ SC -> TUN

  begin(): void {
    const h = this.lac.dataHeader();
    this.rxCount = 0;
    this.rxTaken = 0;
    if (!h || h.sequencing) {
      // No session, or Ns to check: every datagram goes to the L2TP core.
      this.rxTunnel = -1;
      return;
    }
    this.rxTunnel = h.localTunnelId;
    this.rxSession = h.localSessionId;
    this.rxOpen4 = this.ppp.canCarry(PPP_IPV4);
    this.rxOpen6 = this.ppp.canCarry(PPP_IPV6);
    const p = this.rxParams;
    p[0] = this.rxTunnel;
    p[1] = this.rxSession;
    p[2] = this.rxOpen4 ? 1 : 0;
    p[3] = this.rxOpen6 ? 1 : 0;
    p[4] = this.mss4;
    p[5] = this.mss6;
  }

  /**
   * take() for a run of datagrams at once, decided in C with take()'s rules
   * (src/native/rxdata.h): no JS runs per packet, which under the agent's V8 flags
   * (no optimising compiler) was ~0.8 µs a datagram. Returns the first entry not taken.
   */
  takeRun(src: DataRunSource, from: number, count: number): number {
    if (this.rxTunnel < 0) return from;
    let at = from;
    for (;;) {
      if (this.rxCount === MAX_BATCH) this.flush(src.ring);
      at = src.takeData(at, count, this.rxParams, this.rxDesc, this.rxCount, MAX_BATCH, this.rxOut);
      this.rxTaken += this.rxOut[0]! - this.rxCount;
      this.rxCount = this.rxOut[0]!;
      this.counters.mssClamped += this.rxOut[1]!;
      if (at >= count || this.rxCount < MAX_BATCH) return at;
    }
  }

  take(buf: Buffer, off: number, len: number): boolean {
    if (this.rxTunnel < 0) return false;
    const loc = this.loc;
    locateIp(buf, off, len, this.rxTunnel, this.rxSession, loc);
    if (loc.protocol === PPP_IPV6) {
      if (!this.rxOpen6 || ipv6NeedsCores(buf, loc.offset, loc.length)) return false;
    } else if (loc.protocol === PPP_IPV4) {
      if (!this.rxOpen4) return false;
    } else {
      return false;
    }
    if (this.rxCount === MAX_BATCH) this.flush(buf);
    if (clampMss(buf, loc.offset, loc.length, this.mss4, this.mss6)) this.counters.mssClamped++;
    const d = this.rxCount * DESC;
    this.rxDesc[d] = loc.offset;
    this.rxDesc[d + 1] = loc.length;
    this.rxDesc[d + 2] = 0;
    this.rxCount++;
    this.rxTaken++;
    return true;
  }

  flush(buf: Buffer): void {
    const n = this.rxCount;
    if (n === 0) {
      if (this.rxTaken === 0) return;
    } else {
      this.rxCount = 0;
      const c = this.counters;
      const written = this.tun.writeFrames(buf, this.rxDesc, n);
      let octets = 0;
      for (let i = 0; i < written; i++) octets += this.rxDesc[i * DESC + 1]!;
      if (written < n) c.drop('rx', 'tun-queue-full', n - written);
      c.rxPackets += written;
      c.rxOctets += octets;
      c.rxBatches++;
    }
    this.lac.dataReceived(this.rxTaken);
    this.rxTaken = 0;
  }
}

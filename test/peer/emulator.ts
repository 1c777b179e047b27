import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { isIP } from 'node:net';
import { challengeResponse, encodeRawAvps, hide, RANDOM_VECTOR_TYPE, type RawAvp } from '../../src/l2tp/avp';
import { type AvpName, type AvpValues, avpNameOf, rawAvps, type ResultCode } from '../../src/l2tp/avps';
import { type ChannelAction, type ChannelConfig, ControlChannel } from '../../src/l2tp/channel';
import { decodePacket } from '../../src/l2tp/header';
import {
  type ControlMessage,
  decodeMessage,
  encodeData,
  type L2tpMessage,
  type MessageName,
  messageNameOf,
  MessageType,
  type RequiredValues,
} from '../../src/l2tp/messages';
import { DataTap, type DataModeOptions, type EmuSocket, NativeServerSocket } from './emulator-data';
import { PppServer, type PppEvent, type PppServerOptions } from './ppp-server';

/**
 * A scriptable Softwire Concentrator (LNS) for tests. It speaks L2TPv2 with the
 * project's own codec and reliable control channel, and enough PPP and IPv6
 * (ppp-server.ts) to bring a softwire up, and lets a test make it misbehave on
 * purpose: drop, duplicate, delay, reorder or corrupt control messages in either
 * direction (by type and occurrence), hide AVPs, add unknown AVPs, answer from
 * another UDP port, and send StopCCN or CDN on demand or on a trigger. Everything
 * it received is recorded for assertions.
 *
 * The options are plain JSON (bytes as hex) so that the same script can drive an
 * emulator in this process or in a child process in another namespace
 * (emulator-main.ts).
 */

export type TrafficKind = MessageName | 'ZLB' | 'data' | 'unknown';

export interface ImpairRule {
  dir: 'in' | 'out';
  /** What the rule applies to; 'any' or absent: every datagram. */
  type?: TrafficKind | 'any';
  /** 1-based occurrences (among datagrams this rule's type matches) it applies to; absent: all. */
  nth?: number | number[];
  action: 'drop' | 'duplicate' | 'delay' | 'reorder' | 'corrupt';
  /** delay: how long; reorder: longest hold when nothing overtakes. */
  ms?: number;
}

export interface ExtraAvp {
  /** The outgoing message to add it to. */
  message: MessageName;
  /** Only the nth such message the emulator sends (1-based, counted over its lifetime). */
  nth?: number;
  type: number;
  vendorId?: number;
  mandatory: boolean;
  /** Hex. */
  value: string;
  /** Put it in place of the message's own AVP of this type (e.g. a value of the wrong length) instead of after the others. */
  replace?: boolean;
}

export interface Trigger {
  /** Incoming message that fires the trigger; 'ppp-auth': a login the PPP side holds (ppp.authHold). */
  on: MessageName | 'ppp-auth';
  nth?: number;
  send: 'StopCCN' | 'CDN';
  result: number;
  error?: number;
  message?: string;
  delayMs?: number;
}

export interface EmulatorOptions {
  /** Address to listen on (IPv4 or IPv6); default 127.0.0.1. */
  host?: string;
  /** Default 0 (ephemeral). */
  port?: number;
  hostName?: string;
  vendorName?: string;
  /** Tunnel secret: answers the LAC's Challenge and unhides its AVPs. */
  secret?: string;
  /** Also challenge the LAC in SCCRP (needs `secret`). */
  challenge?: boolean;
  /** Receive Window Size AVP in SCCRP (l2tpns sends none). */
  receiveWindowSize?: number;
  /** Hide these AVPs (RFC 2661 4.3) in the given messages (default all). Needs `secret`. */
  hide?: { avps: AvpName[]; messages?: MessageName[] };
  extraAvps?: ExtraAvp[];
  /** Answer the SCCRQ (and the rest of the tunnel) from another port: a number, or 0 for an ephemeral one. */
  replyPort?: number;
  /** Answer the SCCRQ (and the rest of the tunnel) from this other address of ours (RFC 2661 8.1: a VIP or loopback source). */
  replyAddress?: string;
  impair?: ImpairRule[];
  triggers?: Trigger[];
  /** Send the session's data with S=1 and Ns (RFC 2661 5.4) from the start; the 'sequencing' command switches it. */
  sequenceData?: boolean;
  /** PPP side; false runs L2TP only. */
  ppp?: PppServerOptions | false;
  channel?: Partial<ChannelConfig>;
  /** First tunnel ID handed out (l2tpns starts at 2). */
  firstTunnelId?: number;
  /**
   * Data mode (emulator-data.ts): the session's IP data goes to and from a TUN of this
   * name in the emulator's namespace, over a native batched socket (needs `host` as an IP address).
   */
  data?: DataModeOptions;
}

export interface ControlRecord {
  /** ms since the emulator started. */
  at: number;
  from: string;
  tunnelId: number;
  sessionId: number;
  ns: number;
  nr: number;
  type: TrafficKind;
  /** JSON form of the typed AVPs (bytes as hex). */
  values: Record<string, unknown>;
  unknown: { vendorId: number; type: number; mandatory: boolean }[];
  /** The impairment that hit it before processing, if any. */
  impaired?: ImpairRule['action'];
}

/** One data message from the agent: whether it carried Ns and how long its L2TP header was. */
export interface DataRecord {
  at: number;
  ns: number | null;
  headerLength: number;
  /** PPP protocol of the payload (after an optional ff03), e.g. 0xc021 for LCP. */
  protocol: number;
}

export type EmulatorEvent =
  | { type: 'rx'; record: ControlRecord }
  | { type: 'bad-datagram'; from: string; reason: string }
  | { type: 'tunnel'; state: 'new' | 'up' | 'down'; tunnelId: number; peer: string; reason?: string }
  | { type: 'session'; state: 'new' | 'up' | 'down'; tunnelId: number; sessionId: number; reason?: string }
  | ({ tunnelId: number; sessionId: number } & { type: 'ppp'; ppp: PppEvent })
  /** Data mode: `route` now leads into the emulator's TUN. */
  | { type: 'data-route'; route: string; tun: string };

export interface EmulatorCounters {
  rx: Record<string, number>;
  tx: Record<string, number>;
  impaired: Record<ImpairRule['action'], number>;
  badDatagrams: number;
  unknownTunnel: number;
  retransmissions: number;
  tunnels: number;
  sessions: number;
}

export interface TunnelView {
  localId: number;
  peerId: number;
  peer: string;
  localPort: number;
  state: 'wait-scccn' | 'established' | 'closed';
  session: { localId: number; peerId: number; state: 'wait-iccn' | 'established' | 'closed'; ppp: ReturnType<PppServer['state']> | null; peerIid: string | null; pppCounters?: Record<string, number> } | null;
  /** The control channel's next Ns and expected Nr (to build in-window or stale messages). */
  seq?: { ns: number; nr: number };
}

interface Delivered {
  sessionId: number;
  msg: ControlMessage;
}

interface Session {
  localId: number;
  peerId: number;
  state: 'wait-iccn' | 'established' | 'closed';
  ppp: PppServer | null;
  /** Next Ns of our data when sequencing. */
  dataNs: number;
}

interface Tunnel {
  localId: number;
  peerId: number;
  peer: { address: string; port: number };
  sock: EmuSocket;
  ownSocket: boolean;
  state: TunnelView['state'];
  channel: ControlChannel<Delivered>;
  timers: Map<string, NodeJS.Timeout>;
  ourChallenge?: Uint8Array;
  session: Session | null;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const key = (address: string, port: number): string => (address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`);

function jsonValues(v: AvpValues): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = x instanceof Uint8Array ? hex(x) : x;
  return out;
}

/** Message kind of an encoded datagram, without needing the secret (Message Type is never hidden). */
export function kindOf(bytes: Uint8Array): TrafficKind {
  try {
    const { header, payload } = decodePacket(bytes);
    if (!header.control) return 'data';
    if (payload.length === 0) return 'ZLB';
    if (payload.length < 8) return 'unknown';
    return messageNameOf((payload[6]! << 8) | payload[7]!) ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

const MAX_DATA_RECORDS = 256;

export class Emulator {
  readonly received: ControlRecord[] = [];
  /** The agent's latest data messages (bounded). */
  readonly dataRx: DataRecord[] = [];
  readonly counters: EmulatorCounters = {
    rx: {},
    tx: {},
    impaired: { drop: 0, duplicate: 0, delay: 0, reorder: 0, corrupt: 0 },
    badDatagrams: 0,
    unknownTunnel: 0,
    retransmissions: 0,
    tunnels: 0,
    sessions: 0,
  };
  private readonly sock: EmuSocket;
  private tap: DataTap | null = null;
  private readonly tunnels = new Map<number, Tunnel>();
  private readonly ruleHits: number[] = [];
  private readonly held = new Map<'in' | 'out', { fire: () => void; timer: NodeJS.Timeout }>();
  private readonly loose = new Set<NodeJS.Timeout>();
  private readonly sentCounts: Record<string, number> = {};
  private readonly rxCounts: Record<string, number> = {};
  private authHeld = 0;
  private nextTunnelId: number;
  private nextSessionId = 1;
  private readonly t0 = Date.now();
  private listeners: ((ev: EmulatorEvent) => void)[] = [];
  private closed = false;
  private sequenceData: boolean;

  private constructor(readonly opts: EmulatorOptions) {
    this.sequenceData = opts.sequenceData ?? false;
    const host = opts.host ?? '127.0.0.1';
    this.sock = opts.data ? NativeServerSocket.open(host, opts.port ?? 0) : dgram.createSocket(isIP(host) === 6 ? 'udp6' : 'udp4');
    this.nextTunnelId = opts.firstTunnelId ?? 2;
    if (opts.hide && opts.secret === undefined) throw new Error('hiding AVPs needs a secret');
  }

  static async start(opts: EmulatorOptions = {}): Promise<Emulator> {
    const e = new Emulator(opts);
    const sock = e.sock;
    if (sock instanceof NativeServerSocket) {
      sock.onMessage((m, r) => e.onDatagram(m, r));
      try {
        e.tap = new DataTap(sock, opts.data!);
      } catch (err) {
        sock.close();
        throw err;
      }
      return e;
    }
    const ds = sock as dgram.Socket;
    ds.on('message', (m, r) => e.onDatagram(m, r));
    await new Promise<void>((res, rej) => {
      ds.once('error', rej);
      ds.bind(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
        ds.off('error', rej);
        res();
      });
    });
    return e;
  }

  get address(): { address: string; port: number } {
    const a = this.sock.address();
    return { address: a.address, port: a.port };
  }

  onEvent(fn: (ev: EmulatorEvent) => void): void {
    this.listeners.push(fn);
  }

  private emit(ev: EmulatorEvent): void {
    for (const l of this.listeners) l(ev);
  }

  // ------------------------------------------------------------ inspection

  tunnelViews(): TunnelView[] {
    return [...this.tunnels.values()].map((t) => ({
      localId: t.localId,
      peerId: t.peerId,
      peer: key(t.peer.address, t.peer.port),
      localPort: t.sock.address().port,
      state: t.state,
      session: t.session && {
        localId: t.session.localId,
        peerId: t.session.peerId,
        state: t.session.state,
        ppp: t.session.ppp?.state() ?? null,
        peerIid: t.session.ppp?.peerInterfaceId ?? null,
        pppCounters: { ...(t.session.ppp?.counters ?? {}) },
      },
      seq: t.channel.sequence,
    }));
  }

  /** Control messages received of one type (ZLBs included as 'ZLB'). */
  receivedOf(type: TrafficKind): ControlRecord[] {
    return this.received.filter((r) => r.type === type);
  }

  // ------------------------------------------------------------ commands

  private latest(state?: TunnelView['state']): Tunnel | undefined {
    const all = [...this.tunnels.values()].filter((t) => !state || t.state === state);
    return all[all.length - 1];
  }

  /** StopCCN to the given tunnel (default: the latest established one). Returns the tunnel ID or null. */
  stopCcn(rc: ResultCode, tunnelId?: number): number | null {
    const t = tunnelId !== undefined ? this.tunnels.get(tunnelId) : this.latest('established');
    if (!t || t.state === 'closed') return null;
    this.sendCtl(t, 'StopCCN', 0, { assignedTunnelId: t.localId, resultCode: rc });
    this.tunnelDown(t, `sent StopCCN ${rc.result}/${rc.error ?? '-'}`);
    return t.localId;
  }

  /** CDN for the session of the given tunnel (default: latest). Returns the session ID or null. */
  cdn(rc: ResultCode, tunnelId?: number): number | null {
    const t = tunnelId !== undefined ? this.tunnels.get(tunnelId) : this.latest('established');
    const s = t?.session;
    if (!t || !s || s.state === 'closed') return null;
    this.sendCtl(t, 'CDN', s.peerId, { assignedSessionId: s.localId, resultCode: rc });
    this.sessionDown(t, `sent CDN ${rc.result}/${rc.error ?? '-'}`);
    return s.localId;
  }

  /**
   * Sends raw bytes to a tunnel's peer (default: the latest tunnel), from the tunnel's
   * socket or from a throwaway socket bound to `fromAddress`:`fromPort` (spoofing tests).
   */
  async sendRaw(bytes: Uint8Array, o: { tunnelId?: number; fromAddress?: string; fromPort?: number; repeat?: number } = {}): Promise<void> {
    const t = o.tunnelId !== undefined ? this.tunnels.get(o.tunnelId) : this.latest();
    if (!t) throw new Error('no tunnel to send to');
    // repeat: a burst of copies (flood tests), handed to the kernel back to back.
    const n = Math.max(1, o.repeat ?? 1);
    const burst = (s: EmuSocket) =>
      new Promise<void>((res) => {
        if (!(s instanceof dgram.Socket)) {
          for (let i = 0; i < n; i++) s.send(bytes, t.peer.port, t.peer.address);
          res();
          return;
        }
        let left = n;
        for (let i = 0; i < n; i++) s.send(bytes, t.peer.port, t.peer.address, () => --left === 0 && res());
      });
    if (o.fromAddress === undefined && o.fromPort === undefined) {
      await burst(t.sock);
      return;
    }
    const s = dgram.createSocket(isIP(o.fromAddress ?? t.peer.address) === 6 ? 'udp6' : 'udp4');
    await new Promise<void>((res) => s.bind(o.fromPort ?? 0, o.fromAddress, res));
    await burst(s);
    s.close();
  }

  /**
   * Sends any control message through the tunnel's reliable channel (so Ns/Nr stay in
   * step), with whatever session ID and AVP values the test asks for: e.g. a CDN or
   * ICRP naming a session the peer does not have. Returns the tunnel ID or null.
   */
  sendControl(message: MessageName, sessionId: number, values: AvpValues = {}, tunnelId?: number): number | null {
    const t = tunnelId !== undefined ? this.tunnels.get(tunnelId) : this.latest('established');
    if (!t || t.state === 'closed') return null;
    this.sendCtl(t, message, sessionId, values as never);
    return t.localId;
  }

  /**
   * Data sequencing on or off from now on (RFC 2661 5.4: an LNS may stop sequencing by
   * sending data with S=0; plays an LNS that sequences only while LCP negotiates).
   */
  setDataSequencing(on: boolean): void {
    this.sequenceData = on;
  }

  /** An LCP Echo-Request on the latest established session; false if there is none. */
  echo(tunnelId?: number): boolean {
    const t = tunnelId !== undefined ? this.tunnels.get(tunnelId) : this.latest('established');
    const ppp = t?.session?.state === 'established' ? t.session.ppp : null;
    if (!ppp) return false;
    ppp.echo();
    return true;
  }

  /** One tunnel's view (default: the latest), e.g. to build packets aimed at it. */
  tunnel(tunnelId?: number): TunnelView | undefined {
    return this.tunnelViews()
      .filter((v) => tunnelId === undefined || v.localId === tunnelId)
      .at(-1);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.tunnels.values()) this.dispose(t);
    for (const h of this.held.values()) clearTimeout(h.timer);
    for (const l of this.loose) clearTimeout(l);
    this.tap?.close();
    this.sock.close();
  }

  /** Data mode counters (packets into the TUN / to the agent, and drops), or null. */
  get dataCounters(): DataTap['counters'] | null {
    return this.tap?.counters ?? null;
  }

  // ------------------------------------------------------------ impairment

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.loose.delete(t);
      if (!this.closed) fn();
    }, ms);
    this.loose.add(t);
  }

  /** Runs `deliver` on `bytes` as the first matching rule says (or untouched). */
  private impair(dir: 'in' | 'out', kind: TrafficKind, bytes: Uint8Array, deliver: (b: Uint8Array, action?: ImpairRule['action']) => void): void {
    const rules = this.opts.impair ?? [];
    let rule: ImpairRule | undefined;
    for (let i = 0; i < rules.length; i++) {
      const r = rules[i]!;
      if (r.dir !== dir || (r.type !== undefined && r.type !== 'any' && r.type !== kind)) continue;
      const n = (this.ruleHits[i] = (this.ruleHits[i] ?? 0) + 1);
      const nth = r.nth === undefined ? undefined : Array.isArray(r.nth) ? r.nth : [r.nth];
      if (nth && !nth.includes(n)) continue;
      rule = r;
      break;
    }
    const flushHeld = () => {
      const h = this.held.get(dir);
      if (!h) return;
      clearTimeout(h.timer);
      this.held.delete(dir);
      h.fire();
    };
    if (!rule) {
      deliver(bytes);
      flushHeld();
      return;
    }
    this.counters.impaired[rule.action]++;
    switch (rule.action) {
      case 'drop':
        deliver(bytes, 'drop');
        return;
      case 'duplicate':
        deliver(bytes, 'duplicate');
        deliver(bytes, 'duplicate');
        flushHeld();
        return;
      case 'delay':
        this.later(rule.ms ?? 200, () => deliver(bytes, 'delay'));
        return;
      case 'corrupt': {
        const c = new Uint8Array(bytes);
        // The last byte is inside the last AVP (or the payload): the header still parses.
        c[c.length - 1] = c[c.length - 1]! ^ 0xff;
        deliver(c, 'corrupt');
        flushHeld();
        return;
      }
      case 'reorder': {
        flushHeld();
        const fire = () => deliver(bytes, 'reorder');
        const timer = setTimeout(() => {
          this.held.delete(dir);
          if (!this.closed) fire();
        }, rule.ms ?? 200);
        this.held.set(dir, { fire, timer });
        return;
      }
    }
  }

  // ------------------------------------------------------------ input

  private onDatagram(msg: Buffer, rinfo: dgram.RemoteInfo, sock: EmuSocket = this.sock): void {
    if (this.closed) return;
    const bytes = new Uint8Array(msg);
    this.impair('in', kindOf(bytes), bytes, (b, action) => {
      if (action === 'drop') {
        this.record(b, rinfo, 'drop');
        return;
      }
      this.process(b, rinfo, sock, action);
    });
  }

  private record(bytes: Uint8Array, rinfo: dgram.RemoteInfo, impaired?: ImpairRule['action'], m?: L2tpMessage): ControlRecord | undefined {
    let msg = m;
    if (!msg) {
      try {
        msg = decodeMessage(bytes, { secret: this.opts.secret });
      } catch {
        return undefined;
      }
    }
    if (msg.kind !== 'control') return undefined;
    const r: ControlRecord = {
      at: Date.now() - this.t0,
      from: key(rinfo.address, rinfo.port),
      tunnelId: msg.tunnelId,
      sessionId: msg.sessionId,
      ns: msg.ns,
      nr: msg.nr,
      type: msg.message ? (msg.message.name ?? 'unknown') : 'ZLB',
      values: msg.message ? jsonValues(msg.message.values) : {},
      unknown: msg.message ? msg.message.unknown.map((u) => ({ vendorId: u.vendorId, type: u.type, mandatory: u.mandatory })) : [],
    };
    if (impaired) r.impaired = impaired;
    this.received.push(r);
    this.emit({ type: 'rx', record: r });
    return r;
  }

  private recordData(bytes: Uint8Array, m: L2tpMessage & { kind: 'data' }): void {
    const p = m.payload;
    const at = p.length >= 2 && p[0] === 0xff && p[1] === 0x03 ? 2 : 0;
    const protocol = p.length > at ? (p[at]! & 1 ? p[at]! : ((p[at]! << 8) | (p[at + 1] ?? 0))) : -1;
    this.dataRx.push({ at: Date.now() - this.t0, ns: m.ns ?? null, headerLength: bytes.length - p.length, protocol });
    if (this.dataRx.length > MAX_DATA_RECORDS) this.dataRx.shift();
  }

  private process(bytes: Uint8Array, rinfo: dgram.RemoteInfo, sock: EmuSocket, impaired?: ImpairRule['action']): void {
    let m: L2tpMessage;
    try {
      m = decodeMessage(bytes, { secret: this.opts.secret });
    } catch (e) {
      this.counters.badDatagrams++;
      this.emit({ type: 'bad-datagram', from: key(rinfo.address, rinfo.port), reason: (e as Error).message });
      return;
    }
    if (m.kind === 'data') {
      const t = this.tunnels.get(m.tunnelId);
      const s = t?.session;
      if (!t || !s || s.localId !== m.sessionId || s.state !== 'established') {
        this.counters.unknownTunnel++;
        return;
      }
      this.count('rx', 'data');
      this.recordData(bytes, m);
      s.ppp?.receive(m.payload);
      return;
    }
    const rec = this.record(bytes, rinfo, impaired, m)!;
    this.count('rx', rec.type);
    let t: Tunnel | undefined;
    if (m.tunnelId === 0 && m.message?.name === 'SCCRQ') {
      const peerId = m.message.values.assignedTunnelId ?? 0;
      t = [...this.tunnels.values()].find((x) => x.peerId === peerId && x.peer.address === rinfo.address && x.peer.port === rinfo.port);
      t ??= this.newTunnel(peerId, rinfo, sock);
    } else {
      t = this.tunnels.get(m.tunnelId);
    }
    if (!t) {
      this.counters.unknownTunnel++;
      return;
    }
    const before = t.channel.stats.retransmissions;
    this.runChannel(t, t.channel.receive({ ns: m.ns, nr: m.nr, msg: m.message ? { sessionId: m.sessionId, msg: m.message } : undefined }));
    this.runChannel(t, t.channel.flush());
    this.counters.retransmissions += t.channel.stats.retransmissions - before;
  }

  private newTunnel(peerId: number, rinfo: dgram.RemoteInfo, mainSock: EmuSocket): Tunnel {
    let sock = mainSock;
    let ownSocket = false;
    if (this.opts.replyPort !== undefined || this.opts.replyAddress !== undefined) {
      const ds = dgram.createSocket(isIP(rinfo.address) === 6 ? 'udp6' : 'udp4');
      sock = ds;
      ownSocket = true;
      ds.on('message', (m, r) => this.onDatagram(m, r, ds));
      ds.on('error', () => this.counters.badDatagrams++);
      // Sends issued before the bind completes are queued by dgram.
      ds.bind(this.opts.replyPort ?? 0, this.opts.replyAddress ?? this.opts.host ?? '127.0.0.1');
    }
    const t: Tunnel = {
      localId: this.nextTunnelId++,
      peerId,
      peer: { address: rinfo.address, port: rinfo.port },
      sock,
      ownSocket,
      state: 'wait-scccn',
      channel: new ControlChannel<Delivered>({ ackDelayMs: 100, ...this.opts.channel }),
      timers: new Map(),
      session: null,
    };
    t.channel.peerTunnelId = peerId;
    this.tunnels.set(t.localId, t);
    this.counters.tunnels++;
    this.emit({ type: 'tunnel', state: 'new', tunnelId: t.localId, peer: key(rinfo.address, rinfo.port) });
    return t;
  }

  private setTimer(t: Tunnel, name: string, ms: number, fn: () => void): void {
    const old = t.timers.get(name);
    if (old) clearTimeout(old);
    t.timers.set(
      name,
      setTimeout(() => {
        t.timers.delete(name);
        if (!this.closed) fn();
      }, ms),
    );
  }

  private clearTimer(t: Tunnel, name: string): void {
    const old = t.timers.get(name);
    if (old) clearTimeout(old);
    t.timers.delete(name);
  }

  private runChannel(t: Tunnel, acts: ChannelAction<Delivered>[]): void {
    for (const a of acts) {
      switch (a.type) {
        case 'send':
          this.out(t, a.bytes);
          break;
        case 'timer-start':
          this.setTimer(t, a.timer, a.ms, () => {
            const before = t.channel.stats.retransmissions;
            this.runChannel(t, t.channel.timerFired(a.timer));
            this.counters.retransmissions += t.channel.stats.retransmissions - before;
          });
          break;
        case 'timer-stop':
          this.clearTimer(t, a.timer);
          break;
        case 'deliver':
          this.handle(t, a.msg);
          break;
        case 'failed':
          this.tunnelDown(t, `control channel failed: ${a.reason}`);
          break;
      }
    }
  }

  // ------------------------------------------------------------ the LNS

  private handle(t: Tunnel, { sessionId, msg }: Delivered): void {
    const name = msg.name;
    if (!name) return;
    const v = msg.values;
    switch (name) {
      case 'SCCRQ': {
        if (t.state !== 'wait-scccn') break;
        const reply: Omit<RequiredValues<'SCCRP'>, 'messageType'> = {
          protocolVersion: { version: 1, revision: 0 },
          framingCapabilities: { sync: true, async: true },
          hostName: this.opts.hostName ?? 'emulator',
          assignedTunnelId: t.localId,
        };
        if (this.opts.vendorName) reply.vendorName = this.opts.vendorName;
        if (this.opts.receiveWindowSize !== undefined) reply.receiveWindowSize = this.opts.receiveWindowSize;
        // Like l2tpns: a LAC challenge is answered, with an empty secret if none is set.
        if (v.challenge) reply.challengeResponse = challengeResponse(MessageType.SCCRP, this.opts.secret ?? '', v.challenge);
        if (this.opts.challenge && this.opts.secret !== undefined) {
          t.ourChallenge = new Uint8Array(randomBytes(16));
          reply.challenge = t.ourChallenge;
        }
        this.sendCtl(t, 'SCCRP', 0, reply);
        break;
      }
      case 'SCCCN': {
        if (t.state !== 'wait-scccn') break;
        if (t.ourChallenge) {
          const want = Buffer.from(challengeResponse(MessageType.SCCCN, this.opts.secret!, t.ourChallenge));
          if (!v.challengeResponse || !want.equals(Buffer.from(v.challengeResponse))) {
            this.stopCcn({ result: 4, message: 'bad challenge response' }, t.localId);
            break;
          }
        }
        t.state = 'established';
        this.emit({ type: 'tunnel', state: 'up', tunnelId: t.localId, peer: key(t.peer.address, t.peer.port) });
        break;
      }
      case 'ICRQ': {
        if (t.state !== 'established' || t.session?.state === 'established') break;
        const s: Session = { localId: this.nextSessionId++, peerId: v.assignedSessionId ?? 0, state: 'wait-iccn', ppp: null, dataNs: 0 };
        t.session = s;
        this.counters.sessions++;
        this.emit({ type: 'session', state: 'new', tunnelId: t.localId, sessionId: s.localId });
        this.sendCtl(t, 'ICRP', s.peerId, { assignedSessionId: s.localId });
        break;
      }
      case 'ICCN': {
        const s = t.session;
        if (!s || s.localId !== sessionId || s.state !== 'wait-iccn') break;
        s.state = 'established';
        this.emit({ type: 'session', state: 'up', tunnelId: t.localId, sessionId: s.localId });
        if (this.opts.ppp !== false) {
          const pppOpts = this.opts.ppp ?? {};
          // authHold counts logins over the emulator's lifetime, not per session.
          s.ppp = new PppServer({ ...pppOpts, authHold: Math.max(0, (pppOpts.authHold ?? 0) - this.authHeld) }, {
            send: (frame) => {
              if (s.state !== 'established') return;
              const ns = this.sequenceData ? s.dataNs : undefined;
              if (ns !== undefined) s.dataNs = (ns + 1) & 0xffff;
              this.out(t, encodeData({ tunnelId: t.peerId, sessionId: s.peerId, ns }, frame));
            },
            event: (ev) => {
              this.emit({ type: 'ppp', tunnelId: t.localId, sessionId: s.localId, ppp: ev });
              if (ev.type === 'ncp-up') this.dataUp(t, s, ev.ncp);
              if (ev.type === 'auth-pending') {
                this.authHeld++;
                this.fireTriggers(t, 'ppp-auth');
              }
            },
            setTimer: (n, ms, fn) => this.setTimer(t, `ppp.${n}`, ms, fn),
            clearTimer: (n) => this.clearTimer(t, `ppp.${n}`),
            ...(this.tap ? { data: (pkt: Buffer) => this.tap?.writeIp(pkt) } : {}),
          });
          s.ppp.start();
        }
        break;
      }
      case 'StopCCN':
        this.runChannel(t, t.channel.ackNow());
        this.tunnelDown(t, `peer StopCCN ${v.resultCode?.result ?? '?'}/${v.resultCode?.error ?? '-'}${v.resultCode?.message ? ` ${v.resultCode.message}` : ''}`);
        break;
      case 'CDN':
        if (t.session && t.session.localId === sessionId) this.sessionDown(t, `peer CDN ${v.resultCode?.result ?? '?'}/${v.resultCode?.error ?? '-'}`);
        break;
      default:
        break; // HELLO and the rest: the channel has acknowledged them
    }
    this.fireTriggers(t, name);
  }

  private fireTriggers(t: Tunnel, name: MessageName | 'ppp-auth'): void {
    const n = (this.rxCounts[name] = (this.rxCounts[name] ?? 0) + 1);
    for (const tr of this.opts.triggers ?? []) {
      if (tr.on !== name || (tr.nth !== undefined && tr.nth !== n)) continue;
      const rc: ResultCode = { result: tr.result };
      if (tr.error !== undefined) rc.error = tr.error;
      if (tr.message !== undefined) rc.message = tr.message;
      const go = () => (tr.send === 'StopCCN' ? this.stopCcn(rc, t.localId) : this.cdn(rc, t.localId));
      if (tr.delayMs) this.later(tr.delayMs, go);
      else go();
    }
  }

  /** Data mode: carry this session's data and route what it was given into the TUN. */
  private dataUp(t: Tunnel, s: Session, ncp: 'ipv6cp' | 'ipcp'): void {
    const tap = this.tap;
    const ppp = s.ppp;
    if (!tap || !ppp) return;
    tap.attach({
      localTunnelId: t.localId,
      localSessionId: s.localId,
      peerTunnelId: t.peerId,
      peerSessionId: s.peerId,
      open4: () => s.state === 'established' && ppp.state().ipcp,
      open6: () => s.state === 'established' && ppp.state().ipv6cp,
    });
    const o = this.opts.ppp || {};
    const routes =
      ncp === 'ipcp'
        ? o.ipcp
          ? [`${o.ipcp.peer}/32`]
          : []
        : [`${(o.ra?.prefix ?? '2001:db8:200::').replace(/\/\d+$/, '')}/64`, ...(o.dhcp?.prefix ? [o.dhcp.prefix] : [])];
    for (const r of routes) {
      try {
        tap.route(r);
        this.emit({ type: 'data-route', route: r, tun: tap.tun.name });
      } catch (e) {
        this.emit({ type: 'bad-datagram', from: 'data-mode', reason: `route ${r}: ${(e as Error).message}` });
      }
    }
  }

  private sessionDown(t: Tunnel, reason: string): void {
    const s = t.session;
    if (!s || s.state === 'closed') return;
    s.state = 'closed';
    this.tap?.attach(null);
    s.ppp?.stop();
    for (const n of [...t.timers.keys()]) if (n.startsWith('ppp.')) this.clearTimer(t, n);
    this.emit({ type: 'session', state: 'down', tunnelId: t.localId, sessionId: s.localId, reason });
  }

  private tunnelDown(t: Tunnel, reason: string): void {
    if (t.state === 'closed') return;
    this.sessionDown(t, 'tunnel down');
    t.state = 'closed';
    this.emit({ type: 'tunnel', state: 'down', tunnelId: t.localId, peer: key(t.peer.address, t.peer.port), reason });
    // Keep acknowledging (and retransmitting our StopCCN) for a while, then forget the tunnel.
    this.setTimer(t, 'linger', 3000, () => {
      this.dispose(t);
      this.tunnels.delete(t.localId);
    });
  }

  private dispose(t: Tunnel): void {
    for (const a of t.channel.stop()) void a;
    t.session?.ppp?.stop();
    for (const timer of t.timers.values()) clearTimeout(timer);
    t.timers.clear();
    if (t.ownSocket) {
      try {
        t.sock.close();
      } catch {
        /* already closed */
      }
    }
  }

  // ------------------------------------------------------------ output

  private sendCtl<K extends MessageName>(t: Tunnel, name: K, sessionId: number, values: Omit<RequiredValues<K>, 'messageType'>): void {
    const n = (this.sentCounts[name] = (this.sentCounts[name] ?? 0) + 1);
    let raw: RawAvp[] = rawAvps({ ...(values as AvpValues), messageType: MessageType[name] });
    const h = this.opts.hide;
    if (h && (!h.messages || h.messages.includes(name))) {
      const vector = new Uint8Array(randomBytes(16));
      const rv: RawAvp = { mandatory: true, hidden: false, reserved: 0, vendorId: 0, type: RANDOM_VECTOR_TYPE, value: vector };
      const rest = raw.slice(1).map((a) => {
        const an = avpNameOf(a.type, a.vendorId);
        return an && h.avps.includes(an) ? hide(a, this.opts.secret!, vector) : a;
      });
      raw = [raw[0]!, rv, ...rest];
    }
    for (const e of this.opts.extraAvps ?? []) {
      if (e.message !== name || (e.nth !== undefined && e.nth !== n)) continue;
      const avp: RawAvp = { mandatory: e.mandatory, hidden: false, reserved: 0, vendorId: e.vendorId ?? 0, type: e.type, value: Buffer.from(e.value, 'hex') };
      const at = e.replace ? raw.findIndex((a) => a.vendorId === avp.vendorId && a.type === avp.type) : -1;
      if (at > 0) raw[at] = avp;
      else raw.push(avp);
    }
    this.runChannel(t, t.channel.send({ tunnelId: t.peerId, sessionId, body: encodeRawAvps(raw) }));
  }

  private out(t: Tunnel, bytes: Uint8Array): void {
    if (this.closed) return;
    const kind = kindOf(bytes);
    this.impair('out', kind, bytes, (b, action) => {
      if (action === 'drop') return;
      this.count('tx', kind);
      try {
        t.sock.send(b, t.peer.port, t.peer.address);
      } catch {
        /* socket closed during teardown */
      }
    });
  }

  private count(dir: 'rx' | 'tx', kind: string): void {
    this.counters[dir][kind] = (this.counters[dir][kind] ?? 0) + 1;
  }
}

/** An S-BFD Target Discriminator ID AVP (draft-ietf-l2tpext-sbfd-discriminator): M=0, type TBA by IANA. */
export const SBFD_DISCRIMINATOR_TYPE = 102;
export function sbfdAvp(message: MessageName, discriminator = 0x01020304): ExtraAvp {
  return { message, type: SBFD_DISCRIMINATOR_TYPE, mandatory: false, value: discriminator.toString(16).padStart(8, '0') };
}

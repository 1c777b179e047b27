import { challengeResponse } from '../../src/l2tp/avp';
import type { ResultCode } from '../../src/l2tp/avps';
import { type ChannelAction, type ChannelConfig, ControlChannel } from '../../src/l2tp/channel';
import { type ControlMessage, decodeMessage, encodeControlBody, encodeData, type L2tpMessage, type MessageName, MessageType, type RequiredValues } from '../../src/l2tp/messages';
import type { Scheduler } from '../../src/core/scheduler';
import { PppServer, type PppEvent, type PppServerOptions } from './ppp-server';

/**
 * A Softwire Concentrator without sockets or wall-clock timers: L2TP control
 * channel (the project's own ControlChannel), tunnel and session setup, HELLO
 * at a fixed cadence, StopCCN/CDN on demand, and PPP/RA/DHCPv6 through
 * PppServer. Datagrams go in through `receive` and out through `send`; timers run
 * on the given Scheduler (a FakeClock in soak tests), so days of traffic run in
 * seconds. emulator.ts is the UDP, impairment-scripting counterpart.
 */

export interface InProcessScOptions {
  hostName?: string;
  /** Tunnel secret: answers the LAC's Challenge. */
  secret?: string;
  /** HELLO every this many ms while a tunnel is up, whatever else flows (0: never). */
  helloMs?: number;
  ppp?: PppServerOptions;
  channel?: Partial<ChannelConfig>;
  /** How long a closed tunnel keeps acknowledging before it is forgotten. */
  lingerMs?: number;
}

export interface ScCounters {
  /** Control messages received, by type ('ZLB' for acks). */
  rx: Record<string, number>;
  tx: Record<string, number>;
  dataIn: number;
  dataOut: number;
  /** PPP events: lcp-up, auth, ncp-up, rs, ra-sent, dhcp:<Message>, terminate. */
  ppp: Record<string, number>;
  /** LCP Echo-Requests the PPP side answered. */
  echoRequests: number;
  tunnels: number;
  sessions: number;
  badDatagrams: number;
  unknownTunnel: number;
}

interface Delivered {
  sessionId: number;
  msg: ControlMessage;
}

interface Tunnel {
  localId: number;
  peerId: number;
  peer: string;
  state: 'wait-scccn' | 'established' | 'closed';
  channel: ControlChannel<Delivered>;
  timers: Set<string>;
  session: { localId: number; peerId: number; state: 'wait-iccn' | 'established' | 'closed'; ppp: PppServer | null } | null;
}

export class InProcessSc {
  readonly counters: ScCounters = { rx: {}, tx: {}, dataIn: 0, dataOut: 0, ppp: {}, echoRequests: 0, tunnels: 0, sessions: 0, badDatagrams: 0, unknownTunnel: 0 };
  private readonly tunnels = new Map<number, Tunnel>();
  private nextTunnelId = 2;
  private nextSessionId = 1;

  constructor(
    private readonly o: InProcessScOptions,
    private readonly sched: Scheduler,
    /** Sends a datagram to the LAC at `to` (the key `receive` was given). */
    private readonly send: (bytes: Uint8Array, to: string) => void,
  ) {}

  /** Live tunnels (closed ones still lingering included): must not grow over a soak. */
  get tunnelCount(): number {
    return this.tunnels.size;
  }

  /** The established tunnel with an established session, if any. */
  get sessionUp(): boolean {
    return [...this.tunnels.values()].some((t) => t.state === 'established' && t.session?.state === 'established');
  }

  /** Unacknowledged control messages over all tunnels. */
  get unacknowledged(): number {
    let n = 0;
    for (const t of this.tunnels.values()) n += t.channel.unacknowledged;
    return n;
  }

  receive(bytes: Uint8Array, from: string): void {
    let m: L2tpMessage;
    try {
      m = decodeMessage(bytes, { secret: this.o.secret });
    } catch {
      this.counters.badDatagrams++;
      return;
    }
    if (m.kind === 'data') {
      const t = this.tunnels.get(m.tunnelId);
      const s = t?.session;
      if (!t || !s || s.localId !== m.sessionId || s.state !== 'established') {
        this.counters.unknownTunnel++;
        return;
      }
      this.counters.dataIn++;
      s.ppp?.receive(m.payload);
      return;
    }
    const type = m.message ? (m.message.name ?? 'unknown') : 'ZLB';
    this.counters.rx[type] = (this.counters.rx[type] ?? 0) + 1;
    let t: Tunnel | undefined;
    if (m.tunnelId === 0 && m.message?.name === 'SCCRQ') {
      const peerId = m.message.values.assignedTunnelId ?? 0;
      t = [...this.tunnels.values()].find((x) => x.peerId === peerId && x.peer === from) ?? this.newTunnel(peerId, from);
    } else t = this.tunnels.get(m.tunnelId);
    if (!t) {
      this.counters.unknownTunnel++;
      return;
    }
    this.runChannel(t, t.channel.receive({ ns: m.ns, nr: m.nr, msg: m.message ? { sessionId: m.sessionId, msg: m.message } : undefined }));
    this.runChannel(t, t.channel.flush());
  }

  /** StopCCN to the established tunnel (if any); true if one was sent. */
  stopCcn(rc: ResultCode): boolean {
    const t = this.latest();
    if (!t) return false;
    this.sendCtl(t, 'StopCCN', 0, { assignedTunnelId: t.localId, resultCode: rc });
    this.tunnelDown(t);
    return true;
  }

  /** CDN for the established session (if any); true if one was sent. */
  cdn(rc: ResultCode): boolean {
    const t = this.latest();
    const s = t?.session;
    if (!t || !s || s.state !== 'established') return false;
    this.sendCtl(t, 'CDN', s.peerId, { assignedSessionId: s.localId, resultCode: rc });
    this.sessionDown(t);
    return true;
  }

  /** Drops every tunnel and its timers at once. */
  close(): void {
    for (const t of [...this.tunnels.values()]) this.forget(t);
  }

  private latest(): Tunnel | undefined {
    return [...this.tunnels.values()].filter((t) => t.state === 'established').at(-1);
  }

  private newTunnel(peerId: number, peer: string): Tunnel {
    const t: Tunnel = {
      localId: this.nextTunnelId,
      peerId,
      peer,
      state: 'wait-scccn',
      channel: new ControlChannel<Delivered>({ ackDelayMs: 100, ...this.o.channel }),
      timers: new Set(),
      session: null,
    };
    this.nextTunnelId = this.nextTunnelId >= 0xfff0 ? 2 : this.nextTunnelId + 1;
    t.channel.peerTunnelId = peerId;
    this.tunnels.set(t.localId, t);
    this.counters.tunnels++;
    return t;
  }

  private setTimer(t: Tunnel, name: string, ms: number, fn: () => void): void {
    t.timers.add(name);
    this.sched.set(`sc:${t.localId}:${name}`, ms, () => {
      t.timers.delete(name);
      fn();
    });
  }

  private clearTimer(t: Tunnel, name: string): void {
    t.timers.delete(name);
    this.sched.clear(`sc:${t.localId}:${name}`);
  }

  private runChannel(t: Tunnel, acts: ChannelAction<Delivered>[]): void {
    for (const a of acts) {
      switch (a.type) {
        case 'send':
          this.out(t, a.bytes);
          break;
        case 'timer-start':
          this.setTimer(t, a.timer, a.ms, () => this.runChannel(t, t.channel.timerFired(a.timer)));
          break;
        case 'timer-stop':
          this.clearTimer(t, a.timer);
          break;
        case 'deliver':
          this.handle(t, a.msg);
          break;
        case 'failed':
          this.tunnelDown(t);
          break;
      }
    }
  }

  private handle(t: Tunnel, { sessionId, msg }: Delivered): void {
    const v = msg.values;
    switch (msg.name) {
      case 'SCCRQ': {
        if (t.state !== 'wait-scccn') return;
        const reply: Omit<RequiredValues<'SCCRP'>, 'messageType'> = {
          protocolVersion: { version: 1, revision: 0 },
          framingCapabilities: { sync: true, async: true },
          hostName: this.o.hostName ?? 'sc-core',
          assignedTunnelId: t.localId,
        };
        if (v.challenge) reply.challengeResponse = challengeResponse(MessageType.SCCRP, this.o.secret ?? '', v.challenge);
        this.sendCtl(t, 'SCCRP', 0, reply);
        return;
      }
      case 'SCCCN':
        if (t.state !== 'wait-scccn') return;
        t.state = 'established';
        this.armHello(t);
        return;
      case 'ICRQ': {
        if (t.state !== 'established' || t.session?.state === 'established') return;
        t.session = { localId: this.nextSessionId, peerId: v.assignedSessionId ?? 0, state: 'wait-iccn', ppp: null };
        this.nextSessionId = this.nextSessionId >= 0xfff0 ? 1 : this.nextSessionId + 1;
        this.counters.sessions++;
        this.sendCtl(t, 'ICRP', t.session.peerId, { assignedSessionId: t.session.localId });
        return;
      }
      case 'ICCN': {
        const s = t.session;
        if (!s || s.localId !== sessionId || s.state !== 'wait-iccn') return;
        s.state = 'established';
        s.ppp = new PppServer(this.o.ppp ?? {}, {
          send: (frame) => {
            if (s.state !== 'established' || t.state !== 'established') return;
            this.counters.dataOut++;
            this.out(t, encodeData({ tunnelId: t.peerId, sessionId: s.peerId }, frame));
          },
          event: (ev) => this.pppEvent(ev),
          setTimer: (n, ms, fn) => this.setTimer(t, `ppp.${n}`, ms, fn),
          clearTimer: (n) => this.clearTimer(t, `ppp.${n}`),
        });
        s.ppp.start();
        return;
      }
      case 'StopCCN':
        this.runChannel(t, t.channel.ackNow());
        this.tunnelDown(t);
        return;
      case 'CDN':
        if (t.session && t.session.localId === sessionId) this.sessionDown(t);
        return;
      default:
        return; // HELLO and the rest: the channel acknowledged them
    }
  }

  private pppEvent(ev: PppEvent): void {
    const key = ev.type === 'dhcp' ? `dhcp:${ev.message}` : ev.type === 'ncp-up' ? `ncp-up:${ev.ncp}` : ev.type;
    this.counters.ppp[key] = (this.counters.ppp[key] ?? 0) + 1;
  }

  private armHello(t: Tunnel): void {
    const ms = this.o.helloMs ?? 0;
    if (ms <= 0) return;
    this.setTimer(t, 'hello', ms, () => {
      if (t.state !== 'established') return;
      this.sendCtl(t, 'HELLO', 0, {});
      this.armHello(t);
    });
  }

  private sessionDown(t: Tunnel): void {
    const s = t.session;
    if (!s || s.state === 'closed') return;
    s.state = 'closed';
    this.collectEcho(s.ppp);
    s.ppp?.stop();
    s.ppp = null;
    for (const n of [...t.timers]) if (n.startsWith('ppp.')) this.clearTimer(t, n);
  }

  private tunnelDown(t: Tunnel): void {
    if (t.state === 'closed') return;
    this.sessionDown(t);
    t.state = 'closed';
    this.clearTimer(t, 'hello');
    // Keep acknowledging (and retransmitting our StopCCN) for a while, then forget the tunnel.
    this.setTimer(t, 'linger', this.o.lingerMs ?? 3000, () => this.forget(t));
  }

  private forget(t: Tunnel): void {
    if (t.session?.ppp) {
      this.collectEcho(t.session.ppp);
      t.session.ppp.stop();
    }
    t.channel.stop();
    for (const n of [...t.timers]) this.clearTimer(t, n);
    this.tunnels.delete(t.localId);
  }

  /** Folds a finished PPP server's echo count into ours (its counters die with it). */
  private collectEcho(ppp: PppServer | null): void {
    if (ppp) this.counters.echoRequests += ppp.counters[`lcp-rx-9`] ?? 0;
  }

  /** Echo-Requests answered so far, live sessions included. */
  echoRequestsSeen(): number {
    let n = this.counters.echoRequests;
    for (const t of this.tunnels.values()) n += t.session?.ppp?.counters['lcp-rx-9'] ?? 0;
    return n;
  }

  private sendCtl<K extends MessageName>(t: Tunnel, name: K, sessionId: number, values: Omit<RequiredValues<K>, 'messageType'>): void {
    this.counters.tx[name] = (this.counters.tx[name] ?? 0) + 1;
    this.runChannel(t, t.channel.send({ tunnelId: t.peerId, sessionId, body: encodeControlBody(name, values) }));
  }

  private out(t: Tunnel, bytes: Uint8Array): void {
    this.send(bytes, t.peer);
  }
}

import { randomBytes } from 'node:crypto';
import type { Config } from '../config/schema';
import type { Secrets } from '../config/load';
import { type Scheduler, TrackedScheduler } from '../core/scheduler';
import type { Prefix } from '../ipv6/packet';
import type { Logger } from '../log';
import type { DatagramTransport, Endpoint } from '../io/udp-socket';
import type { DataCounters } from '../dataplane/counters';
import { Dataplane, type FrameTun, type TunBatch } from '../dataplane/dataplane';
import type { TunLike } from '../io/tun';
import { NativeUdpTransport } from '../dataplane/udp';
import { type OffloadEdge, offloadStatus } from '../dataplane/offloads';
import { DropLog, guarded } from '../io/drops';
import type { Installer } from './installer';
import { Attempt } from './attempt';
import type { AttemptAction, AttemptInput, ConnectionEvent, Provision } from './attempt-types';
import type { Milestone } from './session-core';
import type { Status } from './status';

/**
 * One attempt at a softwire, driven: the Attempt core (attempt.ts) decides, this
 * carries out its actions at the edges (UDP socket, TUN and the data fast path,
 * the Installer, timers) and feeds back what the edges report, each with the
 * scheduler's `now`. Nothing an edge throws escapes: it is counted under a named
 * drop (io.*). A Connection is used once: after it reports `down`, the agent
 * builds a new one.
 */

/** IPv4 + UDP + L2TP (no optional fields) + PPP (FF 03 + protocol): RFC 5571 5.2.1 gives 1460 on a 1500 link. */
export const OVERHEAD_IPV4 = 20 + 8 + 8 + 4;
export const OVERHEAD_IPV6 = 40 + 8 + 8 + 4;

export type { ConnectionEvent, DownInfo, Layer } from './attempt-types';
export type { TunLike } from '../io/tun';

export interface ConnectionDeps {
  config: Config;
  secrets: Secrets;
  log: Logger;
  scheduler: Scheduler;
  transport: DatagramTransport;
  /** Opens the TUN device when the first NCP comes up; receive slots of slotSize bytes (issue 16 item 3). */
  openTun: (name: string, opts?: { slotSize?: number }) => TunLike;
  installer: Installer;
  duid: Uint8Array;
  previousPrefix?: Prefix;
  /** Softwire MTU (TUN MTU and LCP MRU). */
  mtu: number;
  emit: (ev: ConnectionEvent) => void;
}

export class Connection {
  private readonly core: Attempt;
  private tun: TunLike | null = null;
  private dataplane: Dataplane | null = null;
  /** The data path's counters (the core's; the fast path adds to them). */
  readonly counters: DataCounters;
  /** This connection's timers: only its own are cleared at dispose. */
  private readonly sched: TrackedScheduler;
  /** Exceptions the edges threw (TUN, UDP, the data fast path, the installer): counted as io.*, never fatal. */
  private readonly io: DropLog;
  /** Inputs fed while actions are being carried out wait here: the core is never re-entered. */
  private readonly queue: AttemptInput[] = [];
  private draining = false;
  private stoppedFlag = false;
  private readonly stopWaiters: (() => void)[] = [];
  private releasedCb: (() => void) | null = null;
  private disposed = false;

  constructor(
    readonly sc: Endpoint,
    private readonly d: ConnectionDeps,
  ) {
    this.sched = new TrackedScheduler(d.scheduler);
    this.io = new DropLog(d.log, () => this.sched.now());
    this.core = new Attempt({
      config: d.config,
      secrets: d.secrets,
      duid: d.duid,
      previousPrefix: d.previousPrefix,
      mtu: d.mtu,
      sc,
      random: Math.random,
      randomBytes: (n) => new Uint8Array(randomBytes(n)),
    });
    this.counters = this.core.counters;
    d.transport.onDatagram((bytes, from) => this.feed({ type: 'datagram', bytes, from }));
  }

  /** The local address the tunnel runs from. */
  localAddress(): string {
    return this.d.transport.local.address;
  }

  start(): void {
    this.feed({ type: 'open' });
  }

  /** One input to the core, and its actions carried out (inputs raised meanwhile run after, in order). */
  private feed(input: AttemptInput): void {
    if (this.disposed) return;
    this.queue.push(input);
    if (this.draining) return;
    this.draining = true;
    try {
      for (let ev = this.queue.shift(); ev && !this.disposed; ev = this.queue.shift()) {
        let actions: AttemptAction[];
        try {
          actions = this.core.input(ev, this.sched.now());
        } catch (e) {
          this.io.count(`${ev.type}-exception`, e);
          continue;
        }
        for (const a of actions) {
          try {
            this.act(a);
          } catch (e) {
            // An edge that threw while carrying out an action: counted, the rest still runs.
            this.io.count(`${a.type}-action-exception`, e);
          }
        }
      }
    } finally {
      this.draining = false;
      this.queue.length = 0;
    }
  }

  private act(a: AttemptAction): void {
    const sched = this.sched;
    switch (a.type) {
      case 'send':
        // A send the kernel refuses (EPERM from a firewall rule) is a drop, not an exception.
        return guarded(this.io, 'udp-send', undefined, () => this.d.transport.send(a.bytes));
      case 'retarget':
        return this.d.transport.retarget(a.from);
      case 'arm':
        return sched.set(a.key, a.at - sched.now(), () => this.feed({ type: 'timer', key: a.key }));
      case 'cancel':
        return sched.clear(a.key);
      case 'open-tun':
        return this.openTun(a.slotSize, a.mtu);
      case 'close-tun':
        return this.closeTun();
      case 'tun-write':
        return this.tunWrite(a.packet);
      case 'set-mtu':
        return this.dataplane?.setMtu(a.mtu);
      case 'install':
        return this.provision(a.op);
      case 'settle': {
        const ins = this.d.installer;
        void ins.settled().then(() => this.feed({ type: 'settled', what: a.what, globalAddress: ins.ipv6Status('').address !== null }));
        return;
      }
      case 'event':
        return this.d.emit(a.event);
      case 'log':
        return this.d.log[a.level](a.data, a.msg);
      case 'stopped':
        this.stoppedFlag = true;
        for (const w of this.stopWaiters.splice(0)) w();
        return;
      case 'closed':
        return this.dispose();
    }
  }

  /** A provisioning action into the installer's queue. */
  private provision(op: Provision): void {
    const ins = this.d.installer;
    switch (op.type) {
      case 'tun-up':
        if (this.tun) ins.tunUp(this.tun.name, op.mtu, op.linkLocal);
        return;
      case 'tun-mtu':
        return ins.tunMtu(op.mtu);
      case 'address':
        return ins.address(op.source, op.address, op.prefixLength, op.validLifetime, op.preferredLifetime);
      case 'remove-address':
        return ins.removeAddress(op.source, op.address, op.prefixLength);
      case 'default-route':
        return ins.defaultRoute6(op.present);
      case 'dns':
        return ins.dns(op.source, op.servers, op.search);
      case 'delegated-prefix':
        return ins.delegatedPrefix({ prefix: op.prefix, length: op.length, preferredLifetime: op.preferredLifetime, validLifetime: op.validLifetime });
      case 'no-delegated-prefix':
        return ins.delegatedPrefix(null);
      case 'ipv4':
        return ins.ipv4(op.address, op.peer, op.dns);
    }
  }

  // -------------------------------------------------------------- data path

  private openTun(slotSize: number, mtu: number): void {
    let tun: TunLike;
    try {
      tun = this.d.openTun(this.d.config.tunDevice, { slotSize });
    } catch (e) {
      this.feed({ type: 'tun-failed', message: (e as Error).message });
      return;
    }
    this.tun = tun;
    const transport = this.d.transport;
    // The fast path needs both native edges; with Node's dgram socket every packet goes through the cores.
    if (tun.writeFrames && transport instanceof NativeUdpTransport) {
      const core = this.core;
      const dp = new Dataplane({ tun: tun as FrameTun, udp: transport, lac: core.lac, ppp: { canCarry: (p) => core.canCarry(p) }, mtu, counters: this.counters });
      this.dataplane = dp;
      // The fast path runs inside the socket's receive callback: whatever it throws stops here.
      const io = this.io;
      transport.setSink({
        begin: () => guarded(io, 'dataplane-rx', undefined, () => dp.begin()),
        take: (buf, off, len) => guarded(io, 'dataplane-rx', true, () => dp.take(buf, off, len)),
        flush: (buf) => guarded(io, 'dataplane-rx', undefined, () => dp.flush(buf)),
      });
    }
    const dp = this.dataplane;
    tun.onPackets(
      (batch) => {
        if (dp && batch.buffer && guarded(this.io, 'dataplane-tx', true, () => dp.fromTun(batch as TunBatch))) return;
        for (let i = 0; i < batch.count; i++) guarded(this.io, 'tun-rx', undefined, () => this.feed({ type: 'tun-packet', packet: batch.packet(i) }));
      },
      (e) => this.io.count('tun-read', e),
    );
    this.feed({ type: 'tun-opened' });
  }

  /** A packet from the SC for the kernel, which refuses what is not well-formed IP (EINVAL): counted as io.tun-write.EINVAL. */
  private tunWrite(payload: Buffer): void {
    const tun = this.tun;
    if (!tun) return this.counters.drop('rx', 'no-tun');
    const written = guarded(this.io, 'tun-write', null, () => tun.write(payload));
    if (written === null) return;
    if (!written) return this.counters.drop('rx', 'tun-queue-full');
    this.counters.rxPackets++;
    this.counters.rxOctets += payload.length;
  }

  private closeTun(): void {
    this.dataplane = null;
    try {
      this.tun?.close();
    } catch {
      /* already closed */
    }
    this.tun = null;
  }

  // -------------------------------------------------------------- teardown

  /**
   * Graceful stop, bounded by `budgetMs` (the core sequences DHCPv6 Release, LCP
   * Terminate and StopCCN). Resolves once everything above L2TP has ended and the
   * TUN is closed; the tunnel's end outlives it (RFC 2661 5.7/5.8, see Attempt) and
   * `onReleased` fires when that is over too.
   */
  async stop(budgetMs = 2000, opts: { release?: boolean } = {}): Promise<void> {
    if (this.disposed || this.stoppedFlag) return;
    await new Promise<void>((res) => {
      this.stopWaiters.push(res);
      this.feed({ type: 'stop', release: opts.release !== false, budgetMs });
    });
  }

  /** Notified when the tunnel's end is over and the socket closed (at once if it already is). */
  onReleased(cb: () => void): void {
    if (this.disposed) cb();
    else this.releasedCb = cb;
  }

  /** Releases timers, TUN and socket at once (no goodbyes); installed state is the installer's to clear. */
  dispose(): void {
    this.sched.clearAll();
    this.closeTun();
    if (this.disposed) return;
    this.disposed = true;
    guarded(this.io, 'udp-close', undefined, () => this.d.transport.close());
    for (const w of this.stopWaiters.splice(0)) w();
    const cb = this.releasedCb;
    this.releasedCb = null;
    cb?.();
  }

  // ----------------------------------------------------------------- status

  fillStatus(s: Status): void {
    const st = this.core.status();
    const l = st.lac;
    const t = this.d.transport;
    s.sc = { address: t.remote.address, port: t.remote.port };
    s.local = t.local;
    s.tunnel = { localId: l.tunnel.localId, remoteId: l.tunnel.remoteId ?? 0, state: l.tunnel.state, unacknowledged: l.tunnel.unacknowledged };
    s.session = l.session.localId !== undefined ? { localId: l.session.localId, remoteId: l.session.remoteId ?? 0, state: l.session.state } : null;
    const { drops: l2drops, ...l2 } = l.counters;
    s.counters.l2tp = { ...l2 };
    s.counters.drops = { ...prefixKeys('l2tp', l2drops), ...prefixKeys('transport', t.drops), ...prefixKeys('data', this.counters.drops), ...prefixKeys('io', this.io.counts) };
    const off = offloadStatus(this.tun as OffloadEdge | null, t as OffloadEdge);
    s.counters.data = { ...this.counters.snapshot(), truncatedDrops: this.tun?.truncatedDrops ?? 0, ...off.counters };
    s.offloads = off.offloads;
    s.mtu = st.mtu;
    if (st.ppp) {
      const p = st.ppp;
      s.ppp = {
        lcp: p.lcp,
        ncp: { ipv6cp: p.ipv6cp, ipcp: p.ipcp },
        auth: p.auth ? `${p.auth.protocol} ${p.auth.state}` : 'none',
        mru: p.negotiated.peerMru || null,
        echoRttMs: p.echo.lastRttMs ?? null,
      };
      const { drops: pdrops, ...pc } = p.counters;
      s.counters.ppp = { ...pc };
      Object.assign(s.counters.drops, prefixKeys('ppp', pdrops));
    }
    if (st.ipv4) s.ipv4 = { address: st.ipv4.address, peer: st.ipv4.peer, dns: st.ipv4.dns, carryTraffic: st.ipv4.carryTraffic };
    if (this.core.linkLocal) s.ipv6 = this.d.installer.ipv6Status(this.core.linkLocal);
    // RA/ND and DHCPv6 the cores refused: without these, hostile or broken SC-side packets vanish unseen.
    if (st.slaacDrops) Object.assign(s.counters.drops, prefixKeys('ipv6', st.slaacDrops));
    if (st.dhcpIgnored) Object.assign(s.counters.drops, prefixKeys('dhcp6', st.dhcpIgnored));
    // Monotonic milestones as wall-clock times, so a user sees where the setup time went.
    const nowMono = this.sched.now();
    const wall = Date.now();
    const iso = (v: number | null) => (v === null ? null : new Date(wall - (nowMono - v)).toISOString());
    s.phases = Object.fromEntries(Object.entries(st.setup.at).map(([k, v]) => [k, iso(v)])) as Record<Milestone, string | null>;
    s.degraded = st.setup.degraded;
  }
}

function prefixKeys(p: string, o: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(o)) out[`${p}.${k}`] = v;
  return out;
}

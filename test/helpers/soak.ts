import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { Agent, type DialRequest } from '../../src/agent/agent';
import type { Connection, ConnectionEvent, TunLike } from '../../src/agent/connection';
import { connectionOf } from '../../src/agent/dialer';
import type { Installer } from '../../src/agent/installer';
import { type Status, emptyStatus } from '../../src/agent/status';
import type { DatagramHandler, Endpoint } from '../../src/io/udp-socket';
import { resolveConfig } from '../../src/config/load';
import type { Scheduler } from '../../src/core/scheduler';
import type { DatagramTransport } from '../../src/io/udp-socket';
import { encodeDuid } from '../../src/ipv6/dhcpv6';
import { createLogger } from '../../src/log';
import type { Netlink } from '../../src/platform/netlink';
import type { Sysctl } from '../../src/platform/sysctl';
import { seededRng } from '../../src/util/random';
import { InProcessSc } from '../peer/sc-core';
import { FakeClock } from './fake-clock';

/**
 * Days of softwire life in seconds of wall time: the real Agent, whose Supervisor
 * decides every teardown, backoff and redial, dialling the real Connection (Lac,
 * PppLink, RS/SLAAC, DHCPv6 client, Installer) against an in-process SC
 * (test/peer/sc-core.ts), all on one FakeClock, with a fake UDP network, TUN and
 * netlink. Only the transport and the timers of each dial are the soak's
 * (connectionOf, the production dial's own constructor). The SC sends HELLO on a
 * fixed cadence, answers LCP echoes (with an RA, as l2tpns does) and DHCPv6 with
 * short T1/T2 so renewals happen all day. Each day it also tears the softwire
 * down three ways: StopCCN, five minutes of silence (echo failure, then failed
 * dials), and CDN; the Supervisor must bring it back each time. Samples taken at
 * each day boundary, from the agent's public status, show whether timers,
 * transports, queues, status and heap grow.
 */

export const DAY_MS = 86_400_000;
const SC: Endpoint = { address: '192.0.2.1', port: 1701 };
const SC_KEY = `${SC.address}:${SC.port}`;
/** The WAN address the kernel would pick towards the SC (documentation range: global, so the RFC keepalive timers apply). */
const LOCAL = '192.0.2.2';

export interface SoakOptions {
  days: number;
  helloS?: number;
  echoS?: number;
  /** SC HELLO cadence. */
  scHelloS?: number;
  /** DHCPv6 IA_PD T1/T2, preferred and valid lifetimes (seconds). */
  t1?: number;
  t2?: number;
  preferred?: number;
  valid?: number;
  /** Daily StopCCN / silence / CDN (default true). */
  faults?: boolean;
  silenceMs?: number;
  /** Seed of the Supervisor's backoff jitter (default 1). */
  seed?: number;
  /** Called after each day's sample (progress output). */
  onDay?: (s: DaySample) => void;
}

export interface DaySample {
  day: number;
  wallMs: number;
  up: boolean;
  timers: number;
  heapUsed: number;
  /** Open fake UDP transports (each holds the Connection's datagram listener). */
  transports: number;
  openTuns: number;
  scTunnels: number;
  lacUnacknowledged: number;
  scUnacknowledged: number;
  /** Leaf count of the agent's status (counters and drop reasons included). */
  statusLeaves: number;
  /** Addresses and routes the fake kernel holds. */
  kernelObjects: number;
  installerQueueIdle: boolean;
}

export interface SoakResult {
  days: number;
  wallMs: number;
  /** Timer firings plus datagrams delivered. */
  events: number;
  timersFired: number;
  datagrams: number;
  timersMin: number;
  timersMax: number;
  /** Dials the Supervisor asked for. */
  connections: number;
  /** The Supervisor's reconnect count (status.reconnects) before the final stop. */
  reconnects: number;
  /** Times the agent's state became "up". */
  ups: number;
  /** Why each connection ended, as it reported it (layer: reason). */
  downs: Record<string, number>;
  faults: { stopccn: number; silence: number; cdn: number };
  /** HELLOs the LAC sent (only after helloS with nothing received: in the silences). */
  lacHellos: number;
  /** Of those, the ones that reached the SC. */
  scHeardLacHellos: number;
  /** HELLOs the SC sent, each acknowledged by the LAC or lost in silence. */
  scHellos: number;
  echoRequests: number;
  renews: number;
  rebinds: number;
  solicits: number;
  samples: DaySample[];
  finalUp: boolean;
  /** Timers left on the clock after a graceful stop and SC shutdown (want 0). */
  timersAfterStop: number;
  connectionExceptions: number;
}

/**
 * A Connection's view of the shared clock. In production each dial gets its own
 * scheduler; here they share one FakeClock, so each gets its own key space (an old
 * tunnel still saying goodbye must not re-arm the new one's timers).
 */
class ScopedScheduler implements Scheduler {
  private readonly keys = new Set<string>();
  constructor(
    private readonly clock: FakeClock,
    private readonly prefix: string,
  ) {}
  now(): number {
    return this.clock.now();
  }
  set(key: string, ms: number, fire: () => void): void {
    const k = this.prefix + key;
    this.keys.add(k);
    this.clock.set(k, ms, () => {
      this.keys.delete(k);
      fire();
    });
  }
  clear(key: string): void {
    const k = this.prefix + key;
    this.keys.delete(k);
    this.clock.clear(k);
  }
  size(): number {
    return this.keys.size;
  }
  clearAll(): void {
    for (const k of this.keys) this.clock.clear(k);
    this.keys.clear();
  }
}

class CountingClock extends FakeClock {
  fired = 0;
  override set(key: string, ms: number, fire: () => void): void {
    super.set(key, ms, () => {
      this.fired++;
      fire();
    });
  }
}

/** Zero-latency datagram delivery, one microtask after the sender's turn (like a socket, never re-entrant). */
class Net {
  silent = false;
  delivered = 0;
  private readonly queue: (() => void)[] = [];
  private armed = false;
  post(deliver: () => void): void {
    if (this.silent) return;
    this.queue.push(deliver);
    if (this.armed) return;
    this.armed = true;
    queueMicrotask(() => this.pump());
  }
  private pump(): void {
    this.armed = false;
    for (let f = this.queue.shift(); f; f = this.queue.shift()) {
      if (this.silent) continue;
      this.delivered++;
      f();
    }
  }
}

class FakeTransport implements DatagramTransport {
  readonly drops: Record<string, number> = {};
  readonly remote = SC;
  readonly local: Endpoint;
  private handler: DatagramHandler | null = null;
  private closed = false;
  constructor(
    address: string,
    port: number,
    private readonly net: Net,
    private readonly sc: () => InProcessSc,
    private readonly registry: Map<string, FakeTransport>,
  ) {
    this.local = { address, port };
    registry.set(this.key, this);
  }
  get key(): string {
    return `${this.local.address}:${this.local.port}`;
  }
  onDatagram(h: DatagramHandler): void {
    this.handler = h;
  }
  retarget(): void {}
  send(bytes: Uint8Array): void {
    if (this.closed) return;
    this.net.post(() => this.sc().receive(bytes, this.key));
  }
  deliver(bytes: Uint8Array): void {
    if (!this.handler) return;
    this.handler(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), SC_KEY);
  }
  close(): void {
    this.closed = true;
    this.handler = null;
    this.registry.delete(this.key);
  }
}

/**
 * Addresses and routes, keyed as the kernel would, with the link they are on;
 * every other call succeeds and does nothing, and the WAN never changes (no
 * netlink events). Closing a TUN (not persistent) takes its link's objects with
 * it, as the kernel does.
 */
function fakeKernel(): { netlink: Netlink; sysctl: Sysctl; objects: () => number; linkGone: (name: string) => void } {
  const objects = new Map<string, unknown>();
  type Obj = { link?: unknown; address?: string; prefixLength?: number; destination?: string; metric?: number };
  const addr = (a: Obj) => `addr ${String(a.link)} ${a.address}/${a.prefixLength}`;
  const route = (r: Obj) => `route ${String(r.link)} ${r.destination} ${r.metric ?? ''}`;
  const impl: Record<string, (a: Obj) => unknown> = {
    addAddress: async (a) => void objects.set(addr(a), a.link),
    deleteAddress: async (a) => void objects.delete(addr(a)),
    addRoute: async (r) => void objects.set(route(r), r.link),
    deleteRoute: async (r) => void objects.delete(route(r)),
    listRoutes: async () => [],
    listAddresses: async () => [],
    linkIndex: async () => 9,
    subscribe: () => () => undefined,
  };
  const noop = async () => undefined;
  const proxy = <T>() => new Proxy({}, { get: (_t, k) => (k === 'then' ? undefined : (impl[k as string] ?? noop)) }) as T;
  return {
    netlink: proxy<Netlink>(),
    sysctl: proxy<Sysctl>(),
    objects: () => objects.size,
    linkGone: (name) => {
      for (const [k, link] of objects) if (link === name) objects.delete(k);
    },
  };
}

function leaves(x: unknown): number {
  if (x === null || typeof x !== 'object') return 1;
  let n = 0;
  for (const v of Object.values(x)) n += leaves(v);
  return n;
}

/** global.gc when node runs with --expose-gc, else one obtained through V8 flags. */
export function getGc(): () => void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) return g;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

/** Turns of the event loop until `done()`, for what real I/O finishes (the control socket); throws after `ms` of wall time. */
async function until(done: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!done()) {
    if (performance.now() > deadline) throw new Error(`soak: ${what} within ${ms} ms`);
    await new Promise<void>((r) => setImmediate(r));
  }
}

export async function runSoak(o: SoakOptions): Promise<SoakResult> {
  const helloS = o.helloS ?? 60;
  const echoS = o.echoS ?? 30;
  const silenceMs = o.silenceMs ?? 5 * 60_000;
  const gc = getGc();
  const clock = new CountingClock();
  const net = new Net();
  const transports = new Map<string, FakeTransport>();
  const kernel = fakeKernel();
  const sc = new InProcessSc(
    {
      hostName: 'soak-sc',
      secret: 'tunnel-secret',
      helloMs: (o.scHelloS ?? 30) * 1000,
      ppp: {
        auth: 'chap',
        users: [{ name: 'cpe1', password: 'secret1' }],
        raOnEcho: true,
        ra: { managed: false, other: true, prefix: '2001:db8:200::', routerLifetime: 1800 },
        dhcp: { prefix: '2001:db8:100::/56', t1: o.t1 ?? 600, t2: o.t2 ?? 900, preferred: o.preferred ?? 1200, valid: o.valid ?? 1800 },
      },
    },
    clock,
    (bytes, to) => net.post(() => transports.get(to)?.deliver(bytes)),
  );
  // The agent's control socket is real (a Unix socket): it lives in a directory of this run's own.
  const dir = mkdtempSync(join(tmpdir(), 'softwire-soak-'));
  const { config } = resolveConfig(
    {
      sc: [SC.address],
      user: 'cpe1',
      mode: 'router',
      helloInterval: helloS,
      lcpEchoInterval: echoS,
      lcpEchoFailure: 3,
      reconnectInitial: 2,
      reconnectCap: 60,
      controlSocket: join(dir, 'softwire.sock'),
    },
    {},
  );
  const secrets = { password: 'secret1', tunnelSecret: 'tunnel-secret' };
  const log = createLogger({ level: 'silent' });
  const duid = encodeDuid({ type: 'uuid', uuid: new Uint8Array(16).fill(3) });
  let openTuns = 0;
  const openTun = (name: string): TunLike => {
    openTuns++;
    let open = true;
    return {
      name,
      onPackets: () => {},
      write: () => true,
      close: () => {
        if (open) openTuns--;
        open = false;
        kernel.linkGone(name);
      },
    };
  };

  let connections = 0;
  let lacHellos = 0;
  let exceptions = 0;
  const downs: Record<string, number> = {};
  /** The newest dial: its connection and the installer the agent's dialer gave it. */
  const dialled: { latest: { conn: Connection; installer: Installer } | null } = { latest: null };
  const statusOf = (c: Connection): Status => {
    const s = emptyStatus();
    c.fillStatus(s);
    return s;
  };
  /** A connection's final account, read from its public status once the agent has stopped it (at the next dial, or at the end). */
  const tally = (s: Status) => {
    lacHellos += s.counters.l2tp.helloOut ?? 0;
    for (const [k, v] of Object.entries(s.counters.drops)) if (k.endsWith('-exception')) exceptions += v;
  };
  const dialDeps = { config, secrets, openTun, duid };
  // The agent's dial, over the fake network: the Dialer has already made the installer, MTU and keepalive timers.
  const dial = async (r: DialRequest): Promise<Connection> => {
    if (dialled.latest) tally(statusOf(dialled.latest.conn));
    connections++;
    const transport = new FakeTransport(r.local, 40000 + (connections % 20000), net, () => sc, transports);
    let ended = false;
    const emit = (ev: ConnectionEvent) => {
      if (ev.type === 'down' && !ended) {
        ended = true;
        const key = `${ev.info.layer}: ${ev.info.reason.replace(/\(.*$/, '').trim()}`;
        downs[key] = (downs[key] ?? 0) + 1;
      }
      r.emit(ev);
    };
    const conn = connectionOf({ ...r, emit }, dialDeps, transport, new ScopedScheduler(clock, `conn${connections}:`));
    dialled.latest = { conn, installer: r.installer };
    return conn;
  };
  const agent = new Agent({
    config,
    secrets,
    log,
    netlink: kernel.netlink,
    sysctl: kernel.sysctl,
    openTun,
    duid,
    scheduler: clock,
    rng: seededRng(o.seed ?? 1),
    sourceAddress: async () => LOCAL,
    dial,
  });

  // One timer per kind of scheduled event keeps the pending-timer count meaningful.
  const faults = { stopccn: 0, silence: 0, cdn: 0 };
  const faultPlan: { at: number; kind: keyof typeof faults }[] = [];
  if (o.faults !== false) {
    for (let d = 0; d < o.days; d++) {
      faultPlan.push({ at: d * DAY_MS + 5 * 3600_000, kind: 'stopccn' });
      faultPlan.push({ at: d * DAY_MS + 11 * 3600_000, kind: 'silence' });
      faultPlan.push({ at: d * DAY_MS + 17 * 3600_000, kind: 'cdn' });
    }
  }
  const armFault = () => {
    const f = faultPlan.shift();
    if (!f) return;
    clock.set('soak:fault', f.at - clock.now(), () => {
      if (f.kind === 'stopccn' && sc.stopCcn({ result: 1, message: 'soak: clear the tunnel' })) faults.stopccn++;
      else if (f.kind === 'cdn' && sc.cdn({ result: 3, message: 'soak: clear the session' })) faults.cdn++;
      else if (f.kind === 'silence') {
        faults.silence++;
        net.silent = true;
        clock.set('soak:unsilence', silenceMs, () => (net.silent = false));
      }
      armFault();
    });
  };
  armFault();

  const samples: DaySample[] = [];
  let sampleDue = false;
  const armDay = () => clock.set('soak:day', DAY_MS - (clock.now() % DAY_MS), () => ((sampleDue = true), armDay()));
  armDay();

  const settle = () => new Promise<void>((r) => setImmediate(r));
  const t0 = performance.now();
  let timersMin = Number.POSITIVE_INFINITY;
  let timersMax = 0;
  let ups = 0;
  let wasUp = false;
  const end = o.days * DAY_MS;

  let runError: Error | null = null;
  const run = agent.run().catch((e: Error) => void (runError = e));
  // The control socket opens first (real I/O); then the Supervisor dials at once.
  await until(() => connections > 0 || runError !== null, 'the agent did not dial');
  if (runError) throw runError;
  await settle();
  while (clock.now() < end) {
    const next = clock.nextDue();
    clock.advance(Math.min(next ?? end, end) - clock.now());
    await settle();
    // Each "up" follows a dial, a few datagrams and at least one timer after a "down": one look per step sees each.
    const isUp = agent.state === 'up';
    if (isUp && !wasUp) ups++;
    wasUp = isUp;
    const n = clock.size();
    if (n < timersMin) timersMin = n;
    if (n > timersMax) timersMax = n;
    if (sampleDue) {
      sampleDue = false;
      gc();
      const st = agent.status();
      const inst = dialled.latest?.installer;
      const s: DaySample = {
        day: Math.round(clock.now() / DAY_MS),
        wallMs: performance.now() - t0,
        up: isUp,
        timers: clock.size(),
        heapUsed: process.memoryUsage().heapUsed,
        transports: transports.size,
        openTuns,
        scTunnels: sc.tunnelCount,
        lacUnacknowledged: st.tunnel?.unacknowledged ?? 0,
        scUnacknowledged: sc.unacknowledged,
        statusLeaves: leaves(st),
        kernelObjects: kernel.objects(),
        installerQueueIdle: await Promise.race([inst?.settled().then(() => true) ?? true, settle().then(() => false)]),
      };
      samples.push(s);
      o.onDay?.(s);
    }
  }
  const finalUp = agent.state === 'up' && sc.sessionUp;
  const reconnects = agent.status().reconnects;
  if (dialled.latest) tally(statusOf(dialled.latest.conn));
  // SIGTERM: the agent's graceful stop runs on the fake clock (StopCCN acked, or the budget), then ends run().
  let stopped = false;
  const stopping = agent.stop().then(() => (stopped = true));
  await settle();
  for (let next = clock.nextDue(); !stopped && next !== undefined; next = clock.nextDue()) {
    clock.advance(next - clock.now());
    await settle();
  }
  await until(() => stopped, 'the agent did not stop');
  await stopping;
  await run;
  sc.close();
  for (const k of ['soak:fault', 'soak:unsilence', 'soak:day']) clock.clear(k);
  rmSync(dir, { recursive: true, force: true });
  const scHellos = sc.counters.tx.HELLO ?? 0;
  return {
    days: o.days,
    wallMs: performance.now() - t0,
    events: clock.fired + net.delivered,
    timersFired: clock.fired,
    datagrams: net.delivered,
    timersMin,
    timersMax,
    connections,
    reconnects,
    ups,
    downs,
    faults,
    lacHellos,
    scHeardLacHellos: sc.counters.rx.HELLO ?? 0,
    scHellos,
    echoRequests: sc.echoRequestsSeen(),
    renews: sc.counters.ppp['dhcp:Renew'] ?? 0,
    rebinds: sc.counters.ppp['dhcp:Rebind'] ?? 0,
    solicits: sc.counters.ppp['dhcp:Solicit'] ?? 0,
    samples,
    finalUp,
    timersAfterStop: clock.size(),
    connectionExceptions: exceptions,
  };
}

/** What a healthy soak looks like, as a list of violations (empty: healthy). Shared by the script and the unit test. */
export function soakProblems(r: SoakResult, o: SoakOptions): string[] {
  const p: string[] = [];
  const secs = r.days * 86_400;
  const faultsDone = r.faults.stopccn + r.faults.silence + r.faults.cdn;
  const within = (what: string, got: number, ideal: number, lo: number, hi: number) => {
    if (got < ideal * lo || got > ideal * hi) p.push(`${what}: ${got}, expected ${Math.round(ideal * lo)}..${Math.round(ideal * hi)} (ideal ${Math.round(ideal)})`);
  };
  if (!r.finalUp) p.push('the softwire is not up at the end');
  if (o.faults !== false && faultsDone !== 3 * r.days) p.push(`${faultsDone} faults injected, planned ${3 * r.days}`);
  if (r.ups !== 1 + faultsDone) p.push(`${r.ups} times up, expected ${1 + faultsDone} (once, then after each fault)`);
  // Every dial but the first is the Supervisor's redial after a down, and a silence fails at least one of them.
  if (r.reconnects !== r.connections - 1) p.push(`${r.connections} dials for ${r.reconnects} reconnects (want the first dial plus one per reconnect)`);
  if (r.connections - r.ups < r.faults.silence) p.push(`${r.connections - r.ups} failed dials, expected at least one per silence (${r.faults.silence})`);
  // Downtime (a few minutes a day) costs a little of each periodic count.
  within('LCP Echo-Requests', r.echoRequests, secs / (o.echoS ?? 30), 0.9, 1.01);
  within('SC HELLOs', r.scHellos, secs / (o.scHelloS ?? 30), 0.9, 1.01);
  within('DHCPv6 Renews', r.renews, secs / (o.t1 ?? 600), 0.85, 1.02);
  // With echoes and SC HELLOs flowing the LAC never idles long enough to send HELLO; only the silences do.
  if (r.lacHellos < r.faults.silence || r.lacHellos > 2 * r.faults.silence) p.push(`LAC HELLOs: ${r.lacHellos}, expected ${r.faults.silence}..${2 * r.faults.silence} (one per silence)`);
  if (r.connectionExceptions !== 0) p.push(`${r.connectionExceptions} exceptions escaped protocol cores`);
  if (r.timersAfterStop !== 0) p.push(`${r.timersAfterStop} timers left after a graceful stop`);
  if (r.timersMax > 16) p.push(`up to ${r.timersMax} timers pending`);
  const first = r.samples[0];
  const last = r.samples.at(-1);
  if (!first || !last) return [...p, 'no daily sample'];
  for (const s of r.samples) {
    if (s.transports !== 1 || s.openTuns !== 1) p.push(`day ${s.day}: ${s.transports} transports, ${s.openTuns} TUNs open (want 1)`);
    if (s.scTunnels > 2) p.push(`day ${s.day}: the SC holds ${s.scTunnels} tunnels`);
    if (s.lacUnacknowledged > 2 || s.scUnacknowledged > 2) p.push(`day ${s.day}: control queues ${s.lacUnacknowledged} (LAC) / ${s.scUnacknowledged} (SC)`);
    if (!s.installerQueueIdle) p.push(`day ${s.day}: the installer queue is not idle`);
    if (s.timers > first.timers + 3) p.push(`day ${s.day}: ${s.timers} timers pending, ${first.timers} after day 1`);
    if (s.kernelObjects > first.kernelObjects) p.push(`day ${s.day}: ${s.kernelObjects} kernel objects, ${first.kernelObjects} after day 1`);
    if (s.statusLeaves > first.statusLeaves + 8) p.push(`day ${s.day}: status has ${s.statusLeaves} leaves, ${first.statusLeaves} after day 1`);
  }
  // 30 days of the real Agent measured +1.21 MiB, +0.13 MiB of it after day 14 (JIT and caches warm up first).
  const heapBound = 2 * 1024 * 1024;
  if (last.heapUsed - first.heapUsed > heapBound) p.push(`heap grew ${((last.heapUsed - first.heapUsed) / 1048576).toFixed(2)} MiB from day 1 to day ${last.day} (bound ${(heapBound / 1048576).toFixed(2)} MiB)`);
  return p;
}

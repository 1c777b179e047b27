import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Connection, type ConnectionEvent, type TunLike } from '../../src/agent/connection';
import { Installer } from '../../src/agent/installer';
import { emptyStatus, type Status } from '../../src/agent/status';
import { resolveConfig } from '../../src/config/load';
import type { DatagramTransport } from '../../src/io/udp-socket';
import { encodeData } from '../../src/l2tp/messages';
import { createLogger } from '../../src/log';
import type { DatagramHandler, Endpoint } from '../../src/io/udp-socket';
import type { Sysctl } from '../../src/platform/sysctl';
import { kindOf } from '../peer/emulator';
import { InProcessSc } from '../peer/sc-core';
import { FakeClock } from '../helpers/fake-clock';
import { acceptingNetlink } from '../helpers/installer';

/**
 * The Connection driver with test doubles at both edges (a UDP transport and a TUN
 * that can be told to fail) against the in-process SC, on one FakeClock: what an
 * edge throws stays in the packet path as a named drop, and the goodbye at stop
 * runs on the connection's own timers (no wall clock), retransmitting StopCCN.
 */

const SC: Endpoint = { address: '192.0.2.1', port: 1701 };
const LOCAL = '192.0.2.2:40000';

class Edges {
  /** Throw from send (as sendmsg does with EPERM under a firewall rule). */
  sendError: NodeJS.ErrnoException | null = null;
  /** Drop our first StopCCN on the way (a lossy path). */
  dropStopCcn = 0;
  /** Throw from the TUN write (the kernel's EINVAL for a non-IP payload). */
  tunError: NodeJS.ErrnoException | null = null;
  sent: string[] = [];
  tunWrites = 0;
  tunOpen = false;
  transportOpen = true;
  private handler: DatagramHandler | null = null;
  private readonly queue: (() => void)[] = [];

  constructor(private readonly sc: () => InProcessSc) {}

  /** Delivery one turn later, like a socket (never re-entrant). */
  post(f: () => void): void {
    this.queue.push(f);
  }
  pump(): void {
    for (let f = this.queue.shift(); f; f = this.queue.shift()) f();
  }
  toLac(bytes: Uint8Array): void {
    this.post(() => this.handler?.(Buffer.from(bytes), `${SC.address}:${SC.port}`));
  }

  readonly transport: DatagramTransport = {
    drops: {},
    remote: SC,
    local: { address: '192.0.2.2', port: 40000 },
    onDatagram: (h) => (this.handler = h),
    retarget: () => {},
    send: (bytes) => {
      if (this.sendError) throw this.sendError;
      const kind = kindOf(bytes);
      this.sent.push(kind);
      if (kind === 'StopCCN' && this.dropStopCcn > 0) {
        this.dropStopCcn--;
        return;
      }
      const copy = new Uint8Array(bytes);
      this.post(() => this.sc().receive(copy, LOCAL));
    },
    close: () => {
      this.transportOpen = false;
      this.handler = null;
    },
  };

  readonly openTun = (name: string): TunLike => {
    this.tunOpen = true;
    return {
      name,
      onPackets: () => {},
      write: () => {
        this.tunWrites++;
        if (this.tunError) throw this.tunError;
        return true;
      },
      close: () => (this.tunOpen = false),
    };
  };
}

function errno(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`write: ${code}`), { code });
}

async function rig() {
  const clock = new FakeClock();
  const edges: Edges = new Edges(() => sc);
  const sc: InProcessSc = new InProcessSc(
    { hostName: 'unit-sc', helloMs: 0, ppp: { auth: 'chap', users: [{ name: 'cpe1', password: 'secret1' }], ra: { managed: false, other: false, prefix: '2001:db8:200::', routerLifetime: 1800 } } },
    clock,
    (bytes) => edges.toLac(bytes),
  );
  const { config } = resolveConfig({ sc: [SC.address], user: 'cpe1', mode: 'host', ncp: 'ipv6' }, {});
  const log = createLogger({ level: 'silent' });
  const sysctl = { setIpv6: async () => {}, write: async () => {} } as unknown as Sysctl;
  const installer = new Installer(acceptingNetlink(), sysctl, log, { routeMetric: 1024, ipv4DefaultRoute: false });
  const events: ConnectionEvent[] = [];
  const conn = new Connection(SC, {
    config,
    secrets: { password: 'secret1' },
    log,
    scheduler: clock,
    transport: edges.transport,
    openTun: edges.openTun,
    installer,
    duid: new Uint8Array([0, 3, 0, 1, 2, 0, 0, 0, 0, 1]),
    mtu: 1460,
    emit: (ev) => events.push(ev),
  });
  /** Lets datagrams, microtasks (installer queue) and due timers run, up to `ms` of fake time. */
  const run = async (ms: number) => {
    const end = clock.now() + ms;
    for (;;) {
      edges.pump();
      for (let i = 0; i < 5; i++) await Promise.resolve();
      edges.pump();
      const next = clock.nextDue();
      if (next === undefined || next > end) break;
      clock.advance(Math.max(0, next - clock.now()));
    }
    if (clock.now() < end) clock.advance(end - clock.now());
    edges.pump();
  };
  const status = (): Status => {
    const s = emptyStatus();
    conn.fillStatus(s);
    return s;
  };
  return { clock, sc, edges, conn, events, run, status };
}

async function upRig() {
  const r = await rig();
  r.conn.start();
  for (let i = 0; i < 200 && !r.events.some((e) => e.type === 'up'); i++) await r.run(500);
  assert.ok(
    r.events.some((e) => e.type === 'up'),
    `up: ${JSON.stringify(r.events.filter((e) => e.type !== 'progress'))}`,
  );
  return r;
}

test('a PPP IPv6 frame the TUN refuses (write throws EINVAL): counted as io.tun-write.EINVAL, the connection stays up', async () => {
  const r = await upRig();
  const s0 = r.status();
  r.edges.tunError = errno('EINVAL');
  const frame = Buffer.concat([Buffer.from([0xff, 0x03, 0x00, 0x57]), Buffer.alloc(25, 0x0b)]);
  for (let i = 0; i < 3; i++) r.edges.toLac(encodeData({ tunnelId: s0.tunnel!.localId, sessionId: s0.session!.localId }, frame));
  await r.run(10);
  const s = r.status();
  assert.equal(s.counters.drops['io.tun-write.EINVAL'], 3);
  assert.ok(!r.events.some((e) => e.type === 'down'), 'still up');
  assert.equal(s.session?.state, 'established');
});

test('stop with the first StopCCN lost: retransmitted on the connection timers, acknowledged within the budget; TUN closed at once', async () => {
  const r = await upRig();
  r.edges.dropStopCcn = 1;
  let stopped = false;
  const t0 = r.clock.now();
  void r.conn.stop(2400).then(() => (stopped = true));
  await r.run(0);
  assert.equal(stopped, false, 'waits for the ack');
  for (let i = 0; i < 50 && !stopped; i++) await r.run(100);
  assert.ok(stopped, 'stop() resolved');
  const took = r.clock.now() - t0;
  assert.ok(took >= 1000 && took <= 2400, `acknowledged after the retransmission, within the budget: ${took} ms`);
  assert.equal(r.edges.sent.filter((k) => k === 'StopCCN').length, 2, r.edges.sent.join(' '));
  assert.equal(r.edges.tunOpen, false);
});

test('stop while every send throws EPERM: stop() resolves within its budget, the drops are counted, nothing throws', async () => {
  const r = await upRig();
  r.edges.sendError = errno('EPERM');
  let stopped = false;
  void r.conn.stop(2400).then(() => (stopped = true));
  for (let i = 0; i < 40 && !stopped; i++) await r.run(100);
  assert.ok(stopped);
  assert.ok((r.status().counters.drops['io.udp-send.EPERM'] ?? 0) >= 1, JSON.stringify(r.status().counters.drops));
  // The tunnel's end is bounded too: the socket goes by the retirement cap at the latest.
  await r.run(60_000);
  assert.equal(r.edges.transportOpen, false);
  assert.equal(r.clock.size(), 0, 'no timer left');
});

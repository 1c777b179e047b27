import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { Agent, type AgentDeps, type ConnectionLike, type DialRequest } from '../../src/agent/agent';
import type { IpsecGuard, IpsecStatus, IpsecUpResult } from '../../src/ipsec/guard';
import type { DownInfo } from '../../src/agent/connection';
import type { Endpoint } from '../../src/io/udp-socket';
import type { Status } from '../../src/agent/status';
import { resolveConfig } from '../../src/config/load';
import { createLogger } from '../../src/log';
import type { Netlink, NetlinkEvent } from '../../src/platform/netlink';
import type { Sysctl } from '../../src/platform/sysctl';
import { FakeClock } from '../helpers/fake-clock';

/**
 * The agent's reconnect loop with a fake clock, fake connections and a fake
 * route lookup: what it waits between attempts, which SC it dials, and how
 * operator requests, WAN changes, reloads and stop cut into it.
 */

class FakeConn implements ConnectionLike {
  started = false;
  stoppedWith: number | null = null;
  disposed = false;
  constructor(readonly req: DialRequest) {}
  get sc(): Endpoint {
    return this.req.sc;
  }
  start(): void {
    this.started = true;
  }
  async stop(budgetMs: number): Promise<void> {
    this.stoppedWith = budgetMs;
  }
  dispose(): void {
    this.disposed = true;
  }
  localAddress(): string {
    return this.req.local;
  }
  fillStatus(s: Status): void {
    s.sc = this.req.sc;
    s.local = { address: this.req.local, port: 40000 };
  }
  up(): void {
    this.req.emit({ type: 'up' });
  }
  down(info: DownInfo): void {
    this.req.emit({ type: 'down', info });
  }
}

/** Lets the agent's promise chains run after a timer fired or an event was fed in. */
async function settle(): Promise<void> {
  for (let i = 0; i < 30; i++) await new Promise((r) => setImmediate(r));
}

interface Harness {
  agent: Agent;
  clock: FakeClock;
  conns: FakeConn[];
  lines: { msg: string; level: number }[];
  route: { local: string | null };
  netlinkEvent(ev: NetlinkEvent): void;
  /** Dials that are held until released (null: dial at once). */
  hold: { next: Promise<void> | null };
  dialFails: { next: Error | null };
  dir: string;
  run: Promise<void>;
}

function harness(t: { after: (fn: () => unknown) => void }, file: Record<string, unknown> = {}, extra: Partial<AgentDeps> = {}): Harness {
  const dir = mkdtempSync(join(tmpdir(), 'agent-loop-'));
  const { config } = resolveConfig(
    { sc: ['192.0.2.1', '192.0.2.9'], controlSocket: join(dir, 'ctl.sock'), reconnectInitial: 2, reconnectCap: 300, reconnectJitter: 0.5, ...file },
    {},
  );
  const lines: { msg: string; level: number }[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l) as { msg: string; level: number });
      cb();
    },
  });
  const listeners = new Set<(ev: NetlinkEvent) => void>();
  const netlink = {
    subscribe: (l: (ev: NetlinkEvent) => void) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    listAddresses: async () => [],
    getLink: async () => ({ mtu: 1500 }),
  } as unknown as Netlink;
  const clock = new FakeClock();
  const conns: FakeConn[] = [];
  const route = { local: '192.0.2.2' as string | null };
  const hold: Harness['hold'] = { next: null };
  const dialFails: Harness['dialFails'] = { next: null };
  const agent = new Agent({
    config,
    secrets: {},
    log: createLogger({ level: (file.logLevel as never) ?? 'info', destination: sink }),
    netlink,
    sysctl: {} as Sysctl,
    openTun: () => {
      throw new Error('no TUN in unit tests');
    },
    duid: new Uint8Array([0, 3, 0, 1, 1, 2, 3, 4, 5, 6]),
    scheduler: clock,
    rng: () => 0.5,
    sourceAddress: async () => {
      if (!route.local) throw new Error('connect ENETUNREACH');
      return route.local;
    },
    dial: async (r) => {
      if (hold.next) await hold.next;
      if (dialFails.next) {
        const e = dialFails.next;
        dialFails.next = null;
        throw e;
      }
      const c = new FakeConn(r);
      conns.push(c);
      return c;
    },
    ...extra,
  });
  const run = agent.run();
  t.after(async () => {
    await agent.stop();
    await run;
  });
  return { agent, clock, conns, lines, route, netlinkEvent: (ev) => listeners.forEach((l) => l(ev)), hold, dialFails, dir, run };
}

const sessionDown: DownInfo = { layer: 'session', reason: 'peer-cdn (result 3)' };

test('jittered backoff between attempts, doubling, and reset once the softwire was up', async (t) => {
  const h = harness(t);
  await settle();
  assert.equal(h.conns.length, 1);
  assert.equal(h.conns[0]!.started, true);
  h.conns[0]!.down(sessionDown);
  await settle();
  // base 2 s, jitter 0.5, rng 0.5: 2000 * (1 - 0.25) = 1500 ms.
  assert.ok(h.lines.some((l) => /session down: .*retrying in 1\.5 s/.test(l.msg)));
  assert.equal(h.agent.state, 'connecting');
  assert.equal(h.conns[0]!.stoppedWith, 300, 'a failed connection gets a short goodbye budget');
  h.clock.advance(1499);
  await settle();
  assert.equal(h.conns.length, 1, 'no dial before the backoff elapsed');
  h.clock.advance(1);
  await settle();
  assert.equal(h.conns.length, 2);
  h.conns[1]!.down(sessionDown);
  await settle();
  assert.ok(h.lines.some((l) => /retrying in 3\.0 s/.test(l.msg)), 'the base doubles');
  h.clock.advance(3000);
  await settle();
  assert.equal(h.conns.length, 3);
  h.conns[2]!.up();
  await settle();
  assert.equal(h.agent.state, 'up');
  h.conns[2]!.down(sessionDown);
  await settle();
  assert.equal(h.lines.filter((l) => /retrying in 1\.5 s/.test(l.msg)).length, 2, 'back to the initial delay after being up');
  const s = h.agent.status();
  assert.equal(s.reconnects, 3);
  assert.equal(s.lastError?.layer, 'session');
});

test('a permanent failure (rejected login) waits at least a quarter of the cap', async (t) => {
  const h = harness(t);
  await settle();
  h.conns[0]!.down({ layer: 'auth', reason: 'authentication failed', permanent: true });
  await settle();
  assert.ok(h.lines.some((l) => /retrying in 75\.0 s/.test(l.msg)), h.lines.map((l) => l.msg).join('\n'));
  h.clock.advance(74_999);
  await settle();
  assert.equal(h.conns.length, 1);
  h.clock.advance(1);
  await settle();
  assert.equal(h.conns.length, 2);
});

test('retryElsewhere and unreachable SCs rotate to the next SC; other failures keep the SC', async (t) => {
  const h = harness(t, { reconnectJitter: 0 });
  await settle();
  assert.equal(h.conns[0]!.sc.address, '192.0.2.1');
  h.conns[0]!.down(sessionDown);
  await settle();
  h.clock.advance(2000);
  await settle();
  assert.equal(h.conns[1]!.sc.address, '192.0.2.1', 'a dropped session retries the same SC');
  h.conns[1]!.down({ layer: 'tunnel', reason: 'peer-stopccn (result 2)', retryElsewhere: true });
  await settle();
  h.clock.advance(4000);
  await settle();
  assert.equal(h.conns[2]!.sc.address, '192.0.2.9', 'the SC asked us to go elsewhere');
  h.conns[2]!.down(sessionDown);
  await settle();
  h.dialFails.next = new Error('bind EADDRNOTAVAIL');
  h.clock.advance(8000);
  await settle();
  assert.ok(h.lines.some((l) => /transport down: cannot reach 192\.0\.2\.9:1701: bind EADDRNOTAVAIL/.test(l.msg)));
  h.clock.advance(16_000);
  await settle();
  assert.equal(h.conns[3]!.sc.address, '192.0.2.1', 'wraps around to the first SC');
});

test('"try another SC" dials the next SC at once, and backs off once every SC has said it', async (t) => {
  const h = harness(t, { reconnectJitter: 0 });
  await settle();
  const elsewhere = { layer: 'tunnel' as const, reason: 'peer-stopccn (result 2, error 7)', retryElsewhere: true };
  h.conns[0]!.down(elsewhere);
  await settle();
  h.clock.advance(0);
  await settle();
  assert.equal(h.conns.length, 2, 'no backoff before asking the next SC');
  assert.equal(h.conns[1]!.sc.address, '192.0.2.9');
  h.conns[1]!.down(elsewhere);
  await settle();
  h.clock.advance(0);
  await settle();
  assert.equal(h.conns.length, 2, 'both SCs said it: now the backoff applies');
  h.clock.advance(1999);
  await settle();
  assert.equal(h.conns.length, 2);
  h.clock.advance(1);
  await settle();
  assert.equal(h.conns.length, 3);
  assert.equal(h.conns[2]!.sc.address, '192.0.2.1');
});

test('down holds the softwire down until up; reconnect dials at once', async (t) => {
  const h = harness(t);
  await settle();
  h.conns[0]!.up();
  await settle();
  assert.deepEqual(await h.agent.request({ cmd: 'down' }), { ok: true, message: 'taking the softwire down' });
  await settle();
  assert.equal(h.agent.state, 'down');
  assert.equal(h.conns[0]!.stoppedWith, 2400, 'administrative down says goodbye properly');
  h.clock.advance(3600_000);
  await settle();
  assert.equal(h.conns.length, 1, 'no dial while administratively down');
  assert.deepEqual(await h.agent.request({ cmd: 'down' }), { ok: true, message: 'already down' });
  await h.agent.request({ cmd: 'up' });
  await settle();
  assert.equal(h.conns.length, 2);
  assert.equal(h.agent.state, 'connecting');
  h.conns[1]!.up();
  await settle();
  await h.agent.request({ cmd: 'reconnect' });
  await settle();
  assert.equal(h.conns.length, 3, 'reconnect dials again without backoff');
  assert.equal(h.conns[1]!.stoppedWith, 2400);
  assert.equal(h.agent.status().reconnects, 1);
});

test('down or stop that arrives while a dial is being set up is not lost', async (t) => {
  const h = harness(t);
  let release!: () => void;
  await settle();
  h.conns[0]!.down(sessionDown);
  await settle();
  h.hold.next = new Promise<void>((r) => (release = r));
  h.clock.advance(1500);
  await settle();
  assert.equal(h.conns.length, 0 + 1, 'second dial is held');
  await h.agent.request({ cmd: 'down' });
  h.hold.next = null;
  release();
  await settle();
  assert.equal(h.conns.length, 2);
  assert.equal(h.conns[1]!.started, false, 'the held dial is never started');
  assert.equal(h.conns[1]!.disposed, true);
  assert.equal(h.agent.state, 'down');
  // Now the same with stop: run() must end.
  await h.agent.request({ cmd: 'up' });
  h.hold.next = new Promise<void>((r) => (release = r));
  await settle();
  const stopped = h.agent.stop();
  h.hold.next = null;
  release();
  await settle();
  await stopped;
  await h.run;
  assert.equal(h.agent.state, 'down');
  assert.equal(h.conns[2]!.started, false);
});

test('stop during the backoff ends the loop at once, and pending waits are answered', async (t) => {
  const h = harness(t);
  await settle();
  const waiting = h.agent.request({ cmd: 'wait', state: 'up', timeoutMs: 600_000 });
  h.conns[0]!.down(sessionDown);
  await settle();
  await h.agent.stop();
  await h.run;
  assert.deepEqual(await waiting, { ok: false, error: 'timeout', state: 'down' });
  assert.equal(h.clock.size(), 0, 'no timer left to keep the process alive');
  assert.equal(existsSync(join(h.dir, 'ctl.sock')), false);
});

test('wait answers when the state is reached, or times out with the current state', async (t) => {
  const h = harness(t);
  await settle();
  const up = h.agent.request({ cmd: 'wait', state: 'up', timeoutMs: 20_000 });
  h.clock.advance(500);
  h.conns[0]!.up();
  assert.deepEqual(await up, { ok: true, state: 'up' });
  const down = h.agent.request({ cmd: 'wait', state: 'down', timeoutMs: 1000 });
  h.clock.advance(1000);
  assert.deepEqual(await down, { ok: false, error: 'timeout', state: 'up' });
});

test('a WAN address change redials at once from the new address, without goodbyes', async (t) => {
  const h = harness(t);
  await settle();
  h.conns[0]!.up();
  await settle();
  h.route.local = '192.0.2.3';
  h.netlinkEvent({ kind: 'address-removed' } as NetlinkEvent);
  h.netlinkEvent({ kind: 'address-added' } as NetlinkEvent);
  h.clock.advance(100);
  await settle();
  assert.equal(h.conns.length, 2);
  assert.equal(h.conns[0]!.stoppedWith, 150, 'the old address cannot say goodbye');
  assert.equal(h.conns[1]!.req.local, '192.0.2.3');
  assert.equal(h.agent.status().local?.address, '192.0.2.3');
  assert.ok(h.lines.some((l) => /local address changed from 192\.0\.2\.2 to 192\.0\.2\.3/.test(l.msg)));
});

test('WAN gone: the agent backs off, and dials as soon as a route to the SC is back', async (t) => {
  const h = harness(t, { reconnectInitial: 10, reconnectJitter: 0 });
  await settle();
  h.conns[0]!.up();
  await settle();
  // On a downed link the kernel's route lookup yields 0.0.0.0 rather than an error: that is no route too.
  h.route.local = '0.0.0.0';
  h.netlinkEvent({ kind: 'link-changed' } as NetlinkEvent);
  h.clock.advance(100);
  await settle();
  assert.ok(h.lines.some((l) => /local address changed from 192\.0\.2\.2 to \(none\)/.test(l.msg)));
  h.route.local = null;
  assert.ok(h.lines.some((l) => /transport down: no route to 192\.0\.2\.1/.test(l.msg)));
  assert.equal(h.conns.length, 1);
  // Events while still without a route do not cut the wait short.
  h.netlinkEvent({ kind: 'link-changed' } as NetlinkEvent);
  h.clock.advance(100);
  await settle();
  assert.equal(h.conns.length, 1);
  h.route.local = '192.0.2.2';
  h.netlinkEvent({ kind: 'link-changed' } as NetlinkEvent);
  h.clock.advance(100);
  await settle();
  assert.equal(h.conns.length, 2, 'dialled 200 ms into a 10 s backoff');
  assert.equal(h.conns[1]!.sc.address, '192.0.2.9', 'an unreachable SC rotates');
});

test('reload: a live setting applies without reconnecting; a protocol setting or new secret reconnects', async (t) => {
  const h = harness(t);
  await settle();
  h.conns[0]!.up();
  await settle();
  const base = resolveConfig({ sc: ['192.0.2.1', '192.0.2.9'], controlSocket: join(h.dir, 'ctl.sock'), reconnectInitial: 2, reconnectCap: 300, reconnectJitter: 0.5 }, {}).config;
  assert.equal(h.agent.reload({ ...base, logLevel: 'debug' }, {}), false);
  await h.agent.request({ cmd: 'status' });
  await settle();
  assert.ok(h.lines.some((l) => l.level === 20 && l.msg === 'control request'), 'debug lines appear after the reload');
  assert.equal(h.conns.length, 1);
  assert.equal(h.conns[0]!.stoppedWith, null);
  assert.equal(h.agent.reload({ ...base, logLevel: 'debug' }, { password: 'new' }), true, 'a changed secret needs a new login');
  await settle();
  assert.equal(h.conns.length, 2);
  assert.equal(h.conns[0]!.stoppedWith, 2400);
  h.conns[1]!.up();
  await settle();
  assert.equal(h.agent.reload({ ...base, logLevel: 'debug', helloInterval: 30 }, { password: 'new' }), true);
  await settle();
  assert.equal(h.conns.length, 3);
  assert.ok(h.lines.some((l) => /reconnecting now: configuration changed/.test(l.msg)));
});

test('the notify command runs on state changes and when the DNS servers change, not when they stay the same', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'agent-notify-'));
  const out = join(dir, 'calls');
  const script = join(dir, 'notify.sh');
  writeFileSync(script, `#!/bin/sh\necho "$1" >> ${out}\n`, { mode: 0o755 });
  const h = harness(t, { notifyCommand: script });
  const calls = () => (existsSync(out) ? readFileSync(out, 'utf8').trim().split('\n') : []);
  const quiet = async (n: number) => {
    const end = Date.now() + 5000;
    while (calls().length < n && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 150));
    return calls();
  };
  await settle();
  h.conns[0]!.up();
  const afterUp = await quiet(1);
  assert.equal(afterUp.at(-1), 'up');
  h.conns[0]!.req.installer.dns('ra', ['2001:db8::53'], []);
  await h.conns[0]!.req.installer.settled();
  const afterDns = await quiet(afterUp.length + 1);
  assert.equal(afterDns.length, afterUp.length + 1, 'one run for the DNS change');
  h.conns[0]!.req.installer.dns('ra', ['2001:db8::53'], []);
  await h.conns[0]!.req.installer.settled();
  assert.equal((await quiet(0)).length, afterDns.length, 'same servers: no run');
});

test('the notify command gets the status with the state (SOFTWIRE_STATUS), so it need not start a client to ask', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'agent-notify-status-'));
  const out = join(dir, 'status');
  const script = join(dir, 'notify.sh');
  writeFileSync(script, `#!/bin/sh\nprintf '%s' "$SOFTWIRE_STATUS" > ${out}.tmp && mv ${out}.tmp ${out}.$1\n`, { mode: 0o755 });
  const h = harness(t, { notifyCommand: script });
  await settle();
  h.conns[0]!.up();
  const end = Date.now() + 5000;
  while (!existsSync(`${out}.up`) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  const status = JSON.parse(readFileSync(`${out}.up`, 'utf8')) as { state: string; since: string };
  assert.equal(status.state, 'up');
  assert.equal(status.since, h.agent.status().since);
});

// --- IPsec step 0 (RFC 5571 5, RFC 3193): the agent's two call sites and the loss path ---

class FakeGuard implements IpsecGuard {
  readonly calls: string[] = [];
  next: IpsecUpResult = { ok: true, overhead: 45 };
  lost: (why: string) => void = () => {};
  async up(sc: { address: string }): Promise<IpsecUpResult> {
    this.calls.push(`up ${sc.address}`);
    return this.next;
  }
  async down(): Promise<void> {
    this.calls.push('down');
  }
  onLost(cb: (why: string) => void): void {
    this.lost = cb;
  }
  status(): IpsecStatus {
    return { mode: 'ikev2', phase: 'up', overhead: 45, sa: null, lastError: null, drops: {} };
  }
}

test('ipsec: the SA comes up before the dial and its overhead lowers the MTU; stop takes it down after the goodbyes', async (t) => {
  const g = new FakeGuard();
  const h = harness(t, {}, { ipsec: g });
  await settle();
  assert.deepEqual(g.calls, ['up 192.0.2.1']);
  assert.equal(h.conns.length, 1);
  assert.equal(h.conns[0]!.req.mtu, 1500 - 40 - 45, 'RFC 5571 5.2.1: ESP + NAT-T overhead taken off');
  assert.equal(h.agent.status().ipsec?.phase, 'up');
  await h.agent.stop();
  assert.ok(h.conns[0]!.stoppedWith !== null, 'L2TP goodbyes first');
  assert.equal(g.calls.at(-1), 'down');
});

test("ipsec: stop during a negotiation that hangs ends it (down cancels it, as charon's terminate does) instead of waiting for it", { timeout: 30_000 }, async (t) => {
  // Seen in the UML suite: IKEv1 behind a NAT with a wrong key retransmits for the whole
  // ipsecTimeout; a stop then must not queue the teardown behind that negotiation.
  class HangingGuard extends FakeGuard {
    private cancel: (() => void) | null = null;
    override up(sc: { address: string }): Promise<IpsecUpResult> {
      this.calls.push(`up ${sc.address}`);
      return new Promise((res) => (this.cancel = () => res({ ok: false, reason: 'IPsec: stopped', permanent: false })));
    }
    override async down(): Promise<void> {
      this.calls.push('down');
      this.cancel?.();
    }
  }
  const g = new HangingGuard();
  const h = harness(t, {}, { ipsec: g });
  await settle();
  assert.deepEqual(g.calls, ['up 192.0.2.1']);
  let stopped = false;
  const stop = h.agent.stop().then(() => (stopped = true));
  for (let i = 0; i < 20 && !stopped; i++) {
    h.clock.advance(500);
    await settle();
  }
  await Promise.race([stop, new Promise((r) => setTimeout(r, 2000))]);
  assert.equal(stopped, true, `stop did not finish: ${g.calls.join(', ')}`);
  assert.equal(g.calls[1], 'down');
  assert.equal(h.conns.length, 0, 'no dial after the stop');
});

test('exit means exit: a last release that never answers (IPsec teardown stuck in charon) holds the stop for FINISH_MS, not for ever', { timeout: 30_000 }, async (t) => {
  class StuckDownGuard extends FakeGuard {
    override down(): Promise<void> {
      this.calls.push('down');
      return new Promise(() => {});
    }
  }
  const g = new StuckDownGuard();
  const h = harness(t, {}, { ipsec: g });
  await settle();
  h.conns[0]!.up();
  await settle();
  let stopped = false;
  const stop = h.agent.stop().then(() => (stopped = true));
  for (let i = 0; i < 40 && !stopped; i++) {
    h.clock.advance(250);
    await settle();
  }
  await Promise.race([stop, new Promise((r) => setTimeout(r, 2000))]);
  assert.equal(stopped, true, `stop did not finish: ${g.calls.join(', ')}`);
  assert.ok(g.calls.includes('down'));
  assert.ok(h.lines.some((l) => /did not finish in time/.test(l.msg)), h.lines.map((l) => l.msg).join('\n'));
});

test('ipsec: a failed SA is an ipsec-layer failure, no dial, and a permanent one (wrong key) backs off at least cap/4', async (t) => {
  const g = new FakeGuard();
  g.next = { ok: false, reason: 'IPsec: the SC rejected our authentication: wrong pre-shared key (or identity) for 192.0.2.1', permanent: true };
  const h = harness(t, {}, { ipsec: g });
  await settle();
  assert.equal(h.conns.length, 0, 'no SCCRQ without the SA');
  assert.equal(h.agent.status().lastError?.layer, 'ipsec');
  assert.ok(h.lines.some((l) => /ipsec down: .*wrong pre-shared key.*retrying in 75\.0 s/.test(l.msg)), h.lines.map((l) => l.msg).join('\n'));
  h.clock.advance(74_999);
  await settle();
  assert.equal(g.calls.filter((c) => c.startsWith('up')).length, 1, 'no hot loop');
  h.clock.advance(1);
  await settle();
  assert.equal(g.calls.filter((c) => c.startsWith('up')).length, 2);
});

test('ipsec: an SA lost while up takes the softwire through the normal reconnect, SA torn down and brought up again', async (t) => {
  const g = new FakeGuard();
  const h = harness(t, { reconnectJitter: 0 }, { ipsec: g });
  await settle();
  h.conns[0]!.up();
  await settle();
  assert.equal(h.agent.state, 'up');
  g.lost('IPsec: the ESP SA protecting L2TP went down (deleted by the SC or a failed rekey)');
  await settle();
  assert.equal(h.agent.state, 'connecting');
  assert.equal(h.agent.status().lastError?.layer, 'ipsec');
  assert.deepEqual(g.calls, ['up 192.0.2.1', 'down']);
  h.clock.advance(2000);
  await settle();
  assert.deepEqual(g.calls, ['up 192.0.2.1', 'down', 'up 192.0.2.1']);
  assert.equal(h.conns.length, 2);
});

test('ipsec: a tunnel still lingering to retransmit StopCCN ends before the SA goes, so no L2TP leaves in cleartext', async (t) => {
  const g = new FakeGuard();
  const released: (() => void)[] = [];
  const order: string[] = [];
  const gDown = g.down.bind(g);
  g.down = async () => {
    order.push('ipsec down');
    await gDown();
  };
  class LingeringConn extends FakeConn {
    override dispose(): void {
      if (!this.disposed) order.push('tunnel disposed');
      super.dispose();
    }
    onReleased(cb: () => void): void {
      released.push(cb);
    }
  }
  const conns: LingeringConn[] = [];
  const h = harness(t, { reconnectJitter: 0 }, {
    ipsec: g,
    dial: async (r) => {
      const c = new LingeringConn(r);
      conns.push(c);
      return c;
    },
  });
  await settle();
  conns[0]!.up();
  await settle();
  conns[0]!.down(sessionDown);
  await settle();
  assert.equal(h.agent.state, 'connecting');
  assert.ok(conns[0]!.stoppedWith !== null, 'StopCCN sent while the SA is up');
  assert.equal(released.length, 1, 'the tunnel asked to linger');
  assert.deepEqual(order, ['tunnel disposed', 'ipsec down']);
  h.clock.advance(2000);
  await settle();
  assert.deepEqual(g.calls, ['up 192.0.2.1', 'down', 'up 192.0.2.1']);
  assert.equal(conns.length, 2);
});

test('a connection that throws when started is a failed attempt, not a dead agent', async (t) => {
  class Throwing extends FakeConn {
    override start(): void {
      throw new Error('TUN: Operation not permitted');
    }
  }
  const conns: FakeConn[] = [];
  const h = harness(t, { reconnectJitter: 0 }, {
    dial: async (r) => {
      const c = conns.length === 0 ? new Throwing(r) : new FakeConn(r);
      conns.push(c);
      return c;
    },
  });
  await settle();
  assert.ok(h.lines.some((l) => /transport down: cannot start: TUN: Operation not permitted; retrying in 2\.0 s/.test(l.msg)), h.lines.map((l) => l.msg).join('\n'));
  assert.equal(conns[0]!.stoppedWith, 300);
  h.clock.advance(2000);
  await settle();
  assert.equal(conns[1]!.started, true);
});

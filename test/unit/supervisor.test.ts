import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { DownInfo } from '../../src/agent/connection';
import {
  FAILED_STOP_MS,
  FORCED_CLEANUP_MS,
  GRACEFUL_STOP_MS,
  STOP_BUDGET_MS,
  Supervisor,
  type SupervisorInput,
  type SupervisorOutput,
  type TimerKey,
  WAN_STOP_MS,
} from '../../src/agent/supervisor';
import { seededRng } from '../../src/util/random';

/**
 * Every transition of the Supervisor core (supervisor.ts) with a fake clock: the rig
 * plays the driver (it answers effects on request and fires the timers the core arms)
 * and records every output. No sockets, no promises.
 */

type In = SupervisorInput extends infer I ? (I extends SupervisorInput ? Omit<I, 'now'> : never) : never;
type Of<T extends SupervisorOutput['type']> = Extract<SupervisorOutput, { type: T }>;

const SC1 = { address: '192.0.2.1', port: 1701 };
const SC2 = { address: '192.0.2.9', port: 1701 };
const sessionDown: DownInfo = { layer: 'session', reason: 'peer-cdn (result 3)' };
const EFFECTS = new Set(['resolve-endpoints', 'check-source', 'ipsec-up', 'dial', 'stop-connection', 'clear-installer', 'forced-cleanup']);

class Rig {
  readonly s: Supervisor;
  now = 1_000_000;
  readonly log: SupervisorOutput[] = [];
  /** Effects asked for and not answered yet, oldest first. */
  readonly effects: SupervisorOutput[] = [];
  readonly timers = new Map<TimerKey, number>();
  /** What the kernel answers for our source address (null: no route). */
  route: string | null = '192.0.2.2';
  heldForS = 0;

  constructor(o: { seed?: number; random?: () => number; ipsec?: boolean; jitter?: number; initialMs?: number } = {}) {
    this.s = new Supervisor({
      reconnect: { initialMs: o.initialMs ?? 2000, capMs: 300_000, jitter: o.jitter ?? 0.5 },
      random: o.random ?? seededRng(o.seed ?? 7),
      ipsec: o.ipsec ?? false,
      now: this.now,
    });
  }

  feed(i: In): SupervisorOutput[] {
    const out = this.s.handle({ ...i, now: this.now } as SupervisorInput);
    for (const o of out) {
      this.log.push(o);
      if (EFFECTS.has(o.type)) this.effects.push(o);
      if (o.type === 'arm-timer') this.timers.set(o.key, o.at);
      if (o.type === 'cancel-timer') this.timers.delete(o.key);
    }
    return out;
  }

  /** Moves the clock, firing due timers in order. */
  advance(ms: number): SupervisorOutput[] {
    const end = this.now + ms;
    const out: SupervisorOutput[] = [];
    for (;;) {
      const due = [...this.timers].filter(([, at]) => at <= end).sort((a, b) => a[1] - b[1])[0];
      if (!due) break;
      this.timers.delete(due[0]);
      this.now = Math.max(this.now, due[1]);
      out.push(...this.feed({ type: 'timer', key: due[0] }));
    }
    this.now = end;
    return out;
  }

  /** Answers the oldest effect the way a healthy world would. */
  answer(): SupervisorOutput[] {
    const e = this.effects.shift();
    assert.ok(e, 'an effect to answer');
    switch (e.type) {
      case 'resolve-endpoints':
        return this.feed({ type: 'resolved', endpoints: [SC1, SC2] });
      case 'check-source':
        return this.feed({ type: 'source-address', token: e.token, address: this.route, error: this.route ? undefined : 'connect ENETUNREACH' });
      case 'ipsec-up':
        return this.feed({ type: 'ipsec-up', result: { ok: true, overhead: 45 } });
      case 'dial':
        return this.feed({ type: 'dialled', id: e.id, mtu: 1460 });
      case 'stop-connection':
        return this.feed({ type: 'connection-stopped', id: e.id });
      case 'clear-installer':
        return this.feed({ type: 'teardown-done', id: e.id, heldForS: e.holdLan ? this.heldForS : 0 });
      case 'forced-cleanup':
        return this.feed({ type: 'forced-cleanup-done' });
      default:
        throw new Error(`not an effect: ${e.type}`);
    }
  }

  /** Answers effects until the core reaches `phase` (or none is left). */
  until(phase: string): void {
    for (let i = 0; i < 20 && this.s.phaseName !== phase; i++) this.answer();
    assert.equal(this.s.phaseName, phase);
  }

  answerAll(): void {
    for (let i = 0; i < 50 && this.effects.length; i++) this.answer();
  }

  /** The running attempt's id (from the last dial). */
  get id(): number {
    return this.last('dial')!.id;
  }

  last<T extends SupervisorOutput['type']>(type: T, from: SupervisorOutput[] = this.log): Of<T> | undefined {
    return from.filter((o): o is Of<T> => o.type === type).at(-1);
  }

  all<T extends SupervisorOutput['type']>(type: T, from: SupervisorOutput[] = this.log): Of<T>[] {
    return from.filter((o): o is Of<T> => o.type === type);
  }

  /** Started and up. */
  up(): this {
    this.feed({ type: 'start' });
    this.until('running');
    this.feed({ type: 'connection-up', id: this.id });
    return this;
  }

  /** Output log since `mark`. */
  since(mark: number): SupervisorOutput[] {
    return this.log.slice(mark);
  }
}

const types = (o: SupervisorOutput[]) => o.map((x) => x.type);

describe('an attempt', () => {
  test('first dial: connecting, resolve, source address, dial, start; up is reported once the connection says so', () => {
    const r = new Rig();
    assert.deepEqual(types(r.feed({ type: 'start' })), ['set-state', 'notify', 'resolve-endpoints']);
    assert.equal(r.s.state, 'connecting');
    const c = r.answer();
    assert.deepEqual(c, [{ type: 'check-source', token: (c[0] as Of<'check-source'>).token, sc: SC1 }]);
    const d = r.answer()[0] as Of<'dial'>;
    assert.deepEqual({ ...d, id: 0 }, { type: 'dial', id: 0, sc: SC1, local: '192.0.2.2', ipsecOverhead: 0 });
    assert.deepEqual(r.answer(), [
      { type: 'progress', layer: 'agent', message: 'dialling SC 192.0.2.1:1701 from 192.0.2.2 (MTU 1460)' },
      { type: 'start-connection', id: d.id },
    ]);
    assert.deepEqual(r.feed({ type: 'connection-up', id: d.id }), [
      { type: 'set-state', state: 'up', since: r.now },
      { type: 'notify', state: 'up' },
    ]);
    assert.equal(r.s.since, r.now);
  });

  test('with IPsec: the SA comes up before the dial and its overhead goes to the dial; a failed SA is an ipsec failure', () => {
    const r = new Rig({ ipsec: true });
    r.feed({ type: 'start' });
    r.answer();
    const out = r.answer();
    assert.deepEqual(types(out), ['progress', 'ipsec-up']);
    assert.equal(r.answer().find((o) => o.type === 'dial')?.type, 'dial');
    assert.equal(r.last('dial')!.ipsecOverhead, 45);
    const f = new Rig({ ipsec: true });
    f.feed({ type: 'start' });
    f.answer();
    f.answer();
    f.effects.shift();
    const o = f.feed({ type: 'ipsec-up', result: { ok: false, reason: 'wrong pre-shared key', permanent: true } });
    assert.equal(o[0]!.type, 'ipsec-down');
    assert.equal(f.s.lastError?.layer, 'ipsec');
    assert.equal(f.timers.get('wait'), f.now + 75_000, 'will not fix itself: at least a quarter of the cap');
  });

  test('a failure before the connection (no SC address, no route, dial failed) backs off as a transport failure', () => {
    for (const [name, fail] of [
      ['no address', (r: Rig) => (r.effects.shift(), r.feed({ type: 'resolved', endpoints: [] }))],
      ['no route', (r: Rig) => ((r.route = null), r.answer(), r.answer())],
      ['unspecified source', (r: Rig) => ((r.route = '0.0.0.0'), r.answer(), r.answer())],
      ['dial failed', (r: Rig) => (r.answer(), r.answer(), r.feed({ type: 'dial-failed', id: (r.effects.shift() as Of<'dial'>).id, reason: 'bind EADDRNOTAVAIL' }))],
    ] as const) {
      const r = new Rig();
      r.feed({ type: 'start' });
      fail(r);
      assert.equal(r.s.phaseName, 'backoff', name);
      assert.equal(r.s.lastError?.layer, 'transport', name);
      assert.match(r.last('progress')!.message, /^transport down: .*retrying in/, name);
    }
  });
});

describe('backoff and the SC list', () => {
  test('down -> short goodbye -> LAN kept -> jittered backoff (seeded random) -> redial; up resets it', () => {
    const r = new Rig({ seed: 42 });
    const rnd = seededRng(42);
    r.up();
    const id = r.id;
    assert.deepEqual(r.feed({ type: 'connection-down', id, info: sessionDown }), [
      { type: 'stop-connection', id, budgetMs: FAILED_STOP_MS, release: false, graceful: false },
    ]);
    assert.deepEqual(r.answer(), [{ type: 'clear-installer', id, holdLan: true }]);
    const m = r.log.length;
    r.answer();
    const delay1 = 2000 * (1 - 0.5 * rnd());
    assert.deepEqual(types(r.since(m)), ['end-attempt', 'set-state', 'notify', 'progress', 'arm-timer']);
    assert.equal(r.last('progress')!.message, `session down: peer-cdn (result 3); retrying in ${(delay1 / 1000).toFixed(1)} s`);
    assert.equal(r.timers.get('wait'), r.now + delay1);
    assert.equal(r.s.reconnects, 1);
    assert.deepEqual(r.s.lastError, { at: r.now, layer: 'session', message: 'peer-cdn (result 3)' });
    assert.deepEqual(types(r.advance(delay1 - 1)), []);
    assert.deepEqual(types(r.advance(1)), ['resolve-endpoints'], 'no "retrying now" line for an elapsed backoff');
    r.until('running');
    r.feed({ type: 'connection-down', id: r.id, info: sessionDown });
    r.answerAll();
    const delay2 = 4000 * (1 - 0.5 * rnd());
    assert.equal(r.timers.get('wait'), r.now + delay2, 'the base doubles');
    r.advance(delay2);
    r.until('running');
    r.feed({ type: 'connection-up', id: r.id });
    r.feed({ type: 'connection-down', id: r.id, info: sessionDown });
    r.answerAll();
    assert.equal(r.timers.get('wait'), r.now + 2000 * (1 - 0.5 * rnd()), 'back to the initial delay after being up');
  });

  test('the policy table through the core: permanent floor, try another SC now, then backoff; unreachable rotates; others keep the SC', () => {
    const rows: { info: DownInfo; wait: number; next: typeof SC1 }[] = [
      { info: { layer: 'auth', reason: 'authentication failed', permanent: true }, wait: 75_000, next: SC1 },
      { info: { layer: 'tunnel', reason: 'peer-stopccn (result 2, error 7)', retryElsewhere: true }, wait: 0, next: SC2 },
      { info: { layer: 'ppp', reason: 'lcp dead' }, wait: 2000, next: SC1 },
    ];
    for (const row of rows) {
      const r = new Rig({ jitter: 0 });
      r.up();
      r.feed({ type: 'connection-down', id: r.id, info: row.info });
      r.answerAll();
      assert.equal(r.timers.get('wait'), r.now + row.wait, row.info.reason);
      r.advance(row.wait);
      r.answer();
      assert.deepEqual(r.last('check-source')!.sc, row.next, row.info.reason);
    }
    // Both SCs said "try another": now the backoff applies.
    const r = new Rig({ jitter: 0 });
    r.up();
    const elsewhere: DownInfo = { layer: 'tunnel', reason: 'go away', retryElsewhere: true };
    r.feed({ type: 'connection-down', id: r.id, info: elsewhere });
    r.answerAll();
    r.advance(0);
    r.until('running');
    r.feed({ type: 'connection-down', id: r.id, info: elsewhere });
    r.answerAll();
    assert.equal(r.timers.get('wait'), r.now + 2000);
  });
});

describe('operator and stop', () => {
  /** Drives a fresh rig to `phase`. */
  function at(phase: string, o: { ipsec?: boolean } = {}): Rig {
    const r = new Rig({ ipsec: o.ipsec });
    if (phase === 'idle') return r;
    r.feed({ type: 'start' });
    if (phase === 'resolving') return r;
    if (['source', 'ipsec', 'dialling', 'running'].includes(phase)) {
      r.until(phase);
      if (phase === 'running') r.feed({ type: 'connection-up', id: r.id });
      return r;
    }
    r.up();
    if (phase === 'admin-down') {
      r.feed({ type: 'admin', cmd: 'down' });
      r.answerAll();
      return r;
    }
    r.feed({ type: 'connection-down', id: r.id, info: sessionDown });
    if (phase !== 'stopping-conn') r.until(phase);
    return r;
  }
  const PHASES = ['idle', 'resolving', 'source', 'ipsec', 'dialling', 'running', 'stopping-conn', 'clearing', 'backoff', 'admin-down'];

  test('stop in every phase ends in down and done, is never lost, and never starts a connection', () => {
    for (const phase of PHASES) {
      const r = at(phase, { ipsec: phase === 'ipsec' });
      assert.equal(r.s.phaseName, phase);
      const m = r.log.length;
      const wasRunning = phase === 'running';
      r.feed({ type: 'stop' });
      r.feed({ type: 'stop' }); // idempotent
      r.answerAll();
      const after = r.since(m);
      assert.equal(r.s.phaseName, 'done', phase);
      assert.equal(r.s.state, 'down', phase);
      assert.equal(after.filter((o) => o.type === 'done').length, 1, phase);
      assert.equal(r.all('start-connection', after).length, 0, `${phase}: nothing started after stop`);
      assert.equal(r.all('notify', after).length, 0, `${phase}: no notify while stopping`);
      if (wasRunning) assert.deepEqual(r.last('stop-connection', after), { type: 'stop-connection', id: r.id, budgetMs: GRACEFUL_STOP_MS, release: true, graceful: true });
      if (phase === 'dialling') assert.equal(r.all('dispose-connection', after).length, 1, 'a dial that completes after the stop is disposed unstarted');
      assert.equal(r.timers.size, 0, `${phase}: no timer left`);
      assert.deepEqual(r.feed({ type: 'start' }), [], 'no start after the end');
    }
  });

  test('the stop budget: a teardown that does not finish in time is cut short, then down and done; late answers are ignored', () => {
    const r = at('running');
    r.feed({ type: 'stop' });
    assert.equal(r.timers.get('stop'), r.now + STOP_BUDGET_MS);
    assert.deepEqual(r.advance(STOP_BUDGET_MS - 1), []);
    assert.deepEqual(r.advance(1), [
      { type: 'log', level: 'warn', message: 'shutdown budget spent; releasing what is left without goodbyes', fields: undefined },
      { type: 'arm-timer', key: 'forced', at: r.now + FORCED_CLEANUP_MS },
      { type: 'forced-cleanup' },
    ]);
    assert.deepEqual(types(r.feed({ type: 'forced-cleanup-done' })), ['set-state', 'cancel-timer', 'done']);
    assert.deepEqual(r.feed({ type: 'connection-stopped', id: r.id }), []);
    assert.equal(r.s.state, 'down');
    assert.equal(r.timers.size, 0);
    // A release that hangs (a kernel that does not answer) does not hold the exit either.
    const h = at('running');
    h.feed({ type: 'stop' });
    h.advance(STOP_BUDGET_MS);
    assert.deepEqual(types(h.advance(FORCED_CLEANUP_MS)), ['log', 'set-state', 'done']);
    assert.deepEqual(h.feed({ type: 'forced-cleanup-done' }), []);
  });

  test('admin down in every phase: down with a graceful, releasing goodbye, no dial until up; up and reconnect dial at once', () => {
    for (const phase of PHASES.filter((p) => p !== 'idle' && p !== 'admin-down')) {
      const r = at(phase, { ipsec: phase === 'ipsec' });
      const m = r.log.length;
      assert.deepEqual(r.last('reply', r.feed({ type: 'admin', cmd: 'down' })), { type: 'reply', message: 'taking the softwire down' }, phase);
      r.answerAll();
      const after = r.since(m);
      assert.equal(r.s.phaseName, 'admin-down', phase);
      assert.equal(r.s.state, 'down', phase);
      assert.equal(r.all('start-connection', after).length, 0, phase);
      if (phase === 'running') assert.equal(r.last('stop-connection', after)!.budgetMs, GRACEFUL_STOP_MS);
      if (phase === 'running') assert.equal(r.last('clear-installer', after)!.holdLan, false, 'admin down releases the LAN');
      assert.equal(r.last('reply', r.feed({ type: 'admin', cmd: 'down' }))!.message, 'already down');
      assert.deepEqual(r.advance(3600_000), [], `${phase}: nothing while administratively down`);
      assert.equal(r.last('reply', r.feed({ type: 'admin', cmd: 'up' }))!.message, 'bringing the softwire up');
      assert.equal(r.s.phaseName, 'resolving', phase);
    }
    const r = at('running');
    assert.equal(r.last('reply', r.feed({ type: 'admin', cmd: 'up' }))!.message, 'already up');
    const m = r.log.length;
    assert.equal(r.last('reply', r.feed({ type: 'admin', cmd: 'reconnect' }))!.message, 'reconnecting');
    assert.equal(r.last('stop-connection')!.budgetMs, GRACEFUL_STOP_MS);
    r.answer();
    r.answer();
    assert.ok(r.all('progress', r.since(m)).some((p) => p.message === 'reconnecting now: requested by operator'));
    assert.equal(r.s.phaseName, 'resolving', 'reconnect: no backoff');
    // Reconnect during a backoff dials at once and starts the backoff over.
    const b = at('backoff');
    b.feed({ type: 'admin', cmd: 'reconnect' });
    assert.equal(b.s.phaseName, 'resolving');
    assert.equal(b.last('progress')!.message, 'retrying now: requested by operator');
  });

  test('outcomes that arrive while nothing waits: the strongest is kept; a connection down from an attempt that ended is not', () => {
    const r = at('source');
    r.feed({ type: 'reload', changed: ['mtu'], secretsChanged: false, reconnect: { initialMs: 2000, capMs: 300_000, jitter: 0.5 } });
    r.feed({ type: 'admin', cmd: 'down' });
    r.feed({ type: 'reload', changed: ['mtu'], secretsChanged: false, reconnect: { initialMs: 2000, capMs: 300_000, jitter: 0.5 } });
    r.answerAll();
    assert.equal(r.s.phaseName, 'admin-down', 'admin-down outranks the reconnects around it');
    assert.equal(r.s.reconnects, 0);
    assert.ok(!r.all('progress').some((p) => /reconnecting now/.test(p.message)));
    // A WAN reconnect after an admin down, both during a teardown: the admin down is kept.
    const w = at('clearing');
    w.feed({ type: 'admin', cmd: 'down' });
    w.route = '192.0.2.3';
    w.feed({ type: 'wan-event' });
    w.advance(100);
    const m = w.log.length;
    // The route lookup answers before the teardown is over.
    w.effects.unshift(...w.effects.splice(w.effects.findIndex((e) => e.type === 'check-source'), 1));
    w.answer();
    w.answerAll();
    assert.equal(w.s.phaseName, 'admin-down');
    assert.ok(!w.all('progress', w.since(m)).some((p) => /retrying now/.test(p.message)), 'not taken as a WAN reconnect');
    // A connection's own down while its teardown runs belongs to the attempt just ended.
    const t = at('running');
    const id = t.id;
    t.feed({ type: 'admin', cmd: 'reconnect' });
    assert.deepEqual(t.feed({ type: 'connection-down', id, info: sessionDown }), []);
    t.answer();
    t.answer();
    assert.equal(t.s.phaseName, 'resolving', 'the reconnect goes ahead, no backoff for the old attempt');
    assert.equal(t.s.lastError, null);
    // A down before the connection started (during the dial) is dropped too.
    const d = at('dialling');
    assert.deepEqual(d.feed({ type: 'connection-down', id: (d.effects[0] as Of<'dial'>).id, info: sessionDown }), []);
    assert.equal(d.all('start-connection', d.answer()).length, 1);
  });

  test('reload: live keys apply without a reconnect; protocol keys and secrets reconnect gracefully, not while administratively down', () => {
    const settings = { initialMs: 2000, capMs: 300_000, jitter: 0.5 };
    const r = at('running');
    assert.deepEqual(types(r.feed({ type: 'reload', changed: ['logLevel', 'reconnectCap'], secretsChanged: false, reconnect: settings })), ['log']);
    assert.equal(r.last('log')!.message, 'configuration reloaded');
    const o = r.feed({ type: 'reload', changed: [], secretsChanged: true, reconnect: settings });
    assert.equal(r.last('log', o)!.message, 'configuration reloaded; reconnecting');
    assert.deepEqual(r.last('stop-connection', o), { type: 'stop-connection', id: r.id, budgetMs: GRACEFUL_STOP_MS, release: false, graceful: true });
    r.answer();
    r.answer();
    assert.equal(r.last('progress')!.message, 'reconnecting now: configuration changed');
    const a = at('admin-down');
    a.feed({ type: 'reload', changed: ['helloInterval'], secretsChanged: false, reconnect: settings });
    assert.equal(a.s.phaseName, 'admin-down');
  });
});

describe('WAN changes', () => {
  test('an address change while up redials at once from the new address, without goodbyes; the same address changes nothing', () => {
    const r = new Rig().up();
    const id = r.id;
    assert.deepEqual(r.feed({ type: 'wan-event' }), [{ type: 'arm-timer', key: 'wan-check', at: r.now + 100 }]);
    assert.deepEqual(r.feed({ type: 'wan-event' }), [], 'debounced');
    const c = r.advance(100);
    assert.deepEqual(types(c), ['check-source']);
    r.answer();
    assert.equal(r.s.phaseName, 'running', 'same address: nothing');
    r.route = '192.0.2.3';
    r.feed({ type: 'wan-event' });
    r.advance(100);
    const o = r.answer();
    assert.deepEqual(o[0], { type: 'progress', layer: 'wan', message: 'local address changed from 192.0.2.2 to 192.0.2.3' });
    assert.deepEqual(o[1], { type: 'stop-connection', id, budgetMs: WAN_STOP_MS, release: false, graceful: false });
    r.until('running');
    assert.equal(r.last('dial')!.local, '192.0.2.3');
    assert.equal(r.s.reconnects, 1);
    assert.equal(r.s.lastError, null, 'a WAN change is no failure');
  });

  test('WAN gone during a transport backoff: looks again 250 ms x try up to 4 times, and dials as soon as the route is back', () => {
    const r = new Rig({ jitter: 0, initialMs: 10_000 });
    r.route = null;
    r.feed({ type: 'start' });
    r.until('backoff');
    r.feed({ type: 'wan-event' });
    r.advance(100);
    const rechecks: number[] = [];
    for (let i = 0; i < 6; i++) {
      assert.ok(r.effects.length <= 1);
      if (r.effects.length) r.answer();
      const at = r.timers.get('wan-recheck');
      if (at === undefined) break;
      rechecks.push(at - r.now);
      r.advance(at - r.now);
    }
    assert.deepEqual(rechecks, [250, 500, 750, 1000]);
    assert.equal(r.s.phaseName, 'backoff');
    r.route = '192.0.2.2';
    r.feed({ type: 'wan-event' });
    r.advance(100);
    assert.deepEqual(r.last('check-source')!.sc, SC2, 'an unreachable SC rotates');
    r.answer();
    assert.equal(r.last('progress')!.message, 'retrying now: WAN has a route to 192.0.2.9 again (from 192.0.2.2)');
    assert.equal(r.s.phaseName, 'resolving');
    assert.equal(r.timers.has('wait'), false);
  });

  test('a WAN event during a backoff for another reason (session, auth) keeps the backoff', () => {
    const r = new Rig().up();
    r.feed({ type: 'connection-down', id: r.id, info: sessionDown });
    r.until('backoff');
    r.feed({ type: 'wan-event' });
    assert.deepEqual(types(r.advance(100)), []);
    assert.equal(r.s.phaseName, 'backoff');
  });
});

describe('LAN hold and notify', () => {
  function held(): Rig {
    const r = new Rig().up();
    r.heldForS = 600;
    r.feed({ type: 'connection-down', id: r.id, info: sessionDown });
    r.answer();
    const o = r.answer();
    assert.deepEqual(o.slice(0, 2), [
      { type: 'hold-lan', forS: 600 },
      { type: 'arm-timer', key: 'lan-hold', at: r.now + 600_000 },
    ]);
    return r;
  }

  test('a reconnect holds the LAN; a prefix from the next lease takes it over; else it is released at expiry', () => {
    const r = held();
    r.advance(60_000);
    r.until('running');
    const p = r.feed({ type: 'connection-prefix', id: r.id, prefix: { prefix: '2001:db8:1::', length: 56 } as never });
    assert.deepEqual(types(p), ['cancel-timer', 'save-prefix', 'notify']);
    assert.deepEqual(types(r.advance(3600_000)), [], 'no release once a lease owns the LAN');
    const e = held();
    assert.deepEqual(types(e.advance(600_000)).filter((t) => t === 'release-lan'), ['release-lan']);
  });

  test('a held LAN is released on stop and on admin down', () => {
    const s = held();
    s.feed({ type: 'stop' });
    assert.equal(s.all('release-lan').length, 1);
    const a = held();
    a.feed({ type: 'admin', cmd: 'down' });
    assert.equal(a.all('release-lan').length, 1);
    assert.equal(a.timers.has('lan-hold'), false);
  });

  test('notify: on state changes, address progress and degraded while up; never while tearing down or stopping', () => {
    const r = new Rig().up();
    assert.deepEqual(types(r.feed({ type: 'connection-progress', id: r.id, layer: 'ipv6', message: 'address' })), ['progress', 'notify']);
    assert.deepEqual(types(r.feed({ type: 'connection-progress', id: r.id, layer: 'tunnel', message: 'x' })), ['progress']);
    assert.deepEqual(types(r.feed({ type: 'connection-degraded', id: r.id })), ['notify']);
    assert.deepEqual(types(r.feed({ type: 'notify-request' })), ['notify']);
    r.feed({ type: 'connection-down', id: r.id, info: sessionDown });
    assert.equal(r.s.state, 'up', 'still up while the teardown runs');
    assert.deepEqual(types(r.feed({ type: 'notify-request' })), [], 'tearing down');
    assert.deepEqual(types(r.feed({ type: 'connection-degraded', id: r.id })), []);
    r.answer();
    assert.deepEqual(types(r.feed({ type: 'connection-progress', id: r.id, layer: 'ipv6', message: 'address removed' })), ['progress']);
    const done = r.answer();
    assert.deepEqual(r.last('notify', done), { type: 'notify', state: 'connecting' }, 'the state after the teardown is the news');
    r.feed({ type: 'stop' });
    assert.deepEqual(r.feed({ type: 'notify-request' }), []);
  });
});

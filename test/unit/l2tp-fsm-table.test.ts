/**
 * The LAC's tunnel and session transition tables (src/l2tp/fsm.ts), cell by cell, run
 * against the real Lac: reach the state through real inputs, inject the event, then check
 * the next state, the table actions taken, and that each action had its observable effect
 * (messages sent, events reported, timers armed, drops counted). A second part checks that
 * real inputs are classified into the events the tables expect.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  type AvpValues,
  decodeMessage,
  type DownAction,
  encodeControl,
  encodeControlBody,
  encodeData,
  encodeRawAvps,
  Lac,
  type LacAction,
  type LacConfig,
  type MessageName,
  MessageType,
  rawAvps,
  type RequiredValues,
  SESSION_STATES,
  type SessionState,
  TIMER_HELLO,
  TIMER_LINGER,
  TUNNEL_STATES,
  type TunnelState,
} from '../../src/l2tp';
import { SESSION_EVENTS, type SessionEvent, TUNNEL_EVENTS, type TunnelEvent } from '../../src/l2tp/fsm';
import type { SessionContext } from '../../src/l2tp/session';
import type { TunnelContext } from '../../src/l2tp/tunnel';

const SC_TUNNEL = 40;
const SC_SESSION = 41;

/** A minimal SC: acknowledges in order and builds control messages with the right Ns/Nr. */
class Sc {
  ns = 0;
  nr = 0;
  lacSession = 0;
  constructor(readonly lac: Lac) {}
  take(acts: LacAction[]): LacAction[] {
    for (const a of acts) {
      if (a.type !== 'send') continue;
      const m = decodeMessage(a.bytes);
      if (m.kind !== 'control' || !m.message) continue;
      if (m.ns === this.nr) this.nr = (this.nr + 1) & 0xffff;
      if (m.message.name === 'ICRQ') this.lacSession = m.message.values.assignedSessionId!;
    }
    return acts;
  }
  body(body: Uint8Array, sessionId = 0): Uint8Array {
    return encodeControl({ tunnelId: this.lac.localTunnelId, sessionId, ns: this.ns++, nr: this.nr }, body);
  }
  msg<K extends MessageName>(name: K, values: Omit<RequiredValues<K>, 'messageType'>, sessionId = 0): Uint8Array {
    return this.body(encodeControlBody(name, values), sessionId);
  }
  sccrp(extra: Partial<AvpValues> = {}): Uint8Array {
    return this.msg('SCCRP', { ...SCCRP_VALUES, ...extra });
  }
  send(bytes: Uint8Array): LacAction[] {
    return this.take(this.lac.receive(bytes, 'sc'));
  }
  /** ZLBs until everything the LAC sent is acknowledged (its window lets queued messages out meanwhile). */
  ackAll(): void {
    for (let i = 0; i < 8 && this.lac.status().tunnel.unacknowledged > 0; i++) {
      this.send(encodeControl({ tunnelId: this.lac.localTunnelId, sessionId: 0, ns: this.ns, nr: this.nr }, new Uint8Array(0)));
    }
  }
}

const SCCRP_VALUES: Omit<RequiredValues<'SCCRP'>, 'messageType'> = {
  protocolVersion: { version: 1, revision: 0 },
  framingCapabilities: { sync: true, async: true },
  hostName: 'lns',
  assignedTunnelId: SC_TUNNEL,
};

function newLac(cfg: Partial<LacConfig> = {}): { lac: Lac; sc: Sc } {
  let seed = 7;
  const lac = new Lac({ hostName: 'si', random: (n) => new Uint8Array(n).map(() => (seed = (seed * 73 + 41) & 0xff)), ...cfg });
  return { lac, sc: new Sc(lac) };
}

// ------------------------------------------------------------------ tunnel table

type TunnelRow = [TunnelState, TunnelEvent, TunnelState, string];

// '-': the event is ignored in that state (no state change, no action, no output).
const TUNNEL_ROWS: TunnelRow[] = [
  ['idle', 'Open', 'wait-ctl-reply', 'sccrq'],
  ['idle', 'Close', 'idle', '-'],
  ['idle', 'Abort', 'closed', ''],
  ['idle', 'RSCCRP', 'idle', '-'],
  ['idle', 'RStopCCN', 'idle', '-'],
  ['idle', 'TO-quiet', 'idle', '-'],
  ['idle', 'TO-busy', 'idle', '-'],
  ['idle', 'Acked', 'idle', '-'],
  ['idle', 'Linger', 'idle', '-'],
  ['idle', 'Failed', 'idle', '-'],

  ['wait-ctl-reply', 'Open', 'wait-ctl-reply', '-'],
  ['wait-ctl-reply', 'Close', 'closing', 'stopccn,down'],
  ['wait-ctl-reply', 'Abort', 'closed', 'down,finish'],
  ['wait-ctl-reply', 'RSCCRP', 'established', 'scccn,up,arm,session'],
  ['wait-ctl-reply', 'RStopCCN', 'closing', 'zlb,down,linger'],
  ['wait-ctl-reply', 'TO-quiet', 'wait-ctl-reply', '-'],
  ['wait-ctl-reply', 'TO-busy', 'wait-ctl-reply', '-'],
  ['wait-ctl-reply', 'Acked', 'wait-ctl-reply', '-'],
  ['wait-ctl-reply', 'Linger', 'wait-ctl-reply', '-'],
  ['wait-ctl-reply', 'Failed', 'closed', 'down,finish'],

  ['established', 'Open', 'established', '-'],
  ['established', 'Close', 'closing', 'stopccn,down'],
  ['established', 'Abort', 'established', '-'],
  ['established', 'RSCCRP', 'established', 'drop'],
  ['established', 'RStopCCN', 'closing', 'zlb,down,linger'],
  ['established', 'TO-quiet', 'established', 'hello,arm'],
  ['established', 'TO-busy', 'established', 'arm'],
  ['established', 'Acked', 'established', '-'],
  ['established', 'Linger', 'established', '-'],
  ['established', 'Failed', 'closed', 'down,finish'],

  ['closing', 'Open', 'closing', '-'],
  ['closing', 'Close', 'closing', '-'],
  ['closing', 'Abort', 'closing', '-'],
  ['closing', 'RSCCRP', 'closing', '-'],
  ['closing', 'RStopCCN', 'closing', '-'],
  ['closing', 'TO-quiet', 'closing', '-'],
  ['closing', 'TO-busy', 'closing', '-'],
  ['closing', 'Acked', 'closing', 'linger'],
  ['closing', 'Linger', 'closed', 'finish'],
  ['closing', 'Failed', 'closed', 'finish'],

  ['closed', 'Open', 'closed', '-'],
  ['closed', 'Close', 'closed', '-'],
  ['closed', 'Abort', 'closed', '-'],
  ['closed', 'RSCCRP', 'closed', '-'],
  ['closed', 'RStopCCN', 'closed', '-'],
  ['closed', 'TO-quiet', 'closed', '-'],
  ['closed', 'TO-busy', 'closed', '-'],
  ['closed', 'Acked', 'closed', '-'],
  ['closed', 'Linger', 'closed', '-'],
  ['closed', 'Failed', 'closed', '-'],
];

/** Real inputs into each tunnel state (autoSession on, so established also has a call placed). */
function reachTunnel(state: TunnelState): { lac: Lac; sc: Sc } {
  const h = newLac();
  const { lac, sc } = h;
  if (state !== 'idle') sc.take(lac.open());
  if (state === 'established' || state === 'closing') sc.send(sc.sccrp());
  if (state === 'closing') sc.take(lac.close());
  if (state === 'closed') lac.close(); // before the SCCRP: nothing to address a StopCCN to
  // An open send window, so that what an action sends leaves at once (closing waits for its ack).
  if (state === 'wait-ctl-reply' || state === 'established') sc.ackAll();
  assert.equal(lac.status().tunnel.state, state, `path into ${state}`);
  return h;
}

function tunnelContext(lac: Lac, ev: TunnelEvent): TunnelContext {
  const down = (reason: DownAction['reason'], fromPeer = false): DownAction => ({ type: 'down', layer: 'tunnel', reason, ...(fromPeer ? { resultCode: 1 } : {}) });
  switch (ev) {
    case 'Close':
      return { teardown: { reason: 'local-close', result: 1 }, down: down('local-close') };
    case 'Abort':
      return { down: down('local-close') };
    case 'RSCCRP':
      // As the classifier does before judging the SCCRP.
      if (lac.fsm.tunnel.remoteId === undefined) lac.fsm.tunnel.learnRemote(SC_TUNNEL);
      return { values: { ...SCCRP_VALUES, messageType: MessageType.SCCRP } };
    case 'RStopCCN':
      return { down: down('peer-stopccn', true) };
    case 'Failed':
      return { down: down('max-retries') };
    default:
      return {};
  }
}

const sentNames = (out: LacAction[]): string[] =>
  out.flatMap((a) => {
    if (a.type !== 'send') return [];
    const m = decodeMessage(a.bytes);
    return m.kind === 'control' ? [m.message?.name ?? 'ZLB'] : [];
  });

/** Each table action's observable effect, compared as ordered lists. */
function checkTunnelEffects(actions: string[], out: LacAction[], dropsBefore: number, lac: Lac): void {
  const msg: Record<string, string> = { sccrq: 'SCCRQ', scccn: 'SCCCN', stopccn: 'StopCCN', hello: 'HELLO', zlb: 'ZLB', session: 'ICRQ' };
  assert.deepEqual(
    sentNames(out),
    actions.flatMap((a) => (msg[a] ? [msg[a]] : [])),
    'messages sent',
  );
  const reported = out.flatMap((a) => (a.type === 'tunnel-up' ? ['up'] : a.type === 'down' && a.layer === 'tunnel' ? ['down'] : a.type === 'closed' ? ['finish'] : []));
  assert.deepEqual(
    reported,
    actions.filter((a) => a === 'up' || a === 'down' || a === 'finish'),
    'events reported',
  );
  const timers = out.flatMap((a) => (a.type === 'timer-start' && a.timer === TIMER_HELLO ? ['arm'] : a.type === 'timer-start' && a.timer === TIMER_LINGER ? ['linger'] : []));
  assert.deepEqual(
    timers,
    actions.filter((a) => a === 'arm' || a === 'linger'),
    'timers armed',
  );
  const dropped = (lac.status().counters.drops['unexpected-message'] ?? 0) - dropsBefore;
  assert.equal(dropped, actions.includes('drop') ? 1 : 0, 'unexpected messages counted');
}

describe('tunnel table (RFC 2661 7.2, LAC side)', () => {
  test('the rows cover every state/event cell exactly once', () => {
    assert.equal(TUNNEL_ROWS.length, TUNNEL_STATES.length * TUNNEL_EVENTS.length);
    assert.equal(new Set(TUNNEL_ROWS.map(([s, e]) => `${s}|${e}`)).size, TUNNEL_ROWS.length);
  });

  for (const [from, ev, next, acts] of TUNNEL_ROWS) {
    test(`${from} + ${ev} -> ${next}${acts === '-' ? ' (ignored)' : acts ? ` [${acts}]` : ''}`, () => {
      const { lac } = reachTunnel(from);
      const m = lac.fsm.tunnel;
      const before = m.lastEvent;
      const drops = lac.status().counters.drops['unexpected-message'] ?? 0;
      const ctx = tunnelContext(lac, ev);
      const out = m.dispatch(ev, ctx);
      assert.equal(m.state, next);
      if (acts === '-') {
        assert.deepEqual(out, [], 'an ignored event has no effect');
        assert.equal(m.lastEvent, before, 'and does not count as taken');
        return;
      }
      const expected = acts === '' ? [] : acts.split(',');
      assert.equal(m.lastEvent, ev);
      assert.deepEqual(m.lastActions, expected);
      checkTunnelEffects(expected, out, drops, lac);
    });
  }
});

// ------------------------------------------------------------------ session table

type SessionRow = [SessionState, SessionEvent, SessionState, string];

const SESSION_ROWS: SessionRow[] = [
  ['idle', 'Open', 'wait-reply', 'icrq'],
  ['idle', 'Close', 'idle', '-'],
  ['idle', 'RICRP', 'idle', '-'],
  ['idle', 'RCDN', 'idle', '-'],
  ['idle', 'TunnelDown', 'idle', '-'],

  ['wait-reply', 'Open', 'wait-reply', '-'],
  ['wait-reply', 'Close', 'idle', 'cdn,down'],
  ['wait-reply', 'RICRP', 'established', 'iccn,up'],
  ['wait-reply', 'RCDN', 'idle', 'down'],
  ['wait-reply', 'TunnelDown', 'idle', 'down'],

  ['established', 'Open', 'established', '-'],
  ['established', 'Close', 'idle', 'cdn,down'],
  ['established', 'RICRP', 'established', 'drop'],
  ['established', 'RCDN', 'idle', 'down'],
  ['established', 'TunnelDown', 'idle', 'down'],
];

/** Real inputs into each session state, on an established tunnel (autoSession off). */
function reachSession(state: SessionState): { lac: Lac; sc: Sc } {
  const h = newLac({ autoSession: false });
  const { lac, sc } = h;
  sc.take(lac.open());
  sc.send(sc.sccrp());
  if (state !== 'idle') sc.take(lac.openSession());
  if (state === 'established') sc.send(sc.msg('ICRP', { assignedSessionId: SC_SESSION }, sc.lacSession));
  sc.ackAll();
  assert.equal(lac.status().tunnel.state, 'established');
  assert.equal(lac.status().session.state, state, `path into ${state}`);
  return h;
}

function sessionContext(ev: SessionEvent): SessionContext {
  const down = (reason: DownAction['reason']): DownAction => ({ type: 'down', layer: 'session', reason });
  switch (ev) {
    case 'Close':
      return { cdn: { result: 3 }, down: down('local-close') };
    case 'RICRP':
      return { assignedSessionId: SC_SESSION };
    case 'RCDN':
      return { down: down('peer-cdn') };
    case 'TunnelDown':
      return { down: down('tunnel-down') };
    default:
      return {};
  }
}

function checkSessionEffects(actions: string[], out: LacAction[], dropsBefore: number, lac: Lac): void {
  const msg: Record<string, string> = { icrq: 'ICRQ', iccn: 'ICCN', cdn: 'CDN' };
  assert.deepEqual(
    sentNames(out),
    actions.flatMap((a) => (msg[a] ? [msg[a]] : [])),
    'messages sent',
  );
  const reported = out.flatMap((a) => (a.type === 'session-up' ? ['up'] : a.type === 'down' && a.layer === 'session' ? ['down'] : []));
  assert.deepEqual(
    reported,
    actions.filter((a) => a === 'up' || a === 'down'),
    'events reported',
  );
  const dropped = (lac.status().counters.drops['unexpected-message'] ?? 0) - dropsBefore;
  assert.equal(dropped, actions.includes('drop') ? 1 : 0, 'unexpected messages counted');
}

describe('session table (RFC 2661 7.4.1, incoming call, LAC side)', () => {
  test('the rows cover every state/event cell exactly once', () => {
    assert.equal(SESSION_ROWS.length, SESSION_STATES.length * SESSION_EVENTS.length);
    assert.equal(new Set(SESSION_ROWS.map(([s, e]) => `${s}|${e}`)).size, SESSION_ROWS.length);
  });

  for (const [from, ev, next, acts] of SESSION_ROWS) {
    test(`${from} + ${ev} -> ${next}${acts === '-' ? ' (ignored)' : acts ? ` [${acts}]` : ''}`, () => {
      const { lac } = reachSession(from);
      const m = lac.fsm.session;
      const before = m.lastEvent;
      const drops = lac.status().counters.drops['unexpected-message'] ?? 0;
      const out = m.dispatch(ev, sessionContext(ev));
      assert.equal(m.state, next);
      if (acts === '-') {
        assert.deepEqual(out, [], 'an ignored event has no effect');
        assert.equal(m.lastEvent, before, 'and does not count as taken');
        return;
      }
      const expected = acts === '' ? [] : acts.split(',');
      assert.equal(m.lastEvent, ev);
      assert.deepEqual(m.lastActions, expected);
      checkSessionEffects(expected, out, drops, lac);
      if (expected.includes('up')) assert.equal(lac.status().session.remoteId, SC_SESSION);
    });
  }
});

// ------------------------------------------------------------------ inputs to events

describe('real inputs are classified into the events the tables expect', () => {
  const rc3 = { mandatory: true, hidden: false, reserved: 0, vendorId: 0, type: 1, value: new Uint8Array([0, 2, 0]) };

  test('tunnel events', () => {
    const ev = (lac: Lac) => lac.fsm.tunnel.lastEvent;
    let { lac, sc } = newLac();
    sc.take(lac.open());
    assert.equal(ev(lac), 'Open');
    lac.close();
    assert.equal(ev(lac), 'Abort', 'close() before the SC told us its Tunnel ID');

    ({ lac, sc } = newLac());
    sc.take(lac.open());
    sc.send(sc.sccrp({ protocolVersion: { version: 2, revision: 0 } }));
    assert.equal(ev(lac), 'Close', 'an SCCRP we refuse (its Tunnel ID learned first)');

    ({ lac, sc } = newLac());
    sc.take(lac.open());
    sc.send(sc.sccrp());
    assert.equal(ev(lac), 'RSCCRP');
    sc.take(lac.timerFired(TIMER_HELLO));
    assert.equal(ev(lac), 'TO-quiet');
    sc.take(lac.receive(encodeData({ tunnelId: lac.localTunnelId, sessionId: 0 }, new Uint8Array([1])), 'sc'));
    lac.dataReceived(1);
    sc.take(lac.timerFired(TIMER_HELLO));
    assert.equal(ev(lac), 'TO-busy');
    sc.send(sc.body(encodeRawAvps([...rawAvps({ messageType: MessageType.StopCCN, assignedTunnelId: SC_TUNNEL }), rc3])));
    assert.equal(ev(lac), 'RStopCCN', 'a StopCCN with a malformed Result Code still counts');
    lac.timerFired(TIMER_LINGER);
    assert.equal(ev(lac), 'Linger');

    ({ lac, sc } = newLac());
    sc.take(lac.open());
    sc.send(sc.sccrp());
    sc.take(lac.close());
    assert.equal(ev(lac), 'Close');
    sc.ackAll();
    assert.equal(ev(lac), 'Acked', 'ZLBs that acknowledge our StopCCN');

    ({ lac } = newLac({ channel: { maxRetries: 1 } }));
    lac.open();
    for (let i = 0; i < 10 && lac.status().tunnel.state !== 'closed'; i++) lac.timerFired('ctl-rtx');
    assert.equal(ev(lac), 'Failed');
  });

  test('session events', () => {
    const ev = (lac: Lac) => lac.fsm.session.lastEvent;
    const up = () => {
      const h = newLac({ autoSession: false });
      h.sc.take(h.lac.open());
      h.sc.send(h.sc.sccrp());
      h.sc.take(h.lac.openSession());
      return h;
    };
    let { lac, sc } = up();
    assert.equal(ev(lac), 'Open');
    sc.send(sc.msg('ICRP', { assignedSessionId: SC_SESSION }, sc.lacSession));
    assert.equal(ev(lac), 'RICRP');
    sc.send(sc.body(encodeRawAvps([...rawAvps({ messageType: MessageType.CDN, assignedSessionId: SC_SESSION }), rc3]), sc.lacSession));
    assert.equal(ev(lac), 'RCDN', 'a CDN with a malformed Result Code still counts');

    ({ lac, sc } = up());
    sc.send(sc.msg('ICRP', { assignedSessionId: 0 }, sc.lacSession));
    assert.equal(ev(lac), 'Close', 'ICRP with Assigned Session ID 0: CDN');

    ({ lac, sc } = up());
    sc.send(sc.msg('ICRP', { assignedSessionId: SC_SESSION }, sc.lacSession));
    sc.take(lac.closeSession());
    assert.equal(ev(lac), 'Close');

    ({ lac, sc } = up());
    sc.take(lac.close());
    assert.equal(ev(lac), 'TunnelDown');
  });
});

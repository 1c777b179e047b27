/**
 * RFC 1661 section 4.1 state transition table, one row per (state, event) cell,
 * run against the real Automaton: reach the state through real events, inject the
 * event, then check the next state, the table actions taken, and that each action
 * had its observable effect (packets sent, layer signals).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  Automaton,
  type AutomatonOutput,
  FSM_EVENTS,
  FSM_STATES,
  type FsmActionName,
  type FsmEvent,
  type FsmState,
  type OptionHandler,
} from '../../src/ppp/automaton';
import { CODE, type ControlPacket, encodePacket, opt } from '../../src/ppp/frame';

type Row = [FsmState, FsmEvent, FsmState, string];

// Transcribed cell by cell from RFC 1661 4.1 (- rows: the event cannot occur; no change, no action).
const ROWS: Row[] = [
  ['Initial', 'Up', 'Closed', ''],
  ['Initial', 'Down', 'Initial', '-'],
  ['Initial', 'Open', 'Starting', 'tls'],
  ['Initial', 'Close', 'Initial', ''],
  ['Initial', 'TO+', 'Initial', '-'],
  ['Initial', 'TO-', 'Initial', '-'],
  ['Initial', 'RCR+', 'Initial', '-'],
  ['Initial', 'RCR-', 'Initial', '-'],
  ['Initial', 'RCA', 'Initial', '-'],
  ['Initial', 'RCN', 'Initial', '-'],
  ['Initial', 'RTR', 'Initial', '-'],
  ['Initial', 'RTA', 'Initial', '-'],
  ['Initial', 'RUC', 'Initial', '-'],
  ['Initial', 'RXJ+', 'Initial', '-'],
  ['Initial', 'RXJ-', 'Initial', '-'],
  ['Initial', 'RXR', 'Initial', '-'],

  ['Starting', 'Up', 'Req-Sent', 'irc,scr'],
  ['Starting', 'Down', 'Starting', '-'],
  ['Starting', 'Open', 'Starting', ''],
  ['Starting', 'Close', 'Initial', 'tlf'],
  ['Starting', 'TO+', 'Starting', '-'],
  ['Starting', 'TO-', 'Starting', '-'],
  ['Starting', 'RCR+', 'Starting', '-'],
  ['Starting', 'RCR-', 'Starting', '-'],
  ['Starting', 'RCA', 'Starting', '-'],
  ['Starting', 'RCN', 'Starting', '-'],
  ['Starting', 'RTR', 'Starting', '-'],
  ['Starting', 'RTA', 'Starting', '-'],
  ['Starting', 'RUC', 'Starting', '-'],
  ['Starting', 'RXJ+', 'Starting', '-'],
  ['Starting', 'RXJ-', 'Starting', '-'],
  ['Starting', 'RXR', 'Starting', '-'],

  ['Closed', 'Up', 'Closed', '-'],
  ['Closed', 'Down', 'Initial', ''],
  ['Closed', 'Open', 'Req-Sent', 'irc,scr'],
  ['Closed', 'Close', 'Closed', ''],
  ['Closed', 'TO+', 'Closed', '-'],
  ['Closed', 'TO-', 'Closed', '-'],
  ['Closed', 'RCR+', 'Closed', 'sta'],
  ['Closed', 'RCR-', 'Closed', 'sta'],
  ['Closed', 'RCA', 'Closed', 'sta'],
  ['Closed', 'RCN', 'Closed', 'sta'],
  ['Closed', 'RTR', 'Closed', 'sta'],
  ['Closed', 'RTA', 'Closed', ''],
  ['Closed', 'RUC', 'Closed', 'scj'],
  ['Closed', 'RXJ+', 'Closed', ''],
  ['Closed', 'RXJ-', 'Closed', 'tlf'],
  ['Closed', 'RXR', 'Closed', ''],

  ['Stopped', 'Up', 'Stopped', '-'],
  ['Stopped', 'Down', 'Starting', 'tls'],
  ['Stopped', 'Open', 'Stopped', ''],
  ['Stopped', 'Close', 'Closed', ''],
  ['Stopped', 'TO+', 'Stopped', '-'],
  ['Stopped', 'TO-', 'Stopped', '-'],
  ['Stopped', 'RCR+', 'Ack-Sent', 'irc,scr,sca'],
  ['Stopped', 'RCR-', 'Req-Sent', 'irc,scr,scn'],
  ['Stopped', 'RCA', 'Stopped', 'sta'],
  ['Stopped', 'RCN', 'Stopped', 'sta'],
  ['Stopped', 'RTR', 'Stopped', 'sta'],
  ['Stopped', 'RTA', 'Stopped', ''],
  ['Stopped', 'RUC', 'Stopped', 'scj'],
  ['Stopped', 'RXJ+', 'Stopped', ''],
  ['Stopped', 'RXJ-', 'Stopped', 'tlf'],
  ['Stopped', 'RXR', 'Stopped', ''],

  ['Closing', 'Up', 'Closing', '-'],
  ['Closing', 'Down', 'Initial', ''],
  ['Closing', 'Open', 'Stopping', ''],
  ['Closing', 'Close', 'Closing', ''],
  ['Closing', 'TO+', 'Closing', 'str'],
  ['Closing', 'TO-', 'Closed', 'tlf'],
  ['Closing', 'RCR+', 'Closing', ''],
  ['Closing', 'RCR-', 'Closing', ''],
  ['Closing', 'RCA', 'Closing', ''],
  ['Closing', 'RCN', 'Closing', ''],
  ['Closing', 'RTR', 'Closing', 'sta'],
  ['Closing', 'RTA', 'Closed', 'tlf'],
  ['Closing', 'RUC', 'Closing', 'scj'],
  ['Closing', 'RXJ+', 'Closing', ''],
  ['Closing', 'RXJ-', 'Closed', 'tlf'],
  ['Closing', 'RXR', 'Closing', ''],

  ['Stopping', 'Up', 'Stopping', '-'],
  ['Stopping', 'Down', 'Starting', ''],
  ['Stopping', 'Open', 'Stopping', ''],
  ['Stopping', 'Close', 'Closing', ''],
  ['Stopping', 'TO+', 'Stopping', 'str'],
  ['Stopping', 'TO-', 'Stopped', 'tlf'],
  ['Stopping', 'RCR+', 'Stopping', ''],
  ['Stopping', 'RCR-', 'Stopping', ''],
  ['Stopping', 'RCA', 'Stopping', ''],
  ['Stopping', 'RCN', 'Stopping', ''],
  ['Stopping', 'RTR', 'Stopping', 'sta'],
  ['Stopping', 'RTA', 'Stopped', 'tlf'],
  ['Stopping', 'RUC', 'Stopping', 'scj'],
  ['Stopping', 'RXJ+', 'Stopping', ''],
  ['Stopping', 'RXJ-', 'Stopped', 'tlf'],
  ['Stopping', 'RXR', 'Stopping', ''],

  ['Req-Sent', 'Up', 'Req-Sent', '-'],
  ['Req-Sent', 'Down', 'Starting', ''],
  ['Req-Sent', 'Open', 'Req-Sent', ''],
  ['Req-Sent', 'Close', 'Closing', 'irc,str'],
  ['Req-Sent', 'TO+', 'Req-Sent', 'scr'],
  ['Req-Sent', 'TO-', 'Stopped', 'tlf'],
  ['Req-Sent', 'RCR+', 'Ack-Sent', 'sca'],
  ['Req-Sent', 'RCR-', 'Req-Sent', 'scn'],
  ['Req-Sent', 'RCA', 'Ack-Rcvd', 'irc'],
  ['Req-Sent', 'RCN', 'Req-Sent', 'irc,scr'],
  ['Req-Sent', 'RTR', 'Req-Sent', 'sta'],
  ['Req-Sent', 'RTA', 'Req-Sent', ''],
  ['Req-Sent', 'RUC', 'Req-Sent', 'scj'],
  ['Req-Sent', 'RXJ+', 'Req-Sent', ''],
  ['Req-Sent', 'RXJ-', 'Stopped', 'tlf'],
  ['Req-Sent', 'RXR', 'Req-Sent', ''],

  ['Ack-Rcvd', 'Up', 'Ack-Rcvd', '-'],
  ['Ack-Rcvd', 'Down', 'Starting', ''],
  ['Ack-Rcvd', 'Open', 'Ack-Rcvd', ''],
  ['Ack-Rcvd', 'Close', 'Closing', 'irc,str'],
  ['Ack-Rcvd', 'TO+', 'Req-Sent', 'scr'],
  ['Ack-Rcvd', 'TO-', 'Stopped', 'tlf'],
  ['Ack-Rcvd', 'RCR+', 'Opened', 'sca,tlu'],
  ['Ack-Rcvd', 'RCR-', 'Ack-Rcvd', 'scn'],
  ['Ack-Rcvd', 'RCA', 'Req-Sent', 'scr'],
  ['Ack-Rcvd', 'RCN', 'Req-Sent', 'scr'],
  ['Ack-Rcvd', 'RTR', 'Req-Sent', 'sta'],
  ['Ack-Rcvd', 'RTA', 'Req-Sent', ''],
  ['Ack-Rcvd', 'RUC', 'Ack-Rcvd', 'scj'],
  ['Ack-Rcvd', 'RXJ+', 'Req-Sent', ''],
  ['Ack-Rcvd', 'RXJ-', 'Stopped', 'tlf'],
  ['Ack-Rcvd', 'RXR', 'Ack-Rcvd', ''],

  ['Ack-Sent', 'Up', 'Ack-Sent', '-'],
  ['Ack-Sent', 'Down', 'Starting', ''],
  ['Ack-Sent', 'Open', 'Ack-Sent', ''],
  ['Ack-Sent', 'Close', 'Closing', 'irc,str'],
  ['Ack-Sent', 'TO+', 'Ack-Sent', 'scr'],
  ['Ack-Sent', 'TO-', 'Stopped', 'tlf'],
  ['Ack-Sent', 'RCR+', 'Ack-Sent', 'sca'],
  ['Ack-Sent', 'RCR-', 'Req-Sent', 'scn'],
  ['Ack-Sent', 'RCA', 'Opened', 'irc,tlu'],
  ['Ack-Sent', 'RCN', 'Ack-Sent', 'irc,scr'],
  ['Ack-Sent', 'RTR', 'Req-Sent', 'sta'],
  ['Ack-Sent', 'RTA', 'Ack-Sent', ''],
  ['Ack-Sent', 'RUC', 'Ack-Sent', 'scj'],
  ['Ack-Sent', 'RXJ+', 'Ack-Sent', ''],
  ['Ack-Sent', 'RXJ-', 'Stopped', 'tlf'],
  ['Ack-Sent', 'RXR', 'Ack-Sent', ''],

  ['Opened', 'Up', 'Opened', '-'],
  ['Opened', 'Down', 'Starting', 'tld'],
  ['Opened', 'Open', 'Opened', ''],
  ['Opened', 'Close', 'Closing', 'tld,irc,str'],
  ['Opened', 'TO+', 'Opened', '-'],
  ['Opened', 'TO-', 'Opened', '-'],
  ['Opened', 'RCR+', 'Ack-Sent', 'tld,scr,sca'],
  ['Opened', 'RCR-', 'Req-Sent', 'tld,scr,scn'],
  ['Opened', 'RCA', 'Req-Sent', 'tld,scr'],
  ['Opened', 'RCN', 'Req-Sent', 'tld,scr'],
  ['Opened', 'RTR', 'Stopping', 'tld,zrc,sta'],
  ['Opened', 'RTA', 'Req-Sent', 'tld,scr'],
  ['Opened', 'RUC', 'Opened', 'scj'],
  ['Opened', 'RXJ+', 'Opened', ''],
  ['Opened', 'RXJ-', 'Stopping', 'tld,irc,str'],
  ['Opened', 'RXR', 'Opened', 'ser'],
];

const handler: OptionHandler = {
  reset() {},
  buildRequest: () => [opt(1, [0x05, 0xdc])],
  judgeRequest: () => ({ nak: [], reject: [] }),
  peerAcked() {},
  onAck: () => undefined,
  onNak: () => undefined,
  onReject: () => undefined,
  echoReply: (p: ControlPacket) => encodePacket(CODE.ECHO_REPLY, p.id, Buffer.from([0, 0, 0, 1])),
};

/** A received packet matching the event, for the actions that answer one. */
function context(ev: FsmEvent) {
  const code: Partial<Record<FsmEvent, number>> = {
    'RCR+': CODE.CONF_REQ,
    'RCR-': CODE.CONF_REQ,
    RCA: CODE.CONF_ACK,
    RCN: CODE.CONF_NAK,
    RTR: CODE.TERM_REQ,
    RTA: CODE.TERM_ACK,
    RUC: 42,
    'RXJ+': CODE.CODE_REJ,
    'RXJ-': CODE.CODE_REJ,
    RXR: CODE.ECHO_REQ,
  };
  const c = code[ev];
  if (c === undefined) return {};
  const raw = encodePacket(c, 0x33, Buffer.from([1, 4, 5, 0xdc]));
  return { packet: { code: c, id: 0x33, data: raw.subarray(4) }, raw, verdict: { nak: [opt(1, [0x05, 0xb4])], reject: [] } };
}

/** Real event paths into each state. */
const PATHS: Record<FsmState, FsmEvent[]> = {
  Initial: [],
  Starting: ['Open'],
  Closed: ['Up'],
  Stopped: ['Up', 'Open', 'RXJ-'],
  Closing: ['Up', 'Open', 'Close'],
  Stopping: ['Up', 'Open', 'RCA', 'RCR+', 'RXJ-'],
  'Req-Sent': ['Up', 'Open'],
  'Ack-Rcvd': ['Up', 'Open', 'RCA'],
  'Ack-Sent': ['Up', 'Open', 'RCR+'],
  Opened: ['Up', 'Open', 'RCA', 'RCR+'],
};

function reach(state: FsmState): Automaton {
  const a = new Automaton('t', 0xc021, handler);
  for (const ev of PATHS[state]) a.dispatch(ev, context(ev), 'setup');
  assert.equal(a.state, state, `path into ${state}`);
  return a;
}

/** Checks that the actions the automaton reports actually happened. */
function checkEffects(actions: FsmActionName[], out: AutomatonOutput[], ev: FsmEvent): void {
  const sentCodes = out.filter((o) => o.type === 'send').map((o) => (o as { bytes: Buffer }).bytes[0]);
  const expectCodes: number[] = [];
  for (const a of actions) {
    if (a === 'scr') expectCodes.push(CODE.CONF_REQ);
    if (a === 'sca') expectCodes.push(CODE.CONF_ACK);
    if (a === 'scn') expectCodes.push(CODE.CONF_NAK);
    if (a === 'str') expectCodes.push(CODE.TERM_REQ);
    if (a === 'sta') expectCodes.push(CODE.TERM_ACK);
    if (a === 'scj') expectCodes.push(CODE.CODE_REJ);
    if (a === 'ser') expectCodes.push(CODE.ECHO_REPLY);
  }
  assert.deepEqual(sentCodes, expectCodes, `packets sent on ${ev}`);
  const signals = out.filter((o) => ['up', 'down', 'started', 'finished'].includes(o.type)).map((o) => o.type);
  const expectSignals = actions
    .map((a) => ({ tlu: 'up', tld: 'down', tls: 'started', tlf: 'finished' })[a as string])
    .filter((x): x is string => x !== undefined);
  assert.deepEqual(signals, expectSignals, `layer signals on ${ev}`);
  if (actions.includes('scr') || actions.includes('str') || actions.includes('zrc')) {
    assert.ok(
      out.some((o) => o.type === 'timer-start' && o.timer === 't.restart'),
      'restart timer armed',
    );
  }
}

test('the table covers every state/event cell exactly once', () => {
  assert.equal(ROWS.length, FSM_STATES.length * FSM_EVENTS.length);
  const seen = new Set(ROWS.map(([s, e]) => `${s}|${e}`));
  assert.equal(seen.size, ROWS.length);
});

for (const [from, ev, next, acts] of ROWS) {
  test(`RFC 1661 table: ${from} + ${ev} -> ${next}${acts && acts !== '-' ? ` [${acts}]` : acts === '-' ? ' (illegal)' : ''}`, () => {
    const a = reach(from);
    const out = a.dispatch(ev, context(ev), 'test');
    assert.equal(a.state, next);
    const expected = acts === '' || acts === '-' ? [] : (acts.split(',') as FsmActionName[]);
    assert.deepEqual(a.lastActions, expected);
    checkEffects(expected, out, ev);
    if (acts === '-')
      assert.ok(
        out.every((o) => o.type === 'drop'),
        'illegal event has no effect',
      );
    // The Restart timer runs exactly in the states that wait for an answer.
    const timed = ['Closing', 'Stopping', 'Req-Sent', 'Ack-Rcvd', 'Ack-Sent'].includes(next);
    if (!timed) assert.deepEqual(a.timeout(), [], `no live restart timer in ${next}`);
  });
}

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applyTimer } from '../../src/core/scheduler';
import { type ChannelAction, type ChannelConfig, ControlChannel, TIMER_ACK, decodePacket } from '../../src/l2tp';
import { FakeClock } from '../helpers/fake-clock';

interface Wire {
  t: number;
  ns: number;
  nr: number;
  zlb: boolean;
}

/** Runs a channel on a fake clock and records what it puts on the wire. */
function harness(cfg: Partial<ChannelConfig> = {}) {
  const clock = new FakeClock();
  const ch = new ControlChannel<string>(cfg);
  const wire: Wire[] = [];
  const delivered: string[] = [];
  const failures: { t: number; reason: string }[] = [];
  const run = (acts: ChannelAction<string>[]) => {
    for (const a of acts) {
      if (a.type === 'send') {
        const p = decodePacket(a.bytes);
        wire.push({ t: clock.now(), ns: p.header.ns!, nr: p.header.nr!, zlb: p.payload.length === 0 });
      } else if (a.type === 'deliver') delivered.push(a.msg);
      else if (a.type === 'failed') failures.push({ t: clock.now(), reason: a.reason });
      else applyTimer(clock, 'ch', a, (t) => run(ch.timerFired(t)));
    }
  };
  const body = new Uint8Array([0x80, 0x08, 0, 0, 0, 0, 0, 6]);
  const send = () => run(ch.send({ tunnelId: 1, sessionId: 0, body }));
  const recv = (ns: number, nr: number, msg?: string) => {
    run(ch.receive({ ns, nr, msg }));
    run(ch.flush());
  };
  return { clock, ch, wire, delivered, failures, send, recv, run };
}

test('retransmission schedule: 1 s doubling to an 8 s cap, 5 retries, failure at 31 s', () => {
  const h = harness();
  h.send();
  h.clock.advance(60_000);
  assert.deepEqual(
    h.wire.map((w) => w.t),
    [0, 1000, 3000, 7000, 15000, 23000],
  );
  assert.ok(h.wire.every((w) => w.ns === 0 && !w.zlb));
  assert.deepEqual(h.failures, [{ t: 31000, reason: 'max-retries' }]);
  assert.equal(h.ch.stats.retransmissions, 5);
  assert.equal(h.clock.size(), 0, 'no timer left armed after failure');
  assert.equal(h.ch.retransmissionCycleMs(), 31000);
});

test('configurable schedule and a retransmission carries the current Nr', () => {
  const h = harness({ initialTimeoutMs: 500, maxTimeoutMs: 1000, maxRetries: 2 });
  h.send();
  h.clock.advance(100);
  h.recv(0, 0, 'a'); // peer message arrives; no ack for ours yet
  h.clock.advance(5000);
  const data = h.wire.filter((w) => !w.zlb);
  assert.deepEqual(
    data.map((w) => [w.t, w.ns, w.nr]),
    [
      [0, 0, 0],
      [500, 0, 1],
      [1500, 0, 1],
    ],
  );
  assert.deepEqual(h.failures, [{ t: 2500, reason: 'max-retries' }]);
});

test('an ack stops retransmission and resets the backoff for the next message', () => {
  const h = harness();
  h.send();
  h.clock.advance(3500); // tries at 0, 1000, 3000
  h.recv(0, 1); // ZLB acking Ns 0
  h.send();
  h.clock.advance(1000);
  assert.deepEqual(
    h.wire.map((w) => [w.t, w.ns]),
    [
      [0, 0],
      [1000, 0],
      [3000, 0],
      [3500, 1],
      [4500, 1],
    ],
  );
});

test('window: never more than min(CWND, peer window) outstanding; slow start grows CWND per ack', () => {
  const h = harness();
  h.ch.setPeerWindow(4);
  for (let i = 0; i < 10; i++) h.send();
  assert.equal(h.wire.length, 1, 'CWND starts at 1');
  h.recv(0, 1);
  assert.equal(h.ch.cwnd, 2);
  assert.deepEqual(
    h.wire.map((w) => w.ns),
    [0, 1, 2],
  );
  h.recv(0, 3);
  assert.equal(h.ch.cwnd, 4);
  assert.equal(h.ch.inFlight, 4);
  assert.deepEqual(
    h.wire.map((w) => w.ns),
    [0, 1, 2, 3, 4, 5, 6],
  );
  h.recv(0, 5);
  assert.equal(h.ch.cwnd, 4, 'capped by the peer window');
  assert.equal(h.ch.inFlight, 4);
  h.recv(0, 10); // acks more than is in flight: ignored as bogus
  assert.equal(h.ch.unacknowledged, 5);
  h.recv(0, 9);
  h.recv(0, 10);
  assert.equal(h.ch.unacknowledged, 0);
  assert.equal(new Set(h.wire.map((w) => w.ns)).size, 10);
});

test('congestion avoidance after a timeout: SSTHRESH = CWND/2, then +1 per CWND acks', () => {
  const h = harness();
  h.ch.setPeerWindow(8);
  for (let i = 0; i < 40; i++) h.send();
  let acked = 0;
  const ackOne = () => h.recv(0, ++acked);
  for (let i = 0; i < 7; i++) ackOne();
  assert.equal(h.ch.cwnd, 8);
  h.clock.advance(1000); // timeout on the head
  assert.equal(h.ch.cwnd, 1);
  const cw: number[] = [];
  for (let i = 0; i < 10; i++) {
    ackOne();
    cw.push(h.ch.cwnd);
  }
  // Slow start to SSTHRESH 4, then 4 acks per step to 5, then 5 acks to 6.
  assert.deepEqual(cw, [2, 3, 4, 4, 4, 4, 5, 5, 5, 5]);
});

test('peer Receive Window Size: absent means 4, 0 is read as 1', () => {
  const h = harness();
  assert.equal(h.ch.peerWindow, 4);
  h.ch.setPeerWindow(0);
  assert.equal(h.ch.peerWindow, 1);
  h.ch.setPeerWindow(undefined);
  assert.equal(h.ch.peerWindow, 4);
});

test('out-of-order messages inside our window are held and delivered in order', () => {
  const h = harness({ receiveWindow: 4 });
  h.recv(2, 0, 'c');
  h.recv(1, 0, 'b');
  h.recv(9, 0, 'far'); // outside the window: dropped
  assert.deepEqual(h.delivered, []);
  h.recv(0, 0, 'a');
  assert.deepEqual(h.delivered, ['a', 'b', 'c']);
  assert.equal(h.ch.sequence.nr, 3);
  assert.equal(h.ch.stats.outsideWindow, 1);
  h.clock.advance(250);
  assert.deepEqual(
    h.wire.map((w) => [w.zlb, w.nr]),
    [[true, 3]],
  );
});

test('duplicates are acked at once and dropped', () => {
  const h = harness();
  h.recv(0, 0, 'a');
  h.recv(0, 0, 'a');
  assert.deepEqual(h.delivered, ['a']);
  assert.equal(h.ch.stats.duplicates, 1);
  assert.deepEqual(
    h.wire.map((w) => [w.t, w.zlb, w.nr]),
    [[0, true, 1]],
  );
});

test('delayed ack: ZLB after 250 ms unless a message carries the ack first', () => {
  const h = harness();
  h.recv(0, 0, 'a');
  h.clock.advance(249);
  assert.equal(h.wire.length, 0);
  h.clock.advance(1);
  assert.deepEqual(
    h.wire.map((w) => [w.t, w.zlb, w.nr]),
    [[250, true, 1]],
  );
  h.recv(1, 0, 'b');
  h.clock.advance(100);
  h.send(); // piggybacks Nr 2
  h.clock.advance(500);
  assert.deepEqual(
    h.wire.slice(1).map((w) => [w.t, w.zlb, w.nr]),
    [[350, false, 2]],
  );
  assert.equal(h.clock.size(), 1, 'only the retransmit timer is armed');
  assert.ok(TIMER_ACK);
});

test('Ns/Nr wrap around 65535 in both directions', () => {
  const h = harness({ ackDelayMs: 0 });
  for (let i = 0; i < 70_000; i++) {
    h.send();
    h.recv(i & 0xffff, (i + 1) & 0xffff, 'm');
  }
  assert.equal(h.delivered.length, 70_000);
  assert.equal(h.ch.unacknowledged, 0);
  assert.deepEqual(h.ch.sequence, { ns: 70_000 & 0xffff, nr: 70_000 & 0xffff });
  assert.equal(h.failures.length, 0);
});

test('acks for messages never sent are ignored', () => {
  const h = harness();
  h.send();
  h.recv(0, 5);
  assert.equal(h.ch.unacknowledged, 1);
  assert.equal(h.ch.stats.badAcks, 1);
});

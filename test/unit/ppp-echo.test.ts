/** LCP echo keepalive on a fake clock, RTT measurement, and the RFC 5571 5.1.2 interval validator. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applyTimer } from '../../src/core/scheduler';
import { DEFAULT_ECHO, EchoKeepalive, type EchoOutput, validateEchoInterval } from '../../src/ppp/echo';
import { CODE, type ControlPacket, decodePacket } from '../../src/ppp/frame';
import { FakeClock } from '../helpers/fake-clock';

const MAGIC = 0xa1b2c3d4;

function rig(cfg = {}) {
  const clock = new FakeClock();
  const e = new EchoKeepalive(cfg);
  const sent: { at: number; pkt: ControlPacket }[] = [];
  const downs: number[] = [];
  const take = (outs: EchoOutput[]) => {
    for (const o of outs) {
      if (o.type === 'send') sent.push({ at: clock.now(), pkt: decodePacket(o.bytes) });
      else if (o.type === 'down') downs.push(clock.now());
      else applyTimer(clock, 'e', o, () => take(e.tick(MAGIC, clock.now())));
    }
  };
  take(e.start());
  return { clock, e, sent, downs, take };
}

const reply = (id: number): ControlPacket => ({ code: CODE.ECHO_REPLY, id, data: Buffer.alloc(4) });

test('defaults: 30 s interval, 3 failures', () => {
  assert.equal(DEFAULT_ECHO.intervalMs, 30_000);
  assert.equal(DEFAULT_ECHO.failures, 3);
});

test('Echo-Requests go out every interval with our magic and a fresh Identifier', () => {
  const r = rig({ intervalMs: 10_000 });
  r.clock.advance(9_999);
  assert.equal(r.sent.length, 0);
  r.clock.advance(1);
  assert.equal(r.sent.length, 1);
  const p = r.sent[0]!.pkt;
  assert.equal(p.code, CODE.ECHO_REQ);
  assert.equal(p.data.readUInt32BE(0), MAGIC);
  r.e.reply(reply(p.id), r.clock.now() + 40);
  r.clock.advance(10_000);
  assert.equal(r.sent.length, 2);
  assert.notEqual(r.sent[1]!.pkt.id, p.id);
});

test('RTT: last and smoothed (1/8 gain) from replies matched by Identifier', () => {
  const r = rig({ intervalMs: 10_000 });
  r.clock.advance(10_000);
  r.e.reply(reply(r.sent[0]!.pkt.id), 10_080);
  assert.equal(r.e.status.lastRttMs, 80);
  assert.equal(r.e.status.smoothedRttMs, 80);
  r.clock.advance(10_000);
  r.e.reply(reply(r.sent[1]!.pkt.id), 20_160);
  assert.equal(r.e.status.lastRttMs, 160);
  assert.equal(r.e.status.smoothedRttMs, 90);
  r.e.reply(reply(0x77), 20_200); // unknown Identifier: ignored
  assert.equal(r.e.status.replies, 2);
});

test('dead after N consecutive missed replies; a reply resets the count', () => {
  const r = rig({ intervalMs: 30_000, failures: 3 });
  r.clock.advance(60_000); // two unanswered
  r.e.reply(reply(r.sent[1]!.pkt.id), r.clock.now());
  assert.equal(r.e.status.outstanding, 0);
  r.clock.advance(90_000); // three more unanswered at 90, 120, 150
  assert.deepEqual(r.downs, []);
  r.clock.advance(30_000);
  assert.deepEqual(r.downs, [180_000]);
  assert.equal(r.clock.size(), 0, 'no timer after death');
  assert.equal(r.sent.length, 5);
});

test('anyTrafficIsLiveness: inbound frames keep the peer alive; off by default', () => {
  const strict = rig({ intervalMs: 10_000, failures: 2 });
  const lax = rig({ intervalMs: 10_000, failures: 2, anyTrafficIsLiveness: true });
  for (let i = 0; i < 10; i++) {
    strict.clock.advance(5_000);
    strict.e.traffic();
    lax.clock.advance(5_000);
    lax.e.traffic();
  }
  assert.equal(strict.downs.length, 1);
  assert.equal(lax.downs.length, 0);
});

test('validateEchoInterval enforces 10 s .. min(HELLO, 60 s)', () => {
  assert.equal(validateEchoInterval(30, 60), undefined);
  assert.equal(validateEchoInterval(10, 60), undefined);
  assert.equal(validateEchoInterval(60, 0), undefined);
  assert.match(validateEchoInterval(5, 60)!, /minimum of 10s/);
  assert.match(validateEchoInterval(45, 30)!, /maximum of 30s/);
  assert.match(validateEchoInterval(61, 120)!, /maximum of 60s/);
  assert.match(validateEchoInterval(Number.NaN, 60)!, /number/);
});

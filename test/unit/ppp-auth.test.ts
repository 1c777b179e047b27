/** CHAP-MD5 (RFC 1994) and PAP (RFC 1334) clients. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { applyTimer } from '../../src/core/scheduler';
import { type AuthClient, type AuthOutput, ChapClient, chapMd5Response, PapClient } from '../../src/ppp/auth';
import { decodePacket, encodePacket, PROTO } from '../../src/ppp/frame';
import { FakeClock } from '../helpers/fake-clock';

const creds = { username: 'cpe1', password: 'secret1' };

function rig(c: AuthClient) {
  const clock = new FakeClock();
  const sent: Buffer[] = [];
  const results: AuthOutput[] = [];
  const take = (outs: AuthOutput[]) => {
    for (const o of outs) {
      if (o.type === 'send') sent.push(o.bytes);
      else if (o.type === 'timer-start' || o.type === 'timer-stop') applyTimer(clock, 'a', o, (t) => take(c.timerFired(t)));
      else if (o.type !== 'drop') results.push(o);
    }
  };
  return { clock, sent, results, take };
}

const challenge = (id: number, value: Buffer, name = 'lns') =>
  encodePacket(1, id, Buffer.concat([Buffer.from([value.length]), value, Buffer.from(name)]));

test('CHAP-MD5 response is MD5(id || secret || challenge), named with our username', () => {
  const c = new ChapClient(creds);
  const r = rig(c);
  r.take(c.start());
  const value = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
  r.take(c.receive(challenge(0x2a, value)));
  const resp = decodePacket(r.sent[0]!);
  assert.equal(resp.code, 2);
  assert.equal(resp.id, 0x2a);
  assert.equal(resp.data[0], 16);
  const expected = createHash('md5')
    .update(Buffer.concat([Buffer.from([0x2a]), Buffer.from('secret1'), value]))
    .digest();
  assert.deepEqual(resp.data.subarray(1, 17), expected);
  assert.deepEqual(chapMd5Response(0x2a, 'secret1', value), expected);
  assert.equal(resp.data.subarray(17).toString(), 'cpe1');
  assert.equal(c.protocol, PROTO.CHAP);

  r.take(c.receive(encodePacket(3, 0x2a, Buffer.from('Welcome'))));
  assert.deepEqual(r.results, [{ type: 'auth-ok', message: 'Welcome' }]);
  assert.equal(c.state, 'success');
  assert.equal(r.clock.size(), 0, 'timeout cleared on success');
});

test('CHAP failure reports the peer message; Success for another Identifier is ignored', () => {
  const c = new ChapClient(creds);
  const r = rig(c);
  r.take(c.start());
  r.take(c.receive(challenge(5, Buffer.alloc(8, 1))));
  r.take(c.receive(encodePacket(3, 6, Buffer.from('nope'))));
  assert.equal(c.state, 'waiting');
  r.take(c.receive(encodePacket(4, 5, Buffer.from('E=691 R=0 bad password'))));
  assert.deepEqual(r.results, [{ type: 'auth-failed', message: 'E=691 R=0 bad password' }]);
});

test('CHAP re-challenge during the session is answered; a Failure afterwards tears down', () => {
  const c = new ChapClient(creds);
  const r = rig(c);
  r.take(c.start());
  r.take(c.receive(challenge(1, Buffer.alloc(16, 1))));
  r.take(c.receive(encodePacket(3, 1)));
  r.take(c.receive(challenge(2, Buffer.alloc(16, 2))));
  assert.equal(r.sent.length, 2);
  const resp = decodePacket(r.sent[1]!);
  assert.equal(resp.id, 2);
  assert.deepEqual(resp.data.subarray(1, 17), chapMd5Response(2, 'secret1', Buffer.alloc(16, 2)));
  r.take(c.receive(encodePacket(3, 2)));
  assert.equal(r.results.length, 1, 'a re-challenge Success is not a new auth-ok');
  r.take(c.receive(challenge(3, Buffer.alloc(16, 3))));
  r.take(c.receive(encodePacket(4, 3, Buffer.from('session revoked'))));
  assert.deepEqual(r.results.at(-1), { type: 'auth-failed', message: 'session revoked' });
});

test('CHAP: a retransmitted challenge gets the identical response; silence fails with "no response"', () => {
  const c = new ChapClient(creds, { timeoutMs: 10_000 });
  const r = rig(c);
  r.take(c.start());
  r.take(c.receive(challenge(9, Buffer.alloc(16, 9))));
  r.take(c.receive(challenge(9, Buffer.alloc(16, 9))));
  assert.deepEqual(r.sent[0], r.sent[1]);
  r.take(c.receive(encodePacket(1, 10, Buffer.from([40, 1])))); // value size beyond the packet
  assert.equal(r.sent.length, 2);
  r.clock.advance(9_999);
  assert.equal(r.results.length, 0);
  r.clock.advance(1);
  assert.deepEqual(r.results, [{ type: 'auth-failed', message: 'no response' }]);
});

test('PAP: Authenticate-Request format, retries on the restart timer, Ack with message', () => {
  const c = new PapClient(creds, { restartMs: 3000, maxRequests: 3 });
  const r = rig(c);
  r.take(c.start());
  const req = decodePacket(r.sent[0]!);
  assert.equal(req.code, 1);
  assert.deepEqual([...req.data], [4, ...Buffer.from('cpe1'), 7, ...Buffer.from('secret1')]);
  r.clock.advance(3000);
  assert.equal(r.sent.length, 2);
  assert.equal(decodePacket(r.sent[1]!).id, req.id);
  r.take(c.receive(encodePacket(2, req.id, Buffer.concat([Buffer.from([2]), Buffer.from('OK')]))));
  assert.deepEqual(r.results, [{ type: 'auth-ok', message: 'OK' }]);
  r.clock.advance(30_000);
  assert.equal(r.sent.length, 2, 'no retries after the Ack');
});

test('PAP: Nak reports the message; no answer after maxRequests reports "no response"', () => {
  const c = new PapClient(creds);
  const r = rig(c);
  r.take(c.start());
  const id = decodePacket(r.sent[0]!).id;
  r.take(c.receive(encodePacket(3, id, Buffer.concat([Buffer.from([13]), Buffer.from('Access denied')]))));
  assert.deepEqual(r.results, [{ type: 'auth-failed', message: 'Access denied' }]);

  const c2 = new PapClient(creds, { restartMs: 1000, maxRequests: 4 });
  const r2 = rig(c2);
  r2.take(c2.start());
  r2.clock.advance(10_000);
  assert.equal(r2.sent.length, 4);
  assert.deepEqual(r2.results, [{ type: 'auth-failed', message: 'no response' }]);
});

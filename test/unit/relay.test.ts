import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { test } from 'node:test';
import { UdpRelay } from '../peer/relay';

async function runThrough(seed: number, imp: Parameters<UdpRelay['setImpairment']>[0]): Promise<{ got: number[]; relay: UdpRelay }> {
  const target = dgram.createSocket('udp4');
  target.on('message', (m, r) => target.send(m, r.port, r.address)); // echo
  await new Promise<void>((r) => target.bind(0, '127.0.0.1', r));
  const relay = await UdpRelay.start({ listenHost: '127.0.0.1', targetHost: '127.0.0.1', targetPort: target.address().port, seed, impairment: imp });
  const client = dgram.createSocket('udp4');
  const got: number[] = [];
  client.on('message', (m) => got.push(m.readUInt16BE(0)));
  await new Promise<void>((r) => client.bind(0, '127.0.0.1', r));
  for (let i = 0; i < 300; i++) {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(i);
    client.send(b, relay.port, '127.0.0.1');
    await new Promise((r) => setImmediate(r));
  }
  await new Promise((r) => setTimeout(r, 200));
  client.close();
  target.close();
  relay.close();
  return { got, relay };
}

test('relay without impairment forwards everything both ways in order', async () => {
  const { got, relay } = await runThrough(1, {});
  assert.deepEqual(got, [...Array(300).keys()]);
  assert.equal(relay.stats.up.forwarded, 300);
  assert.equal(relay.stats.down.forwarded, 300);
});

test('relay loss and duplication match its counters and repeat for the same seed', async () => {
  const a = await runThrough(99, { loss: 0.2, duplicate: 0.05 });
  const b = await runThrough(99, { loss: 0.2, duplicate: 0.05 });
  assert.deepEqual(a.got, b.got, 'same seed, same outcome');
  const s = a.relay.stats;
  assert.ok(s.up.dropped > 30 && s.up.dropped < 90, `~20% of 300 dropped upstream: ${s.up.dropped}`);
  const expected = 300 - s.up.dropped + s.up.duplicated;
  assert.equal(s.up.forwarded, expected);
  // Everything that reached the echo target came back through the down path.
  assert.equal(a.got.length, s.down.forwarded);
});

test('relay reordering delivers a datagram after the one that overtook it', async () => {
  const { got, relay } = await runThrough(5, { reorder: 0.3 });
  assert.equal(got.length, 300, 'nothing lost');
  assert.ok(relay.stats.up.reordered > 20);
  const inversions = got.filter((v, i) => i > 0 && v < got[i - 1]).length;
  assert.ok(inversions > 10, `order changed (${inversions} inversions)`);
});

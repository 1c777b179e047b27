import assert from 'node:assert/strict';
import { constants } from 'node:os';
import { describe, test, type TestContext } from 'node:test';
import { formatIpv6 } from '../../src/platform/icmp6-socket';
import { TunDevice } from '../../src/platform/tun';
import { Netns, run, tag, waitFor } from '../helpers/netns';
import { PEER_PY, runIn, startIn, tsFixture } from './fixtures/ns-child';

/**
 * The TUN device is opened by this process and then moved into a fresh namespace
 * (its fd keeps working across the move), so the test reads and writes it
 * in-process while the kernel side, and an independent ICMPv6 peer (Python raw
 * sockets), live in the namespace.
 */

const LOCAL = 'fd00:5::1';
const TARGET = 'fd00:6::2';

function tunInNamespace(t: TestContext): { ns: Netns; dev: TunDevice } {
  const ns = Netns.create('tun');
  t.after(() => ns.destroy());
  const dev = TunDevice.open(`swt${tag()}`);
  t.after(() => dev.close());
  run('ip', ['link', 'set', dev.name, 'netns', ns.name]);
  ns.ip(['addr', 'add', `${LOCAL}/64`, 'dev', dev.name, 'nodad']);
  ns.ip(['link', 'set', dev.name, 'up']);
  ns.ip(['route', 'add', `${TARGET}/128`, 'dev', dev.name]);
  return { ns, dev };
}

/** One's-complement sum over the IPv6 pseudo-header and the ICMPv6 message of `pkt`; 0 when its checksum is right. */
function icmp6Checksum(pkt: Buffer): number {
  const len = pkt.readUInt16BE(4);
  let sum = len + 58;
  for (let i = 8; i < 40; i += 2) sum += pkt.readUInt16BE(i);
  for (let i = 40; i < 40 + len; i += 2) sum += (pkt[i]! << 8) | (i + 1 < 40 + len ? pkt[i + 1]! : 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function isEchoRequestTo(p: Buffer, dst: string): boolean {
  return p.length >= 48 && p[0]! >> 4 === 6 && p[6] === 58 && p[40] === 128 && formatIpv6(p, 24) === dst;
}

function echoReply(req: Buffer): Buffer {
  const r = Buffer.from(req);
  req.copy(r, 8, 24, 40);
  req.copy(r, 24, 8, 24);
  r[7] = 64;
  r[40] = 129;
  r.writeUInt16BE(0, 42);
  r.writeUInt16BE(icmp6Checksum(r), 42);
  return r;
}

/** Copies of every echo request to TARGET the device delivers (the kernel also sends MLD and the like). */
function collectEchoRequests(dev: TunDevice): { requests: Buffer[]; batches: number[] } {
  const requests: Buffer[] = [];
  const batches: number[] = [];
  dev.onPackets((batch) => {
    batches.push(batch.count);
    for (let i = 0; i < batch.count; i++) {
      const p = batch.packet(i);
      assert.equal(p.length, batch.length(i));
      if (isEchoRequestTo(p, TARGET)) requests.push(Buffer.from(p));
    }
  });
  return { requests, batches };
}

function rxPackets(ns: Netns, dev: string): number {
  const [link] = ns.ipJson<{ stats64: { rx: { packets: number } } }[]>(['-s', 'link', 'show', dev]);
  return link!.stats64.rx.packets;
}

function systemError(code: string, messagePart: string) {
  return (e: unknown) => {
    assert.ok(e instanceof Error, `not an Error: ${String(e)}`);
    const err = e as Error & { code?: string; errno?: number };
    assert.equal(err.code, code, err.message);
    assert.equal(err.errno, -(constants.errno as Record<string, number>)[code]!);
    assert.ok(err.message.includes(messagePart), err.message);
    return true;
  };
}

// Every step has its own deadline; this bound on the whole suite is only a backstop. On a
// fresh, loaded machine (tsx compiling each fixture with a cold cache) 30 s was too short.
describe('TunDevice', { timeout: 180_000 }, () => {
  test('kernel -> TUN -> JS: an echo request; JS -> TUN -> kernel: the reply reaches the pinging process', async (t) => {
    const { ns, dev } = tunInNamespace(t);
    const requests: Buffer[] = [];
    dev.onPackets((batch) => {
      for (let i = 0; i < batch.count; i++) {
        const p = batch.packet(i);
        if (!isEchoRequestTo(p, TARGET)) continue;
        requests.push(Buffer.from(p));
        assert.equal(dev.write(echoReply(p)), true);
      }
    });

    const peer = await runIn(ns, 'python3', [PEER_PY, 'ping', TARGET, '1', '5'], 15_000);

    assert.equal(peer.code, 0, `peer: ${JSON.stringify(peer.lines)} ${peer.stderr}`);
    assert.deepEqual(peer.lines.at(-1), { replies: [1] });
    assert.equal(requests.length, 1);
    const req = requests[0]!;
    assert.equal(formatIpv6(req, 8), LOCAL);
    assert.equal(req.readUInt16BE(4), req.length - 40, 'payload length matches what was read');
    assert.equal(req[41], 0, 'code');
    assert.equal(icmp6Checksum(req), 0, 'the kernel checksummed the request');
    assert.equal(req.subarray(48).toString(), 'softwire');
  });

  test('writeBatch delivers several packets to the kernel in one call', async (t) => {
    const { ns, dev } = tunInNamespace(t);
    const { requests } = collectEchoRequests(dev);
    const peer = startIn(ns, 'python3', [PEER_PY, 'ping', TARGET, '5', '10'], 15_000);
    await waitFor('5 echo requests', 10_000, () => requests.length === 5);
    const before = rxPackets(ns, dev.name);

    assert.equal(dev.writeBatch(requests.map(echoReply)), 5);

    const result = await peer.done;
    assert.equal(result.code, 0, `peer: ${JSON.stringify(result.lines)} ${result.stderr}`);
    assert.deepEqual(result.lines.at(-1), { replies: [1, 2, 3, 4, 5] });
    assert.equal(rxPackets(ns, dev.name) - before, 5);
  });

  test('pause holds packets in the kernel; resume delivers them', async (t) => {
    const { ns, dev } = tunInNamespace(t);
    dev.pause();
    const { requests, batches } = collectEchoRequests(dev);
    const peer = startIn(ns, 'python3', [PEER_PY, 'ping', TARGET, '3', '10'], 15_000);
    await peer.line((l) => 'sent' in l);
    // Turns of the event loop in which a live poll watcher would have fired.
    for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
    assert.deepEqual(batches, [], 'nothing delivered while paused');

    dev.resume();
    await waitFor('3 echo requests after resume', 10_000, () => requests.length === 3);
    assert.equal(dev.writeBatch(requests.map(echoReply)), 3);
    const result = await peer.done;
    assert.deepEqual(result.lines.at(-1), { replies: [1, 2, 3] });
  });

  test('an empty name lets the kernel choose one, and close removes the device', () => {
    const dev = TunDevice.open('');
    try {
      assert.match(dev.name, /^tun\d+$/);
      assert.ok(dev.ifindex > 0);
      assert.match(run('ip', ['link', 'show', dev.name]), /POINTOPOINT/);
    } finally {
      dev.close();
    }
    assert.equal(dev.closed, true);
    assert.throws(() => run('ip', ['link', 'show', dev.name]), /does not exist/);
  });

  test('errors carry code, errno and the operation', (t) => {
    assert.throws(() => TunDevice.open('x'.repeat(16)), systemError('EINVAL', 'tunOpen'));
    assert.throws(() => TunDevice.open('bad/name'), systemError('EINVAL', 'TUNSETIFF'));

    const { dev } = tunInNamespace(t);
    assert.throws(() => dev.write('not bytes' as unknown as Uint8Array), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
    // With IFF_NO_PI the kernel takes the IP version from the first nibble and rejects anything else.
    const bogus = Buffer.alloc(40);
    const good = echoReply(
      Buffer.concat([
        Buffer.from('60000000000c3a40', 'hex'),
        Buffer.alloc(32),
        Buffer.from('8000000000010001', 'hex'),
        Buffer.alloc(4),
      ]),
    );
    assert.throws(
      () => dev.writeBatch([good, bogus, good]),
      (e: Error & { index?: number }) => systemError('EINVAL', 'writeBatch')(e) && e.index === 1,
    );

    dev.close();
    dev.close();
    assert.throws(() => dev.write(good), systemError('EBADF', 'closed'));
    assert.throws(() => dev.writeBatch([good]), systemError('EBADF', 'closed'));
  });

  test('a reading device keeps the process alive until paused, unref()ed or closed', async (t) => {
    const ns = Netns.create('tunlife');
    t.after(() => ns.destroy());
    for (const [mode, alive] of [
      ['active', true],
      ['pause', false],
      ['unref', false],
      ['close', false],
    ] as const) {
      const r = await runIn(ns, process.execPath, [...tsFixture('tun-lifetime.ts'), mode], 20_000);
      assert.equal(r.code, 0, `${mode}: ${r.stderr}`);
      assert.match(String((r.lines[0] as { opened?: string }).opened), /^tun\d+$/);
      assert.equal(
        r.lines.some((l) => (l as { alive?: boolean }).alive),
        alive,
        `${mode}: alive`,
      );
    }
  });
});

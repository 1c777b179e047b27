import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decodeNdMessage, emptyOptions, encodeNdMessage, type RouterAdvertisement } from '../../src/ipv6/nd';
import { RaSender, type RaSocket } from '../../src/lan/ra-sender';
import type { Icmp6Message } from '../../src/platform/icmp6-socket';
import { seededRng } from '../../src/util/random';
import { FakeClock } from '../helpers/fake-clock';

/** Stands in for Icmp6Socket: records setup and sends, lets the test inject messages. */
class FakeSocket implements RaSocket {
  groups: string[] = [];
  filter: readonly number[] | null = null;
  sent: { at: number; dst: string; ra: RouterAdvertisement }[] = [];
  closed = false;
  deliver: ((m: Icmp6Message) => void) | undefined;
  constructor(private readonly clock: FakeClock) {}
  joinGroup(g: string): void {
    this.groups.push(g);
  }
  setTypeFilter(t: readonly number[] | null): void {
    this.filter = t;
  }
  onMessage(cb: (m: Icmp6Message) => void): void {
    this.deliver = cb;
  }
  send(message: Uint8Array, address: string): boolean {
    if (this.closed) throw new Error('closed');
    this.sent.push({ at: this.clock.now(), dst: address, ra: decodeNdMessage(message) as RouterAdvertisement });
    return true;
  }
  close(): void {
    this.closed = true;
  }
}

const rs = (over: Partial<Icmp6Message> = {}, options = emptyOptions()): Icmp6Message => {
  const data = Buffer.from(encodeNdMessage({ kind: 'rs', options }));
  return { data, type: data[0]!, code: data[1]!, from: 'fe80::2', to: 'ff02::2', ifindex: 3, hopLimit: 255, ...over };
};

function setup() {
  const clock = new FakeClock();
  const sock = new FakeSocket(clock);
  const sender = new RaSender('lan0', { rng: seededRng(3), scheduler: clock, openSocket: () => sock });
  return { clock, sock, sender };
}

const content = {
  prefixes: [{ prefix: '2001:db8:1:2::', length: 64, preferredLifetime: 600, validLifetime: 1200 }],
  dns: [],
  domains: [],
  defaultRoute: true,
};

describe('RaSender', () => {
  test('listens for RS on ff02::2 only, and advertises to ff02::1 once given content', () => {
    const { clock, sock, sender } = setup();
    assert.deepEqual(sock.groups, ['ff02::2']);
    assert.deepEqual(sock.filter, [133]);
    sender.update(content);
    clock.advance(0);
    assert.equal(sock.sent.length, 1);
    assert.equal(sock.sent[0]!.dst, 'ff02::1');
    assert.equal(sock.sent[0]!.ra.options.prefixes[0]!.prefix, '2001:db8:1:2::');
    assert.equal(sender.counters.sent, 1);
  });

  test('answers a valid RS; drops RSs with a hop limit other than 255, bad code, or an SLLA from ::', () => {
    const { clock, sock, sender } = setup();
    sender.update(content);
    clock.advance(60_000);
    const n = sock.sent.length;
    const bad = [
      rs({ hopLimit: 64 }),
      rs({ code: 1, data: Buffer.from([133, 1, 0, 0, 0, 0, 0, 0]) }),
      rs({ from: '::' }, emptyOptions({ sourceLinkLayer: Uint8Array.of(2, 0, 0, 0, 0, 1) })),
      rs({ data: Buffer.from([133, 0, 0, 0, 0, 0, 0, 0, 1, 0]) }), // option with length 0
    ];
    for (const m of bad) sock.deliver!(m);
    clock.advance(5_000);
    assert.equal(sender.counters.invalid, 4);
    assert.equal(sock.sent.length, n, 'no RA for invalid solicitations');
    sock.deliver!(rs());
    clock.advance(600);
    assert.equal(sock.sent.length, n + 1);
    assert.equal(sender.counters.solicitations, 1);
  });

  test('stop() sends the final RA, resolves, closes the socket and leaves no timer', async () => {
    const { clock, sock, sender } = setup();
    sender.update(content);
    clock.advance(60_000);
    await sender.stop();
    assert.equal(sock.sent.at(-1)!.ra.routerLifetime, 0);
    assert.equal(sock.closed, true);
    assert.equal(clock.size(), 0);
    assert.equal(sender.state, 'stopped');
    await sender.stop(); // idempotent
  });
});

import dgram from 'node:dgram';
import { encodeControl, encodeData } from '../../src/l2tp/messages';
import { seededRng } from '../../src/util/random';

/**
 * Sends a seeded stream of hostile datagrams at an agent (run in the SC's namespace
 * by test/interop/hostile-flood.test.ts). Classes, each aimed at the agent's real
 * tunnel and session IDs where that gets them further in:
 *  - random bytes of random length;
 *  - L2TP data headers whose Length field lies (longer or shorter than the datagram);
 *  - PPP frames with every protocol number 0x0000..0xffff and a random payload;
 *  - PPP IPv6 and IPv4 frames with non-IP, truncated, oversized and wrong-version payloads
 *    (among them the 25-byte garbage frame that once made the TUN write throw);
 *  - control messages with a Message Type AVP and random AVPs, random Ns/Nr.
 * Each datagram goes out from one of `sources` in turn. Prints one JSON line with
 * what it sent when done.
 */

interface Args {
  target: { address: string; port: number };
  sources: { address: string; port: number }[];
  tunnelId: number;
  sessionId: number;
  seed: number;
  /** Datagrams per class other than the protocol sweep. */
  perClass: number;
  /** Datagrams handed to the kernel before yielding to the event loop. */
  burst: number;
}

const args = JSON.parse(process.argv[2]!) as Args;
const rnd = seededRng(args.seed);
const int = (n: number) => Math.floor(rnd() * n);
const bytes = (n: number) => {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = int(256);
  return b;
};
const ppp = (proto: number, payload: Uint8Array) => Buffer.concat([Buffer.from([0xff, 0x03, proto >> 8, proto & 0xff]), payload]);
const data = (frame: Uint8Array) => encodeData({ tunnelId: args.tunnelId, sessionId: args.sessionId }, frame);

function* datagrams(): Generator<[string, Uint8Array]> {
  for (let i = 0; i < args.perClass; i++) yield ['random', bytes(int(1500))];
  for (let i = 0; i < args.perClass; i++) {
    const out = Buffer.from(encodeData({ tunnelId: args.tunnelId, sessionId: args.sessionId, withLength: true }, ppp(0x0057, bytes(20 + int(200)))));
    // The Length field (after the flags) lies: longer than the datagram, or shorter than the header.
    out.writeUInt16BE(rnd() < 0.5 ? out.length + 1 + int(4000) : int(6), 2);
    yield ['lying-length', out];
  }
  for (let proto = 0; proto <= 0xffff; proto++) yield ['ppp-protocol', data(ppp(proto, bytes(int(64))))];
  for (let i = 0; i < args.perClass; i++) {
    const v6 = rnd() < 0.5;
    const proto = v6 ? 0x0057 : 0x0021;
    const kind = int(4);
    let payload: Buffer;
    if (kind === 0) payload = bytes(int(100)); // not IP at all (includes the 25-byte killer)
    else if (kind === 1) payload = Buffer.concat([Buffer.from([v6 ? 0x60 : 0x45]), bytes(int(v6 ? 39 : 19))]); // truncated header
    else if (kind === 2) {
      payload = bytes(1200 + int(300)); // claims far more than it carries
      payload[0] = v6 ? 0x60 : 0x45;
      payload[v6 ? 4 : 2] = 0xff;
      payload[v6 ? 5 : 3] = 0xff;
    } else {
      payload = bytes(40 + int(200)); // wrong version for the protocol
      payload[0] = (v6 ? 0x40 : 0x60) | (payload[0]! & 0x0f);
    }
    if (i % 97 === 0) payload = Buffer.alloc(25, 0x0b); // the known TUN EINVAL trigger
    yield ['ip-garbage', data(ppp(proto, payload))];
  }
  for (let i = 0; i < args.perClass; i++) {
    const avps: Buffer[] = [Buffer.from([0x80, 0x08, 0, 0, 0, 0, 0, int(20)])];
    for (let k = int(6); k > 0; k--) {
      const value = bytes(int(40));
      const len = 6 + value.length;
      avps.push(Buffer.concat([Buffer.from([(rnd() < 0.5 ? 0x80 : 0) | (len >> 8), len & 0xff, 0, rnd() < 0.8 ? 0 : int(256), 0, int(64)]), value]));
    }
    yield ['control-random-avps', encodeControl({ tunnelId: args.tunnelId, sessionId: rnd() < 0.5 ? 0 : args.sessionId, ns: int(65536), nr: int(65536) }, Buffer.concat(avps))];
  }
}

async function main(): Promise<void> {
  const socks = await Promise.all(
    args.sources.map(
      (s) =>
        new Promise<dgram.Socket>((res, rej) => {
          const sock = dgram.createSocket({ type: 'udp4', sendBufferSize: 1 << 20 });
          sock.once('error', rej);
          sock.bind(s.port, s.address, () => res(sock));
        }),
    ),
  );
  const sent: Record<string, number> = {};
  let n = 0;
  let pending = 0;
  for (const [kind, d] of datagrams()) {
    pending++;
    socks[n % socks.length]!.send(d, args.target.port, args.target.address, () => pending--);
    sent[kind] = (sent[kind] ?? 0) + 1;
    n++;
    // Pace by what the kernel took: a bounded queue in this process, no sleeping.
    if (n % args.burst === 0) while (pending > args.burst) await new Promise((r) => setImmediate(r));
  }
  while (pending > 0) await new Promise((r) => setImmediate(r));
  for (const s of socks) s.close();
  process.stdout.write(`${JSON.stringify({ total: n, sent })}\n`);
}

void main();

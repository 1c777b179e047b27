import { createInterface } from 'node:readline';
import { ALL_ROUTERS, Icmp6Socket } from '../../src/platform/icmp6-socket';
import { decodeNdMessage, emptyOptions, encodeNdMessage, ICMPV6_RA } from '../../src/ipv6/nd';
import { type Impairment, UdpRelay } from '../peer/relay';

/**
 * Helpers the fault tests run inside a namespace (the test runner itself stays in
 * the root namespace, and Node cannot enter another one):
 *
 *   ra IFNAME     prints every Router Advertisement heard on IFNAME as a JSON line
 *                 {ra: {at, from, routerLifetime, prefixes}}; a "rs" line on stdin
 *                 sends a Router Solicitation to ff02::2 from the same interface.
 *   relay JSON    runs the seeded UDP impairment relay (test/peer/relay.ts) with the
 *                 given RelayOptions; a JSON line on stdin replaces the impairment
 *                 and is answered with {stats}.
 *
 * Prints {ready: true} once listening.
 */

const print = (o: unknown) => process.stdout.write(`${JSON.stringify(o)}\n`);

async function main(): Promise<void> {
  const [mode, arg] = process.argv.slice(2);
  const rl = createInterface({ input: process.stdin });
  if (mode === 'ra') {
    const sock = Icmp6Socket.open(arg!);
    sock.setTypeFilter([ICMPV6_RA]);
    sock.onMessage((m) => {
      const at = Date.now();
      try {
        const ra = decodeNdMessage(m.data);
        if (ra.kind !== 'ra') return;
        print({
          ra: {
            at,
            from: m.from,
            to: m.to,
            routerLifetime: ra.routerLifetime,
            prefixes: ra.options.prefixes.map((p) => ({ prefix: `${p.prefix}/${p.prefixLength}`, valid: p.validLifetime, preferred: p.preferredLifetime })),
          },
        });
      } catch (e) {
        print({ bad: (e as Error).message });
      }
    });
    rl.on('line', (line) => {
      if (line.trim() === 'rs') print({ rsSent: sock.send(encodeNdMessage({ kind: 'rs', options: emptyOptions() }), ALL_ROUTERS) });
    });
    rl.on('close', () => process.exit(0));
    print({ ready: true });
    return;
  }
  if (mode === 'relay') {
    const relay = await UdpRelay.start(JSON.parse(arg!) as Parameters<typeof UdpRelay.start>[0]);
    rl.on('line', (line) => {
      try {
        relay.setImpairment(JSON.parse(line) as Partial<Impairment>);
        print({ stats: relay.stats });
      } catch (e) {
        print({ bad: (e as Error).message });
      }
    });
    rl.on('close', () => {
      relay.close();
      process.exit(0);
    });
    print({ ready: true, port: relay.port });
    return;
  }
  throw new Error(`unknown mode ${mode}`);
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});

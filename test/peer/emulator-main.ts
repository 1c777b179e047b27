import { createInterface } from 'node:readline';
import type { AvpValues } from '../../src/l2tp/avps';
import type { MessageName } from '../../src/l2tp/messages';
import { Emulator, type EmulatorOptions } from './emulator';
import { type Impairment, UdpRelay } from './relay';

/**
 * Runs one Emulator as a process, so that a test can put it in another network
 * namespace. The script (EmulatorOptions, plus an optional impairment relay in
 * front of it) comes as JSON in argv[2]. Events go to stdout as JSON lines;
 * commands come on stdin as JSON lines {id, cmd, ...} and are answered with
 * {reply: id, ...}.
 */

export interface EmulatorScript extends EmulatorOptions {
  /** A seeded impairment relay listening on relay.host:relay.port and forwarding to the emulator. */
  relay?: { host: string; port: number; seed: number; impairment: Partial<Impairment>; holdMs?: number };
}

export type EmulatorCommand =
  | { cmd: 'stopccn'; result: number; error?: number; message?: string; tunnelId?: number }
  | { cmd: 'cdn'; result: number; error?: number; message?: string; tunnelId?: number }
  | { cmd: 'raw'; hex: string; tunnelId?: number; fromAddress?: string; fromPort?: number; repeat?: number }
  /** A control message through the channel; `values` as AvpValues JSON (AVPs without byte values only). */
  | { cmd: 'ctl'; message: MessageName; sessionId: number; values?: Record<string, unknown>; tunnelId?: number }
  /** Data sequencing on or off from now on (S=1 with Ns, or S=0). */
  | { cmd: 'sequencing'; on: boolean }
  /** An LCP Echo-Request to the agent on the latest session. */
  | { cmd: 'echo'; tunnelId?: number }
  | { cmd: 'status' }
  | { cmd: 'close' };

const print = (o: unknown) => process.stdout.write(`${JSON.stringify(o)}\n`);

async function main(): Promise<void> {
  const script = JSON.parse(process.argv[2] ?? '{}') as EmulatorScript;
  const emu = await Emulator.start(script);
  let relay: UdpRelay | undefined;
  if (script.relay) {
    const r = script.relay;
    relay = await UdpRelay.start({
      listenHost: r.host,
      listenPort: r.port,
      targetHost: emu.address.address,
      targetPort: emu.address.port,
      seed: r.seed,
      impairment: r.impairment,
      holdMs: r.holdMs,
    });
  }
  emu.onEvent((ev) => print({ ev }));
  const stop = () => {
    relay?.close();
    emu.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  const rl = createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    void (async () => {
      let req: EmulatorCommand & { id?: number };
      try {
        req = JSON.parse(line) as EmulatorCommand & { id?: number };
      } catch {
        return;
      }
      const reply = (o: Record<string, unknown>) => print({ reply: req.id, ...o });
      try {
        switch (req.cmd) {
          case 'stopccn':
            return reply({ ok: true, tunnelId: emu.stopCcn({ result: req.result, error: req.error, message: req.message }, req.tunnelId) });
          case 'cdn':
            return reply({ ok: true, sessionId: emu.cdn({ result: req.result, error: req.error, message: req.message }, req.tunnelId) });
          case 'raw':
            await emu.sendRaw(Buffer.from(req.hex, 'hex'), req);
            return reply({ ok: true });
          case 'ctl':
            return reply({ ok: true, tunnelId: emu.sendControl(req.message, req.sessionId, (req.values ?? {}) as AvpValues, req.tunnelId) });
          case 'sequencing':
            emu.setDataSequencing(req.on);
            return reply({ ok: true });
          case 'echo':
            return reply({ ok: emu.echo(req.tunnelId), error: 'no established session' });
          case 'status':
            return reply({
              ok: true,
              counters: emu.counters,
              tunnels: emu.tunnelViews(),
              received: emu.received,
              relay: relay?.stats,
              data: emu.dataCounters,
              dataRx: emu.dataRx,
            });
          case 'close':
            reply({ ok: true });
            return stop();
          default:
            return reply({ ok: false, error: 'unknown command' });
        }
      } catch (e) {
        reply({ ok: false, error: (e as Error).message });
      }
    })();
  });
  rl.on('close', stop);
  print({ ready: true, address: emu.address, relayPort: relay?.port });
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});

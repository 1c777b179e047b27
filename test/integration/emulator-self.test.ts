import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { Lac, type LacAction, type LacConfig } from '../../src/l2tp/lac';
import { Emulator, type EmulatorOptions } from '../peer/emulator';

/**
 * The emulator itself, in-process on loopback, driven by the project's LAC core over
 * a real UDP socket: the impairment and scripting knobs do what they say.
 */

async function pair(t: { after: (fn: () => unknown) => void }, opts: EmulatorOptions, lacCfg: Partial<LacConfig> = {}) {
  const emu = await Emulator.start({ ppp: false, ...opts });
  t.after(() => emu.close());
  const host = emu.address.address;
  const sock = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  await new Promise<void>((r) => sock.bind(0, host, r));
  const timers = new Map<string, NodeJS.Timeout>();
  const events: LacAction[] = [];
  let peerPort = emu.address.port;
  const lac = new Lac({ hostName: 'self-test', random: (n) => new Uint8Array(randomBytes(n)), ...lacCfg });
  const run = (acts: LacAction[]) => {
    for (const a of acts) {
      if (a.type === 'send') sock.send(a.bytes, peerPort, host);
      else if (a.type === 'timer-start') {
        clearTimeout(timers.get(a.timer));
        timers.set(a.timer, setTimeout(() => run(lac.timerFired(a.timer)), a.ms));
      } else if (a.type === 'timer-stop') clearTimeout(timers.get(a.timer));
      else {
        if (a.type === 'peer-address') peerPort = Number(a.from.slice(a.from.lastIndexOf(':') + 1));
        events.push(a);
      }
    }
  };
  sock.on('message', (m, r) => run(lac.receive(new Uint8Array(m), r.family === 'IPv6' ? `[${r.address}]:${r.port}` : `${r.address}:${r.port}`)));
  t.after(() => {
    for (const x of timers.values()) clearTimeout(x);
    sock.close();
  });
  const until = async (type: LacAction['type'], ms = 5000) => {
    const end = Date.now() + ms;
    while (!events.some((e) => e.type === type)) {
      if (Date.now() > end) throw new Error(`no ${type}: ${JSON.stringify(events)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  const t0 = Date.now();
  run(lac.open());
  return { emu, lac, events, until, t0 };
}

test('IPv6 loopback, hidden AVPs read with the secret, unknown AVPs carried, duplicate and delay applied', async (t) => {
  const { emu, lac, until, t0, events } = await pair(
    t,
    {
      host: '::1',
      secret: 'sw-secret',
      hide: { avps: ['hostName', 'assignedTunnelId'], messages: ['SCCRP'] },
      extraAvps: [{ message: 'ICRP', type: 4000, vendorId: 9, mandatory: false, value: '00ff' }],
      impair: [
        { dir: 'out', type: 'SCCRP', nth: 1, action: 'delay', ms: 300 },
        { dir: 'out', type: 'ICRP', action: 'duplicate' },
      ],
    },
    { secret: 'sw-secret' },
  );
  await until('session-up');
  assert.ok(Date.now() - t0 >= 300, 'SCCRP was delayed');
  const up = events.find((e) => e.type === 'tunnel-up');
  assert.ok(up?.type === 'tunnel-up' && up.info.peerHostName === 'emulator' && up.info.remoteTunnelId === 2 && up.info.authenticated);
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(lac.status().counters.duplicates, 1, 'the duplicated ICRP was seen once more');
  assert.equal(emu.counters.impaired.delay, 1);
  assert.equal(emu.counters.impaired.duplicate, 1);
  assert.equal(emu.counters.tx.ICRP, 2);
  assert.deepEqual(
    emu.received.filter((r) => r.type !== 'ZLB').map((r) => r.type),
    ['SCCRQ', 'SCCCN', 'ICRQ', 'ICCN'],
  );
  assert.equal(emu.tunnel()?.session?.state, 'established');
});

test('reply from another port, an incoming reorder and a StopCCN on demand', async (t) => {
  const { emu, lac, until, events } = await pair(t, { replyPort: 0, impair: [{ dir: 'in', type: 'SCCCN', action: 'reorder', ms: 100 }] });
  await until('session-up');
  assert.notEqual(emu.tunnel()!.localPort, emu.address.port);
  assert.equal(lac.status().peer, `127.0.0.1:${emu.tunnel()!.localPort}`);
  // The held SCCCN came in after ICRQ: the channel put them back in order.
  const order = emu.received.filter((r) => r.type !== 'ZLB').map((r) => r.type);
  assert.deepEqual(order.slice(0, 3), ['SCCRQ', 'ICRQ', 'SCCCN']);
  assert.equal(emu.stopCcn({ result: 6, message: 'shutting down' }), 2);
  await until('down');
  const down = events.find((e) => e.type === 'down' && e.layer === 'tunnel');
  assert.ok(down?.type === 'down' && down.reason === 'peer-stopccn' && down.resultCode === 6);
});

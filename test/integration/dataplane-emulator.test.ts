import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { Netns } from '../lab/netns';
import { scLayout } from '../lab/topology';
import { EmulatorProc } from '../peer/emulator-proc';
import { startFastAgent } from './dataplane-lab';

/**
 * The SC emulator's data mode (test/peer/emulator-data.ts) with the agent: the
 * session's IP data is carried between the agent's side and a host address behind
 * the emulator's TUN, both families, bulk TCP intact both ways. This is what the
 * bench's scenario (c) runs iperf3 over.
 */

const skip = process.getuid?.() === 0 ? false : 'needs root (network namespaces, TUN)';
const FAR4 = '203.0.113.1';
const FAR6 = '2001:db8:300::1';
const SIZE = 8 * 1024 * 1024;

// Receives one TCP stream and prints "length sha256", or sends a file. Runs in a namespace.
const PEER = `
const net = require('net'), fs = require('fs'), crypto = require('crypto');
const [mode, host, port, file] = process.argv.slice(1);
const hashIn = (s) => { const h = crypto.createHash('sha256'); let n = 0; s.on('data', (d) => { n += d.length; h.update(d); }); s.on('end', () => { console.log(n + ' ' + h.digest('hex')); process.exit(0); }); };
const send = (s) => fs.createReadStream(file).pipe(s);
if (mode.startsWith('listen')) {
  const srv = net.createServer((s) => { srv.close(); mode === 'listen-recv' ? hashIn(s) : send(s); });
  srv.listen(Number(port), host, () => console.log('listening'));
} else {
  const s = net.connect(Number(port), host, () => { mode === 'connect-send' ? send(s) : hashIn(s); });
}
`;

function output(p: ChildProcess): Promise<string> {
  let out = '';
  p.stdout!.setEncoding('utf8');
  p.stdout!.on('data', (d: string) => (out += d));
  return new Promise((res, rej) => p.on('exit', (code) => (code === 0 ? res(out) : rej(new Error(`peer exited ${code}: ${out}`)))));
}

async function transfer(from: Netns, to: Netns, addr: string, file: string, expect: string, toListener: boolean): Promise<void> {
  const port = String(20000 + Math.floor(Math.random() * 10000));
  const srv = to.spawn('node', ['-e', PEER, toListener ? 'listen-recv' : 'listen-send', addr, port, file]);
  await new Promise<void>((res) => srv.stdout!.once('data', () => res()));
  const srvOut = toListener ? output(srv) : Promise.resolve('');
  const cliOut = output(from.spawn('node', ['-e', PEER, toListener ? 'connect-send' : 'connect-recv', addr, port, file]));
  const got = toListener ? await srvOut : await cliOut;
  await cliOut;
  assert.equal(got.trim().split('\n').pop(), expect);
}

describe('emulator data mode', { skip }, () => {
  test('IPv4 and IPv6 through the agent and the emulator TUN; 8 MB each way intact', async (t) => {
    const lay = scLayout();
    t.after(() => lay.topo.destroy());
    lay.sc.ip(['addr', 'add', `${FAR4}/32`, 'dev', 'lo']);
    lay.sc.ip(['-6', 'addr', 'add', `${FAR6}/128`, 'dev', 'lo']);
    const emu = await EmulatorProc.start(lay.sc, {
      host: lay.scAddress,
      port: 1701,
      ppp: {
        users: [{ name: 'dp', password: 'dp-secret' }],
        ipcp: { local: '100.64.0.1', peer: '100.64.0.2' },
        ra: { prefix: '2001:db8:200::', managed: false, other: false },
      },
      data: { tun: 'emu0' },
    });
    t.after(() => emu.stop());
    const a = startFastAgent(lay.cpe, ['--sc', lay.scAddress, '--user', 'dp', '--ncp', 'dual', '--mode', 'host'], 'dp-secret');
    t.after(() => a.stop());
    await a.waitState('up', 20_000);
    await emu.waitEvent((e) => e.type === 'data-route' && e.route === '100.64.0.2/32', 5000, 'IPv4 route into emu0');
    await emu.waitEvent((e) => e.type === 'data-route' && e.route === '2001:db8:200::/64', 5000, 'IPv6 route into emu0');
    await a.waitLog(/\(SLAAC\)/, 10_000);

    lay.cpe.exec('ping', ['-c', '2', '-W', '2', FAR4]);
    lay.cpe.exec('ping', ['-6', '-c', '2', '-W', '2', FAR6]);

    const data = randomBytes(SIZE);
    const dir = mkdtempSync(join(tmpdir(), 'softwire-emu-dp-'));
    const file = join(dir, 'blob');
    writeFileSync(file, data);
    const expect = `${SIZE} ${createHash('sha256').update(data).digest('hex')}`;
    await transfer(lay.cpe, lay.sc, FAR4, file, expect, true);
    await transfer(lay.cpe, lay.sc, FAR4, file, expect, false);
    await transfer(lay.cpe, lay.sc, FAR6, file, expect, true);

    const st = await emu.status();
    const d = st.data!;
    t.diagnostic(`emulator data ${JSON.stringify(d)}; agent ${JSON.stringify((await a.status()).counters.data)}`);
    // Two uploads and one download of 8 MB in segments of at most 1420 bytes (about 5900 each).
    assert.ok(d.toTun > 2 * 5000, `into the emulator TUN: ${d.toTun}`);
    assert.ok(d.toAgent > 5000, `from the emulator TUN to the agent: ${d.toAgent}`);
    const ag = (await a.status()).counters.data;
    assert.ok(ag.txBatches! > 0 && ag.rxBatches! > 0, 'the agent used its fast path');
  });
});

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { scLayout } from '../lab/topology';
import { EmulatorProc } from '../peer/emulator-proc';
import { transfer } from '../helpers/transfer';
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

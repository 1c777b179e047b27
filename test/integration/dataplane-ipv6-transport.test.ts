import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { link, Topology } from '../lab/netns';
import { EmulatorProc } from '../peer/emulator-proc';
import { startFastAgent } from './dataplane-lab';

/**
 * L2TP over UDP/IPv6 (an SC given as an IPv6 address) with the native transport,
 * against the project's SC emulator (l2tpns has no IPv6 transport): the session comes
 * up, the MTU accounts for the 40-byte IPv6 header, and data from the TUN reaches the
 * SC as L2TP data over IPv6.
 */

const rxData = (c: { rx: Record<string, number> }): number => c.rx.data ?? 0;

const skip = process.getuid?.() === 0 ? false : 'needs root (network namespaces)';

describe('IPv6 transport', { skip }, () => {
  test('session over UDP/IPv6; MTU 1500 - 60 = 1440; data reaches the SC', async (t) => {
    const topo = new Topology();
    t.after(() => topo.destroy());
    const sc = topo.ns('sc6');
    const cpe = topo.ns('cpe6');
    link(sc, '2001:db8:ffff::1/64', cpe, '2001:db8:ffff::2/64');
    const emu = await EmulatorProc.start(sc, { host: '2001:db8:ffff::1', port: 1701, ppp: { peerIid: '0200000000000abc' } });
    t.after(() => emu.stop());
    const a = startFastAgent(cpe, ['--sc', '2001:db8:ffff::1', '--user', 'cpe1', '--mode', 'host', '--ncp', 'ipv6'], 'secret1');
    t.after(() => a.stop());
    const s = await a.waitState('up', 15_000);
    assert.equal(s.sc?.address, '2001:db8:ffff::1');
    assert.equal(s.local?.address, '2001:db8:ffff::2');
    assert.equal(s.session?.state, 'established');
    const l = cpe.ipJson<{ mtu: number }[]>(['link', 'show', 'sw0']);
    assert.equal(l[0]?.mtu, 1440, 'RFC 5571 5.2.1 overhead with an IPv6 outer header');
    const before = (await emu.status()).counters;
    // Traffic from the host into the softwire (no reply expected from the emulator).
    cpe.ip(['-6', 'route', 'replace', '2001:db8:99::/64', 'dev', 'sw0']);
    cpe.exec('bash', ['-c', 'for i in 1 2 3 4 5; do echo x > /dev/udp/2001:db8:99::1/9; done']);
    const deadline = Date.now() + 3000;
    let after = before;
    while (Date.now() < deadline) {
      after = (await emu.status()).counters;
      if (rxData(after) - rxData(before) >= 5) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const st = await a.status();
    t.diagnostic(`agent data counters ${JSON.stringify(st.counters.data)}; emulator ${JSON.stringify(after)}`);
    assert.ok(st.counters.data.tunIn! >= 5 && st.counters.data.txBatches! >= 1, 'sent by the fast path');
    assert.ok(rxData(after) - rxData(before) >= 5, 'the emulator received them as L2TP data over IPv6');
  });
});

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
 * Data-path offloads (issue 17) end to end, on this kernel: the agent (bin/softwire)
 * and the SC emulator's data mode both with TSO TUNs and UDP GSO/GRO, then both
 * without (--no-offloads), and a large file crosses intact each way and in both
 * families. With offloads on, the counters must show super-packets cut, UDP trains
 * sent and received and segments joined: the offload code carried the file, not a
 * fallback.
 */

const skip = process.getuid?.() === 0 ? false : 'needs root (network namespaces, TUN)';
const FAR4 = '203.0.113.1';
const FAR6 = '2001:db8:300::1';
const SIZE = 24 * 1024 * 1024;

describe('data path with and without kernel offloads', { skip }, () => {
  for (const offload of [true, false]) {
    test(`offloads ${offload ? 'on' : 'off'}: 24 MB each way over IPv4 and up over IPv6, intact`, async (t) => {
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
        data: { tun: 'emu0', offload },
      });
      t.after(() => emu.stop());
      const args = ['--sc', lay.scAddress, '--user', 'dp', '--ncp', 'dual', '--mode', 'host'];
      const a = startFastAgent(lay.cpe, offload ? args : [...args, '--no-offloads'], 'dp-secret');
      t.after(() => a.stop());
      await a.waitState('up', 20_000);
      await emu.waitEvent((e) => e.type === 'data-route' && e.route === '100.64.0.2/32', 5000, 'IPv4 route into emu0');
      await emu.waitEvent((e) => e.type === 'data-route' && e.route === '2001:db8:200::/64', 5000, 'IPv6 route into emu0');
      await a.waitLog(/\(SLAAC\)/, 10_000);
      lay.cpe.exec('ping', ['-c', '2', '-W', '2', FAR4]);
      lay.cpe.exec('ping', ['-6', '-c', '2', '-W', '2', FAR6]);

      const data = randomBytes(SIZE);
      const dir = mkdtempSync(join(tmpdir(), 'softwire-offload-'));
      const file = join(dir, 'blob');
      writeFileSync(file, data);
      const expect = `${SIZE} ${createHash('sha256').update(data).digest('hex')}`;
      await transfer(lay.cpe, lay.sc, FAR4, file, expect, true);
      await transfer(lay.cpe, lay.sc, FAR4, file, expect, false);
      await transfer(lay.cpe, lay.sc, FAR6, file, expect, true);

      if (offload) {
        // MSS 88 (the SC side advertises it): a 64 KB super-packet cuts into ~740
        // packets, so the TUN ring (1536 entries) fills mid-wake-up and the rest of a
        // read is delivered in a further round. The bytes must still arrive intact.
        lay.sc.ip(['route', 'change', '100.64.0.2/32', 'dev', 'emu0', 'advmss', '88']);
        const small = join(dir, 'small');
        writeFileSync(small, data.subarray(0, 4 * 1024 * 1024));
        const smallExpect = `${4 * 1024 * 1024} ${createHash('sha256').update(data.subarray(0, 4 * 1024 * 1024)).digest('hex')}`;
        await transfer(lay.cpe, lay.sc, FAR4, small, smallExpect, true);
      }
      const st = await a.status();
      const d = st.counters.data;
      t.diagnostic(`agent offloads ${JSON.stringify(st.offloads)} data ${JSON.stringify(d)}; emulator ${JSON.stringify((await emu.status()).data)}`);
      if (offload) {
        for (const o of ['vnet-hdr', 'csum', 'tso4', 'tso6', 'tcp-coalesce', 'udp-gso', 'udp-gro']) assert.ok(st.offloads?.includes(o), `status lists ${o}: ${JSON.stringify(st.offloads)}`);
        assert.ok(d['tun.superIn']! > 0 && d['tun.segmentsOut']! > d['tun.superIn']!, 'uploads came from the TUN as super-packets and were cut');
        assert.ok(d['udp.gsoTrains']! > 0, 'cut packets left as UDP GSO trains');
        assert.ok(d['udp.groTrains']! > 0, 'the download arrived as UDP GRO trains');
        assert.ok(d['tun.joinedOut']! > 0, 'and was joined into super-packets for the TUN');
        assert.equal(d['tun.splitDrops'], undefined, 'every read was cut, the small-MSS ones too');
      } else {
        assert.deepEqual(st.offloads, [], 'status lists no offloads');
        assert.equal(d['tun.superIn'], undefined);
      }
      assert.equal(d.txDrops, 0, 'no drops towards the SC');
    });
  }
});

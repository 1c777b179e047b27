import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { scLayout, type ScLayout } from '../lab/topology';
import { AgentProc } from '../helpers/agent-proc';
import type { EmulatorScript } from '../peer/emulator-main';
import { EmulatorProc } from '../peer/emulator-proc';

/**
 * Setup deadlines (issue 15) with the real agent against the SC emulator playing a
 * stalled SC: an LNS waiting on RADIUS or on a full session table acknowledges our
 * request with a ZLB (RFC 2661 5.8) and then says nothing. Here every SCCRP (or ICRP)
 * the emulator sends is lost on the way, so the agent's retransmissions are
 * ZLB-acknowledged and its control channel has nothing left to time out.
 */

const root = process.getuid?.() === 0;
const skip = root ? false : 'needs root (network namespaces)';

type T = { after: (fn: () => unknown) => void; diagnostic: (m: string) => void };

async function setup(t: T, script: EmulatorScript, args: string[]): Promise<{ lay: ScLayout; emu: EmulatorProc; a: AgentProc }> {
  const lay = scLayout();
  t.after(() => lay.topo.destroy());
  const emu = await EmulatorProc.start(lay.sc, { host: lay.scAddress, port: 1701, ...script });
  t.after(() => emu.stop());
  const a = AgentProc.start(lay.cpe, ['--sc', lay.scAddress, '--user', 'cpe1', '--reconnect-initial', '0.5', '--reconnect-cap', '4', ...args], { password: 'secret1' });
  t.after(() => a.stop());
  return { lay, emu, a };
}

describe('setup deadlines against a stalled SC', { skip }, () => {
  test('an SC that acknowledges SCCRQ with a ZLB and never sends SCCRP: the attempt ends after --sccrp-timeout and the agent dials again', async (t) => {
    const { emu, a } = await setup(t, { impair: [{ dir: 'out', type: 'SCCRP', action: 'drop' }] }, ['--sccrp-timeout', '2']);
    const line = await a.waitLog(/tunnel down: no SCCRP \(tunnel reply\) from the SC within 2 s/, 15_000);
    assert.match(line.msg, /retrying in/);
    const s = await a.status();
    assert.equal(s.state, 'connecting');
    assert.match(s.lastError?.message ?? '', /no SCCRP/);
    // A second attempt: a new SCCRQ with a new tunnel ID.
    await emu.waitEvent((e) => e.type === 'rx' && e.record.type === 'SCCRQ' && emu.received('SCCRQ').some((r) => r.values.assignedTunnelId !== e.record.values.assignedTunnelId), 15_000, 'a second attempt');
    assert.ok(((await emu.status()).counters.tx.ZLB ?? 0) >= 1, 'the SC acknowledged our SCCRQ with a ZLB');
    assert.equal(a.proc.exitCode, null);
  });

  test('an SC that stalls after ICRQ: the attempt is cleared with StopCCN result 2 naming the missing ICRP, then the agent dials again', async (t) => {
    const { emu, a } = await setup(t, { impair: [{ dir: 'out', type: 'ICRP', action: 'drop' }] }, ['--icrp-timeout', '2']);
    await a.waitLog(/session down: no ICRP \(session reply\) from the SC within 2 s/, 15_000);
    await emu.waitEvent((e) => e.type === 'rx' && e.record.type === 'StopCCN', 10_000, 'StopCCN');
    const rc = emu.received('StopCCN')[0]!.values.resultCode as { result: number; error?: number; message?: string };
    assert.equal(rc.result, 2, 'general error');
    assert.match(rc.message ?? '', /no ICRP/);
    await emu.waitEvent((e) => e.type === 'tunnel' && e.state === 'new' && e.tunnelId !== 2, 15_000, 'a second tunnel');
    assert.equal(a.proc.exitCode, null);
  });
});

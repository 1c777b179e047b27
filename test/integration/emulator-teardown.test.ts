import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { agent, emulator, layout } from '../helpers/emulator-rig';
import { encodeControl, encodeControlBody } from '../../src/l2tp/messages';

/**
 * Teardown the SC can see, and an exit that happens (issue 15), with the real agent
 * (bin/softwire in the cpe namespace) against the SC emulator:
 * - a real SC loses datagrams: when our StopCCN is lost, an LNS (l2tpns among them)
 *   keeps the tunnel, the session and its accounting until its HELLO fails; the agent
 *   must retransmit StopCCN within its shutdown budget;
 * - a real SC retransmits its StopCCN when our ZLB ack is lost (RFC 2661 5.7): the
 *   agent must keep answering on the old socket while it already dials anew;
 * - a local firewall that rejects our sends (sendmsg EPERM) must not keep the process
 *   alive after it said "stopped";
 * - the kernel refusing our cleanup at exit (netlink errors: the route and address we
 *   installed were removed under us, as an operator or another daemon does) must not
 *   either.
 */

const root = process.getuid?.() === 0;
const skip = root ? false : 'needs root (network namespaces)';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('teardown the SC sees, exit that happens', { skip }, () => {
  test('SIGTERM with the first StopCCN lost: the agent retransmits it within its 3 s budget and the SC closes the tunnel', async (t) => {
    const lay = layout(t);
    const emu = await emulator(t, lay, { impair: [{ dir: 'in', type: 'StopCCN', nth: 1, action: 'drop' }] });
    const a = agent(t, lay);
    await a.waitState('up', 15_000);
    const { code, tookMs } = await a.stop(10_000);
    t.diagnostic(`SIGTERM to exit: ${tookMs} ms`);
    assert.equal(code, 0);
    assert.ok(tookMs < 3500, `shutdown took ${tookMs} ms`);
    const st = await emu.status();
    assert.deepEqual(
      st.received.filter((r) => r.type === 'StopCCN').map((r) => `${r.type}${r.impaired ? `:${r.impaired}` : ''}`),
      ['StopCCN:drop', 'StopCCN'],
    );
    assert.deepEqual(
      st.tunnels.map((x) => x.state),
      ['closed'],
      'the SC has no tunnel left',
    );
  });

  test("after the SC's StopCCN the old socket still acknowledges the SC's retransmission while the agent dials a new tunnel", async (t) => {
    const lay = layout(t);
    const emu = await emulator(t, lay, {});
    const a = agent(t, lay);
    await a.waitState('up', 15_000);
    const old = (await emu.status()).tunnels[0]!;
    const r = await emu.command({ cmd: 'stopccn', result: 6, message: 'shutting down' });
    assert.equal(r.tunnelId, old.localId);
    const after = (await emu.status()).tunnels.find((x) => x.localId === old.localId)!;
    // The StopCCN just sent took Ns = next - 1; a retransmission carries the same Ns and Nr.
    const stopNs = (after.seq!.ns + 0xffff) & 0xffff;
    // Wait until the agent dials again (a second tunnel), then retransmit to the old peer port.
    await emu.waitEvent((e) => e.type === 'tunnel' && e.state === 'new' && e.tunnelId !== old.localId, 10_000, 'a new tunnel');
    const before = (await emu.status()).received.filter((x) => x.type === 'ZLB' && x.from === old.peer && x.tunnelId === old.localId).length;
    const stop = encodeControl(
      { tunnelId: old.peerId, sessionId: 0, ns: stopNs, nr: after.seq!.nr },
      encodeControlBody('StopCCN', { assignedTunnelId: old.localId, resultCode: { result: 6, message: 'shutting down' } }),
    );
    await emu.command({ cmd: 'raw', hex: Buffer.from(stop).toString('hex'), tunnelId: old.localId });
    let zlbs = before;
    for (let i = 0; i < 60 && zlbs === before; i++) {
      await sleep(50);
      zlbs = (await emu.status()).received.filter((x) => x.type === 'ZLB' && x.from === old.peer && x.tunnelId === old.localId).length;
    }
    assert.equal(zlbs, before + 1, 'the retransmitted StopCCN was acknowledged from the old socket');
    const s = await a.waitState('up', 15_000);
    assert.notEqual(`${s.local?.address}:${s.local?.port}`, old.peer, 'the new tunnel runs on a new socket');
  });

  test('a notify command that hangs: SIGTERM still ends the process', async (t) => {
    const lay = layout(t);
    await emulator(t, lay, {});
    const dir = mkdtempSync(join(tmpdir(), 'softwire-notify-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const script = join(dir, 'notify');
    // Every run hangs (a receiver that never answers), well past the 3 s shutdown promise.
    writeFileSync(script, '#!/bin/sh\nexec sleep 600\n', { mode: 0o755 });
    const a = agent(t, lay, ['--notify-command', script]);
    await a.waitState('up', 15_000);
    const { code, tookMs } = await a.stop(10_000);
    t.diagnostic(`SIGTERM to exit with a hanging notify command: ${tookMs} ms`);
    assert.equal(code, 0, `exited by itself (not killed): ${a.tail(8)}`);
    assert.ok(tookMs < 5000, `shutdown took ${tookMs} ms`);
  });

  test('a firewall rule rejecting our L2TP sends (sendmsg EPERM): SIGTERM still ends the process', async (t) => {
    const lay = layout(t);
    await emulator(t, lay, {});
    const a = agent(t, lay);
    await a.waitState('up', 15_000);
    lay.cpe.exec('nft', ['-f', '-'], {
      input: 'table inet softwire_test {\n chain out {\n  type filter hook output priority 0;\n  udp dport 1701 drop\n }\n}\n',
    });
    const { code, tookMs } = await a.stop(8000);
    t.diagnostic(`SIGTERM to exit with sends rejected: ${tookMs} ms; ${a.find(/dropped at an I\/O edge/)?.reason ?? 'no drop logged'}`);
    assert.equal(code, 0, `exited by itself (not killed): ${a.tail(8)}`);
    assert.ok(tookMs < 5000, `shutdown took ${tookMs} ms`);
    assert.ok(a.find(/^stopped$/), 'said stopped');
  });

  test('a netlink error at exit (the route to the SC we pinned was removed under us): SIGTERM still ends the process, down', async (t) => {
    const lay = layout(t);
    await emulator(t, lay, { ppp: { ipcp: { local: '100.64.0.1', peer: '100.64.0.2' } } });
    // IPv4 default into the softwire: the agent first pins a /32 to the SC on the WAN, which outlives the TUN.
    const a = agent(t, lay, ['--ncp', 'dual']);
    await a.waitState('up', 15_000);
    const pin = () => lay.cpe.ipJson<{ dst: string; dev?: string }[]>(['-4', 'route', 'show', `${lay.scAddress}/32`]);
    for (let i = 0; i < 100 && pin().length === 0; i++) await sleep(50);
    assert.equal(pin().length, 1, `the SC route is pinned: ${JSON.stringify(lay.cpe.ipJson(['-4', 'route']))}`);
    // An operator (or another daemon) removes it: the agent's own RTM_DELROUTE at exit now fails (ESRCH).
    lay.cpe.ip(['-4', 'route', 'del', `${lay.scAddress}/32`]);
    const { code, tookMs } = await a.stop(8000);
    const failed = a.lines.filter((l) => /kernel configuration failed/.test(l.msg)).map((l) => l as { op?: string; err?: string });
    t.diagnostic(`SIGTERM to exit with a netlink error: ${tookMs} ms; ${failed.map((l) => `${l.op}: ${l.err}`).join('; ')}`);
    assert.equal(code, 0, `exited by itself (not killed): ${a.tail(12)}`);
    assert.ok(tookMs < 5000, `shutdown took ${tookMs} ms`);
    assert.ok(failed.some((l) => l.op === 'sc-route-remove'), `the kernel refused the removal: ${a.tail(12)}`);
    assert.ok(a.find(/^softwire down$/), 'said down');
    assert.ok(a.find(/^stopped$/), 'said stopped');
    const left = lay.cpe.ipJson<{ dst: string; dev?: string }[]>(['-4', 'route']).filter((r) => r.dev === 'sw0' || r.dst === `${lay.scAddress}/32`);
    assert.deepEqual(left, [], 'nothing of ours left in the routing table');
  });
});

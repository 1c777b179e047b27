import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { l2tpnsAvailable } from '../lab/l2tpns';
import { addLan, sleep, startAgent, waitLogAfter, withSc } from './lifecycle-helpers';

/**
 * Signals against l2tpns: SIGTERM leaves nothing behind (router role with a
 * LAN), a second SIGTERM exits at once, SIGHUP reloads the config file and
 * reconnects only when a setting needs it.
 */

const avail = l2tpnsAvailable();
const skip = avail.ok ? false : avail.message;

describe('agent lifecycle: signals against l2tpns', { skip }, () => {
  test('SIGTERM in the router role: within 3 s, no route, address, TUN, LAN address, unreachable route, socket or process left', async (t) => {
    const { lay, sc } = await withSc(t);
    const lan = addLan(lay);
    const a = startAgent(t, lay, ['--mode', 'router', '--lan', lan.ifname]);
    await a.waitState('up', 15_000);
    const end = Date.now() + 10_000;
    while (!(await a.status()).ipv6?.lan.length && Date.now() < end) await sleep(100);
    const lanAddr = (await a.status()).ipv6?.lan[0]?.address;
    assert.ok(lanAddr, a.tail());
    const globals = () =>
      lay.cpe
        .ipJson<{ addr_info: { local: string; scope: string }[] }[]>(['-6', 'addr', 'show', 'dev', lan.ifname])
        .flatMap((x) => x.addr_info)
        .filter((x) => x.scope === 'global')
        .map((x) => x.local);
    const unreachable = () => lay.cpe.ipJson<{ dst: string; type?: string }[]>(['-6', 'route', 'show', 'type', 'unreachable']).map((r) => r.dst);
    assert.deepEqual(globals(), [lanAddr]);
    assert.ok(unreachable().includes('2001:db8:100::/56'), `unreachable route for the delegated prefix: ${unreachable()}`);
    assert.ok(existsSync(join(a.dir, 'resolv.conf')));

    const off = sc.log().length;
    const { code, tookMs } = await a.stop();
    t.diagnostic(`router-role shutdown took ${tookMs} ms`);
    assert.equal(code, 0);
    assert.ok(tookMs < 3000, `${tookMs} ms`);
    await sc.waitForLog(/Received StopCCN/, 3000, off);
    assert.throws(() => lay.cpe.ip(['link', 'show', 'sw0']), /does not exist/);
    assert.deepEqual(globals(), [], 'LAN address removed');
    assert.deepEqual(unreachable(), [], 'unreachable route removed');
    assert.deepEqual(lay.cpe.ipJson<unknown[]>(['-6', 'route', 'show', 'proto', '157']), []);
    assert.deepEqual(lay.cpe.ipJson<unknown[]>(['-6', 'route', 'show', 'default']), []);
    assert.equal(existsSync(a.socket), false, 'control socket removed');
    assert.equal(existsSync(join(a.dir, 'resolv.conf')), false, 'resolv file removed');
    assert.notEqual(a.proc.exitCode, null, 'process gone');
  });

  test('a second SIGTERM during the graceful shutdown exits at once with 130', async (t) => {
    const { lay } = await withSc(t);
    const a = startAgent(t, lay, ['--mode', 'router']);
    await a.waitState('up', 15_000);
    await sleep(1500); // let DHCPv6 get its lease, so the shutdown has a Release to wait for
    const exit = new Promise<number | null>((r) => a.proc.once('exit', (c) => r(c)));
    const t0 = Date.now();
    a.proc.kill('SIGTERM');
    await waitLogAfter(a, 0, /^shutting down$/, 2000);
    a.proc.kill('SIGTERM');
    const code = await exit;
    t.diagnostic(`second signal: exit ${code} after ${Date.now() - t0} ms`);
    assert.equal(code, 130);
    assert.ok(a.find(/second signal: exiting at once/));
    assert.equal(a.find(/^stopped$/), undefined, 'it did not finish the graceful path');
  });

  test('SIGHUP: a log level change applies live; a HELLO interval change reconnects with a new tunnel', async (t) => {
    const { lay } = await withSc(t);
    const file = join(mkdtempSync(join(tmpdir(), 'softwire-hup-')), 'softwire.json');
    const write = (o: Record<string, unknown>) => writeFileSync(file, JSON.stringify(o));
    write({ logLevel: 'info', helloInterval: 60 });
    const a = startAgent(t, lay, ['-c', file]);
    const s1 = await a.waitState('up', 15_000);
    assert.equal(a.lines.filter((l) => l.level === 20).length, 0, 'no debug lines at info');

    write({ logLevel: 'debug', helloInterval: 60 });
    let from = a.lines.length;
    a.proc.kill('SIGHUP');
    const r1 = await waitLogAfter(a, from, /^configuration reloaded/, 3000);
    assert.equal(r1.msg, 'configuration reloaded');
    assert.deepEqual(r1.changed, ['logLevel']);
    await a.status();
    await waitLogAfter(a, from, /^control request$/, 2000);
    await sleep(500);
    assert.equal(a.lines.slice(from).filter((l) => /^softwire (connecting|down)$/.test(l.msg)).length, 0, 'no reconnect');
    const s2 = await a.status();
    assert.equal(s2.tunnel?.localId, s1.tunnel?.localId);
    assert.equal(s2.reconnects, 0);

    write({ logLevel: 'debug', helloInterval: 30 });
    from = a.lines.length;
    a.proc.kill('SIGHUP');
    const r2 = await waitLogAfter(a, from, /^configuration reloaded/, 3000);
    assert.equal(r2.msg, 'configuration reloaded; reconnecting');
    assert.deepEqual(r2.changed, ['helloInterval']);
    await waitLogAfter(a, from, /^softwire up$/, 10_000);
    const s3 = await a.status();
    assert.notEqual(s3.tunnel?.localId, s1.tunnel?.localId, 'a new tunnel');
    assert.equal(s3.reconnects, 1);
  });
});

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DEFAULT_USER, L2tpnsSc, l2tpnsAvailable } from '../lab/l2tpns';
import { scLayout, type ScLayout } from '../lab/topology';
import { AgentProc } from '../helpers/agent-proc';

/**
 * The agent (the shipped CLI bundle) against the real SC: l2tpns with FreeRADIUS
 * in a namespace. Each test builds its own namespaces and SC.
 */

const avail = l2tpnsAvailable();
const skip = avail.ok ? false : avail.message;

async function withSc(t: { after: (fn: () => unknown) => void }, opts: Partial<Parameters<typeof L2tpnsSc.start>[1]> = {}): Promise<{ lay: ScLayout; sc: L2tpnsSc }> {
  const lay = scLayout();
  t.after(() => lay.topo.destroy());
  const sc = await L2tpnsSc.start(lay.sc, { bindAddress: lay.scAddress, ...opts });
  t.after(async () => {
    await sc.stop();
    sc.cleanup();
  });
  return { lay, sc };
}

function startAgent(t: { after: (fn: () => unknown) => void }, lay: ScLayout, args: string[], password = DEFAULT_USER.password): AgentProc {
  const a = AgentProc.start(lay.cpe, ['--sc', lay.scAddress, '--user', DEFAULT_USER.name, ...args], { password });
  t.after(() => a.stop());
  return a;
}

describe('agent against l2tpns', { skip }, () => {
  test('CHAP login: tunnel, session, LCP, IPCP and IPV6CP come up; status is real; SIGTERM sends StopCCN and cleans up', async (t) => {
    const { lay, sc } = await withSc(t);
    const t0 = Date.now();
    const a = startAgent(t, lay, ['--mode', 'host']);
    const s = await a.waitState('up', 15_000);
    const upMs = Date.now() - t0;
    t.diagnostic(`process start to state up: ${upMs} ms`);
    assert.equal(s.sc?.address, lay.scAddress);
    assert.equal(s.tunnel?.state, 'established');
    assert.equal(s.tunnel?.remoteId, 2, 'l2tpns numbers tunnels from 2');
    assert.ok(s.tunnel!.localId > 0);
    assert.equal(s.session?.state, 'established');
    assert.equal(s.ppp?.lcp, 'Opened');
    assert.equal(s.ppp?.auth, 'chap-md5 success');
    assert.equal(s.ppp?.ncp.ipv6cp, 'Opened');
    assert.equal(s.ppp?.mru, 1462, 'l2tpns asks for MRU 1462');
    // l2tpns forces the IPV6CP interface-id to <IPv4>:0:0 (198.51.100.128 -> c633:6480::).
    assert.equal(s.ipv6?.linkLocal, 'fe80::c633:6480:0:0');
    assert.deepEqual(s.ipv4, { address: '198.51.100.128', peer: lay.scAddress, dns: ['192.0.2.53', '192.0.2.54'], carryTraffic: false });
    await sc.waitForLog(/Received ICCN|ICCN/);
    // The kernel state the agent made in its namespace.
    const link = lay.cpe.ipJson<{ ifname: string; mtu: number; flags: string[] }[]>(['link', 'show', 'sw0']);
    assert.equal(link[0]?.mtu, 1460, 'RFC 5571 5.2.1: 1500 - IPv4/UDP/L2TP/PPP overhead');
    const addrs = lay.cpe.ipJson<{ addr_info: { local: string; prefixlen: number }[] }[]>(['-6', 'addr', 'show', 'dev', 'sw0']);
    assert.ok(addrs[0]?.addr_info.some((x) => x.local === 'fe80::c633:6480:0:0'));
    await a.waitLog(/\(SLAAC\)/, 10_000);
    const s2 = await a.status();
    assert.equal(s2.ipv6?.address, '2001:db8:200:0:c633:6480::');
    assert.deepEqual(s2.ipv6?.dns, ['2001:db8:200::53']);
    assert.equal(s2.ipv6?.defaultRoute, true);
    // A ping to the SC's side crosses the softwire and comes back.
    lay.cpe.exec('ping', ['-6', '-c', '2', '-i', '0.2', '-W', '2', '2001:db8:200::1']);
    const s3 = await a.status();
    assert.ok(s3.counters.data.tunIn! >= 2 && s3.counters.data.tunOut! >= 2, JSON.stringify(s3.counters.data));

    const logOffset = sc.log().length;
    const { code, tookMs } = await a.stop();
    t.diagnostic(`graceful shutdown took ${tookMs} ms`);
    assert.equal(code, 0);
    assert.ok(tookMs < 3000, `shutdown within 3 s (${tookMs} ms)`);
    await sc.waitForLog(/Received StopCCN/, 3000, logOffset);
    assert.throws(() => lay.cpe.ip(['link', 'show', 'sw0']), /does not exist/);
    const routes = lay.cpe.ipJson<{ dst: string }[]>(['-6', 'route', 'show', 'proto', '157']);
    assert.deepEqual(routes, [], 'no route of ours left behind');
  });

  test('PAP login works when CHAP is refused by our side', async (t) => {
    const { lay } = await withSc(t);
    const a = startAgent(t, lay, ['--auth', 'pap']);
    const s = await a.waitState('up', 15_000);
    assert.equal(s.ppp?.auth, 'pap success');
  });

  for (const auth of ['chap', 'pap']) {
    test(`wrong password with ${auth}: clear authentication failure, then backoff (no hot loop)`, async (t) => {
      const { lay } = await withSc(t);
      const a = startAgent(t, lay, ['--auth', auth], 'wrong-password');
      const line = await a.waitLog(/down: .*authentication failed/, 15_000);
      // l2tpns answers a RADIUS reject with a CDN only; a rejected login is not retried
      // soon: at least a quarter of the reconnect cap (300 s by default).
      const m = /retrying in ([\d.]+) s/.exec(line.msg);
      assert.ok(m && Number(m[1]) >= 75, line.msg);
      await new Promise((r) => setTimeout(r, 3000));
      assert.equal(a.lines.filter((l) => /^dialling SC/.test(l.msg)).length, 1, 'no second dial');
      const s = await a.status();
      assert.notEqual(s.state, 'up');
      assert.match(s.lastError?.message ?? '', /authentication failed/);
    });
  }

  test('tunnel secret on both sides: the SC proves it knows the secret', async (t) => {
    const { lay } = await withSc(t, { tunnelSecret: 'tunnel-s3cret' });
    const a = startAgent(t, lay, ['--tunnel-secret', 'tunnel-s3cret']);
    await a.waitState('up', 15_000);
    assert.ok(a.find(/tunnel up .*authenticated/), a.tail());
  });

  test('wrong tunnel secret: authentication failure reported, long backoff', async (t) => {
    const { lay } = await withSc(t, { tunnelSecret: 'tunnel-s3cret' });
    const a = startAgent(t, lay, ['--tunnel-secret', 'not-the-secret', '--reconnect-initial', '1', '--reconnect-cap', '60']);
    const line = await a.waitLog(/tunnel down: auth-failed/, 10_000);
    // A bad secret will not fix itself: the next try waits at least a quarter of the cap.
    assert.match(line.msg, /retrying in (1[5-9]|[2-9]\d)\.\d s/);
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal(a.lines.filter((l) => /^dialling SC/.test(l.msg)).length, 1);
  });

  test('HELLO both ways on an idle tunnel: ours after our interval, l2tpns\'s after its fixed 60 s', async (t) => {
    const { lay, sc } = await withSc(t, { debug: 4 });
    // A tunnel with no session carries nothing else, so each side's idle timer runs out.
    // Ours at 10 s; a second tunnel with our HELLO off lets l2tpns's 60 s timer fire.
    const fixture = require.resolve('./fixtures/lac-only.ts');
    const run = (helloMs: number, runMs: number) =>
      new Promise<Record<string, number | boolean>>((res, rej) => {
        const p = lay.cpe.spawn('node', ['--import', 'tsx', fixture, lay.scAddress, String(helloMs), String(runMs)], { stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        p.stdout!.on('data', (d) => (out += d));
        p.on('exit', (code) => (code === 0 ? res(JSON.parse(out)) : rej(new Error(`lac-only exited ${code}: ${out}`))));
      });
    const [ours, theirs] = await Promise.all([run(10_000, 12_500), run(0, 66_000)]);
    assert.equal(ours.up, true);
    assert.equal(ours.helloOut, 1, 'one HELLO after 10 s idle');
    assert.equal(ours.retransmissions, 0, 'and l2tpns acknowledged it');
    assert.match(sc.log(), /Received HELLO/);
    assert.equal(theirs.up, true);
    assert.equal(theirs.helloOut, 0);
    // SCCRP + l2tpns's HELLO (its ack of our SCCCN is a ZLB, which is not counted as a message).
    assert.ok((theirs.ctrlIn as number) >= 2, `l2tpns sent a HELLO: ${JSON.stringify(theirs)}`);
    assert.match(sc.log(), /Sending HELLO/);
  });

  test('LCP echo keeps the link alive and its RTT appears in status', async (t) => {
    const { lay } = await withSc(t);
    const a = startAgent(t, lay, ['--lcp-echo-interval', '10']);
    await a.waitState('up', 15_000);
    await a.waitLog(/\(SLAAC\)/, 10_000);
    const end = Date.now() + 15_000;
    let s = await a.status();
    while (s.ppp?.echoRttMs === null && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 200));
      s = await a.status();
    }
    assert.ok(s.ppp?.echoRttMs !== null && s.ppp!.echoRttMs! >= 0 && s.ppp!.echoRttMs! < 1000, `RTT ${s.ppp?.echoRttMs}`);
    assert.equal(s.state, 'up');
  });
});

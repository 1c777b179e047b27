import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { DEFAULT_USER, L2tpnsSc, l2tpnsAvailable } from '../lab/l2tpns';
import { scLayout } from '../lab/topology';
import { onLines } from '../lab/lines';
import { AgentProc } from '../helpers/agent-proc';

/**
 * Never dies on input (issue 15), at process level against the real SC: the agent
 * (bin/softwire) is up against l2tpns when more than 100,000 hostile datagrams
 * (test/peer/hostile-sender.ts) arrive from the SC's own address and port (forged:
 * nftables rewrites the sender's source port to 1701 on the way out) and from a
 * spoofed address. It must stay up with the same `since`, keep carrying a ping,
 * count what it dropped, and not grow its memory.
 */

const avail = l2tpnsAvailable();
const root = process.getuid?.() === 0;
const skip = !root ? 'needs root' : avail.ok ? false : avail.message;
const SENDER = resolve(__dirname, '../peer/hostile-sender.ts');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const rssKb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
const sumDrops = (d: Record<string, number>) => Object.values(d).reduce((a, b) => a + b, 0);

test('over 100,000 hostile datagrams from the SC address/port and a spoofed one: still up (same since), ping carried, RSS flat', { skip, timeout: 600_000 }, async (t) => {
  const lay = scLayout();
  t.after(() => lay.topo.destroy());
  const sc = await L2tpnsSc.start(lay.sc, { bindAddress: lay.scAddress });
  t.after(async () => {
    await sc.stop();
    sc.cleanup();
  });
  const a = AgentProc.start(lay.cpe, ['--sc', lay.scAddress, '--user', DEFAULT_USER.name, '--mode', 'host', '--lcp-echo-interval', '10'], { password: DEFAULT_USER.password });
  t.after(() => a.stop());
  const up = await a.waitState('up', 20_000);
  lay.cpe.exec('ping', ['-6', '-c', '2', '-i', '0.2', '-W', '2', '2001:db8:200::1']);
  const pid = a.proc.pid!;
  // Warm the paths the flood takes (JIT, buffers) before the RSS baseline.
  await sleep(500);
  const rss0 = rssKb(pid);

  // Forged source: the sender's port 40999 leaves as the SC's 1701 (stateless rewrite, checksum fixed by nft).
  lay.sc.exec('nft', ['-f', '-'], {
    input: `table ip hostile {\n chain out {\n  type filter hook output priority raw;\n  ip saddr ${lay.scAddress} udp sport 40999 udp sport set 1701\n }\n}\n`,
  });
  lay.sc.ip(['addr', 'add', '192.0.2.3/24', 'dev', lay.scDev]);

  const ping = lay.cpe.spawn('ping', ['-6', '-i', '0.5', '-W', '2', '2001:db8:200::1'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let replies = 0;
  onLines(ping.stdout!, (l) => {
    if (/bytes from/.test(l)) replies++;
  });
  t.after(() => ping.kill());

  const sender = lay.sc.spawn(
    'node',
    [
      '--import',
      'tsx',
      SENDER,
      JSON.stringify({
        target: { address: lay.cpeAddress, port: up.local!.port },
        sources: [
          { address: lay.scAddress, port: 40999 },
          { address: '192.0.2.3', port: 1701 },
        ],
        tunnelId: up.tunnel!.localId,
        sessionId: up.session!.localId,
        seed: 15,
        perClass: 10_000,
        burst: 256,
      }),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let report = '';
  onLines(sender.stdout!, (l) => (report = l));
  const errs: string[] = [];
  sender.stderr!.on('data', (d: Buffer) => errs.push(String(d)));
  const t0 = Date.now();
  const code = await new Promise<number | null>((res) => sender.on('exit', res));
  assert.equal(code, 0, errs.join(''));
  const sent = JSON.parse(report) as { total: number; sent: Record<string, number> };
  const repliesDuring = replies;
  t.diagnostic(`sent ${sent.total} datagrams in ${Date.now() - t0} ms: ${JSON.stringify(sent.sent)}; ping replies during the flood: ${repliesDuring}`);
  assert.ok(sent.total >= 100_000);

  // Still the same process, up since the same moment, and carrying a ping.
  await sleep(1000);
  assert.equal(a.proc.exitCode, null, `agent exited:\n${a.tail()}`);
  const after = await a.status();
  assert.equal(after.state, 'up');
  assert.equal(after.since, up.since, 'no reconnect');
  assert.deepEqual(after.tunnel, up.tunnel);
  assert.deepEqual(after.session, up.session);
  lay.cpe.exec('ping', ['-6', '-c', '3', '-i', '0.2', '-W', '2', '2001:db8:200::1']);
  assert.ok(replies > repliesDuring || repliesDuring > 0, 'ping carried');

  const rss1 = rssKb(pid);
  const dropped = sumDrops(after.counters.drops) - sumDrops(up.counters.drops);
  t.diagnostic(`RSS ${(rss0 / 1024).toFixed(1)} MB before, ${(rss1 / 1024).toFixed(1)} MB after; drops counted ${dropped}: ${JSON.stringify(after.counters.drops)}`);
  assert.ok(dropped > 10_000, 'the flood was counted under named drop reasons');
  assert.ok(after.counters.drops['transport.foreign-source']! > 0, 'spoofed source counted');
  assert.ok(rss1 - rss0 < 16 * 1024, `RSS grew by ${((rss1 - rss0) / 1024).toFixed(1)} MB`);
  // Every PPP protocol number arrived; we must not reflect them all back as Protocol-Rejects
  // (20 back to back, then 10 per second: see src/ppp/link.ts).
  const rejected = (after.counters.drops['ppp.protocol-rejected'] ?? 0) - (up.counters.drops['ppp.protocol-rejected'] ?? 0);
  const elapsedS = (Date.now() - t0) / 1000;
  t.diagnostic(`Protocol-Rejects sent during the flood: ${rejected} (rate-limited: ${after.counters.drops['ppp.protocol-reject-rate-limited'] ?? 0})`);
  assert.ok(rejected <= 20 + 10 * Math.ceil(elapsedS + 1), `${rejected} Protocol-Rejects in ${elapsedS.toFixed(1)} s`);
  assert.ok((after.counters.drops['ppp.protocol-reject-rate-limited'] ?? 0) > 1000);
  // Logged at most once per reason per minute: no flood in the log.
  const dropLines = a.lines.filter((l) => /dropped at an I\/O edge/.test(l.msg));
  assert.ok(dropLines.length <= 20, `${dropLines.length} drop log lines`);
});

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSdp } from '../../src/sdp/sdp';
import { describe, test } from 'node:test';
import { type ScLayout } from '../lab/topology';
import { agent, emulator, layout } from '../helpers/emulator-rig';
import { link, waitFor } from '../lab/netns';
import { AgentProc, type LogLine } from '../helpers/agent-proc';

/**
 * Issue 16: the real agent against the SC emulator playing what real concentrators
 * do and l2tpns does not (each test names the SC behaviour it plays).
 */

const root = process.getuid?.() === 0;
const skip = root ? false : 'needs root (network namespaces)';


const time = (l: LogLine): number => Date.parse(l.time as string);

describe('agent against SC behaviours of issue 16', { skip }, () => {
  // xl2tpd hands the session to pppd, which starts after the session is up: our first
  // LCP Configure-Request is lost, and pppd's own request arrives while ours is unanswered.
  test('pppd-like SC loses our first LCP Configure-Request: ours is sent again at once, not after the 3 s restart timer', async (t) => {
    const lay = layout(t);
    const emu = await emulator(t, lay, { ppp: { lateStartMs: 300 } });
    const t0 = Date.now();
    const a = agent(t, lay);
    await a.waitState('up', 20_000);
    const session = await a.waitLog(/^session up/, 1000);
    const auth = await a.waitLog(/^authenticated with/, 1000);
    const ms = time(auth) - time(session);
    t.diagnostic(`session up -> CHAP success: ${ms} ms; process start -> up: ${Date.now() - t0} ms`);
    const st = await emu.status();
    assert.ok((st.tunnels[0]?.session?.pppCounters?.['lost-before-start'] ?? 0) >= 1, 'the emulator lost our first request');
    assert.ok(ms < 2500, `LCP waited for the restart timer (${ms} ms)`);
  });

  // An LNS out of resources (a full IP pool, a RADIUS backend away) clears the call with
  // CDN result 4 while the login is pending; that is no rejected password.
  test('CDN result 4 (temporary lack of facilities) during authentication is retried at once, not taken as a rejected login', async (t) => {
    const lay = layout(t);
    await emulator(t, lay, {
      ppp: { authHold: 1 },
      triggers: [{ on: 'ppp-auth', nth: 1, send: 'CDN', result: 4, message: 'temporary lack of resources' }],
    });
    // A quarter of a 60 s cap is the wait after a rejected login: up within 10 s proves it was not taken as one.
    const a = agent(t, lay, ['--reconnect-cap', '60']);
    const down = await a.waitLog(/^session down: the SC closed the session during authentication, not a login rejection/, 15_000);
    t.diagnostic(down.msg);
    await a.waitState('up', 10_000);
    assert.equal(a.find(/authentication failed/), undefined);
  });

  // Cisco/Juniper LNSes with a smaller core MTU ask for MRU 1400 in LCP and announce an MTU in their RA.
  test('the SC\'s LCP MRU (1400) and then its RA MTU (1380) set the TUN MTU; status shows what limits it', async (t) => {
    const lay = layout(t);
    await emulator(t, lay, { ppp: { mru: 1400, ra: { mtu: 1380 } } });
    const a = agent(t, lay);
    await a.waitState('up', 20_000);
    await a.waitLog(/^RA MTU option/, 10_000);
    const end = Date.now() + 10_000;
    let st = await a.status();
    while (st.mtu?.mtu !== 1380 && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 50));
      st = await a.status();
    }
    assert.deepEqual(st.mtu, { mtu: 1380, limitedBy: 'ra' });
    assert.equal(st.counters.data.truncatedDrops, 0);
    const changes = a.lines.filter((l) => l.msg === 'softwire MTU changed').map((l) => [l.mtu, l.limitedBy]);
    assert.deepEqual(changes, [
      [1400, 'sc-mru'],
      [1380, 'ra'],
    ]);
    let kernel = 0;
    while (kernel !== 1380 && Date.now() < end) {
      kernel = lay.cpe.ipJson<{ mtu: number }[]>(['link', 'show', 'sw0'])[0]!.mtu;
      if (kernel !== 1380) await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(kernel, 1380, 'TUN MTU in the kernel');
  });

  async function waitAddress(a: AgentProc, want: string, ms: number): Promise<void> {
    const end = Date.now() + ms;
    for (;;) {
      const st = await a.status();
      if (st.ipv6?.address === want) return;
      if (Date.now() > end) throw new Error(`status address ${st.ipv6?.address}, want ${want}:\n${a.tail()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  function kernelAddresses(lay: ScLayout): string[] {
    const j = lay.cpe.ipJson<{ addr_info: { local: string; scope: string }[] }[]>(['-6', 'addr', 'show', 'dev', 'sw0']);
    return (j[0]?.addr_info ?? []).filter((x) => x.scope === 'global').map((x) => x.local);
  }

  // Cisco/Juniper LNS numbering hosts by DHCPv6: RA with M=1 and a prefix without the A flag.
  test('host mode, RA with M=1 and no A flag: Solicit/Request IA_NA, the host ends with the IA_NA address', async (t) => {
    const lay = layout(t);
    const emu = await emulator(t, lay, { ppp: { ra: { managed: true, other: true, autonomous: false }, dhcp: { addresses: ['2001:db8:200::100'] } } });
    const a = agent(t, lay, ['--mode', 'host']);
    await a.waitState('up', 20_000);
    await waitAddress(a, '2001:db8:200::100', 15_000);
    const msgs = emu.events.flatMap((e) => (e.type === 'ppp' && e.ppp.type === 'dhcp' ? [e.ppp.message] : []));
    assert.ok(msgs.includes('Solicit') && msgs.includes('Request'), msgs.join(','));
    assert.ok(!msgs.includes('Information-Request'));
    const end = Date.now() + 5000;
    while (!kernelAddresses(lay).includes('2001:db8:200::100') && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(kernelAddresses(lay), ['2001:db8:200::100']);
  });

  // An SC whose pool hands out an address someone else holds (a static host on the SC side).
  test('a duplicate IA_NA address is detected by DAD, Declined, and the next address is taken', async (t) => {
    const lay = layout(t);
    const emu = await emulator(t, lay, {
      ppp: {
        ra: { managed: true, other: true, autonomous: false },
        dhcp: { addresses: ['2001:db8:200::100', '2001:db8:200::101'], defend: ['2001:db8:200::100'] },
      },
    });
    const a = agent(t, lay, ['--mode', 'host']);
    await a.waitState('up', 20_000);
    await waitAddress(a, '2001:db8:200::101', 30_000);
    await a.waitLog(/declining it/, 1000);
    const msgs = emu.events.flatMap((e) => (e.type === 'ppp' && e.ppp.type === 'dhcp' ? [e.ppp.message] : []));
    assert.ok(msgs.includes('Decline'), msgs.join(','));
    const end = Date.now() + 5000;
    while (kernelAddresses(lay).join() !== '2001:db8:200::101' && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(kernelAddresses(lay), ['2001:db8:200::101'], 'the duplicate is gone from the kernel');
  });

  test('host mode, RA with M=O=0: one bounded Solicit probe (RFC 5571 5.4.1), SLAAC numbers the host', async (t) => {
    const lay = layout(t);
    const emu = await emulator(t, lay, { ppp: { ra: { managed: false, other: false } } });
    const a = agent(t, lay, ['--mode', 'host']);
    const gaveUp = (): boolean => a.lines.some((l) => l.msg === 'DHCPv6' && l.reason === 'no-server');
    const st = await a.waitState('up', 20_000);
    // The probe asks a server the SC did not announce: "up" (SLAAC address, route) does not wait ~7 s for it to give up.
    assert.ok(!gaveUp(), `up only after the probe gave up:\n${a.tail()}`);
    assert.equal(st.degraded ?? null, null);
    await emu.waitEvent((e) => e.type === 'ppp' && e.ppp.type === 'dhcp' && e.ppp.message === 'Solicit', 10_000, 'Solicit');
    await a.waitLog(/\(SLAAC/, 10_000);
    // Bounded: HOST_PROBE_SOLICITS Solicits, then the host stops asking.
    await waitFor('probe gives up', 20_000, () => (gaveUp() ? true : null));
    const solicits = emu.events.filter((e) => e.type === 'ppp' && e.ppp.type === 'dhcp' && e.ppp.message === 'Solicit').length;
    assert.ok(solicits >= 1 && solicits <= 3, `${solicits} Solicits`);
  });

  // An LNS behind a VIP that answers from its own address (RFC 2661 8.1).
  test('SCCRP from another SC address: dropped by default; followed with scAnswerFromOtherAddress and a tunnel secret', async (t) => {
    const lay = layout(t);
    lay.sc.ip(['addr', 'add', '192.0.2.3/24', 'dev', lay.scDev]);
    await emulator(t, lay, { replyAddress: '192.0.2.3', secret: 'tunnel-secret' });
    const strict = agent(t, lay, ['--tunnel-secret', 'tunnel-secret']);
    const end = Date.now() + 15_000;
    let drops = 0;
    while (drops === 0 && Date.now() < end) {
      try {
        drops = (await strict.status()).counters.drops['transport.foreign-source'] ?? 0;
      } catch {
        /* socket not there yet */
      }
      if (drops === 0) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(drops > 0, 'the reply from 192.0.2.3 is dropped');
    assert.notEqual((await strict.status()).state, 'up');
    await strict.stop();
    const noSecret = agent(t, lay, ['--sc-answer-from-other-address']);
    await noSecret.waitLog(/needs tunnelSecret/, 15_000);
    await noSecret.stop();
    const a = agent(t, lay, ['--tunnel-secret', 'tunnel-secret', '--sc-answer-from-other-address']);
    const st = await a.waitState('up', 20_000);
    assert.equal(st.sc?.address, '192.0.2.3');
    await a.waitLog(/authenticated/, 1000);
  });

  // A signalling system whose answer names the SC by DNS name (RFC 8866 allows it in c=).
  test('SDP: an answer with a DNS name in c= is resolved; the offer written names the bound tunnel socket', async (t) => {
    const lay = layout(t);
    // `ip netns exec` puts /etc/netns/<name>/hosts over /etc/hosts: the name resolves only in cpe.
    const etc = `/etc/netns/${lay.cpe.name}`;
    mkdirSync(etc, { recursive: true });
    t.after(() => rmSync(etc, { recursive: true, force: true }));
    writeFileSync(join(etc, 'hosts'), `127.0.0.1 localhost\n${lay.scAddress} sc.example.net\n`);
    await emulator(t, lay, {});
    const dir = mkdtempSync(join(tmpdir(), 'softwire-sdp-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const answer = join(dir, 'answer.sdp');
    writeFileSync(answer, 'v=0\r\no=- 1 1 IN IP4 sc.example.net\r\ns=-\r\nc=IN IP4 sc.example.net\r\nt=0 0\r\nm=application 1701 UDP l2tp\r\n');
    const offerFile = join(dir, 'offer.sdp');
    const a = AgentProc.start(lay.cpe, ['--sc-sdp', answer, '--sdp-offer-file', offerFile, '--user', 'cpe1', '--reconnect-initial', '0.2'], { password: 'secret1' });
    t.after(() => a.stop());
    const st = await a.waitState('up', 20_000);
    assert.equal(st.sc?.address, lay.scAddress);
    const offer = parseSdp(readFileSync(offerFile, 'utf8'));
    assert.equal(offer.connection?.address, lay.cpeAddress);
    assert.equal(offer.media[0]!.port, st.local?.port, 'the port the SCCRQ left from, not 1701');
  });

  test('router mode: the SC\'s MRU (1400) reaches the LAN in the RA MTU option', async (t) => {
    const lay = layout(t);
    const lanHost = lay.topo.ns('lan');
    const veth = link(lay.cpe, undefined, lanHost, undefined);
    lanHost.sysctl('net.ipv6.conf.all.forwarding', '0');
    lanHost.sysctl(`net.ipv6.conf.${veth.b}.accept_ra`, '2');
    await emulator(t, lay, { ppp: { mru: 1400, dhcp: { prefix: '2001:db8:100::/56' } } });
    const a = agent(t, lay, ['--mode', 'router', '--lan', veth.a, '--ra', 'builtin']);
    await a.waitState('up', 20_000);
    await a.waitLog(/^LAN numbered from 2001:db8:100::\/56/, 15_000);
    const mtu = await waitFor('LAN host MTU from the RA', 15_000, () => {
      const m = lanHost.exec('sysctl', ['-n', `net.ipv6.conf.${veth.b}.mtu`]).trim();
      return m === '1400' ? m : null;
    });
    assert.equal(mtu, '1400');
  });
});

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { Status } from '../../src/agent/status';
import { DEFAULT_USER, L2tpnsSc, type L2tpnsOptions, l2tpnsAvailable } from '../lab/l2tpns';
import { prefixContains } from '../../src/ipv6/address';
import { link, type Netns, waitFor } from '../lab/netns';
import { scLayout, type ScLayout } from '../lab/topology';
import { AgentProc, type LogLine } from '../helpers/agent-proc';
import type { EmulatorScript } from '../peer/emulator-main';
import { EmulatorProc } from '../peer/emulator-proc';
import { at, faultLine, RaWatch, RelayProc, sleep, waitLogAfter } from './lifecycle-helpers';

/**
 * Issue 8, faults: each test breaks one thing under a running router-role agent
 * (l2tpns as the SC, a LAN namespace listening for our RAs) and prints
 *
 *   fault=<name> detect_ms=<n> up_ms=<n> ...
 *
 * detect_ms: from the fault to the agent's log line that it saw it.
 * up_ms: from the moment recovery became possible (the fault is instantaneous, or
 * the SC/link/path is back) to "fully up": state up, the delegated prefix in
 * status, ::/0 via the TUN, the LAN /64 address, and an RA for that /64 heard on
 * the LAN. Then "nothing left behind": one TUN, one default route, one
 * unreachable route and one LAN address, all of the current prefix, and one
 * session for the user on the SC.
 *
 * The StopCCN faults run against two in-repo emulators (l2tpns cannot be told
 * to send a result code). detect_ms -1 means the agent never saw an outage.
 *
 * The keepalive and backoff are shortened so the file runs in CI; the bounds
 * below are derived from them. SOFTWIRE_LONG=1 runs the loss fault for the full
 * minute the issue names instead of 20 s. (This file replaces
 * lifecycle-recovery.test.ts: same faults, same assertions, plus these.)
 */

const avail = l2tpnsAvailable();
const skip = avail.ok ? false : avail.message;

const HELLO_S = 10;
const ECHO_S = 10;
const ECHO_FAILURES = 2;
const RECONNECT_INITIAL_S = 1;
const RECONNECT_CAP_S = 8;
const JITTER = 0.5;
/** Defaults, not set: RFC 2661 5.8 1 s doubling to 8 s, 5 retries. */
const RETRANSMIT_CAP_S = 8;
const CONFIG = `hello=${HELLO_S}s echo=${ECHO_S}sx${ECHO_FAILURES} reconnect=${RECONNECT_INITIAL_S}..${RECONNECT_CAP_S}s jitter=${JITTER} retransmit=1..${RETRANSMIT_CAP_S}s x5`;
const AGENT_ARGS = [
  '--mode', 'router',
  '--ra', 'builtin',
  '--hello-interval', String(HELLO_S),
  '--lcp-echo-interval', String(ECHO_S),
  '--lcp-echo-failure', String(ECHO_FAILURES),
  '--reconnect-initial', String(RECONNECT_INITIAL_S),
  '--reconnect-cap', String(RECONNECT_CAP_S),
  '--reconnect-jitter', String(JITTER),
];
/** Echo dead time: the first unanswered request goes out up to one interval after the fault, the verdict `failures` intervals later. */
const ECHO_DEAD_MS = ECHO_S * (ECHO_FAILURES + 1) * 1000;
/** Dial to fully up (tunnel, PPP, IPV6CP, DHCPv6 PD, LAN, first RA) on a loaded 2-core machine; ~1.5 s when idle. */
const BRINGUP_MS = 8000;
/** Slack for a loaded machine on every bound. */
const MARGIN_MS = 3000;

type T = { after: (fn: () => unknown) => void; diagnostic: (m: string) => void };

interface Addr {
  ifname: string;
  addr_info: { family: string; local: string; prefixlen: number; scope: string; preferred_life_time?: number }[];
}
interface Route {
  dst: string;
  dev?: string;
  type?: string;
}

const globals = (ns: Netns, dev: string) =>
  (ns.ipJson<Addr[]>(['-6', 'addr', 'show', 'dev', dev, 'scope', 'global'])[0]?.addr_info ?? []).filter((x) => x.local !== undefined);
const routes6 = (ns: Netns) => ns.ipJson<Route[]>(['-6', 'route', 'show', 'table', 'all']);
const tunDevices = (ns: Netns) =>
  ns
    .ipJson<{ ifname: string; linkinfo?: { info_kind?: string } }[]>(['-d', 'link', 'show'])
    .filter((l) => l.linkinfo?.info_kind === 'tun')
    .map((l) => l.ifname);

/** The interface has a link-local address and none is tentative any more. */
function linkLocalReady(ns: Netns, dev: string): boolean {
  const addrs = (args: string[]) => (ns.ipJson<Addr[]>(['-6', 'addr', 'show', 'dev', dev, ...args])[0]?.addr_info ?? []).filter((x) => x.local !== undefined);
  return addrs(['scope', 'link']).length > 0 && addrs(['tentative']).length === 0;
}

interface FaultLab {
  lay: ScLayout;
  /** l2tpns, when the SC is l2tpns (the StopCCN faults use emulators instead). */
  sc: L2tpnsSc | null;
  lanHost: Netns;
  cpeLan: string;
  ra: RaWatch;
}

async function faultLab(t: T, sc: Partial<L2tpnsOptions> | false = {}): Promise<FaultLab> {
  const lay = scLayout();
  t.after(() => lay.topo.destroy());
  const lanHost = lay.topo.ns('lan');
  const veth = link(lay.cpe, undefined, lanHost, undefined);
  // Only our listener should act on the RAs; the host kernel keeps quiet.
  lanHost.sysctl(`net.ipv6.conf.${veth.b}.accept_ra`, '0');
  // A LAN that has just come up still runs DAD on its link-locals, and RAs cannot be sent from a tentative
  // source; a router's LAN has been up for a while, so wait for that (in parallel with the SC's start).
  const dadDone = waitFor('LAN link-locals out of DAD', 10_000, () => linkLocalReady(lay.cpe, veth.a) && linkLocalReady(lanHost, veth.b));
  const [l2tpns, ra] = await Promise.all([sc === false ? null : startSc(t, lay, sc), RaWatch.start(t, lanHost, veth.b), dadDone]);
  return { lay, sc: l2tpns, lanHost, cpeLan: veth.a, ra };
}

async function startSc(t: T, lay: ScLayout, opts: Partial<L2tpnsOptions> = {}): Promise<L2tpnsSc> {
  const sc = await L2tpnsSc.start(lay.sc, { bindAddress: lay.scAddress, ...opts });
  t.after(async () => {
    await sc.stop();
    sc.cleanup();
  });
  return sc;
}

function startAgent(t: T, lab: FaultLab, extra: string[] = [], sc: string[] = [lab.lay.scAddress]): AgentProc {
  const a = AgentProc.start(lab.lay.cpe, [...sc.flatMap((x) => ['--sc', x]), '--user', DEFAULT_USER.name, '--lan', lab.cpeLan, ...AGENT_ARGS, ...extra], {
    password: DEFAULT_USER.password,
  });
  t.after(() => a.stop());
  return a;
}

/** 2001:db8:100::/56 -> its first /64 and the router address the agent gives the LAN. */
function lanOf(prefix56: string): { p64: string; addr: string } {
  const base = prefix56.split('/')[0]!;
  return { p64: `${base}/64`, addr: `${base}1` };
}

const savedState = (a: AgentProc) =>
  JSON.parse(readFileSync(join(a.dir, 'state', 'state.json'), 'utf8')) as { duid: string; lastPrefix?: { prefix: string; length: number } };

function lastAfter(a: AgentProc, from: number, re: RegExp): LogLine | undefined {
  return a.lines.slice(from).filter((l) => re.test(l.msg)).at(-1);
}

/**
 * Waits until the agent is fully up with `prefix56` and returns when that
 * happened: the latest of "softwire up", "LAN numbered" (after the prefix) and
 * the first RA for the LAN /64 heard at or after `raSince`.
 */
async function fullyUp(lab: FaultLab, a: AgentProc, prefix56: string, from: number, raSince: number, ms: number): Promise<{ at: number; status: Status }> {
  const { p64, addr } = lanOf(prefix56);
  const end = Date.now() + ms;
  const left = () => Math.max(100, end - Date.now());
  const status = await waitFor(`state up with ${prefix56} delegated and the LAN numbered`, left(), async () => {
    const s = await a.status();
    const dp = s.ipv6?.delegatedPrefix;
    return s.state === 'up' && dp && `${dp.prefix}/${dp.length}` === prefix56 && s.ipv6!.lan.some((l) => l.prefix === p64) ? s : null;
  }).catch((e: Error) => {
    throw new Error(`${e.message}\n${a.tail()}`);
  });
  const { cpe } = lab.lay;
  await waitFor('::/0 via the TUN', left(), () => routes6(cpe).some((r) => r.dst === 'default' && r.dev === 'sw0'));
  await waitFor(`${addr}/64 on the LAN`, left(), () => globals(cpe, lab.cpeLan).some((x) => x.local === addr && x.prefixlen === 64));
  const ra = await lab.ra.waitAnnounce(p64, raSince, left()).catch((e: Error) => {
    throw new Error(`${e.message}\n${a.tail(40)}`);
  });
  const up = lastAfter(a, from, /^softwire up$/);
  const numbered = lastAfter(a, from, /^LAN numbered from /);
  assert.ok(up && numbered, a.tail());
  return { at: Math.max(at(up), at(numbered), ra.at), status };
}

/** Sessions of `user` that l2tpns has logged in and not yet shut down, from its log (debug 3). */
function scSessions(sc: L2tpnsSc, user: string): number[] {
  const open = new Set<number>();
  for (const line of sc.log().split('\n')) {
    const login = new RegExp(`\\d+/(\\d+) Login by ${user} `).exec(line);
    if (login) open.add(Number(login[1]));
    const gone = /Shutting down session (\d+)/.exec(line);
    if (gone) open.delete(Number(gone[1]));
  }
  return [...open];
}

/** After recovery: exactly one of everything, all of `prefix56`; `gone` are prefixes of earlier sessions. */
function assertNothingLeft(lab: FaultLab, s: Status, prefix56: string, gone: string[] = [], sc = lab.sc): void {
  const { cpe } = lab.lay;
  const { p64, addr } = lanOf(prefix56);
  assert.deepEqual(tunDevices(cpe), ['sw0'], 'one TUN');
  const r = routes6(cpe);
  assert.equal(r.filter((x) => x.dst === 'default').length, 1, `one IPv6 default route: ${JSON.stringify(r)}`);
  assert.equal(r.find((x) => x.dst === 'default')?.dev, 'sw0');
  assert.deepEqual(
    r.filter((x) => x.type === 'unreachable').map((x) => x.dst),
    [prefix56],
    `one unreachable route, for the current prefix: ${JSON.stringify(r)}`,
  );
  // An earlier prefix's LAN address may stay a while, deprecated (hosts move over), as after any renumbering.
  const lanAddrs = globals(cpe, lab.cpeLan);
  assert.deepEqual(
    lanAddrs.filter((x) => !gone.some((g) => inPrefix(g, x.local))).map((x) => `${x.local}/${x.prefixlen}`),
    [`${addr}/64`],
    'one LAN address of the current prefix',
  );
  for (const x of lanAddrs.filter((y) => gone.some((g) => inPrefix(g, y.local)))) assert.equal(x.preferred_life_time, 0, `old LAN address ${x.local} deprecated`);
  // Stale kernel prefix routes of an old /64 are checked by staleLanRoutes() (a known bug, see there).
  const lanRoutes = r.filter((x) => x.dev === lab.cpeLan && !x.dst.startsWith('fe80') && x.type !== 'multicast' && x.type !== 'anycast' && x.type !== 'local');
  assert.deepEqual(
    lanRoutes.filter((x) => !gone.some((g) => inPrefix(g, x.dst))).map((x) => x.dst),
    [p64],
    `one LAN prefix route: ${JSON.stringify(r)}`,
  );
  for (const old of gone) {
    assert.ok(!r.some((x) => inPrefix(old, x.dst) && x.dev !== lab.cpeLan), `no route of the old prefix ${old}: ${JSON.stringify(r)}`);
  }
  const swAddrs = globals(cpe, 'sw0').map((x) => x.local);
  assert.equal(new Set(swAddrs).size, swAddrs.length, `no duplicate softwire address: ${swAddrs.join(' ')}`);
  assert.equal(s.session?.state, 'established');
  if (!sc) return;
  // The SC: one live session for the user, and one route for the delegated prefix into its tun.
  assert.equal(scSessions(sc, DEFAULT_USER.name).length, 1, `one l2tpns session for ${DEFAULT_USER.name}: ${JSON.stringify(scSessions(sc, DEFAULT_USER.name))}`);
  const scr = routes6(lab.lay.sc).filter((x) => x.dst === prefix56);
  assert.deepEqual(
    scr.map((x) => x.dev),
    ['tun0'],
    `the SC routes ${prefix56} to one session: ${JSON.stringify(scr)}`,
  );
}

/** Whether route destination `dst` (CIDR, or an address) lies inside `prefix` (CIDR). */
function inPrefix(prefix: string, dst: string): boolean {
  const [p, len] = prefix.split('/');
  if (!dst.includes(':')) return false;
  return prefixContains(p!, Number(len), dst.split('/')[0]!);
}

/**
 * Known bug (reported; the fix belongs in src/lan/provisioner.ts): the LAN
 * address is added with finite lifetimes, and for such an address the kernel
 * keeps its /64 prefix route when the address is deleted (it treats it like an
 * RA-learned route and lets it expire, up to the lease's valid lifetime). After a
 * reconnect with another prefix the old /64 is still routed onto the LAN.
 */

function staleLanRoutes(lab: FaultLab, gone: string[]): string[] {
  // A /64 whose router address is still there (deprecated, while hosts move over) is routed on
  // purpose, with its subnet-router anycast host route.
  const still = globals(lab.lay.cpe, lab.cpeLan).map((x) => x.local);
  return routes6(lab.lay.cpe)
    .filter((x) => x.dev === lab.cpeLan && gone.some((g) => inPrefix(g, x.dst)) && !still.some((a) => inPrefix(x.dst.includes('/') ? x.dst : `${x.dst}/64`, a)))
    .map((x) => x.dst);
}

/** An RA with router lifetime 0 heard in [from, to): the LAN was told we stopped routing. */
function withdrawnBetween(lab: FaultLab, from: number, to: number): boolean {
  return lab.ra.all.some((r) => r.at >= from && r.at < to && r.routerLifetime === 0);
}

function report(t: T, line: string): void {
  t.diagnostic(line);
  // One line on stdout too, so the figures can be grepped from any reporter's output.
  process.stdout.write(`${line}\n`);
}

const P1 = DEFAULT_USER.delegatedPrefix;
const LONG = process.env.SOFTWIRE_LONG === '1';
const LOSS_MS = LONG ? 60_000 : 20_000;

describe('faults against l2tpns (router role), each with measured recovery', { skip }, () => {
  test('l2tpns killed (SIGKILL) and restarted, handing out another prefix: echo failure detects it, the agent redials once it is back', async (t) => {
    const lab = await faultLab(t);
    const a = startAgent(t, lab);
    await fullyUp(lab, a, P1, 0, 0, 20_000);
    const from = a.lines.length;
    const t0 = Date.now();
    await lab.sc!.kill();
    const down = await waitLogAfter(a, from, / down: /, ECHO_DEAD_MS + MARGIN_MS);
    const detect = at(down) - t0;
    // The operator's restart comes after the agent noticed, so the redial has to find the SC again by itself.
    const P2 = '2001:db8:101::/56';
    const sc2 = await startSc(t, lab.lay, { users: [{ ...DEFAULT_USER, delegatedPrefix: P2 }] });
    const back = Date.now();
    const { at: upAt, status } = await fullyUp(lab, a, P2, from, back, RETRANSMIT_CAP_S * 1000 + RECONNECT_CAP_S * 1000 + BRINGUP_MS + MARGIN_MS);
    const up = upAt - back;
    report(t, faultLine('sc-killed', detect, up, { outage_ms: upAt - t0, sc_restart_ms: back - at(down), config: CONFIG }));
    assert.match(down.msg, /^ppp down: echo-timeout/, 'the LCP echo saw it first');
    assert.ok(detect >= ECHO_S * (ECHO_FAILURES - 1) * 1000, `not before ${ECHO_FAILURES} echoes can have gone unanswered (${detect} ms)`);
    assert.ok(detect <= ECHO_DEAD_MS + MARGIN_MS, `within the echo dead time ${ECHO_DEAD_MS} ms (${detect} ms)`);
    // Back: the SCCRQ being retransmitted (at most retransmitCap apart) or the next dial (at most reconnectCap away) reaches it.
    assert.ok(up <= Math.max(RETRANSMIT_CAP_S, RECONNECT_CAP_S) * 1000 + BRINGUP_MS + MARGIN_MS, `${up} ms`);
    // The old lease was still valid: the LAN was kept while the SC was gone (issue 15), then moved to the new prefix.
    assert.ok(!withdrawnBetween(lab, t0, upAt), 'the LAN was not told we stopped routing');
    assertNothingLeft(lab, status, P2, [P1], sc2);
    await t.test('no stale route of the old LAN /64', () => assert.deepEqual(staleLanRoutes(lab, [P1]), []));
  });

  test('the SC drops the session (nsctl drop): redial after the first backoff step, same prefix, same DUID', async (t) => {
    const lab = await faultLab(t);
    const a = startAgent(t, lab);
    const first = await fullyUp(lab, a, P1, 0, 0, 20_000);
    const saved = savedState(a);
    assert.deepEqual(saved.lastPrefix, { prefix: '2001:db8:100::', length: 56 }, 'the prefix is kept for the next dial');
    const from = a.lines.length;
    const t0 = Date.now();
    lab.sc!.nsctl(['drop', DEFAULT_USER.name]);
    const down = await waitLogAfter(a, from, /^session down: /, 5000);
    const { at: upAt, status } = await fullyUp(lab, a, P1, from, at(down), RECONNECT_INITIAL_S * 1000 + BRINGUP_MS + MARGIN_MS);
    const detect = at(down) - t0;
    const up = upAt - t0;
    report(t, faultLine('sc-session-drop', detect, up, { config: CONFIG }));
    assert.ok(detect < MARGIN_MS, `the CDN is seen at once (${detect} ms)`);
    assert.ok(up < RECONNECT_INITIAL_S * 1000 + BRINGUP_MS + MARGIN_MS, `${up} ms`);
    assert.notEqual(status.tunnel!.localId, first.status.tunnel!.localId, 'a new tunnel');
    assert.equal(status.reconnects, 1);
    assert.equal(status.lastError?.layer, 'session');
    assert.equal(savedState(a).duid, saved.duid, 'the DUID does not change');
    // The same prefix came back within its lifetime: LAN hosts saw nothing (issue 15).
    assert.ok(!withdrawnBetween(lab, t0, upAt), 'the LAN was not told we stopped routing');
    assertNothingLeft(lab, status, P1);
  });

  test('WAN link down for 4 s and up: noticed at once, redial as soon as the route is back', async (t) => {
    const lab = await faultLab(t);
    const { lay } = lab;
    const a = startAgent(t, lab);
    await fullyUp(lab, a, P1, 0, 0, 20_000);
    const from = a.lines.length;
    const t0 = Date.now();
    lay.cpe.ip(['link', 'set', lay.cpeDev, 'down']);
    const seen = await waitLogAfter(a, from, /local address changed from 192\.0\.2\.2 to \(none\)/, MARGIN_MS);
    await waitLogAfter(a, from, /^transport down: no route to 192\.0\.2\.1/, MARGIN_MS);
    assert.notEqual((await a.status()).state, 'up');
    // Long enough for the backoff to grow past its first steps.
    await sleep(4000);
    const from2 = a.lines.length;
    const t1 = Date.now();
    lay.cpe.ip(['link', 'set', lay.cpeDev, 'up']);
    const { at: upAt, status } = await fullyUp(lab, a, P1, from2, t1, BRINGUP_MS + MARGIN_MS);
    const detect = at(seen) - t0;
    const up = upAt - t1;
    report(t, faultLine('wan-link-down-up', detect, up, { down_for_ms: t1 - t0, config: CONFIG }));
    assert.ok(detect < MARGIN_MS, `${detect} ms`);
    assert.ok(up < BRINGUP_MS + MARGIN_MS, `${up} ms: the agent did not sit out its backoff`);
    assert.ok(a.lines.slice(from2).some((l) => /retrying now: WAN has a route/.test(l.msg)), a.tail());
    // A reconnect releases no lease and keeps the LAN: the same prefix comes back (issue 15).
    assert.ok(!withdrawnBetween(lab, t0, upAt), 'the LAN was not told we stopped routing');
    assertNothingLeft(lab, status, P1);
  });

  test('WAN address changed: the agent redials from the new address at once', async (t) => {
    const lab = await faultLab(t);
    const { lay } = lab;
    const a = startAgent(t, lab);
    const first = await fullyUp(lab, a, P1, 0, 0, 20_000);
    assert.equal(first.status.local?.address, '192.0.2.2');
    // Without promote_secondaries, deleting the primary address would take the new one with it.
    lay.cpe.sysctl(`net.ipv4.conf.${lay.cpeDev}.promote_secondaries`, '1');
    lay.cpe.ip(['addr', 'add', '192.0.2.3/24', 'dev', lay.cpeDev]);
    await sleep(300);
    assert.equal((await a.status()).local?.address, '192.0.2.2', 'a second address alone changes nothing');
    const from = a.lines.length;
    const t0 = Date.now();
    lay.cpe.ip(['addr', 'del', '192.0.2.2/24', 'dev', lay.cpeDev]);
    const seen = await waitLogAfter(a, from, /local address changed from 192\.0\.2\.2 to 192\.0\.2\.3/, MARGIN_MS);
    const dial = await waitLogAfter(a, from, /^dialling SC 192\.0\.2\.1:1701 from 192\.0\.2\.3/, MARGIN_MS);
    const { at: upAt, status } = await fullyUp(lab, a, P1, from, at(seen), BRINGUP_MS + MARGIN_MS);
    const detect = at(seen) - t0;
    const up = upAt - t0;
    report(t, faultLine('wan-address-change', detect, up, { redial_ms: at(dial) - t0, config: CONFIG }));
    assert.ok(detect < MARGIN_MS, `${detect} ms`);
    assert.ok(at(dial) - t0 < MARGIN_MS, `redialled ${at(dial) - t0} ms after the change`);
    assert.ok(up < BRINGUP_MS + MARGIN_MS, `${up} ms`);
    assert.equal(status.local?.address, '192.0.2.3');
    assert.notEqual(status.tunnel!.localId, first.status.tunnel!.localId);
    assertNothingLeft(lab, status, P1);
  });

  test(`30% loss both ways for ${LOSS_MS / 1000} s through the impairment relay: the tunnel survives or comes back after the loss`, async (t) => {
    const lab = await faultLab(t);
    const { lay } = lab;
    // The relay holds a second SC address; l2tpns stays bound to its own.
    const relayAddr = '192.0.2.10';
    lay.sc.ip(['addr', 'add', `${relayAddr}/24`, 'dev', lay.scDev]);
    const relay = await RelayProc.start(t, lay.sc, { listenHost: relayAddr, listenPort: 1701, targetHost: lay.scAddress, targetPort: 1701, seed: 5571 });
    const a = startAgent(t, lab, [], [relayAddr]);
    const first = await fullyUp(lab, a, P1, 0, 0, 20_000);
    const from = a.lines.length;
    const t0 = Date.now();
    const before = await relay.impair({ loss: 0.3 });
    // Data through the softwire during the loss, for the record (two pings a second to the SC's side).
    const ping = lay.cpe.spawn('ping', ['-6', '-n', '-q', '-i', '0.5', '-c', String(LOSS_MS / 500), '-W', '1', '2001:db8:200::1'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let pingOut = '';
    ping.stdout!.on('data', (d: Buffer) => (pingOut += d.toString()));
    const pingDone = new Promise((res) => ping.on('exit', res));
    await sleep(LOSS_MS);
    const after = await relay.impair({});
    const tEnd = Date.now();
    await Promise.race([pingDone, sleep(3000)]);
    const down = a.lines.slice(from).find((l) => / down: /.test(l.msg));
    const s1 = await a.status();
    const n = (k: 'dropped' | 'forwarded') => after.up[k] + after.down[k] - before.up[k] - before.down[k];
    const lost = `${n('dropped')}/${n('dropped') + n('forwarded')}`;
    const pingLoss = /(\d+(?:\.\d+)?)% packet loss/.exec(pingOut)?.[1] ?? '?';
    const counters = `retransmissions=${s1.counters.l2tp.retransmissions ?? 0} ping_loss_pct=${pingLoss}`;
    if (!down) {
      // Survived: same tunnel and session, still fully up (an RS from the LAN is answered).
      const { status } = await fullyUp(lab, a, P1, 0, tEnd, MARGIN_MS + 2000);
      report(t, faultLine('loss-30pct', -1, 0, { survived: true, loss_s: LOSS_MS / 1000, datagrams_dropped: lost, counters, config: CONFIG }));
      assert.equal(status.tunnel!.localId, first.status.tunnel!.localId, 'the same tunnel');
      assert.equal(status.reconnects, 0);
      assertNothingLeft(lab, status, P1);
      return;
    }
    const { at: upAt, status } = await fullyUp(lab, a, P1, from, Math.max(at(down), tEnd - 1), RETRANSMIT_CAP_S * 1000 + RECONNECT_CAP_S * 1000 + BRINGUP_MS + MARGIN_MS);
    const detect = at(down) - t0;
    const up = Math.max(0, upAt - tEnd);
    report(t, faultLine('loss-30pct', detect, up, { survived: false, why: down.msg.replace(/;.*/, ''), loss_s: LOSS_MS / 1000, datagrams_dropped: lost, counters, config: CONFIG }));
    // A drop under loss must be the keepalive's or the control channel's verdict, not anything else.
    assert.match(down.msg, /^(ppp down: echo-timeout|tunnel down: .*retransmi)/);
    assert.ok(detect >= ECHO_S * (ECHO_FAILURES - 1) * 1000, `${detect} ms`);
    assert.ok(up <= Math.max(RETRANSMIT_CAP_S, RECONNECT_CAP_S) * 1000 + BRINGUP_MS + MARGIN_MS, `${up} ms`);
    assertNothingLeft(lab, status, P1);
  });
});

describe('StopCCN result codes from the SC (emulator), each with measured recovery', { skip: process.getuid?.() === 0 ? false : 'needs root (network namespaces)' }, () => {
  const ppp = (prefix: string) => ({ dhcp: { prefix } });

  async function emulator(t: T, lay: ScLayout, script: EmulatorScript): Promise<EmulatorProc> {
    const e = await EmulatorProc.start(lay.sc, { host: lay.scAddress, ...script });
    t.after(() => e.stop());
    return e;
  }

  const established = async (e: EmulatorProc) => (await e.status()).tunnels.filter((x) => x.state === 'established' && x.session?.state === 'established').length;

  test('StopCCN 2/7 "try another": the agent dials its next SC and is fully up there, with that SC\'s prefix', async (t) => {
    const lab = await faultLab(t, false);
    const P2 = '2001:db8:102::/56';
    const [first, second] = await Promise.all([
      emulator(t, lab.lay, { port: 1701, hostName: 'first', ppp: ppp(P1) }),
      emulator(t, lab.lay, { port: 1702, hostName: 'second', ppp: ppp(P2) }),
    ]);
    const a = startAgent(t, lab, [], [`${lab.lay.scAddress}:1701`, `${lab.lay.scAddress}:1702`]);
    const s0 = await fullyUp(lab, a, P1, 0, 0, 20_000);
    assert.equal(s0.status.sc?.port, 1701);
    const from = a.lines.length;
    const t0 = Date.now();
    await first.command({ cmd: 'stopccn', result: 2, error: 7, message: 'try another' });
    const down = await waitLogAfter(a, from, / down: .*peer-stopccn/, MARGIN_MS);
    const dial = await waitLogAfter(a, from, /^dialling SC 192\.0\.2\.1:1702/, RECONNECT_INITIAL_S * 1000 + MARGIN_MS);
    const { at: upAt, status } = await fullyUp(lab, a, P2, from, at(down), RECONNECT_INITIAL_S * 1000 + BRINGUP_MS + MARGIN_MS);
    const detect = at(down) - t0;
    const up = upAt - t0;
    report(t, faultLine('stopccn-try-another', detect, up, { redial_ms: at(dial) - at(down), config: CONFIG }));
    assert.match(down.msg, /peer-stopccn.*result 2, error 7/);
    assert.ok(detect < MARGIN_MS, `${detect} ms`);
    // The next SC is dialled without a backoff step: only the old tunnel's teardown comes first.
    assert.ok(at(dial) - at(down) < MARGIN_MS, `${at(dial) - at(down)} ms`);
    assert.ok(up < BRINGUP_MS + MARGIN_MS, `${up} ms`);
    assert.equal(status.sc?.port, 1702);
    assert.equal(await established(first), 0, 'nothing left on the first SC');
    assert.equal(await established(second), 1, 'one session on the second SC');
    assertNothingLeft(lab, status, P2, [P1]);
    await t.test('no stale route of the old LAN /64', () => assert.deepEqual(staleLanRoutes(lab, [P1]), []));
  });

  test('StopCCN 4 "not authorized" (permanent): the agent waits at least a quarter of the reconnect cap and says why', async (t) => {
    const lab = await faultLab(t, false);
    const emu = await emulator(t, lab.lay, { port: 1701, ppp: ppp(P1) });
    // A cap of 20 s puts the floor (cap/4 = 5 s) well above the first backoff step (0.5..1 s).
    const CAP_S = 20;
    const floorMs = (CAP_S * 1000) / 4;
    const a = startAgent(t, lab, ['--reconnect-cap', String(CAP_S)]);
    await fullyUp(lab, a, P1, 0, 0, 20_000);
    const from = a.lines.length;
    const t0 = Date.now();
    await emu.command({ cmd: 'stopccn', result: 4, message: 'not authorized' });
    const down = await waitLogAfter(a, from, / down: .*peer-stopccn/, MARGIN_MS);
    const dial = await waitLogAfter(a, from, /^dialling SC /, floorMs + MARGIN_MS);
    const { at: upAt, status } = await fullyUp(lab, a, P1, from, at(down), floorMs + BRINGUP_MS + MARGIN_MS);
    const detect = at(down) - t0;
    const waited = at(dial) - at(down);
    report(t, faultLine('stopccn-not-authorized', detect, upAt - t0, { waited_ms: waited, config: `${CONFIG} reconnect-cap=${CAP_S}s` }));
    assert.match(down.msg, /peer-stopccn.*result 4/);
    const m = /retrying in ([\d.]+) s/.exec(down.msg);
    assert.ok(m && Number(m[1]) * 1000 >= floorMs, down.msg);
    assert.match(down.msg, /will not change by itself/, 'the log says why the wait is long');
    assert.ok(waited >= floorMs - 50, `redialled after ${waited} ms, floor ${floorMs} ms`);
    assert.equal(await established(emu), 1);
    assertNothingLeft(lab, status, P1);
  });
});

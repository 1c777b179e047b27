import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { controlRequest } from '../../src/agent/control';
import type { Status } from '../../src/agent/status';
import { formatStatus } from '../../src/cli/format-status';
import { DEFAULT_USER, L2tpnsSc, l2tpnsAvailable } from './l2tpns';
import { onLines } from './lines';
import { link, waitFor } from './netns';
import { scLayout } from './topology';

/**
 * `npm run demo` (scripts/demo.ts): the whole job on an embedded default. Three hosts in network
 * namespaces — a Softwire Concentrator (l2tpns + FreeRADIUS), this router
 * running the agent, and a LAN host with no configuration — then the router
 * dials, gets a delegated prefix, numbers the LAN, and the LAN host pings the
 * SC's side across the softwire. Everything is removed at the end.
 */

export interface DemoOptions {
  /** How the agent is started: [executable, ...args before "run"]. */
  agentCommand: string[];
  out: (line: string) => void;
  timeoutMs?: number;
}

const SC_SIDE_TARGET = '2001:db8:200::1';

export async function runDemo(o: DemoOptions): Promise<number> {
  const say = o.out;
  if (process.getuid?.() !== 0) {
    say('the demo needs root: it builds network namespaces, veth pairs and a TUN device.');
    return 2;
  }
  const avail = l2tpnsAvailable();
  if (!avail.ok) {
    say(`the demo needs a local SC: ${avail.message}`);
    return 2;
  }
  const timeout = o.timeoutMs ?? 30_000;
  const dir = mkdtempSync(join(tmpdir(), 'softwire-demo-'));
  const lay = scLayout();
  let sc: L2tpnsSc | undefined;
  let agent: ReturnType<typeof spawn> | undefined;
  let code = 1;
  try {
    const lan = lay.topo.ns('lan');
    const lanLink = link(lay.cpe, undefined, lan, undefined);
    lan.sysctl(`net.ipv6.conf.${lanLink.b}.accept_ra`, '2');
    lan.sysctl(`net.ipv6.conf.${lanLink.b}.autoconf`, '1');
    say(`[1/5] hosts: SC ${lay.sc.name} (192.0.2.1), router ${lay.cpe.name} (192.0.2.2), LAN host ${lan.name}`);

    sc = await L2tpnsSc.start(lay.sc, { bindAddress: lay.scAddress });
    say(`[2/5] SC up: l2tpns + FreeRADIUS, user ${DEFAULT_USER.name}, delegates ${DEFAULT_USER.delegatedPrefix}`);

    const pw = join(dir, 'password');
    writeFileSync(pw, `${DEFAULT_USER.password}\n`, { mode: 0o600 });
    const sock = join(dir, 'softwire.sock');
    const [exe, ...pre] = o.agentCommand;
    const args = [
      ...pre,
      'run',
      '--sc',
      lay.scAddress,
      '--user',
      DEFAULT_USER.name,
      '--password-file',
      pw,
      '--mode',
      'router',
      '--lan',
      lanLink.a,
      '--ra',
      'builtin',
      '--control-socket',
      sock,
      '--state-dir',
      join(dir, 'state'),
      '--resolv-file',
      join(dir, 'resolv.conf'),
    ];
    say(`[3/5] starting the agent: softwire ${args.slice(pre.length).join(' ')}`);
    agent = lay.cpe.spawn(exe!, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    onLines(agent.stdout!, (line) => {
      try {
        const j = JSON.parse(line) as { layer?: string; msg: string; level: number };
        if (j.layer || j.level >= 40) say(`      ${j.layer ?? 'agent'}: ${j.msg}`);
      } catch {
        say(`      ${line}`);
      }
    });

    const status: Status = await waitFor('the softwire to come up', timeout, async () => {
      if (agent!.exitCode !== null) throw new Error(`the agent exited with code ${agent!.exitCode}`);
      const r = await controlRequest(sock, { cmd: 'status' }).catch(() => null);
      const s = r?.ok ? (r.status as Status) : null;
      return s?.state === 'up' && s.ipv6?.delegatedPrefix && (s.ipv6.lan?.length ?? 0) > 0 ? s : undefined;
    });
    const lanAddr = await waitFor('the LAN host to autoconfigure from the router RA', timeout, () => {
      const a = lan.ipJson<{ addr_info: { local: string; scope: string; tentative?: boolean }[] }[]>(['-6', 'addr', 'show', 'dev', lanLink.b]);
      return a[0]?.addr_info.find((x) => x.scope === 'global' && !x.tentative)?.local;
    });
    say(`[4/5] softwire up; LAN host autoconfigured ${lanAddr}`);
    say('');
    for (const l of formatStatus(status).split('\n')) say(`      ${l}`);
    say('');
    try {
      const out = lan.exec('ping', ['-6', '-c', '3', '-i', '0.2', '-W', '2', SC_SIDE_TARGET]);
      const summary = out.split('\n').find((l) => /packets transmitted/.test(l)) ?? out.trim();
      say(`[5/5] LAN host -> ${SC_SIDE_TARGET} (SC side) across the softwire: ${summary}`);
      code = 0;
    } catch (e) {
      say(`[5/5] ping from the LAN host to ${SC_SIDE_TARGET} failed: ${(e as Error).message}`);
      code = 1;
    }
  } catch (e) {
    say(`demo failed: ${(e as Error).message}`);
    code = 1;
  } finally {
    if (agent && agent.exitCode === null) {
      agent.kill('SIGTERM');
      await new Promise((r) => {
        const t = setTimeout(r, 4000);
        agent!.once('exit', () => {
          clearTimeout(t);
          r(undefined);
        });
      });
    }
    await sc?.stop();
    sc?.cleanup();
    lay.topo.destroy();
    rmSync(dir, { recursive: true, force: true });
    say(code === 0 ? 'demo finished: everything it made has been removed' : 'demo cleaned up after failure');
  }
  return code;
}

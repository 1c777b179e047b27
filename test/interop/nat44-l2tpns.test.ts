import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { describe, test } from 'node:test';
import { DEFAULT_USER, L2tpnsSc, l2tpnsAvailable } from '../lab/l2tpns';
import { link } from '../lab/netns';
import { scLayout } from '../lab/topology';
import { AgentProc } from '../helpers/agent-proc';

/**
 * NAT44 in the router role (RFC 5571 3.2) against l2tpns: a LAN host's IPv4 reaches
 * the SC's side through the softwire with the IPCP address as its source, and the
 * agent leaves no nftables table (and no forwarding switch it flipped) behind on
 * SIGTERM. The SC's side has no route back to the LAN, so only translated packets
 * can be answered.
 */

const avail = l2tpnsAvailable();
const skip = avail.ok ? false : avail.message;
const FAR = '203.0.113.1';

// Accepts one TCP connection and prints the peer address it saw.
const SERVER = `
const srv = require('net').createServer((s) => { console.log(s.remoteAddress); s.end('ok\\n'); srv.close(); });
srv.listen(Number(process.argv[2]), process.argv[1], () => console.log('listening'));
`;

function lines(p: ChildProcess): string[] {
  const out: string[] = [];
  let buf = '';
  p.stdout!.setEncoding('utf8');
  p.stdout!.on('data', (d: string) => {
    buf += d;
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      out.push(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
  });
  return out;
}

async function until<T>(what: string, ms: number, f: () => T | undefined): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('NAT44 router role against l2tpns', { skip }, () => {
  test('LAN IPv4 leaves through the softwire as the IPCP address; rules and forwarding removed on SIGTERM', async (t) => {
    const lay = scLayout();
    t.after(() => lay.topo.destroy());
    const lanHost = lay.topo.ns('nat-lan');
    const veth = link(lay.cpe, '192.168.77.1/24', lanHost, '192.168.77.2/24');
    lanHost.ip(['route', 'add', 'default', 'via', '192.168.77.1']);
    lay.sc.ip(['addr', 'add', `${FAR}/32`, 'dev', 'lo']);
    lay.cpe.sysctl('net.ipv4.ip_forward', '0');
    const sc = await L2tpnsSc.start(lay.sc, { bindAddress: lay.scAddress, ipv6Prefix: null });
    t.after(async () => {
      await sc.stop();
      sc.cleanup();
    });

    const a = AgentProc.start(lay.cpe, ['--sc', lay.scAddress, '--user', DEFAULT_USER.name, '--mode', 'router', '--ncp', 'ipv4', '--lan', veth.a], {
      password: DEFAULT_USER.password,
    });
    t.after(() => a.stop());
    const s = await a.waitState('up', 20_000);
    const ipcp = s.ipv4?.address;
    assert.ok(ipcp, `IPCP address in status: ${JSON.stringify(s.ipv4)}`);
    await a.waitLog(/NAT44/, 5000);

    const ruleset = lay.cpe.exec('nft', ['list', 'table', 'ip', 'softwire']);
    assert.match(ruleset, new RegExp(`iifname "${veth.a}" oifname "sw0" masquerade`));
    assert.equal(lay.cpe.exec('sysctl', ['-n', 'net.ipv4.ip_forward']).trim(), '1', 'the agent turned forwarding on');

    lanHost.exec('ping', ['-c', '2', '-W', '2', FAR]);
    const srv = lay.sc.spawn('node', ['-e', SERVER, FAR, '8077']);
    const out = lines(srv);
    await until('server listening', 5000, () => (out.includes('listening') ? true : undefined));
    const reply = lanHost.exec('bash', ['-c', `exec 3<>/dev/tcp/${FAR}/8077; cat <&3`]);
    assert.equal(reply.trim(), 'ok');
    const seen = await until('peer address', 5000, () => out.find((l) => l !== 'listening'));
    assert.equal(seen, ipcp, 'the SC side saw the LAN host as the IPCP address');

    const st = await a.stop();
    assert.equal(st.code, 0);
    assert.doesNotMatch(lay.cpe.exec('nft', ['list', 'ruleset']), /softwire|masquerade/, 'nothing left in nftables');
    assert.equal(lay.cpe.exec('sysctl', ['-n', 'net.ipv4.ip_forward']).trim(), '0', 'forwarding back as found');
  });
});

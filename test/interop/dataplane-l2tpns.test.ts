import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { ChildProcess } from 'node:child_process';
import { DEFAULT_USER, L2tpnsSc, l2tpnsAvailable } from '../lab/l2tpns';
import type { Netns } from '../lab/netns';
import { scLayout, type ScLayout } from '../lab/topology';
import type { AgentProc } from '../helpers/agent-proc';
import { startFastAgent } from '../integration/dataplane-lab';

/**
 * The data fast path against the real SC (l2tpns): bulk TCP both ways through an
 * IPv4 and an IPv6 softwire arrives intact, and SYNs are MSS-clamped on the wire.
 */

const avail = l2tpnsAvailable();
const skip = avail.ok ? false : avail.message;
const SIZE = 50 * 1024 * 1024;
/** An address of the SC's host reached through the softwire (l2tpns's tun0 only has the veth address). */
const FAR4 = '203.0.113.1';
const FAR6 = '2001:db8:200::1';

// Receives one TCP stream, prints its length and sha256; or sends a file. Runs in a namespace.
const PEER = `
const net = require('net'), fs = require('fs'), crypto = require('crypto');
const [mode, host, port, file] = process.argv.slice(1);
const hashIn = (sock) => { const h = crypto.createHash('sha256'); let n = 0; sock.on('data', (d) => { n += d.length; h.update(d); }); sock.on('end', () => { console.log(n + ' ' + h.digest('hex')); process.exit(0); }); };
const sendFile = (sock) => fs.createReadStream(file).pipe(sock);
if (mode === 'listen-recv' || mode === 'listen-send') {
  const srv = net.createServer((s) => { srv.close(); mode === 'listen-recv' ? hashIn(s) : sendFile(s); });
  srv.listen(Number(port), host, () => console.log('listening'));
} else {
  const s = net.connect(Number(port), host, () => { mode === 'connect-send' ? sendFile(s) : hashIn(s); });
}
`;

function output(p: ChildProcess): Promise<string> {
  let out = '';
  p.stdout!.setEncoding('utf8');
  p.stdout!.on('data', (d: string) => (out += d));
  return new Promise((res, rej) => {
    p.on('exit', (code) => (code === 0 ? res(out) : rej(new Error(`peer exited ${code}: ${out}`))));
  });
}

async function waitListening(p: ChildProcess): Promise<void> {
  await new Promise<void>((res) => {
    p.stdout!.once('data', () => res());
  });
}

async function transfer(from: Netns, to: Netns, toAddress: string, file: string, digest: string, direction: 'to-listener' | 'from-listener'): Promise<void> {
  const port = String(20000 + Math.floor(Math.random() * 10000));
  const listenMode = direction === 'to-listener' ? 'listen-recv' : 'listen-send';
  const connectMode = direction === 'to-listener' ? 'connect-send' : 'connect-recv';
  const srv = to.spawn('node', ['-e', PEER, listenMode, toAddress, port, file]);
  await waitListening(srv);
  const srvOut = direction === 'to-listener' ? output(srv) : Promise.resolve('');
  const cli = from.spawn('node', ['-e', PEER, connectMode, toAddress, port, file]);
  const cliOut = output(cli);
  const got = direction === 'to-listener' ? await srvOut : await cliOut;
  await cliOut;
  assert.equal(got.trim().split('\n').pop(), `${SIZE} ${digest}`);
}

function bigFile(): { file: string; digest: string } {
  const dir = mkdtempSync(join(tmpdir(), 'softwire-dp-data-'));
  const data = randomBytes(SIZE);
  const file = join(dir, 'blob');
  writeFileSync(file, data);
  return { file, digest: createHash('sha256').update(data).digest('hex') };
}

async function setup(t: { after: (fn: () => unknown) => void }, v4: boolean): Promise<{ lay: ScLayout; a: AgentProc }> {
  const lay = scLayout();
  t.after(() => lay.topo.destroy());
  lay.sc.ip(['addr', 'add', `${FAR4}/32`, 'dev', 'lo']);
  const sc = await L2tpnsSc.start(lay.sc, { bindAddress: lay.scAddress, ...(v4 ? { ipv6Prefix: null } : {}) });
  t.after(async () => {
    await sc.stop();
    sc.cleanup();
  });
  const a = startFastAgent(lay.cpe, ['--sc', lay.scAddress, '--user', DEFAULT_USER.name, '--mode', 'host', ...(v4 ? ['--ncp', 'ipv4'] : [])], DEFAULT_USER.password);
  t.after(() => a.stop());
  await a.waitState('up', 15_000);
  // No host route to the IPCP peer (l2tpns's own tunnel address) may capture the tunnel.
  if (v4) assert.equal(lay.cpe.ip(['route', 'show', `${lay.scAddress}/32`, 'dev', 'sw0']).trim(), '');
  else await a.waitLog(/\(SLAAC\)/, 10_000);
  return { lay, a };
}

describe('data path through l2tpns', { skip }, () => {
  const blob = bigFile();

  for (const v4 of [true, false]) {
    const far = v4 ? FAR4 : FAR6;
    test(`${v4 ? 'IPv4' : 'IPv6'} softwire: 50 MB each way arrive intact; counters count them`, async (t) => {
      const { lay, a } = await setup(t, v4);
      const t0 = Date.now();
      await transfer(lay.cpe, lay.sc, far, blob.file, blob.digest, 'to-listener');
      await transfer(lay.cpe, lay.sc, far, blob.file, blob.digest, 'from-listener');
      t.diagnostic(`2 x 50 MB in ${Date.now() - t0} ms`);
      const s = await a.status();
      const d = s.counters.data;
      assert.ok(d.tunInOctets! > SIZE && d.tunOutOctets! > SIZE, JSON.stringify(d));
      assert.ok(d.txBatches! > 0 && d.rxBatches! > 0, 'the fast path carried them');
      t.diagnostic(JSON.stringify(d));
    });
  }

  test('MSS of SYN and SYN-ACK is clamped to the softwire MTU (1460 - 40) in both directions', async (t) => {
    const { lay } = await setup(t, true);
    // Make both ends advertise 1460, as a LAN host behind a router would.
    lay.cpe.ip(['route', 'replace', `${FAR4}/32`, 'dev', 'sw0', 'advmss', '1460']);
    lay.sc.ip(['route', 'replace', '198.51.100.128/32', 'dev', 'tun0', 'advmss', '1460']);
    const capSc = lay.sc.spawn('tcpdump', ['-lni', 'tun0', '-c', '1', '-v', 'tcp[tcpflags] & tcp-syn != 0 and port 5201']);
    const capCpe = lay.cpe.spawn('tcpdump', ['-lni', 'sw0', '-c', '2', '-v', 'tcp[tcpflags] & tcp-syn != 0 and port 5201']);
    const scOut = output(capSc);
    const cpeOut = output(capCpe);
    await new Promise((r) => setTimeout(r, 1000));
    const srv = lay.sc.spawn('iperf3', ['-s', '-1']);
    await new Promise((r) => setTimeout(r, 300));
    lay.cpe.exec('iperf3', ['-c', FAR4, '-n', '1M']);
    await output(srv);
    const [atSc, atCpe] = await Promise.all([scOut, cpeOut]);
    // The SYN leaves the CPE with 1460 and reaches the SC side with 1420.
    assert.match(atCpe, /Flags \[S\],.*mss 1460/);
    assert.match(atSc, /Flags \[S\],.*mss 1420/);
    // The SYN-ACK leaves the SC with 1460 and reaches the CPE's kernel with 1420.
    assert.match(atCpe, /Flags \[S\.\],.*mss 1420/);
  });
});

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { Command } from 'commander';
import type { CliIo } from '../../src/cli/client-verbs';
import { probeSourceAddress, registerSdpVerb, scFromSdpFile } from '../../src/cli/sdp-verb';
import { RealScheduler } from '../../src/core/scheduler';
import { SdpError } from '../../src/sdp/sdp';
import { link, Netns } from '../helpers/netns';

class Exit extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

interface Result {
  out: string;
  err: string;
  code: number | undefined;
}

/** Runs `softwire <args>` in-process with the sdp verb registered and `stdin` as standard input. */
async function run(args: string[], stdin: Readable = Readable.from([])): Promise<Result> {
  const r: Result = { out: '', err: '', code: undefined };
  const io: CliIo = {
    out: (t) => {
      r.out += t;
    },
    err: (t) => {
      r.err += t;
    },
    stdin,
    setExitCode: (c) => {
      r.code = c;
    },
    exit: (c) => {
      throw new Exit(c);
    },
    clock: new RealScheduler(),
  };
  const program = new Command('softwire').exitOverride();
  registerSdpVerb(program, io);
  try {
    await program.parseAsync(args, { from: 'user' });
  } catch (e) {
    if (!(e instanceof Exit)) throw e;
    r.code = e.code;
  }
  return r;
}

const dir = mkdtempSync(join(tmpdir(), 'swsdp-'));
function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

const answer = (c: string, m = 'm=application 1701 UDP l2tp') => `v=0\r\no=lns 1 1 IN IP4 192.0.2.1\r\ns=-\r\n${c}\r\nt=0 0\r\n${m}\r\n`;

test('sdp answer FILE prints HOST:PORT, brackets IPv6, and --json prints {address, port}', async () => {
  const v4 = file('v4.sdp', answer('c=IN IP4 192.0.2.1', 'm=application 1702 UDP l2tp'));
  assert.deepEqual(await run(['sdp', 'answer', v4]), { out: '192.0.2.1:1702\n', err: '', code: 0 });
  const v6 = file('v6.sdp', answer('c=IN IP6 2001:db8::1'));
  assert.deepEqual(await run(['sdp', 'answer', v6]), { out: '[2001:db8::1]:1701\n', err: '', code: 0 });
  const json = await run(['sdp', 'answer', '--json', v6]);
  assert.deepEqual(JSON.parse(json.out), { address: '2001:db8::1', port: 1701 });
  assert.deepEqual(await scFromSdpFile(v6), { host: '2001:db8::1', port: 1701 });
});

test('sdp answer reads stdin for "-" and when no FILE is given', async () => {
  const text = answer('c=IN IP4 203.0.113.9');
  for (const args of [['sdp', 'answer', '-'], ['sdp', 'answer']]) {
    const r = await run(args, Readable.from([Buffer.from(text.slice(0, 20)), Buffer.from(text.slice(20))]));
    assert.deepEqual(r, { out: '203.0.113.9:1701\n', err: '', code: 0 }, args.join(' '));
  }
  assert.deepEqual(await scFromSdpFile('-', Readable.from([text])), { host: '203.0.113.9', port: 1701 });
});

test('bad SDP exits 2 naming the input, line and reason; a declined stream exits 1', async () => {
  const bad = file('bad.sdp', answer('c=IN IP4 999.0.0.1'));
  const r = await run(['sdp', 'answer', bad]);
  assert.equal(r.code, 2);
  assert.equal(r.out, '');
  assert.equal(r.err, `softwire: ${bad}: line 4: c=: "999.0.0.1" is neither an IPv4 address nor a DNS name\n`);
  const audio = await run(['sdp', 'answer'], Readable.from([answer('c=IN IP4 192.0.2.1', 'm=audio 4000 RTP/AVP 0')]));
  assert.equal(audio.code, 2);
  assert.match(audio.err, /^softwire: stdin: line 6: the answer's media is "audio 4000 RTP\/AVP 0"/);
  const declined = await run(['sdp', 'answer', file('zero.sdp', answer('c=IN IP4 192.0.2.1', 'm=application 0 UDP l2tp'))]);
  assert.equal(declined.code, 1);
  assert.match(declined.err, /line 6: the answerer rejected the L2TP stream \(port 0\)/);
  await assert.rejects(scFromSdpFile(bad), (e: unknown) => e instanceof SdpError && e.line === 4);
});

test('unreadable or oversized input exits 2', async () => {
  const missing = await run(['sdp', 'answer', join(dir, 'nope.sdp')]);
  assert.equal(missing.code, 2);
  assert.match(missing.err, /cannot read .*nope\.sdp: ENOENT/);
  assert.equal((await run(['sdp', 'answer', dir])).code, 2);
  // An endless stdin is cut off at the size bound instead of being read forever.
  const endless = new Readable({
    read() {
      this.push(Buffer.alloc(4096, 0x61));
    },
  });
  const big = await run(['sdp', 'answer'], endless);
  assert.equal(big.code, 2);
  assert.match(big.err, /longer than 65536 bytes/);
  await assert.rejects(scFromSdpFile(join(dir, 'nope.sdp')), /cannot read .*ENOENT/);
});

test('sdp offer --address prints the offer; bad options exit 2', async () => {
  const r = await run(['sdp', 'offer', '--address', '198.51.100.7', '--port', '1']);
  assert.equal(r.code, 0);
  const lines = r.out.split('\r\n');
  assert.equal(lines[0], 'v=0');
  assert.match(lines[1], /^o=- \d+ \d+ IN IP4 198\.51\.100\.7$/);
  assert.deepEqual(lines.slice(2), ['s=softwire', 'c=IN IP4 198.51.100.7', 't=0 0', 'm=application 1 UDP l2tp', '']);
  const v6 = await run(['sdp', 'offer', '--address', '2001:db8::7']);
  assert.match(v6.out, /\r\nc=IN IP6 2001:db8::7\r\n[\s\S]*\r\nm=application 1701 UDP l2tp\r\n$/);
  for (const args of [
    ['--port', '0'],
    ['--port', '65536'],
    ['--address', 'router.example'],
  ]) {
    const bad = await run(['sdp', 'offer', ...args]);
    assert.equal(bad.code, 2, args.join(' '));
    assert.match(bad.err, /port from 1 to 65535|not an IPv4 or IPv6 address/);
  }
  assert.equal((await run(['sdp'])).code, 2);
  const help = await run(['sdp', 'answer', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.out, /Exit status:\n {2}0 .*\n {2}1 .*declines.*\n {2}2 /);
  assert.match(help.out, /Examples:\n {2}softwire sdp answer answer\.sdp/);
});

test('sdp offer --sc uses the source address the kernel would use towards the SC', async () => {
  assert.equal(await probeSourceAddress('127.0.0.1'), '127.0.0.1');
  assert.equal(await probeSourceAddress('[::1]:1701'), '::1');
  const r = await run(['sdp', 'offer', '--sc', '127.0.0.1:1701']);
  assert.equal(r.code, 0);
  assert.match(r.out, /\r\nc=IN IP4 127\.0\.0\.1\r\n/);
});

test('without --address: the default-route address, or exit 2 asking for --address when there is no route', (t) => {
  // A real namespace gives a routing table we control; the verb runs there as the real CLI would.
  const root = resolve(__dirname, '../..');
  const fixture = file(
    'offer-fixture.cjs',
    `const { Command } = require(${JSON.stringify(require.resolve('commander'))});\n` +
      `const { registerSdpVerb } = require(${JSON.stringify(join(root, 'src/cli/sdp-verb.ts'))});\n` +
      `const p = new Command('softwire');\nregisterSdpVerb(p);\n` +
      `p.parseAsync(process.argv.slice(2), { from: 'user' }).catch((e) => { console.error(e); process.exit(99); });\n`,
  );
  const ns = Netns.create('sdp');
  const peer = Netns.create('sdpgw');
  t.after(() => {
    ns.destroy();
    peer.destroy();
  });
  const offer = () => spawnSync('ip', ['netns', 'exec', ns.name, process.execPath, '--import', 'tsx', fixture, 'sdp', 'offer'], { cwd: root, encoding: 'utf8' });
  const none = offer();
  assert.equal(none.status, 2, none.stderr);
  assert.match(none.stderr, /cannot determine our address \(.*ENETUNREACH.*\); give --address ADDR/);
  link(ns, '10.77.0.2/24', peer, '10.77.0.1/24');
  ns.ip(['route', 'add', 'default', 'via', '10.77.0.1']);
  const routed = offer();
  assert.equal(routed.status, 0, routed.stderr);
  assert.match(routed.stdout, /\r\nc=IN IP4 10\.77\.0\.2\r\n/);
});

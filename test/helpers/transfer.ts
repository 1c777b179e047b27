import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import type { Netns } from '../lab/netns';

/** One TCP stream between two namespaces, checked by length and SHA-256 at the receiver. */

// Receives one TCP stream and prints "length sha256", or sends a file. Runs in a namespace.
const PEER = `
const net = require('net'), fs = require('fs'), crypto = require('crypto');
const [mode, host, port, file] = process.argv.slice(1);
const hashIn = (s) => { const h = crypto.createHash('sha256'); let n = 0; s.on('data', (d) => { n += d.length; h.update(d); }); s.on('end', () => { console.log(n + ' ' + h.digest('hex')); process.exit(0); }); };
const send = (s) => fs.createReadStream(file).pipe(s);
if (mode.startsWith('listen')) {
  const srv = net.createServer((s) => { srv.close(); mode === 'listen-recv' ? hashIn(s) : send(s); });
  srv.listen(Number(port), host, () => console.log('listening'));
} else {
  const s = net.connect(Number(port), host, () => { mode === 'connect-send' ? send(s) : hashIn(s); });
}
`;

function output(p: ChildProcess): Promise<string> {
  let out = '';
  p.stdout!.setEncoding('utf8');
  p.stdout!.on('data', (d: string) => (out += d));
  return new Promise((res, rej) => p.on('exit', (code) => (code === 0 ? res(out) : rej(new Error(`peer exited ${code}: ${out}`)))));
}

/**
 * Sends `file` over TCP between `from` and `to` (`addr` is the listener's address in
 * `to`) and asserts the receiver saw `expect` ("length sha256"). With toListener the
 * connecting side sends; otherwise the listener sends.
 */
export async function transfer(from: Netns, to: Netns, addr: string, file: string, expect: string, toListener: boolean): Promise<void> {
  const port = String(20000 + Math.floor(Math.random() * 10000));
  const srv = to.spawn('node', ['-e', PEER, toListener ? 'listen-recv' : 'listen-send', addr, port, file]);
  await new Promise<void>((res) => srv.stdout!.once('data', () => res()));
  const srvOut = toListener ? output(srv) : Promise.resolve('');
  const cliOut = output(from.spawn('node', ['-e', PEER, toListener ? 'connect-send' : 'connect-recv', addr, port, file]));
  const got = toListener ? await srvOut : await cliOut;
  await cliOut;
  assert.equal(got.trim().split('\n').pop(), expect);
}

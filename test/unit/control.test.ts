import assert from 'node:assert/strict';
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ControlServer, controlRequest } from '../../src/agent/control';

function tmpSock(): string {
  return join(mkdtempSync(join(tmpdir(), 'swctl-')), 'run', 'softwire.sock');
}

test('control socket answers requests, is root-only, and removes its file on close', async () => {
  const path = tmpSock();
  const seen: string[] = [];
  const srv = await ControlServer.listen(path, (req) => {
    seen.push(req.cmd);
    if (req.cmd === 'status') return { ok: true, status: { state: 'up' } };
    return { ok: false, error: `unknown command "${req.cmd}"` };
  });
  assert.equal(statSync(path).mode & 0o777, 0o600);
  // The directory stays readable (the resolv file may share it); the socket is the gate.
  assert.equal(statSync(join(path, '..')).mode & 0o777, 0o755);
  assert.deepEqual(await controlRequest(path, { cmd: 'status' }), { ok: true, status: { state: 'up' } });
  assert.deepEqual(await controlRequest(path, { cmd: 'nope' }), { ok: false, error: 'unknown command "nope"' });
  assert.deepEqual(seen, ['status', 'nope']);
  await srv.close();
  await assert.rejects(controlRequest(path, { cmd: 'status' }), /cannot reach .*ENOENT.*softwire run/);
});

test('malformed requests get an error reply, not a crash', async (t) => {
  const path = tmpSock();
  const srv = await ControlServer.listen(path, () => ({ ok: true }));
  t.after(() => srv.close());
  const replies = await new Promise<string[]>((res) => {
    const c = net.connect(path);
    let buf = '';
    c.setEncoding('utf8');
    c.on('data', (d: string) => {
      buf += d;
      if (buf.split('\n').length > 3) {
        c.destroy();
        res(buf.trim().split('\n'));
      }
    });
    c.write('not json\n[1]\n{"cmd": 5}\n');
  });
  assert.match(replies[0], /"ok":false,"error":"bad JSON/);
  assert.equal(JSON.parse(replies[1]).error, 'request must be a JSON object with a "cmd" string');
  assert.equal(JSON.parse(replies[2]).error, 'request must be a JSON object with a "cmd" string');
  assert.deepEqual(await controlRequest(path, { cmd: 'x' }), { ok: true });
});

test('replies keep request order even when an earlier handler is slow', async () => {
  const path = tmpSock();
  const srv = await ControlServer.listen(path, async (req) => {
    if (req.cmd === 'slow') await new Promise((r) => setTimeout(r, 100));
    return { ok: true, cmd: req.cmd };
  });
  const lines = await new Promise<string[]>((res) => {
    const c = net.connect(path);
    let buf = '';
    c.setEncoding('utf8');
    c.on('data', (d: string) => {
      buf += d;
      if (buf.split('\n').length > 2) {
        c.destroy();
        res(buf.trim().split('\n'));
      }
    });
    c.write('{"cmd":"slow"}\n{"cmd":"fast"}\n');
  });
  assert.deepEqual(lines.map((l) => JSON.parse(l).cmd), ['slow', 'fast']);
  await srv.close();
});

test('a stale socket file is replaced; a live one is refused', async () => {
  const path = tmpSock();
  const srv = await ControlServer.listen(path, () => ({ ok: true }));
  await assert.rejects(ControlServer.listen(path, () => ({ ok: true })), /in use: is another softwire running/);
  await srv.close();
  writeFileSync(path, '');
  const srv2 = await ControlServer.listen(path, () => ({ ok: true, again: 1 }));
  assert.deepEqual(await controlRequest(path, { cmd: 'x' }), { ok: true, again: 1 });
  await srv2.close();
});

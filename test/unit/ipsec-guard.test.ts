import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { type Server, type Socket, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import pino from 'pino';
import { CHILD, CONN } from '../../src/ipsec/core';
import { ViciGuard } from '../../src/ipsec/guard';
import { PacketType, type ViciMessage, ViciFramer, decodePacket, encodePacket } from '../../src/ipsec/vici-codec';

/**
 * The guard against a test double of charon's VICI socket: a real unix socket
 * speaking the real wire format, answering as charon 5.9 does. What charon itself
 * does with these commands is shown by the UML interop test (ipsec-uml.test.ts).
 */

const PSK = 'the-pre-shared-key-123';
const SC = { address: '192.0.2.1', port: 1701 };

interface Script {
  /** control-log lines streamed during initiate, and its answer. */
  initiate?: { log: string[]; success: boolean; errmsg?: string; hang?: boolean };
  /** Bytes sent before any answer (hostile input). */
  garbage?: Buffer;
}

class FakeCharon {
  readonly commands: { cmd: string; msg: ViciMessage }[] = [];
  readonly registered = new Set<string>();
  private clients = new Set<Socket>();
  private constructor(
    readonly server: Server,
    readonly path: string,
    private readonly script: Script,
  ) {}

  static async start(script: Script = {}): Promise<FakeCharon> {
    const dir = mkdtempSync(join(tmpdir(), 'fake-charon-'));
    const path = join(dir, 'charon.vici');
    const holder: { fake?: FakeCharon } = {};
    const server = createServer((s) => holder.fake!.serve(s));
    const fake = new FakeCharon(server, path, script);
    holder.fake = fake;
    await new Promise<void>((res) => server.listen(path, res));
    return fake;
  }

  private send(s: Socket, type: number, message: ViciMessage, name?: string): void {
    s.write(encodePacket({ type, name, message }));
  }

  event(name: string, message: ViciMessage): void {
    for (const s of this.clients) this.send(s, PacketType.EVENT, message, name);
  }

  private serve(s: Socket): void {
    this.clients.add(s);
    s.on('close', () => this.clients.delete(s));
    s.on('error', () => undefined);
    if (this.script.garbage) s.write(this.script.garbage);
    const framer = new ViciFramer();
    s.on('data', (d: Buffer) => {
      for (const b of framer.push(d)) {
        const p = decodePacket(b);
        if (p.type === PacketType.EVENT_REGISTER) {
          this.registered.add(p.name!);
          this.send(s, PacketType.EVENT_CONFIRM, {});
          continue;
        }
        this.commands.push({ cmd: p.name!, msg: p.message });
        this.answer(s, p.name!);
      }
    });
  }

  private answer(s: Socket, cmd: string): void {
    const ok = { success: 'yes' };
    switch (cmd) {
      case 'initiate': {
        const i = this.script.initiate ?? { log: ['IKE_SA softwire[1] established'], success: true };
        for (const line of i.log) this.send(s, PacketType.EVENT, { group: 'IKE', level: '1', msg: line }, 'control-log');
        if (i.hang) return;
        return this.send(s, PacketType.CMD_RESPONSE, i.success ? ok : { success: 'no', errmsg: i.errmsg ?? 'establishing CHILD_SA failed' });
      }
      case 'list-sas':
        this.send(
          s,
          PacketType.EVENT,
          {
            [CONN]: {
              version: '2',
              state: 'ESTABLISHED',
              'encr-alg': 'AES_CBC',
              'encr-keysize': '256',
              'nat-local': 'yes',
              'child-sas': { 'l2tp-1': { name: CHILD, state: 'INSTALLED', mode: 'TRANSPORT', encap: 'yes', 'encr-alg': 'AES_GCM_16', 'encr-keysize': '256', 'rekey-time': '3000' } },
            },
          },
          'list-sa',
        );
        return this.send(s, PacketType.CMD_RESPONSE, {});
      default:
        return this.send(s, PacketType.CMD_RESPONSE, ok);
    }
  }

  names(): string[] {
    return this.commands.map((c) => c.cmd);
  }

  async close(): Promise<void> {
    for (const s of this.clients) s.destroy();
    await new Promise<void>((res) => this.server.close(() => res()));
    rmSync(join(this.path, '..'), { recursive: true, force: true });
  }
}

function logger(): { log: pino.Logger; text: () => string } {
  const out = new PassThrough();
  const chunks: string[] = [];
  out.on('data', (d: Buffer) => chunks.push(d.toString()));
  return { log: pino({ level: 'debug' }, out), text: () => chunks.join('') };
}

function guard(path: string, log: pino.Logger, version: 'ikev1' | 'ikev2' = 'ikev2'): ViciGuard {
  return new ViciGuard({ settings: { version, psk: PSK, ikeProposals: ['aes256-sha256-modp2048'], espProposals: ['aes256gcm16'] }, socket: path, log });
}

test('up: key, connection, initiate, then the negotiated transform sets the MTU cost; down unloads it all; the PSK is never logged', async (t) => {
  const fake = await FakeCharon.start();
  t.after(() => fake.close());
  const { log, text } = logger();
  const g = guard(fake.path, log);
  const r = await g.up(SC, '10.0.0.2', 10_000);
  assert.deepEqual(r, { ok: true, overhead: 45 }, 'AES-GCM-16 transport + NAT-T UDP');
  assert.deepEqual(fake.names(), ['load-shared', 'load-conn', 'initiate', 'list-sas']);
  assert.equal(fake.commands[0]!.msg.data, PSK, 'the PSK goes to charon over its socket');
  for (const ev of ['control-log', 'ike-updown', 'child-updown', 'list-sa']) assert.ok(fake.registered.has(ev), ev);
  const st = g.status();
  assert.equal(st.phase, 'up');
  assert.equal(st.sa?.child?.encap, true);
  assert.equal(st.sa?.ike.natLocal, true);
  await g.down();
  assert.deepEqual(fake.names().slice(4), ['terminate', 'unload-conn', 'unload-shared']);
  assert.equal(g.status().phase, 'idle');
  await new Promise((r) => setTimeout(r, 20));
  assert.ok(!text().includes(PSK), 'PSK absent from the log');
  assert.match(text(), /IPsec: SA up with 192\.0\.2\.1 \(NAT traversal/);
});

test('wrong PSK: a permanent failure in plain words, and nothing left loaded in charon', async (t) => {
  const fake = await FakeCharon.start({ initiate: { log: ['establishing IKE_SA', 'received AUTHENTICATION_FAILED notify error'], success: false } });
  t.after(() => fake.close());
  const g = guard(fake.path, logger().log);
  const r = await g.up(SC, '10.0.0.2', 10_000);
  assert.equal(r.ok, false);
  assert.ok(!r.ok && r.permanent);
  assert.ok(!r.ok && /wrong pre-shared key/.test(r.reason));
  assert.ok(['terminate', 'unload-conn', 'unload-shared'].every((c) => fake.names().includes(c)), fake.names().join());
  assert.match(g.status().lastError ?? '', /wrong pre-shared key/);
});

test('daemon not installed or not running: said so, not permanent (it may be started)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'no-charon-'));
  const g = guard(join(dir, 'charon.vici'), logger().log);
  const r = await g.up(SC, '10.0.0.2', 5000);
  rmSync(dir, { recursive: true, force: true });
  assert.equal(r.ok, false);
  assert.ok(!r.ok && /charon\) is not running or not installed/.test(r.reason) && !r.permanent);
});

test('an SA that dies while up is reported once through onLost; our own down() is not a loss', async (t) => {
  const fake = await FakeCharon.start();
  t.after(() => fake.close());
  const g = guard(fake.path, logger().log);
  const lost: string[] = [];
  g.onLost((why) => lost.push(why));
  assert.equal((await g.up(SC, '10.0.0.2', 10_000)).ok, true);
  fake.event('child-updown', { [CONN]: { 'child-sas': { 'l2tp-1': { name: CHILD } } } });
  fake.event('ike-updown', { [CONN]: {} });
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(lost.length, 1);
  assert.match(lost[0]!, /ESP SA protecting L2TP went down/);
  await g.down();
  assert.equal(lost.length, 1);
});

test('hostile bytes from the socket are counted and dropped; the exchange still completes', async (t) => {
  // A well-framed packet with a broken body, then a CMD_RESPONSE nobody asked for.
  const junk = Buffer.concat([Buffer.from([0, 0, 0, 3, 1, 9, 9]), encodePacket({ type: PacketType.CMD_RESPONSE, message: { success: 'yes' } })]);
  const fake = await FakeCharon.start({ garbage: junk });
  t.after(() => fake.close());
  const g = guard(fake.path, logger().log);
  const r = await g.up(SC, '10.0.0.2', 10_000);
  assert.equal(r.ok, true);
  assert.deepEqual(g.status().drops, { malformed: 1, unexpected: 1 });
  await g.down();
});

test('stop while the SA is still being negotiated: up() ends at once as stopped, and the connection is unloaded', async (t) => {
  const fake = await FakeCharon.start({ initiate: { log: ['sending retransmit 1 of request message ID 0, seq 1'], success: false, hang: true } });
  t.after(() => fake.close());
  const g = guard(fake.path, logger().log);
  const pending = g.up(SC, '10.0.0.2', 60_000);
  while (!fake.names().includes('initiate')) await new Promise((r) => setTimeout(r, 10));
  const t0 = Date.now();
  await g.down();
  const r = await pending;
  assert.ok(Date.now() - t0 < 5000);
  assert.deepEqual(r, { ok: false, reason: 'IPsec: stopped', permanent: false });
  assert.ok(fake.names().includes('unload-conn'));
});

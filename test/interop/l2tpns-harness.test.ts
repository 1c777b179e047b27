import assert from 'node:assert/strict';
import { test } from 'node:test';
import { L2tpnsSc, l2tpnsAvailable } from '../lab/l2tpns';
import { scLayout } from '../lab/topology';

const avail = l2tpnsAvailable();

// A hand-built SCCRQ (RFC 2661 6.1): proves the harness's l2tpns answers L2TP on its
// veth address before any of the project's own L2TP code is involved.
const SEND_SCCRQ = `
const d = require('node:dgram').createSocket('udp4');
const avp = (t, v) => { const b = Buffer.alloc(6 + v.length); b.writeUInt16BE(0x8000 | b.length, 0); b.writeUInt16BE(t, 4); v.copy(b, 6); return b; };
const u16 = (n) => { const b = Buffer.alloc(2); b.writeUInt16BE(n); return b; };
const u32 = (n) => { const b = Buffer.alloc(4); b.writeUInt32BE(n); return b; };
const body = Buffer.concat([avp(0, u16(1)), avp(2, u16(0x0100)), avp(3, u32(3)), avp(7, Buffer.from('lac')), avp(9, u16(7)), avp(10, u16(4))]);
const h = Buffer.alloc(12); h.writeUInt16BE(0xc802, 0); h.writeUInt16BE(12 + body.length, 2);
d.on('message', (m) => { console.log(m.toString('hex')); process.exit(0); });
d.send(Buffer.concat([h, body]), 1701, process.argv[1]);
setTimeout(() => { console.log('timeout'); process.exit(1); }, 3000);
`;

test('l2tpns harness: starts, answers an SCCRQ with an SCCRP, and stops', { skip: avail.ok ? false : avail.message }, async (t) => {
  const lay = scLayout();
  t.after(() => lay.topo.destroy());
  const sc = await L2tpnsSc.start(lay.sc, { bindAddress: lay.scAddress });
  t.after(async () => {
    await sc.stop();
    sc.cleanup();
  });
  const hex = lay.cpe.exec('node', ['-e', SEND_SCCRQ, lay.scAddress]).trim();
  const reply = Buffer.from(hex, 'hex');
  assert.equal(reply.readUInt16BE(0) & 0xc80f, 0xc802, 'control message, version 2');
  // First AVP is Message Type = 2 (SCCRP).
  assert.equal(reply.readUInt16BE(12 + 4), 0);
  assert.equal(reply.readUInt16BE(12 + 6), 2);
  await sc.waitForLog(/Received SCCRQ/);
  const pid = sc.pid();
  assert.ok(pid);
  await sc.stop();
  assert.throws(() => process.kill(pid, 0), 'l2tpns process is gone after stop');
});

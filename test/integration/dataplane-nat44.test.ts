import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Topology, link } from '../lab/netns';
import { Nat44, nat44Ruleset } from '../../src/ipv4/nat44';

test('ruleset names the TUN and LAN and refuses names nft would misparse', () => {
  const text = nat44Ruleset({ tun: 'sw0', lan: ['br-lan'] });
  assert.match(text, /table ip softwire/);
  assert.match(text, /iifname \{ "br-lan" \} oifname "sw0" masquerade/);
  assert.throws(() => nat44Ruleset({ tun: 'sw0"; flush ruleset' }), /bad interface/);
});

test('NAT44 masquerades a LAN host behind the softwire address and is removed without a trace', (t) => {
  // lan host -- router (the "TUN" side is a veth here: NAT44 only cares about the oifname) -- far end
  const topo = new Topology();
  t.after(() => topo.destroy());
  const lan = topo.ns('lan');
  const router = topo.ns('rtr');
  const far = topo.ns('far');
  const l1 = link(lan, '192.168.1.2/24', router, '192.168.1.1/24');
  const l2 = link(router, '198.51.100.128/24', far, '198.51.100.1/24');
  router.sysctl('net.ipv4.ip_forward', '1');
  lan.ip(['route', 'add', 'default', 'via', '192.168.1.1']);
  // The far end has no route back to 192.168.1.0/24: only masqueraded packets can be answered.
  const nat = new Nat44({ tun: l2.a, lan: [l1.b], nft: (args, input) => router.exec('nft', args, { input }) });
  assert.throws(() => lan.exec('ping', ['-c', '1', '-W', '1', '198.51.100.1']));
  nat.install();
  nat.install(); // idempotent
  assert.match(router.exec('nft', ['list', 'table', 'ip', 'softwire']), /masquerade/);
  lan.exec('ping', ['-c', '1', '-W', '2', '198.51.100.1']);
  nat.remove();
  nat.remove();
  assert.doesNotMatch(router.exec('nft', ['list', 'tables']), /softwire/);
});

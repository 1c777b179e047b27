import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Installer, type Nat44Control } from '../../src/agent/installer';
import type { Provision } from '../../src/config/schema';
import { createLogger } from '../../src/log';
import type { Sysctl } from '../../src/platform/sysctl';
import { acceptingNetlink } from '../helpers/installer';

/**
 * NAT44 in the installer: created once IPv4 routes into the softwire, with IPv4
 * forwarding turned on only if it was off, and both undone by clear() — also when
 * clear() comes before the queued install has run.
 */

function lab(forwarding: boolean, provision?: Provision) {
  const calls: string[] = [];
  let fwd = forwarding;
  const nl = acceptingNetlink();
  const sysctl = {
    setIpv6: async () => undefined,
    write: async () => undefined,
    ipv4Forwarding: async () => fwd,
    setIpv4Forwarding: async (on: boolean) => {
      fwd = on;
      calls.push(`ip_forward ${on ? 1 : 0}`);
    },
  } as unknown as Sysctl;
  let active = false;
  const nat: Nat44Control = {
    install: () => {
      active = true;
      calls.push('nat install');
    },
    remove: () => {
      if (active) calls.push('nat remove');
      active = false;
    },
    get active() {
      return active;
    },
  };
  const ins = new Installer(nl, sysctl, createLogger({ level: 'silent' }), { routeMetric: 1024, ipv4DefaultRoute: true, scAddress: '192.0.2.1', nat44: nat, provision });
  ins.tunUp('sw0', 1460, null);
  return { ins, calls, nat, forwarding: () => fwd };
}

test('installed after IPCP with forwarding turned on; clear() removes both', async () => {
  const l = lab(false);
  l.ins.ipv4('198.51.100.128', '198.51.100.1', []);
  l.ins.ipv4('198.51.100.128', '198.51.100.1', []); // IPCP renegotiated: still one install
  await l.ins.settled();
  assert.deepEqual(l.calls, ['ip_forward 1', 'nat install']);
  assert.equal(l.nat.active, true);
  await l.ins.clear();
  assert.deepEqual(l.calls, ['ip_forward 1', 'nat install', 'nat remove', 'ip_forward 0']);
  assert.equal(l.forwarding(), false);
});

test('forwarding that was already on is left on', async () => {
  const l = lab(true);
  l.ins.ipv4('198.51.100.128', null, []);
  await l.ins.clear();
  assert.deepEqual(l.calls, ['nat install', 'nat remove']);
  assert.equal(l.forwarding(), true);
});

test('clear() right after IPCP undoes the install still queued', async () => {
  const l = lab(true);
  l.ins.ipv4('198.51.100.128', null, []);
  await l.ins.clear();
  assert.equal(l.nat.active, false);
  assert.deepEqual(l.calls, ['nat install', 'nat remove']);
});

test('provision netifd: the firewall masquerades, the installer does not', async () => {
  const l = lab(false, 'netifd');
  l.ins.ipv4('198.51.100.128', null, []);
  await l.ins.clear();
  assert.deepEqual(l.calls, []);
});

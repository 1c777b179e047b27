import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isTimerAction } from '../../src/core/actions';
import { applyTimer } from '../../src/core/scheduler';
import { Dad, type DadAction, LeaseDad, type LeaseDadAction } from '../../src/ipv6/dad';
import { buildNdPacket, emptyOptions, parseNdPacket } from '../../src/ipv6/nd';
import { FakeClock } from '../helpers/fake-clock';

// Issue 16 item 2: DAD for any address the agent takes (SLAAC and DHCPv6 IA_NA).
const ADDR = '2001:db8:200::1:2';

function rig(transmits = 1) {
  const clock = new FakeClock();
  const dad = new Dad({ rng: () => 0.5, transmits });
  const log: { at: number; a: DadAction }[] = [];
  const apply = (as: DadAction[]): void => {
    for (const a of as) {
      if (isTimerAction(a)) applyTimer(clock, 'dad', a, (t) => apply(dad.timerFired(t)));
      else log.push({ at: clock.now(), a });
    }
  };
  const take = (type: string) => log.filter((e) => e.a.type === type);
  return { clock, dad, apply, take };
}

test('DAD: probes from :: to the solicited-node group, passes after RetransTimer', () => {
  const r = rig(2);
  r.apply(r.dad.start(ADDR));
  assert.ok(r.dad.isTentative(ADDR));
  const probe = parseNdPacket((r.take('send')[0]!.a as { packet: Uint8Array }).packet);
  assert.equal(probe.ip.src, '::');
  assert.equal(probe.message.kind === 'ns' && probe.message.target, ADDR);
  r.clock.advance(1000);
  assert.equal(r.take('send').length, 2);
  assert.equal(r.take('dad-passed').length, 0);
  r.clock.advance(1000);
  assert.deepEqual(r.take('dad-passed').map((e) => [e.at, e.a]), [[2000, { type: 'dad-passed', address: ADDR }]]);
  assert.equal(r.clock.size(), 0);
});

test('DAD: an NA for the address, or another node\'s probe, is a duplicate; our own looped probe is not', () => {
  const r = rig();
  r.apply(r.dad.start(ADDR));
  const own = (r.take('send')[0]!.a as { packet: Uint8Array }).packet;
  r.apply(r.dad.handle(parseNdPacket(own)));
  assert.equal(r.take('dad-failed').length, 0);
  const na = buildNdPacket(ADDR, 'ff02::1', { kind: 'na', router: false, solicited: false, override: true, target: ADDR, options: emptyOptions() });
  r.apply(r.dad.handle(parseNdPacket(na)));
  assert.deepEqual(r.take('dad-failed').map((e) => e.a), [{ type: 'dad-failed', address: ADDR }]);
  r.clock.advance(5000);
  assert.equal(r.take('dad-passed').length, 0);
  assert.equal(r.clock.size(), 0);
});

function leaseRig(optimistic: boolean) {
  const clock = new FakeClock();
  const core = new LeaseDad({ rng: () => 0.5, clock: () => clock.now(), optimistic });
  const log: { at: number; a: LeaseDadAction }[] = [];
  const apply = (as: LeaseDadAction[]): void => {
    for (const a of as) {
      if (isTimerAction(a)) applyTimer(clock, 'dad', a, (t) => apply(core.timerFired(t)));
      else if (a.type !== 'send') log.push({ at: clock.now(), a });
    }
  };
  return { clock, core, apply, log };
}

test('IA_NA lease: probed before use; installed when DAD passes; renewals install directly', () => {
  const r = leaseRig(false);
  r.apply(r.core.leased(ADDR, 7200, 3600));
  assert.equal(r.log.length, 0, 'not installed while tentative');
  r.clock.advance(1000);
  assert.deepEqual(r.log.map((e) => [e.at, e.a]), [[1000, { type: 'install', address: ADDR, validLifetime: 7199, preferredLifetime: 3599, optimistic: false }]]);
  r.apply(r.core.leased(ADDR, 7200, 3600));
  assert.equal(r.log.length, 2);
  assert.equal(r.clock.size(), 0, 'no second DAD run');
});

test('IA_NA lease, optimistic (RFC 4429): installed deprecated at once; a duplicate is uninstalled and Declined', () => {
  const r = leaseRig(true);
  r.apply(r.core.leased(ADDR, 7200, 3600));
  assert.deepEqual(r.log.map((e) => e.a), [{ type: 'install', address: ADDR, validLifetime: 7200, preferredLifetime: 0, optimistic: true }]);
  r.clock.advance(300);
  const na = buildNdPacket(ADDR, 'ff02::1', { kind: 'na', router: false, solicited: false, override: true, target: ADDR, options: emptyOptions() });
  r.apply(r.core.receive(parseNdPacket(na)));
  assert.deepEqual(r.log.slice(1).map((e) => e.a), [
    { type: 'uninstall', address: ADDR },
    { type: 'decline', address: ADDR },
  ]);
  assert.equal(r.clock.size(), 0);
  assert.deepEqual(r.core.removed(ADDR), [], 'the Decline\'s removal report finds nothing left');
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { emptyStatus, type Status } from '../../src/agent/status';
import { formatDuration, formatStatus } from '../../src/cli/format-status';

const NOW = new Date('2024-05-01T12:00:00.000Z');

function upStatus(): Status {
  return {
    state: 'up',
    since: '2024-05-01T10:57:30.000Z',
    sc: { address: '192.0.2.1', port: 1701 },
    local: { address: '198.51.100.7', port: 40123 },
    tunnel: { localId: 12, remoteId: 345, state: 'established' },
    session: { localId: 1, remoteId: 77, state: 'established' },
    ppp: { lcp: 'opened', ncp: { ipv6cp: 'opened' }, auth: 'chap ok', mru: 1452, echoRttMs: 12 },
    ipv6: {
      linkLocal: 'fe80::1',
      address: '2001:db8:1::2',
      delegatedPrefix: {
        prefix: '2001:db8:100::',
        length: 56,
        preferredUntil: '2024-05-01T12:30:00.000Z',
        validUntil: '2024-05-01T14:00:05.000Z',
      },
      dns: ['2001:db8::53', '2001:db8::54'],
      domains: ['isp.example'],
      defaultRoute: true,
      lan: [{ ifname: 'br-lan', prefix: '2001:db8:100::/64', address: '2001:db8:100::1' }],
    },
    ipv4: null,
    counters: { l2tp: { txCtl: 10, rxCtl: 12, retransmits: 0 }, ppp: {}, data: { txPackets: 5000, rxPackets: 4800 }, drops: { badLength: 0 } },
    reconnects: 2,
    lastError: null,
  };
}

test('an up status with IPv6 and a delegated prefix: state first, then each layer on its own line', () => {
  const s = upStatus();
  s.keepalive = { helloInterval: 15, lcpEchoInterval: 15, lcpEchoFailure: 3, natSafe: true, reason: 'behind NAT', deadTimeS: 60 };
  const lines = formatStatus(s, NOW).trimEnd().split('\n');
  assert.equal(lines[0], 'state       up for 1h02m (since 2024-05-01T10:57:30.000Z)');
  assert.deepEqual(lines.slice(1), [
    'SC          192.0.2.1:1701 from 198.51.100.7:40123',
    'tunnel      established (local id 12, remote id 345)',
    'session     established (local id 1, remote id 77)',
    'PPP         LCP opened, IPV6CP opened, auth chap ok, MRU 1452, echo RTT 12 ms',
    'keepalive   echo 15 s, hello 15 s (NAT-safe: WAN address is private or shared), dead after 60 s',
    'IPv6        address 2001:db8:1::2, link-local fe80::1, default route',
    '  prefix    2001:db8:100::/56, preferred 30m00s, valid 2h00m',
    '  DNS       2001:db8::53 2001:db8::54 (search isp.example)',
    '  LAN       br-lan 2001:db8:100::/64 (2001:db8:100::1)',
    'IPv4        -',
    'counters    l2tp: txCtl=10 rxCtl=12',
    '            data: txPackets=5000 rxPackets=4800',
    'reconnects  2',
    'last error  -',
  ]);
});

test('a down status shows the last error and dashes for the layers that are gone', () => {
  const s = emptyStatus(new Date('2024-05-01T11:59:15.000Z'));
  s.sc = { address: '2001:db8::1', port: 1701 };
  s.reconnects = 5;
  s.lastError = { at: '2024-05-01T11:59:14.000Z', layer: 'l2tp', message: 'no reply to SCCRQ after 5 retransmissions' };
  const out = formatStatus(s, NOW);
  const lines = out.trimEnd().split('\n');
  assert.equal(lines[0], 'state       down for 45s (since 2024-05-01T11:59:15.000Z)');
  assert.equal(lines[1], 'SC          [2001:db8::1]:1701');
  assert.match(out, /^tunnel {6}-$/m);
  assert.match(out, /^PPP {9}-$/m);
  assert.match(out, /^IPv6 {8}-$/m);
  assert.match(out, /^counters {4}-$/m);
  assert.match(out, /^reconnects {2}5$/m);
  assert.equal(lines.at(-1), 'last error  2024-05-01T11:59:14.000Z l2tp: no reply to SCCRQ after 5 retransmissions');
});

test('lifetimes: infinite, expired; IPv4 line; unknown fields from another agent version do not crash', () => {
  const s = upStatus();
  s.ipv6!.delegatedPrefix = { prefix: '2001:db8:200::', length: 48, preferredUntil: '2024-05-01T11:00:00.000Z', validUntil: null };
  s.ipv4 = { address: '100.64.0.2', peer: '100.64.0.1', dns: ['192.0.2.53'], carryTraffic: false };
  const out = formatStatus(s, NOW);
  assert.match(out, /^ {2}prefix {4}2001:db8:200::\/48, preferred expired, valid infinite$/m);
  assert.match(out, /^IPv4 {8}address 100\.64\.0\.2, peer 100\.64\.0\.1, DNS 192\.0\.2\.53, no default route$/m);
  const partial = formatStatus({ state: 'connecting' } as unknown as Status, NOW);
  assert.match(partial, /^state {7}connecting$/m);
  assert.match(partial, /^reconnects {2}0$/m);
});

test('the data-path offloads in use are listed, "none" when switched off', () => {
  const s = upStatus();
  s.offloads = ['vnet-hdr', 'csum', 'tso4', 'udp-gso'];
  assert.match(formatStatus(s, NOW), /^offloads {4}vnet-hdr csum tso4 udp-gso$/m);
  s.offloads = [];
  assert.match(formatStatus(s, NOW), /^offloads {4}none \(one packet per system call\)$/m);
  delete s.offloads;
  assert.doesNotMatch(formatStatus(s, NOW), /^offloads/m);
});

test('durations are compact', () => {
  assert.deepEqual([0, 45_000, 725_000, 3_720_000, 187_200_000, -5].map(formatDuration), ['0s', '45s', '12m05s', '1h02m', '2d04h', '0s']);
});

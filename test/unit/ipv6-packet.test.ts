import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  addressFromPrefix,
  buildIcmpv6,
  buildIpv6,
  buildUdp6,
  canonical,
  classifyControl,
  formatAddress,
  Ipv6DecodeError,
  isLinkLocal,
  linkLocalFromIid,
  maskPrefix,
  parseAddress,
  parseIcmpv6,
  parseIpv6,
  parsePrefix,
  parseUdp6,
  prefixContains,
  pseudoHeaderChecksum,
  solicitedNode,
  subPrefix,
  subPrefixCount,
} from '../../src/ipv6/packet';

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));

function decodeError(reason: string) {
  return (e: unknown) => e instanceof Ipv6DecodeError && e.reason === reason;
}

test('address text follows RFC 5952 and parses every spelling', () => {
  const cases: [string, string][] = [
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // first of two equal runs
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // a single zero group is not compressed
    ['2001:DB8::AAAA', '2001:db8::aaaa'],
    ['::', '::'],
    ['::1', '::1'],
    ['fe80::', 'fe80::'],
    ['::ffff:192.0.2.1', '::ffff:c000:201'],
    ['64:ff9b::198.51.100.128', '64:ff9b::c633:6480'],
    ['1:0:0:2:0:0:0:3', '1:0:0:2::3'], // the longer run wins
  ];
  for (const [input, want] of cases) assert.equal(canonical(input), want, input);
  assert.deepEqual(parseAddress('fe02::1:2'), hex('fe02 0000 0000 0000 0000 0000 0001 0002'));
});

test('bad address text is a typed decode error', () => {
  for (const bad of [
    '',
    ':',
    ':::',
    '1::2::3',
    '12345::',
    'g::1',
    '1:2:3:4:5:6:7',
    '1:2:3:4:5:6:7:8:9',
    '::1.2.3',
    '::256.1.1.1',
    '::01.1.1.1',
    '1:2:3:4:5:6:7::8',
    'fe80::1%eth0',
  ]) {
    assert.throws(() => parseAddress(bad), decodeError('malformed'), bad);
  }
});

test('prefix helpers: mask, contains, sub-prefixes, IIDs, solicited-node', () => {
  assert.equal(maskPrefix('2001:db8:100:ff::1', 56), '2001:db8:100::');
  assert.deepEqual(parsePrefix('2001:db8:100:1::/56'), { prefix: '2001:db8:100::', length: 56 });
  assert.throws(() => parsePrefix('2001:db8::/129'), decodeError('malformed'));
  assert.equal(prefixContains('2001:db8:100::', 56, '2001:db8:100:ff::1'), true);
  assert.equal(prefixContains('2001:db8:100::', 56, '2001:db8:101::1'), false);
  assert.equal(prefixContains('::', 0, '2001:db8::1'), true);
  assert.deepEqual(subPrefix('2001:db8:100::', 56, 0), { prefix: '2001:db8:100::', length: 64 });
  assert.deepEqual(subPrefix('2001:db8:100::', 56, 3), { prefix: '2001:db8:100:3::', length: 64 });
  assert.deepEqual(subPrefix('2001:db8:100::', 56, 255), { prefix: '2001:db8:100:ff::', length: 64 });
  assert.deepEqual(subPrefix('2001:db8::', 48, 0x1234), { prefix: '2001:db8:0:1234::', length: 64 });
  assert.deepEqual(subPrefix('2001:db8::', 60, 1, 62), { prefix: '2001:db8:0:4::', length: 62 });
  assert.throws(() => subPrefix('2001:db8:100::', 56, 256), RangeError);
  assert.throws(() => subPrefix('2001:db8:100::', 64, 0, 56), RangeError);
  assert.equal(subPrefixCount(56), 256);
  assert.equal(subPrefixCount(64), 1);
  const iid = hex('c633648000000000'); // l2tpns forces <IPv4>:0:0 for 198.51.100.128
  assert.equal(linkLocalFromIid(iid), 'fe80::c633:6480:0:0');
  assert.equal(addressFromPrefix('2001:db8:200::', iid), '2001:db8:200:0:c633:6480::');
  assert.equal(solicitedNode('2001:db8:200:0:c633:6480::'), 'ff02::1:ff00:0');
  assert.equal(solicitedNode('2001:db8::c633:6480'), 'ff02::1:ff33:6480');
  assert.equal(solicitedNode('fe80::1:2345:6789'), 'ff02::1:ff45:6789');
  assert.equal(isLinkLocal('fe80::1'), true);
  assert.equal(isLinkLocal('fe02::1:2'), false);
  assert.equal(isLinkLocal('febf::1'), true);
  assert.equal(isLinkLocal('fec0::1'), false);
});

test('IPv6 header build and parse, with extension headers skipped', () => {
  const pkt = buildIpv6({
    src: 'fe80::1',
    dst: 'ff02::1',
    nextHeader: 59,
    hopLimit: 64,
    payload: hex('aabb'),
    trafficClass: 0xb8,
    flowLabel: 0x12345,
  });
  assert.deepEqual(pkt.subarray(0, 8), hex('6b812345 0002 3b 40'));
  const p = parseIpv6(pkt);
  assert.equal(p.trafficClass, 0xb8);
  assert.equal(p.flowLabel, 0x12345);
  assert.equal(p.hopLimit, 64);
  assert.equal(p.src, 'fe80::1');
  assert.equal(p.dst, 'ff02::1');
  assert.deepEqual(p.payload, hex('aabb'));
  // Hop-by-Hop (router alert) then ICMPv6
  const hbh = hex('3a00 0502 0000 0100');
  const withHbh = buildIpv6({
    src: 'fe80::1',
    dst: 'ff02::16',
    nextHeader: 0,
    hopLimit: 1,
    payload: Uint8Array.from([...hbh, 0x8f, 0, 0, 0]),
  });
  const q = parseIpv6(withHbh);
  assert.equal(q.nextHeader, 58);
  assert.deepEqual(q.payload, hex('8f000000'));
  // trailing link padding is ignored, short packets are truncated
  assert.deepEqual(parseIpv6(Uint8Array.from([...pkt, 0, 0])).payload, hex('aabb'));
  assert.throws(() => parseIpv6(pkt.subarray(0, 41)), decodeError('truncated'));
  assert.throws(() => parseIpv6(hex('45000000'.padEnd(80, '0'))), decodeError('unsupported'));
});

test('ICMPv6 checksum matches a hand-computed vector and is verified', () => {
  // Echo request fe80::1 -> fe80::2, id 0x1234 seq 1, no data.
  // Sum: src fe80+1, dst fe80+2, length 8, next header 58, type/code 0x8000, 0x1234, 0x0001
  // = 0xfe80*2 + 3 + 8 + 0x3a + 0x8000 + 0x1234 + 1 = 0x28f7a -> fold 0x8f7c -> ~ = 0x7083
  const pkt = buildIcmpv6('fe80::1', 'fe80::2', 64, { type: 128, code: 0, body: hex('12340001') });
  assert.deepEqual(pkt.subarray(40), hex('8000 7083 1234 0001'));
  assert.equal(pseudoHeaderChecksum('fe80::1', 'fe80::2', 58, pkt.subarray(40)), 0);
  const m = parseIcmpv6(pkt);
  assert.equal(m.type, 128);
  assert.deepEqual(m.body, hex('12340001'));
  const bad = pkt.slice();
  bad[45] ^= 1;
  assert.throws(() => parseIcmpv6(bad), decodeError('checksum'));
});

test('UDP build/parse: checksum verified, zero checksum refused, length checked', () => {
  const pkt = buildUdp6({
    src: 'fe80::c633:6480:0:0',
    dst: 'ff02::1:2',
    srcPort: 546,
    dstPort: 547,
    hopLimit: 1,
    payload: hex('01abcdef'),
  });
  assert.equal(pkt[7], 1);
  const u = parseUdp6(pkt);
  assert.equal(u.srcPort, 546);
  assert.equal(u.dstPort, 547);
  assert.deepEqual(u.payload, hex('01abcdef'));
  assert.equal(classifyControl(pkt), 'other');
  const zero = pkt.slice();
  zero[46] = 0;
  zero[47] = 0;
  assert.throws(() => parseUdp6(zero), decodeError('checksum'));
  const flipped = pkt.slice();
  flipped[49] ^= 0x80;
  assert.throws(() => parseUdp6(flipped), decodeError('checksum'));
  const badLen = pkt.slice();
  badLen[45] = 200;
  assert.throws(() => parseUdp6(badLen), decodeError('truncated'));
  assert.throws(
    () => parseUdp6(buildIcmpv6('fe80::1', 'fe80::2', 1, { type: 128, code: 0, body: new Uint8Array(4) })),
    decodeError('unsupported'),
  );
});

test('classifyControl picks out ND and DHCPv6 client traffic', () => {
  const reply = buildUdp6({
    src: 'fe02::1:2',
    dst: 'fe80::1',
    srcPort: 547,
    dstPort: 546,
    hopLimit: 1,
    payload: hex('07000001'),
  });
  assert.equal(classifyControl(reply), 'dhcpv6-client');
  assert.equal(classifyControl(buildIcmpv6('fe80::1', 'ff02::1', 255, { type: 134, code: 0, body: new Uint8Array(12) })), 'ra');
  assert.equal(classifyControl(buildIcmpv6('::', 'ff02::1:ff00:1', 255, { type: 135, code: 0, body: new Uint8Array(20) })), 'ns');
  assert.equal(classifyControl(hex('60')), 'other');
  assert.equal(formatAddress(parseAddress('2001:db8::')), '2001:db8::');
});

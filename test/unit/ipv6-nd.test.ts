import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeDnsNames, encodeDnsNames } from '../../src/ipv6/dnsname';
import {
  buildDadSolicitation,
  buildNdPacket,
  buildRouterSolicitation,
  decodeNdMessage,
  emptyOptions,
  encodeNdMessage,
  type NdMessage,
  parseNdPacket,
  type RouterAdvertisement,
} from '../../src/ipv6/nd';
import { buildIcmpv6, buildIpv6, Ipv6DecodeError, parseIpv6, pseudoHeaderChecksum } from '../../src/ipv6/packet';

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const decodeError = (reason: string) => (e: unknown) => e instanceof Ipv6DecodeError && e.reason === reason;

/** Wraps raw ICMPv6 bytes (checksum field zero) in an IPv6 packet with a correct checksum. */
function icmpPacket(src: string, dst: string, hopLimit: number, icmp: Uint8Array): Uint8Array {
  return buildIcmpv6(src, dst, hopLimit, { type: icmp[0]!, code: icmp[1]!, body: icmp.subarray(4) });
}

// An RA the way l2tpns sends it (notes/l2tpns.md): M=1 O=1, router lifetime 65535,
// PIO 2001:db8:200::/64 L=1 A=1 valid 2592000 preferred 604800, RDNSS lifetime 1200, no MTU.
const L2TPNS_RA = hex(`
  86 00 0000  40 c0 ffff  00000000  00000000
  03 04 40 c0  00278d00  00093a80  00000000  20010db8020000000000000000000000
  19 05 0000  000004b0  20010db8000000000000000000000053  20010db8000000000000000000000054
`);

test('RA shaped like l2tpns decodes to the expected fields', () => {
  const pkt = icmpPacket('fe80::1', 'ff02::1', 255, L2TPNS_RA);
  const { ip, message } = parseNdPacket(pkt);
  assert.equal(ip.src, 'fe80::1');
  const want: RouterAdvertisement = {
    kind: 'ra',
    curHopLimit: 64,
    managed: true,
    other: true,
    routerLifetime: 65535,
    reachableTime: 0,
    retransTimer: 0,
    options: emptyOptions({
      prefixes: [
        {
          prefix: '2001:db8:200::',
          prefixLength: 64,
          onLink: true,
          autonomous: true,
          validLifetime: 2592000,
          preferredLifetime: 604800,
        },
      ],
      rdnss: [{ lifetime: 1200, servers: ['2001:db8::53', '2001:db8::54'] }],
    }),
  };
  assert.deepEqual(message, want);
  assert.equal(message.kind === 'ra' && message.options.mtu, undefined);
  // and the encoder produces the same bytes
  assert.deepEqual(encodeNdMessage(want), L2TPNS_RA);
});

test('RA with MTU, DNSSL, SLLA and an unknown option; encoder agrees byte for byte', () => {
  const icmp = hex(`
    86 00 0000  ff 00 0708  00007530  000003e8
    01 01 020000000001
    05 01 0000 000005b4
    1f 03 0000 00000e10  076578616d706c6503636f6d00 000000
    fe 01 aabbccddeeff
  `);
  const m = decodeNdMessage(icmp);
  assert.equal(m.kind, 'ra');
  if (m.kind !== 'ra') return;
  assert.equal(m.curHopLimit, 255);
  assert.equal(m.managed, false);
  assert.equal(m.routerLifetime, 1800);
  assert.equal(m.reachableTime, 30000);
  assert.equal(m.retransTimer, 1000);
  assert.deepEqual(m.options.sourceLinkLayer, hex('020000000001'));
  assert.equal(m.options.mtu, 1460);
  assert.deepEqual(m.options.dnssl, [{ lifetime: 3600, domains: ['example.com'] }]);
  assert.deepEqual(m.options.unknown, [{ type: 0xfe, data: hex('aabbccddeeff') }]);
  assert.deepEqual(encodeNdMessage(m), icmp);
});

test('RFC 4861 6.1.2 validity: hop limit, code, source, checksum, option length', () => {
  assert.throws(() => parseNdPacket(icmpPacket('fe80::1', 'ff02::1', 254, L2TPNS_RA)), decodeError('invalid'));
  assert.throws(() => parseNdPacket(icmpPacket('2001:db8::1', 'ff02::1', 255, L2TPNS_RA)), decodeError('invalid'));
  const code1 = L2TPNS_RA.slice();
  code1[1] = 1;
  assert.throws(() => parseNdPacket(icmpPacket('fe80::1', 'ff02::1', 255, code1)), decodeError('invalid'));
  const good = icmpPacket('fe80::1', 'ff02::1', 255, L2TPNS_RA);
  const corrupt = good.slice();
  corrupt[60] ^= 0x01;
  assert.throws(() => parseNdPacket(corrupt), decodeError('checksum'));
  const zeroLen = Uint8Array.from([...L2TPNS_RA, 0xfe, 0x00, 0, 0, 0, 0, 0, 0]);
  assert.throws(() => parseNdPacket(icmpPacket('fe80::1', 'ff02::1', 255, zeroLen)), decodeError('malformed'));
  const overrun = Uint8Array.from([...L2TPNS_RA, 0xfe, 0x02, 0, 0, 0, 0, 0, 0]);
  assert.throws(() => parseNdPacket(icmpPacket('fe80::1', 'ff02::1', 255, overrun)), decodeError('truncated'));
  assert.throws(() => decodeNdMessage(hex('86000000 40c0ffff 0000')), decodeError('truncated'));
  const shortPio = hex('86000000 40c0ffff 00000000 00000000 0302 40c0 00000000 00000000 00000000');
  assert.throws(() => decodeNdMessage(shortPio), decodeError('malformed'));
  assert.throws(() => decodeNdMessage(hex('80000000')), decodeError('unsupported'));
  // a checksum computed over a different source does not verify
  const ip = parseIpv6(good);
  assert.notEqual(pseudoHeaderChecksum('fe80::2', ip.dst, 58, ip.payload), 0);
});

test('a DNSSL that does not decode is dropped, the RA stays usable', () => {
  const withPointer = hex(`
    86 00 0000  40 c0 ffff  00000000  00000000
    1f 02 0000 00000e10  c00c 0000 0000 0000
    03 04 40 c0  00278d00  00093a80  00000000  20010db8020000000000000000000000
  `);
  const m = parseNdPacket(icmpPacket('fe80::1', 'ff02::1', 255, withPointer)).message;
  assert.equal(m.kind, 'ra');
  if (m.kind !== 'ra') return;
  assert.deepEqual(m.options.dnssl, []);
  assert.equal(m.options.prefixes.length, 1);
});

test('DNS name lists: bounds, padding, refused characters', () => {
  assert.deepEqual(decodeDnsNames(hex('076578616d706c6503636f6d00 03666f6f00 0000')), ['example.com', 'foo']);
  assert.deepEqual(encodeDnsNames(['example.com', 'foo.']), hex('076578616d706c6503636f6d00 03666f6f00'));
  // a label with a newline (resolv.conf injection) is left out, its neighbour kept
  assert.deepEqual(decodeDnsNames(hex('03610a6200 03666f6f00')), ['foo']);
  assert.throws(() => decodeDnsNames(hex('03666f')), decodeError('truncated'));
  assert.throws(() => decodeDnsNames(hex('03666f6f')), decodeError('truncated'));
  assert.throws(() => decodeDnsNames(hex('c00c')), decodeError('malformed'));
  const longName = new Uint8Array(300);
  for (let i = 0; i + 64 <= 300; i += 64) {
    longName[i] = 63;
    longName.fill(0x61, i + 1, i + 64);
  }
  assert.throws(() => decodeDnsNames(longName), decodeError('malformed'));
  const many = encodeDnsNames(Array.from({ length: 40 }, (_, i) => `d${i}`));
  assert.throws(() => decodeDnsNames(many), decodeError('bounds'));
  assert.throws(() => encodeDnsNames(['bad name']), RangeError);
  assert.throws(() => encodeDnsNames(['a..b']), RangeError);
});

test('Router Solicitation on PPP: no SLLA, to ff02::2, hop limit 255', () => {
  const rs = buildRouterSolicitation('fe80::c633:6480:0:0');
  const ip = parseIpv6(rs);
  assert.equal(ip.dst, 'ff02::2');
  assert.equal(ip.hopLimit, 255);
  assert.equal(ip.payload.length, 8);
  assert.deepEqual(ip.payload.subarray(4), hex('00000000'));
  assert.deepEqual(parseNdPacket(rs).message, { kind: 'rs', options: emptyOptions() });
  // with a link-layer address on a LAN
  const lan = parseNdPacket(buildRouterSolicitation('fe80::1', hex('020000000001'))).message;
  assert.deepEqual(lan.options.sourceLinkLayer, hex('020000000001'));
  // from :: the SLLA is never sent, and one received is invalid
  assert.equal(parseIpv6(buildRouterSolicitation('::', hex('020000000001'))).payload.length, 8);
  const bad = buildNdPacket('::', 'ff02::2', { kind: 'rs', options: emptyOptions({ sourceLinkLayer: hex('020000000001') }) });
  assert.throws(() => parseNdPacket(bad), decodeError('invalid'));
});

test('DAD probe: NS from :: to the solicited-node group, with nonce; NA parse and checks', () => {
  const ns = buildDadSolicitation('2001:db8:200::c633:6480', hex('010203040506'));
  const p = parseNdPacket(ns);
  assert.equal(p.ip.src, '::');
  assert.equal(p.ip.dst, 'ff02::1:ff33:6480');
  assert.deepEqual(p.message, {
    kind: 'ns',
    target: '2001:db8:200::c633:6480',
    options: emptyOptions({ nonce: hex('010203040506') }),
  });
  assert.deepEqual(parseIpv6(ns).payload.subarray(24), hex('0e01010203040506'));
  // a DAD NS to a unicast destination is invalid; so is a multicast target
  const wrongDst = buildNdPacket('::', 'fe80::1', { kind: 'ns', target: 'fe80::2', options: emptyOptions() });
  assert.throws(() => parseNdPacket(wrongDst), decodeError('invalid'));
  const mcastTarget = buildNdPacket('fe80::1', 'ff02::1', { kind: 'ns', target: 'ff02::1', options: emptyOptions() });
  assert.throws(() => parseNdPacket(mcastTarget), decodeError('invalid'));

  const na: NdMessage = {
    kind: 'na',
    router: true,
    solicited: false,
    override: true,
    target: 'fe80::1',
    options: emptyOptions({ targetLinkLayer: hex('020000000002') }),
  };
  const naPkt = buildNdPacket('fe80::1', 'ff02::1', na);
  assert.deepEqual(parseIpv6(naPkt).payload.subarray(4, 8), hex('a0000000'));
  assert.deepEqual(parseNdPacket(naPkt).message, na);
  const solicitedToMcast = buildNdPacket('fe80::1', 'ff02::1', { ...na, solicited: true });
  assert.throws(() => parseNdPacket(solicitedToMcast), decodeError('invalid'));
  const notNd = buildIpv6({ src: 'fe80::1', dst: 'ff02::1', nextHeader: 17, hopLimit: 255, payload: new Uint8Array(8) });
  assert.throws(() => parseNdPacket(notNd), decodeError('unsupported'));
});

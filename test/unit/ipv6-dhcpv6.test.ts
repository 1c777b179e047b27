import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type Dhcp6Message,
  decodeDhcp6,
  duidEquals,
  emptyMessage,
  encodeDhcp6,
  encodeDuid,
  formatDuid,
  generateDuid,
  MSG_REPLY,
  MSG_SOLICIT,
  parseDuid,
  parseDuidText,
  STATUS_NO_BINDING,
  STATUS_NO_PREFIX_AVAIL,
} from '../../src/ipv6/dhcpv6';
import { buildUdp6, Ipv6DecodeError, parseUdp6 } from '../../src/ipv6/packet';

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const decodeError = (reason: string) => (e: unknown) => e instanceof Ipv6DecodeError && e.reason === reason;

const CLIENT_DUID = hex('00030001 020000000001');
const L2TPNS_DUID = hex('0003001b fdfdfafa');

// A Reply laid out the way l2tpns builds it: Server ID, Client ID, IA_PD, DNS,
// domain list, Preference 255 (T1 = preferred/2, T2 = preferred*4/5).
const L2TPNS_REPLY = hex(`
  07 123456
  0002 0008 0003001b fdfdfafa
  0001 000a 00030001 020000000001
  0019 0029 00000001 00000708 00000b40
    001a 0019 00000e10 00001c20 38 20010db8010000000000000000000000
  0017 0020 20010db8000000000000000000000053 20010db8000000000000000000000054
  0018 000d 076578616d706c6503636f6d00
  0007 0001 ff
`);

test('l2tpns-shaped Reply from fe02::1:2 decodes', () => {
  const pkt = buildUdp6({
    src: 'fe02::1:2',
    dst: 'fe80::c633:6480:0:0',
    srcPort: 547,
    dstPort: 546,
    hopLimit: 1,
    payload: L2TPNS_REPLY,
  });
  const udp = parseUdp6(pkt);
  assert.equal(udp.ip.src, 'fe02::1:2');
  const m = decodeDhcp6(udp.payload);
  const want: Dhcp6Message = emptyMessage(MSG_REPLY, 0x123456, {
    serverId: L2TPNS_DUID,
    clientId: CLIENT_DUID,
    iaPd: [
      {
        iaid: 1,
        t1: 1800,
        t2: 2880,
        prefixes: [{ prefix: '2001:db8:100::', prefixLength: 56, preferredLifetime: 3600, validLifetime: 7200, unknown: [] }],
        unknown: [],
      },
    ],
    dnsServers: ['2001:db8::53', '2001:db8::54'],
    domainList: ['example.com'],
    preference: 255,
  });
  assert.deepEqual(m, want);
  assert.deepEqual(parseDuid(m.serverId!), { type: 'll', hwType: 27, linkLayer: hex('fdfdfafa') });
  assert.equal(formatDuid(m.serverId!), '00:03:00:1b:fd:fd:fa:fa');
});

test('Solicit encodes in RFC 8415 layout', () => {
  const m = emptyMessage(MSG_SOLICIT, 0xabcdef, {
    clientId: CLIENT_DUID,
    iaPd: [
      {
        iaid: 1,
        t1: 0,
        t2: 0,
        prefixes: [{ prefix: '::', prefixLength: 56, preferredLifetime: 0, validLifetime: 0, unknown: [] }],
        unknown: [],
      },
    ],
    oro: [23, 24, 82],
    elapsedTime: 0,
    rapidCommit: true,
  });
  assert.deepEqual(
    encodeDhcp6(m),
    hex(`
      01 abcdef
      0001 000a 00030001 020000000001
      0019 0029 00000001 00000000 00000000
        001a 0019 00000000 00000000 38 00000000000000000000000000000000
      0006 0006 0017 0018 0052
      0008 0002 0000
      000e 0000
    `),
  );
  assert.deepEqual(decodeDhcp6(encodeDhcp6(m)), m);
});

test('status codes at message, IA and lease level; IA_NA with IAADDR', () => {
  const bytes = hex(`
    07 000001
    0002 0008 0003001b fdfdfafa
    000d 0004 0000 6f6b
    0019 0039 00000001 00000000 00000000
      001a 001f 00000000 00000000 38 20010db8010000000000000000000000 000d 0002 0006
      000d 0006 0003 6e6f7065
    0003 0028 00000002 00000064 000000c8
      0005 0018 20010db8020000000000000000000001 0000012c 00000258
  `);
  const m = decodeDhcp6(bytes);
  assert.deepEqual(m.status, { code: 0, message: 'ok' });
  assert.deepEqual(m.iaPd[0]!.status, { code: STATUS_NO_BINDING, message: 'nope' });
  assert.deepEqual(m.iaPd[0]!.prefixes[0]!.status, { code: STATUS_NO_PREFIX_AVAIL, message: '' });
  assert.deepEqual(m.iaNa, [
    {
      iaid: 2,
      t1: 100,
      t2: 200,
      addresses: [{ address: '2001:db8:200::1', preferredLifetime: 300, validLifetime: 600, unknown: [] }],
      unknown: [],
    },
  ]);
  assert.deepEqual(decodeDhcp6(encodeDhcp6(m)), m);
});

test('unknown options are kept raw; SOL_MAX_RT, INF_MAX_RT, refresh time decode', () => {
  const m = decodeDhcp6(hex('07000001 0052 0004 00000e10 0053 0004 0000003c 0020 0004 00015180 1234 0003 aabbcc'));
  assert.equal(m.solMaxRt, 3600);
  assert.equal(m.infMaxRt, 60);
  assert.equal(m.informationRefreshTime, 86400);
  assert.deepEqual(m.unknown, [{ code: 0x1234, data: hex('aabbcc') }]);
});

test('malformed DHCPv6 is a typed decode error', () => {
  const cases: [string, string][] = [
    ['0700', 'truncated'],
    ['07000001 0001', 'truncated'],
    ['07000001 0001 0005 0003', 'truncated'],
    ['07000001 0019 0008 0000000100000000', 'malformed'], // IA_PD shorter than 12
    ['07000001 0019 0011 00000001 00000000 00000000 001a 0001 00', 'malformed'], // IAPREFIX too short
    [
      '07000001 0019 0029 00000001 00000000 00000000 001a 0019 00000000 00000000 81 00000000000000000000000000000000',
      'malformed',
    ],
    ['07000001 0006 0003 001700', 'malformed'], // ORO odd
    ['07000001 0007 0002 ffff', 'malformed'],
    ['07000001 0008 0001 00', 'malformed'],
    ['07000001 000e 0001 00', 'malformed'],
    ['07000001 0017 0004 00000000', 'malformed'],
    ['07000001 0002 0001 00', 'malformed'], // DUID too short
    ['07000001 000d 0001 00', 'malformed'],
    ['0c000001', 'unsupported'], // Relay-forward
    ['00000001', 'unsupported'],
  ];
  for (const [h, reason] of cases) assert.throws(() => decodeDhcp6(hex(h)), decodeError(reason), h);
  const many = new Uint8Array(4 + 65 * 4);
  many[0] = 7;
  for (let i = 0; i < 65; i++) many[4 + i * 4 + 1] = 0x99;
  assert.throws(() => decodeDhcp6(many), decodeError('bounds'));
  const ias = Uint8Array.from([7, 0, 0, 1, ...Array.from({ length: 9 }, () => [0, 25, 0, 12, ...new Array(12).fill(0)]).flat()]);
  assert.throws(() => decodeDhcp6(ias), decodeError('bounds'));
});

test('a Domain List with a compression pointer is dropped, the message kept', () => {
  const m = decodeDhcp6(hex('07000001 0018 0002 c00c 0007 0001 0a'));
  assert.equal(m.domainList, undefined);
  assert.equal(m.preference, 10);
});

test('DUIDs: generate (UUID or LL), parse, format, text round trip', () => {
  let i = 0;
  const rng = () => ((i++ * 37) % 256) / 256;
  const d = generateDuid(rng);
  assert.equal(d.length, 18);
  const parsed = parseDuid(d);
  assert.equal(parsed.type, 'uuid');
  if (parsed.type === 'uuid') {
    assert.equal(parsed.uuid[6]! >> 4, 4);
    assert.equal(parsed.uuid[8]! >> 6, 2);
  }
  assert.deepEqual(parseDuidText(formatDuid(d)), d);
  assert.deepEqual(generateDuid(rng, hex('020000000001')), CLIENT_DUID);
  const llt = encodeDuid({ type: 'llt', hwType: 1, time: 0x2a2b2c2d, linkLayer: hex('020000000001') });
  assert.deepEqual(llt, hex('0001 0001 2a2b2c2d 020000000001'));
  assert.deepEqual(parseDuid(llt), { type: 'llt', hwType: 1, time: 0x2a2b2c2d, linkLayer: hex('020000000001') });
  assert.deepEqual(parseDuid(hex('0002 00000009 0102')), { type: 'en', enterprise: 9, id: hex('0102') });
  assert.deepEqual(parseDuid(hex('00ff 0102')), { type: 'unknown', code: 255, data: hex('0102') });
  assert.deepEqual(parseDuidText('0003001bfdfdfafa'), L2TPNS_DUID);
  assert.throws(() => parseDuidText('00:03:0'), decodeError('malformed'));
  assert.throws(() => parseDuid(hex('0004 0102')), decodeError('malformed'));
  assert.equal(duidEquals(L2TPNS_DUID, hex('0003001bfdfdfafa')), true);
  assert.equal(duidEquals(L2TPNS_DUID, CLIENT_DUID), false);
  assert.equal(duidEquals(undefined, CLIENT_DUID), false);
});

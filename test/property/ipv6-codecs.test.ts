import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Dhcp6Client } from '../../src/ipv6/dhcp6-client';
import {
  type Dhcp6Message,
  decodeDhcp6,
  emptyMessage,
  encodeDhcp6,
  encodeDuid,
  parseDuid,
  parseDuidText,
} from '../../src/ipv6/dhcpv6';
import { decodeDnsNames, encodeDnsNames } from '../../src/ipv6/dnsname';
import { buildNdPacket, decodeNdMessage, emptyOptions, encodeNdMessage, type NdMessage, parseNdPacket } from '../../src/ipv6/nd';
import {
  buildUdp6,
  canonical,
  formatAddress,
  Ipv6DecodeError,
  parseAddress,
  parseIcmpv6,
  parseIpv6,
  parsePrefix,
  parseUdp6,
  prefixContains,
  subPrefix,
} from '../../src/ipv6/packet';
import { Slaac } from '../../src/ipv6/slaac';

const RUNS = Number(process.env.FUZZ_RUNS ?? 2000);
const ROUNDTRIP_RUNS = Math.max(200, Math.floor(RUNS / 4));

const u32 = fc.nat({ max: 0xffffffff });
/** fc.record builds null-prototype objects; decoders return ordinary ones. */
const record = <T extends Record<string, fc.Arbitrary<unknown>>>(shape: T) =>
  fc.record(shape).map((r) => ({ ...r }) as { [K in keyof T]: T[K] extends fc.Arbitrary<infer U> ? U : never });
const bytes = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max });
const address = bytes(16, 16).map(formatAddress);
const label = fc.stringMatching(/^[A-Za-z0-9_-]{1,20}$/);
const domain = fc.array(label, { minLength: 1, maxLength: 4 }).map((l) => l.join('.'));

// -------------------------------------------------------------- round trips

test('address text round-trips and is canonical', () => {
  fc.assert(
    fc.property(bytes(16, 16), (b) => {
      const text = formatAddress(b);
      assert.deepEqual(parseAddress(text), b);
      assert.equal(canonical(text), text);
      assert.equal(canonical(text.toUpperCase()), text);
    }),
    { numRuns: ROUNDTRIP_RUNS },
  );
});

test('sub-prefixes lie inside their parent and are distinct', () => {
  fc.assert(
    fc.property(address, fc.integer({ min: 40, max: 63 }), fc.nat(), fc.nat(), (p, len, a, b) => {
      const n = 2 ** (64 - len);
      const ia = a % n;
      const ib = b % n;
      const sa = subPrefix(p, len, ia);
      assert.equal(sa.length, 64);
      assert.ok(prefixContains(p, len, sa.prefix));
      assert.equal(parsePrefix(`${sa.prefix}/64`).prefix, sa.prefix);
      assert.equal(ia === ib, subPrefix(p, len, ib).prefix === sa.prefix);
    }),
    { numRuns: ROUNDTRIP_RUNS },
  );
});

const ndOptions = record({
  prefixes: fc.array(
    record({
      prefix: address,
      prefixLength: fc.integer({ min: 0, max: 128 }),
      onLink: fc.boolean(),
      autonomous: fc.boolean(),
      validLifetime: u32,
      preferredLifetime: u32,
    }),
    { maxLength: 3 },
  ),
  rdnss: fc.array(record({ lifetime: u32, servers: fc.array(address, { minLength: 1, maxLength: 3 }) }), { maxLength: 2 }),
  dnssl: fc.array(record({ lifetime: u32, domains: fc.array(domain, { minLength: 1, maxLength: 3 }) }), { maxLength: 2 }),
  unknown: fc.array(record({ type: fc.constantFrom(9, 24, 200, 253), data: bytes(0, 30) }), { maxLength: 2 }),
  mtu: fc.option(u32, { nil: undefined }),
  sourceLinkLayer: fc.option(bytes(6, 6), { nil: undefined }),
  nonce: fc.option(bytes(6, 6), { nil: undefined }),
});

/** Options as the decoder returns them: padded data, no undefined keys. */
function normalise(o: ReturnType<typeof emptyOptions>) {
  const pad = (d: Uint8Array) => {
    const out = new Uint8Array(Math.ceil((d.length + 2) / 8) * 8 - 2);
    out.set(d);
    return out;
  };
  const r = emptyOptions({
    prefixes: o.prefixes.map((p) => ({ ...p, prefix: canonical(p.prefix) })),
    rdnss: o.rdnss,
    dnssl: o.dnssl,
  });
  r.unknown = o.unknown.map((u) => ({ type: u.type, data: pad(u.data) }));
  if (o.sourceLinkLayer) r.sourceLinkLayer = pad(o.sourceLinkLayer);
  if (o.nonce) r.nonce = pad(o.nonce);
  if (o.mtu !== undefined) r.mtu = o.mtu;
  return r;
}

const ndMessage: fc.Arbitrary<NdMessage> = fc.oneof(
  ndOptions.map((options) => ({ kind: 'rs' as const, options: emptyOptions(options) })),
  record({
    curHopLimit: fc.nat(255),
    managed: fc.boolean(),
    other: fc.boolean(),
    routerLifetime: fc.nat(0xffff),
    reachableTime: u32,
    retransTimer: u32,
    options: ndOptions,
  }).map((r) => ({ kind: 'ra' as const, ...r, options: emptyOptions(r.options) })),
  record({ target: address, options: ndOptions }).map((r) => ({ kind: 'ns' as const, ...r, options: emptyOptions(r.options) })),
  record({ router: fc.boolean(), solicited: fc.boolean(), override: fc.boolean(), target: address, options: ndOptions }).map(
    (r) => ({ kind: 'na' as const, ...r, options: emptyOptions(r.options) }),
  ),
);

test('ND messages round-trip through encode/decode (and through a full packet)', () => {
  fc.assert(
    fc.property(ndMessage, (m) => {
      const want = { ...m, options: normalise(m.options) };
      assert.deepEqual(decodeNdMessage(encodeNdMessage(m)), want);
      if (m.kind === 'ra') assert.deepEqual(parseNdPacket(buildNdPacket('fe80::1', 'ff02::1', m)).message, want);
    }),
    { numRuns: ROUNDTRIP_RUNS },
  );
});

test('DNS name lists round-trip', () => {
  fc.assert(
    fc.property(fc.array(domain, { maxLength: 10 }), (names) => {
      assert.deepEqual(decodeDnsNames(encodeDnsNames(names)), names);
    }),
    { numRuns: ROUNDTRIP_RUNS },
  );
});

const status = fc.option(
  record({ code: fc.nat(0xffff), message: fc.string({ maxLength: 40 }).filter((s) => !/[\ud800-\udfff]/.test(s)) }),
  { nil: undefined },
);
const rawOpt = record({ code: fc.constantFrom(15, 16, 39, 1000, 0xffff), data: bytes(0, 20) });
const duid = fc.oneof(
  bytes(6, 6).map((mac) => encodeDuid({ type: 'll', hwType: 1, linkLayer: mac })),
  bytes(16, 16).map((uuid) => encodeDuid({ type: 'uuid', uuid })),
  bytes(1, 100).map((data) => encodeDuid({ type: 'en', enterprise: 9, id: data })),
);
const dropUndefined = <T extends object>(o: T): T =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
const dhcp6Message: fc.Arbitrary<Dhcp6Message> = fc
  .record({
    type: fc.integer({ min: 1, max: 11 }),
    xid: fc.nat(0xffffff),
    clientId: fc.option(duid, { nil: undefined }),
    serverId: fc.option(duid, { nil: undefined }),
    iaNa: fc.array(
      record({
        iaid: u32,
        t1: u32,
        t2: u32,
        addresses: fc.array(
          record({
            address,
            preferredLifetime: u32,
            validLifetime: u32,
            status,
            unknown: fc.array(rawOpt, { maxLength: 1 }),
          }).map(dropUndefined),
          { maxLength: 3 },
        ),
        status,
        unknown: fc.array(rawOpt, { maxLength: 1 }),
      }).map(dropUndefined),
      { maxLength: 2 },
    ),
    iaPd: fc.array(
      record({
        iaid: u32,
        t1: u32,
        t2: u32,
        prefixes: fc.array(
          record({
            prefix: address,
            prefixLength: fc.nat(128),
            preferredLifetime: u32,
            validLifetime: u32,
            status,
            unknown: fc.array(rawOpt, { maxLength: 1 }),
          }).map(dropUndefined),
          { maxLength: 3 },
        ),
        status,
        unknown: fc.array(rawOpt, { maxLength: 1 }),
      }).map(dropUndefined),
      { maxLength: 2 },
    ),
    oro: fc.option(fc.array(fc.nat(0xffff), { maxLength: 8 }), { nil: undefined }),
    preference: fc.option(fc.nat(255), { nil: undefined }),
    elapsedTime: fc.option(fc.nat(0xffff), { nil: undefined }),
    status,
    rapidCommit: fc.boolean(),
    dnsServers: fc.option(fc.array(address, { maxLength: 4 }), { nil: undefined }),
    domainList: fc.option(fc.array(domain, { maxLength: 4 }), { nil: undefined }),
    solMaxRt: fc.option(u32, { nil: undefined }),
    infMaxRt: fc.option(u32, { nil: undefined }),
    informationRefreshTime: fc.option(u32, { nil: undefined }),
    unknown: fc.array(rawOpt, { maxLength: 3 }),
  })
  .map((m) => dropUndefined(m) as Dhcp6Message);

test('DHCPv6 messages round-trip', () => {
  fc.assert(
    fc.property(dhcp6Message, (m) => {
      assert.deepEqual(decodeDhcp6(encodeDhcp6(m)), m);
    }),
    { numRuns: ROUNDTRIP_RUNS },
  );
});

test('DUIDs and UDP datagrams round-trip', () => {
  fc.assert(
    fc.property(duid, address, address, fc.nat(0xffff), fc.nat(0xffff), bytes(0, 64), (d, src, dst, sp, dp, payload) => {
      assert.deepEqual(encodeDuid(parseDuid(d)), d);
      const u = parseUdp6(buildUdp6({ src, dst, srcPort: sp, dstPort: dp, hopLimit: 7, payload }));
      assert.deepEqual([u.ip.src, u.ip.dst, u.srcPort, u.dstPort, u.ip.hopLimit], [src, dst, sp, dp, 7]);
      assert.deepEqual(u.payload, payload);
    }),
    { numRuns: ROUNDTRIP_RUNS },
  );
});

// -------------------------------------------------------------- fuzz

/** Runs `f`; the only exception allowed out is Ipv6DecodeError. */
function onlyTyped(f: () => unknown): void {
  try {
    f();
  } catch (e) {
    if (!(e instanceof Ipv6DecodeError)) throw e;
  }
}

/** Random bytes, and valid samples with bytes flipped, cut short or extended. */
function hostile(samples: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  const mutated = fc
    .tuple(samples, fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 6 }), fc.nat(), fc.boolean())
    .map(([s, flips, cut, doCut]) => {
      const out = s.slice();
      for (const [i, v] of flips) if (out.length > 0) out[i % out.length] = v;
      return doCut ? out.subarray(0, cut % (out.length + 1)) : out;
    });
  return fc.oneof(bytes(0, 300), mutated);
}

const ndPackets = ndMessage.map((m) =>
  buildNdPacket(m.kind === 'ns' ? '::' : 'fe80::1', m.kind === 'ns' ? 'ff02::1:ff00:1' : 'ff02::1', m),
);
const dhcpPayloads = dhcp6Message.map(encodeDhcp6);
const dhcpPackets = dhcpPayloads.map((payload) =>
  buildUdp6({ src: 'fe02::1:2', dst: 'fe80::1', srcPort: 547, dstPort: 546, hopLimit: 1, payload }),
);

test('fuzz: IPv6/UDP/ICMPv6/ND packet decoders throw only Ipv6DecodeError', () => {
  fc.assert(
    fc.property(hostile(fc.oneof(ndPackets, dhcpPackets)), (b) => {
      onlyTyped(() => parseIpv6(b));
      onlyTyped(() => parseUdp6(b));
      onlyTyped(() => parseIcmpv6(b));
      onlyTyped(() => parseNdPacket(b));
    }),
    { numRuns: RUNS },
  );
});

test('fuzz: ND, DHCPv6, DNS name and DUID decoders throw only Ipv6DecodeError', () => {
  fc.assert(
    fc.property(
      hostile(
        fc.oneof(ndMessage.map(encodeNdMessage), dhcpPayloads, fc.array(domain, { maxLength: 5 }).map(encodeDnsNames), duid),
      ),
      (b) => {
        onlyTyped(() => decodeNdMessage(b));
        onlyTyped(() => decodeDhcp6(b));
        onlyTyped(() => decodeDnsNames(b));
        onlyTyped(() => parseDuid(b));
      },
    ),
    { numRuns: RUNS },
  );
});

test('fuzz: text parsers throw only Ipv6DecodeError', () => {
  const textish = fc.oneof(fc.string({ maxLength: 50 }), fc.stringMatching(/^[0-9a-fA-F:./]{0,48}$/));
  fc.assert(
    fc.property(textish, (s) => {
      onlyTyped(() => parseAddress(s));
      onlyTyped(() => parsePrefix(s));
      onlyTyped(() => parseDuidText(s));
    }),
    { numRuns: RUNS },
  );
});

test('fuzz: the SLAAC and DHCPv6 cores swallow hostile packets without throwing', () => {
  let now = 0;
  const slaac = new Slaac({ iid: new Uint8Array(8).fill(1), clock: () => now, rng: Math.random });
  const client = new Dhcp6Client({
    duid: encodeDuid({ type: 'uuid', uuid: new Uint8Array(16) }),
    linkLocal: 'fe80::1',
    clock: () => now,
    rng: Math.random,
    initialDelay: false,
  });
  client.start();
  fc.assert(
    fc.property(hostile(fc.oneof(ndPackets, dhcpPackets)), (b) => {
      now += 1000;
      slaac.receive(b);
      client.receive(b);
      const m = emptyMessage(7, 0);
      client.receiveMessage(m);
    }),
    { numRuns: RUNS },
  );
  assert.ok(slaac.status().addresses.length <= 16);
});

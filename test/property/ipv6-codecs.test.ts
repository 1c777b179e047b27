import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  address,
  dhcp6Message,
  domain,
  duid,
  fuzzRuns,
  ipv6BodyHostile,
  ipv6PacketHostile,
  ipv6Textish,
  ndMessage,
} from './arbitraries';
import { Dhcp6Client } from '../../src/ipv6/dhcp6-client';
import {
  decodeDhcp6,
  emptyMessage,
  encodeDhcp6,
  encodeDuid,
  parseDuid,
  parseDuidText,
} from '../../src/ipv6/dhcpv6';
import { decodeDnsNames, encodeDnsNames } from '../../src/ipv6/dnsname';
import { buildNdPacket, decodeNdMessage, emptyOptions, encodeNdMessage, parseNdPacket } from '../../src/ipv6/nd';
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

const RUNS = fuzzRuns();
const ROUNDTRIP_RUNS = Math.max(200, Math.floor(RUNS / 4));
const bytes = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max });

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

test('fuzz: IPv6/UDP/ICMPv6/ND packet decoders throw only Ipv6DecodeError', () => {
  fc.assert(
    fc.property(ipv6PacketHostile, (b) => {
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
      ipv6BodyHostile,
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
  const textish = ipv6Textish;
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
    fc.property(ipv6PacketHostile, (b) => {
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

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CHILD, CONN, IpsecCore, connMessage, espOverhead, explainFailure, saFromListSa } from '../../src/ipsec/core';
import { proposalProblems } from '../../src/config/ipsec-proposals';
import { resolveConfig } from '../../src/config/load';

const SC = '192.0.2.1';

test('load-conn: transport-mode CHILD for UDP from our address (any port) to the SC port, one keying try, trap policies', () => {
  const m = connMessage({ version: 'ikev1', psk: 'k', ikeProposals: ['aes256-sha256-modp2048'], espProposals: ['aes256gcm16'] }, { sc: { address: SC, port: 1701 }, local: '10.0.0.2' });
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- reading a nested literal back
  const c = m[CONN] as Record<string, any>;
  assert.equal(c.version, '1', 'RFC 3193 is IKEv1');
  assert.deepEqual(c.remote_addrs, [SC]);
  assert.deepEqual(c.local_addrs, ['10.0.0.2']);
  assert.equal(c.keyingtries, '1');
  assert.deepEqual(c.local, { auth: 'psk' });
  const ch = c.children[CHILD];
  assert.equal(ch.mode, 'transport');
  assert.deepEqual(ch.local_ts, ['dynamic[udp]']);
  assert.deepEqual(ch.remote_ts, ['dynamic[udp/1701]']);
  assert.equal(ch.start_action, 'trap', 'policies stay while the SA is gone: no cleartext L2TP');
  assert.equal(ch.close_action, 'none');
  assert.ok(!JSON.stringify(m).includes('"k"'), 'the PSK is not part of the connection');
});

// Lines as charon 5.9.8 logs them (seen in the UML interop run).
test('failures in plain words: wrong PSK (IKEv2 and IKEv1), no proposal, selectors, unreachable', () => {
  const f = (lines: string[], err?: string) => explainFailure(lines, err, SC);
  assert.deepEqual(f(['received AUTHENTICATION_FAILED notify error']), { reason: `IPsec: the SC rejected our authentication: wrong pre-shared key (or identity) for ${SC}`, permanent: true });
  assert.match(f(['sending retransmit 1 of request message ID 0, seq 3']).reason, /wrong pre-shared key/);
  assert.equal(f(['sending retransmit 1 of request message ID 0, seq 3']).permanent, true);
  assert.match(f(['generating ID_PROT request 0 [ ID HASH ]', 'invalid HASH_V1 payload length, decryption failed?']).reason, /wrong pre-shared key/);
  assert.match(f(['received NO_PROPOSAL_CHOSEN notify error']).reason, /no proposal chosen/);
  assert.match(f(['received TS_UNACCEPTABLE notify, no CHILD_SA built']).reason, /traffic selectors/);
  const u = f(['sending retransmit 1 of request message ID 0, seq 1', 'giving up after 3 retransmits'], 'establishing CHILD_SA failed');
  assert.match(u.reason, /peer unreachable/);
  assert.equal(u.permanent, false);
  assert.match(f([], 'initiate timed out').reason, /within the deadline/);
});

test('ESP overhead of the negotiated transform (RFC 4303 transport mode, RFC 3948 UDP encapsulation)', () => {
  assert.equal(espOverhead('AES_GCM_16-256', '', false), 8 + 8 + 3 + 2 + 16);
  assert.equal(espOverhead('AES_GCM_16-256', '', true), 45);
  assert.equal(espOverhead('AES_CBC-256', 'HMAC_SHA2_256_128', false), 8 + 16 + 15 + 2 + 16);
  assert.equal(espOverhead('AES_CBC-128', 'HMAC_SHA2_512_256', true), 8 + 16 + 15 + 2 + 32 + 8);
  assert.equal(espOverhead('3DES_CBC', 'HMAC_SHA1_96', false), 8 + 8 + 7 + 2 + 12);
});

const LIST_SA = {
  [CONN]: {
    version: '2',
    state: 'ESTABLISHED',
    'encr-alg': 'AES_CBC',
    'encr-keysize': '256',
    'integ-alg': 'HMAC_SHA2_256_128',
    'prf-alg': 'PRF_HMAC_SHA2_256',
    'dh-group': 'MODP_2048',
    'nat-local': 'yes',
    'rekey-time': '14000',
    'child-sas': {
      'l2tp-3': { name: CHILD, state: 'INSTALLED', mode: 'TRANSPORT', encap: 'yes', 'encr-alg': 'AES_GCM_16', 'encr-keysize': '256', 'spi-in': 'c51b784d', 'spi-out': 'c3f8651d', 'rekey-time': '3300', 'bytes-in': '120', 'bytes-out': '80' },
    },
  },
};

test('list-sa event: state, algorithms, NAT-T and rekey times for status', () => {
  const sa = saFromListSa(LIST_SA, new Date(0))!;
  assert.equal(sa.version, 'ikev2');
  assert.deepEqual(sa.ike, { state: 'ESTABLISHED', encr: 'AES_CBC-256', integ: 'HMAC_SHA2_256_128', prf: 'PRF_HMAC_SHA2_256', dh: 'MODP_2048', natLocal: true, natRemote: false, rekeyAt: new Date(14_000_000).toISOString() });
  assert.equal(sa.child?.encap, true);
  assert.equal(sa.child?.encr, 'AES_GCM_16-256');
  assert.equal(sa.child?.rekeyAt, new Date(3_300_000).toISOString());
  assert.equal(saFromListSa({ other: {} }, new Date(0)), null, "another connection's SA is not ours");
});

test('core: an SA that dies while up is reported once as lost; events before up, for other SAs, or while closing are not', () => {
  const core = new IpsecCore();
  core.begin(0, 30_000);
  assert.equal(core.remaining(10_000), 20_000);
  assert.equal(core.onEvent('ike-updown', { [CONN]: {} }), null, 'not up yet');
  core.established(null);
  assert.equal(core.phase, 'up');
  assert.equal(core.onEvent('ike-updown', { up: 'yes', [CONN]: {} }), null);
  assert.equal(core.onEvent('child-updown', { other: { 'child-sas': { 'x-1': { name: CHILD } } } }), null);
  assert.equal(core.onEvent('child-rekey', { [CONN]: {} }), 'refresh');
  const lost = core.onEvent('child-updown', { [CONN]: { 'child-sas': { 'l2tp-7': { name: CHILD } } } });
  assert.ok(lost && typeof lost === 'object' && /ESP SA .* went down/.test(lost.lost));
  assert.ok(typeof core.onEvent('ike-updown', { [CONN]: {} }) === 'object');
  core.closing();
  assert.equal(core.onEvent('ike-updown', { [CONN]: {} }), null, 'our own teardown is not a loss');
});

test('proposals: weak algorithms refused unless asked for; defaults pass', () => {
  assert.deepEqual(proposalProblems('p', ['aes256-sha256-modp2048', 'aes256gcm16'], false), []);
  for (const weak of ['aes128-sha1-modp2048', 'aes256-md5-modp2048', '3des-sha256-modp2048', 'aes256-sha256-modp1024']) {
    assert.equal(proposalProblems('p', [weak], false).length, 1, weak);
    assert.deepEqual(proposalProblems('p', [weak], true), []);
  }
  const { config } = resolveConfig({ sc: [SC], ipsec: 'ikev2', ipsecPsk: 'x' }, {});
  assert.deepEqual(proposalProblems('ike', config.ipsecIkeProposals, false), []);
  assert.deepEqual(proposalProblems('esp', config.ipsecEspProposals, false), []);
  assert.throws(() => resolveConfig({ sc: [SC], ipsec: 'ikev1', ipsecPsk: 'x', ipsecIkeProposals: ['aes128-sha1-modp1024'] }, {}), /weak/);
  assert.throws(() => resolveConfig({ sc: [SC], ipsec: 'ikev1' }, {}), /needs a pre-shared key/);
});

test('config: an SCCRP from another SC address (RFC 2661 8.1) is refused with IPsec, whose SA covers only the dialled address', () => {
  assert.throws(() => resolveConfig({ sc: [SC], ipsec: 'ikev2', ipsecPsk: 'x', tunnelSecret: 't', scAnswerFromOtherAddress: true }, {}), /scAnswerFromOtherAddress: not with ipsec/);
  assert.doesNotThrow(() => resolveConfig({ sc: [SC], tunnelSecret: 't', scAnswerFromOtherAddress: true }, {}));
});

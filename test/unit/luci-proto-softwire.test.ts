import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { parseScAddress } from '../../src/config/load';
import { UCI_OPTIONS } from '../../src/config/uci';
import { loadProto } from '../helpers/luci-proto';

/**
 * The LuCI page (openwrt/luci-proto-softwire) against the agent's own config
 * schema: it offers only options the agent and the netifd handler know, with the
 * same ranges, choices and defaults, and its validators accept only what the
 * agent's parser accepts.
 */

const proto = loadProto();
const options = proto.options('sw6').filter((o) => !o.name.startsWith('_'));
const handler = readFileSync(resolve(__dirname, '../../openwrt/files/softwire.proto'), 'utf8');
const declared = new Set([...handler.matchAll(/proto_config_add_\w+ (\w+)/g)].map((m) => m[1]));

describe('luci-proto-softwire: the options', () => {
  test('registers proto "softwire" with the fields of the UCI section', () => {
    assert.equal(proto.name, 'softwire');
    const names = options.map((o) => o.name);
    for (const required of ['server', 'username', 'password', 'mode', 'hello_interval', 'lcp_echo_interval', 'retransmit_initial', 'reconnect_cap']) {
      assert.ok(names.includes(required), `${required} is on the page`);
    }
    assert.equal(new Set(names).size, names.length, 'no option twice');
  });

  test('every option is one the agent knows and the netifd handler passes on', () => {
    for (const o of options) {
      assert.ok(UCI_OPTIONS.has(o.name), `${o.name}: not a softwire option`);
      assert.ok(declared.has(o.name), `${o.name}: not declared by proto_softwire_init_config, so netifd would drop it`);
    }
  });

  test('numbers: LuCI datatype range and placeholder equal the schema min, max and default', () => {
    const numeric = options.filter((o) => {
      const f = UCI_OPTIONS.get(o.name);
      return f?.kind === 'int' || f?.kind === 'number';
    });
    assert.ok(numeric.length >= 10);
    for (const o of numeric) {
      const f = UCI_OPTIONS.get(o.name)!;
      const m = /range\(([\d.]+),([\d.]+)\)/.exec(o.datatype ?? '');
      assert.ok(m, `${o.name}: datatype ${o.datatype} has no range`);
      assert.deepEqual([Number(m[1]), Number(m[2])], [f.min, f.max], `${o.name}: range`);
      assert.equal(/uinteger/.test(o.datatype ?? ''), f.kind === 'int', `${o.name}: integer datatype iff the schema says int`);
      assert.equal(o.placeholder, String(f.default), `${o.name}: placeholder is the default`);
    }
  });

  test('choices equal the schema choices and the default is the schema default', () => {
    for (const o of options.filter((x) => x.widget === 'ListValue')) {
      const f = UCI_OPTIONS.get(o.name)!;
      assert.deepEqual([...o.choices].sort(), [...(f.choices ?? [])].sort(), `${o.name}: choices`);
      assert.equal(o.default, f.default, `${o.name}: default`);
    }
  });

  test('server and username are required; the secrets are password fields', () => {
    const by = new Map(options.map((o) => [o.name, o]));
    assert.equal(by.get('server')?.widget, 'DynamicList');
    assert.equal(by.get('server')?.rmempty, false);
    assert.equal(by.get('username')?.rmempty, false);
    assert.equal(by.get('password')?.password, true);
    assert.equal(by.get('tunnel_secret')?.password, true);
    assert.equal(by.get('username')?.validate?.('sw6', ''), 'A PPP user name is required');
  });
});

describe('luci-proto-softwire: server validation', () => {
  const good = ['192.0.2.1', '192.0.2.1:1702', 'sc.example.net', 'sc.example.net:1701', 'sc-1.example.net.', '[2001:db8::1]', '[2001:db8::1]:1701', '2001:db8::1', '::ffff:192.0.2.1', 'localhost'];
  const bad: [string, RegExp][] = [
    ['', /Give the address/],
    ['300.1.1.1', /not an IPv4 address or host name/],
    ['192.0.2', /not an IPv4 address or host name/],
    ['sc..example.net', /not an IPv4 address or host name/],
    ['-sc.example.net', /not an IPv4 address or host name/],
    ['sc example', /not an IPv4 address or host name/],
    ['sc.example.net:0', /Port must be 1-65535/],
    ['sc.example.net:70000', /Port must be 1-65535/],
    ['sc.example.net:', /Port must be 1-65535/],
    ['[192.0.2.1]:1701', /not an IPv6 address/],
    ['2001:db8::zz', /not an IPv6 address/],
    ['2001:db8::1::2', /not an IPv6 address/],
    ['1:2:3:4:5:6:7:8:9', /not an IPv6 address/],
  ];

  test('accepts HOST, HOST:PORT, [IPv6]:PORT and bare IPv6, as the agent does', () => {
    for (const s of good) {
      assert.equal(proto.def.checkServer(s), true, s);
      assert.doesNotThrow(() => parseScAddress(s), s);
    }
  });

  test('names what is wrong', () => {
    for (const [s, why] of bad) {
      const r = proto.def.checkServer(s);
      assert.notEqual(r, true, `${JSON.stringify(s)} accepted`);
      assert.match(String(r), why, s);
    }
  });

  test('whatever the page accepts, the agent accepts (never a form that saves and then fails)', () => {
    const label = fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,8}[a-z0-9]$/);
    const host = fc.oneof(
      fc.ipV4(),
      fc.ipV6().map((a) => `[${a}]`),
      fc.ipV6(),
      fc.array(label, { minLength: 1, maxLength: 4 }).map((l) => l.join('.')),
      fc.string({ maxLength: 20 }),
    );
    const server = fc.tuple(host, fc.option(fc.oneof(fc.integer({ min: 0, max: 70000 }).map(String), fc.string({ maxLength: 6 })))).map(([h, p]) =>
      p === null || (h.includes(':') && !h.startsWith('[')) ? h : `${h}:${p}`,
    );
    fc.assert(
      fc.property(server, (s) => {
        if (proto.def.checkServer(s) === true) parseScAddress(s);
      }),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 300) },
    );
  });
});

describe('luci-proto-softwire: user and host name', () => {
  test('username: required, one line', () => {
    assert.equal(proto.def.checkUsername('cpe1'), true);
    assert.match(String(proto.def.checkUsername('')), /required/);
    assert.match(String(proto.def.checkUsername('   ')), /required/);
    assert.match(String(proto.def.checkUsername(undefined)), /required/);
    assert.match(String(proto.def.checkUsername('a\nb')), /control characters/);
    assert.match(String(proto.def.checkUsername('x'.repeat(256))), /longer than 255/);
  });

  test('Host Name AVP: one line', () => {
    assert.equal(proto.def.checkHostAvp('cpe 1'), true);
    assert.match(String(proto.def.checkHostAvp('a\tb')), /control characters/);
  });
});

describe('luci-proto-softwire: files', () => {
  test('the ACL grants the status call the page makes, and only for reading', () => {
    const acl = JSON.parse(readFileSync(join(resolve(__dirname, '../../openwrt/luci-proto-softwire'), 'root/usr/share/rpcd/acl.d/luci-proto-softwire.json'), 'utf8'));
    assert.deepEqual(acl['luci-proto-softwire'].read.ubus, { 'luci.softwire': ['status'] });
    assert.equal(acl['luci-proto-softwire'].write, undefined);
    const js = readFileSync(resolve(__dirname, '../../openwrt/luci-proto-softwire/htdocs/luci-static/resources/protocol/softwire.js'), 'utf8');
    assert.match(js, /object: 'luci\.softwire',\s*method: 'status'/);
  });
});

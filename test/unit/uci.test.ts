import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { uciConfig } from '../../src/cli/uci-verb';
import { ConfigError } from '../../src/config/load';
import { FIELDS } from '../../src/config/schema';
import {
  NETIFD_OPTIONS,
  SERVICE_OPTIONS,
  UCI_OPTIONS,
  UciSyntaxError,
  type UciValue,
  convertNetifdJson,
  convertOptions,
  convertUci,
  parseUci,
  selectSection,
  uciName,
} from '../../src/config/uci';

const FUZZ_RUNS = Number(process.env.FUZZ_RUNS ?? 300);

/** Problems from converting a `config softwire` section holding `opts` (plus a server, so `run` checks pass). */
function problems(opts: Record<string, UciValue>, kind: 'softwire' | 'interface' = 'softwire'): string[] {
  const options = new Map<string, UciValue>(Object.entries({ server: '192.0.2.1', ...opts }));
  try {
    convertOptions(options, kind);
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.problems;
  }
  return [];
}

function convert(opts: Record<string, UciValue>) {
  return convertOptions(new Map<string, UciValue>(Object.entries({ server: '192.0.2.1', ...opts })), 'softwire');
}

describe('parseUci', () => {
  test('sections, options, lists, comments and the three quoting styles', () => {
    const text = [
      '# leading comment',
      "package 'softwire'",
      '',
      "config softwire 'main'",
      "\toption enabled '1'   # trailing comment",
      '\toption username "al\\"ice"',
      '\toption password it\\\'s\\ bare',
      "\toption hostname 'a b'\"c d\"e",
      "\tlist server '192.0.2.1'",
      '\tlist server "[2001:db8::1]:1701"',
      "\toption empty ''",
      '',
      'config interface wan6',
      '\toption proto softwire',
      "\toption password 'a#b'",
      '\toption after x#comment',
    ].join('\n');
    const sections = parseUci(text, 'f');
    assert.equal(sections.length, 2);
    const [main, wan6] = sections;
    assert.deepEqual(
      { type: main.type, name: main.name, anonymous: main.anonymous, line: main.line },
      { type: 'softwire', name: 'main', anonymous: false, line: 4 },
    );
    assert.deepEqual(Object.fromEntries(main.options), {
      enabled: '1',
      username: 'al"ice',
      password: "it's bare",
      hostname: 'a bc de',
      server: ['192.0.2.1', '[2001:db8::1]:1701'],
      empty: '',
    });
    assert.equal(wan6.name, 'wan6');
    // '#' inside quotes is text; at the start of a bare word's remainder it starts a comment, as in uci.
    assert.deepEqual(Object.fromEntries(wan6.options), { proto: 'softwire', password: 'a#b', after: 'x' });
  });

  test('anonymous sections are named @type[index] counting every section of that type', () => {
    const s = parseUci("config softwire 'a'\nconfig softwire\nconfig other\nconfig softwire\n");
    assert.deepEqual(
      s.map((x) => x.name),
      ['a', '@softwire[1]', '@other[0]', '@softwire[2]'],
    );
    assert.deepEqual(
      s.map((x) => x.anonymous),
      [false, true, true, true],
    );
  });

  test('a list entry after a plain option extends it; a later option replaces a list', () => {
    const [s] = parseUci('config softwire\n option server a\n list server b\n option lan x\n list lan y\n option lan z\n');
    assert.deepEqual(s.options.get('server'), ['a', 'b']);
    assert.equal(s.options.get('lan'), 'z');
  });

  test('line continuation with a backslash and multi-line quotes; CRLF line ends', () => {
    const [s] = parseUci("config softwire\r\n option a one\\\ntwo\r\n option b 'x\ny'\r\n option c d\r\n");
    assert.deepEqual(Object.fromEntries(s.options), { a: 'onetwo', b: 'x\ny', c: 'd' });
  });

  const errors: [string, string, RegExp][] = [
    ['unterminated single quote', "config softwire\noption a 'b\n", /^f:2: unterminated single quote$/],
    ['unterminated double quote', 'config softwire\noption a "b', /^f:2: unterminated double quote$/],
    ['option before config', 'option a b', /^f:1: "option" before any "config" line$/],
    ['too many values', 'config softwire\n\noption a b c', /^f:3: "option" takes a name and one value \(quote values that hold blanks\)$/],
    ['missing value', 'config softwire\nlist a', /^f:2: "list" takes a name and one value$/],
    ['unknown keyword', 'config softwire\nopton a b', /^f:2: unknown keyword "opton"/],
    ['bad option name', 'config softwire\noption a-b c', /^f:2: invalid option name "a-b"/],
    ['bad section name', 'config softwire my.name', /^f:1: invalid section name "my.name"/],
    ['config without type', 'config', /^f:1: "config" takes a type and an optional name$/],
    ['trailing backslash', 'config softwire\noption a b\\', /^f:2: backslash at end of file$/],
  ];
  for (const [name, text, re] of errors) {
    test(`syntax error: ${name}`, () => {
      assert.throws(
        () => parseUci(text, 'f'),
        (e: unknown) => e instanceof UciSyntaxError && re.test(e.message),
      );
    });
  }

  test('hostile text only ever raises UciSyntaxError', () => {
    const alphabet = fc.constantFrom(...'config option list package softwire \'"\\#\n\t a=_-.'.split(''));
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: alphabet, maxLength: 200 }), fc.string({ maxLength: 200 })), (text) => {
        try {
          parseUci(text);
        } catch (e) {
          if (!(e instanceof UciSyntaxError)) throw e;
        }
      }),
      { numRuns: FUZZ_RUNS },
    );
  });
});

describe('option mapping', () => {
  test('every FIELDS key has exactly one UCI option; the renamed ones read like OpenWrt', () => {
    assert.equal(UCI_OPTIONS.size, FIELDS.length);
    for (const f of FIELDS) assert.equal(UCI_OPTIONS.get(uciName(f.key)), f);
    assert.equal(UCI_OPTIONS.get('server')?.key, 'sc');
    assert.equal(UCI_OPTIONS.get('username')?.key, 'user');
    assert.equal(UCI_OPTIONS.get('family')?.key, 'ncp');
    assert.equal(UCI_OPTIONS.get('hello_interval')?.key, 'helloInterval');
    assert.equal(UCI_OPTIONS.get('password_file')?.key, 'passwordFile');
    for (const name of [...SERVICE_OPTIONS, ...NETIFD_OPTIONS]) assert.ok(!UCI_OPTIONS.has(name), `${name} is not also a config option`);
  });

  /** One good value per option and what it becomes; must cover the whole mapping. */
  const GOOD: Record<string, [UciValue, unknown]> = {
    server: [['192.0.2.1', '[2001:db8::1]:1702'], ['192.0.2.1', '[2001:db8::1]:1702']],
    sc_sdp: ['/etc/softwire/sc.sdp', '/etc/softwire/sc.sdp'],
    username: ['alice', 'alice'],
    auth: ['chap', 'chap'],
    password: ['s3cret word', 's3cret word'],
    tunnel_secret: ['tsecret', 'tsecret'],
    hostname: ['gw1', 'gw1'],
    mode: ['router', 'router'],
    family: ['dual', 'dual'],
    lan: [['br-lan=0', 'br-guest=3'], [{ ifname: 'br-lan', subPrefixId: 0 }, { ifname: 'br-guest', subPrefixId: 3 }]],
    ra: ['odhcpd', 'odhcpd'],
    provision: ['netifd', 'netifd'],
    hello_interval: ['120', 120],
    lcp_echo_interval: ['20', 20],
    lcp_echo_failure: ['5', 5],
    retransmit_initial: ['0.5', 0.5],
    retransmit_cap: ['16', 16],
    retransmit_retries: ['7', 7],
    reconnect_initial: ['1.5', 1.5],
    reconnect_cap: ['600', 600],
    reconnect_jitter: ['0.25', 0.25],
    tun_device: ['sw-wan6', 'sw-wan6'],
    mtu: ['1400', 1400],
    route_metric: ['512', 512],
    ipv4_default_route: ['yes', true],
    nat44: ['0', false],
    dhcpv4: ['1', true],
    prefix_length_hint: ['60', 60],
    rapid_commit: ['1', true],
    control_socket: ['/var/run/softwire/a.sock', '/var/run/softwire/a.sock'],
    notify_command: ['/usr/libexec/hook', '/usr/libexec/hook'],
    state_dir: ['/etc/softwire', '/etc/softwire'],
    resolv_file: ['/tmp/resolv.conf.d/softwire', '/tmp/resolv.conf.d/softwire'],
    log_level: ['debug', 'debug'],
    // --- IPsec (RFC 3193) ---
    ipsec: ['ikev1', 'ikev1'],
    ipsec_psk: ['psk word', 'psk word'],
    ipsec_cert: ['/etc/swanctl/x509/gw.pem', '/etc/swanctl/x509/gw.pem'],
    ipsec_key: ['/etc/swanctl/private/gw.pem', '/etc/swanctl/private/gw.pem'],
    ipsec_ca_cert: ['/etc/swanctl/x509ca/ca.pem', '/etc/swanctl/x509ca/ca.pem'],
    ipsec_ike_proposals: [['aes256-sha256-modp3072'], ['aes256-sha256-modp3072']],
    ipsec_esp_proposals: ['aes128gcm16', ['aes128gcm16']],
    ipsec_allow_weak: ['0', false],
    ipsec_timeout: ['45', 45],
    ipsec_vici_socket: ['/var/run/charon.vici', '/var/run/charon.vici'],
    // --- RFC conformance (issue 16) ---
    offloads: ['0', false],
    optimistic_dad: ['0', false],
    // off: with ipsec on (above) the loader refuses it on (the SA covers only the dialled address).
    sc_answer_from_other_address: ['off', false],
    sdp_offer_file: ['/tmp/softwire-offer.sdp', '/tmp/softwire-offer.sdp'],
    // --- Setup deadlines and readiness (issue 15: orchestration) ---
    sccrp_timeout: ['30', 30],
    icrp_timeout: ['15', 15],
    lcp_timeout: ['40', 40],
    auth_timeout: ['60', 60],
    ncp_timeout: ['25', 25],
    provision_wait: ['5', 5],
  };
  /** Secret files: one of each pair per config, so they get their own case. */
  const FILES: Record<string, [UciValue, unknown]> = {
    password_file: ['/etc/softwire/password', '/etc/softwire/password'],
    tunnel_secret_file: ['/etc/softwire/tsecret', '/etc/softwire/tsecret'],
    ipsec_psk_file: ['/etc/softwire/ipsec.psk', '/etc/softwire/ipsec.psk'],
  };

  test('the test tables cover every option in the mapping', () => {
    assert.deepEqual([...Object.keys(GOOD), ...Object.keys(FILES)].sort(), [...UCI_OPTIONS.keys()].sort());
  });

  test('every option converts to its key and type', () => {
    const opts = Object.fromEntries(Object.entries(GOOD).map(([k, [v]]) => [k, v]));
    const { json } = convert(opts);
    for (const [name, [, want]] of Object.entries(GOOD)) assert.deepEqual(json[UCI_OPTIONS.get(name)!.key], want, name);
    assert.deepEqual(Object.keys(json).sort(), Object.keys(GOOD).map((n) => UCI_OPTIONS.get(n)!.key).sort(), 'only the given keys');
    const files = convert({ username: 'a', ...Object.fromEntries(Object.entries(FILES).map(([k, [v]]) => [k, v])) }).json;
    for (const [name, [, want]] of Object.entries(FILES)) assert.deepEqual(files[UCI_OPTIONS.get(name)!.key], want, name);
  });

  test('a single "option" works for list options; netifd booleans and numbers are accepted', () => {
    assert.deepEqual(convert({ server: 'sc.example.net' }).json.sc, ['sc.example.net']);
    assert.deepEqual(convert({ lan: 'br-lan' }).json.lan, [{ ifname: 'br-lan', subPrefixId: 0 }]);
    assert.equal(convert({ rapid_commit: true }).json.rapidCommit, true);
    assert.equal(convert({ rapid_commit: 0 }).json.rapidCommit, false);
    assert.equal(convert({ hello_interval: 90 }).json.helloInterval, 90);
    for (const w of ['1', 'true', 'YES', 'on', 'enabled']) assert.equal(convert({ rapid_commit: w }).json.rapidCommit, true, w);
    for (const w of ['0', 'false', 'no', 'Off', 'disabled']) assert.equal(convert({ rapid_commit: w }).json.rapidCommit, false, w);
  });

  test('the effective config has defaults for what the section leaves out', () => {
    const { config } = convert({});
    assert.equal(config.helloInterval, 60);
    assert.equal(config.mode, 'host');
  });

  const BAD: [string, Record<string, UciValue>, RegExp][] = [
    ['int below range', { hello_interval: '5' }, /^hello_interval: 5 is not allowed; expected a whole number from 10 to 3600$/],
    ['int above range', { lcp_echo_failure: '101' }, /^lcp_echo_failure: 101 is not allowed; expected a whole number from 1 to 100$/],
    ['int not whole', { retransmit_retries: '2.5' }, /^retransmit_retries: 2.5 is not allowed; expected a whole number from 1 to 20$/],
    ['int not a number', { mtu: '1400bytes' }, /^mtu: "1400bytes" is not allowed; expected a whole number from 0 to 65535$/],
    ['hex is not decimal', { route_metric: '0x10' }, /^route_metric: "0x10" is not allowed; expected a whole number from 0 to 4294967295$/],
    ['empty number', { prefix_length_hint: '' }, /^prefix_length_hint: "" is not allowed; expected a whole number from 0 to 64$/],
    ['number below range', { retransmit_initial: '0.05' }, /^retransmit_initial: 0.05 is not allowed; expected a number from 0.1 to 30$/],
    ['number above range', { reconnect_jitter: '1.5' }, /^reconnect_jitter: 1.5 is not allowed; expected a number from 0 to 1$/],
    ['number not a number', { reconnect_cap: 'lots' }, /^reconnect_cap: "lots" is not allowed; expected a number from 1 to 86400$/],
    ['enum', { mode: 'bridge' }, /^mode: "bridge" is not allowed; expected one of router, host$/],
    ['renamed enum', { family: 'ipx' }, /^family: "ipx" is not allowed; expected one of ipv6, ipv4, dual$/],
    ['log level', { log_level: 'loud' }, /^log_level: "loud" is not allowed; expected one of fatal, error, warn, info, debug, trace, silent$/],
    ['auth', { auth: 'mschap' }, /^auth: "mschap" is not allowed; expected one of auto, chap, pap$/],
    ['ra', { ra: 'dnsmasq' }, /^ra: "dnsmasq" is not allowed; expected one of builtin, odhcpd, radvd, none$/],
    ['provision', { provision: 'pppd' }, /^provision: "pppd" is not allowed; expected one of agent, netifd$/],
    ['bool', { rapid_commit: 'maybe' }, /^rapid_commit: "maybe" is not allowed; expected 1 or 0 \(also true\/false, yes\/no, on\/off\)$/],
    ['bool number', { ipv4_default_route: 2 }, /^ipv4_default_route: 2 is not allowed; expected 1 or 0/],
    ['empty string', { username: '' }, /^username: "" is not allowed; expected a non-empty string$/],
    ['list for a plain option', { hostname: ['a', 'b'] }, /^hostname: is given as a list \(2 values\); use "option hostname", not "list hostname"$/],
    ['bad server', { server: ['sc:99999'] }, /^server: port in "sc:99999" is not 1-65535$/],
    ['bad lan name', { lan: 'this-name-is-far-too-long' }, /^lan: "this-name-is-far-too-long" does not name an interface/],
    ['bad lan id', { lan: 'br-lan=x' }, /^lan: sub-prefix id of br-lan is NaN; expected a whole number from 0 to 65535$/],
    ['bad tun device', { tun_device: 'a/b' }, /^tun_device: "a\/b" is not a valid interface name/],
    [
      'RFC 5571 echo bound names both options',
      { hello_interval: '30', lcp_echo_interval: '40' },
      /^lcp_echo_interval: 40 is above 30; RFC 5571 5.1.2 wants it at most the lesser of hello_interval \(30\) and 60 seconds$/,
    ],
    ['cap below initial', { retransmit_initial: '10', retransmit_cap: '5' }, /^retransmit_cap: 5 is below retransmit_initial \(10\)$/],
    ['both password forms', { username: 'a', password: 'x', password_file: '/p' }, /^password: give either password or password_file, not both$/],
    ['password without user', { password: 'x' }, /^username: a password is configured but no user name \(option username\)$/],
    ['unknown option', { frobnicate: '1' }, /^frobnicate: unknown option \(known options: server, sc_sdp, username, /],
    ['the JSON key is not the UCI name', { sc: '192.0.2.9' }, /^sc: unknown option/],
    ['netifd options belong to interface sections', { proto: 'softwire' }, /^proto: unknown option/],
  ];
  for (const [name, opts, re] of BAD) {
    test(`bad value: ${name}`, () => {
      const p = problems(opts);
      assert.equal(p.length, 1, p.join('\n'));
      assert.match(p[0], re);
    });
  }

  test('every bad option is reported, not just the first', () => {
    const p = problems({ hello_interval: 'x', mode: 'y', nope: '1' });
    assert.equal(p.length, 3);
    assert.deepEqual(
      p.map((s) => s.split(':')[0]),
      ['hello_interval', 'mode', 'nope'],
    );
  });

  test('no server is an error for the agent to run', () => {
    assert.throws(
      () => convertOptions(new Map(), 'softwire'),
      (e: unknown) =>
        e instanceof ConfigError && e.problems[0] === 'server: no Softwire Concentrator given; use list server or option sc_sdp',
    );
  });

  test('service options are ignored in softwire sections, netifd options in interface sections', () => {
    assert.deepEqual(convert({ enabled: '1', respawn_threshold: '60', respawn_timeout: '1', respawn_retry: '2' }).json, {
      sc: ['192.0.2.1'],
    });
    assert.deepEqual(problems({ proto: 'softwire', auto: '1', ifname: 'x', device: 'y', metric: '5', peerdns: '0' }, 'interface'), []);
    assert.match(problems({ enabled: '1' }, 'interface')[0], /^enabled: unknown option/);
  });

  test('warnings use UCI names', () => {
    assert.deepEqual(convert({ lan: 'br-lan' }).warnings, ['lan: LAN interfaces are only numbered in router mode; they are ignored in host mode']);
  });
});

describe('sections', () => {
  const FILE = [
    "config softwire 'main'",
    "\tlist server '192.0.2.1'",
    "\toption hello_interval '30'",
    "config softwire 'backup'",
    "\tlist server '192.0.2.2'",
    "config interface 'lan'",
    "\toption proto 'static'",
    "config interface 'sw6'",
    "\toption proto 'softwire'",
    "\toption auto '1'",
    "\tlist server '[2001:db8::1]'",
    "\toption family 'ipv4'",
  ].join('\n');

  test('by name, by @type[i], and an interface with proto softwire', () => {
    assert.deepEqual(convertUci(FILE, 'f', 'main').json, { sc: ['192.0.2.1'], helloInterval: 30 });
    assert.deepEqual(convertUci(FILE, 'f', '@softwire[1]').json, { sc: ['192.0.2.2'] });
    assert.deepEqual(convertUci(FILE, 'f', '@softwire[-1]').json, { sc: ['192.0.2.2'] });
    assert.deepEqual(convertUci(FILE, 'f', '@interface[-1]').json, { sc: ['[2001:db8::1]'], ncp: 'ipv4' });
    assert.deepEqual(convertUci(FILE, 'f', 'sw6').json, { sc: ['[2001:db8::1]'], ncp: 'ipv4' });
  });

  test('no name with several softwire sections asks for one; with one it is taken', () => {
    assert.throws(
      () => convertUci(FILE, 'f'),
      (e: unknown) => e instanceof ConfigError && e.problems[0] === '3 softwire sections (main, backup, sw6); choose one with --section NAME',
    );
    assert.deepEqual(convertUci("config softwire\n list server 'x'\n", 'f').json, { sc: ['x'] });
  });

  test('missing, foreign and absent sections are named', () => {
    const sections = parseUci(FILE);
    assert.throws(() => selectSection(sections, 'nope'), /section "nope" not found \(softwire sections: main, backup, sw6\)/);
    assert.throws(() => selectSection(sections, 'lan'), /section "lan" is a "interface" section, not "config softwire"/);
    assert.throws(() => selectSection(parseUci('config other'), undefined), /no "config softwire" section/);
  });

  test('syntax errors come back as ConfigError lines with the file and line', () => {
    assert.throws(
      () => convertUci('config softwire\n option a "b', 'net'),
      (e: unknown) => e instanceof ConfigError && e.problems[0] === 'net:2: unterminated double quote',
    );
  });

  test('the shipped /etc/config/softwire parses, documents every option, and converts once a server is set', () => {
    const text = readFileSync('openwrt/files/softwire.config', 'utf8');
    const [main] = parseUci(text, 'softwire.config');
    assert.equal(main.name, 'main');
    assert.equal(main.options.get('enabled'), '0');
    for (const name of [...UCI_OPTIONS.keys(), ...SERVICE_OPTIONS.filter((o) => o !== 'enabled')]) {
      assert.match(text, new RegExp(`^\\s*#?(option|list) ${name} `, 'm'), `${name} is documented in softwire.config`);
    }
    const withServer = `${text}\n\tlist server '192.0.2.1'\n`;
    assert.deepEqual(convertUci(withServer, 'f').json, { stateDir: '/etc/softwire', sc: ['192.0.2.1'] });
  });
});

describe('netifd JSON', () => {
  test('typed values from netifd convert like UCI strings', () => {
    const { json } = convertNetifdJson({
      proto: 'softwire',
      server: ['192.0.2.1'],
      username: 'alice',
      hello_interval: 30,
      rapid_commit: true,
      retransmit_initial: '0.5',
      defaultroute: false,
      ignored_null: null,
    });
    assert.deepEqual(json, { sc: ['192.0.2.1'], user: 'alice', helloInterval: 30, rapidCommit: true, retransmitInitial: 0.5 });
  });

  test('non-objects and nested values are refused', () => {
    assert.throws(() => convertNetifdJson([1]), /netifd data: must be one JSON object/);
    assert.throws(() => convertNetifdJson({ server: [{ a: 1 }] }), /^Error|server: \[\{"a":1\}\] is not a string/);
  });
});

describe('uci-config verb', () => {
  function sink() {
    const chunks: string[] = [];
    const stream = new Writable({
      write(chunk, _enc, cb) {
        chunks.push(String(chunk));
        cb();
      },
    });
    return { stream, text: () => chunks.join('') };
  }

  test('prints the JSON config with secrets (the caller writes it 0600) and exits 0', () => {
    const out = sink();
    const err = sink();
    const status = uciConfig('test/integration/fixtures/openwrt-uci/network', { section: 'sw6' }, out.stream, err.stream);
    assert.equal(status, 0, err.text());
    assert.deepEqual(JSON.parse(out.text()), {
      sc: ['192.0.2.1', '192.0.2.2:1702'],
      user: 'alice',
      password: 'pa ss',
      mode: 'router',
      helloInterval: 30,
    });
    assert.equal(err.text(), '');
  });

  test('exits 2 and lists every problem on stderr', () => {
    const out = sink();
    const err = sink();
    const status = uciConfig('test/integration/fixtures/openwrt-uci/network', { section: 'bad' }, out.stream, err.stream);
    assert.equal(status, 2);
    assert.equal(out.text(), '');
    assert.equal(
      err.text(),
      'softwire: hello_interval: 5 is not allowed; expected a whole number from 10 to 3600\n' +
        'softwire: colour: unknown option (known options: ' +
        [...UCI_OPTIONS.keys()].join(', ') +
        ')\n',
    );
  });

  test('a missing file exits 2 naming it', () => {
    const err = sink();
    assert.equal(uciConfig('/nonexistent/softwire', {}, sink().stream, err.stream), 2);
    assert.equal(err.text(), 'softwire: /nonexistent/softwire: cannot read: ENOENT\n');
  });
});

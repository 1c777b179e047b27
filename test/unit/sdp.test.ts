import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildL2tpOffer, formatHostPort, l2tpOfferText, ntpSeconds, parseL2tpAnswer } from '../../src/sdp/l2tp';
import { MAX_SDP_BYTES, MAX_SDP_LINES, parseSdp, SdpError, type SdpErrorKind, serializeSdp } from '../../src/sdp/sdp';

/** Joins lines with CRLF, the wire form. */
const crlf = (...lines: string[]) => `${lines.join('\r\n')}\r\n`;
const lf = (...lines: string[]) => `${lines.join('\n')}\n`;

const HEAD = ['v=0', 'o=lns 3900000000 3900000001 IN IP4 192.0.2.1', 's=-'];
/** An answer as draft-tveretin-dispatch-l2tp-sdp-02 3.2 describes it: a similar m= line with port 1701. */
const ANSWER = crlf(...HEAD, 'c=IN IP4 192.0.2.1', 't=0 0', 'm=application 1701 UDP l2tp');

function throwsSdp(fn: () => unknown, line: number, reason: RegExp, kind: SdpErrorKind = 'syntax'): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof SdpError, `expected SdpError, got ${String(e)}`);
    assert.equal(e.line, line, `line of "${e.message}"`);
    assert.match(e.reason, reason);
    assert.equal(e.kind, kind, `kind of "${e.message}"`);
    assert.equal(e.message, line > 0 ? `line ${line}: ${e.reason}` : e.reason);
    return true;
  });
}

describe('offer (draft 3.1)', () => {
  test('is the exact minimal SDP with m=application <port> UDP l2tp and CRLF line ends', () => {
    const text = l2tpOfferText({ address: '198.51.100.7', sessionId: '3900000000' });
    assert.equal(
      text,
      'v=0\r\no=- 3900000000 3900000000 IN IP4 198.51.100.7\r\ns=softwire\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n' +
        'm=application 1701 UDP l2tp\r\n',
    );
  });

  test('IPv6 address, chosen port and version; parses back to the same model', () => {
    const offer = buildL2tpOffer({ address: '2001:db8::7', port: 40000, sessionId: '5', sessionVersion: '6', name: 'x' });
    const text = serializeSdp(offer);
    assert.match(text, /^o=- 5 6 IN IP6 2001:db8::7\r$/m);
    assert.match(text, /^c=IN IP6 2001:db8::7\r$/m);
    assert.match(text, /^m=application 40000 UDP l2tp\r$/m);
    const back = parseSdp(text);
    assert.equal(serializeSdp(back), text);
    assert.deepEqual(back.media[0].formats, ['l2tp']);
  });

  test('session id defaults to the NTP time of `now`', () => {
    const now = new Date('2024-01-01T00:00:00Z');
    assert.equal(ntpSeconds(now), String(1704067200 + 2208988800));
    assert.equal(buildL2tpOffer({ address: '192.0.2.9', now }).origin.sessionId, '3913056000');
  });

  test('rejects a name, a multicast address, port 0 and a non-numeric session id', () => {
    assert.throws(() => buildL2tpOffer({ address: 'host.example', sessionId: '1' }), /not an IPv4 or IPv6 address/);
    assert.throws(() => buildL2tpOffer({ address: '239.1.1.1', sessionId: '1' }), /multicast/);
    assert.throws(() => buildL2tpOffer({ address: '192.0.2.1', port: 0, sessionId: '1' }), /not 1-65535 \(the draft forbids 0\)/);
    assert.throws(() => buildL2tpOffer({ address: '192.0.2.1', sessionId: '12a' }), /session id "12a" is not a number/);
  });
});

describe('answer', () => {
  test('the draft example (port 1701) gives the SC address and port', () => {
    assert.deepEqual(parseL2tpAnswer(ANSWER), { address: '192.0.2.1', port: 1701, addrType: 'IP4' });
  });

  test('an offer as the draft writes it (m=application 1 UDP l2tp) is valid SDP', () => {
    const s = parseSdp(crlf(...HEAD, 'c=IN IP4 192.0.2.1', 't=0 0', 'm=application 1 UDP l2tp'));
    assert.equal(s.media[0].port, 1);
    assert.equal(s.media[0].line, 6);
  });

  test('LF-only, mixed line ends, no final newline and trailing blank lines all parse', () => {
    const lines = [...HEAD, 'c=IN IP4 192.0.2.1', 't=0 0', 'm=application 1701 UDP l2tp'];
    for (const text of [lf(...lines), `${lines.join('\n')}`, `${lines.join('\r\n')}\n`, `${crlf(...lines)}\r\n\n`]) {
      assert.equal(parseL2tpAnswer(text).port, 1701, JSON.stringify(text));
    }
    assert.equal(parseL2tpAnswer(Buffer.from(ANSWER)).address, '192.0.2.1');
  });

  test('the media-level c= line wins over the session-level one', () => {
    const a = parseL2tpAnswer(crlf(...HEAD, 'c=IN IP4 192.0.2.1', 't=0 0', 'm=application 1702 UDP l2tp', 'c=IN IP4 203.0.113.5'));
    assert.deepEqual(a, { address: '203.0.113.5', port: 1702, addrType: 'IP4' });
  });

  test('IPv6 and DNS-name SC addresses', () => {
    const v6 = parseL2tpAnswer(crlf(...HEAD, 't=0 0', 'm=application 1701 UDP l2tp', 'c=IN IP6 2001:db8::53'));
    assert.deepEqual(v6, { address: '2001:db8::53', port: 1701, addrType: 'IP6' });
    assert.equal(formatHostPort(v6.address, v6.port), '[2001:db8::53]:1701');
    const name = parseL2tpAnswer(crlf(...HEAD, 'c=IN IP4 sc.isp.example', 't=0 0', 'm=application 1701 UDP l2tp'));
    assert.equal(name.address, 'sc.isp.example');
    assert.equal(formatHostPort(name.address, name.port), 'sc.isp.example:1701');
  });

  test('media, proto and format names are matched without regard to case; other media are skipped', () => {
    const a = parseL2tpAnswer(
      crlf(...HEAD, 'c=IN IP4 192.0.2.1', 't=0 0', 'm=audio 0 RTP/AVP 0', 'm=Application 1701 udp L2TP', 'a=sendrecv'),
    );
    assert.equal(a.port, 1701);
  });

  test('answers we cannot use, each with its line and reason', () => {
    const sess = [...HEAD, 'c=IN IP4 192.0.2.1', 't=0 0'];
    throwsSdp(() => parseL2tpAnswer(crlf(...sess)), 0, /the answer has no m= line; expected "m=application <port> UDP l2tp"/, 'unusable');
    throwsSdp(
      () => parseL2tpAnswer(crlf(...sess, 'm=audio 49170 RTP/AVP 0')),
      6,
      /the answer's media is "audio 49170 RTP\/AVP 0", not "m=application <port> UDP l2tp"/,
      'unusable',
    );
    throwsSdp(() => parseL2tpAnswer(crlf(...sess, 'm=application 1701 TCP l2tp')), 6, /transport is "TCP"/, 'unusable');
    throwsSdp(() => parseL2tpAnswer(crlf(...sess, 'm=application 1701/2 UDP l2tp')), 6, /port range \(\/2\)/, 'unusable');
    throwsSdp(
      () => parseL2tpAnswer(crlf(...sess, 'm=application 1701 UDP l2tp', 'm=application 1702 UDP l2tp')),
      7,
      /more than one l2tp m= line/,
      'unusable',
    );
    throwsSdp(() => parseL2tpAnswer(crlf(...sess, 'm=application 1701 UDP l2tp', 'a=recvonly')), 6, /one-way \(a=recvonly\)/, 'unusable');
    throwsSdp(
      () => parseL2tpAnswer(crlf(...sess, 'm=application 1701 UDP l2tp', 'c=IN IP4 233.252.0.1/16')),
      7,
      /multicast address; the SC must be a unicast address/,
      'unusable',
    );
    throwsSdp(() => parseL2tpAnswer(crlf(...sess, 'm=application 1701 UDP l2tp', 'c=IN IP6 ff0e::101')), 7, /multicast/, 'unusable');
    throwsSdp(() => parseL2tpAnswer(crlf(...sess, 'm=application 1701 UDP l2tp', 'c=IN IP4 0.0.0.0')), 7, /unspecified address/, 'unusable');
    throwsSdp(() => parseL2tpAnswer(crlf(...sess, 'm=application 1701 UDP l2tp', 'c=IN IP6 ::')), 7, /unspecified address/, 'unusable');
    throwsSdp(
      () => parseL2tpAnswer(crlf(...sess, 'm=application 1701 UDP l2tp', 'c=IN IP4 192.0.2.1', 'c=IN IP4 192.0.2.2')),
      8,
      /more than one c= line/,
      'unusable',
    );
    throwsSdp(() => parseL2tpAnswer(crlf(...HEAD, 'c=TN RFC2543 +1-555', 't=0 0', 'm=application 1701 UDP l2tp')), 4, /network type is "TN"/, 'unusable');
  });

  test('a declined stream is "rejected": port 0 (RFC 3264 6) or a=inactive', () => {
    const sess = [...HEAD, 'c=IN IP4 192.0.2.1', 't=0 0'];
    throwsSdp(() => parseL2tpAnswer(crlf(...sess, 'm=application 0 UDP l2tp')), 6, /rejected the L2TP stream \(port 0\)/, 'rejected');
    throwsSdp(() => parseL2tpAnswer(crlf(...sess, 'a=inactive', 'm=application 1701 UDP l2tp')), 7, /inactive/, 'rejected');
  });
});

describe('SDP syntax errors name the line and the reason', () => {
  const ok = [...HEAD, 'c=IN IP4 192.0.2.1', 't=0 0', 'm=application 1701 UDP l2tp'];
  /** `ok` with line `n` (1-based) replaced by `line`, or removed when `line` is null. */
  const edit = (n: number, line: string | null) => lf(...ok.slice(0, n - 1), ...(line === null ? [] : [line]), ...ok.slice(n));
  const cases: Array<[string, string, number, RegExp]> = [
    ['empty', '', 0, /description is empty/],
    ['blank only', '\r\n\n', 0, /description is empty/],
    ['not starting with v=', lf(...ok.slice(1)), 1, /must start with v=0/],
    ['other version', edit(1, 'v=1'), 1, /unsupported SDP version "1"/],
    ['missing o=', edit(2, null), 2, /expected an o= \(origin\) line before s=/],
    ['o= field count', edit(2, 'o=- 1 1 IN IP4'), 2, /o= needs 6 fields .* found 5/],
    ['o= session id', edit(2, 'o=- abc 1 IN IP4 192.0.2.1'), 2, /session id "abc" is not a number/],
    ['double space', edit(2, 'o=-  1 1 IN IP4 192.0.2.1'), 2, /exactly one space/],
    ['no =', edit(3, 's'), 3, /expected <type>=<value>/],
    ['space before =', edit(3, 's =x'), 3, /expected <type>=<value>/],
    ['upper-case type', edit(3, 'S=x'), 3, /"S" is not one lower-case letter/],
    ['unknown type', edit(4, 'x=1'), 4, /unknown line type "x="/],
    ['s= after c=', lf('v=0', 'o=- 1 1 IN IP4 192.0.2.1', 'c=IN IP4 192.0.2.1', 's=-', 't=0 0'), 3, /expected an s= \(session name\) line before c=/],
    ['out of order', edit(5, 'i=late info'), 5, /i= must come before c=/],
    ['z= before t=', edit(5, 'z=0 0'), 5, /expected a t= \(timing\) line before z=/],
    ['duplicate s=', edit(4, 's=again'), 4, /more than one s= line/],
    ['empty s=', edit(3, 's='), 3, /s= must not be empty/],
    ['blank line inside', edit(4, ''), 4, /empty line/],
    ['r= without t=', edit(4, 'r=7d 1h 0 25h'), 4, /r= must follow a t= line/],
    ['missing t=', edit(5, null), 5, /expected a t= \(timing\) line before the first m= line/],
    ['missing t= at end', lf(...HEAD), 3, /expected a t= \(timing\) line before the end/],
    ['t= not numbers', edit(5, 't=now later'), 5, /t= must be <start> <stop>/],
    ['bad IPv4', edit(4, 'c=IN IP4 300.1.1.1'), 4, /"300.1.1.1" is neither an IPv4 address nor a DNS name/],
    ['family mismatch', edit(4, 'c=IN IP4 2001:db8::1'), 4, /is an IPv6 address but the address type is IP4/],
    ['multicast without TTL', edit(4, 'c=IN IP4 224.2.1.1'), 4, /IPv4 multicast address needs \/ttl/],
    ['TTL on unicast', edit(4, 'c=IN IP4 192.0.2.1/127'), 4, /only allowed after a multicast address/],
    ['c= field count', edit(4, 'c=IN IP4'), 4, /c= needs 3 fields/],
    ['m= port range', edit(6, 'm=application 70000 UDP l2tp'), 6, /m= port 70000 is out of range 0-65535/],
    ['m= port text', edit(6, 'm=application x UDP l2tp'), 6, /m= port "x" is not <port>/],
    ['m= too short', edit(6, 'm=application 1701 UDP'), 6, /m= needs at least 4 fields/],
    ['m= bad proto', edit(6, 'm=application 1701 UDP//x l2tp'), 6, /protocol part "" is not a valid token/],
    ['no c= anywhere', edit(4, null), 5, /no c= line in this media section and none at session level/],
    ['session line in media', lf(...ok, 's=late'), 7, /s= is only allowed before the first m= line/],
    ['stray CR', lf(...ok).replace('s=-', 's=a\rb'), 3, /stray carriage return/],
    ['NUL', lf(...ok).replace('s=-', 's=a\0b'), 3, /NUL/],
    ['trailing space', edit(5, 't=0 0 '), 5, /trailing white space/],
    ['attribute name', lf(...ok, 'a=:x'), 7, /attribute name "" is not a valid token/],
    ['empty attribute value', lf(...ok, 'a=tool:'), 7, /a=tool: empty value after ":"/],
    ['bandwidth', lf(...ok, 'b=AS:fast'), 7, /b= must be <type>:<kilobits per second>/],
    ['attribute before b= in media', lf(...ok, 'a=x', 'b=AS:64'), 8, /b= must come before a= in a media section/],
  ];
  for (const [name, text, line, reason] of cases) {
    test(name, () => throwsSdp(() => parseSdp(text), line, reason));
  }

  test('size and line-count bounds', () => {
    throwsSdp(() => parseSdp(`v=0\n${'a=x\n'.repeat(MAX_SDP_BYTES / 4)}`), 0, /longer than 65536 bytes/);
    throwsSdp(() => parseSdp(new Uint8Array(MAX_SDP_BYTES + 1).fill(0x61)), 0, /longer than 65536 bytes/);
    throwsSdp(() => parseSdp(lf(...ok, ...Array(MAX_SDP_LINES).fill('a=x'))), 0, /more than 1024 lines/);
  });

  test('invalid UTF-8 bytes', () => {
    throwsSdp(() => parseSdp(Buffer.concat([Buffer.from('v=0\ns='), Buffer.from([0xc3, 0x28]), Buffer.from('\n')])), 0, /not valid UTF-8/);
  });
});

test('a description using every line type survives a round trip byte for byte', () => {
  const text = crlf(
    'v=0',
    'o=jdoe 2890844526 2890842807 IN IP4 10.47.16.5',
    's=SDP Seminar',
    'i=A Seminar on the session description protocol',
    'u=http://www.example.com/seminars/sdp.pdf',
    'e=j.doe@example.com (Jane Doe)',
    'p=+1 617 555-6011',
    'c=IN IP4 224.2.17.12/127',
    'b=CT:128',
    't=2873397496 2873404696',
    'r=7d 1h 0 25h',
    't=0 0',
    'z=2882844526 -1h 2898848070 0',
    'k=prompt',
    'a=recvonly',
    'a=tool:softwire 1.0',
    'm=audio 49170 RTP/AVP 0',
    'i=voice',
    'c=IN IP6 ff15::101/3',
    'b=AS:64',
    'k=prompt',
    'a=rtpmap:0 PCMU/8000',
    'm=video 51372/2 RTP/AVP 99',
    'a=rtpmap:99 h263-1998/90000',
  );
  const s = parseSdp(text);
  assert.equal(serializeSdp(s), text);
  assert.deepEqual(s.connection, { netType: 'IN', addrType: 'IP4', address: '224.2.17.12', ttl: 127, line: 8 });
  assert.deepEqual(s.media[0].connections[0], { netType: 'IN', addrType: 'IP6', address: 'ff15::101', count: 3, line: 19 });
  assert.deepEqual(s.times, [
    { start: '2873397496', stop: '2873404696', repeats: ['7d 1h 0 25h'] },
    { start: '0', stop: '0', repeats: [] },
  ]);
  assert.deepEqual(s.attributes, [{ name: 'recvonly' }, { name: 'tool', value: 'softwire 1.0' }]);
  assert.equal(s.media[1].portCount, 2);
  assert.deepEqual(s.bandwidths, [{ type: 'CT', kbps: 128 }]);
});

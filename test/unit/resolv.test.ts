import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { RESOLV_HEADER, ResolvError, ResolvWriter, renderResolv } from '../../src/platform/resolv';

const root = mkdtempSync(join(tmpdir(), 'sw-resolv-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(root, `case${n++}`, 'resolv.conf');

describe('renderResolv', () => {
  test('header, nameservers (deduplicated, at most three), one search line', () => {
    const text = renderResolv({
      servers: ['2001:db8::53', '192.0.2.53', '2001:db8::53', '2001:db8::54', '2001:db8::55'],
      domains: ['Example.NET.', 'lan.example', 'example.net'],
    });
    assert.equal(
      text,
      `${RESOLV_HEADER}\nnameserver 2001:db8::53\nnameserver 192.0.2.53\nnameserver 2001:db8::54\nsearch example.net lan.example\n`,
    );
    assert.equal(renderResolv({ servers: [], domains: [] }), `${RESOLV_HEADER}\n`);
    // glibc takes a scoped link-local server.
    assert.match(renderResolv({ servers: ['fe80::1%br-lan'], domains: [] }), /^nameserver fe80::1%br-lan$/m);
  });

  test('refuses anything that is not an address or a plain domain name (no line injection)', () => {
    for (const servers of [['2001:db8::1\nsearch evil'], ['1.2.3.4 options ndots:15'], ['fe80::1%eth0 x'], ['fe80::1%'], ['dns.example'], ['']]) {
      assert.throws(() => renderResolv({ servers, domains: [] }), ResolvError, JSON.stringify(servers));
    }
    for (const domains of [['a.example\nnameserver 6.6.6.6'], ['a b'], ['a..b'], ['-'.repeat(64)], ['x'.repeat(64)]]) {
      assert.throws(() => renderResolv({ servers: [], domains }), ResolvError, JSON.stringify(domains));
    }
  });
});

describe('ResolvWriter', () => {
  test('writes atomically (no temp left behind), creates the directory, mode 0644', async () => {
    const path = fresh();
    const w = new ResolvWriter(path);
    assert.equal(await w.write({ servers: ['2001:db8::53'], domains: ['example.net'] }), true);
    assert.equal(readFileSync(path, 'utf8'), `${RESOLV_HEADER}\nnameserver 2001:db8::53\nsearch example.net\n`);
    assert.equal(statSync(path).mode & 0o777, 0o644);
    assert.deepEqual(readdirSync(join(path, '..')), ['resolv.conf']);
  });

  test('idempotent: the same content is not rewritten (inode and mtime unchanged), a change is', async () => {
    const path = fresh();
    const w = new ResolvWriter(path);
    const info = { servers: ['2001:db8::53'], domains: [] };
    await w.write(info);
    const before = statSync(path);
    assert.equal(await w.write(info), false);
    // A new writer (agent restart) reads the file instead of rewriting it.
    assert.equal(await new ResolvWriter(path).write(info), false);
    const same = statSync(path);
    assert.equal(same.ino, before.ino);
    assert.equal(same.mtimeMs, before.mtimeMs);
    assert.equal(await w.write({ servers: ['2001:db8::54'], domains: [] }), true);
    // rename() put a new inode in place: readers never see a half-written file.
    assert.notEqual(statSync(path).ino, before.ino);
    assert.match(readFileSync(path, 'utf8'), /nameserver 2001:db8::54\n$/);
  });

  test('an injected value leaves the previous file untouched', async () => {
    const path = fresh();
    const w = new ResolvWriter(path);
    await w.write({ servers: ['192.0.2.1'], domains: [] });
    const good = readFileSync(path, 'utf8');
    await assert.rejects(w.write({ servers: ['192.0.2.1\nnameserver 6.6.6.6'], domains: [] }), ResolvError);
    assert.equal(readFileSync(path, 'utf8'), good);
  });

  test('remove() deletes our file but never a file someone else wrote', async () => {
    const path = fresh();
    const w = new ResolvWriter(path);
    await w.write({ servers: ['192.0.2.1'], domains: [] });
    assert.equal(await w.remove(), true);
    assert.equal(existsSync(path), false);
    assert.equal(await w.remove(), false);
    writeFileSync(path, 'nameserver 9.9.9.9\n');
    assert.equal(await w.remove(), false);
    assert.equal(readFileSync(path, 'utf8'), 'nameserver 9.9.9.9\n');
    // After remove() the writer writes again even with the same content as before.
    rmSync(path);
    assert.equal(await w.write({ servers: ['192.0.2.1'], domains: [] }), true);
  });
});

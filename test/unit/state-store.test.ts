import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { StateStore, writeFileAtomic } from '../../src/platform/state-store';

const root = mkdtempSync(join(tmpdir(), 'sw-state-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshDir = () => join(root, `case${n++}`, 'softwire');

describe('StateStore', () => {
  test('missing directory: fresh state and no warning', async () => {
    assert.deepEqual(await new StateStore(freshDir()).load(), { state: {}, warnings: [] });
  });

  test('round trip of DUID and last prefix; directory 0700, file 0600 even with a permissive umask', async () => {
    const dir = freshDir();
    const store = new StateStore(dir);
    const old = process.umask(0o000);
    try {
      await store.save({ duid: '00030001AABBCCDDEEFF', lastPrefix: { prefix: '2001:db8:100:0:1::', length: 56 } });
    } finally {
      process.umask(old);
    }
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.equal(statSync(store.file).mode & 0o777, 0o600);
    assert.deepEqual(await store.load(), {
      state: { duid: '00030001aabbccddeeff', lastPrefix: { prefix: '2001:db8:100::', length: 56 } },
      warnings: [],
    });
    assert.deepEqual(readdirSync(dir), ['state.json'], 'no temporary file left');
  });

  test('an existing directory with loose permissions is tightened on save', async () => {
    const dir = freshDir();
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    chmodSync(dir, 0o755);
    await new StateStore(dir).save({ duid: '000100010000000000000000' });
    assert.equal(statSync(dir).mode & 0o777, 0o700);
  });

  test('corrupt, truncated or wrongly shaped files never throw: fresh state plus a warning', async () => {
    const dir = freshDir();
    const store = new StateStore(dir);
    mkdirSync(dir, { recursive: true });
    for (const [text, why] of [
      ['{"duid": "0003', /not valid JSON/],
      ['', /not valid JSON/],
      ['\u0000\u0001binary', /not valid JSON/],
      ['[1,2,3]', /does not hold a JSON object/],
      ['null', /does not hold a JSON object/],
    ] as const) {
      writeFileSync(store.file, text);
      const r = await store.load();
      assert.deepEqual(r.state, {}, text);
      assert.equal(r.warnings.length, 1);
      assert.match(r.warnings[0]!, why);
    }
  });

  test('bad fields are dropped one by one, good ones kept', async () => {
    const dir = freshDir();
    const store = new StateStore(dir);
    mkdirSync(dir, { recursive: true });
    writeFileSync(store.file, JSON.stringify({ duid: 'zz-not-hex', lastPrefix: { prefix: '2001:db8::', length: 56 }, extra: 1 }));
    let r = await store.load();
    assert.deepEqual(r.state, { lastPrefix: { prefix: '2001:db8::', length: 56 } });
    assert.deepEqual(r.warnings, [`${store.file}: ignoring malformed duid`]);
    writeFileSync(store.file, JSON.stringify({ duid: '000300010a0b0c0d0e0f', lastPrefix: { prefix: 'x', length: 999 } }));
    r = await store.load();
    assert.deepEqual(r.state, { duid: '000300010a0b0c0d0e0f' });
    assert.match(r.warnings[0]!, /malformed lastPrefix/);
  });

  test('an unreadable path (a directory where the file should be) is a warning too', async () => {
    const dir = freshDir();
    const store = new StateStore(dir);
    mkdirSync(store.file, { recursive: true });
    const r = await store.load();
    assert.deepEqual(r.state, {});
    assert.match(r.warnings[0]!, /cannot read .*starting fresh/);
  });

  test('save refuses malformed state instead of persisting it; update() edits in place', async () => {
    const store = new StateStore(freshDir());
    await assert.rejects(store.save({ duid: 'xyz' }), RangeError);
    await store.save({ duid: '00030001aabbccddeeff' });
    const next = await store.update((s) => ({ ...s, lastPrefix: { prefix: '2001:db8:1::', length: 48 } }));
    assert.deepEqual(next, { duid: '00030001aabbccddeeff', lastPrefix: { prefix: '2001:db8:1::', length: 48 } });
    assert.deepEqual((await store.load()).state, next);
  });
});

describe('writeFileAtomic', () => {
  test('replaces the file in one step and leaves no temp file when the write fails', async () => {
    const dir = join(root, `atomic${n++}`);
    mkdirSync(dir);
    const path = join(dir, 'f');
    await writeFileAtomic(path, 'one\n', { mode: 0o640 });
    const ino = statSync(path).ino;
    await writeFileAtomic(path, 'two\n', { mode: 0o640 });
    assert.equal(readFileSync(path, 'utf8'), 'two\n');
    assert.notEqual(statSync(path).ino, ino);
    assert.equal(statSync(path).mode & 0o777, 0o640);
    // Renaming a file over a directory fails: the old content stays and no temp is left.
    mkdirSync(join(dir, 'sub'));
    await assert.rejects(writeFileAtomic(join(dir, 'sub'), 'x'));
    assert.deepEqual(readdirSync(dir).sort(), ['f', 'sub']);
  });
});

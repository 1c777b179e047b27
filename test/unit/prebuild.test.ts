import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, test } from 'node:test';

/**
 * The committed addon binaries (prebuilds/, made by `npm run prebuilds`) are what
 * `npm ci` installs on every x64 and arm64 glibc machine without compiling, so they
 * must be built from the sources in this tree: the manifest records the hashes of
 * the sources and of each binary, and these tests fail as soon as either drifts.
 */

const REPO = resolve(__dirname, '../..');
const sha256 = (file: string) => createHash('sha256').update(readFileSync(join(REPO, file))).digest('hex');

interface Manifest {
  inputs: Record<string, string>;
  targets: Record<string, { file: string; sha256: string; compiler: string; glibc: string }>;
}
const manifest = JSON.parse(readFileSync(join(REPO, 'prebuilds/manifest.json'), 'utf8')) as Manifest;

/** ELF e_machine values (elf.h) of the architectures we ship. */
const MACHINE: Record<string, number> = { 'linux-x64': 62, 'linux-arm64': 183 };
const ET_DYN = 3;

/** The functions src/native/addon.ts calls (SoftwireAddon). */
const EXPORTS = ['tunOpen', 'icmp6Open', 'readStart', 'readStop', 'setRef', 'close', 'write', 'writeBatch', 'icmp6Send', 'icmp6Membership', 'icmp6Filter', 'udpOpen', 'udpSetPeer', 'udpSend', 'udpSendFrames', 'tunWriteFrames'];

describe('addon prebuilds', () => {
  test('were built from the sources in this tree (else: npm run prebuilds, and commit prebuilds/)', () => {
    // Every source binding.gyp compiles, the headers beside them, binding.gyp itself and the build script.
    const gyp = JSON.parse(readFileSync(join(REPO, 'binding.gyp'), 'utf8').replace(/^\s*#.*$/gm, '')) as { targets: { sources: string[] }[] };
    const sources = gyp.targets.flatMap((t) => t.sources);
    const headers = [...new Set(sources.map((s) => dirname(s)))].flatMap((d) =>
      readdirSync(join(REPO, d)).filter((f) => f.endsWith('.h')).map((f) => `${d}/${f}`),
    );
    const expected = ['binding.gyp', 'scripts/prebuilds.sh', ...sources, ...headers];
    assert.deepEqual(Object.keys(manifest.inputs).sort(), expected.sort(), 'the sources or headers changed: run "npm run prebuilds"');
    for (const [file, hash] of Object.entries(manifest.inputs)) {
      assert.equal(sha256(file), hash, `${file} changed after the prebuilds were made: run "npm run prebuilds" and commit prebuilds/`);
    }
  });

  test('are the binaries the manifest describes: linux-x64 and linux-arm64 shared objects', () => {
    assert.deepEqual(Object.keys(manifest.targets).sort(), ['linux-arm64', 'linux-x64']);
    for (const [target, t] of Object.entries(manifest.targets)) {
      assert.equal(t.file, `prebuilds/${target}/node.napi.glibc.node`);
      assert.equal(sha256(t.file), t.sha256, `${t.file} is not the file "npm run prebuilds" wrote`);
      const elf = readFileSync(join(REPO, t.file));
      assert.equal(elf.subarray(0, 4).toString('latin1'), '\x7fELF', t.file);
      assert.equal(elf[4], 2, `${t.file}: 64-bit`);
      assert.equal(elf.readUInt16LE(16), ET_DYN, `${t.file}: shared object`);
      assert.equal(elf.readUInt16LE(18), MACHINE[target], `${t.file}: machine`);
    }
  });

  test('the one for this machine loads and has every function the loader uses', (t) => {
    const target = `${process.platform}-${process.arch}`;
    const entry = manifest.targets[target];
    if (!entry) {
      t.skip(`no prebuild for ${target}`);
      return;
    }
    const mod = { exports: {} as Record<string, unknown> };
    process.dlopen(mod, join(REPO, entry.file));
    for (const name of EXPORTS) assert.equal(typeof mod.exports[name], 'function', name);
  });
});

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };

function cli(args: string[]): string {
  return execFileSync('node', ['bin/softwire', ...args], { encoding: 'utf8' });
}

test('--version prints the package version', () => {
  assert.equal(cli(['--version']).trim(), pkg.version);
});

test('--help describes the product and lists the global options', () => {
  const out = cli(['--help']);
  assert.match(out, /RFC 5571/);
  assert.match(out, /--log-level/);
  assert.match(out, /Examples:/);
});

test('an unknown verb fails with a hint', () => {
  assert.throws(() => execFileSync('node', ['bin/softwire', 'frobnicate'], { stdio: 'pipe' }), (e: { status: number; stderr: Buffer }) => {
    assert.equal(e.status, 1);
    assert.match(e.stderr.toString(), /softwire --help/);
    return true;
  });
});

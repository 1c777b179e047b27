import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { configTable } from '../../scripts/config-table';

const readme = readFileSync('README.md', 'utf8');

test('README carries the configuration table generated from the schema (run: node --import tsx scripts/config-table.ts)', () => {
  assert.ok(readme.includes(configTable()), 'README.md config table is out of date with src/config/schema.ts');
});

test('README gives a newcomer the demo and the test command', () => {
  assert.match(readme, /npm run demo/);
  assert.match(readme, /npm test/);
});

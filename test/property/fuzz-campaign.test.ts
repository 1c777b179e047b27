/**
 * The fuzz campaign of scripts/fuzz.ts, short: every target with the CI count
 * (FUZZ_RUNS, small by default), so the campaign's targets keep running and
 * keep finding nothing. Also checks that each target sees both rejected and
 * accepted inputs, i.e. its generator reaches past the first length check.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fuzzRuns } from './arbitraries';
import { runTarget, TARGETS } from './fuzz-targets';

const RUNS = Math.max(300, Math.floor(fuzzRuns() / 4));
const SEED = Number(process.env.FUZZ_SEED ?? 20240611);

for (const t of TARGETS) {
  test(`${t.name}: ${t.covers} (${RUNS} runs)`, () => {
    const r = runTarget(t, RUNS, SEED);
    assert.equal(r.failure, undefined, r.failure && `seed ${r.seed} path ${r.failure.path}\ninput ${r.failure.input}\n${r.failure.error}`);
    assert.equal(r.inputs, RUNS);
    assert.ok(r.rejected > 0, `${t.name}: no input was rejected`);
    assert.ok(r.accepted > 0, `${t.name}: no input was accepted`);
  });
}

test('a defect is reported with its seed, path and input', () => {
  const r = runTarget(
    {
      name: 'broken',
      covers: 'throws on byte 7',
      input: TARGETS[0]!.input,
      run: (b) => {
        if ((b as Uint8Array).includes(7)) throw new TypeError('boom');
        return 'accepted';
      },
    },
    2000,
    1,
  );
  assert.ok(r.failure);
  assert.match(r.failure.error, /TypeError: boom/);
  assert.match(r.failure.input, /^"hex:/);
  assert.ok(r.failure.path.length > 0);
  // The reported path replays the (shrunk) counterexample.
  const again = runTarget({ ...TARGETS[0]!, run: () => { throw new TypeError('boom'); } }, 1, r.seed, r.failure.path);
  assert.ok(again.failure);
});

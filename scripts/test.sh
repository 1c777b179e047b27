#!/usr/bin/env bash
# The test command (README, CI). Type-checks, then runs every test file under
# test/ with Node's test runner. Arguments limit the run to test/<dir> folders,
# e.g. `npm test -- unit property`.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "note: not root; tests that need network namespaces will fail" >&2
fi
dirs=("$@")
[ ${#dirs[@]} -gt 0 ] || dirs=(unit property integration interop)
files=()
for d in "${dirs[@]}"; do
  [ -d "test/$d" ] || continue
  while IFS= read -r f; do files+=("$f"); done < <(find "test/$d" -name '*.test.ts' | sort)
done
npx tsc --noEmit -p .
node scripts/build.mjs
exec node --import tsx --test --test-reporter=spec --test-concurrency="${TEST_CONCURRENCY:-2}" "${files[@]}"

#!/usr/bin/env bash
# The test command (README, CI). Sets up what is missing (scripts/setup.sh: Debian
# packages, npm ci), type-checks, then runs every test file under test/ with Node's
# test runner. Arguments limit the run to test/<dir> folders, e.g.
# `npm test -- unit property` (which needs no system packages).
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
needs=node
for d in "${dirs[@]}"; do
  case "$d" in unit | property) ;; *) needs=test ;; esac
done
bash scripts/setup.sh "$needs"
# OpenWrt's netifd, ubusd, odhcpd, rpcd and uhttpd for test/interop/*-real and luci-*
# tests, built once from the tarballs in ../shared/openwrt-rig and cached
# (/var/cache/softwire-openwrt). Without those tarballs the tests say so and skip.
if [ "$needs" = test ] && [ -f ../shared/openwrt-rig/sources.tar.gz ]; then
  echo "test: OpenWrt daemons from ../shared/openwrt-rig (built once, then cached)"
  bash test/openwrt/build.sh >/dev/null
  bash test/openwrt-luci/build.sh >/dev/null
fi
npx tsc --noEmit -p .
node scripts/build.mjs
exec node --import tsx --test --test-reporter=spec --test-concurrency="${TEST_CONCURRENCY:-2}" "${files[@]}"

#!/usr/bin/env bash
# `npm run prebuilds`: compiles the addon (src/native/softwire.c) for linux-x64 and
# linux-arm64 into prebuilds/, which is committed, so that `npm ci` needs no C
# toolchain: its install step (node-gyp-build) loads the prebuild for this machine and
# compiles from source with node-gyp only when none loads (another architecture, musl).
#
# Run it after every change to src/native/softwire.c and commit prebuilds/ with it:
# prebuilds/manifest.json records the hashes of the sources each binary was built
# from, and test/unit/prebuild.test.ts fails while they differ from the sources.
#
# Needs gcc and, for arm64, Debian's cross compiler: apt-get install gcc
# gcc-aarch64-linux-gnu. The sources and flags are binding.gyp's, plus what a release
# build wants;
# with no debug info and the source path mapped, a rebuild with the same compilers
# gives the same bytes. The binaries need only glibc (the manifest says which
# version) and Node-API 8 (Node >= 12.22), not a particular Node version.
set -euo pipefail
cd "$(dirname "$0")/.."

# Sources, defines and C flags come from binding.gyp (the source build's recipe), so
# the two builds cannot drift apart.
mapfile -t GYP < <(node -e '
const t = JSON.parse(require("fs").readFileSync("binding.gyp", "utf8").replace(/^\s*#.*$/gm, "")).targets;
if (t.length !== 1) throw new Error("binding.gyp: expected one target");
const g = t[0];
console.log((g.sources || []).join(" "));
console.log([...(g.defines || []).map((d) => "-D" + d), ...(g.cflags_c || []), ...(g.cflags || [])].join(" "));
')
read -r -a SRCS <<<"${GYP[0]}"
read -r -a GYP_FLAGS <<<"${GYP[1]}"
# What the binaries depend on: a change to any of these makes them stale. Headers
# are not in binding.gyp, so every one beside the sources counts.
mapfile -t HDRS < <(for d in $(dirname "${SRCS[@]}" | sort -u); do find "$d" -maxdepth 1 -name '*.h'; done | sort)
INPUTS=(binding.gyp scripts/prebuilds.sh "${SRCS[@]}" "${HDRS[@]}")
HEADERS=${NODE_HEADERS:-$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")/include/node}
[ -f "$HEADERS/node_api.h" ] || {
  echo "prebuild: no node_api.h in $HEADERS; set NODE_HEADERS=DIR" >&2
  exit 1
}
CFLAGS=("${GYP_FLAGS[@]}" -O3 -fPIC -shared -fvisibility=hidden -Werror "-ffile-prefix-map=$PWD=." -s)

# name (Node's process.arch)  compiler
TARGETS=("x64 gcc" "arm64 aarch64-linux-gnu-gcc")

for t in "${TARGETS[@]}"; do
  read -r arch cc <<<"$t"
  command -v "$cc" >/dev/null || {
    echo "prebuild: $cc not found (apt-get install gcc gcc-aarch64-linux-gnu)" >&2
    exit 1
  }
done

mkdir -p prebuilds
entries=()
for t in "${TARGETS[@]}"; do
  read -r arch cc <<<"$t"
  # node-gyp-build's file name tags: any Node version (napi), glibc only.
  out="prebuilds/linux-$arch/node.napi.glibc.node"
  mkdir -p "$(dirname "$out")"
  "$cc" "${CFLAGS[@]}" -I"$HEADERS" -o "$out.tmp" "${SRCS[@]}"
  mv -f "$out.tmp" "$out"
  chmod 0755 "$out"
  glibc=$(objdump -T "$out" | grep -o 'GLIBC_[0-9.]*' | sort -t. -k1,1 -k2,2n -k3,3n -u | tail -n 1)
  entries+=("$arch" "$out" "$(sha256sum "$out" | cut -d' ' -f1)" "$("$cc" --version | head -n 1)" "${glibc#GLIBC_}")
  echo "prebuild: $out ($(stat -c %s "$out") bytes, needs glibc ${glibc#GLIBC_})"
done

inputs=()
for f in "${INPUTS[@]}"; do inputs+=("$f" "$(sha256sum "$f" | cut -d' ' -f1)"); done

node -e '
const [nInputs, ...rest] = process.argv.slice(1);
const inputs = {};
for (let i = 0; i < 2 * Number(nInputs); i += 2) inputs[rest[i]] = rest[i + 1];
const targets = {};
const t = rest.slice(2 * Number(nInputs));
for (let i = 0; i < t.length; i += 5) targets[`linux-${t[i]}`] = { file: t[i + 1], sha256: t[i + 2], compiler: t[i + 3], glibc: t[i + 4] };
const manifest = { note: "written by npm run prebuilds (scripts/prebuilds.sh); test/unit/prebuild.test.ts checks it", inputs, targets };
require("node:fs").writeFileSync("prebuilds/manifest.json", JSON.stringify(manifest, null, 2) + "\n");
' "${#INPUTS[@]}" "${inputs[@]}" "${entries[@]}"
echo "prebuild: prebuilds/manifest.json; commit prebuilds/ together with ${INPUTS[*]}"

#!/usr/bin/env bash
# Runs the README's two commands on a fresh Debian 12 in a chroot, the way a newcomer
# would: as root, in a clone under /root (0700). Not part of `npm test`; run it after
# changing the set-up (scripts/setup.sh, scripts/deps/, the addon prebuilds).
#
#   scripts/fresh-machine-check.sh [options] WORKDIR
#     --base DIR     copy DIR (an earlier --variant=minbase debootstrap, kept pristine)
#                    instead of running debootstrap (7 to 10 minutes here) again
#     --ref REF      the branch or commit to clone (default: the current branch)
#     --no-tests     run only `npm run demo`, not `npm test`
#     --keep         leave WORKDIR/root in place afterwards (default: removed)
#     MIRROR=URL     the Debian mirror (default http://deb.debian.org/debian)
#
# The machine: `debootstrap --variant=minbase bookworm` plus git, ca-certificates and
# iproute2, and Node 20 copied from this machine (its node binary and npm), because
# bookworm's own nodejs is 18. Nothing else: no compiler, no python, no l2tpns.
#
# The kernel is this machine's, shared: the chroot runs in its own mount namespace
# (unshare -m) with fresh /proc, /sys and /run, /dev bound from the host (for
# /dev/net/tun), so `ip netns` works inside and every mount goes away with it. Its
# network is the host's, so a policy-rc.d keeps the Debian packages' daemons
# (l2tpns, freeradius) from starting in the host's root namespace when apt installs
# them (on a real machine scripts/setup.sh stops and disables them instead).
#
# Output: WORKDIR/logs/demo.log and WORKDIR/logs/test.log, each line prefixed with the seconds
# since that command started; a summary at the end.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)

base='' ref='' tests=1 keep=0
while [ $# -gt 1 ]; do
  case "$1" in
    --base) base=$2; shift 2 ;;
    --ref) ref=$2; shift 2 ;;
    --no-tests) tests=0; shift ;;
    --keep) keep=1; shift ;;
    *) break ;;
  esac
done
[ $# -eq 1 ] || { sed -n '2,/^set -e/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 2; }
[ "$(id -u)" = 0 ] || { echo "fresh-machine-check: needs root (debootstrap, chroot, namespaces)" >&2; exit 2; }
WORK=$(realpath -m "$1")
ROOT=$WORK/root
MIRROR=${MIRROR:-http://deb.debian.org/debian}
ref=${ref:-$(git -C "$REPO" rev-parse --abbrev-ref HEAD)}
GIT_DIR=$(cd "$REPO" && realpath "$(git rev-parse --git-common-dir)")

[ ! -e "$ROOT" ] || { echo "fresh-machine-check: $ROOT exists; remove it first" >&2; exit 2; }
mkdir -p "$WORK"
if [ -n "$base" ]; then
  echo "fresh-machine-check: copying $base"
  cp -a "$base" "$ROOT"
else
  command -v debootstrap >/dev/null || { echo "fresh-machine-check: apt-get install debootstrap" >&2; exit 2; }
  echo "fresh-machine-check: debootstrap bookworm into $ROOT (log: $WORK/debootstrap.log)"
  debootstrap --variant=minbase --include=git,ca-certificates,iproute2 bookworm "$ROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1
fi
[ $keep = 1 ] || trap 'rm -rf --one-file-system "$ROOT"' EXIT

# Node 20 from this machine: the binary and npm (with npx), nothing else.
node_bin=$(readlink -f "$(command -v node)")
npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
install -m 0755 "$node_bin" "$ROOT/usr/local/bin/node"
mkdir -p "$ROOT/usr/local/lib/node_modules"
cp -a "$npm_dir" "$ROOT/usr/local/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$ROOT/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$ROOT/usr/local/bin/npx"
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
# Where this machine reaches the network through a TLS-inspecting proxy, its CA is a
# local certificate; the chroot gets the same ones (and Node is told, as here), or
# npm cannot reach the registry. That is this network's need, not softwire's.
extra_ca=()
if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
  cp /usr/local/share/ca-certificates/*.crt "$ROOT/usr/local/share/ca-certificates/"
  chroot "$ROOT" update-ca-certificates >/dev/null 2>&1
  extra_ca=(NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt)
fi
printf '#!/bin/sh\n# fresh-machine-check: no daemons in the host'"'"'s network namespace\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
chmod 0755 "$ROOT/usr/sbin/policy-rc.d"
mkdir -p "$ROOT/mnt/softwire.git"

# One script inside: the clone, then the two commands, each timed line by line.
cat >"$ROOT/fresh-check-inside.sh" <<EOF
#!/bin/bash
set -uo pipefail
stamp() { local t0=\$(date +%s%N) d; while IFS= read -r l; do d=\$(( (\$(date +%s%N) - t0) / 100000000 )); printf '[%5d.%ds] %s\n' \$((d / 10)) \$((d % 10)) "\$l"; done; }
cd /root
git clone -q --no-local --branch "$ref" /mnt/softwire.git softwire || exit 10
cd softwire
echo "clone: \$(git log -1 --format='%h %s')"
echo "node \$(node --version), npm \$(npm --version), \$(. /etc/os-release; echo \$PRETTY_NAME), /root mode \$(stat -c %a /root)"
s=\$(date +%s); npm run demo 2>&1 | stamp > /fresh/demo.log; rc=\${PIPESTATUS[0]}; echo "npm run demo: exit \$rc in \$((\$(date +%s)-s)) s"
[ \$rc = 0 ] || exit 11
if [ $tests = 1 ]; then
  s=\$(date +%s); npm test 2>&1 | stamp > /fresh/test.log; rc=\${PIPESTATUS[0]}; echo "npm test: exit \$rc in \$((\$(date +%s)-s)) s"
  grep -E '^\[ *[0-9.]+s\] # (tests|pass|fail|cancelled|skipped) ' /fresh/test.log
  exit \$rc
fi
EOF
chmod 0755 "$ROOT/fresh-check-inside.sh"
mkdir -p "$ROOT/fresh" "$WORK/logs"

echo "fresh-machine-check: cloning $ref from $GIT_DIR and running the two commands in the chroot"
set +e
unshare --mount --propagation private bash -c '
  set -e
  R=$1
  # ip netns exec remounts / as a slave, which needs / to be a mount point.
  mount --bind "$R" "$R"
  mount -t proc proc "$R/proc"
  mount -t sysfs sysfs "$R/sys"
  mount --rbind /dev "$R/dev"
  mount -t tmpfs -o mode=0755 tmpfs "$R/run"
  mkdir -p "$R/run/netns"
  mount --bind -o ro "$2" "$R/mnt/softwire.git"
  mount --bind "$3" "$R/fresh"
  shift 3
  exec chroot "$R" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@" /fresh-check-inside.sh
' _ "$ROOT" "$GIT_DIR" "$WORK/logs" "${extra_ca[@]}"
rc=$?
set -e
echo "fresh-machine-check: exit $rc (logs: $WORK/logs/demo.log, $WORK/logs/test.log)"
exit $rc

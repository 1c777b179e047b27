#!/usr/bin/env bash
# Builds an opkg package of softwire without the OpenWrt SDK:
#
#   scripts/build-ipk.sh [ARCH]            -> dist/softwire_<version>_<ARCH>.ipk
#   scripts/build-ipk.sh --stage DIR       -> only lay out the installed files under DIR
#
# ARCH is an OpenWrt package architecture (x86_64, aarch64_generic, arm_cortex-a7, ...);
# the default is this machine's. The native addon (a local source build,
# build/Release/softwire.node, for this machine's ARCH; else the committed prebuild
# for ARCH, prebuilds/linux-<x64|arm64>/) and netlink's prebuilt binding are taken as
# they are, so they must match ARCH *and* the target's C library: those prebuilds
# are glibc binaries and do not load on OpenWrt's musl. For a router, build with the
# SDK (openwrt/Makefile), which compiles both with the target toolchain; this script
# is for CI, tests and glibc targets. Overrides: SOFTWIRE_ADDON=FILE (addon for ARCH),
# NETLINK_NODE=FILE (netlink binding for ARCH), SOURCE_DATE_EPOCH (timestamps;
# default: last commit).
#
# Format: the outer container is a gzip'd tar holding ./debian-binary, ./data.tar.gz
# and ./control.tar.gz in that order, as OpenWrt's ipkg-build writes it. opkg reads
# both this and the Debian "ar" layout (it checks for the "!<arch>" magic, else
# gzip), but only the tar form is what OpenWrt's own feeds carry. Installed-Size is
# in bytes, as OpenWrt's tools count it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

die() {
  echo "build-ipk: $*" >&2
  exit 1
}

# OpenWrt package architecture -> Node's process.arch (netlink's prebuild folder).
node_arch_of() {
  case "$1" in
    x86_64) echo x64 ;;
    i386* | i486* | i686*) echo ia32 ;;
    aarch64*) echo arm64 ;;
    arm_*) echo arm ;;
    *) echo "" ;;
  esac
}

host_arch() {
  case "$(uname -m)" in
    x86_64) echo x86_64 ;;
    aarch64) echo aarch64_generic ;;
    armv7l) echo arm_cortex-a7_neon-vfpv4 ;;
    i?86) echo i386_pentium4 ;;
    *) die "no OpenWrt architecture known for $(uname -m); give one as the argument" ;;
  esac
}

# install MODE SRC DEST: copy with an exact mode, creating parent directories.
put() {
  mkdir -p "$(dirname "$3")"
  cp "$2" "$3"
  chmod "$1" "$3"
}

# Lays out every installed file under $1. Used for the ipk below and by the SDK
# Makefile (Package/softwire/install), so the two cannot drift apart.
stage() {
  local dest=$1 addon=$2 netlink_node=$3 netlink_rel=$4
  local lib="$dest/usr/lib/softwire"
  [ -f dist/softwire.js ] || die "dist/softwire.js missing; run: node scripts/build.mjs"
  [ -f "$addon" ] || die "native addon $addon missing; run: npm ci"
  [ -f "$netlink_node" ] || die "netlink binding $netlink_node missing"
  put 0755 openwrt/files/softwire.launcher "$dest/usr/bin/softwire"
  put 0644 dist/softwire.js "$lib/softwire.js"
  # src/native/addon.ts looks for softwire.node beside the bundle (and in build/Release).
  put 0755 "$addon" "$lib/softwire.node"
  # netlink stays outside the bundle because it loads its own .node through node-gyp-build.
  local nl=node_modules/netlink ngb=node_modules/node-gyp-build
  put 0644 "$nl/package.json" "$lib/$nl/package.json"
  put 0644 "$nl/LICENSE" "$lib/$nl/LICENSE"
  (cd "$nl" && find dist -name '*.js' -type f) | while read -r f; do put 0644 "$nl/$f" "$lib/$nl/$f"; done
  put 0755 "$netlink_node" "$lib/$nl/$netlink_rel"
  for f in package.json LICENSE index.js node-gyp-build.js; do put 0644 "$ngb/$f" "$lib/$ngb/$f"; done
  put 0755 openwrt/files/softwire.init "$dest/etc/init.d/softwire"
  # Read by procd's ujail when the service runs unprivileged (see softwire.init).
  put 0644 openwrt/files/softwire.capabilities.json "$dest/etc/capabilities/softwire.json"
  # May hold a password.
  put 0600 openwrt/files/softwire.config "$dest/etc/config/softwire"
  put 0755 openwrt/files/softwire.proto "$dest/lib/netifd/proto/softwire.sh"
  put 0755 openwrt/files/softwire.script "$dest/lib/netifd/softwire.script"
  find "$dest" -type d -exec chmod 0755 {} +
}

# det_tar, pack_ipk: shared with scripts/build-luci-ipk.sh.
. scripts/ipk-pack.sh

# The addon for OpenWrt architecture $1 (see the top of this file), or nothing.
addon_for() {
  if [ -n "${SOFTWIRE_ADDON:-}" ]; then
    echo "$SOFTWIRE_ADDON"
  elif [ "$1" = "$(host_arch 2>/dev/null || true)" ] && [ -f build/Release/softwire.node ]; then
    echo build/Release/softwire.node
  elif [ -n "$(node_arch_of "$1")" ] && [ -f "prebuilds/linux-$(node_arch_of "$1")/node.napi.glibc.node" ]; then
    echo "prebuilds/linux-$(node_arch_of "$1")/node.napi.glibc.node"
  fi
}

if [ "${1:-}" = "--stage" ]; then
  [ $# -ge 2 ] || die "usage: $0 --stage DIR [ARCH]"
  dest=$(realpath -m "$2")
  addon=${SOFTWIRE_ADDON:-$(addon_for "${3:-$(host_arch)}")}
  [ -n "$addon" ] || die "no addon for ${3:-$(host_arch)}: give SOFTWIRE_ADDON=FILE (softwire.node compiled for it), or use the SDK"
  if [ -n "${NETLINK_NODE:-}" ]; then
    # A binding built for the target (the SDK build): node-gyp-build prefers build/Release.
    stage "$dest" "$addon" "$NETLINK_NODE" build/Release/netlink_binding.node
  else
    arch=${3:-$(host_arch)}
    node_arch=$(node_arch_of "$arch")
    [ -n "$node_arch" ] || die "netlink has no prebuild for $arch; build it for the target and pass NETLINK_NODE=FILE"
    prebuild="prebuilds/linux-$node_arch/node.napi.node"
    stage "$dest" "$addon" "node_modules/netlink/$prebuild" "$prebuild"
  fi
  exit 0
fi

ARCH=${1:-$(host_arch)}
case "$ARCH" in
  *[!A-Za-z0-9_-]* | "") die "invalid architecture name '$ARCH'" ;;
esac
VERSION=$(node -p "require('./package.json').version")
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
  SOURCE_DATE_EPOCH=$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || echo 0)
fi
export SOURCE_DATE_EPOCH

[ -n "$(addon_for "$ARCH")" ] || die "no addon for $ARCH: give SOFTWIRE_ADDON=FILE (softwire.node compiled for $ARCH), or use the SDK"

node scripts/build.mjs

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$ROOT/scripts/build-ipk.sh" --stage "$work/data" "$ARCH"

installed_size=$(find "$work/data" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')

mkdir -p "$work/control"
description=$(node -p "require('./package.json').description")
cat >"$work/control/control" <<EOF
Package: softwire
Version: $VERSION
Depends: libc, node, kmod-tun, libstdcpp
Source: softwire
SourceName: softwire
License: MIT
Section: net
SourceDateEpoch: $SOURCE_DATE_EPOCH
Architecture: $ARCH
Installed-Size: $installed_size
Maintainer: softwire maintainers
Require-User: softwire=5571:softwire=5571
Description: $description
 Dials an L2TPv2 Softwire Concentrator, runs PPP over it and provisions IPv6
 (address, delegated prefix, DNS) or IPv4. Runs as a procd service
 (/etc/config/softwire) or as a netifd protocol (proto 'softwire').
EOF
printf '/etc/config/softwire\n' >"$work/control/conffiles"
cat >"$work/control/postinst" <<'EOF'
#!/bin/sh
# Only on a live system, not when an image is assembled into $IPKG_INSTROOT.
[ -z "$IPKG_INSTROOT" ] || exit 0
# The unprivileged service user (Require-User above), as OpenWrt's default_postinst makes it.
if [ -s /lib/functions.sh ]; then
	. /lib/functions.sh
	command -v add_group_and_user >/dev/null && add_group_and_user softwire
fi
/etc/init.d/softwire enable
/etc/init.d/softwire start
echo "softwire: restart netifd (/etc/init.d/network restart) to use proto 'softwire' interfaces"
exit 0
EOF
cat >"$work/control/prerm" <<'EOF'
#!/bin/sh
[ -z "$IPKG_INSTROOT" ] || exit 0
/etc/init.d/softwire stop
/etc/init.d/softwire disable
exit 0
EOF
chmod 0644 "$work/control/control" "$work/control/conffiles"
chmod 0755 "$work/control/postinst" "$work/control/prerm"

out="dist/softwire_${VERSION}_${ARCH}.ipk"
pack_ipk "$work" "$out"
echo "built $out ($(stat -c %s "$out") bytes; installed size $installed_size bytes)"

#!/usr/bin/env bash
# Builds the LuCI protocol package luci-proto-softwire without the OpenWrt SDK:
#
#   scripts/build-luci-ipk.sh             -> dist/luci-proto-softwire_<version>_all.ipk
#   scripts/build-luci-ipk.sh --stage DIR -> only lay out the installed files under DIR
#
# The files are those of openwrt/luci-proto-softwire, installed as the LuCI feed's
# luci.mk installs a luci-proto-* package: htdocs/ under /www, root/ under /. The
# JavaScript is architecture-independent, hence "all". The SDK build of the same
# folder (its Makefile, through luci.mk) gives the same files. Version: package.json's;
# SOURCE_DATE_EPOCH (timestamps) defaults to the last commit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PKG=openwrt/luci-proto-softwire

die() {
  echo "build-luci-ipk: $*" >&2
  exit 1
}

# Lays out every installed file under $1, with the modes luci.mk gives them.
stage() {
  local dest=$1 f
  [ -d "$PKG/htdocs" ] || die "$PKG/htdocs missing"
  (cd "$PKG/htdocs" && find . -type f) | while read -r f; do
    install -D -m 0644 "$PKG/htdocs/$f" "$dest/www/$f"
  done
  (cd "$PKG/root" && find . -type f) | while read -r f; do
    # rpcd exec plugins must be executable; everything else is data.
    case "$f" in
    ./usr/libexec/rpcd/*) install -D -m 0755 "$PKG/root/$f" "$dest/$f" ;;
    *) install -D -m 0644 "$PKG/root/$f" "$dest/$f" ;;
    esac
  done
  find "$dest" -type d -exec chmod 0755 {} +
}

if [ "${1:-}" = "--stage" ]; then
  [ $# -ge 2 ] || die "usage: $0 --stage DIR"
  stage "$(realpath -m "$2")"
  exit 0
fi
[ $# -eq 0 ] || die "usage: $0 [--stage DIR]"

VERSION=$(node -p "require('./package.json').version")
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
  SOURCE_DATE_EPOCH=$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || echo 0)
fi
export SOURCE_DATE_EPOCH
. scripts/ipk-pack.sh

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stage "$work/data"
installed_size=$(find "$work/data" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')

mkdir -p "$work/control"
cat >"$work/control/control" <<CONTROL
Package: luci-proto-softwire
Version: $VERSION
Depends: libc, luci-base, softwire
Source: softwire
SourceName: luci-proto-softwire
License: MIT
Section: luci
SourceDateEpoch: $SOURCE_DATE_EPOCH
Architecture: all
Installed-Size: $installed_size
Maintainer: softwire maintainers
Description: LuCI support for Softwire (L2TPv2, RFC 5571)
 The "softwire" protocol on LuCI's interface page (Network -> Interfaces): the
 options of proto 'softwire' with their validation, and the agent's status.
CONTROL
# What luci.mk's postinst does: drop LuCI's caches, and make rpcd read the new ACL
# and exec plugin.
cat >"$work/control/postinst" <<'POSTINST'
#!/bin/sh
[ -n "$IPKG_INSTROOT" ] || {
	rm -f /tmp/luci-indexcache.*
	rm -rf /tmp/luci-modulecache/
	/etc/init.d/rpcd reload 2>/dev/null
}
exit 0
POSTINST
chmod 0644 "$work/control/control"
chmod 0755 "$work/control/postinst"

out="dist/luci-proto-softwire_${VERSION}_all.ipk"
pack_ipk "$work" "$out"
echo "built $out ($(stat -c %s "$out") bytes; installed size $installed_size bytes)"

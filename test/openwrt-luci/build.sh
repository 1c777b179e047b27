#!/bin/bash
# Builds OpenWrt's rpcd and uhttpd (the server side LuCI talks to: uhttpd's ubus
# JSON-RPC endpoint and rpcd's session/uci/file objects) for this machine from
# OpenWrt's own sources, once, into a cache directory, on top of the base build
# (libubox, ubus, uci, ucode, netifd):
#
#   test/openwrt-luci/build.sh        prints "BASE_PREFIX LUCI_ROOT", building first if needed
#
# LUCI_ROOT holds usr/sbin/rpcd, usr/bin/uhttpd, usr/lib/rpcd/*.so and usr/lib/uhttpd_*.so,
# built for prefix /usr: copy its usr/lib/rpcd into the root rpcd runs in.
#
# The base prefix is $OPENWRT_PREFIX if set, else what test/openwrt/build.sh prints
# (the netifd tests' cached build, made first if needed). Sources:
# $OPENWRT_SOURCES/sources-extra.tar.gz (default <repo>/../shared/openwrt-rig; commits
# in its README.md). The prefix is $OPENWRT_CACHE/luci-<sha256 of the tarball, this
# script and the base path, 16 hex>; a build that did not finish leaves nothing behind
# (built under a temporary name, renamed when complete). -Wno-stringop-overread: these
# projects build with -Werror, and Debian's gcc 12 warns about uhttpd's client.c where
# OpenWrt's does not. Needs gcc, make, cmake, pkg-config, libjson-c-dev, libcrypt-dev.
# About a minute on 2 cores.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
SOURCES="${OPENWRT_SOURCES:-$REPO/../shared/openwrt-rig}"
CACHE="${OPENWRT_CACHE:-/var/cache/softwire-openwrt}"
JOBS="${JOBS:-$(nproc)}"
die() { echo "openwrt-luci/build.sh: $*" >&2; exit 1; }
for t in sources.tar.gz sources-extra.tar.gz; do
	[ -f "$SOURCES/$t" ] || die "$SOURCES/$t missing (OPENWRT_SOURCES)"
done
for tool in gcc make cmake pkg-config; do
	command -v "$tool" >/dev/null || die "$tool missing (apt-get install cmake pkg-config libjson-c-dev libcrypt-dev build-essential)"
done
mkdir -p "$CACHE"

# The base (libubox, ubus, uci, ucode, netifd): the netifd tests' cached build.
BASE="${OPENWRT_PREFIX:-$(bash "$REPO/test/openwrt/build.sh" | tail -n 1)}"
[ -x "$BASE/sbin/ubusd" ] || die "base prefix $BASE has no sbin/ubusd"
[ -f "$BASE/lib/libucode.so" ] || [ -f "$BASE/lib/libucode.so.0" ] || die "base prefix $BASE has no libucode"

KEY="$(cat "$SOURCES/sources-extra.tar.gz" "$0" <(echo "$BASE") | sha256sum | cut -c1-16)"
PREFIX="$CACHE/luci-$KEY"
if [ -x "$PREFIX/usr/sbin/rpcd" ] && [ -x "$PREFIX/usr/bin/uhttpd" ]; then
	echo "$BASE $PREFIX"
	exit 0
fi
exec 9>"$CACHE/.lock-luci"
flock 9
if [ -x "$PREFIX/usr/sbin/rpcd" ] && [ -x "$PREFIX/usr/bin/uhttpd" ]; then
	echo "$BASE $PREFIX"
	exit 0
fi

WORK="$(mktemp -d "$CACHE/.build-luci-XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
tar -xzf "$SOURCES/sources-extra.tar.gz" -C "$WORK" rpcd uhttpd
STAGE="$WORK/prefix"
export PKG_CONFIG_PATH="$BASE/lib/pkgconfig"
# Installed as on OpenWrt (prefix /usr) into PREFIX as a staging root: rpcd compiles
# its paths in from the prefix (/usr/share/rpcd/acl.d, /usr/lib/rpcd,
# /usr/libexec/rpcd), and the test runs it in a root where those hold the package's
# files. RPATH: PREFIX/usr/lib (uhttpd dlopens its ubus and ucode plugins by name)
# and the base (libubox, libubus, libuci, libucode).
CMAKE_COMMON=(-DCMAKE_INSTALL_PREFIX=/usr -DCMAKE_PREFIX_PATH="$BASE"
	-DCMAKE_INSTALL_LIBDIR=lib -DCMAKE_BUILD_TYPE=RelWithDebInfo
	"-DCMAKE_C_FLAGS=-D_GNU_SOURCE= -I$BASE/include -Wno-stringop-overread"
	"-DCMAKE_EXE_LINKER_FLAGS=-L$BASE/lib" "-DCMAKE_SHARED_LINKER_FLAGS=-L$BASE/lib" "-DCMAKE_MODULE_LINKER_FLAGS=-L$BASE/lib"
	-DCMAKE_INSTALL_RPATH="$PREFIX/usr/lib;$BASE/lib" -DCMAKE_BUILD_WITH_INSTALL_RPATH=ON)

build() { # name [cmake args...]
	local name="$1"; shift
	echo "=== $name" >&2
	cmake -S "$WORK/$name" -B "$WORK/build-$name" "${CMAKE_COMMON[@]}" "$@" >"$WORK/$name.cmake.log" 2>&1 \
		|| { tail -30 "$WORK/$name.cmake.log" >&2; die "$name: cmake failed"; }
	make -C "$WORK/build-$name" -j"$JOBS" >"$WORK/$name.make.log" 2>&1 \
		|| { tail -40 "$WORK/$name.make.log" >&2; die "$name: make failed"; }
	make -C "$WORK/build-$name" DESTDIR="$STAGE" install >>"$WORK/$name.make.log" 2>&1 \
		|| { tail -20 "$WORK/$name.make.log" >&2; die "$name: make install failed"; }
}

# rpcd: session, uci, file and rc objects, and the ucode plugin host. No iwinfo (no
# wireless here); no rpc-sys (package list, sysupgrade: not used by the interface
# page, and its sys.c calls strlcpy, which Debian 12's glibc 2.36 lacks).
build rpcd -DIWINFO_SUPPORT=OFF -DFILE_SUPPORT=ON -DRPCSYS_SUPPORT=OFF -DUCODE_SUPPORT=ON
# uhttpd: static files and the ubus JSON-RPC endpoint (/ubus) LuCI's rpc.js posts to.
# No TLS, no Lua, no ucode handler (LuCI's ucode dispatcher is not run here: it needs
# LuCI's own C modules).
build uhttpd -DTLS_SUPPORT=OFF -DLUA_SUPPORT=OFF -DUBUS_SUPPORT=ON -DUCODE_SUPPORT=OFF
[ -x "$STAGE/usr/sbin/rpcd" ] && [ -x "$STAGE/usr/bin/uhttpd" ] || die "rpcd/uhttpd not installed"
rm -rf "$PREFIX"
mv "$STAGE" "$PREFIX"
echo "$BASE $PREFIX"

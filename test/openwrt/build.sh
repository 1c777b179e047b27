#!/bin/bash
# Builds OpenWrt's netifd, ubusd, uci, jshn and odhcpd (with libnl-tiny, libubox,
# ucode, udebug) for this machine from OpenWrt's own sources, once, into a cache
# directory named for the sources and this script:
#
#   test/openwrt/build.sh            prints the prefix (building it first if needed)
#
# The sources are not in the repository: sources.tar.gz and sources-extra.tar.gz
# (their commits: shared/openwrt-rig/README.md) are read from $OPENWRT_SOURCES,
# default <repo>/../shared/openwrt-rig. The prefix is
# $OPENWRT_CACHE/<sha256 of both tarballs and this script, 16 hex digits>
# (OPENWRT_CACHE default /var/cache/softwire-openwrt); a build that did not finish
# leaves no prefix behind (it is built in a temporary directory and renamed).
# Needs gcc, make, cmake, pkg-config, libjson-c-dev. About 2 minutes on 2 idle cores
# (8 on this busy CI machine); .ci/run builds it before the tests.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
SOURCES="${OPENWRT_SOURCES:-$REPO/../shared/openwrt-rig}"
CACHE="${OPENWRT_CACHE:-/var/cache/softwire-openwrt}"
for t in sources.tar.gz sources-extra.tar.gz; do
	[ -f "$SOURCES/$t" ] || { echo "build.sh: $SOURCES/$t missing (OPENWRT_SOURCES)" >&2; exit 1; }
done
for tool in gcc make cmake pkg-config; do
	command -v "$tool" >/dev/null || { echo "build.sh: $tool missing (apt-get install cmake pkg-config libjson-c-dev build-essential)" >&2; exit 1; }
done
KEY="$(cat "$SOURCES/sources.tar.gz" "$SOURCES/sources-extra.tar.gz" "$0" | sha256sum | cut -c1-16)"
PREFIX="$CACHE/$KEY"
if [ -x "$PREFIX/sbin/netifd" ] && [ -x "$PREFIX/sbin/odhcpd" ]; then
	echo "$PREFIX"
	exit 0
fi

mkdir -p "$CACHE"
# One build at a time (two test files may ask at once); the second waits, then finds it.
exec 9>"$CACHE/.lock"
flock 9
if [ -x "$PREFIX/sbin/netifd" ] && [ -x "$PREFIX/sbin/odhcpd" ]; then
	echo "$PREFIX"
	exit 0
fi

# Built where it will live (RPATH), under a temporary name, renamed when complete:
# the binaries find their libraries through the final path, bind-mounted meanwhile.
WORK="$(mktemp -d "$CACHE/.build-XXXXXX")"
trap 'umount "$PREFIX" 2>/dev/null || true; rmdir "$PREFIX" 2>/dev/null || true; rm -rf "$WORK"' EXIT
SRC="$WORK/src"
BUILD="$WORK/build"
STAGE="$WORK/prefix"
mkdir -p "$SRC" "$BUILD" "$STAGE" "$PREFIX"
mount --bind "$STAGE" "$PREFIX"
tar -xzf "$SOURCES/sources.tar.gz" -C "$SRC"
tar -xzf "$SOURCES/sources-extra.tar.gz" -C "$SRC" odhcpd
JOBS="$(nproc)"

export PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig:$PREFIX/share/pkgconfig"
export LD_LIBRARY_PATH="$PREFIX/lib"
CMAKE_COMMON=(-DCMAKE_INSTALL_PREFIX="$PREFIX" -DCMAKE_PREFIX_PATH="$PREFIX"
	-DCMAKE_INSTALL_LIBDIR=lib -DCMAKE_BUILD_TYPE=RelWithDebInfo
	-DCMAKE_INSTALL_RPATH="$PREFIX/lib" -DCMAKE_BUILD_WITH_INSTALL_RPATH=ON)

build() { # name [cmake args...]
	local name="$1"; shift
	echo "build.sh: $name" >&2
	# In the source tree, as OpenWrt builds packages: netifd's ethtool-modes.h rule runs
	# a script from the build directory.
	cp -a "$SRC/$name" "$BUILD/$name"
	cmake -S "$BUILD/$name" -B "$BUILD/$name" "${CMAKE_COMMON[@]}" "$@" >"$BUILD/$name.cmake.log" 2>&1 \
		|| { tail -30 "$BUILD/$name.cmake.log" >&2; exit 1; }
	make -C "$BUILD/$name" -j"$JOBS" >"$BUILD/$name.make.log" 2>&1 \
		|| { tail -40 "$BUILD/$name.make.log" >&2; exit 1; }
	make -C "$BUILD/$name" install >>"$BUILD/$name.make.log" 2>&1 \
		|| { tail -20 "$BUILD/$name.make.log" >&2; exit 1; }
}

build libnl-tiny
build libubox -DBUILD_LUA=OFF -DBUILD_EXAMPLES=OFF -DUNIT_TESTING=OFF
build ubus -DBUILD_LUA=OFF -DBUILD_EXAMPLES=OFF -DUNIT_TESTING=OFF
build uci -DBUILD_LUA=OFF -DUNIT_TESTING=OFF
# netifd links libucode; shell protocol handlers need none of its modules, so the
# netlink ones (they would need libnl-tiny's genl headers) are left out.
build ucode -DNL80211_SUPPORT=OFF -DRTNL_SUPPORT=OFF -DZLIB_SUPPORT=OFF -DDIGEST_SUPPORT=OFF \
	-DUBUS_SUPPORT=ON -DUCI_SUPPORT=ON -DULOOP_SUPPORT=ON
build udebug
# libnl-tiny passed as OpenWrt's netifd package does; -D_GNU_SOURCE because glibc
# declares vasprintf (used by ucode's util.h) only with it.
build netifd "-DCMAKE_C_FLAGS=-D_GNU_SOURCE= -I$PREFIX/include/libnl-tiny" \
	"-DLIBNL_LIBS=-L$PREFIX/lib -lnl-tiny"
# odhcpd as OpenWrt's odhcpd-ipv6only package plus DHCPv4 off: ubus on (it reads
# netifd's interfaces and prefix assignments over ubus). Debian 12's gcc 12 sees a
# maybe-uninitialized false positive in dhcpv6-ia.c that OpenWrt's gcc does not.
build odhcpd -DUBUS=1 -DDHCPV4_SUPPORT=0 -DCMAKE_C_FLAGS=-Wno-error=maybe-uninitialized
# What an OpenWrt image provides beside the binaries: netifd's shell API, base-files'
# functions.sh (jshn.sh is installed by libubox).
mkdir -p "$STAGE/share/openwrt/lib/netifd"
cp "$SRC/netifd/scripts/netifd-proto.sh" "$SRC/netifd/scripts/utils.sh" "$STAGE/share/openwrt/lib/netifd/"
cp "$SRC/openwrt-base-files/lib/functions.sh" "$STAGE/share/openwrt/lib/functions.sh"

umount "$PREFIX"
rmdir "$PREFIX"
mv "$STAGE" "$PREFIX"
echo "$PREFIX"

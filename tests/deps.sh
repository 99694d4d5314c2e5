#!/bin/sh
# Install the Debian packages the build, the tests and the demo need, only
# when something is missing. Uses sudo when not root.
set -eu
PKGS="libevent msgpack sqlite3 libcrypto yaml-0.1 jansson inih libcurl check zlib"
missing=0
command -v pkg-config >/dev/null 2>&1 || missing=1
if [ $missing = 0 ]; then
	for p in $PKGS; do pkg-config --exists "$p" || { missing=1; break; }; done
fi
for c in cc clang bwrap node npm; do command -v $c >/dev/null 2>&1 || missing=1; done
# the regress and bench helpers run Debian's python3 (standard library only)
[ -x /usr/bin/python3 ] || missing=1
[ -e /usr/lib/llvm-14/lib/clang/14.0.6/lib/linux/libclang_rt.fuzzer-x86_64.a ] || \
	ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-*.a >/dev/null 2>&1 || missing=1
[ $missing = 0 ] && exit 0
SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo
echo "deps: installing build dependencies with apt-get"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
	build-essential pkg-config libevent-dev libmsgpack-dev libsqlite3-dev libssl-dev \
	libyaml-dev libjansson-dev libinih-dev libcurl4-openssl-dev check zlib1g-dev \
	clang libclang-rt-dev bubblewrap nodejs npm python3 ca-certificates >/dev/null

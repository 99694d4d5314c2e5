#!/bin/sh
# deps.sh: install the Debian packages that are missing, and only those.
# Each need is probed on its own (a pkg-config module, a command, a file) and
# mapped to the package that provides it; nothing present is asked for again,
# so a Node.js from another apt source (its nodejs ships npm) is left alone.
#   sh tests/deps.sh demo    the build and `make demo`
#   sh tests/deps.sh check   the above plus what `make check` runs (default)
#   sh tests/deps.sh bench   the above plus the Python baselines of `make bench`
# Uses apt-get, via sudo when not root.
set -eu

mode=${1:-check}
case $mode in
demo | check | bench) ;;
*)
	echo "usage: sh tests/deps.sh [demo|check|bench]" >&2
	exit 2
	;;
esac

WANT=
TROUBLE=

# need PACKAGE WHY: queue PACKAGE once and say why.
need() {
	case " $WANT " in
	*" $1 "*) ;;
	*) WANT="${WANT:+$WANT }$1" ;;
	esac
	echo "deps: missing $2 -> $1"
}

have() { command -v "$1" >/dev/null 2>&1; }

# A module counts when pkg-config finds it; before pkg-config is installed
# the .pc file is looked up where Debian puts it.
pc_exists() {
	if have pkg-config; then
		pkg-config --exists "$1"
	else
		for d in /usr/lib/*/pkgconfig /usr/lib/pkgconfig /usr/share/pkgconfig; do
			[ -e "$d/$1.pc" ] && return 0
		done
		return 1
	fi
}

# The build (`make all`, which includes the E2B emulator) and the demo.
probe_build() {
	have cc || need gcc "command cc"
	[ -e /usr/include/stdio.h ] || need libc6-dev "file /usr/include/stdio.h"
	have make || need make "command make"
	have pkg-config || need pkg-config "command pkg-config"
	for m in libevent:libevent-dev msgpack:libmsgpack-dev sqlite3:libsqlite3-dev \
		libcrypto:libssl-dev yaml-0.1:libyaml-dev jansson:libjansson-dev inih:libinih-dev \
		libcurl:libcurl4-openssl-dev zlib:zlib1g-dev libpq:libpq-dev libmariadb:libmariadb-dev; do
		pc_exists "${m%%:*}" || need "${m#*:}" "pkg-config module ${m%%:*}"
	done
	# workers run under bubblewrap when it works (local.isolation=auto)
	have bwrap || need bubblewrap "command bwrap"
}

# libFuzzer ships with clang's runtime, in the package of clang's version.
probe_fuzzer() {
	if ! have clang; then
		need clang "command clang"
		need libclang-rt-dev "libFuzzer runtime (for the default clang)"
		return 0
	fi
	rd=$(clang -print-resource-dir 2>/dev/null) || rd=
	if [ -z "$rd" ] || [ -z "$(find "$rd/lib" -name 'libclang_rt.fuzzer*.a' 2>/dev/null | head -n1)" ]; then
		need "libclang-rt-$(clang -dumpversion | cut -d. -f1)-dev" "libFuzzer runtime of clang $(clang -dumpversion)"
	fi
}

# Node.js and npm for the E2B SDK suite. A node already there is kept
# whatever its version (tests/e2b/run.sh fetches a newer one when it is too
# old); npm is asked for only if the installed nodejs package does not claim
# to provide it (NodeSource's does, and conflicts with Debian's npm).
probe_node() {
	if ! have node; then
		need nodejs "command node"
		have npm || need npm "command npm"
		return 0
	fi
	have npm && return 0
	if dpkg-query -W -f '${Provides} ${Conflicts}\n' nodejs 2>/dev/null | grep -qw npm; then
		TROUBLE="$(command -v node) has no npm, and its nodejs package conflicts with Debian's npm:
      reinstall that nodejs package (it ships npm)"
		return 0
	fi
	need npm "command npm"
}

# The static worker links libpq.a when the libpgcommon/libpgport archives of
# the very same version are there (Makefile PG_STATIC_LIBS): they come in
# postgresql-server-dev-N, pinned to the installed libpq-dev; a libpq-dev
# still to come is installed by the same apt run at the same version.
probe_pgstatic() {
	v=$(dpkg-query -W -f '${Version}' libpq-dev 2>/dev/null) || v=
	[ -n "$v" ] || v=$(apt-cache policy libpq-dev 2>/dev/null | sed -n 's/^ *Candidate: //p')
	m=$(echo "$v" | sed -n 's/^\([0-9][0-9]*\)\..*/\1/p')
	[ -n "$m" ] || return 0
	[ "$(dpkg-query -W -f '${Version}' "postgresql-server-dev-$m" 2>/dev/null)" = "$v" ] && return 0
	if dpkg-query -W -f '${Status}' libpq-dev 2>/dev/null | grep -q ' installed$' &&
		apt-cache madison "postgresql-server-dev-$m" 2>/dev/null | grep -q "| $v |"; then
		need "postgresql-server-dev-$m=$v" "libpgcommon/libpgport of libpq $v (static worker)"
	else
		# libpq-dev not there yet, or its version no longer offered: both
		# at the mirror's version, from the same apt run
		need libpq-dev "libpq-dev at the version of postgresql-server-dev-$m"
		need "postgresql-server-dev-$m" "libpgcommon/libpgport of libpq (static worker)"
	fi
}

# What the tests run besides the build: Check (unit), pgrep and python3 with
# its standard library (regress, bench), systemd-analyze (t_unit), clang +
# libFuzzer (fuzz-smoke), PostgreSQL and MariaDB servers (t_db_*),
# node + npm and CA certificates for the npm registry (check-e2b).
probe_check() {
	pc_exists check || need check "pkg-config module check"
	have pgrep || need procps "command pgrep"
	# t_unit checks osirisd.service (systemd-analyze security --offline, verify)
	have systemd-analyze || need systemd "command systemd-analyze"
	# t_e2b_config makes a test CA for the emulator's HTTPS
	have openssl || need openssl "command openssl"
	/usr/bin/python3 -c 'import ctypes, random, socket, struct' >/dev/null 2>&1 ||
		need python3 "/usr/bin/python3 with its standard library"
	# the database driver cases start real servers on private data dirs
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need postgresql "PostgreSQL server (initdb)"
	[ -x /usr/sbin/mariadbd ] && have mariadb-install-db || need mariadb-server "MariaDB server (mariadbd)"
	have mariadb || need mariadb-client-core "command mariadb"
	probe_fuzzer
	# make format-check
	have clang-format || need clang-format "command clang-format"
	probe_pgstatic
	probe_node
	[ -e /etc/ssl/certs/ca-certificates.crt ] || need ca-certificates "file /etc/ssl/certs/ca-certificates.crt"
}

# bench/drivers.sh times our database drivers against pandas/SQLAlchemy
# over PyMySQL and psycopg2 (it skips a baseline whose module is missing).
probe_bench() {
	for m in pandas:python3-pandas sqlalchemy:python3-sqlalchemy pymysql:python3-pymysql psycopg2:python3-psycopg2; do
		/usr/bin/python3 -c "import ${m%%:*}" >/dev/null 2>&1 || need "${m#*:}" "python3 module ${m%%:*}"
	done
}

probe() {
	probe_build
	[ "$mode" = demo ] || probe_check
	[ "$mode" != bench ] || probe_bench
}

# report TROUBLE (what apt-get cannot fix) and exit with STATUS
finish() {
	if [ -n "$TROUBLE" ]; then
		echo "deps: $TROUBLE" >&2
		exit 1
	fi
	exit "$1"
}

probe
[ -z "$WANT" ] && finish 0

SUDO=
if [ "$(id -u)" != 0 ]; then
	have sudo || {
		echo "deps: not root and no sudo: install as root: apt-get install $WANT" >&2
		exit 1
	}
	SUDO=sudo
fi
log=$(mktemp "${TMPDIR:-/tmp}/osiris-deps.XXXXXX")
trap 'rm -f "$log"' EXIT
echo "deps: apt-get install $WANT"
# shellcheck disable=SC2086 # WANT is a list of package names
if ! { $SUDO apt-get update -q && $SUDO env DEBIAN_FRONTEND=noninteractive \
	apt-get install -y -q --no-install-recommends $WANT; } >"$log" 2>&1; then
	tail -n 25 "$log" >&2
	echo "deps: apt-get failed (the lines above are its end)" >&2
	exit 1
fi

# Whatever a package did not bring is a mapping error here: say so now
# rather than as a build failure later.
installed=$WANT
WANT=
probe >"$log" 2>&1
if [ -n "$WANT" ]; then
	cat "$log" >&2
	echo "deps: still missing after installing $installed" >&2
	exit 1
fi
echo "deps: done"
finish 0

#!/bin/sh
# run.sh: `make check-fresh`, the README set-up on a fresh Debian 12. Builds a
# `debootstrap --variant=minbase bookworm` root with only git, make,
# build-essential, pkg-config and ca-certificates added (cached), clones the
# committed HEAD of this repository into a clean copy of it, runs `make demo`
# then `make check` there under chroot and prints each one's time and exit
# status; exits non-zero if either fails. Needs root and the network (the
# Debian mirror, the npm registry); installs debootstrap on the host if absent.
#   FRESH_DIR     work dir (/var/tmp/osiris-fresh): base-bookworm.tar (the
#                 cached base root), root/ (this run's), make-*.log
#   FRESH_MIRROR  Debian mirror (default: the host's apt source for bookworm)
#   FRESH_REBUILD=1 rebuilds the cached base root
#   FRESH_TARGETS the make targets to run in order (default: demo check)
# shellcheck shell=bash
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u

SRC=$(cd "$(dirname "$0")/../.." && pwd)
FRESH_DIR=${FRESH_DIR:-/var/tmp/osiris-fresh}
SUITE=bookworm
# What the README assumes a fresh machine has; recommends are left out so
# nothing else slips in.
BASE_PKGS="git make build-essential pkg-config ca-certificates"
BASE_TAR=$FRESH_DIR/base-$SUITE.tar
ROOT=$FRESH_DIR/root
CHROOT_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

die() {
	echo "check-fresh: $*" >&2
	exit 1
}
say() { echo "== check-fresh: $*"; }

[ "$(id -u)" = 0 ] || die "needs root (debootstrap, mount, chroot)"
case $FRESH_DIR in
/tmp | /tmp/*) die "FRESH_DIR=$FRESH_DIR: keep it off /tmp (tmpfs on many hosts, and cleaned)" ;;
/*) ;;
*) die "FRESH_DIR=$FRESH_DIR: must be an absolute path" ;;
esac

# Everything below runs in a private mount namespace: the chroot's mounts
# never propagate to the host, and vanish with the namespace even if this
# script is killed before its trap runs.
if [ -z "${FRESH_UNSHARED:-}" ]; then
	# shellcheck disable=SC2093 # die only if exec itself fails
	FRESH_UNSHARED=1 exec unshare --mount --propagation private bash "$0" "$@"
	die "unshare --mount failed"
fi

rev=$(git -C "$SRC" rev-parse HEAD) || die "$SRC is not a git checkout"
[ -z "$(git -C "$SRC" status --porcelain --untracked-files=no)" ] ||
	say "note: uncommitted changes in $SRC are not tested (this clones HEAD $rev)"
mkdir -p "$FRESH_DIR" || die "cannot create $FRESH_DIR"

# ---- mounts --------------------------------------------------------------

MOUNTS=()

mnt() { # mnt TARGET MOUNT-ARGS...: mount and remember it for unmount_all
	local target=$1
	shift
	mount "$@" "$target" || die "mount $* $target failed"
	MOUNTS+=("$target")
}

# The root is bind-mounted onto itself first so that it is a mount point:
# bubblewrap's pivot_root fails in a chroot whose root is not one.
mount_all() {
	local r=$1
	mnt "$r" --bind "$r"
	mnt "$r/proc" -t proc proc
	mnt "$r/sys" -t sysfs -o ro sysfs
	mnt "$r/dev" --bind /dev
	mnt "$r/dev/pts" --bind /dev/pts
	mnt "$r/dev/shm" -t tmpfs -o mode=1777,nosuid,nodev shm
}

unmount_all() {
	local i
	for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
		umount "${MOUNTS[i]}" 2>/dev/null || umount -l "${MOUNTS[i]}" ||
			echo "check-fresh: cannot unmount ${MOUNTS[i]}" >&2
	done
	MOUNTS=()
}

# Remove a root only when nothing is mounted under it (a bind of /dev in it
# would take the host's device nodes along), and never across a mount.
remove_root() {
	local r=$1
	[ -e "$r" ] || return 0
	if awk -v r="$r" '$5 == r || index($5, r "/") == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
		die "something is still mounted under $r; not removing it"
	fi
	rm -rf --one-file-system "$r" || die "cannot remove $r"
}

cleanup() {
	local rc=$?
	trap - EXIT
	unmount_all
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- the host's network set-up, copied in ---------------------------------

# The first URI of an enabled apt source (deb822 or one-line) serving SUITE.
host_mirror() {
	local f files=()
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] && files+=("$f")
	done
	[ ${#files[@]} -gt 0 ] || return 0
	awk -v s="$SUITE" '
	function check() { if (!done && types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " s " ") && uri != "") { print uri; done = 1 } }
	FNR == 1 { check(); types = uri = suites = "" }
	/^[ \t]*$/ { check(); types = uri = suites = "" }
	/^Types:/ { sub(/^Types:[ \t]*/, ""); types = $0 }
	/^URIs:/ { uri = $2 }
	/^Suites:/ { sub(/^Suites:[ \t]*/, ""); suites = $0 }
	/^deb[ \t]/ { sub(/\[[^]]*\]/, ""); if (!done && $3 == s) { print $2; done = 1 } }
	END { check() }
	' "${files[@]}"
}

# Resolver, Debian apt sources and local CA certificates (a TLS-inspecting
# proxy's, if any) are the host's network, not software: the root gets them.
copy_host_config() {
	local r=$1 f
	cp -L /etc/resolv.conf "$r/etc/resolv.conf" || die "cannot copy /etc/resolv.conf"
	if [ -s /etc/apt/sources.list.d/debian.sources ]; then
		cp /etc/apt/sources.list.d/debian.sources "$r/etc/apt/sources.list.d/"
		rm -f "$r/etc/apt/sources.list"
	elif [ -s /etc/apt/sources.list ]; then
		cp /etc/apt/sources.list "$r/etc/apt/sources.list"
	fi
	mkdir -p "$r/usr/local/share/ca-certificates"
	for f in /usr/local/share/ca-certificates/*.crt; do
		[ -e "$f" ] && cp "$f" "$r/usr/local/share/ca-certificates/"
	done
	return 0
}

# ---- the base root ---------------------------------------------------------

base_info() { echo "suite=$SUITE variant=minbase packages=$BASE_PKGS (no recommends)"; }

build_base() {
	local tmp=$FRESH_DIR/base.tmp mirror
	if ! command -v debootstrap >/dev/null 2>&1; then
		say "installing debootstrap on the host"
		{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
			--no-install-recommends debootstrap; } >"$FRESH_DIR/debootstrap-install.log" 2>&1 ||
			{ tail -n 20 "$FRESH_DIR/debootstrap-install.log"; die "cannot install debootstrap"; }
	fi
	mirror=${FRESH_MIRROR:-$(host_mirror)}
	mirror=${mirror:-http://deb.debian.org/debian}
	say "debootstrap --variant=minbase $SUITE from $mirror (log: $FRESH_DIR/debootstrap.log)"
	remove_root "$tmp"
	debootstrap --variant=minbase "$SUITE" "$tmp" "$mirror" >"$FRESH_DIR/debootstrap.log" 2>&1 ||
		{ tail -n 20 "$FRESH_DIR/debootstrap.log"; die "debootstrap failed"; }
	copy_host_config "$tmp"
	say "adding $BASE_PKGS"
	mount_all "$tmp"
	chroot "$tmp" /usr/bin/env -i PATH=$CHROOT_PATH DEBIAN_FRONTEND=noninteractive sh -c \
		"apt-get update -q && apt-get install -y -q --no-install-recommends $BASE_PKGS && apt-get clean" \
		>>"$FRESH_DIR/debootstrap.log" 2>&1 ||
		{ tail -n 20 "$FRESH_DIR/debootstrap.log"; die "installing $BASE_PKGS failed"; }
	unmount_all
	tar -C "$tmp" --numeric-owner -cpf "$BASE_TAR.tmp" . || die "cannot write $BASE_TAR"
	base_info >"$BASE_TAR.info"
	mv "$BASE_TAR.tmp" "$BASE_TAR"
	remove_root "$tmp"
}

# ---- main --------------------------------------------------------------------

t_all=$(date +%s)
if [ "${FRESH_REBUILD:-0}" = 1 ] || [ ! -s "$BASE_TAR" ] ||
	[ "$(cat "$BASE_TAR.info" 2>/dev/null)" != "$(base_info)" ]; then
	t0=$(date +%s)
	build_base
	say "base root built in $(($(date +%s) - t0))s: $BASE_TAR"
else
	say "reusing the base root $BASE_TAR ($(cat "$BASE_TAR.info"))"
fi

say "clean root $ROOT from the base, clone $SRC at $rev"
remove_root "$ROOT"
mkdir -p "$ROOT" || die "cannot create $ROOT"
tar -C "$ROOT" --numeric-owner -xpf "$BASE_TAR" || die "cannot unpack $BASE_TAR"
copy_host_config "$ROOT"
if ! git clone --quiet --no-hardlinks --no-checkout "$SRC" "$ROOT/root/osirisd" ||
	! git -C "$ROOT/root/osirisd" checkout --quiet --detach "$rev"; then
	die "cannot clone $SRC at $rev into the root (is HEAD on a branch?)"
fi
mount_all "$ROOT"
chroot "$ROOT" /usr/bin/env -i PATH=$CHROOT_PATH update-ca-certificates >/dev/null 2>&1 ||
	die "update-ca-certificates failed in the root"

# in_root TARGET: `make TARGET` in the clone, with a clean environment;
# output to the terminal and $FRESH_DIR/make-TARGET.log, a result line to
# RESULTS; returns make's exit status.
RESULTS=()
in_root() {
	local t0 rc dt
	say "make $1 (log: $FRESH_DIR/make-$1.log)"
	t0=$(date +%s)
	chroot "$ROOT" /usr/bin/env -i HOME=/root PATH=$CHROOT_PATH LANG=C.UTF-8 TERM=dumb \
		sh -c "cd /root/osirisd && make $1" 2>&1 | tee "$FRESH_DIR/make-$1.log"
	rc=${PIPESTATUS[0]}
	dt=$(($(date +%s) - t0))
	RESULTS+=("$(printf 'make %-7s exit %-3s %dm%02ds' "$1" "$rc" $((dt / 60)) $((dt % 60)))")
	return "$rc"
}

# Each target runs whatever the one before did: a failed demo still
# leaves make check worth knowing about.
ok=1
for t in ${FRESH_TARGETS:-demo check}; do
	in_root "$t" || ok=0
done

echo
say "results (Debian $SUITE minbase + $BASE_PKGS, $rev)"
printf '   %s\n' "${RESULTS[@]}"
dt=$(($(date +%s) - t_all))
printf '   total, with the root set-up: %dm%02ds\n' $((dt / 60)) $((dt % 60))
[ $ok = 1 ]

#!/bin/sh
# soak.sh: `make soak` (not part of make check). Many trivial runs through one
# daemon with retention on; prints the state dir's size, inodes, osiris.db
# and the daemon's RSS every chunk, and checks that after the first
# retention window they stay flat (within 50% of the first figures past it).
#   SOAK_RUNS (100000) runs, SOAK_KEEP (1000) = daemon.keep_runs,
#   SOAK_CHUNK (1000) runs between two prints.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u

SRC=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$SRC/build/bin}
BENCH_BIN=${BENCH_BIN:-$SRC/build/bench}
RUNS=${SOAK_RUNS:-100000}
KEEP=${SOAK_KEEP:-1000}
CHUNK=${SOAK_CHUNK:-1000}
W=$(mktemp -d "${BENCH_TMPDIR:-/var/tmp}/osiris-soak.XXXXXX") || exit 1
WD=$(mktemp -d /dev/shm/osiris-soak-wd.XXXXXX 2>/dev/null || mktemp -d "$W/wd.XXXXXX")
DPID=
cleanup() {
	[ -n "$DPID" ] && kill -9 "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
	rm -rf "$W" "$WD"
}
trap cleanup EXIT
die() {
	echo "soak: $*" >&2
	exit 1
}

mkdir -p "$W/p/cfg"
printf 'pipeline:\n  id: soak\nsteps:\n' >"$W/p/manifest.yaml"
for i in 1 2 3; do
	printf '  - id: s%d\n    driver: osiris.noop\n    cfg_path: cfg/s%d.json\n    needs: [%s]\n' "$i" "$i" \
		"$([ "$i" -gt 1 ] && echo "s$((i - 1))")" >>"$W/p/manifest.yaml"
	echo '{"component":"osiris.noop","mode":"transform"}' >"$W/p/cfg/s$i.json"
done
S=$W/state
"$BIN/osirisd" -S "$W/sock" -D "$S" -f /dev/null -o "daemon.keep_runs=$KEEP" -o daemon.keep_days=0 \
	-o daemon.prune_interval_s=2 -o local.pool_size=4 -o local.worker_max_runs=100000 \
	-o "local.work_dir=$WD" 2>"$W/daemon.log" &
DPID=$!
for ((i = 0; i < 200; i++)); do
	"$BIN/osirisctl" -S "$W/sock" ping >/dev/null 2>&1 && break
	sleep 0.05
done
"$BIN/osirisctl" -S "$W/sock" ping >/dev/null 2>&1 || die "osirisd did not start: $(tail -3 "$W/daemon.log")"

echo "soak: $RUNS trivial 3-step runs, daemon.keep_runs=$KEEP, prune every 2 s, on $(nproc) cores"
printf '%8s %10s %8s %10s %9s %8s %7s\n' runs state_KiB inodes db_KiB rss_KiB runs/s failed
done_runs=0 base_state= base_rss= worst_state=0 worst_rss=0
while [ "$done_runs" -lt "$RUNS" ]; do
	n=$((RUNS - done_runs < CHUNK ? RUNS - done_runs : CHUNK))
	"$BENCH_BIN/bench_rpc" "$W/sock" throughput "$n" 4 "$W/p" >"$W/tput" || die "bench_rpc failed"
	done_runs=$((done_runs + n))
	sleep 2.5 # one retention pass
	st=$(($(du -s --block-size=1 "$S" | cut -f1) / 1024))
	ino=$(find "$S" | wc -l)
	db=$((($(stat -c %s "$S/osiris.db") + $(stat -c %s "$S/osiris.db-wal" 2>/dev/null || echo 0)) / 1024))
	rss=$(awk '$1 == "VmRSS:" { print $2 }' "/proc/$DPID/status")
	rate=$(awk '$1 == "throughput" { printf "%.0f", $2 / ($4 / 1e6) }' "$W/tput")
	failed=$(awk '$1 == "throughput" { print $5 }' "$W/tput")
	printf '%8d %10d %8d %10d %9d %8s %7s\n' "$done_runs" "$st" "$ino" "$db" "$rss" "$rate" "$failed"
	# the first figures once a whole window (2 x keep_runs) has gone through
	if [ "$done_runs" -ge $((2 * KEEP)) ]; then
		if [ -z "$base_state" ]; then
			base_state=$st base_rss=$rss
		else
			[ "$st" -gt "$worst_state" ] && worst_state=$st
			[ "$rss" -gt "$worst_rss" ] && worst_rss=$rss
		fi
	fi
done
kill -TERM "$DPID"
wait "$DPID"
DPID=
[ -n "$base_state" ] && [ "$worst_state" -gt 0 ] || {
	echo "soak: too few runs to judge (need more than 2 x keep_runs = $((2 * KEEP)) plus a chunk)"
	exit 0
}
echo "soak: after the first window: state $base_state KiB -> at most $worst_state KiB, RSS $base_rss KiB -> at most $worst_rss KiB"
[ "$worst_state" -le $((base_state * 3 / 2)) ] || die "the state dir grew past 150% of its size after the first window"
[ "$worst_rss" -le $((base_rss * 3 / 2)) ] || die "the daemon's RSS grew past 150% of its size after the first window"
echo "soak: flat"

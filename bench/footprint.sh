#!/bin/sh
# footprint.sh: what runs leave on disk (issue 11). Bytes (allocated blocks)
# and inodes per trivial 3-step run, osiris.db bytes per 1,000 records, and
# how fast prune removes runs. Retention is off while measuring; workspaces
# are on tmpfs (they are scratch, not state). Part of `make bench`.
#   FOOTPRINT_RUNS (2000) trivial runs, FOOTPRINT_BIG (20) runs of 200 steps.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u

SRC=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$SRC/build/bin}
BENCH_BIN=${BENCH_BIN:-$SRC/build/bench}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
N=${FOOTPRINT_RUNS:-2000}
NBIG=${FOOTPRINT_BIG:-20}
W=$(mktemp -d "${BENCH_TMPDIR:-/var/tmp}/osiris-footprint.XXXXXX") || exit 1
WD=$(mktemp -d /dev/shm/osiris-footprint-wd.XXXXXX 2>/dev/null || mktemp -d "$W/wd.XXXXXX")
DPID=
cleanup() {
	[ -n "$DPID" ] && kill -9 "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
	rm -rf "$W" "$WD"
}
trap cleanup EXIT
die() {
	echo "footprint: $*" >&2
	exit 1
}

start() { # STATE
	"$BIN/osirisd" -S "$W/sock" -D "$1" -f /dev/null -o daemon.keep_runs=0 -o daemon.keep_days=0 \
		-o daemon.max_state_bytes=0 -o local.pool_size=4 -o local.worker_max_runs=100000 \
		-o "local.work_dir=$WD" -o daemon.min_free_bytes=0 2>>"$W/daemon.log" &
	DPID=$!
	for ((i = 0; i < 200; i++)); do
		"$BIN/osirisctl" -S "$W/sock" ping >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	die "osirisd did not start: $(tail -3 "$W/daemon.log")"
}
stop() {
	kill -TERM "$DPID"
	wait "$DPID"
	DPID=
}
bytes() { du -s --block-size=1 "$1" | cut -f1; }
inodes() { find "$1" | wc -l; }
db_records() { "$PY" -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT count(*) FROM events").fetchone()[0])' "$1/osiris.db"; }
db_bytes() { stat -c %s "$1/osiris.db"; }

chain() { # DIR STEPS
	mkdir -p "$1/cfg"
	{
		printf 'pipeline:\n  id: chain\nsteps:\n'
		for ((i = 1; i <= $2; i++)); do
			printf '  - id: s%d\n    driver: osiris.noop\n    cfg_path: cfg/s%d.json\n    needs: [%s]\n' \
				"$i" "$i" "$([ "$i" -gt 1 ] && echo "s$((i - 1))")"
			printf '{"component":"osiris.noop","mode":"transform"}\n' >"$1/cfg/s$i.json"
		done
	} >"$1/manifest.yaml"
}
chain "$W/noop3" 3
chain "$W/noop200" 200

# -- trivial runs: the state dir before and after, daemon stopped (WAL folded in)
S=$W/state
start "$S"
stop
b0=$(bytes "$S") i0=$(inodes "$S")
start "$S"
"$BENCH_BIN/bench_rpc" "$W/sock" throughput "$N" 4 "$W/noop3" >"$W/tput" || die "bench_rpc failed"
stop
b1=$(bytes "$S") i1=$(inodes "$S")
runs_b=$(bytes "$S/runs") db1=$(db_bytes "$S")
per_run=$(((b1 - b0) / N))
echo "footprint per trivial 3-step run (n=$N): $per_run bytes on disk ($(((runs_b) / N)) in runs/, $(((db1) / N)) in osiris.db), $(awk -v a="$i0" -v b="$i1" -v n="$N" 'BEGIN { printf "%.2f", (b - a) / n }') inodes | target <= 4096 bytes and <= 1 inode (small artifacts are in osiris.db; what is left per run is its directory under runs/ and the stored bundle in it)"

# -- records: runs of 200 noop steps, osiris.db growth per 1000 records
S2=$W/state2
start "$S2"
stop
d0=$(db_bytes "$S2")
start "$S2"
"$BENCH_BIN/bench_rpc" "$W/sock" throughput "$NBIG" 2 "$W/noop200" >"$W/tput2" || die "bench_rpc (200 steps) failed"
stop
d1=$(db_bytes "$S2") recs=$(db_records "$S2")
echo "osiris.db per 1000 records: $(((d1 - d0) * 1000 / recs)) bytes (n=$recs records in $NBIG runs of 200 noop steps)"

# -- prune throughput: every trivial run above, removed by osirisctl prune
start "$S"
t0=$(date +%s%N)
out=$("$BIN/osirisctl" -S "$W/sock" --json prune --keep 0) || die "prune failed"
t1=$(date +%s%N)
stop
removed=$(printf %s "$out" | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["runs"])')
echo "prune: $removed runs in $(awk -v t="$((t1 - t0))" 'BEGIN { printf "%.2f", t / 1e9 }') s = $(awk -v n="$removed" -v t="$((t1 - t0))" 'BEGIN { printf "%.0f", n / (t / 1e9) }') runs/s removed; state dir after: $(bytes "$S") bytes, $(inodes "$S") inodes (was $b1 bytes, $i1 inodes)"

# lib.sh: helpers shared by bench/run.sh and bench/e2b.sh (sourced): paths,
# a private osirisd on $W/NAME.sock, noop pipelines, number formatting.
# The sourcing script owns $W (its temp dir), DPID and the EXIT trap.

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${BIN:-$SRC/build/bin}
BENCH_BIN=${BENCH_BIN:-$SRC/build/bench}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
DPID=
SOCK=

die() {
	echo "bench: $*" >&2
	exit 1
}

# ---- daemons -------------------------------------------------------------

# start NAME [osirisd -o options]: a daemon on $W/NAME.sock
start() {
	local name=$1 i
	shift
	SOCK=$W/$name.sock
	"$BIN/osirisd" -S "$SOCK" -D "$W/$name.state" -f /dev/null -o daemon.max_context_bytes=268435456 "$@" \
		2>"$W/$name.log" &
	DPID=$!
	for ((i = 0; i < 200; i++)); do
		"$BIN/osirisctl" -S "$SOCK" ping >/dev/null 2>&1 && return 0
		kill -0 "$DPID" 2>/dev/null || die "osirisd ($name) exited: $(tail -n 3 "$W/$name.log")"
		sleep 0.05
	done
	die "osirisd ($name) did not answer ping"
}
stop() {
	kill -TERM "$DPID" 2>/dev/null
	wait "$DPID" 2>/dev/null
	DPID=
}
ctl() { "$BIN/osirisctl" -S "$SOCK" "$@"; }
# pool_field BACKEND KEY: one figure of `osirisctl --json pool`
pool_field() {
	ctl --json pool | "$PY" -c 'import json,sys; d=json.load(sys.stdin); p=d["pools"] if isinstance(d, dict) else d; print([x for x in p if x["backend"] == sys.argv[1]][0][sys.argv[2]])' "$1" "$2"
}

# ---- pipelines -------------------------------------------------------------

noop_chain() { # DIR N
	local dir=$1 n=$2 i
	mkdir -p "$dir/cfg"
	{
		printf 'pipeline:\n  id: noop%s\nsteps:\n' "$n"
		for ((i = 1; i <= n; i++)); do
			printf '  - id: s%d\n    driver: osiris.noop\n    cfg_path: cfg/s%d.json\n    needs: [%s]\n' \
				"$i" "$i" "$([ "$i" -gt 1 ] && echo "s$((i - 1))")"
			printf '{"component":"osiris.noop","mode":"transform"}\n' >"$dir/cfg/s$i.json"
		done
	} >"$dir/manifest.yaml"
}

# ---- formatting --------------------------------------------------------------

# field LINE-PREFIX COLUMN FILE
field() { awk -v k="$1" -v c="$2" '$1 == k { print $c }' "$3"; }
ms() { awk -v u="$1" 'BEGIN { printf "%.2f", u / 1000 }'; }
us() { awk -v u="$1" 'BEGIN { printf "%.0f", u }'; }

rss_kb() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$1/status" 2>/dev/null; }
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# descendants PID
. "$SRC/tests/regress/proc.sh"

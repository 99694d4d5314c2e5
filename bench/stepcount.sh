#!/bin/sh
# stepcount.sh: system calls and allocations per `osiris.noop` step, daemon
# and worker apart (called by bench/run.sh with the step count). Two private
# daemons run under `strace -ff` with bench/count_alloc.so preloaded (the
# worker through a wrapper that preloads it, local.isolation=none so that
# strace follows it): one runs K 1-step runs, the other K STEPS-step runs;
# (second - first) / (K * (STEPS - 1)) is the per-step figure. Prints
# "stepcount SYS_DAEMON SYS_WORKER ALLOC_DAEMON ALLOC_WORKER K". COUNT_RUNS=K (default 5);
# COUNT_KEEP=1 keeps the traces and counts (the temp dir is named on stderr).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u

. "$(dirname "$0")/lib.sh"
unset E2B_API_KEY E2B_API_URL E2B_SANDBOX_URL E2B_DOMAIN
STEPS=${1:-100}
K=${COUNT_RUNS:-5}
LIB=$BENCH_BIN/count_alloc.so
[ -r "$LIB" ] || die "$LIB: missing (make bench builds it)"
command -v strace >/dev/null || {
	echo "stepcount - - - - 0 (no strace)"
	exit 0
}
W=$(mktemp -d "${BENCH_TMPDIR:-/var/tmp}/osiris-count.XXXXXX") || die "mktemp"
SPID=
cleanup() {
	[ -n "${COUNT_KEEP:-}" ] && echo "kept $W" >&2 && return
	if [ -n "$SPID" ]; then
		pkill -9 -P "$SPID" 2>/dev/null
		kill -9 "$SPID" 2>/dev/null
	fi
	rm -rf "$W"
}
trap cleanup EXIT

noop_chain "$W/noop1" 1
noop_chain "$W/noopN" "$STEPS"

# measure NAME PIPELINE: K runs on a fresh daemon; leaves $W/NAME.trace.<pid>
# and $W/NAME.cnt/<program>.<pid>
measure() {
	local name=$1 pipe=$2 i dpid
	mkdir -p "$W/$name.cnt"
	# the pool gives workers a minimal environment: the wrapper sets it
	printf '#!/bin/sh\nexport LD_PRELOAD=%s OSIRIS_COUNT_DIR=%s\nexec %s "$@"\n' "$LIB" "$W/$name.cnt" \
		"$BIN/osiris-worker" >"$W/$name.worker"
	chmod +x "$W/$name.worker"
	SOCK=$W/$name.sock
	OSIRIS_COUNT_DIR=$W/$name.cnt LD_PRELOAD=$LIB \
		strace -ff -qq -o "$W/$name.trace" "$BIN/osirisd" -S "$SOCK" -D "$W/$name.state" -f /dev/null \
		-o local.pool_size=1 -o local.isolation=none -o "local.worker=$W/$name.worker" 2>"$W/$name.log" &
	SPID=$!
	for ((i = 0; i < 400; i++)); do
		ctl ping >/dev/null 2>&1 && break
		sleep 0.05
	done
	for ((i = 0; i < K; i++)); do
		ctl submit "$pipe" --wait >/dev/null 2>&1 || die "stepcount: a $name run failed: $(tail -n 3 "$W/$name.log")"
	done
	dpid=$(pgrep -P "$SPID" -x osirisd)
	kill -TERM "$dpid" 2>/dev/null
	wait "$SPID" 2>/dev/null
	SPID=
}
# sums NAME -> "sys_daemon sys_worker alloc_daemon alloc_worker"
sums() {
	local name=$1 f sd sw ad=0 aw=0 n
	# a trace file per thread or process: a worker is what exec'd
	# osiris-worker, and what a worker started (its threads) counts with it
	read -r sd sw <<<"$(awk '
		FNR == 1 { f = FILENAME; sub(/.*\./, "", f); files[f] = 1 }
		/^\+\+\+|^---/ { next }
		{ n[f]++ }
		/^execve\(".*osiris-worker"/ { w[f] = 1 }
		/^(clone|clone3|fork|vfork)\(/ && $NF ~ /^[0-9]+$/ { parent[$NF] = f }
		function isw(p) { while (p != "") { if (p in w) return 1; p = (p in parent) ? parent[p] : "" } return 0 }
		END { for (f in files) if (isw(f)) sw += n[f]; else sd += n[f]; print sd + 0, sw + 0 }' "$W/$name.trace".*)"
	for f in "$W/$name.cnt"/*; do
		n=$(od -An -tu8 "$f" | tr -d ' ')
		case ${f##*/} in osiris-worker.*) aw=$((aw + n)) ;; *) ad=$((ad + n)) ;; esac
	done
	echo "$sd $sw $ad $aw"
}
measure one "$W/noop1"
measure many "$W/noopN"
read -r sd1 sw1 ad1 aw1 <<<"$(sums one)"
read -r sdn swn adn awn <<<"$(sums many)"
d=$((K * (STEPS - 1)))
awk -v d="$d" -v k="$K" -v a="$sd1 $sw1 $ad1 $aw1" -v b="$sdn $swn $adn $awn" 'BEGIN {
	split(a, x, " "); split(b, y, " ")
	printf "stepcount"; for (i = 1; i <= 4; i++) printf " %.1f", (y[i] - x[i]) / d; printf " %d\n", k }'

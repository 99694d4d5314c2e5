#!/bin/sh
# e2b.sh: the E2B section of `make bench` (run.sh runs it unless BENCH_E2B=0;
# it also runs alone). One e2b-emulator with E2B's cold start
# (--create-delay-ms 820) and two osirisd pointed at it: e2b.pool_size=0,
# where every run creates its sandbox (the cold baseline), then
# e2b.pool_size=20. Prints each figure as median and p99 beside its baseline,
# and MET or MISSED against each target. About 2 minutes; BENCH_QUICK=1 for
# fewer samples, BENCH_E2B_RATE for e2b.create_rate (default 10/s),
# BENCH_TMPDIR for the temp dir (default /var/tmp).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u
. "$(dirname "$0")/lib.sh"

CREATE_DELAY_MS=820
RATE=${BENCH_E2B_RATE:-10}	# e2b.create_rate, sandboxes created per second
POOL=20				# e2b.pool_size of the warm daemon, and the burst size
MAX_SB=$((2 * POOL))		# e2b.max_sandboxes: room for the refills beside 20 busy
STEPS=100
if [ "${BENCH_QUICK:-0}" = 1 ]; then
	N_WARM=10 N_COLD=4 N_STEP=3 N_TPUT=40 N_TPUT_COLD=10
else
	N_WARM=30 N_COLD=10 N_STEP=5 N_TPUT=100 N_TPUT_COLD=20
fi
# The documented test key of tests/fakes/e2b: the daemon insists on one.
KEY=e2b_0123456789abcdef0123456789abcdef01234567

for p in "$BIN/osirisd" "$BIN/osirisctl" "$BIN/osiris-worker-static" "$BIN/e2b-emulator" "$BENCH_BIN/bench_rpc"; do
	[ -x "$p" ] || die "$p: missing (make bench builds it)"
done

W=$(mktemp -d "${BENCH_TMPDIR:-/var/tmp}/osiris-bench-e2b.XXXXXX") || die "mktemp"
EPID=
T_SECTION=$(date +%s%N)

# ---- processes: stopped with SIGTERM, SIGKILL only past a deadline -----------

# wait_gone PID SECONDS: 0 once PID has exited (and is reaped)
wait_gone() {
	local i
	for ((i = 0; i < $2 * 20; i++)); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$1" 2>/dev/null; then
		kill -9 "$1" 2>/dev/null
		wait "$1" 2>/dev/null
		return 1
	fi
	wait "$1" 2>/dev/null
	return 0
}
# stop_daemon: SIGTERM (the daemon kills its sandboxes), 15 s, then SIGKILL.
# Sets STOP_MS and STOP_NOTE.
stop_daemon() {
	local t0=$(date +%s%N)
	STOP_NOTE=
	kill -TERM "$DPID" 2>/dev/null
	wait_gone "$DPID" 15 || STOP_NOTE="osirisd ignored SIGTERM for 15 s: SIGKILLed"
	STOP_MS=$((($(date +%s%N) - t0) / 1000000))
	DPID=
}
stop_emulator() {
	kill -TERM "$EPID" 2>/dev/null
	wait_gone "$EPID" 10 || echo "bench: e2b-emulator ignored SIGTERM for 10 s: SIGKILLed" >&2
	EPID=
}
cleanup() {
	local rc=$?
	trap - EXIT
	[ -n "$DPID" ] && stop_daemon
	[ -n "$EPID" ] && stop_emulator
	rm -rf "$W"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$BIN/e2b-emulator" --root "$W/emu" --port-file "$W/emu.port" --api-key "$KEY" \
	--create-delay-ms "$CREATE_DELAY_MS" 2>"$W/emu.log" &
EPID=$!
for ((i = 0; i < 100; i++)); do
	[ -s "$W/emu.port" ] && break
	kill -0 "$EPID" 2>/dev/null || die "e2b-emulator exited: $(tail -n 3 "$W/emu.log")"
	sleep 0.05
done
PORT=$(cat "$W/emu.port" 2>/dev/null) || die "e2b-emulator wrote no port file"
export E2B_API_URL=http://127.0.0.1:$PORT E2B_SANDBOX_URL=http://127.0.0.1:$PORT E2B_API_KEY=$KEY
unset E2B_DOMAIN

E2B_OPTS=(-o "e2b.create_rate=$RATE" -o "e2b.max_sandboxes=$MAX_SB" -o "daemon.max_concurrent_runs=$((POOL + 12))")

# e2b_counts: "idle warming busy" of the daemon's e2b pool
e2b_counts() {
	ctl --json pool | "$PY" -c 'import json,sys; d=json.load(sys.stdin); p=d["pools"] if isinstance(d, dict) else d; e=[x for x in p if x["backend"] == "e2b"][0]; print(e["idle"], e["warming"], e["busy"])'
}
# e2b_wait IDLE SECONDS: until the pool has at least IDLE idle sandboxes and
# none warming or busy. Also before each stop, so that the stop time
# printed is that of a quiet pool (b35870f stopped with creates in flight
# left sandboxes running and took 5 s; fixed on i7-pool in 6babfc6).
e2b_wait() {
	local i c
	for ((i = 0; i < $2 * 10; i++)); do
		c=$(e2b_counts 2>/dev/null)
		set -- "$1" "$2" $c
		[ $# = 5 ] && [ "$3" -ge "$1" ] && [ "$4" = 0 ] && [ "$5" = 0 ] && return 0
		sleep 0.1
	done
	echo "bench: the e2b pool did not settle at $1 idle in $2 s (idle warming busy: $c)" >&2
	return 1
}
# hwm_kb PID: VmHWM
hwm_kb() { awk '$1 == "VmHWM:" { print $2 }' "/proc/$1/status" 2>/dev/null; }
# cpu_ms PID: user + system CPU of PID and its reaped children
cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{ print int(($14 + $15 + $16 + $17) * 1000 / hz) }' "/proc/$1/stat" 2>/dev/null; }
rpc() { "$BENCH_BIN/bench_rpc" "$@"; }
# phase NAME: the wall time since the previous phase, for the last line
PHASES= T_PHASE=$T_SECTION
phase() {
	local now=$(date +%s%N)
	PHASES="$PHASES${PHASES:+, }$1 $(((now - T_PHASE) / 1000000000)) s"
	T_PHASE=$now
}

noop_chain "$W/noop1" 1
noop_chain "$W/noopN" "$STEPS"
if [ -f "$SRC/examples/noop3/manifest.yaml" ]; then NOOP3=$SRC/examples/noop3; else
	noop_chain "$W/noop3" 3
	NOOP3=$W/noop3
fi

# ---- cold: e2b.pool_size=0, each run creates its sandbox ----------------------

start e2bcold -o e2b.pool_size=0 "${E2B_OPTS[@]}"
sleep 1
rss0=$(rss_kb "$DPID")
phase start
rpc -b e2b "$SOCK" latency "$N_COLD" "$W/noop1" 10 >"$W/cold.lat" || die "bench_rpc latency (e2b cold) failed"
phase "cold latency"
rpc -b e2b "$SOCK" burst "$POOL" "$W/noop1" >"$W/cold.burst" || die "bench_rpc burst (e2b cold) failed"
phase "cold burst"
rpc -b e2b "$SOCK" throughput "$N_TPUT_COLD" 4 "$NOOP3" >"$W/cold.tput" || die "bench_rpc throughput (e2b cold) failed"
phase "cold throughput"
e2b_wait 0 30
cold_left=$(e2b_counts | cut -d' ' -f1)
cold_cpu=$(cpu_ms "$DPID")
stop_daemon
phase "cold stop"
cold_stop_ms=$STOP_MS cold_stop_note=$STOP_NOTE

# ---- warm: e2b.pool_size=20 ---------------------------------------------------

t0=$(date +%s%N)
start e2bwarm -o "e2b.pool_size=$POOL" "${E2B_OPTS[@]}"
e2b_wait "$POOL" 60 || die "the warm pool never filled"
fill_ms=$((($(date +%s%N) - t0) / 1000000))
start_ms=$(ctl --json pool | "$PY" -c 'import json,sys; d=json.load(sys.stdin); p=d["pools"] if isinstance(d, dict) else d; v=sorted([x for x in p if x["backend"] == "e2b"][0]["start_ms"]); print("%d %d %d" % (v[(len(v) - 1) // 2], v[-1], len(v)) if v else "0 0 0")')
sleep 0.5
rss20=$(rss_kb "$DPID")
phase "warm fill"
rpc -b e2b "$SOCK" burst "$POOL" "$W/noop1" >"$W/warm.burst" || die "bench_rpc burst (e2b warm) failed"
e2b_wait "$POOL" 30
phase "warm burst+refill"
# Warm runs in batches of 10 back to back, each batch from a full pool (-s):
# a batch ends before the first replacement's create answers (820 ms), so
# no sandbox is being uploaded and started beside the measured runs. With
# the emulator those starts (bwrap, a 6 MB worker written) load this host;
# with E2B they load E2B's. Then the same runs 100 ms apart, replacements
# in flight, for comparison.
rpc -b e2b -s 10 "$SOCK" latency "$N_WARM" "$W/noop1" 10 >"$W/warm.lat" || die "bench_rpc latency (e2b warm) failed"
rpc -b e2b "$SOCK" latency "$N_WARM" "$W/noop1" 100 >"$W/churn.lat" || die "bench_rpc latency (e2b warm, refills in flight) failed"
rpc -b e2b -s "$N_STEP" "$SOCK" latency "$N_STEP" "$W/noop1" 10 >"$W/step1.lat" || die "bench_rpc latency (e2b, 1 step) failed"
rpc -b e2b -s 1 "$SOCK" latency "$N_STEP" "$W/noopN" 10 >"$W/stepN.lat" || die "bench_rpc latency (e2b, $STEPS steps) failed"
rpc -s "$N_STEP" "$SOCK" latency "$N_STEP" "$W/noop1" 10 >"$W/lstep1.lat" || die "bench_rpc latency (local, 1 step) failed"
rpc -s 1 "$SOCK" latency "$N_STEP" "$W/noopN" 10 >"$W/lstepN.lat" || die "bench_rpc latency (local, $STEPS steps) failed"
phase "warm latency+steps"
e2b_wait "$POOL" 30
rpc -b e2b "$SOCK" throughput "$N_TPUT" 4 "$NOOP3" >"$W/warm.tput" || die "bench_rpc throughput (e2b warm) failed"
phase "warm throughput"
e2b_wait "$POOL" 30
warm_left=$(e2b_counts | cut -d' ' -f1)
rss_end=$(rss_kb "$DPID") hwm_end=$(hwm_kb "$DPID") warm_cpu=$(cpu_ms "$DPID")
stop_daemon
warm_stop_ms=$STOP_MS warm_stop_note=$STOP_NOTE
not_killed=$(cat "$W/e2bcold.log" "$W/e2bwarm.log" | grep -c 'not confirmed killed')
emu_cpu=$(cpu_ms "$EPID")
stop_emulator
phase "stops"
by_api=$(grep -c 'destroyed: killed by API' "$W/emu.log")
created=$(grep -c ' created template=' "$W/emu.log")
at_exit=$(grep -c 'destroyed: emulator shutdown' "$W/emu.log")
left=$(pgrep -f -- "$W" | tr '\n' ' ')

# ---- report -------------------------------------------------------------------

# verdict VALUE OP TARGET: MET or MISSED
verdict() { awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN { ok = op == "<=" ? v <= t : v >= t; print ok ? "MET" : "MISSED" }'; }
# per_step A B: (B - A) / (STEPS - 1), µs in, ms out
per_step() { awk -v a="$1" -v b="$2" -v n="$STEPS" 'BEGIN { printf "%.2f", (b - a) / (n - 1) / 1000 }'; }
tput() { awk '$1 == "throughput" { printf "%.1f", $2 / ($4 / 1e6) }' "$1"; }
pair() { echo "p50 $(ms "$(field "$1" 2 "$2")") ms p99 $(ms "$(field "$1" 3 "$2")") ms"; }

echo "E2B (emulator, --create-delay-ms $CREATE_DELAY_MS; e2b.create_rate=$RATE/s, e2b.max_sandboxes=$MAX_SB, daemon.max_concurrent_runs=$((POOL + 12)), one run per sandbox as by default)"

f=$W/warm.lat c=$W/cold.lat
w50=$(field first_step_us 2 "$f") c50=$(field first_step_us 2 "$c")
ratio=$(awk -v c="$c50" -v w="$w50" 'BEGIN { printf "%.0f", (w > 0 ? c / w : 0) }')
h=$W/churn.lat
echo "warm E2B submit->first step: $(pair first_step_us "$f") (n=$(field first_step_us 4 "$f"), batches of 10 from a full pool; warm $(field warm 2 "$f")/$(field warm 3 "$f"), acquire wait p99 $(field acquire_wait_ms 3 "$f") ms; failed $(field failed 2 "$f")) | cold baseline (e2b.pool_size=0) $(pair first_step_us "$c") (n=$(field first_step_us 4 "$c"), warm $(field warm 2 "$c")/$(field warm 3 "$c"))"
echo "  target warm p50 <= 5 ms: $(verdict "$w50" "<=" 5000) ($(ms "$w50") ms); target cold/warm p50 >= 100x: $(verdict "$ratio" ">=" 100) (${ratio}x)"
echo "  the same runs 100 ms apart, replacements being created beside them: $(pair first_step_us "$h") (n=$(field first_step_us 4 "$h"), warm $(field warm 2 "$h")/$(field warm 3 "$h"), acquire wait p99 $(field acquire_wait_ms 3 "$h") ms)"
echo "warm E2B submit->ack: $(pair submit_ack_us "$f"); noop run end to end $(pair run_us "$f") | cold baseline end to end $(pair run_us "$c")"

a=$W/step1.lat b=$W/stepN.lat la=$W/lstep1.lat lb=$W/lstepN.lat
s50=$(per_step "$(field run_us 2 "$a")" "$(field run_us 2 "$b")")
echo "per-step overhead on E2B (osiris.noop, ($STEPS-step run - 1-step run)/$((STEPS - 1))): p50 $s50 ms p99 $(per_step "$(field run_us 3 "$a")" "$(field run_us 3 "$b")") ms (n=$N_STEP runs each, from a full pool; 1-step p50 $(ms "$(field run_us 2 "$a")") ms, $STEPS-step p50 $(ms "$(field run_us 2 "$b")") ms) | local, same daemon: p50 $(per_step "$(field run_us 2 "$la")" "$(field run_us 2 "$lb")") ms p99 $(per_step "$(field run_us 3 "$la")" "$(field run_us 3 "$lb")") ms (n=$N_STEP)"
echo "  target E2B p50 <= 2 ms: $(verdict "$s50" "<=" 2) ($s50 ms)"
echo "  step_start to step_start inside the $STEPS-step runs, as received: E2B $(pair step_gap_us "$b") ($(field step_gaps_over_30ms 2 "$b") of $(field step_gap_us 4 "$b") gaps over 30 ms) | local $(pair step_gap_us "$lb") ($(field step_gaps_over_30ms 2 "$lb") of $(field step_gap_us 4 "$lb") over 30 ms)"

f=$W/warm.burst c=$W/cold.burst
waited=$(awk -v n="$POOL" '$1 == "burst_warm" { cold = n - $2 } $1 == "burst_max_wait_ms" { m = $2 } END { print cold + 0, m + 0 }' "$f")
set -- $waited
burst_ok=$([ "$1" = 0 ] && [ "$2" -lt "$CREATE_DELAY_MS" ] && echo MET || echo MISSED)
echo "$POOL concurrent runs, e2b.pool_size=$POOL: warm $(field burst_warm 2 "$f")/$POOL, acquire wait p50 $(field burst_wait_ms 2 "$f") ms p99 $(field burst_wait_ms 3 "$f") ms max $2 ms; submit->first step (step_start ts) $(pair burst_first_step_us "$f"); all done in $(ms "$(field burst_total_us 2 "$f")") ms, failed $(field failed 2 "$f") | cold baseline (pool_size=0): warm $(field burst_warm 2 "$c")/$POOL, wait p50 $(field burst_wait_ms 2 "$c") ms max $(field burst_max_wait_ms 2 "$c") ms; first step $(pair burst_first_step_us "$c"); done in $(ms "$(field burst_total_us 2 "$c")") ms"
echo "  target no run waits for a create (all warm, max wait < ${CREATE_DELAY_MS} ms): $burst_ok ($1 not warm, max wait $2 ms)"

f=$W/warm.tput c=$W/cold.tput
echo "sustained E2B noop3 runs (4 connections; the $POOL warm, then one new sandbox per run at e2b.create_rate=$RATE/s): $(tput "$f") runs/s (n=$(field throughput 2 "$f"), failed $(field throughput 5 "$f"); run latency p50 $(field run_latency_ms 2 "$f") ms p99 $(field run_latency_ms 3 "$f") ms) | cold baseline (pool_size=0, same rate) $(tput "$c") runs/s (n=$(field throughput 2 "$c"), failed $(field throughput 5 "$c"); p50 $(field run_latency_ms 2 "$c") ms p99 $(field run_latency_ms 3 "$c") ms)"

r20=$(awk -v k="$rss20" 'BEGIN { printf "%.1f", k / 1024 }')
echo "daemon RSS with $POOL warm sandboxes: $r20 MiB (after the section's runs, $POOL warm again: $(mb "$rss_end") MiB, VmHWM $(mb "$hwm_end") MiB) | with 0 (pool_size=0, idle): $(mb "$rss0") MiB"
echo "  target <= 32 MiB with $POOL warm: $(verdict "$r20" "<=" 32) ($r20 MiB)"

set -- $start_ms
echo "CPU: osirisd $(ms "$cold_cpu") s (cold daemon) + $(ms "$warm_cpu") s (warm daemon), e2b-emulator with its sandboxes $(ms "$emu_cpu") s for $created sandboxes ($((emu_cpu / (created > 0 ? created : 1))) ms each): the emulator's sandbox starts, not osirisd, bound the sustained rate and the pool fill on this host"
echo "pool fill: $POOL sandboxes ready $(ms "$fill_ms") s after osirisd started (create $CREATE_DELAY_MS ms + worker upload and start; sandbox start p50 $1 ms max $2 ms over the last $3)"
echo "shutdown: osirisd stop ${cold_stop_ms} ms (cold) ${warm_stop_ms} ms (warm, $POOL idle)${cold_stop_note:+; cold: $cold_stop_note}${warm_stop_note:+; warm: $warm_stop_note}; sandboxes killed by osirisd $by_api, left to the emulator's exit $at_exit, 'not confirmed killed' $not_killed; processes left: ${left:-none}"
echo "idle sandboxes left once all runs were done: $cold_left with e2b.pool_size=0, $warm_left with e2b.pool_size=$POOL"
echo "E2B section: $((($(date +%s%N) - T_SECTION) / 1000000000)) s (phases: $PHASES)"

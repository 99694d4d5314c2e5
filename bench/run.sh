#!/bin/sh
# run.sh: `make bench`. Starts private osirisd instances (warm pool, and
# pool_size=0 as the cold baseline) on a temp dir, runs the bench programs
# and prints every figure as median and p99 with a baseline beside it; then
# the E2B section (bench/e2b.sh, against the emulator) unless BENCH_E2B=0.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u

. "$(dirname "$0")/lib.sh"
# These daemons are local only: never a real E2B account (e2b.sh points its
# own daemons at the emulator).
unset E2B_API_KEY E2B_API_URL E2B_SANDBOX_URL E2B_DOMAIN
# Sizes (override for a quick run: BENCH_QUICK=1).
if [ "${BENCH_QUICK:-0}" = 1 ]; then
	N_WARM=50 N_COLD=20 N_STEP=5 STEPS=50 N_TPUT=300 N_TPUT_COLD=100 CSV_MB=20 CSV_REPS=1
else
	N_WARM=500 N_COLD=100 N_STEP=15 STEPS=100 N_TPUT=2000 N_TPUT_COLD=300 CSV_MB=100 CSV_REPS=3
fi

for p in "$BIN/osirisd" "$BIN/osirisctl" "$BIN/osiris-worker" "$BENCH_BIN/bench_rpc" "$BENCH_BIN/bench_store"; do
	[ -x "$p" ] || die "$p: missing (make bench builds it)"
done

# The state dirs live under BENCH_TMPDIR (default /var/tmp: a plain disk
# directory like /var/lib/osiris; on some machines /tmp is a far slower
# directory to create files in, measured 10x here).
W=$(mktemp -d "${BENCH_TMPDIR:-/var/tmp}/osiris-bench.XXXXXX") || die "mktemp"
cleanup() {
	if [ -n "$DPID" ]; then
		kill -9 "$DPID" 2>/dev/null
		wait "$DPID" 2>/dev/null
	fi
	rm -rf "$W"
}
trap cleanup EXIT

pool_idle() { pool_field local idle; }
# wait until the local pool has N idle workers (at most 5 s)
wait_idle() {
	local i
	for ((i = 0; i < 100; i++)); do
		[ "$(pool_idle 2>/dev/null)" -ge "$1" ] 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

# ctl_wait DIR N: N x `osirisctl submit DIR --wait`, each timed as a whole
# process (exec, connect, submit, follow to the end, exit) from Python.
ctl_wait() {
	"$PY" - "$BIN/osirisctl" "$SOCK" "$1" "$2" <<'PYEOF'
import subprocess, sys, time
ctl, sock, d, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
lat = []
for _ in range(n):
    t = time.perf_counter()
    rc = subprocess.run([ctl, "-S", sock, "submit", d, "--wait"], stdout=subprocess.DEVNULL).returncode
    if rc == 0:
        lat.append((time.perf_counter() - t) * 1e6)
lat.sort()
k = len(lat)
pick = lambda p: lat[max(0, int(-(-p * k // 100)) - 1)] if k else 0
print("ctl_wait_us %d %d %d" % (pick(50), pick(99), k))
PYEOF
}
# after_fail OK BAD N: N x (a run of BAD, which fails, then `osirisctl
# submit OK --wait` timed as a whole process): what a run waits for when
# the run before it on the same sandbox failed.
after_fail() {
	"$PY" - "$BIN/osirisctl" "$SOCK" "$1" "$2" "$3" <<'PYEOF'
import subprocess, sys, time
ctl, sock, ok, bad, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
lat = []
for _ in range(n):
    subprocess.run([ctl, "-S", sock, "submit", bad, "--wait"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t = time.perf_counter()
    if subprocess.run([ctl, "-S", sock, "submit", ok, "--wait"], stdout=subprocess.DEVNULL).returncode == 0:
        lat.append((time.perf_counter() - t) * 1e6)
lat.sort()
k = len(lat)
pick = lambda p: lat[max(0, int(-(-p * k // 100)) - 1)] if k else 0
print("after_fail_us %d %d %d" % (pick(50), pick(99), k))
PYEOF
}

# start_ms: the pool's recent worker start latencies (what a run without a
# warm worker waits for), "p50 max n".
start_ms() {
	ctl --json pool | "$PY" -c '
import json, sys
d = json.load(sys.stdin)
p = [x for x in (d["pools"] if isinstance(d, dict) else d) if x["backend"] == "local"][0]
v = sorted(p.get("start_ms") or [])
print("start_ms %d %d %d" % (v[(len(v) - 1) // 2] if v else 0, v[-1] if v else 0, len(v)))'
}

# ---- pipelines -------------------------------------------------------------

noop_chain "$W/noop1" 1
# a 1-step run that fails at its step (a variable that is not set)
noop_chain "$W/fail1" 1
printf '{"component":"osiris.noop","mode":"transform","note":"${OSIRIS_BENCH_UNSET}"}\n' >"$W/fail1/cfg/s1.json"
noop_chain "$W/noopN" "$STEPS"
noop_chain "$W/noop200" 200
# the follow-latency pipeline: a 0.2 s SQL step first, so that a follower
# attached right after submit sees the 200 noop steps live
sed -i 's/needs: \[\]/needs: [spin]/' "$W/noop200/manifest.yaml"
printf '  - id: spin\n    driver: duckdb.processor\n    cfg_path: cfg/spin.json\n    needs: []\n' >>"$W/noop200/manifest.yaml"
echo '{"query":"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000) SELECT count(*) AS n FROM c"}' >"$W/noop200/cfg/spin.json"
if [ -f "$SRC/examples/noop3/manifest.yaml" ]; then NOOP3=$SRC/examples/noop3; else
	noop_chain "$W/noop3" 3
	NOOP3=$W/noop3
fi

echo "osirisd bench on $(nproc) cores, $(uname -r); $(date -u +%Y-%m-%dT%H:%MZ); load average $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- warm daemon: RSS, submit latency, per-step, follow, throughput -----------

start warm -o local.pool_size=2
wait_idle 2 || echo "bench: warm pool did not reach 2 idle workers" >&2
sleep 0.5
d_rss=$(rss_kb "$DPID")
# an idle worker: the first osiris-worker among the daemon's descendants
# (under bubblewrap it is a grandchild or deeper)
w_rss= w_pss= c_rss= c_pss=
pss_kb() { awk '$1 == "Pss:" { print $2 }' "/proc/$1/smaps_rollup" 2>/dev/null; }
for p in $(descendants "$DPID"); do
	case $(readlink "/proc/$p/exe" 2>/dev/null) in */osiris-worker) w_rss=$(rss_kb "$p") w_pss=$(pss_kb "$p") && break ;; esac
done
# with a zygote (the default), the idle process forked for the next run
for c in $(pgrep -P "${p:-0}" 2>/dev/null); do
	c_rss=$(rss_kb "$c") c_pss=$(pss_kb "$c") && break
done
py_rss=$("$PY" -c 'import pandas; print([l.split()[1] for l in open("/proc/self/status") if l.startswith("VmRSS:")][0])' 2>/dev/null)

"$BENCH_BIN/bench_rpc" "$SOCK" latency "$N_WARM" "$W/noop1" 10 >"$W/warm.lat" || die "bench_rpc latency (warm) failed"
"$BENCH_BIN/bench_rpc" "$SOCK" latency "$N_STEP" "$W/noop1" 10 >"$W/step1.lat" || die "bench_rpc latency (1 step) failed"
"$BENCH_BIN/bench_rpc" "$SOCK" latency "$N_STEP" "$W/noopN" 10 >"$W/stepN.lat" || die "bench_rpc latency ($STEPS steps) failed"
"$BENCH_BIN/bench_rpc" "$SOCK" follow 3 "$W/noop200" >"$W/follow.lat" || die "bench_rpc follow failed"

# logs -f through osirisctl: a slow-ish run (200 noop steps), each printed
# JSON line stamped on arrival and compared with its ts.
RUN=$(ctl submit "$W/noop200" | head -n1)
ctl --json logs -f "$RUN" | "$PY" -c '
import json, sys, time, calendar
lat = []
start = time.time() + 0.05  # records before osirisctl attached are catch-up, not live
for line in sys.stdin:
    now = time.time()
    r = json.loads(line)
    if r.get("origin") != "worker":
        continue
    ts = r["ts"]
    t = calendar.timegm(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")) + int(ts[20:23]) / 1000.0
    if t >= start:
        lat.append((now - t) * 1e6)
lat.sort()
n = len(lat)
pick = lambda p: lat[max(0, int(-(-p * n // 100)) - 1)] if n else 0
print("ctl_follow_us %d %d %d" % (pick(50), pick(99), n))' >"$W/ctlfollow.lat"

"$BENCH_BIN/bench_rpc" "$SOCK" throughput "$N_TPUT" 4 "$NOOP3" >"$W/warm.tput" || die "bench_rpc throughput (warm) failed"
ctl_wait "$W/noop1" "$N_COLD" >"$W/warm.ctlwait" || echo "bench: submit --wait timing (warm) failed" >&2
start_ms >"$W/warm.start" 2>/dev/null

# CSV extract -> write of a generated file
csv_pipeline() {
	mkdir -p "$W/csv/data" "$W/csv/cfg"
	printf 'pipeline:\n  id: csvcopy\nsteps:\n  - id: ex\n    driver: filesystem.csv_extractor\n    cfg_path: cfg/ex.json\n    needs: []\n  - id: out\n    driver: filesystem.csv_writer\n    cfg_path: cfg/out.json\n    needs: [ex]\n' >"$W/csv/manifest.yaml"
	echo '{"component":"filesystem.csv_extractor","mode":"extract","path":"data/in.csv"}' >"$W/csv/cfg/ex.json"
	echo '{"component":"filesystem.csv_writer","mode":"write","path":"output/out.csv"}' >"$W/csv/cfg/out.json"
	"$PY" "$SRC/bench/gen_csv.py" "$W/csv/data/in.csv" "$1" || die "gen_csv failed"
}
# csv_run: one run; appends "e2e_us steps_us" to csv.times, 1 on failure
csv_run() {
	local t0 t1 R steps_ms
	t0=$(date +%s%N)
	ctl submit "$W/csv" --wait --max-context 256M >"$W/csv.out" 2>&1 || return 1
	t1=$(date +%s%N)
	R=$(head -n1 "$W/csv.out")
	steps_ms=$(ctl --json show "$R" | "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(sum(s["duration_ms"] or 0 for s in d["steps"]))')
	echo "$(((t1 - t0) / 1000)) $((steps_ms * 1000))" >>"$W/csv.times"
}
csv_pipeline "$CSV_MB"
: >"$W/csv.times"
csv_note=
if ! csv_run; then
	R=$(head -n1 "$W/csv.out")
	csv_note="($CSV_MB MB run failed: $(ctl --json show "$R" 2>/dev/null | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["error"])' 2>/dev/null); measured at 60 MB, under the default 64 MiB cap)"
	CSV_MB=60
	csv_pipeline 60
fi
for ((i = $(grep -c . "$W/csv.times"); i < CSV_REPS; i++)); do
	csv_run || die "csv run failed: $(tail -n 3 "$W/csv.out")"
done
csv_bytes=$(stat -c %s "$W/csv/data/in.csv")
# copies of the context's bytes on the way (proto/PROTOCOL.md 5.1): 4 when
# the work dir shares the state dir's filesystem (bundle and artifact hard
# linked), one more each way when it does not (kernel copies)
csv_wd=$(sed -n 's/.*local pool: .*work_dir \([^ ]*\).*/\1/p' "$W/warm.log" | head -n1)
if [ -n "$csv_wd" ] && [ "$(stat -c %d "$csv_wd" 2>/dev/null)" = "$(stat -c %d "$W/warm.state")" ]; then
	csv_copies="4 copies of the input (2 user, 1 page cache, 1 kernel), output 0 (hard link)"
else
	csv_copies="5 copies of the input (2 user, 1 page cache, 2 kernel), output 1 (kernel copy; work dir ${csv_wd:-?} on another filesystem)"
fi
stop

# ---- cold baseline: a fresh worker per run ----------------------------------

start cold -o local.pool_size=0
"$BENCH_BIN/bench_rpc" "$SOCK" latency "$N_COLD" "$W/noop1" 10 >"$W/cold.lat" || die "bench_rpc latency (cold) failed"
"$BENCH_BIN/bench_rpc" "$SOCK" throughput "$N_TPUT_COLD" 4 "$NOOP3" >"$W/cold.tput" || die "bench_rpc throughput (cold) failed"
ctl_wait "$W/noop1" "$N_COLD" >"$W/cold.ctlwait" || echo "bench: submit --wait timing (cold) failed" >&2
stop

# ---- a run after a failed one, on a single sandbox ---------------------------

start onesb -o local.pool_size=1 -o local.max_workers=1
wait_idle 1
after_fail "$W/noop1" "$W/fail1" "$N_COLD" >"$W/onesb.after" || echo "bench: run after a failed run failed" >&2
ctl_wait "$W/noop1" "$N_COLD" >"$W/onesb.ctlwait" || echo "bench: submit --wait timing (one sandbox) failed" >&2
stop

# ---- where the time goes: the same warm figures without bubblewrap --------

start noiso -o local.pool_size=2 -o local.isolation=none
wait_idle 2
"$BENCH_BIN/bench_rpc" "$SOCK" latency "$N_COLD" "$W/noop1" 10 >"$W/noiso.lat" || die "bench_rpc latency (no isolation) failed"
"$BENCH_BIN/bench_rpc" "$SOCK" throughput "$N_TPUT_COLD" 4 "$NOOP3" >"$W/noiso.tput" || die "bench_rpc throughput (no isolation) failed"
stop

# ---- tuned: workspaces on tmpfs, workers reused (local.worker_max_runs) -----
# The state dir (SQLite, bundles, artifacts) stays where it was, on disk.

TUNED_WD=$(mktemp -d /dev/shm/osiris-bench-wd.XXXXXX 2>/dev/null || mktemp -d "$W/wd.XXXXXX")
start tuned -o local.pool_size=4 -o "local.work_dir=$TUNED_WD" -o local.worker_max_runs=100000
wait_idle 4
"$BENCH_BIN/bench_rpc" "$SOCK" latency "$N_WARM" "$W/noop1" 10 >"$W/tuned.lat" || die "bench_rpc latency (tuned) failed"
"$BENCH_BIN/bench_rpc" "$SOCK" latency "$N_STEP" "$W/noop1" 10 >"$W/tstep1.lat" || die "bench_rpc latency (tuned, 1 step) failed"
"$BENCH_BIN/bench_rpc" "$SOCK" latency "$N_STEP" "$W/noopN" 10 >"$W/tstepN.lat" || die "bench_rpc latency (tuned, $STEPS steps) failed"
"$BENCH_BIN/bench_rpc" "$SOCK" throughput "$N_TPUT" 4 "$NOOP3" >"$W/tuned.tput" || die "bench_rpc throughput (tuned) failed"
stop
rm -rf "$TUNED_WD"

# ---- per-step system calls and allocations (bench/stepcount.sh) -------------
COUNT_RUNS=$([ "${BENCH_QUICK:-0}" = 1 ] && echo 2 || echo 5) bash "$SRC/bench/stepcount.sh" "$STEPS" >"$W/stepcount.out" ||
	echo "bench: stepcount.sh failed" >&2

# ---- store ----------------------------------------------------------------
mkdir -p "$W/store"
"$BENCH_BIN/bench_store" "$W/store" 300000 1000 >"$W/store.out" || die "bench_store failed"

# ---- pandas baseline for the CSV figure ---------------------------------------
pandas_times=$("$PY" -c '
import sys, time
import pandas as pd
for _ in range(int(sys.argv[2])):
    t = time.time(); df = pd.read_csv(sys.argv[1]); df.to_csv(sys.argv[1] + ".out.csv", index=False)
    print(int((time.time() - t) * 1e6))' "$W/csv/data/in.csv" "$CSV_REPS" 2>/dev/null)

# ---- report -----------------------------------------------------------------
echo
f=$W/warm.lat
c=$W/cold.lat
echo "warm submit->first step: p50 $(ms "$(field first_step_us 2 "$f")") ms p99 $(ms "$(field first_step_us 3 "$f")") ms (n=$(field first_step_us 4 "$f"), target p50 <= 1 ms) | cold baseline (pool_size=0) p50 $(ms "$(field first_step_us 2 "$c")") ms p99 $(ms "$(field first_step_us 3 "$c")") ms (n=$(field first_step_us 4 "$c"))"
echo "warm submit->ack (run row and bundle durable): p50 $(ms "$(field submit_ack_us 2 "$f")") ms p99 $(ms "$(field submit_ack_us 3 "$f")") ms | cold baseline p50 $(ms "$(field submit_ack_us 2 "$c")") ms p99 $(ms "$(field submit_ack_us 3 "$c")") ms"
echo "warm noop run end to end: p50 $(ms "$(field run_us 2 "$f")") ms p99 $(ms "$(field run_us 3 "$f")") ms | cold baseline p50 $(ms "$(field run_us 2 "$c")") ms p99 $(ms "$(field run_us 3 "$c")") ms"
echo "  (pool_size=0 makes sandboxes on demand and keeps them for 10 s of idleness, so after its first run that baseline is warm too; a worker start, what a run without a warm sandbox waits for, took p50 $(field start_ms 2 "$W/warm.start") ms, max $(field start_ms 3 "$W/warm.start") ms over the last $(field start_ms 4 "$W/warm.start") starts)"
cw=$(field ctl_wait_us 2 "$W/warm.ctlwait")
echo "osirisctl submit --wait, 1-step noop run, whole process: p50 $(ms "$cw") ms p99 $(ms "$(field ctl_wait_us 3 "$W/warm.ctlwait")") ms (n=$(field ctl_wait_us 4 "$W/warm.ctlwait"), timed from Python's fork+exec; target <= 10 ms: $(awk -v v="$cw" 'BEGIN { print (v > 0 && v <= 10000) ? "met" : "missed" }')) | baseline pool_size=0 p50 $(ms "$(field ctl_wait_us 2 "$W/cold.ctlwait")") ms p99 $(ms "$(field ctl_wait_us 3 "$W/cold.ctlwait")") ms"
a50=$(field run_us 2 "$W/step1.lat") a99=$(field run_us 3 "$W/step1.lat")
b50=$(field run_us 2 "$W/stepN.lat") b99=$(field run_us 3 "$W/stepN.lat")
ps50=$(awk -v a="$a50" -v b="$b50" -v n="$STEPS" 'BEGIN { printf "%.0f", (b - a) / (n - 1) }')
echo "per-step overhead (osiris.noop, ($STEPS-step run - 1-step run)/$((STEPS - 1))): p50 $ps50 us ($(if [ "$ps50" -lt 0 ] 2>/dev/null; then echo "not measured: the 1-step runs were the slower, load"; elif [ "$ps50" -le 100 ] 2>/dev/null; then echo met; else echo missed; fi)) p99 $(awk -v a="$a99" -v b="$b99" -v n="$STEPS" 'BEGIN { printf "%.0f", (b - a) / (n - 1) }') us (n=$N_STEP runs each) | baseline: target p50 <= 100 us; 1-step run p50 $(ms "$a50") ms, $STEPS-step run p50 $(ms "$b50") ms"
read -r _ sc_sd sc_sw sc_ad sc_aw sc_k <"$W/stepcount.out" 2>/dev/null
awk -v sd="${sc_sd:--}" -v sw="${sc_sw:--}" -v ad="${sc_ad:--}" -v aw="${sc_aw:--}" -v k="${sc_k:-0}" -v n="$STEPS" 'BEGIN {
	if (k == 0 || sd == "-") { print "per-step system calls and allocations: not measured (strace missing or stepcount.sh failed)"; exit }
	s = sd + sw; a = ad + aw
	printf "per-step cost (osiris.noop, %d %d-step runs - %d 1-step runs, under strace -ff + LD_PRELOAD counter, isolation=none): system calls %.1f (daemon %.1f + worker %.1f; target < 20: %s), allocations %.1f (daemon %.1f + worker %.1f; target < 50: %s)\n", k, n, k, s, sd, sw, s < 20 ? "met" : "missed", a, ad, aw, a < 50 ? "met" : "missed" }'
tput() { # FILE -> runs/s
	awk '$1 == "throughput" { printf "%.0f", $2 / ($4 / 1e6) }' "$1"
}
tw=$W/warm.tput tc=$W/cold.tput
echo "sustained noop3 runs (durable state, 4 connections, 32 in flight each): $(tput "$tw") runs/s (n=$(field throughput 2 "$tw"), failed $(field throughput 5 "$tw"); run latency p50 $(field run_latency_ms 2 "$tw") ms p99 $(field run_latency_ms 3 "$tw") ms; target >= 1000/s) | cold baseline $(tput "$tc") runs/s (n=$(field throughput 2 "$tc"); p50 $(field run_latency_ms 2 "$tc") ms p99 $(field run_latency_ms 3 "$tc") ms)"
s=$W/store.out
echo "events into the store (batches of 1000): $(field batched 2 "$s") events/s, batch commit p50 $(ms "$(field batched 3 "$s")") ms p99 $(ms "$(field batched 4 "$s")") ms (target >= 200000/s) | baseline one transaction per event: $(field per_event 2 "$s") events/s, p50 $(field per_event 3 "$s") us p99 $(field per_event 4 "$s") us"
f=$W/ctlfollow.lat r=$W/follow.lat
echo "logs -f worker ts -> osirisctl print: p50 $(ms "$(field ctl_follow_us 2 "$f")") ms p99 $(ms "$(field ctl_follow_us 3 "$f")") ms (n=$(field ctl_follow_us 4 "$f"), target p99 <= 5 ms; ts has ms resolution, +0.5 ms bias) | raw msgpack-rpc follower p50 $(ms "$(field follow_us 2 "$r")") ms p99 $(ms "$(field follow_us 3 "$r")") ms (n=$(field follow_us 4 "$r"))"
csv_line=$(awk -v bytes="$csv_bytes" -v pandas="$pandas_times" '
	{ e2e[NR] = $1; st[NR] = $2 }
	function med(a, n,   i, j, t) { for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t } return a[int((n + 1) / 2)] }
	function mx(a, n,   i, m) { m = a[1]; for (i = 2; i <= n; i++) if (a[i] > m) m = a[i]; return m }
	END {
		n = NR; mb = bytes / 1e6
		np = split(pandas, p, " ")
		ms = med(st, n); me = med(e2e, n)
		printf "CSV extract->write %.0f MB: steps %.0f MB/s (p50 %.2f s, worst %.2f s), end to end incl. submit+artifacts %.0f MB/s (p50 %.2f s) (n=%d)", mb, mb / (ms / 1e6), ms / 1e6, mx(st, n) / 1e6, mb / (me / 1e6), me / 1e6, n
		if (np > 0) {
			mp = med(p, np)
			printf " | pandas read_csv+to_csv %.0f MB/s (p50 %.2f s, n=%d, same run): osirisd steps %.1fx, end to end %.1fx pandas (target >= 5x: %s)", mb / (mp / 1e6), mp / 1e6, np, mp / ms, mp / me, mp / me >= 5 ? "met" : sprintf("missed by %.1fx", 5 / (mp / me))
		} else printf " | pandas baseline unavailable"
		printf "\n"
	}' "$W/csv.times")
echo "$csv_line${csv_note:+ $csv_note}; data path: $csv_copies"
f=$W/tuned.lat
t50=$(awk -v a="$(field run_us 2 "$W/tstep1.lat")" -v b="$(field run_us 2 "$W/tstepN.lat")" -v n="$STEPS" 'BEGIN { printf "%.0f", (b - a) / (n - 1) }')
t99=$(awk -v a="$(field run_us 3 "$W/tstep1.lat")" -v b="$(field run_us 3 "$W/tstepN.lat")" -v n="$STEPS" 'BEGIN { printf "%.0f", (b - a) / (n - 1) }')
echo "tuned (local.work_dir on tmpfs, local.worker_max_runs=100000, pool_size=4; state dir on disk): submit->first step p50 $(ms "$(field first_step_us 2 "$f")") ms p99 $(ms "$(field first_step_us 3 "$f")") ms (n=$(field first_step_us 4 "$f")); per-step overhead p50 $t50 us p99 $t99 us; noop3 $(tput "$W/tuned.tput") runs/s (n=$(field throughput 2 "$W/tuned.tput"), failed $(field throughput 5 "$W/tuned.tput")) | baseline: the default-config figures above"
f=$W/noiso.lat
echo "osirisctl submit --wait right after a failed run (pool_size=1, max_workers=1: the same sandbox), whole process: p50 $(ms "$(field after_fail_us 2 "$W/onesb.after")") ms p99 $(ms "$(field after_fail_us 3 "$W/onesb.after")") ms (n=$(field after_fail_us 4 "$W/onesb.after")) | baseline after a successful run, same daemon: p50 $(ms "$(field ctl_wait_us 2 "$W/onesb.ctlwait")") ms p99 $(ms "$(field ctl_wait_us 3 "$W/onesb.ctlwait")") ms"
echo "for comparison, warm with local.isolation=none (no bubblewrap): submit->first step p50 $(ms "$(field first_step_us 2 "$f")") ms p99 $(ms "$(field first_step_us 3 "$f")") ms (n=$(field first_step_us 4 "$f")); noop3 $(tput "$W/noiso.tput") runs/s (n=$(field throughput 2 "$W/noiso.tput"))"
echo "RSS idle daemon: $(mb "$d_rss") MB, idle warm worker: $(mb "${w_rss:-0}") MB (Pss $(mb "${w_pss:-0}") MB)${c_rss:+, its forked process for the next run: $(mb "$c_rss") MB (Pss $(mb "${c_pss:-0}") MB)} | baseline python3+pandas interpreter idle: $(mb "${py_rss:-0}") MB"

# ---- E2B ----------------------------------------------------------------------
if [ "${BENCH_E2B:-1}" != 0 ]; then
	echo
	bash "$SRC/bench/e2b.sh" || die "the E2B section failed"
fi

# lib.sh: shared helpers for the regress cases (sourced by every t_*.sh).
# Each case runs in its own temp dir $T with its own osirisd on $T/sock and
# state dir $T/state; the EXIT trap kills what the case started and checks
# the daemon's log for sanitizer reports.

set -u

: "${BIN:?BIN must point at the directory holding osirisd/osirisctl/osiris-worker}"
: "${T:?T must be the private temp dir of the case}"
SRC=${SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
REGRESS=$SRC/tests/regress
PY=${PY:-/usr/bin/python3}
[ -x "$PY" ] || PY=python3
. "$REGRESS/proc.sh"

SOCK=$T/sock
STATE=$T/state
DLOG=$T/daemon.log
DAEMON_PID=
DAEMON_CONF=${DAEMON_CONF:-/dev/null}
BG_PIDS=()
# Commands lib_cleanup runs first (stop a database server a case started).
CLEANUP_CMDS=()
# Options every test daemon gets: short stop grace and cancel grace so a
# case never waits on the production defaults (30 s, 5 s).
DAEMON_BASE_OPTS=(-o daemon.shutdown_grace_s=2 -o daemon.cancel_grace_ms=500)
# shellcheck disable=SC2206
DAEMON_EXTRA_OPTS=(${OSIRIS_REGRESS_DAEMON_OPTS:-})
# Workers' stderr reaches the daemon's log at debug level only: under the
# sanitizer build log at debug so a worker's report is caught too.
[ "${OSIRIS_ASAN:-0}" = 1 ] && DAEMON_EXTRA_OPTS+=(-v)

export OSIRIS_SOCKET=$SOCK
if [ "${OSIRIS_ASAN:-0}" = 1 ]; then
	export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
	export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
fi

# ---- reporting ---------------------------------------------------------

fail() {
	echo "FAIL: $*" >&2
	exit 1
}
note() { echo "# $*"; }

# ---- cleanup -----------------------------------------------------------

lib_cleanup() {
	local rc=$? p
	trap - EXIT
	for p in "${CLEANUP_CMDS[@]}"; do
		eval "$p" >/dev/null 2>&1
	done
	for p in "${BG_PIDS[@]}"; do
		kill -9 "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
		kill -9 "$DAEMON_PID" 2>/dev/null
		wait "$DAEMON_PID" 2>/dev/null
	fi
	# Workers of a SIGKILLed daemon see EOF on stdin and exit; give them a
	# moment so no process of this case outlives it.
	sleep 0.1
	if ! sanitizer_clean; then
		echo "FAIL: sanitizer report in $DLOG:" >&2
		grep -n -A20 -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$DLOG" | head -60 >&2
		rc=1
	fi
	exit $rc
}
trap lib_cleanup EXIT

sanitizer_clean() {
	[ -f "$DLOG" ] || return 0
	! grep -q -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$DLOG"
}

# ---- waiting -----------------------------------------------------------

# wait_for SECONDS CMD...: poll CMD every 50 ms until it succeeds.
wait_for() {
	local secs=$1 i n
	shift
	n=$((secs * 20))
	for ((i = 0; i < n; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	return 1
}

# ---- daemon ------------------------------------------------------------

# start_daemon [osirisd args, e.g. -o local.pool_size=0]
start_daemon() {
	"$BIN/osirisd" -S "$SOCK" -D "$STATE" -f "$DAEMON_CONF" "${DAEMON_BASE_OPTS[@]}" \
		${DAEMON_EXTRA_OPTS[@]+"${DAEMON_EXTRA_OPTS[@]}"} "$@" >>"$DLOG" 2>&1 &
	DAEMON_PID=$!
	if ! wait_for 10 ctl ping; then
		kill -0 "$DAEMON_PID" 2>/dev/null || fail "osirisd exited at start: $(tail -3 "$DLOG")"
		fail "osirisd did not answer ping within 10 s: $(tail -3 "$DLOG")"
	fi
}

# stop_daemon: SIGTERM, then the daemon must exit 0 within 15 s.
stop_daemon() {
	local i rc
	[ -n "$DAEMON_PID" ] || return 0
	kill -TERM "$DAEMON_PID" 2>/dev/null
	for ((i = 0; i < 300; i++)); do
		kill -0 "$DAEMON_PID" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$DAEMON_PID" 2>/dev/null; then
		kill -9 "$DAEMON_PID"
		wait "$DAEMON_PID" 2>/dev/null
		DAEMON_PID=
		fail "osirisd did not exit within 15 s of SIGTERM"
	fi
	wait "$DAEMON_PID"
	rc=$?
	DAEMON_PID=
	[ "$rc" = 0 ] || fail "osirisd exited with status $rc on SIGTERM: $(tail -3 "$DLOG")"
}

# kill_daemon: SIGKILL (crash), leaving the socket file and the store as is.
kill_daemon() {
	[ -n "$DAEMON_PID" ] || return 0
	kill -9 "$DAEMON_PID" 2>/dev/null
	wait "$DAEMON_PID" 2>/dev/null
	DAEMON_PID=
}

daemon_alive() {
	[ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null
}

# VmRSS / VmHWM of a pid in kB.
proc_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

# canary PREFIX: PREFIX-<16 random hex digits>, a secret to look for later.
canary() { printf '%s-%s' "$1" "$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"; }

# ---- client ------------------------------------------------------------

ctl() { "$BIN/osirisctl" -S "$SOCK" "$@"; }

# ctlc ARGS...: run osirisctl, capturing OUT, ERR and RC (never exits).
ctlc() {
	"$BIN/osirisctl" -S "$SOCK" "$@" >"$T/ctl.out" 2>"$T/ctl.err"
	RC=$?
	OUT=$(cat "$T/ctl.out")
	ERR=$(cat "$T/ctl.err")
	return 0
}

# submit DIR [args]: submit, set RUN to the id on the first line.
submit() {
	ctlc submit "$@"
	[ "$RC" = 0 ] || fail "submit $* exited $RC: $ERR"
	RUN=$(head -n1 "$T/ctl.out")
	[[ "$RUN" =~ ^[A-Za-z0-9_-]+$ ]] || fail "submit: first line is not a run id: '$RUN'"
}

# ---- JSON (python3; jq is not a build dependency) ----------------------

# json EXPR: evaluate EXPR with d = the JSON document on stdin, print it
# (str as is, everything else as JSON).
json() {
	"$PY" -c '
import json, sys
d = json.load(sys.stdin)
v = eval(sys.argv[1])
print(v if isinstance(v, str) else json.dumps(v))' "$1"
}
# jsonl EXPR: the same with L = list of the JSON lines on stdin.
jsonl() {
	"$PY" -c '
import json, sys
L = [json.loads(l) for l in sys.stdin if l.strip()]
v = eval(sys.argv[1])
print(v if isinstance(v, str) else json.dumps(v))' "$1"
}

show_json() { ctl --json show "$1"; }
run_field() { show_json "$1" | json "d[\"$2\"]"; }
run_state() { show_json "$1" | json 'd["state"]'; }
state_is() { [ "$(run_state "$1")" = "$2" ]; }
run_final() {
	case $(run_state "$1") in succeeded | failed | cancelled | lost) return 0 ;; esac
	return 1
}
# wait_state RUN STATE [SECONDS]
wait_state() {
	wait_for "${3:-20}" state_is "$1" "$2" || fail "run $1 did not reach state $2 (now: $(run_state "$1"))"
}
step_field() { show_json "$1" | json "[s for s in d['steps'] if s['id'] == '$2'][0]['$3']"; }

# ---- assertions --------------------------------------------------------

assert_eq() { [ "$1" = "$2" ] || fail "${3:-value}: expected '$2', got '$1'"; }
assert_rc() { [ "$RC" = "$1" ] || fail "${2:-osirisctl} exited $RC, expected $1 (stderr: $ERR)"; }
assert_contains() {
	case $1 in *"$2"*) ;; *) fail "${3:-text} does not contain '$2': $(printf %s "$1" | head -c 400)" ;; esac
}
assert_not_contains() {
	case $1 in *"$2"*) fail "${3:-text} contains '$2'" ;; esac
}
assert_match() { # TEXT ERE what
	printf %s "$1" | grep -q -E -i -- "$2" || fail "${3:-text} does not match /$2/: $(printf %s "$1" | head -c 400)"
}
# assert_err_line: ERR is exactly one line "osirisctl: <what>: <why>".
assert_err_line() {
	local n
	n=$(printf '%s\n' "$ERR" | grep -c .)
	[ "$n" = 1 ] || fail "${1:-stderr} should be one line, got $n: $ERR"
	case $ERR in osirisctl:*) ;; *) fail "${1:-stderr} does not start with 'osirisctl:': $ERR" ;; esac
}
assert_ping() { ctl ping >/dev/null 2>&1 || fail "daemon does not answer ping"; }

# ---- pipelines ---------------------------------------------------------

# pipeline DIR NAME STEP...: write DIR/manifest.yaml; each STEP is
# "id:driver[:need1,need2]". cfg files are written with cfg/step_cfg.
pipeline() {
	local dir=$1 name=$2 s id drv needs
	shift 2
	mkdir -p "$dir/cfg"
	{
		printf 'pipeline:\n  id: %s\n  version: 0.1.0\nsteps:\n' "$name"
		for s in "$@"; do
			IFS=: read -r id drv needs <<<"$s"
			printf '  - id: %s\n    component: %s\n    driver: %s\n    cfg_path: cfg/%s.json\n    needs: [%s]\n' \
				"$id" "$drv" "$drv" "$id" "${needs//,/, }"
		done
	} >"$dir/manifest.yaml"
}
# step_cfg DIR ID JSON
step_cfg() {
	mkdir -p "$1/cfg"
	printf '%s\n' "$3" >"$1/cfg/$2.json"
}

# noop_chain DIR N [extra json members for every step, e.g. '"sleep_ms":10']
noop_chain() {
	local dir=$1 n=$2 extra=${3:-} i
	mkdir -p "$dir/cfg"
	{
		printf 'pipeline:\n  id: noop%s\n  version: 0.1.0\nsteps:\n' "$n"
		for ((i = 1; i <= n; i++)); do
			printf '  - id: s%d\n    component: osiris.noop\n    driver: osiris.noop\n    cfg_path: cfg/s%d.json\n' "$i" "$i"
			if [ "$i" = 1 ]; then echo '    needs: []'; else echo "    needs: [s$((i - 1))]"; fi
		done
	} >"$dir/manifest.yaml"
	for ((i = 1; i <= n; i++)); do
		printf '{"component":"osiris.noop","mode":"transform"%s}\n' "${extra:+,$extra}" >"$dir/cfg/s$i.json"
	done
}

# gen_csv FILE ROWS: id,name,amount rows (deterministic).
gen_csv() {
	awk -v n="$2" 'BEGIN { print "id,name,amount"; for (i = 1; i <= n; i++) printf "%d,name_%d,%d.%02d\n", i, i % 977, i % 10007, i % 100 }' >"$1"
}

# slow_pipeline DIR SECONDS: one step that takes about SECONDS. A SQL step
# counting through a recursive CTE: independent of any driver sleep option,
# and stoppable only by the worker's cancel path (progress check or kill).
slow_pipeline() {
	local dir=$1 secs=$2
	pipeline "$dir" slow "spin:duckdb.processor:" "after:osiris.noop:spin"
	step_cfg "$dir" spin "{\"component\":\"duckdb.processor\",\"mode\":\"transform\",\"query\":\"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < $((secs * ${SPIN_PER_S:-5000000}))) SELECT count(*) AS n FROM c\"}"
	step_cfg "$dir" after '{"component":"osiris.noop","mode":"transform"}'
}

# The busy worker process (an osiris-worker) of a running run: the pid named
# in show's worker id (local-<pid>) or one of its descendants (bubblewrap).
worker_pid_of() {
	local w p c
	w=$(run_field "$1" worker 2>/dev/null)
	p=${w#local-}
	[[ "$p" =~ ^[0-9]+$ ]] || return 1
	for c in $p $(descendants "$p"); do
		case $(readlink "/proc/$c/exe" 2>/dev/null) in */osiris-worker) echo "$c"; return 0 ;; esac
	done
	return 1
}

# ---- E2B emulator ------------------------------------------------------

EMU_PID=
E2B_TEST_KEY=e2b_0123456789abcdef0123456789abcdef01234567
# start_emulator [e2b-emulator args]: on a free loopback port, its sandboxes
# under $T/emu; exports the E2B_* variables osirisd reads (as the SDK does).
start_emulator() {
	rm -f "$T/emu.port"
	"$BIN/e2b-emulator" --port-file "$T/emu.port" --root "$T/emu" --api-key "$E2B_TEST_KEY" "$@" \
		>>"$T/emu.log" 2>&1 &
	EMU_PID=$!
	BG_PIDS+=("$EMU_PID")
	wait_for 10 test -s "$T/emu.port" || fail "e2b-emulator did not start: $(tail -3 "$T/emu.log")"
	EMU_PORT=$(cat "$T/emu.port")
	export E2B_API_URL=http://127.0.0.1:$EMU_PORT E2B_SANDBOX_URL=http://127.0.0.1:$EMU_PORT
	export E2B_API_KEY=$E2B_TEST_KEY
}
stop_emulator() {
	[ -n "$EMU_PID" ] || return 0
	kill -TERM "$EMU_PID" 2>/dev/null
	wait "$EMU_PID" 2>/dev/null
	EMU_PID=
}
# emu_sandboxes: the ids of the sandboxes alive in the emulator, one a line.
emu_sandboxes() {
	"$PY" - "$E2B_API_URL" "$E2B_TEST_KEY" <<'PYEOF'
import json, sys, urllib.request
req = urllib.request.Request(sys.argv[1] + "/v2/sandboxes?limit=100", headers={"X-API-Key": sys.argv[2]})
for s in json.load(urllib.request.urlopen(req, timeout=10)):
    if s.get("state", "running") == "running":
        print(s["sandboxID"])
PYEOF
}
# pool_field BACKEND FIELD: a field of `osirisctl pool --json`.
pool_field() {
	ctl --json pool | json "[p for p in (d['pools'] if isinstance(d, dict) else d) if p['backend'] == '$1'][0]['$2']"
}
e2b_idle_at_least() { [ "$(pool_field e2b idle)" -ge "$1" ]; }
# run_e2b DIR: submit --wait on e2b; RUN is the run, RC its exit code.
run_e2b() {
	ctlc submit "$1" --backend e2b --wait
	RUN=$(head -n1 "$T/ctl.out")
}
# no_leak WHAT: after stop_daemon, the emulator has no sandbox left.
no_leak() {
	local left
	left=$(emu_sandboxes)
	[ -z "$left" ] || fail "$1: sandboxes left: $left"
}
# ---- local vs E2B parity (t_e2b_*) -----------------------------------------

RUNS=()
# parity_submit BACKEND DIR EXPECTED_RC [submit args]: submit --wait; RUN is
# the run (kept in RUNS), its exit code must be EXPECTED_RC.
parity_submit() {
	local backend=$1 dir=$2 rc=$3
	shift 3
	ctlc submit "$dir" --backend "$backend" "$@" --wait
	RUN=$(head -n1 "$T/ctl.out")
	[[ "$RUN" =~ ^[A-Za-z0-9]+$ ]] || fail "submit $dir --backend $backend: $ERR"
	RUNS+=("$RUN")
	[ "$RC" = "$rc" ] || fail "$backend run of $dir exited $RC, expected $rc: $(show_json "$RUN" | head -c 1500)"
}
# parity_same NAME LOCAL_RUN E2B_RUN: the two runs are the same (parity.py).
parity_same() {
	local out
	out=$("$PY" "$SRC/tests/regress/parity.py" "$BIN/osirisctl" "$SOCK" "$2" "$3" 2>&1) ||
		fail "$1: local run $2 and e2b run $3 differ: $out"
	note "$1: $out"
}
# parity_end WHAT SECRET: the daemon and the emulator stopped, no sandbox
# left, and SECRET nowhere: state dir, daemon log, the emulator's files,
# nor what show and logs print of every run in RUNS.
parity_end() {
	local r hits
	for r in "${RUNS[@]}"; do
		show_json "$r" >>"$T/show.json"
		ctl --json logs "$r" >>"$T/logs.jsonl"
	done
	stop_daemon
	no_leak "after the $1 runs"
	stop_emulator
	hits=$(grep -r -a -l -F -- "$2" "$STATE" "$DLOG" "$T/show.json" "$T/logs.jsonl" "$T/emu" 2>/dev/null)
	[ -z "$hits" ] || fail "the $1 secret appears in: $hits"
}
# local_ok WHAT: a local run of $T/p succeeds meanwhile.
local_ok() {
	ctlc submit "$T/p" --wait
	assert_rc 0 "a local run during $1"
}

# t_fresh_process: with the defaults (local.worker_max_runs=1) every run gets
# a process of its own, forked by the sandbox's zygote (issue 8): two runs in
# sequence on one sandbox get different worker pids, the first's process is
# gone, the second sees neither the first's workspace files nor its secret
# (environment, the memory of the zygote and of the next run's process); two
# concurrent runs do not see each other's workspace. Under bwrap, what run A
# left in the sandbox's private /tmp is gone before the next run's process.
# A failed, a killed or a cancelled run's process ends alone: the sandbox
# (its zygote) serves the next run.
. "$(dirname "$0")/lib.sh"

CANARY=$(canary canary)
WD=$T/wd
start_daemon -o local.pool_size=1 -o local.max_workers=1 -o "local.work_dir=$WD"
grep -q 'worker_max_runs 1' "$DLOG" || fail "default worker_max_runs is not 1: $(grep 'local pool: worker' "$DLOG")"

# mem_has PID: 0 when the canary is in the readable memory of PID, 1 when
# not, 2 when its memory cannot be read here.
mem_has() {
	"$PY" - "$1" "$CANARY" <<'PYEOF'
import sys
pid, needle = sys.argv[1], sys.argv[2].encode()
try:
    maps = open("/proc/%s/maps" % pid).read().splitlines()
    mem = open("/proc/%s/mem" % pid, "rb", 0)
except OSError:
    sys.exit(2)
read_any = False
for line in maps:
    parts = line.split()
    if "r" not in parts[1] or (len(parts) > 5 and parts[5] in ("[vvar]", "[vsyscall]")):
        continue
    lo, hi = (int(x, 16) for x in parts[0].split("-"))
    if hi - lo > 1 << 28:
        continue  # a sanitizer's shadow, not data
    tail = b""
    for off in range(lo, hi, 1 << 20):
        try:
            mem.seek(off)
            data = mem.read(min(1 << 20, hi - off))
        except (OSError, ValueError, OverflowError):
            break
        read_any = True
        if needle in tail + data:
            sys.exit(0)
        tail = data[-len(needle):]
sys.exit(1 if read_any else 2)
PYEOF
}
ppid_of() { awk '$1 == "PPid:" { print $2 }' "/proc/$1/status" 2>/dev/null; }
# the workspaces (osiris-ws-*) that exist under local.work_dir now
workspaces() { find "$WD" -mindepth 2 -maxdepth 2 -name 'osiris-ws-*' -printf '%f\n' | sort; }

# Run A: a secret, a file of its own in the context, a slow step to look at it.
a=$T/a
slow_pipeline "$a" 2
printf "x\nmark-a\n" >"$a/only-in-a.csv"
step_cfg "$a" after '{"component":"osiris.noop","mode":"transform","note":"${DB_PASSWORD}"}'
submit "$a" --secret "DB_PASSWORD=$CANARY"
RUN_A=$RUN
wait_state "$RUN_A" running 10
wait_for 5 worker_pid_of "$RUN_A" || fail "no osiris-worker for run A ($(run_field "$RUN_A" worker))"
PID_A=$(worker_pid_of "$RUN_A")
ZYG=$(ppid_of "$PID_A")
ws_a=$(workspaces)
[ -n "$ws_a" ] || fail "run A has no workspace under $WD"
[ -n "$(find "$WD" -name only-in-a.csv)" ] || fail "run A's context file is not in its workspace"
# The memory check can see a secret where there is one: in run A's process.
mem_has "$PID_A"
case $? in
1) fail "the memory scan does not find run A's secret in run A's own process $PID_A" ;;
2) note "the memory of $PID_A cannot be read here: memory not checked" ;;
esac
# Something left in the sandbox's /tmp during run A (as a driver writing
# there would leave it): the sandbox's own tmpfs, seen through A's root.
SANDBOXED=
if grep -q 'isolation bwrap' "$DLOG"; then
	SANDBOXED=1
	echo "from run A" >"/proc/$PID_A/root/tmp/left-by-a" || fail "cannot write into run A's /tmp"
	mkdir -p "/proc/$PID_A/root/tmp/dir-by-a/sub" && echo x >"/proc/$PID_A/root/tmp/dir-by-a/sub/f"
	[ -f "/proc/$PID_A/root/tmp/left-by-a" ] || fail "the file written into run A's /tmp is not there"
else
	note "no bwrap here: the sandbox's /tmp not checked"
fi
wait_state "$RUN_A" succeeded 30
W_A=$(run_field "$RUN_A" worker)
assert_eq "$W_A" "local-$PID_A" "run A's worker (its own process)"

# Back to idle: A's process is gone, a fresh one waits, forked by the same
# zygote; neither it nor the zygote holds A's secret.
idle1() { [ "$(pool_field local idle)" -ge 1 ]; }
wait_for 10 idle1 || fail "the pool is not idle again after run A: $(ctl --json pool)"
gone_a() { ! kill -0 "$PID_A" 2>/dev/null; }
wait_for 5 gone_a || fail "run A's process $PID_A still exists after its run"
NEXT=$(pgrep -P "$ZYG" | head -n1)
[ -n "$NEXT" ] || fail "the zygote $ZYG has no child waiting for the next run"
[ "$NEXT" != "$PID_A" ] || fail "the next run's process is run A's ($PID_A)"
[ -z "$(workspaces)" ] || fail "run A's workspace is still there once the sandbox is idle: $(workspaces)"
if [ -n "$SANDBOXED" ]; then
	[ -d "/proc/$NEXT/root/tmp" ] || fail "cannot look into the next process's /tmp"
	[ -e "/proc/$NEXT/root/tmp/left-by-a" ] && fail "what run A left in the sandbox's /tmp is there for the next run"
	[ -e "/proc/$NEXT/root/tmp/dir-by-a" ] && fail "the directory run A left in the sandbox's /tmp is there for the next run"
	[ -d "/proc/$NEXT/root$WD" ] || fail "the work dir's bind mount went with the /tmp scrub"
fi
for p in "$ZYG" "$NEXT"; do
	mem_has "$p"
	case $? in
	0) fail "run A's secret is in the memory of process $p ($(tr '\0' ' ' <"/proc/$p/cmdline"))" ;;
	2) note "the memory of $p cannot be read here: not checked" ;;
	esac
done

# Run B on the same sandbox: another process, no secret, no file of A's.
b=$T/b
slow_pipeline "$b" 2
step_cfg "$b" after '{"component":"osiris.noop","mode":"transform","note":"${DB_PASSWORD}"}'
submit "$b"
RUN_B=$RUN
wait_state "$RUN_B" running 10
PID_B=$(worker_pid_of "$RUN_B")
[ -n "$PID_B" ] || fail "no osiris-worker for run B"
[ "$PID_B" != "$PID_A" ] || fail "run B got run A's process ($PID_A)"
assert_eq "$(ppid_of "$PID_B")" "$ZYG" "run B's process's parent (the same sandbox's zygote)"
ws_b=$(workspaces)
[ "$(printf '%s\n' "$ws_b" | wc -l)" = 1 ] || fail "more than one workspace during run B: $ws_b"
[ "$ws_b" != "$ws_a" ] || fail "run B reuses run A's workspace $ws_a"
[ -z "$(find "$WD" -name only-in-a.csv)" ] || fail "run A's file is visible during run B"
tr '\0' '\n' <"/proc/$PID_B/environ" | grep -q -F -- "$CANARY" && fail "run A's secret is in run B's environment"
wait_state "$RUN_B" failed 30
assert_contains "$(step_field "$RUN_B" after error)" "not set" "run B's step using DB_PASSWORD"

# A failed run keeps its sandbox (only its process goes): run C's process
# comes from the same zygote. A run's process killed: that run fails, the
# sandbox stays; a cancelled run likewise; the next run succeeds.
c=$T/c
slow_pipeline "$c" 5
submit "$c"
RUN_C=$RUN
wait_state "$RUN_C" running 10
wait_for 5 worker_pid_of "$RUN_C" || fail "no osiris-worker for run C"
PID_C=$(worker_pid_of "$RUN_C")
assert_eq "$(ppid_of "$PID_C")" "$ZYG" "run C's process's parent after the failed run B (the same sandbox)"
kill -9 "$PID_C"
wait_state "$RUN_C" failed 10
assert_match "$(run_field "$RUN_C" error) $(step_field "$RUN_C" spin error)" 'worker' "run C's error"
submit "$c"
RUN_D=$RUN
wait_state "$RUN_D" running 10
wait_for 5 worker_pid_of "$RUN_D" || fail "no osiris-worker for run D"
PID_D=$(worker_pid_of "$RUN_D")
[ "$PID_D" != "$PID_C" ] || fail "run D got the killed process of run C"
assert_eq "$(ppid_of "$PID_D")" "$ZYG" "run D's process's parent after run C's process was killed (the same sandbox)"
ctlc cancel "$RUN_D"
wait_state "$RUN_D" cancelled 15
gone_d() { ! kill -0 "$PID_D" 2>/dev/null; }
wait_for 5 gone_d || fail "the cancelled run's process $PID_D still exists"
noop_chain "$T/p" 2
ctlc submit "$T/p" --wait
assert_rc 0 "a run after the killed and the cancelled one"
kill -0 "$ZYG" 2>/dev/null || fail "the zygote $ZYG is gone after a failed, a killed and a cancelled run"
[ -z "$(workspaces)" ] || fail "workspaces left once the runs are over: $(workspaces)"
stop_daemon

# Concurrent runs: two sandboxes, each run sees only its own workspace.
if grep -q 'isolation bwrap' "$DLOG"; then
	start_daemon -o local.pool_size=2 -o local.max_workers=2 -o "local.work_dir=$WD"
	submit "$a" --secret "DB_PASSWORD=$CANARY"
	R1=$RUN
	submit "$b"
	R2=$RUN
	wait_state "$R1" running 10
	wait_state "$R2" running 10
	P1=$(worker_pid_of "$R1") P2=$(worker_pid_of "$R2")
	[ -n "$P1" ] && [ -n "$P2" ] || fail "no worker processes for the concurrent runs"
	seen1=$(find "/proc/$P1/root$WD" -name 'osiris-ws-*' 2>/dev/null | wc -l)
	seen2=$(find "/proc/$P2/root$WD" -name 'osiris-ws-*' 2>/dev/null | wc -l)
	assert_eq "$seen1" 1 "workspaces visible to run 1"
	assert_eq "$seen2" 1 "workspaces visible to run 2"
	[ -z "$(find "/proc/$P2/root$WD" -name only-in-a.csv 2>/dev/null)" ] || fail "run 2 sees run 1's file"
	wait_state "$R1" succeeded 30
	stop_daemon
else
	note "no bwrap here: concurrent workspaces not checked"
fi
left=$(find "$WD" -mindepth 1 -maxdepth 1 -name 'wk-*' | wc -l)
assert_eq "$left" 0 "worker directories left after stop"
hits=$(grep -r -a -l -F -- "$CANARY" "$STATE" "$DLOG" 2>/dev/null)
[ -z "$hits" ] || fail "the secret appears in: $hits"

# t_follow_disconnect: a `logs -f` client killed mid-follow does not disturb
# the daemon or the run; a new follower sees the whole stream.
. "$(dirname "$0")/lib.sh"

start_daemon
slow_pipeline "$T/slow" 2
submit "$T/slow"
wait_state "$RUN" running 10

for sig in KILL TERM; do
	ctl logs -f "$RUN" >"$T/follow.$sig" 2>&1 &
	fpid=$!
	BG_PIDS+=("$fpid")
	# records reach a file (not a tty) as they happen, not at exit
	wait_for 3 grep -q '\[spin\] step_start' "$T/follow.$sig" ||
		fail "logs -f into a file printed no step_start while the step runs: '$(head -c 300 "$T/follow.$sig")'"
	kill -0 "$fpid" 2>/dev/null || fail "logs -f exited before the run ended: $(cat "$T/follow.$sig")"
	kill -$sig "$fpid"
	wait "$fpid" 2>/dev/null
	assert_ping
done
# Followers killed right after they attach, five times.
for i in 1 2 3 4 5; do
	{ timeout -s KILL 0.2 "$BIN/osirisctl" -S "$SOCK" logs -f "$RUN" >/dev/null 2>&1; } 2>/dev/null
done
assert_ping
state_is "$RUN" running || run_final "$RUN" || fail "run in unexpected state $(run_state "$RUN")"

ctlc logs -f "$RUN"
assert_rc 0 "logs -f to the end after the disconnects"
wait_state "$RUN" succeeded 20
n=$(ctl --json logs "$RUN" | jsonl 'len(L)')
last=$(run_field "$RUN" last_seq)
assert_eq "$n" "$last" "records in logs vs last_seq"
stop_daemon

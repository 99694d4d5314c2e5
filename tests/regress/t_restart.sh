# t_restart: a daemon crash (SIGKILL) loses nothing acknowledged: on restart
# the queued run is scheduled again and succeeds, the one that was running
# is marked `lost` with a reason, never left `running`.
. "$(dirname "$0")/lib.sh"

start_daemon -o daemon.max_concurrent_runs=1
slow_pipeline "$T/slow" 6
submit "$T/slow"
A=$RUN
noop_chain "$T/p" 3
submit "$T/p"
B=$RUN
wait_state "$A" running 10
assert_eq "$(run_state "$B")" queued "run behind max_concurrent_runs=1"
wpid=$(worker_pid_of "$A") || true
kill_daemon
# the worker of the dead daemon goes away (stdin EOF)
if [ -n "${wpid:-}" ]; then
	wait_for 10 sh -c "! kill -0 $wpid" || fail "worker $wpid survived its daemon"
fi

start_daemon -o daemon.max_concurrent_runs=1
wait_for 10 run_final "$A" || fail "run $A that was running at the crash is $(run_state "$A") after restart"
assert_eq "$(run_state "$A")" lost "state of the run running at the crash"
err=$(run_field "$A" error)
[ -n "$err" ] && [ "$err" != null ] || fail "lost run has no reason"
note "lost reason: $err"
assert_eq "$(run_field "$A" exit_code)" 1 "exit code of the lost run"
show_json "$A" | json '[s["state"] for s in d["steps"]]' | grep -q running && fail "lost run still has running steps: $(show_json "$A")"
ctlc logs -f "$A"
assert_rc 1 "logs -f of a lost run"

wait_for 20 run_final "$B" || fail "queued run $B never ran after restart ($(run_state "$B"))"
assert_eq "$(run_state "$B")" succeeded "queued run after restart"
# its event stream is whole: 1..N
ctl --json logs "$B" | jsonl '[r["seq"] for r in L] == list(range(1, len(L) + 1))' | grep -qx true || fail "stream of $B has gaps"

# And a run acknowledged but never started survives a clean stop too.
stop_daemon
start_daemon -o daemon.max_concurrent_runs=1
submit "$T/p" --wait
stop_daemon

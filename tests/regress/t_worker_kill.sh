# t_worker_kill: SIGKILL of the busy osiris-worker mid-step fails the step
# and the run with a reason naming the worker; the pool recovers and the
# next run succeeds.
. "$(dirname "$0")/lib.sh"

start_daemon
slow_pipeline "$T/slow" 5
submit "$T/slow"
wait_state "$RUN" running 10
wait_for 5 worker_pid_of "$RUN" || fail "no osiris-worker process for the running run (worker: $(run_field "$RUN" worker))"
wpid=$(worker_pid_of "$RUN")
wid=$(run_field "$RUN" worker)
note "run $RUN on $wid, killing osiris-worker pid $wpid"
sleep 0.2
kill -9 "$wpid"

wait_state "$RUN" failed 10
show_json "$RUN" >"$T/show.json"
assert_eq "$(json 'd["exit_code"]' <"$T/show.json")" 1 "exit code"
err=$(json '(d["error"] or "") + " | " + " ".join((s["error"] or "") for s in d["steps"])' <"$T/show.json")
note "errors: $err"
assert_match "$err" 'worker' "run/step error"
assert_eq "$(json "[s for s in d['steps'] if s['id'] == 'spin'][0]['state']" <"$T/show.json")" failed "the step in progress"
assert_eq "$(json "[s for s in d['steps'] if s['id'] == 'after'][0]['state']" <"$T/show.json")" skipped "the step after it"
ctlc logs -f "$RUN"
assert_rc 1 "logs -f of the failed run"

# The pool replaces the dead worker; the next runs succeed (warm again).
noop_chain "$T/p" 3
for i in 1 2 3; do
	ctlc submit "$T/p" --wait
	assert_rc 0 "submit $i after the worker was killed"
done
pool_has_idle() {
	[ "$(ctl --json pool | json "[p for p in (d['pools'] if isinstance(d, dict) else d) if p['backend'] == 'local'][0]['idle']")" -ge 1 ]
}
wait_for 10 pool_has_idle || fail "pool has no idle worker after recovery: $(ctl --json pool)"
stop_daemon

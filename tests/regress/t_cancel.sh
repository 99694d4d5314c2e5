# t_cancel: cancelling a running run stops it (state cancelled, `logs -f`
# exits 1); cancelling a queued run removes it before it ever starts.
. "$(dirname "$0")/lib.sh"

start_daemon -o daemon.max_concurrent_runs=1
slow_pipeline "$T/slow" 6
submit "$T/slow"
A=$RUN
submit "$T/slow"
B=$RUN
wait_state "$A" running 10
assert_eq "$(run_state "$B")" queued "second run behind max_concurrent_runs=1"

# Queued: cancelled at once, never started.
ctlc cancel "$B"
assert_rc 0 "cancel of a queued run"
wait_state "$B" cancelled 5
assert_eq "$(run_field "$B" started_at)" null "started_at of a run cancelled while queued"
assert_eq "$(run_field "$B" exit_code)" 1 "exit_code of a cancelled run"
ctlc logs -f "$B"
assert_rc 1 "logs -f of a cancelled queued run"

# Running: the follower ends with 1 once the cancel lands.
ctl logs -f "$A" >"$T/follow.out" 2>&1 &
fpid=$!
BG_PIDS+=("$fpid")
sleep 0.3
wpid=$(worker_pid_of "$A") || fail "no osiris-worker process found for the running run (worker: $(run_field "$A" worker))"
t0=$(date +%s%N)
ctlc cancel "$A"
assert_rc 0 "cancel of a running run"
wait_state "$A" cancelled 8
ms=$((($(date +%s%N) - t0) / 1000000))
note "running run cancelled in ${ms} ms"
wait "$fpid"
frc=$?
assert_eq "$frc" 1 "exit code of logs -f on a cancelled run"
assert_eq "$(step_field "$A" spin state)" cancelled "the step in progress"
assert_eq "$(step_field "$A" after state)" skipped "the step after it"
# the worker of the cancelled run does not survive it
wait_for 5 sh -c "! kill -0 $wpid" || fail "worker $wpid of the cancelled run is still alive"

# Cancelling a finished run changes nothing.
ctlc cancel "$A"
[ "$RC" = 0 ] || [ "$RC" = 2 ] || fail "cancel of a finished run exited $RC"
assert_eq "$(run_state "$A")" cancelled "state after a second cancel"

# The daemon runs the next one normally.
noop_chain "$T/p" 2
ctlc submit "$T/p" --wait
assert_rc 0 "submit after cancels"
stop_daemon

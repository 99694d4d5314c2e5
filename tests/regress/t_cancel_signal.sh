# t_cancel_signal: cancel asks the worker over the protocol first; a worker
# that does not answer within daemon.cancel_grace_ms (a driver blocked in a
# system call) gets SIGTERM itself, with isolation on and off (issue 6: under
# bubblewrap the signal went to bwrap, which died and took the worker down
# with SIGKILL). The signalled worker stops gracefully: the step ends
# `cancelled` by the worker's own answer, not by its death.
. "$(dirname "$0")/lib.sh"

pipeline "$T/p" block "blk:osiris.noop:" "after:osiris.noop:blk"
step_cfg "$T/p" blk '{"component":"osiris.noop","mode":"transform","block_ms":20000}'
step_cfg "$T/p" after '{"component":"osiris.noop","mode":"transform"}'

bwrap_works() {
	command -v bwrap >/dev/null 2>&1 &&
		bwrap --die-with-parent --unshare-all --as-pid-1 --ro-bind / / --dev /dev --proc /proc -- /bin/true 2>/dev/null
}

check_mode() { # ISOLATION (auto|none) EXPECTED (bwrap|none)
	local t0 ms
	start_daemon -o daemon.cancel_grace_ms=500 -o "local.isolation=$1"
	assert_match "$(grep 'local pool: worker' "$DLOG" | tail -1)" "isolation $2" "the pool's isolation"
	submit "$T/p"
	wait_state "$RUN" running 10
	sleep 0.3 # inside the blocking call
	t0=$(date +%s%N)
	ctlc cancel "$RUN"
	assert_rc 0 "cancel"
	wait_state "$RUN" cancelled 10
	ms=$((($(date +%s%N) - t0) / 1000000))
	note "isolation $2: cancelled in $ms ms"
	# Ignored request (500 ms), then SIGTERM (the step was blocked for 20 s).
	[ "$ms" -ge 400 ] || fail "cancelled in $ms ms: the worker should not have honoured the request while blocked"
	[ "$ms" -lt 5000 ] || fail "cancelled in $ms ms"
	assert_contains "$(cat "$DLOG")" "run=$RUN worker=" "log"
	assert_match "$(grep "run=$RUN" "$DLOG")" 'did not stop within 500 ms of cancel, sending SIGTERM' "the fallback"
	assert_not_contains "$(grep "run=$RUN" "$DLOG")" "killing it" "the run's log (SIGKILL was not needed)"
	# The worker answered: its step result says cancelled (error_type from
	# the worker), and the run went on to finish, which a dead worker cannot.
	assert_eq "$(step_field "$RUN" blk state)" cancelled "blocked step state"
	assert_eq "$(step_field "$RUN" blk error_type)" Cancelled "blocked step error_type (from the worker)"
	assert_not_contains "$(run_field "$RUN" error)" "exited unexpectedly" "run error"
	assert_eq "$(step_field "$RUN" after state)" skipped "the step after it"
	stop_daemon
}

check_mode none none
if bwrap_works; then
	check_mode auto bwrap
else
	note "bwrap cannot start here: only isolation none checked"
fi

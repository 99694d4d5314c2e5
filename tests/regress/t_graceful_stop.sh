# t_graceful_stop: SIGTERM lets a running run finish within
# daemon.shutdown_grace_s, cancels one that would take longer, and the
# daemon exits 0 either way; after a restart nothing is left `running`.
. "$(dirname "$0")/lib.sh"

# 1. A short run finishes during the grace period.
start_daemon -o daemon.shutdown_grace_s=10
slow_pipeline "$T/short" 1
submit "$T/short"
A=$RUN
wait_state "$A" running 10
t0=$(date +%s%N)
stop_daemon
note "stop with a 1 s run in progress took $((($(date +%s%N) - t0) / 1000000)) ms"
start_daemon
assert_eq "$(run_state "$A")" succeeded "run that was running at SIGTERM, with grace to spare"
stop_daemon

# 2. A long run is cancelled when the grace runs out. During the grace the
# socket keeps answering: a submit (on a new connection or one opened
# before the signal) is refused `busy` naming the shutdown, reads work.
start_daemon -o daemon.shutdown_grace_s=2
slow_pipeline "$T/long" 8
submit "$T/long"
B=$RUN
wait_state "$B" running 10
"$PY" "$REGRESS/rpcpeer.py" "$SOCK" stopping "$B" "$T/sigterm" >"$T/peer.out" 2>&1 &
PEER=$!
BG_PIDS+=("$PEER")
wait_for 5 test -e "$T/sigterm.ready" || fail "rpcpeer did not connect: $(cat "$T/peer.out")"
t0=$(date +%s%N)
kill -TERM "$DAEMON_PID"
sleep 0.2
touch "$T/sigterm"
ctlc submit "$T/short"
note "submit while stopping: rc $RC: $ERR"
assert_rc 3 "submit while stopping (busy)"
assert_err_line "submit while stopping"
assert_contains "$ERR" "busy" "submit while stopping"
assert_contains "$ERR" "shutting down" "submit while stopping"
ctlc --json show "$B"
assert_rc 0 "show while stopping"
assert_eq "$(printf %s "$OUT" | json 'd["id"]')" "$B" "show while stopping"
wait "$PEER" || fail "open connection while stopping: $(cat "$T/peer.out")"
note "$(cat "$T/peer.out")"
# No second signal (that would cancel at once): the grace must end the run.
wait_for 10 eval '! daemon_alive' || fail "osirisd still running 10 s after SIGTERM with shutdown_grace_s=2"
wait "$DAEMON_PID"
rc=$?
DAEMON_PID=
[ "$rc" = 0 ] || fail "osirisd exited with status $rc on SIGTERM: $(tail -3 "$DLOG")"
ms=$((($(date +%s%N) - t0) / 1000000))
note "stop with an 8 s run and 2 s grace took $ms ms"
[ "$ms" -ge 2000 ] || fail "stop took $ms ms, less than shutdown_grace_s=2"
[ "$ms" -lt 7000 ] || fail "stop took $ms ms with shutdown_grace_s=2"
start_daemon
st=$(run_state "$B")
case $st in cancelled | lost) ;; *) fail "run cut by the shutdown grace is $st, expected cancelled (or lost)" ;; esac
[ "$st" = cancelled ] || note "run cut by the shutdown grace is $st (cancelled expected)"
stop_daemon

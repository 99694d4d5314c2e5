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

# 2. A long run is cancelled when the grace runs out.
start_daemon -o daemon.shutdown_grace_s=1
slow_pipeline "$T/long" 8
submit "$T/long"
B=$RUN
wait_state "$B" running 10
t0=$(date +%s%N)
kill -TERM "$DAEMON_PID"
sleep 0.2
# while stopping, no new work is accepted (busy: exit 3) or the socket is gone
ctlc submit "$T/short"
[ "$RC" != 0 ] || fail "submit accepted while the daemon is stopping"
note "submit while stopping: rc $RC: $ERR"
stop_daemon
ms=$((($(date +%s%N) - t0) / 1000000))
note "stop with an 8 s run and 1 s grace took $ms ms"
[ "$ms" -lt 6000 ] || fail "stop took $ms ms with shutdown_grace_s=1"
start_daemon
st=$(run_state "$B")
case $st in cancelled | lost) ;; *) fail "run cut by the shutdown grace is $st, expected cancelled (or lost)" ;; esac
[ "$st" = cancelled ] || note "run cut by the shutdown grace is $st (cancelled expected)"
stop_daemon

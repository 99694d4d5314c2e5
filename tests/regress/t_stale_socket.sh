# t_stale_socket: after a SIGKILLed daemon the socket file stays behind; a
# new osirisd replaces it and serves, with the runs of the old store.
. "$(dirname "$0")/lib.sh"

mkdir -p "$T/p"
noop_chain "$T/p" 1
start_daemon
submit "$T/p" --wait
old=$RUN
kill_daemon
[ -S "$SOCK" ] || fail "expected the dead daemon's socket file to remain (test precondition)"
ctlc ping
assert_rc 3 "ping on the stale socket"

start_daemon
assert_ping
state_is "$old" succeeded || fail "run $old from before the crash is not succeeded: $(run_state "$old")"
submit "$T/p" --wait
stop_daemon
# A clean stop removes its socket.
[ -e "$SOCK" ] && note "socket file still present after a clean stop"
true

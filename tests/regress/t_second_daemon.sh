# t_second_daemon: a second osirisd on a socket a live daemon serves refuses
# to start (non-zero exit, a message) and leaves the first one untouched.
. "$(dirname "$0")/lib.sh"

start_daemon
first=$DAEMON_PID

# Same socket, another state dir.
timeout 10 "$BIN/osirisd" -S "$SOCK" -D "$T/state2" -f /dev/null >"$T/second.log" 2>&1
rc=$?
[ $rc = 124 ] && fail "second osirisd on a live socket did not exit (still running after 10 s)"
[ $rc != 0 ] || fail "second osirisd on a live socket exited 0"
[ -s "$T/second.log" ] || fail "second osirisd gave no message on stderr"
note "second daemon: rc=$rc: $(head -n1 "$T/second.log")"
assert_match "$(cat "$T/second.log")" "sock|in use|running|listen|already" "second daemon's message"

# Same socket and same state dir.
timeout 10 "$BIN/osirisd" -S "$SOCK" -D "$STATE" -f /dev/null >"$T/third.log" 2>&1
rc=$?
[ $rc = 124 ] && fail "third osirisd (same socket and state) did not exit"
[ $rc != 0 ] || fail "third osirisd (same socket and state) exited 0"

# The first daemon still owns the socket and works.
kill -0 "$first" || fail "first daemon died"
[ -S "$SOCK" ] || fail "socket file removed by the refused daemon"
assert_ping
mkdir -p "$T/p"
noop_chain "$T/p" 1
ctlc submit "$T/p" --wait
assert_rc 0 "submit after refused second daemon"
stop_daemon

# t_exit_codes: osirisctl's documented exit codes and one-line errors
# (DESIGN §4): ping 0, unknown run 2, usage 2, daemon unreachable 3.
. "$(dirname "$0")/lib.sh"

# Nothing listening yet: every command is "daemon unreachable" (3).
ctlc ping
assert_rc 3 "ping without a daemon"
assert_err_line "ping without a daemon"
ctlc -S "$T/nonexistent/sock" runs
assert_rc 3 "runs on a missing socket path"
assert_err_line
# A socket file nobody listens on (left by a dead process) is unreachable too.
"$PY" -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$T/dead.sock"
ctlc -S "$T/dead.sock" ping
assert_rc 3 "ping on a socket without a listener"
assert_err_line

# Protocol/version mismatch (4), against fake daemons.
for mode in badversion garbage wrongshape; do
	"$PY" "$REGRESS/rpcpeer.py" "$T/fake-$mode.sock" fakeserver "$mode" "$T/fake-$mode.ready" 2>/dev/null &
	BG_PIDS+=($!)
	wait_for 5 test -e "$T/fake-$mode.ready" || fail "fake daemon ($mode) did not start"
	ctlc -S "$T/fake-$mode.sock" ping
	note "fake daemon $mode: rc $RC: $ERR"
	assert_rc 4 "ping against a daemon answering $mode"
	assert_err_line "ping against a daemon answering $mode"
done

start_daemon
"$PY" "$REGRESS/rpcpeer.py" "$SOCK" hello || fail "hello checks"
ctlc ping
assert_rc 0 ping
ctlc version
assert_rc 0 version
assert_contains "$OUT" "0." "version output"

for cmd in "show" "logs" "cancel" "artifacts"; do
	ctlc $cmd zzzz-no-such-run
	assert_rc 2 "$cmd of an unknown run"
	assert_err_line "$cmd of an unknown run"
done
ctlc --json show zzzz-no-such-run
assert_rc 2 "show --json of an unknown run"

# Usage errors.
ctlc no-such-command
assert_rc 2 "unknown command"
assert_err_line "unknown command"
ctlc show
assert_rc 2 "show without RUN"
ctlc submit "$T/no-such-dir"
assert_rc 2 "submit of a missing directory"
assert_err_line "submit of a missing directory"

# OSIRIS_SOCKET is honoured when -S is absent.
OSIRIS_SOCKET=$SOCK "$BIN/osirisctl" ping >/dev/null 2>&1 || fail "ping via OSIRIS_SOCKET failed"
OSIRIS_SOCKET=$T/nope "$BIN/osirisctl" ping >/dev/null 2>&1
rc=$?
assert_eq "$rc" 3 "ping via OSIRIS_SOCKET pointing nowhere"

assert_ping
stop_daemon
ctlc ping
assert_rc 3 "ping after the daemon stopped"

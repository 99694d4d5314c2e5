# t_e2b_api_down: the E2B API is down when the daemon starts. The daemon
# starts anyway and keeps answering; the e2b pool reports the cause; an e2b
# run fails with a reason naming it instead of hanging; local runs are
# unaffected; once the API is up, the pool recovers (a SIGHUP retries at
# once) and the next e2b run succeeds.
. "$(dirname "$0")/lib.sh"

noop_chain "$T/p" 2
# A loopback port with nothing behind it, for now.
PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export E2B_API_URL=http://127.0.0.1:$PORT E2B_SANDBOX_URL=http://127.0.0.1:$PORT E2B_API_KEY=$E2B_TEST_KEY
start_daemon -o e2b.pool_size=1 -o e2b.start_fail_limit=2
failing() { [ "$(pool_field e2b failing)" = true ]; }
wait_for 20 failing || fail "the e2b pool does not report the API being down: $(ctl --json pool)"
err=$(pool_field e2b last_error)
note "API down: $err"
assert_match "$err" 'creating a sandbox failed: .*(connect|refused|Couldn)' "the pool's error"
t0=$(date +%s)
ctlc submit "$T/p" --backend e2b --wait
assert_rc 1 "an e2b run while the API is down"
[ $(($(date +%s) - t0)) -lt 15 ] || fail "the run took $(($(date +%s) - t0)) s to fail"
assert_match "$(run_field "$(head -n1 "$T/ctl.out")" error)" 'e2b pool cannot start sandboxes: creating a sandbox failed' "the run's error"
ctlc submit "$T/p" --wait
assert_rc 0 "a local run while the E2B API is down"

# The API comes up on that port: SIGHUP retries at once, the pool recovers.
start_emulator --listen "127.0.0.1:$PORT"
kill -HUP "$DAEMON_PID"
wait_for 30 e2b_idle_at_least 1 || fail "the e2b pool did not recover: $(ctl --json pool)"
assert_eq "$(pool_field e2b failing)" false "pool failing after recovery"
ctlc submit "$T/p" --backend e2b --wait
assert_rc 0 "an e2b run once the API is up"
stop_daemon
no_leak "API down, then up"
stop_emulator

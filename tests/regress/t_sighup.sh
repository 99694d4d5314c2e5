# t_sighup: SIGHUP reloads the config file; the local pool's target follows
# local.pool_size and the idle workers follow the target.
. "$(dirname "$0")/lib.sh"

pool_is() { [ "$(pool_field local "$1")" = "$2" ]; }

printf '[daemon]\nlog_level = info\n[local]\npool_size = 1\n' >"$T/osirisd.conf"
DAEMON_CONF=$T/osirisd.conf
start_daemon
wait_for 10 pool_is target 1 || fail "pool target is $(pool_field local target), expected 1 from the config file"
wait_for 10 pool_is idle 1 || fail "idle workers $(pool_field local idle), expected 1"

printf '[daemon]\nlog_level = info\n[local]\npool_size = 3\n' >"$T/osirisd.conf"
kill -HUP "$DAEMON_PID"
wait_for 10 pool_is target 3 || fail "after SIGHUP pool target is $(pool_field local target), expected 3"
wait_for 10 pool_is idle 3 || fail "after SIGHUP idle workers $(pool_field local idle), expected 3"
n=$(pgrep -P "$DAEMON_PID" | wc -l)
note "daemon children after reload to 3: $n"

printf '[local]\npool_size = 0\n' >"$T/osirisd.conf"
kill -HUP "$DAEMON_PID"
wait_for 10 pool_is target 0 || fail "after SIGHUP pool target is $(pool_field local target), expected 0"
wait_for 10 pool_is idle 0 || fail "after shrinking, idle workers $(pool_field local idle), expected 0"

# A broken config on reload keeps the daemon up with the old values.
printf '[local]\npool_size = banana\n' >"$T/osirisd.conf"
kill -HUP "$DAEMON_PID"
sleep 0.3
daemon_alive || fail "daemon died on SIGHUP with a bad config file"
assert_ping
assert_eq "$(pool_field local target)" 0 "pool target after a bad reload"
stop_daemon

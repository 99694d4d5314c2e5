# t_config: `osirisd -n` checks a config and exits; bad files, keys and
# values are refused at start with a message naming file:line or the key;
# -h/--help print the usage on stdout and exit 0 (osirisd, osiris-worker).
. "$(dirname "$0")/lib.sh"

# run_help OUT_NAME PROGRAM ARGS...: run, capture stdout/stderr and the status.
run_help() {
	local name=$1
	shift
	timeout 10 "$@" >"$T/$name.out" 2>"$T/$name.err"
	RC=$?
	OUT=$(cat "$T/$name.out")
	ERR=$(cat "$T/$name.err")
}
for prog in osirisd osiris-worker; do
	for opt in -h --help; do
		run_help h "$BIN/$prog" "$opt"
		assert_eq "$RC" 0 "$prog $opt exit status (stderr: $ERR)"
		assert_contains "$OUT" "usage: $prog" "$prog $opt stdout"
		assert_eq "$ERR" "" "$prog $opt stderr"
	done
	run_help bad "$BIN/$prog" --no-such-option
	assert_eq "$RC" 2 "$prog --no-such-option exit status"
	assert_contains "$ERR" "usage: $prog" "$prog --no-such-option stderr"
	assert_eq "$OUT" "" "$prog --no-such-option stdout"
done
run_help h "$BIN/osirisd" --help
for opt in -f -S -D -o -v -n -h; do
	assert_contains "$OUT" "$opt" "osirisd --help lists $opt"
done

d() { timeout 10 "$BIN/osirisd" -S "$SOCK" -D "$STATE" "$@" >"$T/d.out" 2>&1; RC=$?; ERR=$(cat "$T/d.out"); }

printf '[daemon]\nmax_concurrent_runs = 2\nlog_level = debug\n[local]\npool_size = 1\nmax_workers = 4\n' >"$T/good.conf"
d -n -f "$T/good.conf"
assert_eq "$RC" 0 "osirisd -n with a good config ($ERR)"
[ -e "$SOCK" ] && fail "osirisd -n created the socket"

printf '[daemon]\nmax_concurrent_runs = 2\n[local]\npool_size = lots\n' >"$T/badvalue.conf"
d -n -f "$T/badvalue.conf"
[ "$RC" != 0 ] || fail "osirisd -n accepted pool_size = lots"
assert_match "$ERR" 'badvalue\.conf:5|pool_size' "bad value message"
note "bad value: $(head -n1 "$T/d.out")"

printf '[daemon]\nno_such_key = 1\n' >"$T/badkey.conf"
d -n -f "$T/badkey.conf"
[ "$RC" != 0 ] || fail "osirisd -n accepted an unknown key"
assert_match "$ERR" 'badkey\.conf:2|no_such_key' "unknown key message"

printf '[nosection]\nx = 1\n' >"$T/badsection.conf"
d -n -f "$T/badsection.conf"
[ "$RC" != 0 ] || fail "osirisd -n accepted an unknown section"

d -n -f "$T/missing.conf"
[ "$RC" != 0 ] || fail "osirisd -n accepted a missing -f file"
assert_match "$ERR" 'missing\.conf' "missing file message"

d -n -f /dev/null -o local.bogus=1
[ "$RC" != 0 ] || fail "osirisd accepted -o local.bogus=1"
assert_match "$ERR" 'bogus' "bad -o message"
d -n -f /dev/null -o daemon.max_concurrent_runs=-5
[ "$RC" != 0 ] || fail "osirisd accepted max_concurrent_runs=-5"
d -n -f /dev/null -o local.isolation=sometimes
[ "$RC" != 0 ] || fail "osirisd accepted local.isolation=sometimes"

# -o overrides the file, and the daemon runs with the result.
DAEMON_CONF=$T/good.conf
start_daemon -o local.pool_size=0
target=$(ctl --json pool | json "[p for p in (d['pools'] if isinstance(d, dict) else d) if p['backend'] == 'local'][0]['target']")
assert_eq "$target" 0 "pool target with -o local.pool_size=0 over the file's 1"
noop_chain "$T/p" 2
ctlc submit "$T/p" --wait
assert_rc 0 "submit with pool_size 0 (a worker spawned on demand)"
stop_daemon

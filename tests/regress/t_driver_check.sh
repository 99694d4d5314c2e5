# t_driver_check: a submit naming a driver the backend's workers do not have
# is refused (exit 2, the driver named) from what the workers said in
# `ready`: on local even with pool_size=0 (the worker the pool starts to
# check the setup said it); on an E2B pool before any sandbox said it, the
# submit is accepted and the run fails at prepare with the same line; once a
# sandbox said it, refused at submit. Valid pipelines still run.
. "$(dirname "$0")/lib.sh"

# pipe DIR DRIVER: one step of DRIVER.
pipe() {
	pipeline "$1" drv "n:$2:"
	step_cfg "$1" n '{"component":"osiris.noop","mode":"transform"}'
}
pipe "$T/ok" osiris.noop
pipe "$T/bad" no.such_driver

start_emulator
start_daemon -o local.pool_size=0 -o e2b.pool_size=0 -o e2b.create_rate=50
grep -q 'backend=local worker version=.* drivers=[1-9]' "$DLOG" || fail "no driver list for local: $(tail -3 "$DLOG")"

ctlc submit "$T/bad"
assert_rc 2 "unknown driver on local, no worker started"
assert_err_line local
assert_match "$ERR" "unknown driver 'no\.such_driver'" "local error"
ctlc submit "$T/ok" --wait
assert_rc 0 "a known driver on local"

# E2B: no sandbox yet, nothing known: the worker refuses it at prepare.
ctlc submit "$T/bad" --backend e2b --wait
assert_rc 1 "unknown driver on e2b before any sandbox"
RUN=$(head -n1 "$T/ctl.out")
assert_eq "$(run_state "$RUN")" failed "run state"
assert_match "$(run_field "$RUN" error)" "^prepare failed: .*unknown driver 'no\.such_driver'" "run error"
grep -q 'backend=e2b worker version=.* drivers=[1-9]' "$DLOG" || fail "no driver list for e2b: $(tail -3 "$DLOG")"
# A sandbox has said its drivers: now refused at submit, like local.
ctlc submit "$T/bad" --backend e2b
assert_rc 2 "unknown driver on e2b after a sandbox said ready"
assert_match "$ERR" "unknown driver 'no\.such_driver'" "e2b error"
ctlc submit "$T/ok" --backend e2b --wait
assert_rc 0 "a known driver on e2b"
assert_ping
stop_daemon

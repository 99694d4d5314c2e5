# t_e2b_restart: a daemon killed (SIGKILL) while an E2B run executes leaves
# a sandbox behind; the restarted daemon marks the run lost with a reason,
# never leaves it running, and kills the orphaned sandbox (tagged with this
# instance, unknown to it) at start; its new warm sandbox serves a run.
. "$(dirname "$0")/lib.sh"

noop_chain "$T/slow" 2 '"sleep_ms":5000'
noop_chain "$T/p" 2
start_emulator
start_daemon -o e2b.pool_size=1 -o e2b.create_rate=50
wait_for 20 e2b_idle_at_least 1 || fail "no warm sandbox: $(ctl --json pool)"
submit "$T/slow" --backend e2b
wait_state "$RUN" running 20
old=$(run_field "$RUN" worker)
note "run $RUN in sandbox $old; killing the daemon"
kill_daemon
emu_sandboxes | grep -qx "$old" || fail "sandbox $old is not alive after the crash: $(emu_sandboxes)"

start_daemon -o e2b.pool_size=1 -o e2b.create_rate=50
wait_state "$RUN" lost 10
note "after the restart: $(run_field "$RUN" error)"
gone() { ! emu_sandboxes | grep -qx "$old"; }
wait_for 20 gone || fail "the orphaned sandbox $old was not killed: $(emu_sandboxes)"
grep -q "killing orphaned sandbox=$old" "$DLOG" || fail "the daemon did not say it killed $old"
ctlc submit "$T/p" --backend e2b --wait
assert_rc 0 "an e2b run after the restart"
stop_daemon
left=$(emu_sandboxes)
[ -z "$left" ] || fail "sandboxes left after the daemon stopped: $left"
stop_emulator

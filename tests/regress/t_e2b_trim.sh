# t_e2b_trim: sandboxes made for a burst of demand do not outlive it. With
# e2b.pool_size=0, three runs at once get a sandbox each; once they are
# done, no idle sandbox stays above the pool's target (each is killed
# after 10 s idle), so none is left billing in the emulator.
. "$(dirname "$0")/lib.sh"

noop_chain "$T/p" 2 '"sleep_ms":300'
start_emulator
start_daemon -o e2b.pool_size=0 -o e2b.create_rate=50
for i in 1 2 3; do
	ctlc submit "$T/p" --backend e2b
	assert_rc 0 "submit $i"
	ids+=("$(head -n1 "$T/ctl.out")")
done
for r in "${ids[@]}"; do wait_state "$r" succeeded 60; done
note "after the burst: $(ctl pool | grep '^e2b')"
none_idle() { [ "$(pool_field e2b idle)" = 0 ] && [ "$(pool_field e2b warming)" = 0 ] && [ -z "$(emu_sandboxes)" ]; }
wait_for 30 none_idle || fail "sandboxes above the target stayed: $(ctl --json pool) / $(emu_sandboxes)"
grep -q "idle above the pool's target" "$DLOG" || note "(trim not logged at this level)"
stop_daemon
no_leak "trim"
stop_emulator

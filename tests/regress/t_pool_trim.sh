# t_pool_trim: local sandboxes made on demand for a burst do not outlive
# it. With local.pool_size=1 and three runs at once, three sandboxes exist;
# once the runs are done and the sandboxes have been idle for 10 s, the
# ones above the target are retired (their zygote and bwrap processes
# end), and the pool keeps exactly local.pool_size idle.
. "$(dirname "$0")/lib.sh"

noop_chain "$T/p" 2 '"sleep_ms":1500'
start_daemon -o local.pool_size=1 -o local.max_workers=3
for i in 1 2 3; do
	ctlc submit "$T/p"
	assert_rc 0 "submit $i"
	ids+=("$(head -n1 "$T/ctl.out")")
done
for r in "${ids[@]}"; do wait_state "$r" succeeded 60; done
# The sandboxes each run had, for a run to come soon after the burst.
workers=$(for r in "${ids[@]}"; do run_field "$r" worker; done | sort -u | wc -l)
assert_eq "$workers" 3 "workers the three concurrent runs had"
idle3() { [ "$(pool_field local idle)" = 3 ]; }
wait_for 8 idle3 || fail "the sandboxes of the burst are not idle right after it: $(ctl --json pool)"
# Every sandbox has one osiris-worker --zygote of this daemon (its waiting
# child, a fork, has the same command line: not counted).
WEXE=$(readlink -f "$BIN/osiris-worker")
zygotes() {
	local p pp
	for p in $(pgrep -f -- "--zygote"); do
		[ "$(readlink "/proc/$p/exe" 2>/dev/null)" = "$WEXE" ] || continue
		grep -q -F -- "$T" "/proc/$p/cmdline" 2>/dev/null || continue
		pp=$(awk '$1 == "PPid:" { print $2 }' "/proc/$p/status" 2>/dev/null)
		[ "$(readlink "/proc/$pp/exe" 2>/dev/null)" = "$WEXE" ] || echo "$p"
	done | wc -l
}
assert_eq "$(zygotes)" 3 "zygote processes after the burst"
note "after the burst: $(ctl pool | grep '^local')"
back_to_target() { [ "$(pool_field local idle)" = 1 ] && [ "$(pool_field local warming)" = 0 ] && [ "$(zygotes)" = 1 ]; }
wait_for 30 back_to_target || fail "sandboxes above local.pool_size stayed: $(ctl --json pool), $(zygotes) zygotes"
grep -q "idle above the pool's target" "$DLOG" || note "(trim not logged at this level)"
# The one kept still serves.
ctlc submit "$T/p" --wait
assert_rc 0 "a run after the trim"
stop_daemon

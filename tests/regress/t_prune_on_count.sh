# t_prune_on_count: with daemon.keep_runs set, retention does not wait for
# its timer when runs end fast: once a tenth of keep_runs (at least 64 runs)
# ended since the last pass, a pass runs, so a busy host never keeps a whole
# prune_interval_s of runs beside the kept ones.
. "$(dirname "$0")/lib.sh"

noop_chain "$T/p" 1
start_daemon -o daemon.keep_runs=10 -o daemon.prune_interval_s=3600
sleep 1.5 # the first pass, one second after start, finds nothing
for i in $(seq 1 70); do
	ctlc submit "$T/p" --wait
	assert_rc 0 "run $i"
done
count() { ctl --json runs --limit 1000 | json 'len(d)'; }
pruned() { [ "$(count)" -le 16 ]; }
wait_for 10 pruned || fail "$(count) runs kept after 70 ended with keep_runs=10 and an hour-long timer"
note "70 runs ended, $(count) kept (keep_runs=10, a pass after 64)"
[ "$(count)" -ge 10 ] || fail "only $(count) runs kept, keep_runs is 10"
stop_daemon

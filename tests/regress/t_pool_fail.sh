# t_pool_fail: a local pool that cannot start workers fails the runs waiting
# for it with the reason instead of hanging them (issue 6): a worker path that
# does not exist, a worker that exits 1 at once, a worker that crashes in
# `prepare`. Each time: the run ends failed with that reason within the
# limit, `submit -f` exits 1, `osirisctl pool` shows why, the log does not
# grow with every retry; once fixed (the file appears, or a SIGHUP with a
# corrected local.worker) the next run succeeds.
. "$(dirname "$0")/lib.sh"

noop_chain "$T/p" 2
pool_ok() { [ "$(pool_field local failing)" = false ] && [ "$(pool_field local idle)" -ge 1 ]; }
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }
# submit_fails ERE: submit -f fails within 15 s with a run error matching ERE.
submit_fails() {
	local t0 ms id
	t0=$(date +%s%N)
	ctlc submit "$T/p" -f
	ms=$(ms_since "$t0")
	assert_rc 1 "submit -f with a pool that cannot start workers"
	[ "$ms" -lt 15000 ] || fail "the run took $ms ms to fail"
	id=$(head -n1 "$T/ctl.out")
	assert_eq "$(run_state "$id")" failed "run state"
	ERROR=$(run_field "$id" error)
	note "failed in $ms ms: $ERROR"
	assert_match "$ERROR" "$1" "run error"
}

# 1. local.worker names a file that does not exist (yet).
W=$T/bin/osiris-worker
start_daemon -o local.start_fail_limit=3 -o "local.worker=$W"
submit_fails 'local pool cannot start workers: .*osiris-worker.*(No such file|cannot execute)'
assert_eq "$(pool_field local failing)" true "pool.failing"
assert_match "$(pool_field local last_error)" 'No such file' "pool.last_error"
ctlc pool
assert_rc 0 "osirisctl pool"
assert_match "$OUT" 'local: [0-9]+ starts failed in a row \(runs for it fail\): .*No such file' "osirisctl pool"
# A run submitted while the pool is failing fails at once.
submit_fails 'local pool cannot start workers'
# The log grows by a handful of lines, not one per retry.
before=$(grep -c 'worker failed to start' "$DLOG")
sleep 4
after=$(grep -c 'worker failed to start' "$DLOG")
note "start-failure log lines: $before, 4 s later $after"
[ "$after" -le $((before + 2)) ] || fail "log grew from $before to $after start-failure lines in 4 s"
assert_ping
# The file appears: the pool recovers by itself, the next run succeeds.
mkdir -p "$T/bin"
cp "$BIN/osiris-worker" "$W"
wait_for 15 pool_ok || fail "pool did not recover once the worker appeared: $(ctl --json pool)"
ctlc submit "$T/p" --wait
assert_rc 0 "submit after the worker appeared"
stop_daemon

# 2. A worker that exits 1 at once, fixed by SIGHUP with a corrected path.
cp "$SRC/tests/regress/fake_worker.py" "$T/bin/exit1_worker"
chmod +x "$T/bin/exit1_worker"
printf '[local]\nworker = %s\nstart_fail_limit = 3\n' "$T/bin/exit1_worker" >"$T/osirisd.conf"
DAEMON_CONF=$T/osirisd.conf
start_daemon
submit_fails 'local pool cannot start workers: exit1_worker exited 1: fake_worker: error while loading shared libraries: libosiris-missing'
printf '[local]\nworker = %s\nstart_fail_limit = 3\n' "$BIN/osiris-worker" >"$T/osirisd.conf"
kill -HUP "$DAEMON_PID"
wait_for 15 pool_ok || fail "pool did not recover after SIGHUP with a corrected local.worker: $(ctl --json pool)"
ctlc submit "$T/p" --wait
assert_rc 0 "submit after the SIGHUP"
stop_daemon
DAEMON_CONF=/dev/null

# 3. A worker that starts and answers ping, then crashes in prepare: every
# run on it fails with the crash and the worker's last words.
cp "$SRC/tests/regress/fake_worker.py" "$T/bin/crash_prepare_worker"
chmod +x "$T/bin/crash_prepare_worker"
start_daemon -o "local.worker=$T/bin/crash_prepare_worker"
submit_fails 'worker exited unexpectedly \(crash_prepare_worker killed by signal 11 .*crashing in prepare\) during prepare'
submit_fails 'crashing in prepare'
assert_ping
stop_daemon

# 4. A zygote that refuses `fork`: a worker that does not start (the pool
# backs off and, from local.start_fail_limit on, fails runs with why).
cp "$SRC/tests/regress/fake_worker.py" "$T/bin/refuse_fork_worker"
chmod +x "$T/bin/refuse_fork_worker"
start_daemon -o "local.worker=$T/bin/refuse_fork_worker" -o local.start_fail_limit=3
submit_fails 'local pool cannot start workers: osiris-worker --zygote: fork refused'
assert_ping
stop_daemon

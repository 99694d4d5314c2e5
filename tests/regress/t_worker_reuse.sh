# t_worker_reuse: with local.worker_max_runs=3 one worker serves up to three
# successful runs, and nothing of one run reaches the next: a secret given to
# run A is "not set" for run B on the same worker and appears nowhere. A
# failed run's worker is discarded. Workspaces live under local.work_dir,
# stale ones are removed at start and none is left after stop.
. "$(dirname "$0")/lib.sh"

CANARY=$(canary canary)
WD=$T/wd
mkdir -p "$WD/wk-99"
start_daemon -o local.worker_max_runs=3 -o local.pool_size=1 -o local.max_workers=1 -o "local.work_dir=$WD"
[ -e "$WD/wk-99" ] && fail "a stale workspace (wk-99) under local.work_dir survived the daemon start"

a=$T/a
pipeline "$a" reuse-a "q:duckdb.processor:"
step_cfg "$a" q '{"component":"duckdb.processor","mode":"transform","query":"SELECT length('"'"'${DB_PASSWORD}'"'"') AS n"}'
submit "$a" --secret "DB_PASSWORD=$CANARY" --wait
RUN_A=$RUN
assert_eq "$(run_state "$RUN_A")" succeeded "run A"
W_A=$(run_field "$RUN_A" worker)

b=$T/b
pipeline "$b" reuse-b "q:duckdb.processor:"
step_cfg "$b" q '{"component":"duckdb.processor","mode":"transform","query":"SELECT '"'"'${DB_PASSWORD}'"'"' AS leaked"}'
ctlc submit "$b" --wait
assert_rc 1 "run B (uses DB_PASSWORD without the secret)"
RUN_B=$(head -n1 "$T/ctl.out")
assert_eq "$(run_field "$RUN_B" worker)" "$W_A" "run B's worker (reused from run A)"
qerr=$(step_field "$RUN_B" q error)
assert_contains "$qerr" "not set" "run B's step error"

# B failed: its worker is discarded, C gets a fresh one.
submit "$a" --secret "DB_PASSWORD=$CANARY" --wait
W_C=$(run_field "$RUN" worker)
[ "$W_C" != "$W_A" ] || fail "run C reused the worker of the failed run B ($W_A)"
# C and two more share one worker; the fourth success needs a new one.
ws=("$W_C")
for i in 1 2 3; do
	submit "$a" --secret "DB_PASSWORD=$CANARY" --wait
	assert_eq "$(run_state "$RUN")" succeeded "run $i after C"
	ws+=("$(run_field "$RUN" worker)")
done
assert_eq "${ws[1]}" "$W_C" "second run on C's worker"
assert_eq "${ws[2]}" "$W_C" "third run on C's worker"
[ "${ws[3]}" != "$W_C" ] || fail "worker $W_C served a fourth run (worker_max_runs=3)"

ctl --json logs "$RUN_B" >"$T/logs_b.jsonl"
show_json "$RUN_B" >"$T/show_b.json"
stop_daemon
hits=$(grep -r -a -l -F -- "$CANARY" "$STATE" "$DLOG" "$T/logs_b.jsonl" "$T/show_b.json" "$WD" 2>/dev/null)
[ -z "$hits" ] || fail "the secret of run A appears in: $hits"
left=$(find "$WD" -mindepth 1 -maxdepth 1 -name 'wk-*' | wc -l)
assert_eq "$left" 0 "workspaces left under local.work_dir after stop"

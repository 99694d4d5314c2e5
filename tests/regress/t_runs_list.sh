# t_runs_list: concurrent submits all succeed and all are listed; `runs`
# is newest first and honours --state and --limit.
. "$(dirname "$0")/lib.sh"

start_daemon
N=12
pids=()
for i in $(seq 1 $N); do
	"$BIN/osirisctl" -S "$SOCK" submit "$SRC/examples/noop3" --wait >"$T/sub.$i" 2>&1 &
	pids+=($!)
done
for i in "${!pids[@]}"; do
	wait "${pids[$i]}" || fail "concurrent submit $((i + 1)) exited $?: $(cat "$T/sub.$((i + 1))")"
done
ctl --json runs >"$T/runs.json" || fail "runs --json failed"
runs() { json "d['runs'] if isinstance(d, dict) else d" <"$T/runs.json"; }
assert_eq "$(runs | json 'len(d)')" "$N" "runs listed"
assert_eq "$(runs | json 'all(r["state"] == "succeeded" for r in d)')" true "all runs succeeded"
assert_eq "$(runs | json '[r["submitted_at"] for r in d] == sorted([r["submitted_at"] for r in d], reverse=True)')" true "newest first"
assert_eq "$(runs | json 'len(set(r["id"] for r in d))')" "$N" "distinct run ids"
for i in $(seq 1 $N); do
	id=$(head -n1 "$T/sub.$i")
	runs | grep -q "\"$id\"" || fail "run $id of submit $i not listed"
done

ctl --json runs --limit 5 | json "len(d['runs'] if isinstance(d, dict) else d)" | grep -qx 5 || fail "runs --limit 5 did not list 5"
ctl --json runs --state failed | json "len(d['runs'] if isinstance(d, dict) else d)" | grep -qx 0 || fail "runs --state failed is not empty"
ctlc runs --state bogus
assert_rc 2 "runs --state bogus"
assert_err_line "runs --state bogus"
ctlc runs
assert_rc 0 "runs (human)"
[ "$(printf '%s\n' "$OUT" | grep -c succeeded)" -ge $N ] || fail "human runs output lacks the runs: $OUT"
stop_daemon

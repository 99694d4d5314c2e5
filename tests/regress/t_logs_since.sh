# t_logs_since: `logs --json` numbers records 1..N without gaps and
# `--since K` resumes exactly after K (no gap, no duplicate); --tail N.
. "$(dirname "$0")/lib.sh"

start_daemon
noop_chain "$T/p" 5
submit "$T/p" --wait
ctl --json logs "$RUN" >"$T/all.jsonl" || fail "logs --json failed"
N=$(jsonl 'len(L)' <"$T/all.jsonl")
[ "$N" -ge 12 ] || fail "only $N records for a 5-step run"
jsonl '[r["seq"] for r in L] == list(range(1, len(L) + 1))' <"$T/all.jsonl" | grep -qx true ||
	fail "seqs are not 1..$N: $(jsonl '[r["seq"] for r in L]' <"$T/all.jsonl")"
assert_eq "$(run_field "$RUN" last_seq)" "$N" "run last_seq"
# every record names the run and has ts/origin/kind/name
jsonl 'all(r["run"] == L[0]["run"] and r.get("ts") and r["origin"] in ("worker", "daemon") and r["kind"] in ("event", "metric", "log") and r.get("name") for r in L)' <"$T/all.jsonl" |
	grep -qx true || fail "records lack run/ts/origin/kind/name: $(head -n2 "$T/all.jsonl")"
# the worker's step events are there, in order, once per step
starts=$(jsonl '",".join(r["step_id"] for r in L if r["name"] == "step_start")' <"$T/all.jsonl")
assert_eq "$starts" "s1,s2,s3,s4,s5" "step_start order"

for K in 0 1 2 $((N / 2)) $((N - 1)) "$N"; do
	ctl --json logs --since "$K" "$RUN" >"$T/since.jsonl" || fail "logs --since $K failed"
	tail -n +$((K + 1)) "$T/all.jsonl" | cmp -s - "$T/since.jsonl" ||
		fail "logs --since $K differs from records $((K + 1))..$N of the full list"
done
ctl --json logs --tail 3 "$RUN" >"$T/tail.jsonl" || fail "logs --tail failed"
tail -n 3 "$T/all.jsonl" | cmp -s - "$T/tail.jsonl" || fail "logs --tail 3 is not the last 3 records"

# follow from the middle of a finished run ends at once with the run's status
K=$((N / 2))
ctlc --json logs -f --since "$K" "$RUN"
assert_rc 0 "logs -f --since on a finished run"
got=$(printf '%s\n' "$OUT" | jsonl '",".join(str(r["seq"]) for r in L)')
want=$(seq $((K + 1)) "$N" | paste -sd,)
assert_eq "$got" "$want" "logs -f --since $K seqs"

# the human format prints one line per record too
ctlc logs "$RUN"
assert_rc 0 "logs"
[ "$(printf '%s\n' "$OUT" | grep -c .)" -ge "$N" ] || fail "human logs printed fewer than $N lines"
stop_daemon

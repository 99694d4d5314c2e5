# t_submit_follow: the demo pipeline end to end. `submit -f` prints the run
# id first, streams every step live and exits 0; show/artifacts/logs report
# the run exactly; the joined CSV has the expected bytes.
. "$(dirname "$0")/lib.sh"

EX=$SRC/examples/join-csv
[ -f "$EX/manifest.yaml" ] || fail "examples/join-csv/manifest.yaml is missing"
OUTPUT=output/customer_totals.csv

# The expected output, computed by hand from examples/join-csv/data:
# inner join (customer 6 has no orders), ROUND(SUM) as the writer renders a
# double (shortest text that reads back: 160, not 160.0), RFC 4180 quoting
# only where needed, UTF-8 kept, LF line ends.
expected_csv() {
	cat <<'CSV'
customer_id,name,country,order_count,total_amount
3,Alan Turing,UK,2,262.75
2,"Hopper, Grace",US,2,175.25
1,Ada Lovelace,UK,3,160
4,Zoë Müller,DE,2,100
5,"Linus ""Penguin"" T.",FI,1,42.42
CSV
}

start_daemon
ctlc submit "$EX" -f
assert_rc 0 "submit examples/join-csv -f"
RUN=$(head -n1 "$T/ctl.out")
[[ "$RUN" =~ ^[A-Za-z0-9_-]+$ ]] || fail "first line of submit -f is not the run id alone: '$RUN'"
show_json "$RUN" >"$T/show.json" || fail "show --json $RUN failed"
ids=$(json '" ".join(s["id"] for s in d["steps"])' <"$T/show.json")
for id in $ids; do
	printf '%s\n' "$OUT" | grep 'step_start' | grep -q -w -F -- "$id" || fail "submit -f output has no step_start line for step $id"
done

# show --json
assert_eq "$(json 'd["state"]' <"$T/show.json")" succeeded "run state"
assert_eq "$(json 'd["exit_code"]' <"$T/show.json")" 0 "run exit_code"
assert_eq "$(json 'd["error"]' <"$T/show.json")" null "run error"
assert_eq "$(json 'd["backend"]' <"$T/show.json")" local "run backend"
assert_eq "$(json 'd["id"]' <"$T/show.json")" "$RUN" "run id"
assert_eq "$(json 'len(d["steps"])' <"$T/show.json")" 4 "number of steps"
assert_eq "$(json 'all(d[k] for k in ("submitted_at", "started_at", "finished_at", "worker"))' <"$T/show.json")" true "times and worker set"
assert_eq "$(json 'all(s["state"] == "succeeded" and s["error"] is None and isinstance(s["duration_ms"], int) for s in d["steps"])' <"$T/show.json")" true \
	"every step succeeded with a duration: $(json '[(s["id"], s["state"], s["duration_ms"]) for s in d["steps"]]' <"$T/show.json")"
# rows: extractors and the SQL step produce rows, the writer consumes them
rows=$(json '" ".join("%s:%s:%s:%s" % (s["id"], s["driver"], s["rows_in"], s["rows_out"]) for s in d["steps"])' <"$T/show.json")
note "steps: $rows"
for r in $rows; do
	IFS=: read -r id drv rin rout <<<"$r"
	case $drv in
	*extractor | duckdb.processor) [ "$rout" -gt 0 ] 2>/dev/null || fail "step $id ($drv) rows_out=$rout" ;;
	*writer) [ "$rin" -gt 0 ] 2>/dev/null || fail "step $id ($drv) rows_in=$rin" ;;
	esac
done
want_rows=$(($(expected_csv | wc -l) - 1))
sqlrows=$(json '[s["rows_out"] for s in d["steps"] if s["driver"] == "duckdb.processor"][0]' <"$T/show.json")
assert_eq "$sqlrows" "$want_rows" "rows_out of the SQL step"

# artifacts --json: the output with its size and sha256
expected_csv >"$T/expected.csv"
ctl --json artifacts "$RUN" >"$T/artifacts.json" || fail "artifacts --json failed"
entry=$(json "[a for a in (d['artifacts'] if isinstance(d, dict) else d) if a['path'] == '$OUTPUT']" <"$T/artifacts.json")
[ "$entry" != "[]" ] || fail "artifacts --json lacks $OUTPUT: $(cat "$T/artifacts.json")"
size=$(printf '%s' "$entry" | json 'd[0]["size"]')
sha=$(printf '%s' "$entry" | json 'd[0]["sha256"]')
assert_eq "$size" "$(stat -c %s "$T/expected.csv")" "artifact size"
assert_eq "$sha" "$(sha256sum "$T/expected.csv" | cut -d' ' -f1)" "artifact sha256"
json '[a for a in (d["artifacts"] if isinstance(d, dict) else d) if a["path"].startswith("data/") or a["path"] == "manifest.yaml"]' <"$T/artifacts.json" |
	grep -qx '\[\]' || fail "unchanged input files were reported as artifacts: $(cat "$T/artifacts.json")"

# --get to stdout, -o FILE, --export DIR: the same bytes
ctl artifacts "$RUN" --get "$OUTPUT" >"$T/got.csv" || fail "artifacts --get failed"
cmp "$T/got.csv" "$T/expected.csv" || fail "$OUTPUT differs from the expected CSV: $(diff "$T/expected.csv" "$T/got.csv" | head -n 10)"
ctl artifacts "$RUN" --get "$OUTPUT" -o "$T/got2.csv" || fail "artifacts --get -o failed"
cmp -s "$T/got2.csv" "$T/expected.csv" || fail "artifacts --get -o wrote different bytes"
ctl artifacts "$RUN" --export "$T/export" >/dev/null || fail "artifacts --export failed"
cmp -s "$T/export/artifacts/$OUTPUT" "$T/expected.csv" || fail "artifacts --export: artifacts/$OUTPUT differs"
ctlc artifacts "$RUN" --get no/such/file.csv
assert_rc 2 "artifacts --get of a missing path"
assert_err_line "artifacts --get of a missing path"

# logs --json: the worker's events for every step, the daemon's around them
ctl --json logs "$RUN" >"$T/logs.jsonl" || fail "logs --json failed"
for ev in run_start run_complete; do
	jsonl "[r for r in L if r['name'] == '$ev' and r['origin'] == 'worker']" <"$T/logs.jsonl" | grep -q . ||
		fail "no worker $ev event"
done
for ev in run_queued worker_acquired run_end; do
	[ "$(jsonl "len([r for r in L if r['name'] == '$ev' and r['origin'] == 'daemon'])" <"$T/logs.jsonl")" = 1 ] ||
		fail "expected one daemon $ev event"
done
for id in $ids; do
	for ev in step_start step_complete; do
		[ "$(jsonl "len([r for r in L if r['name'] == '$ev' and r['step_id'] == '$id'])" <"$T/logs.jsonl")" = 1 ] ||
			fail "expected one $ev for step $id"
	done
done
# run_end carries the final state
assert_eq "$(jsonl '[r["data"]["state"] for r in L if r["name"] == "run_end"][0]' <"$T/logs.jsonl")" succeeded "run_end state"

# runs lists it; a unique prefix addresses it
ctl --json runs | grep -q "$RUN" || fail "runs --json does not list $RUN"
assert_eq "$(run_state "${RUN:0:$((${#RUN} - 2))}")" succeeded "show by unique prefix"
stop_daemon

# t_bad_sql: an invalid SQL step fails the run (submit --wait exits 1); the
# step carries sqlite's error text, visible in logs; dependents are skipped.
. "$(dirname "$0")/lib.sh"

start_daemon
d=$T/p
pipeline "$d" badsql "ex:filesystem.csv_extractor:" "q:duckdb.processor:ex" "out:filesystem.csv_writer:q" "other:osiris.noop:ex"
step_cfg "$d" ex '{"component":"filesystem.csv_extractor","mode":"extract","path":"data/in.csv"}'
step_cfg "$d" q '{"component":"duckdb.processor","mode":"transform","query":"SELEC id, amount FROM df_ex"}'
step_cfg "$d" out '{"component":"filesystem.csv_writer","mode":"write","path":"output/out.csv"}'
step_cfg "$d" other '{"component":"osiris.noop","mode":"transform"}'
mkdir -p "$d/data"
gen_csv "$d/data/in.csv" 10

ctlc submit "$d" --wait
assert_rc 1 "submit --wait of a run with bad SQL"
RUN=$(head -n1 "$T/ctl.out")
show_json "$RUN" >"$T/show.json"
assert_eq "$(json 'd["state"]' <"$T/show.json")" failed "run state"
assert_eq "$(json 'd["exit_code"]' <"$T/show.json")" 1 "run exit_code"
st() { json "[s for s in d['steps'] if s['id'] == '$1'][0]['$2']" <"$T/show.json"; }
assert_eq "$(st ex state)" succeeded "extract step"
assert_eq "$(st q state)" failed "SQL step"
assert_eq "$(st out state)" skipped "writer after the failed SQL step"
# nothing starts after a failure: the independent step after q (manifest
# order) never runs
case $(st other state) in skipped | cancelled) ;; *) fail "independent step after the failure: state $(st other state), expected skipped" ;; esac
err=$(st q error)
assert_match "$err" 'syntax error|SELEC' "SQL step error"
note "SQL step error: $err"
run_err=$(json 'd["error"] or ""' <"$T/show.json")
[ -n "$run_err" ] || fail "failed run has no error"

ctlc logs "$RUN"
assert_rc 0 "logs (without -f) of a failed run"
assert_contains "$OUT" "syntax error" "logs"
ctlc logs -f "$RUN"
assert_rc 1 "logs -f of a failed run"
ctl --json logs "$RUN" | jsonl '[r for r in L if r["name"] == "step_failed" and r["step_id"] == "q"]' | grep -q 'syntax error' ||
	fail "no step_failed event for q with the sqlite error"
started=$(ctl --json logs "$RUN" | jsonl '",".join(r["step_id"] for r in L if r["name"] == "step_start")')
assert_eq "$started" "ex,q" "steps started"
# a failed run still collects: the per-step files of the steps that ran
ctlc --json artifacts "$RUN"
assert_rc 0 "artifacts of a failed run"
printf '%s' "$OUT" | json "[a['path'] for a in (d['artifacts'] if isinstance(d, dict) else d)]" | grep -q '"artifacts/ex/' ||
	fail "no artifacts/ex/... collected for the failed run: $OUT"
assert_ping
stop_daemon

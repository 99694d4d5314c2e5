# t_secret_canary: a --secret value reaches the step (its error text carries
# it) but is never written anywhere: not in the store (osiris.db, -wal), the
# state dir, the daemon's -v -v log, `logs --json`, `show --json` or the
# client's output; `***` stands in its place.
. "$(dirname "$0")/lib.sh"

CANARY=$(canary canary)
start_daemon -v -v
d=$T/p
pipeline "$d" secret "ex:filesystem.csv_extractor:" "q:duckdb.processor:ex" "out:filesystem.csv_writer:q"
step_cfg "$d" ex '{"component":"filesystem.csv_extractor","mode":"extract","path":"data/in.csv"}'
# The table name is the secret: sqlite's error "no such table: <secret>".
step_cfg "$d" q '{"component":"duckdb.processor","mode":"transform","query":"SELECT * FROM \"${DB_PASSWORD}\""}'
step_cfg "$d" out '{"component":"filesystem.csv_writer","mode":"write","path":"output/out.csv"}'
mkdir -p "$d/data"
gen_csv "$d/data/in.csv" 5

ctlc submit "$d" --secret "DB_PASSWORD=$CANARY" -e PLAIN_VAR=visible -f
assert_rc 1 "submit -f of the failing run"
RUN=$(head -n1 "$T/ctl.out")
printf '%s\n%s\n' "$OUT" "$ERR" >"$T/client.out"
show_json "$RUN" >"$T/show.json"
ctl --json logs "$RUN" >"$T/logs.jsonl"
ctl logs "$RUN" >"$T/logs.txt" 2>&1
assert_eq "$(json 'd["state"]' <"$T/show.json")" failed "run state"
qerr=$(json "[s for s in d['steps'] if s['id'] == 'q'][0]['error']" <"$T/show.json")
note "SQL step error: $qerr"
assert_contains "$qerr" "***" "SQL step error (the secret masked)"
assert_contains "$qerr" 'no such table: ***' "SQL step error (substituted, then masked)"
# the secret is known by name only; plain env is recorded
json 'd["secrets"]' <"$T/show.json" | grep -q DB_PASSWORD || fail "run's secrets list lacks DB_PASSWORD: $(json 'd["secrets"]' <"$T/show.json")"
json 'd["env"]' <"$T/show.json" | grep -q visible || fail "plain env PLAIN_VAR not recorded"

# A successful use: the secret SELECTed into a table that is not written
# out stays in the worker's memory; events carry row counts only.
d2=$T/p2
pipeline "$d2" secret2 "ex:filesystem.csv_extractor:" "q:duckdb.processor:ex" "n:osiris.noop:q"
cp -r "$d/data" "$d2/"
step_cfg "$d2" ex '{"component":"filesystem.csv_extractor","mode":"extract","path":"data/in.csv"}'
step_cfg "$d2" q '{"component":"duckdb.processor","mode":"transform","query":"SELECT id, '"'"'${DB_PASSWORD}'"'"' AS pw FROM df_ex"}'
step_cfg "$d2" n '{"component":"osiris.noop","mode":"transform"}'
DB_PASSWORD=$CANARY ctlc submit "$d2" --secret DB_PASSWORD -f
RUN2=$(head -n1 "$T/ctl.out")
printf '%s\n%s\n' "$OUT" "$ERR" >>"$T/client.out"
assert_rc 0 "submit -f with --secret DB_PASSWORD (value from the environment)"
show_json "$RUN2" >>"$T/show.json"
ctl --json logs "$RUN2" >>"$T/logs.jsonl"
note "second run (secret from the environment): rc $RC, $(run_state "$RUN2")"
# while the daemon runs, the store has its -wal file: check it live too
ls "$STATE"/*-wal >/dev/null 2>&1 || note "no -wal file in the state dir while running"
live=$(grep -r -a -l -F -- "$CANARY" "$STATE" 2>/dev/null)
[ -z "$live" ] || fail "the secret appears in the live state dir: $live"
stop_daemon

places=("$STATE" "$DLOG" "$T/show.json" "$T/logs.jsonl" "$T/logs.txt" "$T/client.out")
hits=$(grep -r -a -l -F -- "$CANARY" "${places[@]}" 2>/dev/null)
[ -z "$hits" ] || fail "the secret appears in: $hits: $(grep -r -a -h -F -- "$CANARY" "${places[@]}" | head -n 2 | cut -c 1-300)"
if command -v sqlite3 >/dev/null 2>&1 && [ -f "$STATE/osiris.db" ]; then
	sqlite3 "$STATE/osiris.db" .dump 2>/dev/null | grep -q -F -- "$CANARY" && fail "the secret is in the store (sqlite3 .dump)"
fi
n=$(find "$STATE" -type f | wc -l)
note "checked $n files in the state dir, the daemon log, show/logs output: no canary"

# t_db_postgres: postgres.extractor/writer and supabase.writer against a real
# PostgreSQL started here: the type matrix read losslessly, 100k rows
# through extractor -> writer, every write mode twice in a row, a failed and
# a killed write leaving the table as it was, bad credentials, a host that
# never answers (within the timeout, host named), a query error (server's
# message), and the password never stored or shown.
# case-timeout: 180
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/db.sh"

PW=$(canary pgpw)
start_pg "$PW"
note "postgres on 127.0.0.1:$PG_PORT"
pg_seed_types
psql_q "CREATE TABLE big AS SELECT g AS id, 'name_' || (g % 977) AS name, (g % 10007) * 1.25 AS amount FROM generate_series(1, 100000) g;
	ALTER TABLE big ADD PRIMARY KEY (id);" >/dev/null || fail "seeding postgres"

CONN="connections:
$(pg_conns local)
"
start_daemon -v -v
submit_ok() { # DIR: submit with the password secret, wait, expect success
	PG_PASSWORD=$PW ctlc submit "$1" --secret PG_PASSWORD --wait
	RUN=$(head -n1 "$T/ctl.out")
	[ "$RC" = 0 ] || fail "run of $1 failed: $(show_json "$RUN" | head -c 1500)"
	RUNS+=("$RUN")
}
submit_fail() { # DIR STEP: expect the run to fail; ERRMSG = the step's error
	PG_PASSWORD=$PW ctlc submit "$1" --secret PG_PASSWORD --wait
	RUN=$(head -n1 "$T/ctl.out")
	[ "$RC" = 1 ] || fail "run of $1 exited $RC, expected a failure"
	ERRMSG=$(step_field "$RUN" "$2" error)
	RUNS+=("$RUN")
}
RUNS=()

# 1. the type matrix -> CSV, text as PostgreSQL renders it
d=$T/types
pipeline "$d" types "ex:postgres.extractor:" "out:filesystem.csv_writer:ex"
printf '%s' "$CONN" >"$d/osiris_connections.yaml"
step_cfg "$d" ex '{"component":"postgres.extractor","connection":"@postgres.local","query":"SELECT * FROM types ORDER BY id;","batch_size":2}'
step_cfg "$d" out '{"component":"filesystem.csv_writer","path":"output/types.csv"}'
submit_ok "$d"
ctl artifacts "$RUN" --get output/types.csv -o "$T/types.csv" || fail "no output/types.csv"
note "types.csv: $(head -c 600 "$T/types.csv")"
exp='id,big,dec,f,b,t,d,ts,tm,bin
1,9223372036854775807,123456789012345678.123456,1.5,true,plain,2024-02-29,2024-02-29 13:14:15.123456,23:59:59,\x00ff
2,-9223372036854775808,0.000001,-0.25,false,"",1970-01-01,1970-01-01 00:00:00,00:00:00,\x
3,,,,,,,,,
4,0,-1.500000,1e+300,true,"emoji 😀 ""q"", tab	x",9999-12-31,2000-01-01 00:00:00,12:00:00,\xdeadbeef'
assert_eq "$(cat "$T/types.csv")" "$exp" "types.csv"
assert_eq "$(step_field "$RUN" ex rows_out)" 4 "rows_out of the extractor"

# 2. 100k rows: extractor -> writer (replace), twice: same table both times
d=$T/big
pipeline "$d" big "ex:postgres.extractor:" "w:postgres.writer:ex"
printf '%s' "$CONN" >"$d/osiris_connections.yaml"
step_cfg "$d" ex '{"component":"postgres.extractor","connection":"@postgres.local","table":"big"}'
step_cfg "$d" w '{"component":"postgres.writer","connection":"@postgres.local","table":"big_copy","write_mode":"replace","primary_key":["id"]}'
sum_big="SELECT count(*) || ':' || md5(string_agg(id || name || amount, ',' ORDER BY id))"
want=$(psql_q "$sum_big FROM big")
for i in 1 2; do
	submit_ok "$d"
	assert_eq "$(psql_q "$sum_big FROM big_copy")" "$want" "big_copy after replace run $i"
done
ctl --json logs "$RUN" | grep -q '"rows_written"' || fail "no rows_written metric"
note "100k rows copied twice (replace), identical"

# 3. every mode twice in a row, from a 3-row CSV
d=$T/modes
pipeline "$d" modes "ex:filesystem.csv_extractor:" "w:supabase.writer:ex"
printf '%s' "$CONN" >"$d/osiris_connections.yaml"
mkdir -p "$d/data"
printf 'id,name,amount\n1,a,1.5\n2,b,2.5\n3,"c\\\\ ""x""\ty",\n' >"$d/data/in.csv"
step_cfg "$d" ex '{"component":"filesystem.csv_extractor","path":"data/in.csv"}'
mode_run() { # MODE TABLE
	step_cfg "$d" w "{\"component\":\"supabase.writer\",\"connection\":\"@supabase.main\",\"table\":\"$2\",\"write_mode\":\"$1\",\"primary_key\":\"id\",\"schema\":\"public\"}"
	submit_ok "$d"
}
rows() { psql_q "SELECT string_agg(id || '|' || coalesce(name, 'NULL') || '|' || coalesce(amount::text, 'NULL'), ';' ORDER BY id) FROM $1"; }
psql_q "CREATE TABLE t_app (id bigint, name text, amount double precision)" >/dev/null
mode_run append t_app
mode_run append t_app
assert_eq "$(psql_q 'SELECT count(*) FROM t_app')" 6 "append twice: rows"
mode_run upsert t_ups
mode_run upsert t_ups
assert_eq "$(rows t_ups)" '1|a|1.5;2|b|2.5;3|c\\ "x"	y|NULL' "upsert twice (table created, then the same)"
assert_eq "$(psql_q "SELECT data_type FROM information_schema.columns WHERE table_name = 't_ups' AND column_name = 'amount'")" "double precision" "create_if_missing column type"
psql_q "CREATE TABLE t_rep (id bigint PRIMARY KEY, name text, amount double precision); INSERT INTO t_rep VALUES (2, 'old', 0), (9, 'gone', 9)" >/dev/null
mode_run replace t_rep
mode_run replace t_rep
assert_eq "$(rows t_rep)" '1|a|1.5;2|b|2.5;3|c\\ "x"	y|NULL' "replace twice"

# 4. atomicity: a write failing on its last row leaves the table as it was
psql_q "DELETE FROM t_rep WHERE id = 3; INSERT INTO t_rep VALUES (0, 'zero', 0);
	ALTER TABLE t_rep ADD CONSTRAINT small CHECK (id < 3)" >/dev/null
before=$(rows t_rep)
step_cfg "$d" w '{"component":"supabase.writer","connection":"@supabase.main","table":"t_rep","write_mode":"replace","primary_key":"id"}'
submit_fail "$d" w
note "constraint failure: $ERRMSG"
assert_contains "$ERRMSG" 'violates check constraint "small"' "failed write's error (server message)"
assert_eq "$(rows t_rep)" "$before" "t_rep after a failed replace"

# 5. a write killed mid-transaction (worker SIGKILLed while the server
# sleeps in a trigger on row 50000) leaves big_copy as it was
psql_q "CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS \$\$ BEGIN IF NEW.id = 50000 THEN PERFORM pg_sleep(2); END IF; RETURN NEW; END \$\$;
	CREATE TRIGGER slow BEFORE INSERT OR UPDATE ON big_copy FOR EACH ROW EXECUTE FUNCTION slow();
	DELETE FROM big_copy WHERE id > 99990;" >/dev/null
before=$(psql_q "$sum_big FROM big_copy")
d=$T/big
PG_PASSWORD=$PW ctlc submit "$d" --secret PG_PASSWORD
RUN=$(head -n1 "$T/ctl.out")
RUNS+=("$RUN")
wait_for 30 sh -c "[ \"\$(PGPASSWORD=$PW $PG_BIN/psql -X -A -t 'host=127.0.0.1 port=$PG_PORT user=osiris dbname=postgres' -c \"SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'\")\" = 1 ]" ||
	fail "the write never reached row 50000"
wpid=$(worker_pid_of "$RUN") || fail "no worker pid for $RUN"
kill -9 "$wpid"
wait_for 20 run_final "$RUN" || fail "run not final after its worker was killed"
wait_for 20 sh -c "[ \"\$(PGPASSWORD=$PW $PG_BIN/psql -X -A -t 'host=127.0.0.1 port=$PG_PORT user=osiris dbname=postgres' -c \"SELECT count(*) FROM pg_stat_activity WHERE application_name = 'osiris-worker'\")\" = 0 ]" ||
	fail "the killed worker's session is still open"
assert_eq "$(psql_q "$sum_big FROM big_copy")" "$before" "big_copy after a killed write"
note "killed write: run $(run_state "$RUN"), table unchanged"
psql_q "DROP TRIGGER slow ON big_copy" >/dev/null

# 6. errors: bad credentials, query error, a host that never answers
d=$T/err
pipeline "$d" err "ex:postgres.extractor:"
printf '%s' "$CONN" >"$d/osiris_connections.yaml"
step_cfg "$d" ex '{"component":"postgres.extractor","connection":"@postgres.wrongpw","query":"SELECT 1"}'
submit_fail "$d" ex
assert_contains "$ERRMSG" 'password authentication failed for user "osiris"' "bad credentials error"
step_cfg "$d" ex '{"component":"postgres.extractor","connection":"@postgres.local","query":"SELECT * FROM no_such_table"}'
submit_fail "$d" ex
assert_contains "$ERRMSG" 'relation "no_such_table" does not exist' "query error"
# a listener that never accepts: the TCP handshake completes, no reply comes
"$PY" -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(0)
open(sys.argv[1], "w").write(str(s.getsockname()[1])); time.sleep(120)' "$T/bh.port" &
BG_PIDS+=($!)
wait_for 5 test -s "$T/bh.port"
step_cfg "$d" ex "{\"component\":\"postgres.extractor\",\"host\":\"127.0.0.1\",\"port\":$(cat "$T/bh.port"),\"user\":\"x\",\"password\":\"\${PG_PASSWORD}\",\"database\":\"x\",\"timeout\":2,\"query\":\"SELECT 1\"}"
t0=$(date +%s)
submit_fail "$d" ex
dt=$(($(date +%s) - t0))
note "blackhole: ${dt}s: $ERRMSG"
[ "$dt" -le 8 ] || fail "unreachable host took ${dt}s (timeout 2)"
assert_contains "$ERRMSG" "127.0.0.1" "unreachable host error names the host"
assert_contains "$ERRMSG" "timeout" "unreachable host error says timeout"

# 7. the password is nowhere
for r in "${RUNS[@]}"; do
	show_json "$r" >>"$T/show.json"
	ctl --json logs "$r" >>"$T/logs.jsonl"
	ctl artifacts "$r" --export "$T/export-$r" >/dev/null 2>&1 || true
done
stop_daemon
hits=$(grep -r -a -l -F -- "$PW" "$STATE" "$DLOG" "$T/show.json" "$T/logs.jsonl" "$T"/export-* 2>/dev/null)
[ -z "$hits" ] || fail "the postgres password appears in: $hits"
note "password absent from state, log, show, logs, exports"

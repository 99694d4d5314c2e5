# t_e2b_postgres: the static worker (what an E2B sandbox runs) links libpq:
# postgres.extractor + supabase.extractor -> SQL -> postgres.writer +
# supabase.writer + CSV against a real PostgreSQL gives the same events,
# metrics, rows and artifacts on --backend e2b (the emulator runs the
# sandbox's worker on this host, so the server on loopback is reachable) as
# on local (the dynamic worker); so does a failing query and bad
# credentials. The password is nowhere; no sandbox is left.
# case-timeout: 180
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/db.sh"

PW=$(canary pgpw)
start_pg "$PW"
pg_seed_types
psql_q "CREATE TABLE movies AS SELECT g AS movie_id, 'movie ' || g AS title, g % 50 AS director_id,
		(g * 2500.25)::numeric(15,2) AS box_office_usd FROM generate_series(1, 20000) g;
	ALTER TABLE movies ADD PRIMARY KEY (movie_id);" >/dev/null || fail "seeding postgres"
{
	echo "connections:"
	pg_conns db
} >"$T/conns.yaml"
connections:
  postgres:
    db:
      host: 127.0.0.1
      port: $PG_PORT
      database: postgres
      user: osiris
      password: \${PG_PASSWORD}
    wrongpw:
      host: 127.0.0.1
      port: $PG_PORT
      database: postgres
      user: osiris
      password: not-the-password
  supabase:
    main:
      url: https://abcdefgh.supabase.co
      pg_dsn: postgresql://osiris:\${PG_PASSWORD}@127.0.0.1:$PG_PORT/postgres
EOF2

start_emulator
start_daemon -o e2b.pool_size=1 -o e2b.create_rate=50
wait_for 20 e2b_idle_at_least 1 || fail "no warm sandbox: $(ctl --json pool)"

d=$T/seed
pipeline "$d" seed "types:postgres.extractor:" "movies:supabase.extractor:" \
	"stats:duckdb.processor:movies" "w:postgres.writer:stats" "sw:supabase.writer:stats" \
	"csv:filesystem.csv_writer:stats" "tcsv:filesystem.csv_writer:types"
cp "$T/conns.yaml" "$d/osiris_connections.yaml"
step_cfg "$d" types '{"component":"postgres.extractor","connection":"@postgres.db","query":"SELECT * FROM types ORDER BY id","batch_size":2}'
step_cfg "$d" movies '{"component":"supabase.extractor","connection":"@supabase.main","query":"SELECT * FROM movies"}'
step_cfg "$d" stats '{"component":"duckdb.processor","query":"SELECT director_id, COUNT(*) AS n, SUM(box_office_usd) AS total FROM df_movies GROUP BY director_id ORDER BY director_id"}'
step_cfg "$d" w '{"component":"postgres.writer","connection":"@postgres.db","table":"stats","write_mode":"replace","primary_key":["director_id"]}'
step_cfg "$d" sw '{"component":"supabase.writer","connection":"@supabase.main","table":"stats_sb","write_mode":"upsert","primary_key":"director_id","schema":"public"}'
step_cfg "$d" csv '{"component":"filesystem.csv_writer","path":"output/stats.csv"}'
step_cfg "$d" tcsv '{"component":"filesystem.csv_writer","path":"output/types.csv"}'

run_on() { # BACKEND DIR EXPECTED_RC
	PG_PASSWORD=$PW parity_submit "$1" "$2" "$3" --secret PG_PASSWORD
}

# The writers' events differ between creating a table and finding it (a
# NOTICE): the compared local and e2b runs both start from the tables a
# first run made, each changed the same way.
spoil() {
	psql_q "DELETE FROM stats WHERE director_id < 10; UPDATE stats_sb SET n = 0; DELETE FROM stats_sb WHERE director_id > 40" >/dev/null ||
		fail "changing the written tables"
}
run_on local "$d" 0
spoil
run_on local "$d" 0
L=$RUN
assert_eq "$(psql_q 'SELECT COUNT(*), SUM(n) FROM stats_sb')" "50|20000" "the table supabase.writer wrote locally"
spoil
run_on e2b "$d" 0
assert_eq "$(run_field "$RUN" backend)" e2b "backend of the e2b run"
assert_eq "$(step_field "$RUN" movies rows_out)" 20000 "rows read from postgres in the sandbox"
assert_eq "$(psql_q 'SELECT COUNT(*), SUM(n) FROM stats')" "50|20000" "the table postgres.writer wrote in the sandbox"
assert_eq "$(psql_q 'SELECT COUNT(*), SUM(n) FROM stats_sb')" "50|20000" "the table supabase.writer wrote in the sandbox"
ctl artifacts "$RUN" --get output/types.csv -o "$T/types.csv" || fail "no output/types.csv from e2b"
exp='id,big,dec,f,b,t,d,ts,tm,bin
1,9223372036854775807,123456789012345678.123456,1.5,true,plain,2024-02-29,2024-02-29 13:14:15.123456,23:59:59,\x00ff
2,-9223372036854775808,0.000001,-0.25,false,"",1970-01-01,1970-01-01 00:00:00,00:00:00,\x
3,,,,,,,,,
4,0,-1.500000,1e+300,true,"emoji 😀 ""q"", tab	x",9999-12-31,2000-01-01 00:00:00,12:00:00,\xdeadbeef'
assert_eq "$(cat "$T/types.csv")" "$exp" "types.csv from the e2b run"
parity_same "postgres + supabase -> sql -> postgres + supabase + csv" "$L" "$RUN"

e=$T/err
pipeline "$e" err "ex:postgres.extractor:"
cp "$T/conns.yaml" "$e/osiris_connections.yaml"
step_cfg "$e" ex '{"component":"postgres.extractor","connection":"@postgres.db","query":"SELECT nope FROM movies"}'
run_on local "$e" 1
L=$RUN
run_on e2b "$e" 1
assert_contains "$(step_field "$RUN" ex error)" 'column "nope" does not exist' "query error on e2b"
parity_same "query error" "$L" "$RUN"
step_cfg "$e" ex '{"component":"postgres.extractor","connection":"@postgres.wrongpw","query":"SELECT 1"}'
run_on local "$e" 1
L=$RUN
run_on e2b "$e" 1
assert_contains "$(step_field "$RUN" ex error)" 'password authentication failed for user "osiris"' "bad credentials on e2b"
parity_same "bad credentials" "$L" "$RUN"

parity_end postgres "$PW"

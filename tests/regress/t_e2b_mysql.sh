# t_e2b_mysql: the static worker (what an E2B sandbox runs) links libmariadb:
# a mysql.extractor -> SQL -> mysql.writer + CSV pipeline against a real
# MariaDB gives the same events, metrics, rows and artifacts on --backend e2b
# (the emulator runs the sandbox's worker on this host, so the server on
# loopback is reachable) as on local (the dynamic worker); so does a failing
# query and bad credentials. The password is nowhere; no sandbox is left.
# case-timeout: 180
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/db.sh"

PW=$(canary mypw)
start_mysql "$PW"
my_seed 20000
{
	echo connections:
	my_conns db
} >"$T/conns.yaml"

start_emulator
start_daemon -o e2b.pool_size=1 -o e2b.create_rate=50
wait_for 20 e2b_idle_at_least 1 || fail "no warm sandbox: $(ctl --json pool)"

d=$T/seed
pipeline "$d" seed "types:mysql.extractor:" "movies:mysql.extractor:" \
	"stats:duckdb.processor:movies" "w:mysql.writer:stats" "csv:filesystem.csv_writer:stats" \
	"tcsv:filesystem.csv_writer:types"
cp "$T/conns.yaml" "$d/osiris_connections.yaml"
step_cfg "$d" types '{"component":"mysql.extractor","connection":"@mysql.db","query":"SELECT * FROM types ORDER BY id"}'
step_cfg "$d" movies '{"component":"mysql.extractor","connection":"@mysql.db","query":"SELECT * FROM movies"}'
step_cfg "$d" stats '{"component":"duckdb.processor","query":"SELECT director_id, COUNT(*) AS n, SUM(box_office_usd) AS total FROM df_movies GROUP BY director_id ORDER BY director_id"}'
step_cfg "$d" w '{"component":"mysql.writer","connection":"@mysql.db","table":"stats","write_mode":"replace","primary_key":["director_id"]}'
step_cfg "$d" csv '{"component":"filesystem.csv_writer","path":"output/stats.csv"}'
step_cfg "$d" tcsv '{"component":"filesystem.csv_writer","path":"output/types.csv"}'

run_on() { # BACKEND DIR EXPECTED_RC
	MYSQL_PASSWORD=$PW parity_submit "$1" "$2" "$3" --secret MYSQL_PASSWORD
}

run_on local "$d" 0
L=$RUN
my_q "DELETE FROM osiris.stats WHERE director_id < 10"
run_on e2b "$d" 0
assert_eq "$(run_field "$RUN" backend)" e2b "backend of the e2b run"
assert_eq "$(step_field "$RUN" movies rows_out)" 20000 "rows read from mysql in the sandbox"
assert_eq "$(my_q 'SELECT COUNT(*), SUM(n) FROM osiris.stats')" "50	20000" "the table the sandbox wrote"
ctl artifacts "$RUN" --get output/types.csv -o "$T/types.csv" || fail "no output/types.csv from e2b"
exp='id,dec_v,dt,d,tm,s,bl,bn,e,ub,flag,f
1,12345678901234567890.0123456789,2024-02-29 13:14:15.123456,2024-02-29,838:59:59,"",\x00ff10,\x61626364,😀 ok,18446744073709551615,1,1.5
2,,,,,,,,,,,
3,-0.0000000001,1000-01-01 00:00:00.000000,9999-12-31,-12:00:00,"a,""b""",\x,\x00000000,ünï,0,0,-2.25'
assert_eq "$(cat "$T/types.csv")" "$exp" "types.csv from the e2b run"
parity_same "mysql -> sql -> mysql + csv" "$L" "$RUN"

e=$T/err
pipeline "$e" err "ex:mysql.extractor:"
cp "$T/conns.yaml" "$e/osiris_connections.yaml"
step_cfg "$e" ex '{"component":"mysql.extractor","connection":"@mysql.db","query":"SELECT nope FROM movies"}'
run_on local "$e" 1
L=$RUN
run_on e2b "$e" 1
assert_contains "$(step_field "$RUN" ex error)" "Unknown column 'nope'" "query error on e2b"
parity_same "query error" "$L" "$RUN"
step_cfg "$e" ex '{"component":"mysql.extractor","connection":"@mysql.wrongpw","query":"SELECT 1"}'
run_on local "$e" 1
L=$RUN
run_on e2b "$e" 1
assert_contains "$(step_field "$RUN" ex error)" "Access denied for user 'osiris'" "bad credentials on e2b"
parity_same "bad credentials" "$L" "$RUN"

parity_end mysql "$PW"

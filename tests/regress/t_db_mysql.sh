# t_db_mysql: mysql.extractor against a real MariaDB started here: the type
# matrix (DECIMAL exact, DATETIME/DATE/TIME, NULL vs '', BLOB/BINARY,
# utf8mb4 emoji, BIGINT UNSIGNED), 100k rows streamed, the seed's pipeline
# shape (MySQL -> SQL -> PostgreSQL + CSV), bad credentials, a query error,
# an unreachable host within the timeout; the password nowhere.
# mysql.writer: every mode twice, a failing write leaving the table as is.
# case-timeout: 180
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/db.sh"

PW=$(canary mypw)
start_mysql "$PW"
note "mariadb on 127.0.0.1:$MY_PORT"
my_seed 100000

PGPW=$(canary pgpw)
start_pg "$PGPW"
{
	echo connections:
	my_conns db_movies
	cat <<EOF2
  supabase:
    main:
      host: 127.0.0.1
      port: $PG_PORT
      database: postgres
      user: osiris
      password: \${PG_PASSWORD}
EOF2
} >"$T/conns.yaml"
start_daemon -v -v
RUNS=()
run_it() { # DIR EXPECTED_RC
	MYSQL_PASSWORD=$PW PG_PASSWORD=$PGPW ctlc submit "$1" --secret MYSQL_PASSWORD --secret PG_PASSWORD --wait
	RUN=$(head -n1 "$T/ctl.out")
	RUNS+=("$RUN")
	[ "$RC" = "$2" ] || fail "run of $1 exited $RC, expected $2: $(show_json "$RUN" | head -c 1500)"
}

# 1. types -> CSV
d=$T/types
pipeline "$d" types "ex:mysql.extractor:" "out:filesystem.csv_writer:ex"
cp "$T/conns.yaml" "$d/osiris_connections.yaml"
step_cfg "$d" ex '{"component":"mysql.extractor","connection":"@mysql.db_movies","query":"SELECT * FROM types ORDER BY id"}'
step_cfg "$d" out '{"component":"filesystem.csv_writer","path":"output/types.csv"}'
run_it "$d" 0
ctl artifacts "$RUN" --get output/types.csv -o "$T/types.csv" || fail "no output/types.csv"
note "types.csv: $(cat "$T/types.csv")"
exp='id,dec_v,dt,d,tm,s,bl,bn,e,ub,flag,f
1,12345678901234567890.0123456789,2024-02-29 13:14:15.123456,2024-02-29,838:59:59,"",\x00ff10,\x61626364,😀 ok,18446744073709551615,1,1.5
2,,,,,,,,,,,
3,-0.0000000001,1000-01-01 00:00:00.000000,9999-12-31,-12:00:00,"a,""b""",\x,\x00000000,ünï,0,0,-2.25'
assert_eq "$(cat "$T/types.csv")" "$exp" "types.csv"

# 2. the seed's shape: MySQL -> SQL -> PostgreSQL (replace) + CSV, 100k rows in
d=$T/seed
pipeline "$d" seed "extract-movies:mysql.extractor:" "compute-director-stats:duckdb.processor:extract-movies" \
	"write-director-stats:supabase.writer:compute-director-stats" "write-csv:filesystem.csv_writer:compute-director-stats"
cp "$T/conns.yaml" "$d/osiris_connections.yaml"
step_cfg "$d" extract-movies '{"batch_size":10000,"component":"mysql.extractor","connection":"@mysql.db_movies","echo":false,"host":"localhost","mode":"extract","offset":0,"pool_recycle":3600,"pool_size":5,"port":3306,"query":"SELECT movie_id, title, director_id, budget_usd, box_office_usd FROM movies","schema":null}'
step_cfg "$d" compute-director-stats '{"component":"duckdb.processor","mode":"transform","query":"SELECT director_id, COUNT(*) AS movie_count, SUM(box_office_usd) AS total_box_office_usd FROM df_extract_movies GROUP BY director_id ORDER BY director_id"}'
step_cfg "$d" write-director-stats '{"batch_size":100,"component":"supabase.writer","connection":"@supabase.main","create_if_missing":true,"ddl_channel":"auto","mode":"write","prefer":"return=minimal","primary_key":["director_id"],"retries":3,"returning":"minimal","schema":"public","table":"director_stats","timeout":30,"write_mode":"replace"}'
step_cfg "$d" write-csv '{"chunk_size":1000,"component":"filesystem.csv_writer","create_dirs":true,"delimiter":",","encoding":"utf-8","header":true,"mode":"write","newline":"lf","path":"output/director_stats.csv","quoting":"minimal"}'
run_it "$d" 0
assert_eq "$(step_field "$RUN" extract-movies rows_out)" 100000 "rows read from mysql"
assert_eq "$(psql_q 'SELECT count(*), sum(movie_count) FROM director_stats')" "50|100000" "director_stats in postgres"
want=$(my_q "SELECT SUM(box_office_usd) FROM osiris.movies WHERE director_id = 7")
got=$(psql_q 'SELECT total_box_office_usd FROM director_stats WHERE director_id = 7')
note "director 7: mysql $want, postgres $got"
ctl artifacts "$RUN" --get output/director_stats.csv -o "$T/ds.csv" || fail "no director_stats.csv"
assert_eq "$(wc -l <"$T/ds.csv")" 51 "director_stats.csv lines"
run_it "$d" 0
assert_eq "$(psql_q 'SELECT count(*), sum(movie_count) FROM director_stats')" "50|100000" "director_stats after a second run"

# 3. mysql.writer: every mode twice in a row; a failing write changes nothing
d=$T/modes
pipeline "$d" modes "ex:filesystem.csv_extractor:" "w:mysql.writer:ex"
cp "$T/conns.yaml" "$d/osiris_connections.yaml"
mkdir -p "$d/data"
cat >"$d/data/in.csv" <<'CSV'
id,name,amount,ok
1,a,1.5,true
2,b,2.5,false
3,"c\ 'x' 😀",,true
CSV
step_cfg "$d" ex '{"component":"filesystem.csv_extractor","path":"data/in.csv"}'
mode_run() { # MODE TABLE [EXPECTED_RC]
	step_cfg "$d" w "{\"component\":\"mysql.writer\",\"connection\":\"@mysql.db_movies\",\"table\":\"$2\",\"write_mode\":\"$1\",\"primary_key\":[\"id\"]}"
	run_it "$d" "${3:-0}"
}
rows() { my_q_raw "SELECT GROUP_CONCAT(CONCAT_WS('|', id, IFNULL(name, 'NULL'), IFNULL(amount, 'NULL'), IFNULL(ok, 'NULL')) ORDER BY id SEPARATOR ';') FROM osiris.$1"; }
my_q "CREATE TABLE osiris.w_app (id BIGINT, name TEXT, amount DOUBLE, ok BOOLEAN)"
mode_run append w_app
mode_run append w_app
assert_eq "$(my_q 'SELECT COUNT(*) FROM osiris.w_app')" 6 "append twice: rows"
mode_run upsert w_ups
mode_run upsert w_ups
want="1|a|1.5|1;2|b|2.5|0;3|c\\ 'x' 😀|NULL|1"
assert_eq "$(rows w_ups)" "$want" "upsert twice (table created, then the same)"
my_q "CREATE TABLE osiris.w_rep (id BIGINT PRIMARY KEY, name TEXT, amount DOUBLE, ok BOOLEAN); INSERT INTO osiris.w_rep VALUES (2, 'old', 0, 0), (9, 'gone', 9, 1)"
mode_run replace w_rep
mode_run replace w_rep
assert_eq "$(rows w_rep)" "$want" "replace twice"
my_q "DELETE FROM osiris.w_rep WHERE id = 3; INSERT INTO osiris.w_rep VALUES (0, 'zero', 0, 0); ALTER TABLE osiris.w_rep ADD CONSTRAINT small CHECK (id < 3)"
before=$(rows w_rep)
mode_run replace w_rep 1
assert_contains "$(step_field "$RUN" w error)" "small" "failed write's error (the server's message)"
assert_eq "$(rows w_rep)" "$before" "w_rep after a failed replace"

# 4. errors
d=$T/err
pipeline "$d" err "ex:mysql.extractor:"
cp "$T/conns.yaml" "$d/osiris_connections.yaml"
step_cfg "$d" ex '{"component":"mysql.extractor","connection":"@mysql.wrongpw","query":"SELECT 1"}'
run_it "$d" 1
err=$(step_field "$RUN" ex error)
assert_contains "$err" "Access denied for user 'osiris'" "bad credentials"
step_cfg "$d" ex '{"component":"mysql.extractor","connection":"@mysql.db_movies","query":"SELECT nope FROM movies"}'
run_it "$d" 1
err=$(step_field "$RUN" ex error)
assert_contains "$err" "Unknown column 'nope'" "query error"
"$PY" -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(0)
open(sys.argv[1], "w").write(str(s.getsockname()[1])); time.sleep(120)' "$T/bh.port" &
BG_PIDS+=($!)
wait_for 5 test -s "$T/bh.port"
step_cfg "$d" ex "{\"component\":\"mysql.extractor\",\"host\":\"127.0.0.1\",\"port\":$(cat "$T/bh.port"),\"user\":\"x\",\"password\":\"\${MYSQL_PASSWORD}\",\"timeout\":2,\"query\":\"SELECT 1\"}"
t0=$(date +%s)
run_it "$d" 1
dt=$(($(date +%s) - t0))
err=$(step_field "$RUN" ex error)
note "blackhole: ${dt}s: $err"
[ "$dt" -le 10 ] || fail "unreachable host took ${dt}s (timeout 2)"
assert_contains "$err" "127.0.0.1:$(cat "$T/bh.port")" "unreachable host error names the host"

for r in "${RUNS[@]}"; do
	show_json "$r" >>"$T/show.json"
	ctl --json logs "$r" >>"$T/logs.jsonl"
	ctl artifacts "$r" --export "$T/export-$r" >/dev/null 2>&1 || true
done
stop_daemon
for p in "$PW" "$PGPW"; do
	hits=$(grep -r -a -l -F -- "$p" "$STATE" "$DLOG" "$T/show.json" "$T/logs.jsonl" "$T"/export-* 2>/dev/null)
	[ -z "$hits" ] || fail "a database password appears in: $hits"
done
note "passwords absent from state, log, show, logs, exports"

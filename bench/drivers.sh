#!/bin/sh
# drivers.sh: `make bench`, the database and GraphQL drivers against the
# Python way of doing the same job (bench/drivers_py.py: pandas.read_sql
# over SQLAlchemy + PyMySQL / psycopg2, psycopg2 execute_values, Osiris'
# per-row dict insert, a urllib cursor loop + json_normalize), on the same
# data from the same servers: a private MariaDB and PostgreSQL (started as
# tests/regress/db.sh starts them) and the npm graphql test server. Ours is
# the step's duration_ms (the driver's work in the worker), theirs the work
# inside Python (interpreter start and imports excluded). Every figure:
# median and p99 (nearest rank: with few repetitions, the worst) and rows/s.
# A section whose server or Python modules are missing is skipped with a
# line saying so. Sizes: DRIVERS_ROWS (default 1000000 rows x 6 columns),
# DRIVERS_REPS (5), DRIVERS_GQL_ITEMS (100000, pages of 1000),
# DRIVERS_ROWDICT_ROWS (20000: the per-row insert is too slow for all),
# DRIVERS_PY=0 skips the Python baselines.
# Memory: the worker's peak RSS (VmHWM of the run's process) while a 1M-row
# extract runs, beside the bytes its table holds (the extractor's debug
# log), against the goal of at most twice that.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u

. "$(dirname "$0")/lib.sh"
unset E2B_API_KEY E2B_API_URL E2B_SANDBOX_URL E2B_DOMAIN
ROWS=${DRIVERS_ROWS:-1000000}
REPS=${DRIVERS_REPS:-5}
GQL_ITEMS=${DRIVERS_GQL_ITEMS:-100000}
ROWDICT_ROWS=${DRIVERS_ROWDICT_ROWS:-20000}
[ -x "$BIN/osiris-worker" ] || die "$BIN/osiris-worker: missing (make builds it)"

W=$(mktemp -d "${BENCH_TMPDIR:-/var/tmp}/osiris-bench-drivers.XXXXXX") || die "mktemp"
# What tests/regress/db.sh expects of its case's lib.sh.
T=$W
CLEANUP_CMDS=()
BG_PIDS=()
fail() { die "$*"; }
wait_for() {
	local n=$(($1 * 10))
	shift
	while ! "$@" >/dev/null 2>&1; do
		n=$((n - 1))
		[ "$n" -gt 0 ] || return 1
		sleep 0.1
	done
}
cleanup() {
	local c p
	[ -n "$DPID" ] && stop
	for p in "${BG_PIDS[@]}"; do
		kill "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	for c in "${CLEANUP_CMDS[@]}"; do $c; done
	rm -rf "$W"
}
trap cleanup EXIT
. "$SRC/tests/regress/db.sh"

echo "== drivers: $ROWS rows x 6 columns, $REPS repetitions each (median, p99) =="
have_py() { "$PY" -c "import $1" 2>/dev/null; }
PYOK=${DRIVERS_PY:-1}
[ "$PYOK" = 1 ] || echo "drivers: DRIVERS_PY=$PYOK: Python baselines skipped"
[ "$PYOK" = 1 ] && for m in pandas sqlalchemy pymysql psycopg2; do
	have_py "$m" || { PYOK=0 && echo "drivers: python3 module $m missing (sh tests/deps.sh bench installs it): Python baselines skipped"; }
done

# stats FILE: "p50_us p99_us n" of the microsecond figures in FILE (one a line)
stats() {
	sort -n "$1" | awk '{ a[NR] = $1 } END { if (NR == 0) { print "0 0 0"; exit }
		p = int(NR * 0.99); if (p < NR * 0.99) p++; print a[int((NR + 1) / 2)], a[p], NR }'
}
# figure LABEL FILE ROWS: "p50 X s p99 Y s (Z rows/s, n=N)"
figure() {
	local s
	s=$(stats "$2")
	awk -v s="$s" -v rows="$3" 'BEGIN { split(s, a, " "); if (a[3] == 0) { printf "no figures"; exit }
		printf "p50 %.2f s p99 %.2f s (%.0f rows/s, n=%d)", a[1] / 1e6, a[2] / 1e6, rows / (a[1] / 1e6), a[3] }'
}
ratio() { # OURS THEIRS: how many times faster ours is at the median
	awk -v a="$(stats "$1")" -v b="$(stats "$2")" 'BEGIN { split(a, x, " "); split(b, y, " ");
		if (x[1] > 0 && y[1] > 0) printf "%.1fx", y[1] / x[1]; else printf "n/a" }'
}
# py_times OUTFILE ARGS...: run drivers_py.py, its times one a line in OUTFILE
py_times() {
	local out=$1
	shift
	: >"$out"
	"$PY" "$SRC/bench/drivers_py.py" "$@" >"$out.raw" 2>"$out.err" ||
		{ echo "drivers: python baseline $1 failed: $(tail -n 2 "$out.err")" >&2 && return 1; }
	awk '$1 == "times_us" { for (i = 2; i <= NF; i++) print $i }' "$out.raw" >"$out"
}
# our_times OUTFILE DIR STEP [BEFORE_CMD]: REPS runs of DIR, STEP's duration_ms in us
our_times() {
	local out=$1 dir=$2 step=$3 before=${4:-} i run
	: >"$out"
	for ((i = 0; i < REPS; i++)); do
		[ -n "$before" ] && $before
		run=$(MY_PW=$MY_PASSWORD PG_PW=$PG_PASSWORD ctl submit "$dir" --secret MY_PW --secret PG_PW --wait 2>"$W/submit.err" | head -n1)
		ctl --json show "$run" | "$PY" -c 'import json, sys
d = json.load(sys.stdin); s = [s for s in d["steps"] if s["id"] == sys.argv[1]][0]
if s["state"] != "succeeded": sys.exit("step %s: %s" % (sys.argv[1], s.get("error")))
print(int(s["duration_ms"]) * 1000)' "$step" >>"$out" || die "our run $run of $dir failed: $(cat "$W/submit.err")"
	done
}
# worker_peak DRIVER CFG_JSON LABEL: a run of DRIVER with CFG_JSON, then an
# osiris.noop that holds the table (sleeping before its copy); once that
# step runs, the highest VmHWM of the daemon's osiris-worker processes (the
# run's own is forked from the warm worker) is the extraction's peak, table
# and type inference included. Printed beside the bytes the table holds
# (the extractor's debug line) with MET/MISSED for "<= 2x the table".
worker_peak() {
	local d=$W/peak label=$3 i p h hwm=0 run st bytes
	rm -rf "$d"
	one_step "$d" ex "$1" "$2" hold osiris.noop '{"component":"osiris.noop","sleep_ms":600000}'
	run=$(MY_PW=$MY_PASSWORD PG_PW=$PG_PASSWORD ctl submit "$d" --secret MY_PW --secret PG_PW 2>"$W/peak.err" | head -n1)
	[ -n "$run" ] || die "the memory run of $1 was not accepted: $(cat "$W/peak.err")"
	for ((i = 0; i < 3000; i++)); do
		st=$(ctl --json show "$run" | "$PY" -c 'import json, sys
d = json.load(sys.stdin)
print([s["state"] for s in d["steps"] if s["id"] == "hold"][0], d["state"])')
		case $st in
		running*) break ;;
		*" "succeeded | *" "failed | *" "cancelled) die "the memory run $run of $1 ended: $st" ;;
		esac
		sleep 0.2
	done
	case $st in running*) ;; *) die "the memory run $run of $1: the holding step did not start ($st)" ;; esac
	sleep 0.5
	for p in $(descendants "$DPID"); do
		case $(readlink "/proc/$p/exe" 2>/dev/null) in
		*/osiris-worker)
			h=$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$p/status" 2>/dev/null)
			[ "${h:-0}" -gt "$hwm" ] && hwm=$h
			;;
		esac
	done
	ctl cancel "$run" >/dev/null 2>&1
	bytes=$(ctl --json logs "$run" | grep -o 'the table holds [0-9]* bytes' | awk '{ print $4; exit }')
	if [ -z "$bytes" ] || [ "$hwm" = 0 ]; then
		echo "$label: not measured (table size logged: ${bytes:-no}, VmHWM seen: $hwm kB)"
		return 0
	fi
	awk -v h="$hwm" -v b="$bytes" -v l="$label" 'BEGIN { r = h * 1024 / b;
		printf "%s: worker peak RSS (VmHWM) %.1f MiB, the table holds %.1f MiB: %.2fx (goal <= 2x: %s)\n",
			l, h / 1024, b / 1048576, r, r <= 2 ? "MET" : "MISSED" }'
}
one_step() { # DIR ID DRIVER CFG_JSON [ID2 DRIVER2 CFG2 (needs ID)]
	local d=$1
	mkdir -p "$d/cfg"
	printf 'pipeline:\n  id: bench\nsteps:\n  - id: %s\n    driver: %s\n    cfg_path: cfg/%s.json\n    needs: []\n' "$2" "$3" "$2" >"$d/manifest.yaml"
	printf '%s\n' "$4" >"$d/cfg/$2.json"
	if [ $# -gt 4 ]; then
		printf '  - id: %s\n    driver: %s\n    cfg_path: cfg/%s.json\n    needs: [%s]\n' "$5" "$6" "$5" "$2" >>"$d/manifest.yaml"
		printf '%s\n' "$7" >"$d/cfg/$5.json"
	fi
	cp "$W/conns.yaml" "$d/osiris_connections.yaml"
}

# ---- servers and data ------------------------------------------------------

MYOK=0 PGOK=0 GQOK=0
# An installed server that does not start ends the bench (fail = die).
if command -v mariadb-install-db >/dev/null 2>&1 && [ -x /usr/sbin/mariadbd ]; then
	start_mysql "mybench-$$-$RANDOM"
	MYOK=1
else
	echo "drivers: mariadb-server not installed: mysql section skipped"
	MY_PASSWORD=
fi
if pg_find; then
	start_pg "pgbench-$$-$RANDOM"
	PGOK=1
else
	echo "drivers: postgresql not installed: postgres section skipped"
	PG_PASSWORD=
fi
GQ=$SRC/tests/graphql
if command -v node >/dev/null 2>&1 && { [ -d "$GQ/node_modules/graphql" ] || sh "$GQ/install.sh" >/dev/null 2>&1; }; then
	GQ_TOKEN=gqbench-$$
	node "$GQ/server.mjs" --port-file "$W/gq.port" --items "$GQL_ITEMS" --token "$GQ_TOKEN" >"$W/gq.log" 2>&1 &
	BG_PIDS+=($!)
	wait_for 10 test -s "$W/gq.port" || die "graphql server did not start: $(tail -n 3 "$W/gq.log")"
	GQ_URL=http://127.0.0.1:$(cat "$W/gq.port")/graphql
	GQOK=1
else
	echo "drivers: node or the npm graphql module missing (tests/graphql/install.sh): graphql section skipped"
fi

COLS="id, name, amount, ts, flag, score"
if [ "$MYOK" = 1 ]; then
	my_q "USE osiris; CREATE TABLE bench (id BIGINT PRIMARY KEY, name VARCHAR(40), amount DECIMAL(12,2),
		ts DATETIME, flag BOOLEAN, score DOUBLE);
		INSERT INTO bench SELECT seq, CONCAT('name ', seq), seq * 0.01, '2024-01-01' + INTERVAL seq SECOND,
		seq % 2, seq / 7 FROM seq_1_to_$ROWS" || die "seeding mariadb"
fi
if [ "$PGOK" = 1 ]; then
	psql_q "CREATE TABLE bench (id bigint PRIMARY KEY, name text, amount numeric(12,2), ts timestamp,
		flag boolean, score double precision);
		INSERT INTO bench SELECT g, 'name ' || g, g * 0.01, '2024-01-01'::timestamp + g * interval '1 second',
		g % 2 = 0, g / 7.0 FROM generate_series(1, $ROWS) g;
		CREATE TABLE benchw (LIKE bench INCLUDING ALL); CREATE TABLE benchd (LIKE bench INCLUDING ALL)" >/dev/null ||
		die "seeding postgres"
fi
cat >"$W/conns.yaml" <<EOF2
connections:
  mysql:
    b:
      host: 127.0.0.1
      port: ${MY_PORT:-3306}
      database: osiris
      user: osiris
      password: \${MY_PW}
  postgres:
    b:
      host: 127.0.0.1
      port: ${PG_PORT:-5432}
      database: postgres
      user: $PG_USER
      password: \${PG_PW}
EOF2
start drivers -o local.pool_size=1

# ---- the figures -------------------------------------------------------------

line() { # LABEL OURS_FILE ROWS [BASELINE_LABEL THEIRS_FILE THEIR_ROWS]
	local l
	l="$1: $(figure "$1" "$2" "$3")"
	if [ $# -gt 3 ] && [ -s "$5" ]; then
		l="$l | $4 $(figure "$4" "$5" "$6")"
		[ "$3" = "$6" ] && l="$l: speed-up $(ratio "$2" "$5") (their median / ours)"
	elif [ $# -gt 3 ]; then
		l="$l | $4: baseline unavailable"
	fi
	echo "$l"
}
rowrate_ratio() { # OURS ROWS THEIRS THEIR_ROWS: rows/s ratio at the medians
	awk -v a="$(stats "$1")" -v r="$2" -v b="$(stats "$3")" -v q="$4" 'BEGIN { split(a, x, " "); split(b, y, " ");
		if (x[1] > 0 && y[1] > 0) printf "%.1fx", (r / x[1]) / (q / y[1]); else printf "n/a" }'
}

if [ "$MYOK" = 1 ]; then
	one_step "$W/myx" ex mysql.extractor '{"component":"mysql.extractor","connection":"@mysql.b","query":"SELECT * FROM bench"}'
	our_times "$W/myx.ours" "$W/myx" ex
	[ "$PYOK" = 1 ] && DRIVERS_PY_SECRET=$MY_PASSWORD py_times "$W/myx.py" mysql-read "$REPS" 127.0.0.1 "$MY_PORT" osiris - osiris "SELECT * FROM bench"
	line "mysql.extractor -> table ($ROWS rows)" "$W/myx.ours" "$ROWS" \
		"pandas.read_sql over SQLAlchemy+PyMySQL" "$W/myx.py" "$ROWS"
	worker_peak mysql.extractor '{"component":"mysql.extractor","connection":"@mysql.b","query":"SELECT * FROM bench"}' \
		"mysql.extractor memory ($ROWS rows)"
fi
if [ "$PGOK" = 1 ]; then
	one_step "$W/pgx" ex postgres.extractor '{"component":"postgres.extractor","connection":"@postgres.b","query":"SELECT * FROM bench"}'
	our_times "$W/pgx.ours" "$W/pgx" ex
	[ "$PYOK" = 1 ] && DRIVERS_PY_SECRET=$PG_PASSWORD py_times "$W/pgx.py" pg-read "$REPS" 127.0.0.1 "$PG_PORT" "$PG_USER" - postgres "SELECT * FROM bench"
	line "postgres.extractor -> table ($ROWS rows)" "$W/pgx.ours" "$ROWS" \
		"pandas.read_sql over SQLAlchemy+psycopg2" "$W/pgx.py" "$ROWS"
	worker_peak postgres.extractor '{"component":"postgres.extractor","connection":"@postgres.b","query":"SELECT * FROM bench"}' \
		"postgres.extractor memory ($ROWS rows)"

	# the writer's input comes from the extractor (a 1M-row CSV is over
	# osirisctl's context limit); only the writer step is timed
	one_step "$W/pgw" ex postgres.extractor '{"component":"postgres.extractor","connection":"@postgres.b","query":"SELECT * FROM bench"}' \
		w postgres.writer '{"component":"postgres.writer","connection":"@postgres.b","table":"benchw","write_mode":"upsert","primary_key":["id"]}'
	trunc_w() { psql_q "TRUNCATE benchw" >/dev/null; }
	our_times "$W/pgw.ours" "$W/pgw" w trunc_w
	assert_rows=$(psql_q "SELECT count(*) FROM benchw")
	[ "$assert_rows" = "$ROWS" ] || die "postgres.writer left $assert_rows rows, expected $ROWS"
	[ "$PYOK" = 1 ] && DRIVERS_PY_SECRET=$PG_PASSWORD py_times "$W/pgw.py" pg-upsert "$REPS" 127.0.0.1 "$PG_PORT" "$PG_USER" - postgres bench benchd
	line "table -> postgres.writer upsert into an empty table ($ROWS rows)" "$W/pgw.ours" "$ROWS" \
		"psycopg2 execute_values ON CONFLICT (page 1000)" "$W/pgw.py" "$ROWS"
	if [ "$PYOK" = 1 ] && DRIVERS_PY_SECRET=$PG_PASSWORD py_times "$W/pgd.py" pg-rowdict "$REPS" 127.0.0.1 "$PG_PORT" "$PG_USER" - postgres bench benchd "$ROWDICT_ROWS"; then
		echo "  Osiris-style per-row dict insert ($ROWDICT_ROWS rows): $(figure x "$W/pgd.py" "$ROWDICT_ROWS"): postgres.writer $(rowrate_ratio "$W/pgw.ours" "$ROWS" "$W/pgd.py" "$ROWDICT_ROWS") its rows/s"
	fi
fi
if [ "$GQOK" = 1 ]; then
	printf 'connections:\n  graphql:\n    api:\n      endpoint: %s\n      auth_token: ${GQ_TOKEN}\n' "$GQ_URL" >"$W/gq.conns"
	Q='query($first: Int, $after: String) { items(first: $first, after: $after) { edges { cursor node { id name price qty active tags meta { color size } } } pageInfo { hasNextPage endCursor } } }'
	one_step "$W/gqx" ex graphql.extractor "{\"component\":\"graphql.extractor\",\"connection\":\"@graphql.api\",\"query\":\"$Q\",\"variables\":{\"first\":1000},\"auth_type\":\"bearer\",\"pagination_enabled\":true,\"pagination_path\":\"data.items.pageInfo\",\"data_path\":\"data.items.edges\",\"max_pages\":100000}"
	cp "$W/gq.conns" "$W/gqx/osiris_connections.yaml"
	export GQ_TOKEN
	: >"$W/gqx.ours"
	for ((i = 0; i < REPS; i++)); do
		run=$(ctl submit "$W/gqx" --secret GQ_TOKEN --wait 2>"$W/submit.err" | head -n1)
		ctl --json show "$run" | "$PY" -c 'import json, sys
s = json.load(sys.stdin)["steps"][0]
if s["state"] != "succeeded": sys.exit("graphql step: %s" % s.get("error"))
print(int(s["duration_ms"]) * 1000)' >>"$W/gqx.ours" || die "our graphql run $run failed"
	done
	[ "$PYOK" = 1 ] && DRIVERS_PY_SECRET=$GQ_TOKEN py_times "$W/gqx.py" gql "$REPS" "$GQ_URL" - 1000
	line "graphql.extractor, Relay pages of 1000 ($GQL_ITEMS items; the node server's time included)" "$W/gqx.ours" "$GQL_ITEMS" \
		"urllib cursor loop + pandas.json_normalize" "$W/gqx.py" "$GQL_ITEMS"
fi

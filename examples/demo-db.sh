#!/bin/sh
# demo-db.sh: `make demo-db`. Starts a MariaDB and a PostgreSQL on private
# data dirs and loopback ports (tests/regress/db.sh), loads 100k movies into
# MariaDB, runs examples/mysql-duckdb-supabase (the Osiris seed's shape:
# MySQL -> SQL -> Supabase/PostgreSQL + CSV) through a private osirisd with
# the passwords as --secret, shows the result, then stops everything.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
SRC=$(cd "$(dirname "$0")/.." && pwd)
export SRC BIN=${BIN:-$SRC/build/bin}
T=$(mktemp -d "${TMPDIR:-/tmp}/osiris-demo-db.XXXXXX") || exit 1
export T
# shellcheck source=../tests/regress/lib.sh
. "$SRC/tests/regress/lib.sh"
# shellcheck source=../tests/regress/db.sh
. "$SRC/tests/regress/db.sh"
# lib_cleanup stops what was started (servers, daemon) and exits: run it in
# a subshell, then remove the temp dir.
demo_cleanup() {
	local rc=$?
	trap - EXIT
	(exit $rc) || true
	(lib_cleanup)
	rm -rf "$T"
	exit $rc
}
trap demo_cleanup EXIT

MYPW=demo-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
PGPW=demo-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
echo "demo-db: starting MariaDB and PostgreSQL under $T"
start_mysql "$MYPW"
start_pg "$PGPW"
my_q "USE osiris; CREATE TABLE movies (movie_id INT PRIMARY KEY, title VARCHAR(100), director_id INT,
	budget_usd DECIMAL(15,2), box_office_usd DECIMAL(15,2));
	INSERT INTO movies SELECT seq, CONCAT('movie ', seq), seq % 50, seq * 1000.5, seq * 2500.25 FROM seq_1_to_100000;" ||
	fail "loading movies"
echo "demo-db: MariaDB 127.0.0.1:$MY_PORT (100000 movies), PostgreSQL 127.0.0.1:$PG_PORT"
start_daemon
MYSQL_PASSWORD=$MYPW PG_PASSWORD=$PGPW "$BIN/osirisctl" -S "$SOCK" submit "$SRC/examples/mysql-duckdb-supabase" -f \
	-e MYSQL_HOST=127.0.0.1 -e MYSQL_PORT="$MY_PORT" -e PG_HOST=127.0.0.1 -e PG_PORT="$PG_PORT" \
	--secret MYSQL_PASSWORD --secret PG_PASSWORD >"$T/submit.out" 2>&1
rc=$?
cat "$T/submit.out"
[ $rc = 0 ] || fail "the run failed (exit $rc)"
echo "demo-db: director_stats in PostgreSQL (first 5 of $(psql_q 'SELECT count(*) FROM director_stats')):"
psql_q "SELECT director_id, movie_count, total_box_office_usd FROM director_stats ORDER BY director_id LIMIT 5"
stop_daemon
echo "demo-db: done; servers stopped"

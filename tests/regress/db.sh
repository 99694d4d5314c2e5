# db.sh: real database servers for the driver cases (sourced after lib.sh).
# Each server runs on a private data dir under $T, on a free loopback port
# and a socket in $T, as an unprivileged user when the case runs as root,
# and is stopped by lib_cleanup whatever happens.

# free_port: a TCP port on 127.0.0.1 nothing listens on now.
free_port() {
	"$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# as_db_user USER CMD...: run CMD as USER when root, else as ourselves.
as_db_user() {
	local u=$1
	shift
	if [ "$(id -u)" = 0 ]; then
		runuser -u "$u" -- "$@"
	else
		"$@"
	fi
}

# ---- PostgreSQL --------------------------------------------------------

PG_BIN=
PG_PORT=
PG_USER=osiris
PG_PASSWORD=
pg_find() {
	PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
	[ -n "$PG_BIN" ] && [ -x "$PG_BIN/initdb" ]
}
# start_pg PASSWORD: initdb + start with scram auth for user osiris.
start_pg() {
	PG_PASSWORD=$1
	pg_find || fail "PostgreSQL server binaries not found (make deps installs postgresql)"
	PGD=$T/pg
	mkdir -p "$PGD"
	printf '%s\n' "$PG_PASSWORD" >"$PGD/pw"
	if [ "$(id -u)" = 0 ]; then
		chmod 711 "$T"
		chown -R postgres: "$PGD"
	fi
	as_db_user postgres "$PG_BIN/initdb" -D "$PGD/data" -U "$PG_USER" --pwfile="$PGD/pw" \
		--auth=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$PGD/initdb.log" 2>&1 ||
		fail "initdb: $(tail -3 "$PGD/initdb.log")"
	rm -f "$PGD/pw"
	PG_PORT=$(free_port)
	CLEANUP_CMDS+=("stop_pg")
	as_db_user postgres "$PG_BIN/pg_ctl" -D "$PGD/data" -l "$PGD/log" -w -t 30 start \
		-o "-p $PG_PORT -k $PGD -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
		>/dev/null 2>&1 || fail "postgres did not start: $(tail -3 "$PGD/log")"
}
stop_pg() {
	[ -n "$PG_PORT" ] || return 0
	as_db_user postgres "$PG_BIN/pg_ctl" -D "$T/pg/data" -m immediate -w -t 20 stop >/dev/null 2>&1
	PG_PORT=
}
# psql_q SQL: run SQL, print unaligned tuples-only output. (PG* variables
# are never exported: the daemon's workers must not find a password there.)
psql_q() {
	PGPASSWORD=$PG_PASSWORD "$PG_BIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 \
		"host=127.0.0.1 port=$PG_PORT user=$PG_USER dbname=postgres" -c "$1"
}

# pg_seed_types: the type matrix table `types` (every mapped type, NULLs,
# extremes, emoji, bytea) that t_db_postgres and t_e2b_postgres read.
pg_seed_types() {
	psql_q "CREATE TABLE types (id int PRIMARY KEY, big bigint, dec numeric(24,6), f float8, b boolean, t text,
		d date, ts timestamp, tm time, bin bytea);
	INSERT INTO types VALUES
	(1, 9223372036854775807, 123456789012345678.123456, 1.5, true, 'plain', '2024-02-29', '2024-02-29 13:14:15.123456', '23:59:59', '\\x00ff'),
	(2, -9223372036854775808, 0.000001, -0.25, false, '', '1970-01-01', '1970-01-01 00:00:00', '00:00:00', '\\x'),
	(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
	(4, 0, -1.500000, 1e300, true, 'emoji 😀 \"q\", tab	x', '9999-12-31', '2000-01-01 00:00:00', '12:00:00', '\\xdeadbeef');" >/dev/null || fail "seeding postgres"
}
# pg_conns ALIAS: the `postgres` and `supabase` families of an
# osiris_connections.yaml: ALIAS (user osiris, password ${PG_PASSWORD}),
# wrongpw (a wrong password), and supabase `main` (a pg_dsn to this server).
pg_conns() {
	cat <<EOF
  postgres:
    $1:
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
EOF
}

# ---- MariaDB -----------------------------------------------------------

MY_PORT=
MY_PID=
MY_PASSWORD=
# start_mysql PASSWORD: a private datadir, root by socket without a
# password, user osiris@'%' with PASSWORD, database osiris.
start_mysql() {
	MY_PASSWORD=$1
	command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] ||
		fail "mariadbd not found (make deps installs mariadb-server)"
	MYD=$T/my
	mkdir -p "$MYD/data"
	local u
	u=$(id -un)
	if [ "$(id -u)" = 0 ]; then
		chmod 711 "$T"
		chown -R mysql: "$MYD"
		u=mysql
	fi
	mariadb-install-db --no-defaults --datadir="$MYD/data" --user="$u" --auth-root-authentication-method=normal \
		--skip-test-db >"$MYD/install.log" 2>&1 || fail "mariadb-install-db: $(tail -3 "$MYD/install.log")"
	MY_PORT=$(free_port)
	/usr/sbin/mariadbd --no-defaults --datadir="$MYD/data" --socket="$MYD/sock" --port="$MY_PORT" \
		--bind-address=127.0.0.1 --user="$u" --pid-file="$MYD/pid" --log-error="$MYD/err.log" \
		--skip-log-bin --innodb-buffer-pool-size=64M --innodb-flush-log-at-trx-commit=0 --skip-name-resolve \
		>"$MYD/out.log" 2>&1 &
	MY_PID=$!
	CLEANUP_CMDS+=("stop_mysql")
	wait_for 30 mariadb --no-defaults -uroot --socket="$MYD/sock" -e 'SELECT 1' ||
		fail "mariadbd did not start: $(tail -3 "$MYD/err.log")"
	my_q "CREATE USER osiris@'%' IDENTIFIED BY '$MY_PASSWORD'; GRANT ALL ON *.* TO osiris@'%';
		CREATE DATABASE osiris CHARACTER SET utf8mb4;" || fail "mariadb: creating the test user"
}
stop_mysql() {
	[ -n "$MY_PID" ] || return 0
	kill -TERM "$MY_PID" 2>/dev/null
	wait_for 20 sh -c "! kill -0 $MY_PID" || kill -9 "$MY_PID" 2>/dev/null
	wait "$MY_PID" 2>/dev/null
	MY_PID=
}
# my_seed ROWS: database osiris gets `types` (three rows: one of each
# awkward value, one all NULL) and `movies` (ROWS rows, director_id = id % 50).
my_seed() {
	my_q "USE osiris;
CREATE TABLE types (id INT PRIMARY KEY, dec_v DECIMAL(30,10), dt DATETIME(6), d DATE, tm TIME, s VARCHAR(50),
	bl BLOB, bn BINARY(4), e VARCHAR(20) CHARACTER SET utf8mb4, ub BIGINT UNSIGNED, flag TINYINT(1), f DOUBLE);
INSERT INTO types VALUES
	(1, 12345678901234567890.0123456789, '2024-02-29 13:14:15.123456', '2024-02-29', '838:59:59', '', x'00ff10', x'61626364', '😀 ok', 18446744073709551615, 1, 1.5),
	(2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
	(3, -0.0000000001, '1000-01-01 00:00:00', '9999-12-31', '-12:00:00', 'a,\"b\"', '', x'00000000', 'ünï', 0, 0, -2.25);
CREATE TABLE movies (movie_id INT PRIMARY KEY, title VARCHAR(100), director_id INT, budget_usd DECIMAL(15,2), box_office_usd DECIMAL(15,2));
INSERT INTO movies SELECT seq, CONCAT('movie ', seq), seq % 50, seq * 1000.5, seq * 2500.25 FROM seq_1_to_$1;" ||
		fail "seeding mariadb"
}
# my_conns ALIAS: the `mysql` family of an osiris_connections.yaml: ALIAS
# (user osiris, password ${MYSQL_PASSWORD}) and wrongpw (a wrong password).
my_conns() {
	cat <<EOF
  mysql:
    $1:
      host: 127.0.0.1
      port: $MY_PORT
      database: osiris
      username: osiris
      password: \${MYSQL_PASSWORD}
    wrongpw:
      host: 127.0.0.1
      port: $MY_PORT
      database: osiris
      user: osiris
      password: not-the-password
EOF
}
# my_q SQL: as root over the socket, tab-separated, no headers.
my_q() { mariadb --no-defaults -uroot --socket="$T/my/sock" -N -B --default-character-set=utf8mb4 -e "$1"; }
# my_q_raw SQL: the same without escaping (a backslash stays one)
my_q_raw() { mariadb --no-defaults -uroot --socket="$T/my/sock" -N -B -r --default-character-set=utf8mb4 -e "$1"; }

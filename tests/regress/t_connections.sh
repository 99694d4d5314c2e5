# t_connections: `connection: "@family.alias"` resolves from the context's
# osiris_connections.yaml, then daemon.connections_file; ${VAR} from the
# run's secrets, its env, then $CREDENTIALS_DIRECTORY. Resolved secret
# fields reach the step (cleaned_config.json shows the rest) and are masked
# everywhere; an unknown alias or an unset variable fails that step with a
# line naming it. A connections file readable by others stops the start.
. "$(dirname "$0")/lib.sh"

CANARY=$(canary ctx)
DCANARY=$(canary dfile)
CCANARY=$(canary cred)

# the daemon's file: a literal password, a ${VAR} from a credential, a bad var
cat >"$T/conns.yaml" <<EOF
connections:
  mysql:
    prod:
      host: db.internal
      port: 3306
      user: app
      password: $DCANARY
      default: true
    cred:
      host: cred.internal
      password: \${DB_CRED}
    broken:
      host: b.internal
      password: \${NOT_SET_ANYWHERE}
EOF
chmod 0644 "$T/conns.yaml"
"$BIN/osirisd" -S "$SOCK" -D "$STATE" -f /dev/null -o daemon.connections_file="$T/conns.yaml" >"$T/start.out" 2>&1 &
p=$!
wait_for 10 sh -c "! kill -0 $p" || { kill -9 $p; fail "osirisd started with a world-readable connections file"; }
wait $p
assert_eq "$?" 1 "osirisd exit status with a world-readable connections file"
assert_contains "$(cat "$T/start.out")" "readable or writable by others" "start error"
assert_not_contains "$(cat "$T/start.out")" "$DCANARY" "start error"
chmod 0600 "$T/conns.yaml"

mkdir -p "$T/creds"
printf '%s\n' "$CCANARY" >"$T/creds/DB_CRED"
CREDENTIALS_DIRECTORY=$T/creds start_daemon -v -v -o daemon.connections_file="$T/conns.yaml"

d=$T/p
pipeline "$d" conns "a:osiris.noop:" "b:osiris.noop:" "c:osiris.noop:" "e:osiris.noop:"
cat >"$d/osiris_connections.yaml" <<'EOF'
connections:
  supabase:
    main:
      url: https://abcdefgh.supabase.co
      service_role_key: ${SB_KEY}
      user: ${SB_USER}
EOF
step_cfg "$d" a '{"component":"osiris.noop","connection":"@supabase.main"}'
step_cfg "$d" b '{"component":"osiris.noop","connection":"@mysql.prod"}'
step_cfg "$d" c '{"component":"osiris.noop","connection":"@mysql.cred"}'
step_cfg "$d" e '{"component":"osiris.noop","connection":"@mysql"}'
ctlc submit "$d" --secret "SB_KEY=$CANARY" -e SB_USER=plainuser --wait
RUN=$(head -n1 "$T/ctl.out")
assert_rc 0 "the run using four resolved connections ($(show_json "$RUN" | head -c 600))"
get() { ctl artifacts "$RUN" --get "artifacts/$1/cleaned_config.json" -o "$T/$1.json" && cat "$T/$1.json"; }
a=$(get a)
note "a: $(printf %s "$a" | tr -d '\n ')"
assert_contains "$a" '"url": "https://abcdefgh.supabase.co"' "context connection (url)"
assert_contains "$a" '"user": "plainuser"' "context connection (\${SB_USER} from env)"
assert_contains "$a" '"service_role_key": "***"' "context connection (secret masked)"
b=$(get b)
assert_contains "$b" '"host": "db.internal"' "daemon connection (host)"
assert_contains "$b" '"port": 3306' "daemon connection (port)"
assert_contains "$b" '"password": "***"' "daemon connection (literal password masked)"
assert_not_contains "$b" '"default"' "daemon connection (default flag dropped)"
c=$(get c)
assert_contains "$c" '"host": "cred.internal"' "credential connection (host)"
assert_contains "$c" '"password": "***"' "credential connection (password from the credentials dir, masked)"
e=$(get e)
assert_contains "$e" '"host": "db.internal"' "@mysql picks the alias with default: true"

# errors: unknown alias, unset variable, malformed reference: one line naming it
d2=$T/p2
pipeline "$d2" connerr "x:osiris.noop:"
step_cfg "$d2" x '{"component":"osiris.noop","connection":"@mysql.nope"}'
ctlc submit "$d2" --wait
RUN2=$(head -n1 "$T/ctl.out")
assert_rc 1 "unknown alias"
err=$(step_field "$RUN2" x error)
assert_contains "$err" "no alias 'nope' in family 'mysql'" "unknown alias error"
step_cfg "$d2" x '{"component":"osiris.noop","connection":"@pg"}'
ctlc submit "$d2" --wait
err=$(step_field "$(head -n1 "$T/ctl.out")" x error)
assert_contains "$err" "family 'pg' has no default alias" "no default alias error"
step_cfg "$d2" x '{"component":"osiris.noop","connection":"@mysql.broken"}'
ctlc submit "$d2" --wait
RUN3=$(head -n1 "$T/ctl.out")
err=$(step_field "$RUN3" x error)
note "unset: $err"
assert_contains "$err" '${NOT_SET_ANYWHERE} is not set' "unset variable error"
assert_contains "$err" "'password'" "unset variable error names the field"
cp "$d/osiris_connections.yaml" "$d2/"
step_cfg "$d2" x '{"component":"osiris.noop","connection":"@supabase.main"}'
ctlc submit "$d2" --wait
RUN4=$(head -n1 "$T/ctl.out")
err=$(step_field "$RUN4" x error)
assert_contains "$err" '${SB_KEY} is not set' "context file, unset variable"
printf 'connections: [oops\n' >"$d2/osiris_connections.yaml"
ctlc submit "$d2" --wait
err=$(step_field "$(head -n1 "$T/ctl.out")" x error)
assert_contains "$err" "osiris_connections.yaml:" "malformed context file names it"

for r in "$RUN" "$RUN2" "$RUN3" "$RUN4"; do
	show_json "$r" >>"$T/show.json"
	ctl --json logs "$r" >>"$T/logs.jsonl"
	ctl artifacts "$r" --export "$T/export-$r" >/dev/null 2>&1 || true
done
stop_daemon
places=("$STATE" "$DLOG" "$T/show.json" "$T/logs.jsonl" "$T"/export-* "$T/a.json" "$T/b.json" "$T/c.json")
for c in "$CANARY" "$DCANARY" "$CCANARY"; do
	hits=$(grep -r -a -l -F -- "$c" "${places[@]}" 2>/dev/null)
	[ -z "$hits" ] || fail "a resolved secret appears in: $hits"
done
note "no resolved secret in the state dir, log, show, logs, artifacts"

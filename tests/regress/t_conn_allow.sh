# t_conn_allow: who may use the daemon's connections and credentials. An
# alias of daemon.connections_file is used only by the uids its `allow:`
# names (uid, user name, group:NAME, "*"; without one: root and the daemon's
# own uid), and a $CREDENTIALS_DIRECTORY file only by those its
# `credentials: {NAME: {allow: [...]}}` names (same default). A refused
# reference fails that step with one line naming the alias or credential and
# the uid, never a value; `allow` itself never reaches the step. An allow
# entry naming nobody stops the start.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || { note "needs root (submits as uid 65534 with setpriv)"; exit 0; }
OPEN=$(canary open)
ROOTONLY=$(canary root)
ACRED=$(canary acred)
OCRED=$(canary ocred)
SCRED=$(canary scred)

cat >"$T/conns.yaml" <<EOF
connections:
  mysql:
    everyone:
      host: e.internal
      password: $OPEN
      allow: "*"
    byname:
      host: n.internal
      password: $OPEN
      allow: [nobody]
    byuid:
      host: u.internal
      password: $OPEN
      allow: [65534, 12345]
    bygroup:
      host: g.internal
      password: $OPEN
      allow: ["group:nogroup"]
    cred:
      host: c.internal
      password: \${ALIAS_CRED}
      allow: [nobody]
    rootonly:
      host: r.internal
      password: $ROOTONLY
credentials:
  OPEN_CRED:
    allow: [nobody]
EOF
chmod 0600 "$T/conns.yaml"

# an allow entry naming nobody: a start error naming the alias
sed '0,/allow: \[nobody\]$/s//allow: [no-such-user-x]/' "$T/conns.yaml" >"$T/bad.yaml"
chmod 0600 "$T/bad.yaml"
"$BIN/osirisd" -S "$T/bad.sock" -D "$T/bad.state" -f /dev/null -o daemon.connections_file="$T/bad.yaml" >"$T/bad.out" 2>&1 &
p=$!
wait_for 10 sh -c "! kill -0 $p" || { kill -9 $p; fail "osirisd started with an allow list naming no user"; }
wait $p
assert_eq "$?" 1 "osirisd exit status with a bad allow entry"
assert_contains "$(cat "$T/bad.out")" "connection mysql.byname: allow: no user 'no-such-user-x'" "start error"
assert_not_contains "$(cat "$T/bad.out")" "$OPEN" "start error"

mkdir -p "$T/creds"
chmod 0700 "$T/creds"
printf '%s\n' "$ACRED" >"$T/creds/ALIAS_CRED"
printf '%s\n' "$OCRED" >"$T/creds/OPEN_CRED"
printf '%s\n' "$SCRED" >"$T/creds/SECRET_CRED"
CREDENTIALS_DIRECTORY=$T/creds start_daemon -v -v -o daemon.connections_file="$T/conns.yaml"
chmod 0755 "$T"
chmod 0666 "$SOCK"
# as_nobody DIR: submit --wait as uid 65534; RUN, RC
as_nobody() {
	setpriv --reuid=65534 --regid=65534 --clear-groups "$BIN/osirisctl" -S "$SOCK" submit "$1" --wait \
		>"$T/ctl.out" 2>"$T/ctl.err"
	RC=$?
	ERR=$(cat "$T/ctl.err")
	RUN=$(head -n1 "$T/ctl.out")
	RUNS+=("$RUN")
}
RUNS=()
ctx_conns() { # DIR: the context's own file, ${VAR}s only credentials provide
	cat >"$1/osiris_connections.yaml" <<'EOF'
connections:
  ctx:
    ok:
      host: ok.internal
      token: ${OPEN_CRED}
    no:
      host: no.internal
      token: ${SECRET_CRED}
EOF
}

# 1. nobody: every alias that allows it, and the credential it may read
d=$T/ok
pipeline "$d" allowed "a:osiris.noop:" "b:osiris.noop:" "c:osiris.noop:" "e:osiris.noop:" "f:osiris.noop:" \
	"g:osiris.noop:"
ctx_conns "$d"
step_cfg "$d" a '{"component":"osiris.noop","connection":"@mysql.everyone"}'
step_cfg "$d" b '{"component":"osiris.noop","connection":"@mysql.byname"}'
step_cfg "$d" c '{"component":"osiris.noop","connection":"@mysql.byuid"}'
step_cfg "$d" e '{"component":"osiris.noop","connection":"@mysql.bygroup"}'
step_cfg "$d" f '{"component":"osiris.noop","connection":"@mysql.cred"}'
step_cfg "$d" g '{"component":"osiris.noop","connection":"@ctx.ok"}'
chmod -R a+rX "$d"
as_nobody "$d"
assert_rc 0 "nobody using the aliases that allow it ($(show_json "$RUN" | head -c 800))"
assert_eq "$(run_field "$RUN" uid)" 65534 "the run's uid"
get() { ctl artifacts "$RUN" --get "artifacts/$1/cleaned_config.json" -o "$T/$1.json" && cat "$T/$1.json"; }
for s in a:e.internal b:n.internal c:u.internal e:g.internal f:c.internal g:ok.internal; do
	v=$(get "${s%%:*}")
	assert_contains "$v" "\"host\": \"${s#*:}\"" "step ${s%%:*}'s resolved connection"
	assert_not_contains "$v" '"allow"' "step ${s%%:*}'s cleaned config (allow is not a field)"
done
assert_contains "$(get f)" '"password": "***"' "the alias's credential reached it (masked)"
assert_contains "$(get g)" '"token": "***"' "the allowed credential reached the context's alias (masked)"

# 2. nobody: an alias without allow (root and the daemon's uid only)
d=$T/no
pipeline "$d" refused "x:osiris.noop:"
ctx_conns "$d"
step_cfg "$d" x '{"component":"osiris.noop","connection":"@mysql.rootonly"}'
chmod -R a+rX "$d"
as_nobody "$d"
assert_rc 1 "nobody using a root-only alias"
err=$(step_field "$RUN" x error)
note "refused alias: $err"
assert_eq "$err" "connection @mysql.rootonly (daemon.connections_file, alias 'rootonly'): uid 65534 may not use it (not in its allow list)" "refused alias error"
assert_eq "$(step_field "$RUN" x error_type)" ConnectionError "refused alias error type"

# 3. nobody: a credential it is not allowed, through the context's file
step_cfg "$d" x '{"component":"osiris.noop","connection":"@ctx.no"}'
as_nobody "$d"
assert_rc 1 "nobody using a credential it may not read"
err=$(step_field "$RUN" x error)
note "refused credential: $err"
assert_contains "$err" "connection @ctx.no (osiris_connections.yaml, alias 'no'): credential SECRET_CRED: uid 65534 may not read it" "refused credential error"

# 4. root: the default lets it use rootonly and any credential; an explicit
# list without root refuses it too
step_cfg "$d" x '{"component":"osiris.noop","connection":"@mysql.rootonly"}'
ctlc submit "$d" --wait
RUNS+=("$(head -n1 "$T/ctl.out")")
assert_rc 0 "root using a root-only alias"
step_cfg "$d" x '{"component":"osiris.noop","connection":"@ctx.no"}'
ctlc submit "$d" --wait
RUNS+=("$(head -n1 "$T/ctl.out")")
assert_rc 0 "root using a credential without an allow list"
step_cfg "$d" x '{"component":"osiris.noop","connection":"@mysql.byname"}'
ctlc submit "$d" --wait
RUN=$(head -n1 "$T/ctl.out")
RUNS+=("$RUN")
assert_rc 1 "root using an alias whose allow list names only nobody"
assert_contains "$(step_field "$RUN" x error)" "alias 'byname'): uid 0 may not use it" "root refused"
chmod 0700 "$T"

for r in "${RUNS[@]}"; do
	show_json "$r" >>"$T/show.json"
	ctl --json logs "$r" >>"$T/logs.jsonl"
done
stop_daemon
for c in "$OPEN" "$ROOTONLY" "$ACRED" "$OCRED" "$SCRED"; do
	hits=$(grep -r -a -l -F -- "$c" "$STATE" "$DLOG" "$T/show.json" "$T/logs.jsonl" "$T"/?.json 2>/dev/null)
	[ -z "$hits" ] || fail "a secret appears in: $hits"
done

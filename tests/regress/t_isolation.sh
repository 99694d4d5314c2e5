# t_isolation: the worker sandbox shows the worker what it needs and nothing
# else (issue 6). A worker binary under /tmp (a clone there) runs a pipeline
# with isolation on; inside the sandbox the state dir (osiris.db, runs/),
# other workspaces, /home, /root and /var are not there while the worker's
# own workspace is writable; no route the drivers allow reaches osiris.db.
. "$(dirname "$0")/lib.sh"

bwrap_works() {
	command -v bwrap >/dev/null 2>&1 &&
		bwrap --die-with-parent --unshare-all --as-pid-1 --ro-bind / / --dev /dev --proc /proc -- /bin/true 2>"$T/bwrap.err"
}
if bwrap_works; then
	ISO=bwrap
else
	ISO=none
	note "bwrap cannot start here ($(cat "$T/bwrap.err" 2>/dev/null)): checking that the daemon falls back to none"
fi

noop_chain "$T/p" 2

# 1. The worker binary under /tmp, isolation auto.
TMPW=$(mktemp -d /tmp/osiris-isolation.XXXXXX)
cleanup_tmpw() { rm -rf "$TMPW"; }
trap 'cleanup_tmpw; lib_cleanup' EXIT
cp "$BIN/osiris-worker" "$TMPW/osiris-worker"
start_daemon -o local.isolation=auto -o "local.worker=$TMPW/osiris-worker"
assert_match "$(grep 'local pool: worker' "$DLOG")" "isolation $ISO" "the pool's isolation"
ctlc submit "$SRC/examples/join-csv" --wait
assert_rc 0 "examples/join-csv with the worker under /tmp (isolation $ISO)"
stop_daemon

# 2. What the sandbox shows: a worker that reports its view and exits.
if [ "$ISO" = bwrap ]; then
	cp "$SRC/tests/regress/fake_worker.py" "$TMPW/view_worker"
	chmod +x "$TMPW/view_worker"
	start_daemon -o local.isolation=auto -o "local.worker=$TMPW/view_worker" -o local.pool_size=1
	# Another worker's workspace, made after start: later attempts must not see it.
	mkdir -p "$STATE/work/wk-999999"
	echo "other run's data" >"$STATE/work/wk-999999/secret.csv"
	n0=$(ctl --json pool | json "[p for p in d if p['backend'] == 'local'][0]['start_failures']")
	more_failures() { [ "$(ctl --json pool | json "[p for p in d if p['backend'] == 'local'][0]['start_failures']")" -gt $((n0 + 1)) ]; }
	wait_for 15 more_failures || fail "the view worker was not restarted: $(ctl --json pool)"
	view=$(ctl --json pool | json "[p for p in d if p['backend'] == 'local'][0]['last_error']")
	note "inside the sandbox: $view"
	assert_contains "$view" "db=no runs=no other_ws=no home=no root=no var=no own_ws=yes" "the sandbox's view"
	stop_daemon
fi

# 3. Routes the drivers allow, aimed at the state dir's osiris.db and at
# another workspace: none reaches them.
start_daemon -o local.isolation=auto -o "local.worker=$TMPW/osiris-worker"
[ -f "$STATE/osiris.db" ] || fail "no osiris.db in $STATE"
try_path() { # NAME PATH: a csv_extractor reading PATH must not succeed
	local d=$T/reach-$1
	pipeline "$d" "reach$1" "read:filesystem.csv_extractor:"
	step_cfg "$d" read "{\"component\":\"filesystem.csv_extractor\",\"mode\":\"extract\",\"path\":\"$2\"}"
	ctlc submit "$d" --wait
	[ "$RC" != 0 ] || fail "a csv_extractor read $2"
	note "csv path $2: rc $RC: $(printf %s "$ERR" | head -c 200)"
}
try_path abs "$STATE/osiris.db"
try_path up "../../osiris.db"
try_path upup "../../../osiris.db"
try_path other "../wk-1/secret.csv"
try_path proc "/proc/1/root$STATE/osiris.db"
d=$T/reach-sql
pipeline "$d" reachsql "q:duckdb.processor:"
step_cfg "$d" q "{\"component\":\"duckdb.processor\",\"mode\":\"transform\",\"query\":\"ATTACH DATABASE '$STATE/osiris.db' AS s; SELECT * FROM s.runs\"}"
ctlc submit "$d" --wait
[ "$RC" != 0 ] || fail "a SQL step attached $STATE/osiris.db"
# Nothing of the database came back as an artifact or an event.
for r in $(ctl --json runs | json '" ".join(x["id"] for x in d)'); do
	ctl logs "$r" 2>/dev/null | grep -q 'SQLite format 3' && fail "run $r logged the database's bytes"
done
stop_daemon

# 4. Where bwrap cannot create namespaces (a chroot, a kernel that forbids
# them), workers run without isolation, also when the worker itself is
# missing at start: once it appears, runs work (the pool does not keep
# trying bwrap because the worker was broken when it looked).
mkdir -p "$T/fakebin"
printf '#!/bin/sh\necho "bwrap: No permissions to create new namespace" >&2\nexit 1\n' >"$T/fakebin/bwrap"
chmod +x "$T/fakebin/bwrap"
rm -f "$TMPW/osiris-worker"
PATH=$T/fakebin:$PATH start_daemon -o local.isolation=auto -o "local.worker=$TMPW/osiris-worker" \
	-o local.start_fail_limit=2
assert_match "$(grep 'bwrap cannot start here' "$DLOG")" 'No permissions to create new namespace' "the fallback's reason"
ctlc submit "$T/p" --wait
assert_rc 1 "a run while the worker is missing"
assert_match "$(run_field "$(head -n1 "$T/ctl.out")" error)" 'No such file|cannot execute' "the run's error names the worker"
cp "$BIN/osiris-worker" "$TMPW/osiris-worker"
recovered() { [ "$(pool_field local idle)" -ge 1 ]; }
wait_for 15 recovered || fail "the pool did not recover once the worker appeared: $(ctl --json pool)"
ctlc submit "$T/p" --wait
assert_rc 0 "a run once the worker is there (isolation none)"
stop_daemon

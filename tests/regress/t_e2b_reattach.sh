# t_e2b_reattach: a daemon killed (SIGKILL) while E2B runs execute comes back
# and finishes them in their sandboxes, as if nothing happened:
# 1. a run with a secret, killed mid-step, a step running and another one
#    starting while the daemon is down: after the restart it succeeds, and
#    it is the same run (parity.py: state, steps, the ordered worker records,
#    artifacts by sha256) as one never interrupted; its seq has no gap and no
#    duplicate, nor has the worker's own seq (wseq); the secret is nowhere.
# 2. a run whose sandbox was killed while the daemon was down: lost, with a
#    reason naming the sandbox.
# 3. the idle warm sandbox the dead daemon left (tagged, no run) is killed as
#    an orphan; a clean stop leaves no sandbox.
# case-timeout: 150
. "$(dirname "$0")/lib.sh"

SECRET=reattach-canary-4b1d
export REATTACH_TOKEN=$SECRET
pipeline "$T/r" reattach "ext:filesystem.csv_extractor:" "q:duckdb.processor:ext" "out:filesystem.csv_writer:q" \
	"s1:osiris.noop:out" "s2:osiris.noop:s1" "s3:osiris.noop:s2"
mkdir -p "$T/r/data"
printf 'k,v\nx,1\ny,2\n' >"$T/r/data/in.csv"
step_cfg "$T/r" ext '{"component":"filesystem.csv_extractor","mode":"extract","path":"data/in.csv"}'
step_cfg "$T/r" q '{"component":"duckdb.processor","mode":"transform","query":"SELECT k, v, '"'"'${REATTACH_TOKEN}'"'"' AS tok FROM df_ext"}'
step_cfg "$T/r" out '{"component":"filesystem.csv_writer","mode":"write","path":"output/out.csv"}'
# s2 starts while the daemon is down and ends after it re-attached: its
# records come live, before the replay of s1's (said to nobody)
for s in s1:1500 s2:4000 s3:500; do
	step_cfg "$T/r" "${s%:*}" '{"component":"osiris.noop","mode":"transform","sleep_ms":'"${s#*:}"'}'
done
noop_chain "$T/slow" 2 '"sleep_ms":30000'

start_emulator
start_daemon -o e2b.pool_size=1 -o e2b.create_rate=50
wait_for 20 e2b_idle_at_least 1 || fail "no warm sandbox: $(ctl --json pool)"

# The reference: the same run, never interrupted.
ctlc submit "$T/r" --backend e2b --secret REATTACH_TOKEN --wait
assert_rc 0 "the reference run"
REF=$(head -n1 "$T/ctl.out")

# 1. Killed while s1 runs; s1 ends and s2 starts while nobody listens.
wait_for 20 e2b_idle_at_least 1 || fail "no warm sandbox: $(ctl --json pool)"
submit "$T/r" --backend e2b --secret REATTACH_TOKEN
RUN1=$RUN
s1_running() { [ "$(step_field "$RUN1" s1 state)" = running ]; }
wait_for 20 s1_running || fail "step s1 of $RUN1 never ran: $(ctl show "$RUN1")"
SB1=$(run_field "$RUN1" worker)
IDLE=$(emu_sandboxes | grep -vx "$SB1" | head -n1)
note "run $RUN1 in sandbox $SB1 (idle warm sandbox: ${IDLE:-none}); killing the daemon"
kill_daemon
sleep 2.5
start_daemon -o e2b.pool_size=1 -o e2b.create_rate=50
wait_for 30 run_final "$RUN1" || fail "run $RUN1 did not end after the restart: $(ctl show "$RUN1")"
assert_eq "$(run_state "$RUN1")" succeeded "state of the re-attached run (error: $(run_field "$RUN1" error))"
assert_eq "$(run_field "$RUN1" worker)" "$SB1" "worker of the re-attached run"
out=$("$PY" "$SRC/tests/regress/parity.py" "$BIN/osirisctl" "$SOCK" "$REF" "$RUN1" 2>&1) ||
	fail "the re-attached run differs from the uninterrupted one: $out"
note "re-attached run = reference: $out"
ctl --json logs "$RUN1" >"$T/logs1.json" || fail "logs $RUN1"
"$PY" - "$T/logs1.json" <<'PYEOF' || fail "the re-attached run's record stream is broken"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
seqs = [r["seq"] for r in recs]
assert seqs == list(range(1, len(seqs) + 1)), "daemon seq not 1..N without gap/duplicate: %s" % seqs
w = [r["wseq"] for r in recs if r["origin"] == "worker"]
assert w == list(range(1, len(w) + 1)), "worker seq not 1..N without gap/duplicate: %s" % w
names = [r["name"] for r in recs if r["origin"] == "daemon"]
assert names.count("worker_reattached") == 1, "daemon records: %s" % names
steps = [r["step_id"] for r in recs if r["name"] == "step_complete"]
assert steps == ["ext", "q", "out", "s1", "s2", "s3"], "step_complete order: %s" % steps
PYEOF
grep -q "$SECRET" "$T/logs1.json" && fail "the secret is in the re-attached run's records"
grep -q "$SECRET" "$DLOG" && fail "the secret is in the daemon log"
# Nowhere in the store but the pipeline's own output file, which writes it on
# purpose (output/out.csv, kept in osiris.db as a small artifact).
"$PY" - "$STATE/osiris.db" "$SECRET" <<'PYEOF' || fail "the secret is in the store"
import sqlite3, sys
db, secret = sqlite3.connect(sys.argv[1]), sys.argv[2]
for (t,) in db.execute("SELECT name FROM sqlite_schema WHERE type = 'table'").fetchall():
    cur = db.execute("SELECT * FROM " + t)
    cols = [c[0] for c in cur.description]
    for row in cur:
        rec = dict(zip(cols, row))
        if t == "artifacts" and rec.get("path") == "output/out.csv":
            continue
        for k, v in rec.items():
            if v is not None and secret.encode() in (v if isinstance(v, bytes) else str(v).encode()):
                sys.exit("%s.%s holds the secret" % (t, k))
PYEOF
if [ -n "$IDLE" ]; then
	gone_idle() { ! emu_sandboxes | grep -qx "$IDLE"; }
	wait_for 20 gone_idle || fail "the idle sandbox $IDLE of the dead daemon was not killed: $(emu_sandboxes)"
	grep -q "killing orphaned sandbox=$IDLE" "$DLOG" || fail "the daemon did not say it killed $IDLE"
fi
gone_sb1() { ! emu_sandboxes | grep -qx "$SB1"; }
wait_for 20 gone_sb1 || fail "the sandbox $SB1 of the re-attached run was not killed after it: $(emu_sandboxes)"

# 2. The sandbox dies while the daemon is down: lost, naming it.
wait_for 20 e2b_idle_at_least 1 || fail "no warm sandbox: $(ctl --json pool)"
submit "$T/slow" --backend e2b
RUN2=$RUN
wait_state "$RUN2" running 20
SB2=$(run_field "$RUN2" worker)
kill_daemon
"$PY" - "$E2B_API_URL" "$E2B_TEST_KEY" "$SB2" <<'PYEOF' || fail "cannot kill $SB2 in the emulator"
import sys, urllib.request
req = urllib.request.Request(sys.argv[1] + "/sandboxes/" + sys.argv[3], method="DELETE", headers={"X-API-Key": sys.argv[2]})
urllib.request.urlopen(req, timeout=10)
PYEOF
start_daemon -o e2b.pool_size=1 -o e2b.create_rate=50
wait_for 20 run_final "$RUN2" || fail "run $RUN2 did not end after the restart"
assert_eq "$(run_state "$RUN2")" lost "state of a run whose sandbox died"
err=$(run_field "$RUN2" error)
note "lost: $err"
assert_contains "$err" "cannot re-attach" "the lost run's error"
assert_contains "$err" "$SB2" "the lost run's error"
assert_ping

# 3. The pool still serves; a clean stop leaves nothing behind.
ctlc submit "$T/r" --backend e2b --secret REATTACH_TOKEN --wait
assert_rc 0 "an e2b run after the restarts"
stop_daemon
no_leak "after a clean stop"
stop_emulator

# t_retention (issue 11): the daemon prunes by itself. keep_runs keeps the
# newest N final runs (their rows and directories), never a running one;
# max_state_bytes caps what the runs take; run dirs are sharded
# (runs/<xx>/<id>) and an unsharded one of an older daemon is still read;
# osiris.db is in incremental auto-vacuum mode.
. "$(dirname "$0")/lib.sh"

final_ids() { ctl --json runs --limit 1000 | json '" ".join(r["id"] for r in d if r["state"] in ("succeeded", "failed", "cancelled", "lost"))'; }
nfinal() { ctl --json runs --limit 1000 | json 'len([r for r in d if r["state"] in ("succeeded", "failed", "cancelled", "lost")])'; }
nfinal_le() { [ "$(nfinal)" -le "$1" ]; }
dir_of() { echo "$STATE/runs/${1: -2}/$1"; }

start_daemon -o daemon.keep_runs=3 -o daemon.keep_days=0 -o daemon.max_state_bytes=0 -o daemon.prune_interval_s=1
slow_pipeline "$T/slow" 20 # still running when checked; cancelled by the stop below
submit "$T/slow"
SLOW=$RUN
noop_chain "$T/p" 3
ids=()
for ((i = 0; i < 6; i++)); do
	submit "$T/p" --wait
	ids+=("$RUN")
	[ -d "$(dir_of "$RUN")" ] || fail "run dir of $RUN is not at $(dir_of "$RUN") (sharded by the id's last two characters)"
done
wait_for 10 nfinal_le 3 || fail "retention kept $(nfinal) final runs, keep_runs=3"
sleep 1.5 # another retention pass: it must not take more
assert_eq "$(nfinal)" 3 "final runs kept"
kept=$(final_ids)
assert_eq "$kept" "${ids[5]} ${ids[4]} ${ids[3]}" "the runs kept (the newest three)"
for r in "${ids[@]:0:3}"; do
	ctlc show "$r"
	assert_rc 2 "show of pruned run $r"
	[ ! -e "$(dir_of "$r")" ] || fail "directory of pruned run $r is still there"
done
state_is "$SLOW" running || fail "the running run $SLOW was touched: $(run_state "$SLOW")"
[ -d "$(dir_of "$SLOW")" ] || fail "directory of the running run is gone"
[ "$("$PY" -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("PRAGMA auto_vacuum").fetchone()[0])' "$STATE/osiris.db")" = 2 ] ||
	fail "osiris.db is not in incremental auto-vacuum mode"
rows=$("$PY" -c 'import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
print(db.execute("SELECT count(*) FROM events WHERE run_id NOT IN (SELECT id FROM runs)").fetchone()[0] +
      db.execute("SELECT count(*) FROM steps WHERE run_id NOT IN (SELECT id FROM runs)").fetchone()[0])' "$STATE/osiris.db")
assert_eq "$rows" 0 "event and step rows of pruned runs"

# An unsharded run dir (an older daemon's layout) is still read.
OLD=${ids[5]}
stop_daemon
mv "$(dir_of "$OLD")" "$STATE/runs/$OLD"
# ... where an older daemon kept every artifact as a file (no bytes in
# osiris.db): the run's first artifact becomes one again
"$PY" -c 'import os, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
path, data = db.execute("SELECT path, data FROM artifacts WHERE run_id = ? ORDER BY path LIMIT 1", (sys.argv[2],)).fetchone()
assert data is not None, "a small artifact is not kept in osiris.db"
f = os.path.join(sys.argv[3], path)
os.makedirs(os.path.dirname(f), exist_ok=True)
open(f, "wb").write(data)
db.execute("UPDATE artifacts SET data = NULL WHERE run_id = ? AND path = ?", (sys.argv[2], path))
db.commit()' "$STATE/osiris.db" "$OLD" "$STATE/runs/$OLD/artifacts" || fail "cannot make an old-layout artifact"
start_daemon -o daemon.keep_runs=3 -o daemon.keep_days=0 -o daemon.max_state_bytes=0 -o daemon.prune_interval_s=1
ctlc --json artifacts "$OLD"
assert_rc 0 "artifacts of a run in an unsharded dir"
path=$(printf %s "$OUT" | json 'd[0]["path"]')
ctlc artifacts "$OLD" --get "$path" -o "$T/got"
assert_rc 0 "artifacts --get from an unsharded dir"
cmp -s "$T/got" "$STATE/runs/$OLD/artifacts/$path" || fail "artifact read back differs"
stop_daemon

# max_state_bytes: runs of ~200 KiB each under a 1 MiB cap.
head -c 200000 /dev/urandom >"$T/p/blob.bin"
start_daemon -o daemon.keep_runs=0 -o daemon.keep_days=0 -o daemon.max_state_bytes=1M -o daemon.prune_interval_s=1
for ((i = 0; i < 6; i++)); do submit "$T/p" --wait; done
LAST=$RUN
wait_for 10 nfinal_le 4 || fail "max_state_bytes=1M kept $(nfinal) runs of 200 KiB"
sleep 1.5
n=$(nfinal)
[ "$n" -ge 2 ] || fail "max_state_bytes=1M kept only $n runs of 200 KiB (pruned too much)"
state_is "$LAST" succeeded || fail "the newest run was pruned"
used=$(du -s --block-size=1 "$STATE/runs" | cut -f1)
[ "$used" -le 1048576 ] || fail "runs/ takes $used bytes, over the 1 MiB cap"
note "kept $n runs, runs/ $used bytes"

# t_full_disk (issue 11): a full state dir loses nothing acknowledged and
# never takes the daemon down. The state dir is a 24 MiB tmpfs filled by
# runs with 3 MiB artifacts until submit is refused (busy: state dir full);
# nothing half-written is left; logs/show/runs answer; prune gives the space
# back and the next submit works without a restart. Then: an artifact bigger
# than the disk fails its run with the reason; a run whose records cannot be
# stored (the disk filled under it) keeps them in memory and completes, whole,
# once space returns (its small artifacts are stored with its records, so
# they wait in memory with them and are readable afterwards); the database
# passes integrity_check.
# local.work_dir lives elsewhere: workspaces are scratch (tmpfs in
# production, see osirisd.conf(5)); here the fill must come from what the
# daemon stores, so that every failure below is the store's.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || { note "SKIP: mounting a tmpfs needs root"; exit 0; }
mkdir -p "$STATE" "$T/work"
mount -t tmpfs -o size=24M,mode=0700 tmpfs "$STATE" || fail "cannot mount a tmpfs on $STATE"
fd_cleanup() {
	local rc=$?
	if [ -n "$DAEMON_PID" ]; then
		kill -9 "$DAEMON_PID" 2>/dev/null
		wait "$DAEMON_PID" 2>/dev/null
		DAEMON_PID=
	fi
	sleep 0.2
	umount "$STATE" 2>/dev/null || umount -l "$STATE"
	(exit $rc)
	lib_cleanup
}
trap fd_cleanup EXIT

# gen -> out: an N-row CSV of about 106 bytes a row, collected as an artifact.
big_pipeline() { # DIR ROWS
	pipeline "$1" big "gen:duckdb.processor:" "out:filesystem.csv_writer:gen"
	step_cfg "$1" gen "{\"component\":\"duckdb.processor\",\"mode\":\"transform\",\"query\":\"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < $2) SELECT x, hex(randomblob(50)) AS pad FROM c\"}"
	step_cfg "$1" out '{"component":"filesystem.csv_writer","mode":"write","path":"output/big.csv"}'
}
big_pipeline "$T/big" 30000
big_pipeline "$T/huge" 300000
noop_chain "$T/noop" 3

start_daemon -o "local.work_dir=$T/work" -o daemon.min_free_bytes=2M -o daemon.keep_days=0 \
	-o daemon.keep_runs=0 -o daemon.max_state_bytes=0

# -- fill with runs until submit is refused ----------------------------------
accepted=()
refused=0
for ((i = 0; i < 20; i++)); do
	ctlc submit "$T/big" --wait
	if [ "$RC" = 3 ]; then
		refused=1
		break
	fi
	accepted+=("$(head -n1 "$T/ctl.out")")
	assert_ping
done
[ "$refused" = 1 ] || fail "20 runs of 3 MiB fitted in a 24 MiB state dir: submit never refused"
[ ${#accepted[@]} -ge 3 ] || fail "only ${#accepted[@]} runs accepted before the state dir was full"
note "accepted ${#accepted[@]} runs, then: $ERR"
assert_err_line "refused submit"
assert_contains "$ERR" "busy: state dir full (" "refused submit"
assert_match "$ERR" 'full \([0-9.]+ (bytes|KiB|MiB) free' "refused submit"
df -k "$STATE" | tail -1 | sed 's/^/# df: /'

# Every acknowledged run is final, succeeded or failed for the disk.
for r in "${accepted[@]}"; do
	st=$(run_state "$r")
	case $st in
	succeeded) ;;
	failed) assert_contains "$(run_field "$r" error)" "state dir full" "error of run $r" ;;
	*) fail "acknowledged run $r is $st while the disk is full" ;;
	esac
done
# Nothing half-written: no partial artifact, one directory per stored run.
[ -z "$(find "$STATE/runs" -name '.*.part')" ] || fail "partial files left: $(find "$STATE/runs" -name '.*.part')"
dirs=$(find "$STATE/runs" -mindepth 2 -maxdepth 2 -type d -printf '%f\n' | sort)
rows=$(ctl --json runs --limit 1000 | json '"\n".join(sorted(r["id"] for r in d))')
assert_eq "$dirs" "$rows" "run directories vs stored runs"

# Reads keep answering from what is stored.
last=${accepted[-1]}
ctlc runs
assert_rc 0 "runs while full"
ctlc show "$last"
assert_rc 0 "show while full"
ctlc logs "$last"
assert_rc 0 "logs while full"
assert_contains "$OUT" "run_end" "logs of $last"
ctlc artifacts "${accepted[0]}"
assert_rc 0 "artifacts while full"
assert_contains "$OUT" "output/big.csv" "artifacts of ${accepted[0]}"
ctlc submit "$T/noop"
assert_rc 3 "a small submit while full"

# -- prune gives the space back; the next submit works, no restart ----------
ctlc --json prune --keep 1
assert_rc 0 "prune while full"
n=$(printf %s "$OUT" | json 'd["runs"]')
[ "$n" -ge 2 ] || fail "prune --keep 1 removed $n runs: $OUT"
submit "$T/noop" --wait
assert_eq "$(run_state "$RUN")" succeeded "the first run after prune"

# -- an artifact bigger than the disk: the run fails with the reason ---------
ctlc submit "$T/huge" --wait
assert_rc 1 "a run whose artifact does not fit"
HUGE=$(head -n1 "$T/ctl.out")
wait_state "$HUGE" failed 10
err=$(run_field "$HUGE" error)
assert_contains "$err" "state dir full: artifact output/big.csv not stored" "error of the run with the huge artifact"
[ -z "$(find "$STATE/runs" -name '.*.part')" ] || fail "partial file of the huge artifact left"
ctlc artifacts "$HUGE"
assert_not_contains "$OUT" "output/big.csv" "artifact list of the failed run"
submit "$T/noop" --wait
assert_eq "$(run_state "$RUN")" succeeded "the run after the huge artifact"

# -- the disk fills under a running run: its records wait in memory ---------
slow_pipeline "$T/slow" 3
submit "$T/slow"
SLOW=$RUN
wait_state "$SLOW" running 10
dd if=/dev/zero of="$STATE/filler" bs=64k 2>/dev/null
note "filler: $(du -h "$STATE/filler" | cut -f1), df: $(df -k "$STATE" | tail -1)"
# The steps run; their records (and the end) reach a live follower from
# memory; their small artifacts (cleaned_config.json) travel with the
# records (osiris.db), so they wait in memory too and the run succeeds.
ctlc logs -f "$SLOW"
assert_rc 0 "logs -f of the run that ended on a full disk (live records)"
assert_contains "$OUT" "step_complete" "live records of $SLOW"
ctlc submit "$T/noop"
assert_rc 3 "submit while the filler fills the disk"
assert_contains "$ERR" "state dir full" "refused submit (filler)"
assert_ping
ctlc show "$SLOW"
assert_rc 0 "show while the store cannot commit"
# (running while nothing commits; succeeded if the WAL still had room)
case $(run_state "$SLOW") in running | succeeded) ;; *) fail "the store shows $SLOW as $(run_state "$SLOW")" ;; esac
rm -f "$STATE/filler"
wait_state "$SLOW" succeeded 10
# nothing was lost meanwhile: both steps' artifacts are stored and readable
for s in spin after; do
	ctlc artifacts "$SLOW" --get "artifacts/$s/cleaned_config.json" -o "$T/cc-$s.json"
	assert_rc 0 "artifacts --get $s/cleaned_config.json of $SLOW after space returned"
	"$PY" -c 'import json,sys; json.load(open(sys.argv[1]))' "$T/cc-$s.json" ||
		fail "cleaned_config.json of $s is not the JSON it was: $(head -c 200 "$T/cc-$s.json")"
done
ctl --json logs "$SLOW" | jsonl '[r["seq"] for r in L] == list(range(1, len(L) + 1)) and L[-1]["name"] == "run_end"' |
	grep -qx true || fail "records of $SLOW not whole after space returned: $(ctl --json logs "$SLOW" | tail -3)"
assert_eq "$(run_field "$SLOW" last_seq)" "$(ctl --json logs "$SLOW" | jsonl 'len(L)')" "last_seq vs stored records"
submit "$T/noop" --wait
assert_eq "$(run_state "$RUN")" succeeded "a run after the filler went"

stop_daemon
"$PY" - "$STATE/osiris.db" <<'EOF' || fail "osiris.db is not intact"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
ic = db.execute("PRAGMA integrity_check").fetchall()
fk = db.execute("PRAGMA foreign_key_check").fetchall()
print("# integrity_check:", ic, "foreign_key_check:", fk)
sys.exit(0 if ic == [("ok",)] and fk == [] else 1)
EOF

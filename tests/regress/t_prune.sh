# t_prune (issue 11): osirisctl prune. --dry-run removes nothing and says
# what would go; --keep N and --older-than D remove final runs (rows and
# directories), never a running one; it prints runs and bytes (--json too);
# only root or the daemon's own user may prune (others: forbidden).
. "$(dirname "$0")/lib.sh"

nruns() { ctl --json runs --limit 1000 | json 'len(d)'; }
dir_of() { echo "$STATE/runs/${1: -2}/$1"; }

# retention off: only osirisctl prune removes anything here
start_daemon -o daemon.keep_runs=0 -o daemon.keep_days=0 -o daemon.max_state_bytes=0
noop_chain "$T/p" 3
ids=()
for ((i = 0; i < 6; i++)); do
	submit "$T/p" --wait
	ids+=("$RUN")
done

# another user: forbidden (the socket opened to it for the test)
chmod 0755 "$T"
chmod 0666 "$SOCK"
if [ "$(id -u)" = 0 ]; then
	setpriv --reuid=65534 --regid=65534 --clear-groups "$BIN/osirisctl" -S "$SOCK" prune --keep 0 >"$T/nobody.out" 2>"$T/nobody.err"
	RC=$?
	ERR=$(cat "$T/nobody.err")
	assert_rc 2 "prune as uid 65534"
	assert_contains "$ERR" "forbidden" "prune as uid 65534"
	assert_eq "$(nruns)" 6 "runs after a forbidden prune"
fi
chmod 0700 "$T"

ctlc prune --dry-run --keep 2
assert_rc 0 "prune --dry-run"
assert_contains "$OUT" "would remove 4 runs" "prune --dry-run output"
assert_eq "$(nruns)" 6 "runs after a dry run"
for r in "${ids[@]}"; do [ -d "$(dir_of "$r")" ] || fail "dry run removed the directory of $r"; done

ctlc --json prune --keep 2
assert_rc 0 "prune --keep 2"
assert_eq "$(printf %s "$OUT" | json 'd["runs"]')" 4 "runs removed by --keep 2"
assert_eq "$(printf %s "$OUT" | json 'd["dry_run"]')" false "dry_run in the answer"
[ "$(printf %s "$OUT" | json 'd["bytes"]')" -gt 16384 ] || fail "prune reports too few bytes: $OUT"
assert_eq "$(ctl --json runs | json '" ".join(r["id"] for r in d)')" "${ids[5]} ${ids[4]}" "runs left"
for r in "${ids[@]:0:4}"; do
	ctlc logs "$r"
	assert_rc 2 "logs of pruned run $r"
	[ ! -e "$(dir_of "$r")" ] || fail "directory of pruned run $r left"
done

# --older-than: the two left finished over 3 s ago, a new one just now
sleep 3.5
submit "$T/p" --wait
NEW=$RUN
ctlc prune --older-than 3s
assert_rc 0 "prune --older-than 3s"
assert_match "$OUT" '^removed 2 runs, [0-9.]+ (KiB|MiB)' "prune --older-than output"
assert_eq "$(ctl --json runs | json '" ".join(r["id"] for r in d)')" "$NEW" "runs left after --older-than"

slow_pipeline "$T/slow" 3
submit "$T/slow"
SLOW=$RUN
wait_state "$SLOW" running 10
# never a running run, even with --keep 0
ctlc prune --keep 0
assert_rc 0 "prune --keep 0"
assert_contains "$OUT" "removed 1 run," "prune --keep 0 with one final and one running run"
state_is "$SLOW" running || fail "prune touched the running run: $(run_state "$SLOW")"
[ -d "$(dir_of "$SLOW")" ] || fail "prune removed the running run's directory"
wait_state "$SLOW" succeeded 15

# usage errors
ctlc prune --older-than 3x
assert_rc 2 "prune --older-than 3x"
assert_err_line "prune --older-than 3x"
ctlc prune --keep -1
assert_rc 2 "prune --keep -1"
ctlc prune extra
assert_rc 2 "prune with an operand"

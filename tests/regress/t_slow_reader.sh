# t_slow_reader: followers that never read do not grow the daemon's memory
# without bound (DESIGN §9: fall back to the store); the run completes, a
# normal `logs` returns everything, and the slow followers, once they read,
# get every record 1..N without gap or duplicate.
. "$(dirname "$0")/lib.sh"

# 600 steps make ~2400 records (~300 KB on the wire): more than the
# kernel's socket buffers plus the per-follower cap lowered to 8 KiB here,
# so every slow follower overflows and must be served from the store.
STEPS=${SLOW_READER_STEPS:-600}
# ASan keeps freed memory in a quarantine (256 MB by default) that RSS
# counts; a small one keeps the bound meaningful under the sanitizer.
[ "${OSIRIS_ASAN:-0}" = 1 ] && export ASAN_OPTIONS=$ASAN_OPTIONS:quarantine_size_mb=8
start_daemon -o daemon.follow_buffer_bytes=8192
noop_chain "$T/p" "$STEPS"
rss0=$(proc_kb "$DAEMON_PID" VmRSS)
submit "$T/p"
marker=$T/release
pids=()
for i in 1 2 3 4 5 6 7 8; do
	"$PY" "$REGRESS/rpcpeer.py" "$SOCK" noread "$RUN" 60 "$marker" >"$T/noread.$i" 2>&1 &
	pids+=($!)
	BG_PIDS+=($!)
done
# While they sit there, the daemon keeps serving others.
assert_ping
ctlc --json runs
assert_rc 0 "runs while slow followers are attached"

wait_for 50 run_final "$RUN" || fail "run did not finish with slow followers attached (state $(run_state "$RUN"))"
assert_eq "$(run_state "$RUN")" succeeded "run state"
hwm=$(proc_kb "$DAEMON_PID" VmHWM)
rss1=$(proc_kb "$DAEMON_PID" VmRSS)
note "daemon RSS before ${rss0} kB, after ${rss1} kB, peak ${hwm} kB, $(run_field "$RUN" last_seq) records"
[ "$hwm" -lt $((rss0 + 65536)) ] || fail "daemon peak RSS grew by $((hwm - rss0)) kB (> 64 MB) with slow followers"

N=$(run_field "$RUN" last_seq)
got=$(ctl --json logs "$RUN" | jsonl 'len(L) if [r["seq"] for r in L] == list(range(1, len(L) + 1)) else -1')
assert_eq "$got" "$N" "records from logs --json (1..last_seq)"

touch "$marker"
for i in "${!pids[@]}"; do
	wait "${pids[$i]}" || fail "slow follower $((i + 1)): $(cat "$T/noread.$((i + 1))")"
done
note "$(cat "$T/noread.1")"
grep -q "noread: $N records" "$T/noread.1" || fail "slow follower did not get $N records: $(cat "$T/noread.1")"
# the stream must have been larger than what the kernel can hold for the
# daemon plus its 8 KiB cap, or the fallback was never exercised
bytes=$(sed -n 's/.* \([0-9]*\) bytes$/\1/p' "$T/noread.1")
wmem=$(cat /proc/sys/net/core/wmem_default 2>/dev/null || echo 212992)
[ "$bytes" -gt $((wmem + 8192)) ] || fail "stream of $bytes bytes too small to overflow socket buffer ($wmem) + cap: raise SLOW_READER_STEPS"
stop_daemon

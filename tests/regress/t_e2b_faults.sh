# t_e2b_faults: the E2B backend against the emulator's faults. Runs succeed
# where a retry is safe (429 on create, 5xx on kill) or fail with a reason
# that names the cause (a cut stream, a sandbox that dies mid-step); no
# sandbox is leaked; the daemon keeps answering and the local backend is
# unaffected; a failed artifact download falls back to `read`. TTLs: t_e2b_ttl.
. "$(dirname "$0")/lib.sh"

noop_chain "$T/p" 2
noop_chain "$T/slow" 2 '"sleep_ms":2500'

# 1. 429 on every other create (Retry-After 1) and 503 on every other kill:
# both retried, every run succeeds, nothing leaks.
start_emulator --fault rate-limit:every=2:retry-after=1 --fault http-error:endpoint=kill:status=503:every=2
start_daemon -o e2b.pool_size=1 -o e2b.create_rate=50
for i in 1 2 3; do
	run_e2b "$T/p"
	assert_rc 0 "e2b run $i with 429s on create and 503s on kill"
done
local_ok "429s"
grep -q 'create failed (.*429\|429.*retry\|retry' "$DLOG" || note "(no retry logged at this level)"
stop_daemon
no_leak "429/503"
stop_emulator

# 2. The worker's stream is cut once: the run on it fails naming the lost
# stream, or the cut hits a warming sandbox which is replaced; either way
# the next runs succeed.
start_emulator --fault stream-cut:after=3000:count=1
start_daemon -o e2b.pool_size=1 -o e2b.create_rate=50
run_e2b "$T/slow"
if [ "$RC" != 0 ]; then
	err=$(run_field "$RUN" error)
	note "run on the cut stream: $err"
	assert_match "$err" 'stream' "the failed run's error"
fi
for i in 1 2; do
	run_e2b "$T/p"
	assert_rc 0 "e2b run $i after the cut"
done
assert_ping
stop_daemon
no_leak "stream cut"
stop_emulator

# 3. The sandbox dies mid-step (3 s after its create, while a 2 x 2.5 s run
# is on it): the run fails with the cause; a new sandbox serves the next.
start_emulator --fault sandbox-death:after=3:count=1
start_daemon -o e2b.pool_size=1 -o e2b.create_rate=50
wait_for 20 e2b_idle_at_least 1 || fail "no warm sandbox: $(ctl --json pool)"
run_e2b "$T/slow"
assert_rc 1 "the run whose sandbox died"
err=$(run_field "$RUN" error)
note "run in the dead sandbox: $err"
assert_match "$err" 'sandbox|stream|worker' "the error names the cause"
run_e2b "$T/p"
assert_rc 0 "the run after the death"
local_ok "a sandbox death"
stop_daemon
no_leak "sandbox death"
stop_emulator


# 4. Artifact downloads (GET /files) answer 500 twice: the files still come,
# read through the worker instead, byte for byte.
pipeline "$T/big" big "ext:filesystem.csv_extractor:" "out:filesystem.csv_writer:ext"
mkdir -p "$T/big/data"
gen_csv "$T/big/data/in.csv" 20000
step_cfg "$T/big" ext '{"component":"filesystem.csv_extractor","mode":"extract","path":"data/in.csv"}'
step_cfg "$T/big" out '{"component":"filesystem.csv_writer","mode":"write","path":"output/big.csv"}'
start_emulator --fault http-error:endpoint=files.get:status=500:count=2
start_daemon -o e2b.pool_size=1 -o e2b.create_rate=50
wait_for 20 e2b_idle_at_least 1 || fail "no warm sandbox: $(ctl --json pool)"
run_e2b "$T/big"
assert_rc 0 "the run whose artifact downloads failed"
grep -q "download failed" "$DLOG" || fail "no download failed (the fault did not hit a download?)"
ctlc artifacts "$RUN" --get output/big.csv -o "$T/big.csv"
assert_rc 0 "artifacts --get"
cmp -s "$T/big.csv" "$T/big/data/in.csv" || fail "the artifact read after a failed download differs"
stop_daemon
no_leak "failed downloads"
stop_emulator

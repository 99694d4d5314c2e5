# t_e2b_ttl: a sandbox's TTL is kept ahead with /timeout refreshes, so a
# run longer than the TTL succeeds; when every refresh fails (503), the
# sandbox expires under the run, which fails naming the lost stream; no
# sandbox is leaked and the local backend is unaffected.
. "$(dirname "$0")/lib.sh"

noop_chain "$T/p" 2
noop_chain "$T/slow" 2 '"sleep_ms":2500'

# TTL: a 6 s TTL outlives a 8 s run when refreshed; when every refresh
# fails (503 on /timeout), the sandbox expires mid-run and the run fails.
start_emulator
start_daemon -o e2b.pool_size=1 -o e2b.sandbox_timeout_s=6 -o e2b.create_rate=50
noop_chain "$T/long" 4 '"sleep_ms":2000'
run_e2b "$T/long"
assert_rc 0 "an 8 s run in a sandbox with a 6 s TTL, refreshed"
stop_daemon
no_leak "TTL kept"
stop_emulator
start_emulator --fault http-error:endpoint=timeout:status=503
start_daemon -o e2b.pool_size=1 -o e2b.sandbox_timeout_s=6 -o e2b.create_rate=50
run_e2b "$T/long"
assert_rc 1 "a run outliving a TTL that cannot be refreshed"
note "expired under the run: $(run_field "$RUN" error)"
local_ok "expiring sandboxes"
stop_daemon
no_leak "TTL expiry"
stop_emulator

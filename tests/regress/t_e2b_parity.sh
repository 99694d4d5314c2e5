# t_e2b_parity: every example and test pipeline runs on both backends, local
# and E2B (the emulator), and the two runs are the same (parity.py): final
# state and exit code, steps, the ordered worker events and metrics without
# timing fields and ids, the artifacts byte for byte (sha256). Succeeding,
# failing at a step, cancelled mid-step, with a secret, with an artifact
# large enough to be streamed (one GET /files), with a context larger than
# one SendInput.
# No sandbox is left behind.
. "$(dirname "$0")/lib.sh"

start_emulator -v
start_daemon -o e2b.pool_size=2 -o e2b.create_rate=50 -o daemon.max_concurrent_runs=4
wait_for 20 e2b_idle_at_least 1 || fail "no warm sandbox: $(ctl --json pool)"

# Test pipelines beside the examples.
pipeline "$T/fail" failing "ext:filesystem.csv_extractor:" "bad:duckdb.processor:ext" "after:osiris.noop:bad"
mkdir -p "$T/fail/data"
printf 'a,b\n1,2\n3,4\n' >"$T/fail/data/in.csv"
step_cfg "$T/fail" ext '{"component":"filesystem.csv_extractor","mode":"extract","path":"data/in.csv"}'
step_cfg "$T/fail" bad '{"component":"duckdb.processor","mode":"transform","query":"SELECT nope FROM df_ext"}'
step_cfg "$T/fail" after '{"component":"osiris.noop","mode":"transform"}'

SECRET=parity-canary-7f3a9c
pipeline "$T/secret" secret "ext:filesystem.csv_extractor:" "q:duckdb.processor:ext" "out:filesystem.csv_writer:q"
mkdir -p "$T/secret/data"
printf 'k,v\nx,1\ny,2\n' >"$T/secret/data/in.csv"
step_cfg "$T/secret" ext '{"component":"filesystem.csv_extractor","mode":"extract","path":"data/in.csv"}'
step_cfg "$T/secret" q '{"component":"duckdb.processor","mode":"transform","query":"SELECT k, v, '"'"'${PARITY_TOKEN}'"'"' AS tok FROM df_ext"}'
step_cfg "$T/secret" out '{"component":"filesystem.csv_writer","mode":"write","path":"output/out.csv"}'

pipeline "$T/big" big "ext:filesystem.csv_extractor:" "out:filesystem.csv_writer:ext"
mkdir -p "$T/big/data"
gen_csv "$T/big/data/in.csv" 60000
step_cfg "$T/big" ext '{"component":"filesystem.csv_extractor","mode":"extract","path":"data/in.csv"}'
step_cfg "$T/big" out '{"component":"filesystem.csv_writer","mode":"write","path":"output/big.csv"}'

noop_chain "$T/slow" 3 '"sleep_ms":4000'

# run_on BACKEND DIR [submit args]: the run id, after it ended.
run_on() {
	local backend=$1 dir=$2
	shift 2
	ctlc submit "$dir" --backend "$backend" --wait "$@"
	RUN=$(head -n1 "$T/ctl.out")
	[[ "$RUN" =~ ^[A-Za-z0-9]+$ ]] || fail "submit $dir --backend $backend: $ERR"
	wait_for 20 run_final "$RUN" || fail "run $RUN on $backend did not end"
}

for ex in "$SRC"/examples/*/; do
	[ -f "$ex/manifest.yaml" ] || continue
	run_on local "$ex"
	L=$RUN
	run_on e2b "$ex"
	assert_eq "$(run_field "$RUN" backend)" e2b "backend of the e2b run"
	parity_same "example $(basename "$ex")" "$L" "$RUN"
done

run_on local "$T/fail"
L=$RUN
run_on e2b "$T/fail"
assert_eq "$(run_state "$RUN")" failed "the failing pipeline on e2b"
parity_same "failing at a step" "$L" "$RUN"

export PARITY_TOKEN=$SECRET
run_on local "$T/secret" --secret PARITY_TOKEN
L=$RUN
run_on e2b "$T/secret" --secret PARITY_TOKEN
parity_same "with a secret" "$L" "$RUN"
ctl logs "$RUN" | grep -q "$SECRET" && fail "the secret reached the e2b run's log"
ctl --json show "$RUN" | grep -q "$SECRET" && fail "the secret reached the e2b run object"

run_on local "$T/big"
L=$RUN
run_on e2b "$T/big"
size=$(ctl --json artifacts "$RUN" | json "[a['size'] for a in d if a['path'] == 'output/big.csv'][0]")
note "streamed artifact: $size bytes"
[ "$size" -gt 1000000 ] || fail "the big artifact is only $size bytes"
parity_same "large artifact" "$L" "$RUN"
ctlc artifacts "$RUN" --get output/big.csv -o "$T/big-e2b.csv"
assert_rc 0 "artifacts --get from the e2b run"
cmp -s "$T/big-e2b.csv" "$T/big/data/in.csv" || fail "the e2b run's output differs from its input"
# ... and it came down in one envd GET /files (not a `read` per 4 MiB)
grep -E "debug: 1 /files\?path=[^ ]*osiris-ws-[^ ]*big\.csv" "$T/emu.log" >/dev/null ||
	fail "the big artifact was not downloaded with GET /files: $(grep -c '/files' "$T/emu.log") /files requests"
grep -q "download failed" "$DLOG" && fail "an artifact download failed: $(grep 'download failed' "$DLOG" | head -2)"

# A context larger than one SendInput (2 MiB): prepare goes out in pieces.
mkdir -p "$T/ctx"
cp -r "$SRC/examples/join-csv/." "$T/ctx/"
head -c 4500000 /dev/urandom | base64 >"$T/ctx/data/blob.txt"
run_on local "$T/ctx"
L=$RUN
run_on e2b "$T/ctx"
assert_eq "$(run_state "$RUN")" succeeded "a 6 MB context on e2b"
parity_same "6 MB context" "$L" "$RUN"

cancel_on() { # BACKEND: a run cancelled while its second step sleeps
	submit "$T/slow" --backend "$1"
	wait_for 20 step_is_running "$RUN" s2 || fail "step s2 of $RUN ($1) never ran"
	ctlc cancel "$RUN"
	wait_state "$RUN" cancelled 20
}
step_is_running() { [ "$(step_field "$1" "$2" state)" = running ]; }
cancel_on local
L=$RUN
cancel_on e2b
parity_same "cancelled mid-step" "$L" "$RUN"

stop_daemon
left=$(emu_sandboxes)
[ -z "$left" ] || fail "sandboxes left after the daemon stopped: $left"
stop_emulator

# t_work_dir_mem: without local.work_dir, workspaces live in memory (issue
# 8): under $RUNTIME_DIRECTORY/work (systemd's RuntimeDirectory=), else
# $XDG_RUNTIME_DIR/osiris, else /dev/shm/osiris-$UID, when that is a tmpfs;
# a context larger than local.work_dir_max_bytes gets its workspace on disk
# under <state>/work instead, and so does every run when no tmpfs is
# offered or the cap is 0. Runs succeed either way; nothing is left behind.
. "$(dirname "$0")/lib.sh"

[ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ] || {
	note "/dev/shm is not a tmpfs here: skipped"
	exit 0
}
MEM=$(mktemp -d /dev/shm/osiris-t-work.XXXXXX)
trap 'rm -rf "$MEM"; lib_cleanup' EXIT
unset RUNTIME_DIRECTORY

noop_chain "$T/small" 1
slow_pipeline "$T/big" 2
head -c 8192 /dev/urandom | od -An -tx1 >"$T/big/padding.txt" # ~24 KiB of context

ws_under() { find "$1" -name 'osiris-ws-*' -type d 2>/dev/null | head -n1; }
# during RUN (slow), the workspace is under $1
ws_during() {
	local run=$1 where=$2
	wait_state "$run" running 10
	wait_for 5 ws_under "$where" >/dev/null || fail "run $run: no workspace under $where (work dirs: $(find "$MEM" "$STATE/work" -maxdepth 3 2>/dev/null | tr '\n' ' '))"
}

# 1. $XDG_RUNTIME_DIR on a tmpfs: contexts up to the cap in memory, a
# bigger one on disk.
export XDG_RUNTIME_DIR=$MEM
# Beside it: a crashed daemon's whose state dir is gone (removed at start),
# and one whose state dir still exists (kept).
mkdir -p "$MEM/osiris/work-00000000000000aa/wk-1" "$MEM/osiris/work-00000000000000bb/wk-1"
printf '%s' "$T/gone-state" >"$MEM/osiris/work-00000000000000aa/.state_dir"
printf '%s' "$T" >"$MEM/osiris/work-00000000000000bb/.state_dir"
start_daemon -o local.work_dir_max_bytes=16K
[ ! -e "$MEM/osiris/work-00000000000000aa" ] || fail "a work dir whose state dir is gone was not removed"
[ -e "$MEM/osiris/work-00000000000000bb" ] || fail "another daemon's work dir was removed"
line=$(grep 'local pool: worker' "$DLOG" | tail -n1)
assert_match "$line" "work_dir $MEM/osiris/work-[0-9a-f]{16} \\(in memory\\), larger contexts in $STATE/work" "the pool's work_dir"
WDM=$(printf '%s\n' "$line" | sed -n 's/.*work_dir \([^ ]*\) (in memory).*/\1/p')
slow_pipeline "$T/slowsmall" 2
submit "$T/slowsmall"
ws_during "$RUN" "$WDM"
[ -z "$(ws_under "$STATE/work")" ] || fail "a small context's workspace is on disk"
wait_state "$RUN" succeeded 30
submit "$T/big"
ws_during "$RUN" "$STATE/work"
[ -z "$(ws_under "$WDM")" ] || fail "a context above local.work_dir_max_bytes has its workspace in memory"
wait_state "$RUN" succeeded 30
ctlc submit "$SRC/examples/join-csv" --wait
assert_rc 0 "examples/join-csv with the workspace in memory"
[ "$(ctl --json artifacts "$(head -n1 "$T/ctl.out")" | json 'len(d)')" -ge 1 ] || fail "no artifacts collected from memory"
stop_daemon
[ ! -e "$WDM" ] || fail "the in-memory work dir $WDM is left after stop"
[ -z "$(find "$STATE/work" -mindepth 1 2>/dev/null)" ] || fail "workspaces left on disk after stop"

# 2. systemd's RuntimeDirectory= wins over $XDG_RUNTIME_DIR.
mkdir -p "$MEM/rt"
RUNTIME_DIRECTORY=$MEM/rt start_daemon
assert_match "$(grep 'local pool: worker' "$DLOG" | tail -n1)" "work_dir $MEM/rt/work \\(in memory\\)" "work_dir under RuntimeDirectory"
ctlc submit "$T/small" --wait
assert_rc 0 "a run with the workspace under RuntimeDirectory"
stop_daemon

# 3. No tmpfs offered (RuntimeDirectory on disk), or the cap at 0: on disk.
mkdir -p "$T/rt"
if [ "$(stat -f -c %T "$T/rt")" != tmpfs ]; then
	RUNTIME_DIRECTORY=$T/rt start_daemon
	assert_match "$(grep 'local pool: worker' "$DLOG" | tail -n1)" "work_dir $STATE/work$" "work_dir without a tmpfs"
	ctlc submit "$T/small" --wait
	assert_rc 0 "a run with the workspace on disk"
	stop_daemon
fi
start_daemon -o local.work_dir_max_bytes=0
assert_match "$(grep 'local pool: worker' "$DLOG" | tail -n1)" "work_dir $STATE/work$" "work_dir with local.work_dir_max_bytes=0"
submit "$T/big"
ws_during "$RUN" "$STATE/work"
wait_state "$RUN" succeeded 30
stop_daemon

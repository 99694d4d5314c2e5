# t_datapath: issue 8 item 5, a big context and a big artifact moved in the
# kernel. With local.work_dir on another filesystem (a tmpfs) than the state
# dir, the staged bundle is a kernel copy and the artifact is copied chunk by
# chunk from the event loop; on the state dir's filesystem both are hard
# links. Either way the output comes back byte for byte with the sha256 the
# listing gives, the stored bundle is untouched, and no staged bundle is
# left in the worker's directory once a step runs.
. "$(dirname "$0")/lib.sh"

d=$T/ctx
pipeline "$d" dp "ex:filesystem.csv_extractor:" "out:filesystem.csv_writer:ex"
step_cfg "$d" ex '{"component":"filesystem.csv_extractor","mode":"extract","path":"data/in.csv"}'
step_cfg "$d" out '{"component":"filesystem.csv_writer","mode":"write","path":"output/out.csv"}'
mkdir -p "$d/data"
gen_csv "$d/data/in.csv" 300000
size=$(stat -c %s "$d/data/in.csv")
[ "$size" -gt $((2 * 1024 * 1024)) ] || fail "test CSV is only $size bytes"
want=$(sha256sum "$d/data/in.csv" | cut -d' ' -f1)

check_run() { # WHAT
	local run art got bsum
	ctlc submit "$d" --wait
	assert_rc 0 "$1: submit --wait"
	run=$(head -n1 "$T/ctl.out")
	art=$(ctl --json artifacts "$run" | json '[a for a in d if a["path"] == "output/out.csv"][0]')
	assert_eq "$(echo "$art" | json 'd["sha256"]')" "$want" "$1: listed sha256 of output/out.csv"
	assert_eq "$(echo "$art" | json 'd["size"]')" "$size" "$1: listed size of output/out.csv"
	got=$(find "$STATE/runs" -path "*/$run/artifacts/output/out.csv" -exec sha256sum {} + | cut -d' ' -f1)
	assert_eq "$got" "$want" "$1: stored output/out.csv"
	ctlc artifacts "$run" --get output/out.csv -o "$T/out.csv"
	assert_rc 0 "$1: artifacts --get"
	cmp -s "$d/data/in.csv" "$T/out.csv" || fail "$1: output/out.csv differs from the input"
	# the stored bundle still holds the context (the worker could not write it)
	bsum=$(find "$STATE/runs" -path "*/$run/bundle" -exec grep -c "name_976" {} +)
	[ "${bsum:-0}" -ge 1 ] || fail "$1: the stored bundle lost the context"
	find "$STATE/runs" -path "*/$run/artifacts/*" -name '.*.part' | grep -q . && fail "$1: a partial file was left"
	return 0
}

# on the state dir's filesystem: hard links
start_daemon -o local.pool_size=1 -o "local.work_dir=$STATE/work" -v
check_run "same filesystem"
grep -q "run context linked" "$DLOG" || fail "same filesystem: the context was not hard-linked: $(grep 'run context' "$DLOG" | tail -1)"
grep -q "output/out.csv: hard link" "$DLOG" || fail "same filesystem: the artifact was not hard-linked"
stop_daemon

# work dir on a tmpfs: kernel copies
SHM=$(mktemp -d /dev/shm/osiris-t-datapath.XXXXXX 2>/dev/null) || { note "no /dev/shm: the tmpfs half is skipped"; exit 0; }
trap 'rm -rf "$SHM"; lib_cleanup' EXIT
[ "$(stat -c %d "$SHM")" != "$(stat -c %d "$STATE")" ] || { note "/dev/shm shares the state dir's filesystem"; exit 0; }
: >"$DLOG"
start_daemon -o local.pool_size=1 -o "local.work_dir=$SHM" -v
check_run "tmpfs work dir"
grep -q "run context copied" "$DLOG" || fail "tmpfs work dir: the context was not copied: $(grep 'run context' "$DLOG" | tail -1)"
grep -q "output/out.csv: kernel copy" "$DLOG" || fail "tmpfs work dir: the artifact did not take the kernel copy"
# nothing staged is left behind in the workers' directories
find "$SHM" -name .osiris-bundle | grep -q . && fail "a staged bundle is still in the work dir"
stop_daemon

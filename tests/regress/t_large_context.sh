# t_large_context: a run context over the worker's built-in 64 MiB default
# runs when the daemon's daemon.max_context_bytes allows it (the daemon hands
# its limit to the workers), and the CSV comes back byte for byte.
. "$(dirname "$0")/lib.sh"

start_daemon -o daemon.max_context_bytes=96M
d=$T/big
pipeline "$d" big "ex:filesystem.csv_extractor:" "out:filesystem.csv_writer:ex"
step_cfg "$d" ex '{"component":"filesystem.csv_extractor","mode":"extract","path":"data/big.csv"}'
step_cfg "$d" out '{"component":"filesystem.csv_writer","mode":"write","path":"output/big.csv"}'
mkdir -p "$d/data"
gen_csv "$d/data/big.csv" 2800000
size=$(stat -c %s "$d/data/big.csv")
[ "$size" -gt $((64 * 1024 * 1024)) ] || fail "test CSV is only $size bytes, not over 64 MiB"
ctlc submit "$d" --max-context 96M --wait
assert_rc 0 "submit --wait of a $size-byte context (stderr: $ERR)"
RUN=$(head -n1 "$T/ctl.out")
ctlc artifacts "$RUN" --get output/big.csv -o "$T/out.csv"
assert_rc 0 "artifacts --get output/big.csv"
cmp -s "$d/data/big.csv" "$T/out.csv" || fail "output/big.csv differs from the input"

# t_bad_utf8: a CSV with invalid UTF-8 fails its step and the run; the error
# names the file.
. "$(dirname "$0")/lib.sh"

start_daemon
d=$T/p
pipeline "$d" badutf8 "ex:filesystem.csv_extractor:" "out:filesystem.csv_writer:ex"
step_cfg "$d" ex '{"component":"filesystem.csv_extractor","mode":"extract","path":"data/latin1.csv"}'
step_cfg "$d" out '{"component":"filesystem.csv_writer","mode":"write","path":"output/out.csv"}'
mkdir -p "$d/data"
printf 'id,name\n1,ok\n2,caf\xe9\n3,\xff\xfe\n' >"$d/data/latin1.csv"

ctlc submit "$d" --wait
assert_rc 1 "submit --wait with invalid UTF-8 input"
RUN=$(head -n1 "$T/ctl.out")
assert_eq "$(run_state "$RUN")" failed "run state"
assert_eq "$(step_field "$RUN" ex state)" failed "extract step"
assert_eq "$(step_field "$RUN" out state)" skipped "writer step"
err=$(step_field "$RUN" ex error)
assert_contains "$err" "data/latin1.csv" "extract step error"
assert_match "$err" 'utf-?8|encoding' "extract step error"
note "error: $err"
# the error text itself is valid UTF-8 JSON (no raw \xe9 leaked into it)
show_json "$RUN" | "$PY" -c 'import sys; sys.stdin.buffer.read().decode("utf-8")' || fail "show --json is not valid UTF-8"
ctl --json logs "$RUN" | "$PY" -c 'import sys; sys.stdin.buffer.read().decode("utf-8")' || fail "logs --json is not valid UTF-8"
stop_daemon

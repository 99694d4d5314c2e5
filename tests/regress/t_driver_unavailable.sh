# t_driver_unavailable: the static worker (what an E2B sandbox runs) has no
# libpq (drivers/registry_static.c): a manifest naming postgres.* or
# supabase.* is accepted, and its step fails with a line saying so. (Its
# mysql.* and graphql.* drivers are real: t_e2b_mysql, t_e2b_graphql.)
. "$(dirname "$0")/lib.sh"

if [ "${OSIRIS_ASAN:-0}" = 1 ] || [ ! -x "$BIN/osiris-worker-static" ]; then
	note "no static worker in this build"
	exit 0
fi
start_daemon -o local.worker="$BIN/osiris-worker-static" -o local.pool_size=0
d=$T/p
pipeline "$d" unavail "ex:postgres.extractor:"
step_cfg "$d" ex '{"component":"postgres.extractor","query":"SELECT 1"}'
ctlc submit "$d" --wait
RUN=$(head -n1 "$T/ctl.out")
assert_rc 1 "a database step on the static worker"
err=$(step_field "$RUN" ex error)
assert_contains "$err" "driver postgres.extractor is not available in this build" "step error"
assert_eq "$(step_field "$RUN" ex state)" failed "step state"

pipeline "$T/s" unavail "w:supabase.writer:"
step_cfg "$T/s" w '{"component":"supabase.writer","table":"t"}'
ctlc submit "$T/s" --wait
RUN=$(head -n1 "$T/ctl.out")
assert_rc 1 "a supabase step on the static worker"
assert_contains "$(step_field "$RUN" w error)" "driver supabase.writer is not available in this build of osiris-worker (it links no libpq)" "supabase step error"

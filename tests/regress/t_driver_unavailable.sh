# t_driver_unavailable: the static worker (what an E2B sandbox runs) has no
# libpq/libcurl (drivers/registry_static.c): a manifest naming postgres.* or
# graphql.* is accepted, and its step fails with a line saying so. (Its
# mysql.* drivers are real: t_e2b_mysql.)
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
pipeline "$T/g" unavail "gq:graphql.extractor:"
step_cfg "$T/g" gq '{"component":"graphql.extractor","endpoint":"http://127.0.0.1:9/","query":"{ a }"}'
ctlc submit "$T/g" --wait
RUN=$(head -n1 "$T/ctl.out")
assert_rc 1 "a graphql step on the static worker"
assert_contains "$(step_field "$RUN" gq error)" "driver graphql.extractor is not available in this build of osiris-worker (it links no libcurl)" "graphql step error"

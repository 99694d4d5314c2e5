# t_driver_unavailable: the static worker (what an E2B sandbox runs) links
# libpq only when the build found libpq.a's libpgcommon/libpgport archives
# (drivers/registry_static.c, Makefile PG_STATIC_LIBS). A manifest naming
# postgres.* or supabase.* is accepted either way: with libpq the step is the
# real driver's (libpq's connect error here: no server), without it the step
# fails with a line saying which library is missing. (The stand-in itself is
# unit-tested in check_drivers; mysql.* and graphql.* are always real:
# t_e2b_mysql, t_e2b_graphql; postgres.* on e2b: t_e2b_postgres.)
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
case $err in
*"not available in this build"*)
	LIBPQ=no
	assert_contains "$err" "driver postgres.extractor is not available in this build" "step error"
	;;
*)
	LIBPQ=yes
	assert_contains "$err" "postgres: cannot connect: connection to server" "step error of the real driver"
	;;
esac
note "static worker links libpq: $LIBPQ"
assert_eq "$(step_field "$RUN" ex state)" failed "step state"

pipeline "$T/s" unavail "w:supabase.writer:"
step_cfg "$T/s" w '{"component":"supabase.writer","table":"t"}'
ctlc submit "$T/s" --wait
RUN=$(head -n1 "$T/ctl.out")
assert_rc 1 "a supabase step on the static worker"
if [ "$LIBPQ" = no ]; then
	assert_contains "$(step_field "$RUN" w error)" "driver supabase.writer is not available in this build of osiris-worker (it links no libpq)" "supabase step error"
else
	# the real writer's own check: it is given no input here
	assert_contains "$(step_field "$RUN" w error)" "no input table" "supabase step error of the real driver"
fi

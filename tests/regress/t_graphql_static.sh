# t_graphql_static: every t_graphql check (pagination with each page once,
# bearer auth, max_pages, flattening, `errors`, 500s then success, a cut
# connection, persistent 500s, a 401 not retried, the token nowhere) on the
# static worker, whose graphql.extractor speaks HTTP/1.1 itself
# (drivers/httpc_ossl.c) instead of through libcurl.
# case-timeout: 120
if [ "${OSIRIS_ASAN:-0}" = 1 ] || [ ! -x "${BIN:?}/osiris-worker-static" ]; then
	echo "# no static worker in this build"
	exit 0
fi
GQ_DAEMON_OPTS="-o local.worker=$BIN/osiris-worker-static -o local.pool_size=0"
. "$(dirname "$0")/t_graphql.sh"

# t_e2b_graphql: graphql.extractor in an E2B sandbox (the static worker's
# HTTP/1.1 client, drivers/httpc_ossl.c) gives the same events, metrics,
# rows and artifacts as on local (the dynamic worker, libcurl) against the
# real GraphQL test server: three Relay pages each fetched once, a response
# with `errors`, two 500s then success. No sandbox is left.
# case-timeout: 120
. "$(dirname "$0")/lib.sh"

GQ=$SRC/tests/graphql
[ -d "$GQ/node_modules/graphql" ] || sh "$GQ/install.sh" >/dev/null || fail "cannot install the graphql server (npm ci)"
TOKEN=$(canary gqtok)
GQ_PID=
GQ_PORT=0
# gql_server ARGS...: (re)start the server on the same port (the endpoint is
# in cleaned_config.json, which must be the same on both backends)
gql_server() {
	[ -n "$GQ_PID" ] && kill "$GQ_PID" 2>/dev/null && wait "$GQ_PID" 2>/dev/null
	rm -f "$T/gq.port"
	node "$GQ/server.mjs" --port-file "$T/gq.port" --port "$GQ_PORT" --token "$TOKEN" "$@" >>"$T/gq.log" 2>&1 &
	GQ_PID=$!
	BG_PIDS+=("$GQ_PID")
	wait_for 10 test -s "$T/gq.port" || fail "graphql server did not start: $(tail -3 "$T/gq.log")"
	GQ_PORT=$(cat "$T/gq.port")
	GQ_URL=http://127.0.0.1:$GQ_PORT/graphql
	printf 'connections:\n  graphql:\n    api:\n      endpoint: %s\n      auth_token: ${GQL_TOKEN}\n' "$GQ_URL" \
		>"$d/osiris_connections.yaml"
}
stats() { "$PY" -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())' "${GQ_URL%/graphql}/stats"; }

start_emulator
start_daemon -o e2b.pool_size=1 -o e2b.create_rate=50
wait_for 20 e2b_idle_at_least 1 || fail "no warm sandbox: $(ctl --json pool)"
d=$T/p
pipeline "$d" gql "ex:graphql.extractor:" "out:filesystem.csv_writer:ex"
Q='query($first: Int, $after: String) { items(first: $first, after: $after) { edges { cursor node { id name price qty active tags meta { color size } } } pageInfo { hasNextPage endCursor } } }'
step_cfg "$d" ex "{\"component\":\"graphql.extractor\",\"connection\":\"@graphql.api\",\"query\":\"$Q\",\"variables\":{\"first\":10},\"auth_type\":\"bearer\",\"pagination_enabled\":true,\"pagination_path\":\"data.items.pageInfo\",\"data_path\":\"data.items.edges\",\"retry_delay\":0.1}"
step_cfg "$d" out '{"component":"filesystem.csv_writer","path":"output/items.csv"}'
run_on() { # BACKEND EXPECTED_RC
	GQL_TOKEN=$TOKEN parity_submit "$1" "$d" "$2" --secret GQL_TOKEN
}

gql_server --items 25
run_on local 0
L=$RUN
gql_server --items 25
run_on e2b 0
assert_eq "$(run_field "$RUN" backend)" e2b "backend of the e2b run"
assert_eq "$(step_field "$RUN" ex rows_out)" 25 "rows read in the sandbox"
assert_eq "$(stats | json 'sorted(d["byCursor"].values())')" "[1, 1, 1]" "each page fetched once from the sandbox"
parity_same "three pages" "$L" "$RUN"

gql_server --items 25 --fail 2
run_on local 0
L=$RUN
gql_server --items 25 --fail 2
run_on e2b 0
assert_eq "$(stats | json 'd["requests"]')" 5 "requests from the sandbox with two 500s"
parity_same "two 500s then success" "$L" "$RUN"

step_cfg "$d" ex '{"component":"graphql.extractor","connection":"@graphql.api","auth_type":"bearer","query":"{ boom }"}'
run_on local 1
L=$RUN
run_on e2b 1
assert_contains "$(step_field "$RUN" ex error)" "boom: the resolver failed on purpose" "errors in the response, on e2b"
parity_same "a response with errors" "$L" "$RUN"

parity_end graphql "$TOKEN"

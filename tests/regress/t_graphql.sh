# t_graphql: graphql.extractor against a real GraphQL server (the npm
# `graphql` reference implementation, tests/graphql/server.mjs): Relay
# cursor pagination with each page fetched once, bearer auth from the
# connection, max_pages, flattening, a response with `errors`, 500s then
# success, a cut connection, a 401; the token never stored or shown.
# case-timeout: 120
. "$(dirname "$0")/lib.sh"

GQ=$SRC/tests/graphql
[ -d "$GQ/node_modules/graphql" ] || sh "$GQ/install.sh" >/dev/null || fail "cannot install the graphql server (npm ci)"
TOKEN=$(canary gqtok)
GQ_PID=
# gql_server ARGS...: (re)start the server, set GQ_URL.
gql_server() {
	[ -n "$GQ_PID" ] && kill "$GQ_PID" 2>/dev/null && wait "$GQ_PID" 2>/dev/null
	rm -f "$T/gq.port"
	node "$GQ/server.mjs" --port-file "$T/gq.port" --token "$TOKEN" "$@" >>"$T/gq.log" 2>&1 &
	GQ_PID=$!
	BG_PIDS+=("$GQ_PID")
	wait_for 10 test -s "$T/gq.port" || fail "graphql server did not start: $(tail -3 "$T/gq.log")"
	GQ_URL=http://127.0.0.1:$(cat "$T/gq.port")/graphql
}
stats() { "$PY" -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())' "${GQ_URL%/graphql}/stats"; }

# t_graphql_static runs all of this on the static worker (httpc_ossl.c)
# shellcheck disable=SC2086
start_daemon -v -v ${GQ_DAEMON_OPTS:-}
d=$T/p
pipeline "$d" gql "ex:graphql.extractor:" "out:filesystem.csv_writer:ex"
Q='query($first: Int, $after: String) { items(first: $first, after: $after) { edges { cursor node { id name price qty active tags meta { color size } } } pageInfo { hasNextPage endCursor } } }'
cfg() { # EXTRA_JSON_MEMBERS
	step_cfg "$d" ex "{\"component\":\"graphql.extractor\",\"connection\":\"@graphql.api\",\"query\":\"$Q\",\"variables\":{\"first\":10},\"auth_type\":\"bearer\",\"pagination_enabled\":true,\"pagination_path\":\"data.items.pageInfo\",\"data_path\":\"data.items.edges\",\"retry_delay\":0.1$1}"
}
conns() {
	printf 'connections:\n  graphql:\n    api:\n      endpoint: %s\n      auth_token: ${GQL_TOKEN}\n' "$GQ_URL" >"$d/osiris_connections.yaml"
}
step_cfg "$d" out '{"component":"filesystem.csv_writer","path":"output/items.csv"}'
RUNS=()
run_it() { # EXPECTED_RC
	GQL_TOKEN=$TOKEN ctlc submit "$d" --secret GQL_TOKEN --wait
	RUN=$(head -n1 "$T/ctl.out")
	RUNS+=("$RUN")
	[ "$RC" = "$1" ] || fail "run exited $RC, expected $1: $(show_json "$RUN" | head -c 1500)"
}

# 1. 25 items in pages of 10: 3 requests, each page once
gql_server --items 25
conns
cfg ''
run_it 0
assert_eq "$(step_field "$RUN" ex rows_out)" 25 "rows read"
st=$(stats)
note "server stats: $st"
assert_eq "$(printf %s "$st" | json 'd["requests"]')" 3 "requests made to the server"
assert_eq "$(printf %s "$st" | json 'sorted(d["byCursor"].values())')" "[1, 1, 1]" "each page fetched once"
ctl artifacts "$RUN" --get output/items.csv -o "$T/items.csv" || fail "no items.csv"
assert_eq "$(head -n1 "$T/items.csv")" "cursor,node.id,node.name,node.price,node.qty,node.active,node.tags,node.meta.color,node.meta.size" "flattened columns"
assert_eq "$(sed -n 8p "$T/items.csv")" 'Y3Vyc29yOjc=,i7,,8.75,7,false,"[""t1""]",green,2' "row 7 (null name, list as JSON)"
assert_eq "$(sed -n 2p "$T/items.csv")" 'Y3Vyc29yOjE=,i1,item 1 ✓,1.25,1,false,"[""t1""]",green,1' "row 1"
ctl --json logs "$RUN" >"$T/l1.jsonl"
grep -q '"requests_made"' "$T/l1.jsonl" || fail "no requests_made metric"
grep -q '"pages_fetched"' "$T/l1.jsonl" || fail "no pages_fetched metric"

# 2. max_pages
gql_server --items 25
conns
cfg ',"max_pages":2'
run_it 0
assert_eq "$(step_field "$RUN" ex rows_out)" 20 "rows with max_pages 2"

# 3. errors in the response
step_cfg "$d" ex '{"component":"graphql.extractor","connection":"@graphql.api","auth_type":"bearer","query":"{ boom }"}'
run_it 1
err=$(step_field "$RUN" ex error)
assert_contains "$err" "boom: the resolver failed on purpose" "a response with errors"

# 4. 500s, then success (retries with backoff)
gql_server --items 25 --fail 2
conns
cfg ''
run_it 0
assert_eq "$(step_field "$RUN" ex rows_out)" 25 "rows after two 500s"
assert_eq "$(stats | json 'd["requests"]')" 5 "requests with two 500s"

# 5. a connection cut mid-run (the second request), retried
gql_server --items 25 --cut 2
conns
run_it 0
assert_eq "$(step_field "$RUN" ex rows_out)" 25 "rows after a cut connection"
assert_eq "$(stats | json 'sorted(d["byCursor"].values())')" "[1, 1, 1]" "pages answered once each after a cut"

# 6. too many 500s fail, naming the status; a 401 is not retried
gql_server --items 25 --fail 10
conns
cfg ',"max_retries":1'
run_it 1
assert_contains "$(step_field "$RUN" ex error)" "HTTP 500" "persistent 500s"
gql_server --items 25
printf 'connections:\n  graphql:\n    api:\n      endpoint: %s\n      auth_token: wrong-token\n' "$GQ_URL" >"$d/osiris_connections.yaml"
cfg ''
run_it 1
assert_contains "$(step_field "$RUN" ex error)" "HTTP 401" "bad token"
assert_eq "$(stats | json 'd["requests"]')" 1 "a 401 is not retried"

for r in "${RUNS[@]}"; do
	show_json "$r" >>"$T/show.json"
	ctl --json logs "$r" >>"$T/logs.jsonl"
	ctl artifacts "$r" --export "$T/export-$r" >/dev/null 2>&1 || true
done
stop_daemon
hits=$(grep -r -a -l -F -- "$TOKEN" "$STATE" "$DLOG" "$T/show.json" "$T/logs.jsonl" "$T"/export-* 2>/dev/null)
[ -z "$hits" ] || fail "the token appears in: $hits"
note "token absent from state, log, show, logs, exports"

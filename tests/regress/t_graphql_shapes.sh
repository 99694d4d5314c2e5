# t_graphql_shapes: how graphql.extractor turns rows of any shape into
# columns (a canned answer from a stdlib HTTP server; t_graphql has the real
# GraphQL server): columns in first-seen order across pages, a column first
# seen late is NULL in the rows before it, a row lacking one gets NULL, a
# non-object row is column "value", an empty object a row of NULLs, a
# literal "n.x" key and a flattened n.x keep the later value (as
# pandas.json_normalize would), flatten_result false keeps objects as JSON.
# The same on the dynamic and the static worker.
. "$(dirname "$0")/lib.sh"

cat >"$T/srv.py" <<'EOF2'
import http.server, json, sys
PAGES = [
	{"data": {"r": {"rows": [{"a": 1, "n": {"x": "p", "y": {"z": 2.5}}}, {"b": True}, 5],
		"pi": {"more": True, "end": "c1"}}}},
	{"data": {"r": {"rows": [{"a": None, "n.x": "lit", "n": {"x": "nested"}}, {}, {"c": [1, "t"], "a": "s"}],
		"pi": {"more": False, "end": None}}}},
]
class H(http.server.BaseHTTPRequestHandler):
	def do_POST(self):
		req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
		body = json.dumps(PAGES[1 if req["variables"].get("after") == "c1" else 0]).encode()
		self.send_response(200)
		self.send_header("Content-Type", "application/json")
		self.send_header("Content-Length", str(len(body)))
		self.end_headers()
		self.wfile.write(body)
	def log_message(self, *a):
		pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
open(sys.argv[1] + ".tmp", "w").write(str(s.server_address[1]))
import os; os.rename(sys.argv[1] + ".tmp", sys.argv[1])
s.serve_forever()
EOF2
"$PY" "$T/srv.py" "$T/port" &
BG_PIDS+=($!)
wait_for 10 test -s "$T/port" || fail "the canned server did not start"
URL=http://127.0.0.1:$(cat "$T/port")/graphql

d=$T/p
pipeline "$d" shapes "ex:graphql.extractor:" "out:filesystem.csv_writer:ex"
step_cfg "$d" out '{"component":"filesystem.csv_writer","path":"output/rows.csv"}'
cfg() { # FLATTEN
	step_cfg "$d" ex "{\"component\":\"graphql.extractor\",\"endpoint\":\"$URL\",\"query\":\"q\",\"pagination_enabled\":true,\"pagination_path\":\"data.r.pi\",\"pagination_cursor_field\":\"end\",\"pagination_has_next_field\":\"more\",\"data_path\":\"data.r.rows\",\"flatten_result\":$1}"
}
check() { # WORKER_LABEL FLATTEN EXPECTED_CSV
	cfg "$2"
	ctlc submit "$d" --wait
	RUN=$(head -n1 "$T/ctl.out")
	[ "$RC" = 0 ] || fail "$1 flatten=$2: run exited $RC: $(show_json "$RUN" | head -c 1500)"
	ctl artifacts "$RUN" --get output/rows.csv -o "$T/rows.csv" || fail "no output/rows.csv"
	assert_eq "$(cat "$T/rows.csv")" "$3" "$1, flatten_result $2"
	assert_eq "$(step_field "$RUN" ex rows_out)" 6 "$1 rows_out"
}
FLAT='a,n.x,n.y.z,b,value,c
1,p,2.5,,,
,,,true,,
,,,,5,
,nested,,,,
,,,,,
s,,,,,"[1,""t""]"'
NESTED='a,n,b,value,n.x,c
1,"{""x"":""p"",""y"":{""z"":2.5}}",,,,
,,true,,,
,,,5,,
,"{""x"":""nested""}",,,lit,
,,,,,
s,,,,,"[1,""t""]"'

start_daemon
check dynamic true "$FLAT"
check dynamic false "$NESTED"
stop_daemon
if [ "${OSIRIS_ASAN:-0}" != 1 ] && [ -x "$BIN/osiris-worker-static" ]; then
	start_daemon -o local.worker="$BIN/osiris-worker-static" -o local.pool_size=0
	check static true "$FLAT"
	check static false "$NESTED"
fi

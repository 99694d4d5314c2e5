# t_graphql_tls: graphql.extractor over https in the static worker's own
# client (drivers/httpc_ossl.c), against an HTTPS server with a self-signed
# certificate: with validate_ssl false the rows arrive; by default the
# certificate is refused at once (not retried) with a line saying why, as
# the dynamic worker (libcurl) refuses it too.
# case-timeout: 60
. "$(dirname "$0")/lib.sh"

if [ "${OSIRIS_ASAN:-0}" = 1 ] || [ ! -x "$BIN/osiris-worker-static" ]; then
	note "no static worker in this build"
	exit 0
fi
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/key.pem" -out "$T/cert.pem" -days 1 \
	-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1 || fail "openssl req"
"$PY" - "$T" <<'PYEOF' >"$T/https.log" 2>&1 &
import http.server, json, ssl, sys
t = sys.argv[1]
n = 0
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        global n
        n += 1
        body = self.rfile.read(int(self.headers["Content-Length"]))
        q = json.loads(body)
        out = json.dumps({"data": {"items": [{"id": 1, "q": q["query"]}, {"id": 2, "meta": {"n": n}}]}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
s = http.server.HTTPServer(("127.0.0.1", 0), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(t + "/cert.pem", t + "/key.pem")
s.socket = ctx.wrap_socket(s.socket, server_side=True)
open(t + "/https.port", "w").write(str(s.server_address[1]))
s.serve_forever()
PYEOF
BG_PIDS+=($!)
wait_for 10 test -s "$T/https.port" || fail "https server did not start: $(cat "$T/https.log")"
URL=https://127.0.0.1:$(cat "$T/https.port")/graphql

d=$T/p
pipeline "$d" tls "ex:graphql.extractor:" "out:filesystem.csv_writer:ex"
step_cfg "$d" out '{"component":"filesystem.csv_writer","path":"output/rows.csv"}'
cfg() { step_cfg "$d" ex "{\"component\":\"graphql.extractor\",\"endpoint\":\"$URL\",\"query\":\"{ items { id } }\",\"data_path\":\"data.items\",\"retry_delay\":0.1$1}"; }

start_daemon -o local.worker="$BIN/osiris-worker-static" -o local.pool_size=0
cfg ',"validate_ssl":false'
ctlc submit "$d" --wait
RUN=$(head -n1 "$T/ctl.out")
assert_rc 0 "https without verification on the static worker ($(show_json "$RUN" | head -c 600))"
ctl artifacts "$RUN" --get output/rows.csv -o "$T/rows.csv" || fail "no rows.csv"
assert_eq "$(cat "$T/rows.csv")" 'id,q,meta.n
1,{ items { id } },
2,,1' "rows over https"

cfg ''
t0=$(date +%s)
ctlc submit "$d" --wait
RUN=$(head -n1 "$T/ctl.out")
assert_rc 1 "a self-signed certificate, verified (static worker)"
err=$(step_field "$RUN" ex error)
note "static: $err"
assert_contains "$err" "graphql: $URL: TLS: certificate of 127.0.0.1 not verified: self-signed certificate" "the refusal"
[ "$(($(date +%s) - t0))" -le 5 ] || fail "a refused certificate was retried"
stop_daemon

start_daemon
ctlc submit "$d" --wait
RUN=$(head -n1 "$T/ctl.out")
assert_rc 1 "a self-signed certificate, verified (dynamic worker)"
note "dynamic: $(step_field "$RUN" ex error)"
assert_contains "$(step_field "$RUN" ex error)" "graphql: $URL: SSL peer certificate or SSH remote key was not OK" "libcurl's refusal"

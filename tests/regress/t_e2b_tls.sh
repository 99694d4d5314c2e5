# t_e2b_tls: TLS for real: the emulator over HTTPS with a test CA
# (e2b.ca_file) serves runs, and a CA that did not sign its certificate
# fails every start with a clear certificate error, no sandbox created.
. "$(dirname "$0")/lib.sh"

noop_chain "$T/p" 2
printf 'e2b_0123456789abcdef0123456789abcdef01234567\n' >"$T/key"

# A test CA and a server certificate for 127.0.0.1 signed by it.
command -v openssl >/dev/null 2>&1 || fail "openssl is needed to make the test CA"
mk_ca() { # DIR: ca.pem, server.pem, server.key
	mkdir -p "$1"
	openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=osiris test CA" \
		-keyout "$1/ca.key" -out "$1/ca.pem" >/dev/null 2>&1 || fail "openssl: CA"
	openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$1/server.key" \
		-out "$1/server.csr" >/dev/null 2>&1 || fail "openssl: CSR"
	printf 'subjectAltName=IP:127.0.0.1\n' >"$1/ext"
	openssl x509 -req -in "$1/server.csr" -CA "$1/ca.pem" -CAkey "$1/ca.key" -CAcreateserial -days 1 \
		-extfile "$1/ext" -out "$1/server.pem" >/dev/null 2>&1 || fail "openssl: sign"
}
mk_ca "$T/ca"
mk_ca "$T/other"
chmod 0600 "$T/key"
start_emulator --tls-cert "$T/ca/server.pem" --tls-key "$T/ca/server.key"
export E2B_API_URL=https://127.0.0.1:$EMU_PORT E2B_SANDBOX_URL=https://127.0.0.1:$EMU_PORT
unset E2B_API_KEY
start_daemon -o "e2b.api_key_file=$T/key" -o "e2b.ca_file=$T/ca/ca.pem" -o e2b.pool_size=1
wait_for 20 e2b_idle_at_least 1 || fail "no sandbox over TLS: $(ctl --json pool)"
ctlc submit "$SRC/examples/join-csv" --backend e2b --wait
assert_rc 0 "an e2b run over HTTPS with e2b.ca_file"
stop_daemon
creates=$(grep -c 'created template' "$T/emu.log")

# A CA that did not sign the server: every start fails on the certificate,
# no create reaches the emulator, submits fail with the reason.
start_daemon -o "e2b.api_key_file=$T/key" -o "e2b.ca_file=$T/other/ca.pem" -o e2b.pool_size=1 \
	-o e2b.start_fail_limit=1
failing() { [ "$(pool_field e2b failing)" = true ]; }
wait_for 20 failing || fail "the e2b pool does not report the bad certificate: $(ctl --json pool)"
err=$(pool_field e2b last_error)
note "wrong CA: $err"
assert_match "$err" 'certificate|SSL|TLS' "the pool's error"
ctlc submit "$T/p" --backend e2b --wait
assert_rc 1 "an e2b run with a CA that does not verify the server"
assert_match "$(run_field "$(head -n1 "$T/ctl.out")" error)" 'certificate|SSL|TLS' "the run's error"
assert_eq "$(grep -c 'created template' "$T/emu.log")" "$creates" "sandboxes created with the wrong CA"
stop_daemon
stop_emulator

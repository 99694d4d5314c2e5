# t_e2b_config: an E2B backend without a key is reported by `pool` and a
# submit to it is refused at once with the reason, while local runs go on;
# e2b.api_key_file must be readable by its owner only. TLS: t_e2b_tls.
. "$(dirname "$0")/lib.sh"

noop_chain "$T/p" 2

# 1. No key at all.
unset E2B_API_KEY E2B_API_URL E2B_SANDBOX_URL
start_daemon
assert_match "$(pool_field e2b last_error)" 'not configured: set E2B_API_KEY or e2b.api_key_file' "pool e2b"
assert_eq "$(pool_field e2b failing)" true "pool e2b failing"
ctlc pool
assert_match "$OUT" 'e2b: .*not configured' "osirisctl pool"
ctlc submit "$T/p" --backend e2b
assert_rc 2 "submit --backend e2b without a key"
assert_err_line
assert_match "$ERR" 'backend e2b is not available: not configured' "the refusal"
ctlc submit "$T/p" --wait
assert_rc 0 "a local run beside the unconfigured e2b backend"
stop_daemon

# 2. A key file others can read is refused, naming the file.
printf 'e2b_0123456789abcdef0123456789abcdef01234567\n' >"$T/key"
chmod 0644 "$T/key"
start_daemon -o "e2b.api_key_file=$T/key"
assert_match "$(pool_field e2b last_error)" "e2b.api_key_file: .*(group|others|permission|mode)" "a 0644 key file"
stop_daemon

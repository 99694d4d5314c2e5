# t_systemd: sd_notify and socket activation, with a python peer playing
# systemd. READY=1 arrives once the daemon answers, WATCHDOG=1 keeps coming,
# STOPPING=1 on SIGTERM; a socket passed as fd 3 (LISTEN_FDS) is served.
. "$(dirname "$0")/lib.sh"

NLOG=$T/notify.log
: >"$NLOG"
"$PY" "$REGRESS/systemd_peer.py" notify "$T/notify.sock" "$NLOG" -- \
	"$BIN/osirisd" -S "$SOCK" -D "$STATE" -f /dev/null "${DAEMON_BASE_OPTS[@]}" >>"$DLOG" 2>&1 &
PEER=$!
BG_PIDS+=("$PEER")
wait_for 10 grep -q '^READY=1' "$NLOG" || fail "no READY=1 from osirisd (got: $(tr '\n' ' ' <"$NLOG"))"
assert_ping
submit "$SRC/examples/join-csv" --wait
wait_for 5 grep -q '^WATCHDOG=1' "$NLOG" || fail "no WATCHDOG=1 within 5 s with WATCHDOG_USEC=400000"
dpid=$(pgrep -P "$PEER" -x osirisd)
[ -n "$dpid" ] || fail "cannot find the osirisd child of the notify peer"
kill -TERM "$dpid"
wait "$PEER" || fail "osirisd exited non-zero on SIGTERM under the notify peer"
grep -q '^STOPPING=1' "$NLOG" || fail "no STOPPING=1 on SIGTERM (got: $(tr '\n' ' ' <"$NLOG"))"
r=$(grep -n '^READY=1' "$NLOG" | head -1 | cut -d: -f1)
s=$(grep -n '^STOPPING=1' "$NLOG" | head -1 | cut -d: -f1)
[ "$r" -lt "$s" ] || fail "STOPPING=1 came before READY=1"

# Socket activation: the daemon serves the inherited fd, does not bind a
# path of its own (-S names a path that must stay absent).
ASOCK=$T/activated.sock
"$PY" "$REGRESS/systemd_peer.py" activate "$ASOCK" -- \
	"$BIN/osirisd" -S "$T/unused.sock" -D "$T/state2" -f /dev/null "${DAEMON_BASE_OPTS[@]}" >>"$DLOG" 2>&1 &
APID=$!
BG_PIDS+=("$APID")
wait_for 10 "$BIN/osirisctl" -S "$ASOCK" ping || fail "socket-activated osirisd does not answer on the passed socket"
"$BIN/osirisctl" -S "$ASOCK" submit "$SRC/examples/join-csv" --wait >/dev/null || fail "submit through the activated socket failed"
[ -e "$T/unused.sock" ] && fail "socket-activated osirisd also bound -S $T/unused.sock"
kill -TERM "$APID"
wait "$APID" || fail "socket-activated osirisd exited non-zero on SIGTERM"

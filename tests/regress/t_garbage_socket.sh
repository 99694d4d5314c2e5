# t_garbage_socket: random bytes, lying length headers (bin32 of 2 GB,
# str32/array32/map32 of 2^32-1) and 100k-deep nesting on the control
# socket: each bad peer is dropped, the daemon neither crashes, nor stalls,
# nor allocates what a header claims; a normal submit still succeeds.
. "$(dirname "$0")/lib.sh"

start_daemon
rss0=$(proc_kb "$DAEMON_PID" VmRSS)

"$PY" "$REGRESS/rpcpeer.py" "$SOCK" garbage || fail "garbage scenario"
daemon_alive || fail "daemon died on garbage"
assert_ping
"$PY" "$REGRESS/rpcpeer.py" "$SOCK" bighdr || fail "oversized header scenario"
daemon_alive || fail "daemon died on an oversized header"
assert_ping
"$PY" "$REGRESS/rpcpeer.py" "$SOCK" deep || fail "deep nesting scenario"
daemon_alive || fail "daemon died on deep nesting"
assert_ping

# Claimed sizes were not allocated: peak RSS stays far below 2 GB.
hwm=$(proc_kb "$DAEMON_PID" VmHWM)
note "daemon RSS before ${rss0} kB, peak ${hwm} kB"
[ "$hwm" -lt $((rss0 + 262144)) ] || fail "daemon peak RSS grew from $rss0 kB to $hwm kB"

# Many connections that say nothing and vanish.
for i in $(seq 1 50); do
	"$PY" -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.close()' "$SOCK" || fail "connect $i"
done
assert_ping

mkdir -p "$T/p"
noop_chain "$T/p" 3
ctlc submit "$T/p" --wait
assert_rc 0 "normal submit after the bad peers"
stop_daemon

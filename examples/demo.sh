#!/bin/sh
# demo.sh: the README demo (`make demo`). Starts a private osirisd on a temp
# socket and state dir, runs examples/join-csv while streaming its output,
# shows where the artifacts are and the output CSV, then stops the daemon.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u

SRC=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$SRC/build/bin}
PIPELINE=${1:-$SRC/examples/join-csv}
OUTPUT=output/customer_totals.csv

die() {
	echo "demo: $*" >&2
	exit 1
}
for p in osirisd osirisctl osiris-worker; do
	[ -x "$BIN/$p" ] || die "$BIN/$p: not found (run make first)"
done
[ -f "$PIPELINE/manifest.yaml" ] || die "$PIPELINE/manifest.yaml: not found"

DEMO=$(mktemp -d "${TMPDIR:-/tmp}/osiris-demo.XXXXXX") || die "cannot create a temp dir"
SOCK=$DEMO/osirisd.sock
STATE=$DEMO/state
LOG=$DEMO/osirisd.log
DPID=

ctl() { "$BIN/osirisctl" -S "$SOCK" "$@"; }

# Stop the daemon with SIGTERM and wait for it (SIGKILL after 15 s).
stop_daemon() {
	local i
	[ -n "$DPID" ] || return 0
	kill -TERM "$DPID" 2>/dev/null
	for ((i = 0; i < 150; i++)); do
		kill -0 "$DPID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$DPID" 2>/dev/null; then
		echo "demo: osirisd did not stop within 15 s of SIGTERM; killing it" >&2
		kill -KILL "$DPID" 2>/dev/null
	fi
	wait "$DPID" 2>/dev/null
	DPID=
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop_daemon
	rm -f "$SOCK"
	if [ $rc != 0 ] && [ -s "$LOG" ]; then
		echo "demo: daemon log ($LOG), last lines:" >&2
		tail -n 10 "$LOG" >&2
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "== starting osirisd (socket $SOCK, state $STATE)"
"$BIN/osirisd" -S "$SOCK" -D "$STATE" -f /dev/null 2>"$LOG" &
DPID=$!
ok=0
for ((i = 0; i < 100; i++)); do
	if ctl ping >/dev/null 2>&1; then
		ok=1
		break
	fi
	kill -0 "$DPID" 2>/dev/null || { DPID=; die "osirisd exited during start-up"; }
	sleep 0.1
done
[ $ok = 1 ] || die "osirisd did not answer ping within 10 s"
ctl version

echo
echo "== osirisctl submit ${PIPELINE#"$SRC"/} -f"
ctl submit "$PIPELINE" -f | tee "$DEMO/submit.out"
rc=${PIPESTATUS[0]}
RUN=$(head -n1 "$DEMO/submit.out")
[ -n "$RUN" ] || die "submit printed no run id (exit $rc)"

echo
echo "== osirisctl show $RUN"
ctl show "$RUN"
echo
echo "== artifacts of $RUN (osirisctl artifacts $RUN)"
ctl artifacts "$RUN"
if [ -d "$STATE/runs/$RUN/artifacts" ]; then
	echo "   stored by the daemon under $STATE/runs/$RUN/artifacts"
else
	echo "   stored by the daemon under the state dir $STATE"
fi
echo
echo "== $OUTPUT (osirisctl artifacts $RUN --get $OUTPUT)"
ctl artifacts "$RUN" --get "$OUTPUT" || echo "demo: could not fetch $OUTPUT" >&2

echo
echo "== stopping osirisd (SIGTERM)"
stop_daemon
rm -f "$SOCK"
echo "state dir kept at $DEMO (remove it with: rm -rf $DEMO)"
if [ "$rc" != 0 ]; then
	echo "demo: the run did not succeed (osirisctl exit $rc)" >&2
	exit "$rc"
fi
echo "demo: run $RUN succeeded"

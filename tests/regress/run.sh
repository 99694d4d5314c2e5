#!/bin/sh
# run.sh: the regress suite. Runs every tests/regress/t_*.sh (or the cases
# named as arguments) against the binaries in $BIN, each in its own temp dir
# with its own daemon; prints PASS/FAIL per case and a summary.
#   BIN=$PWD/build/bin sh tests/regress/run.sh [t_cancel ...]
#   VERBOSE=1 shows every case's notes; CASE_TIMEOUT (90 s, 180 s under the sanitizers) bounds a case
#   (a case may raise its own with a line "# case-timeout: N");
#   OSIRIS_ASAN=1 (automatic for build/asan) checks the logs for sanitizer
#   reports. A failed case keeps its temp dir (logs, state) and says where.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u

: "${BIN:?set BIN to the directory holding osirisd, osirisctl, osiris-worker}"
case $BIN in /*) ;; *) BIN=$(cd "$BIN" && pwd) ;; esac
export BIN
SRC=$(cd "$(dirname "$0")/../.." && pwd)
export SRC
for p in osirisd osirisctl osiris-worker; do
	[ -x "$BIN/$p" ] || { echo "regress: $BIN/$p: missing (run make first)" >&2; exit 2; }
done

# The sanitizer build lives in build/asan; its runs also check the daemon's
# stderr for reports (lib.sh) and abort on leaks.
if [ -z "${OSIRIS_ASAN:-}" ]; then
	case $BIN in */asan/*) OSIRIS_ASAN=1 ;; *) OSIRIS_ASAN=0 ;; esac
fi
export OSIRIS_ASAN
if [ "$OSIRIS_ASAN" = 1 ]; then
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
	export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
fi
# A hang guard, not a speed target: the sanitizer build runs 2-3x slower.
if [ "$OSIRIS_ASAN" = 1 ]; then CASE_TIMEOUT=${CASE_TIMEOUT:-180}; else CASE_TIMEOUT=${CASE_TIMEOUT:-90}; fi

if [ $# -gt 0 ]; then
	cases=()
	for c in "$@"; do cases+=("$SRC/tests/regress/${c%.sh}.sh"); done
else
	cases=("$SRC"/tests/regress/t_*.sh)
fi

pass=0
failed=()
start=$(date +%s)
for c in "${cases[@]}"; do
	name=$(basename "$c" .sh)
	T=$(mktemp -d "${TMPDIR:-/tmp}/osiris-regress.XXXXXX")
	t0=$(date +%s.%N)
	# a case that starts database servers may ask for more: "# case-timeout: N"
	ct=$(sed -n 's/^# case-timeout: \([0-9][0-9]*\)$/\1/p' "$c" | head -n1)
	[ -n "$ct" ] && [ "$ct" -gt "$CASE_TIMEOUT" ] || ct=$CASE_TIMEOUT
	(cd "$SRC" && T=$T timeout -k 5 "$ct" bash "$c") >"$T/case.log" 2>&1
	rc=$?
	dt=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
	if [ $rc = 0 ]; then
		printf 'PASS %-24s %6ss\n' "$name" "$dt"
		[ "${VERBOSE:-0}" = 1 ] && sed 's/^/    | /' "$T/case.log"
		pass=$((pass + 1))
		rm -rf "$T"
	else
		[ $rc = 124 ] && echo "FAIL: timed out after ${ct}s" >>"$T/case.log"
		printf 'FAIL %-24s %6ss  (kept %s)\n' "$name" "$dt" "$T"
		sed 's/^/    | /' "$T/case.log" | tail -n 15
		if [ -s "$T/daemon.log" ]; then
			echo "    | -- daemon.log (tail):"
			tail -n 8 "$T/daemon.log" | sed 's/^/    | /'
		fi
		failed+=("$name")
	fi
done
total=${#cases[@]}
echo "regress: $pass/$total passed in $(($(date +%s) - start))s$([ "$OSIRIS_ASAN" = 1 ] && echo ' (sanitizer build)')"
if [ ${#failed[@]} -gt 0 ]; then
	echo "regress: failed: ${failed[*]}"
	exit 1
fi
exit 0

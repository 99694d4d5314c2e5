# t_unit: the shipped systemd units. `systemd-analyze security` rates the
# installed osirisd.service at 2.0 or better, and `systemd-analyze verify`
# has nothing to say about it or osirisd.socket. Needs systemd-analyze 252+
# (Debian package systemd): without it the case fails, it never passes
# unchecked. That bwrap still starts under the unit needs a running systemd
# and is not checked here; see SYSTEMD SANDBOX in osirisd(8).
. "$(dirname "$0")/lib.sh"

# The exposure the unit is held at, in tenths (systemd-analyze --threshold).
MAX_EXPOSURE=20

SA=$(command -v systemd-analyze) ||
	fail "systemd-analyze not found: install the Debian package systemd to check the units"
"$SA" --help 2>&1 | grep -q -- '--offline=' ||
	fail "$SA has no --offline (systemd 252 or later needed): $("$SA" --version | head -1)"

# render DIR SBINDIR: the units as `make install` writes them (Makefile,
# install:), with ExecStart under SBINDIR.
render() {
	mkdir -p "$1"
	sed "s|@SBINDIR@|$2|g" "$SRC/systemd/osirisd.service.in" >"$1/osirisd.service"
	cp "$SRC/systemd/osirisd.socket" "$1/"
	! grep -n '@[A-Z_]*@' "$1/osirisd.service" || fail "osirisd.service keeps a @VARIABLE@ after rendering"
}

# Exposure, offline, of the unit installed under a root as with PREFIX=/usr.
ROOT=$T/root
render "$ROOT/usr/lib/systemd/system" /usr/sbin
"$SA" security --offline=yes --root="$ROOT" --threshold="$MAX_EXPOSURE" osirisd.service >"$T/security.out" 2>&1
rc=$?
score=$(grep -o 'Overall exposure level for osirisd.service: [0-9.]*' "$T/security.out")
[ -n "$score" ] || fail "systemd-analyze security printed no exposure (rc $rc): $(tail -5 "$T/security.out")"
note "$score"
if [ "$rc" != 0 ]; then
	grep '✗' "$T/security.out" >&2
	fail "osirisd.service: ${score##* } is above $((MAX_EXPOSURE / 10)).$((MAX_EXPOSURE % 10)) (systemd-analyze rc $rc)"
fi

# verify checks that ExecStart= exists, so point it at the built osirisd.
# It would run man(1) for Documentation=; man is no dependency, so the
# pages are looked up in doc/ instead.
V=$T/verify
render "$V" "$BIN"
out=$("$SA" verify --man=no "$V/osirisd.service" "$V/osirisd.socket" 2>&1)
rc=$?
if [ "$rc" != 0 ] || [ -n "$out" ]; then
	fail "systemd-analyze verify (rc $rc): $out"
fi
# One page per word: Documentation= is a space-separated list.
# shellcheck disable=SC2013
for page in $(sed -n 's/^Documentation=//p' "$V/osirisd.service" "$V/osirisd.socket"); do
	case $page in
	man:*'('*')') f=${page#man:} && f="${f%(*}.${f##*(}" && f=${f%)} ;;
	*) fail "Documentation=$page is not a man page" ;;
	esac
	[ -f "$SRC/doc/$f" ] || fail "Documentation=$page: no doc/$f"
done

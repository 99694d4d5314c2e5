#!/bin/sh
# run.sh: the E2B SDK conformance suite (official npm `e2b`, version pinned by
# package-lock.json) against e2b-emulator. Runs on the system's Node.js when it
# meets the `engines` range of the pinned e2b, otherwise on the Node.js pinned
# in node-runtime/package-lock.json, which the system's npm installs there
# (the system's Node.js is left alone). node and npm are required (`make deps`
# installs them); OSIRIS_E2B_SDK=skip skips the suite on purpose, and says so.
set -eu
cd "$(dirname "$0")"
: "${E2B_EMULATOR:?E2B_EMULATOR must name the e2b-emulator binary}"

die() {
	echo "check-e2b: FAILED: $*" >&2
	exit 1
}

if [ "${OSIRIS_E2B_SDK:-}" = skip ]; then
	echo "check-e2b: SKIPPED: the E2B SDK conformance suite (OSIRIS_E2B_SDK=skip)"
	exit 0
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	die "node and npm are needed for the E2B SDK conformance suite" \
		"(make deps installs them; OSIRIS_E2B_SDK=skip skips the suite)"
fi
sysver=$(node --version) || die "$(command -v node) does not run"

# lock_version DIR PACKAGE: the version DIR/package-lock.json pins for PACKAGE
lock_version() {
	node -p "try { require('./$1/package-lock.json').packages['node_modules/$2'].version } catch (e) { '' }"
}
# installed_version DIR PACKAGE: the version in DIR/node_modules, or nothing
installed_version() {
	node -p "try { require('./$1/node_modules/$2/package.json').version } catch (e) { '' }"
}

# satisfies VERSION RANGE: does vX.Y.Z meet an npm `engines` range written
# with plain comparators (">=20.18.1 <21 || >=22")? A partial version
# compares only the parts it names, as in semver ("<21" excludes 21.x).
# Exit 0 yes, 1 no, 2 a range this cannot read.
satisfies() {
	# shellcheck disable=SC2016 # JavaScript, not shell
	node -e '
const [ver, range] = process.argv.slice(1)
const have = ver.replace(/^v/, "").split(/[.-]/).map(Number)
const meets = (c) => {
  if (c === "" || c === "*") return true
  const m = /^(>=|<=|>|<|=)?v?(\d+(?:\.\d+){0,2})$/.exec(c)
  if (!m) {
    console.error(`check-e2b: cannot read "${c}" in the node range "${range}"`)
    process.exit(2)
  }
  const want = m[2].split(".").map(Number)
  let d = 0
  for (let i = 0; i < want.length && d === 0; i++) d = Math.sign(have[i] - want[i])
  return { ">=": d >= 0, "<=": d <= 0, ">": d > 0, "<": d < 0, "=": d === 0 }[m[1] || "="]
}
process.exit(range.split("||").some((set) => set.trim().split(/\s+/).every(meets)) ? 0 : 1)
' "$1" "$2"
}

range=$(node -p "(require('./package-lock.json').packages['node_modules/e2b'].engines || {}).node || '*'")
NODE=$(command -v node)
if satisfies "$sysver" "$range"; then
	fits=0
else
	fits=$?
fi
[ $fits = 2 ] && die "cannot decide whether node $sysver suits e2b"
if [ $fits = 1 ]; then
	arch=$(node -p process.arch)
	pkg=node-linux-$arch
	want=$(lock_version node-runtime "$pkg")
	[ -n "$want" ] || die "node $sysver is too old for e2b (it needs $range)" \
		"and tests/e2b/node-runtime pins no Node.js for $arch: install a newer Node.js"
	if [ "$(installed_version node-runtime "$pkg")" != "$want" ]; then
		echo "check-e2b: node $sysver is too old for e2b (it needs $range):" \
			"npm ci ($pkg@$want) in tests/e2b/node-runtime"
		(cd node-runtime && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) ||
			die "npm ci in tests/e2b/node-runtime failed"
	fi
	NODE=$PWD/node-runtime/node_modules/$pkg/bin/node
	rtver=$("$NODE" --version) || die "$NODE does not run"
	satisfies "$rtver" "$range" ||
		die "the pinned $pkg@$want ($rtver) does not meet e2b's range $range either: update node-runtime/"
fi

want=$(lock_version . e2b)
if [ "$(installed_version . e2b)" != "$want" ]; then
	echo "check-e2b: npm ci (e2b@$want)"
	npm ci --no-audit --no-fund --loglevel=error
fi
echo "== E2B SDK conformance (e2b@$want, node $("$NODE" --version) at $NODE)"
# Anything the suite starts with `node` gets the same one.
PATH=$(dirname "$NODE"):$PATH exec "$NODE" --test --test-concurrency=1 conformance.test.mjs

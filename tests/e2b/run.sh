#!/bin/sh
# run.sh: the E2B SDK conformance suite (official npm `e2b`, version pinned by
# package-lock.json) against e2b-emulator. Skipped only when node/npm are absent.
set -eu
cd "$(dirname "$0")"
: "${E2B_EMULATOR:?E2B_EMULATOR must name the e2b-emulator binary}"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	echo "check-e2b: SKIPPED: node/npm not installed, the E2B SDK conformance suite cannot run"
	exit 0
fi
want=$(node -p 'require("./package-lock.json").packages["node_modules/e2b"].version')
have=$(node -p 'try { require("./node_modules/e2b/package.json").version } catch (e) { "" }')
if [ "$want" != "$have" ]; then
	echo "check-e2b: npm ci (e2b@$want)"
	npm ci --no-audit --no-fund --loglevel=error
fi
echo "== E2B SDK conformance (e2b@$want, node $(node --version))"
exec node --test --test-concurrency=1 conformance.test.mjs

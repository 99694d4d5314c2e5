#!/bin/sh
# install.sh: npm ci of the pinned `graphql` (package-lock.json) for the
# graphql.extractor regress case, when node_modules does not hold it yet.
# Run by `make regress`; needs node and npm (`make deps`).
set -eu
cd "$(dirname "$0")"
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || {
	echo "graphql server: node and npm are needed (make deps installs them)" >&2
	exit 1
}
want=$(node -p "require('./package-lock.json').packages['node_modules/graphql'].version")
have=$(node -p "try { require('./node_modules/graphql/package.json').version } catch (e) { '' }")
[ "$have" = "$want" ] && exit 0
echo "graphql server: npm ci (graphql@$want)"
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error

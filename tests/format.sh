#!/bin/sh
# format.sh: clang-format over every C source and header of the tree, with
# the committed .clang-format.
#   sh tests/format.sh check   fail naming the files clang-format would change
#   sh tests/format.sh apply   rewrite them in place
# The tree is formatted with Debian 12's clang-format (14); other versions
# break lines differently, so `check` with another major version says so and
# checks nothing rather than report differences that are only the tool's.
set -eu

mode=${1:-check}
want=14
cd "$(dirname "$0")/.."

command -v clang-format >/dev/null 2>&1 || {
	echo "format: clang-format not found (make deps installs it)" >&2
	exit 1
}
major=$(clang-format --version | sed -n 's/.*version \([0-9][0-9]*\)\..*/\1/p')

if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	files=$(git ls-files '*.c' '*.h')
else
	files=$(find . -path ./build -prune -o -name node_modules -prune -o \( -name '*.c' -o -name '*.h' \) -print)
fi

case $mode in
apply)
	# shellcheck disable=SC2086 # a list of paths without blanks
	clang-format -i $files
	;;
check)
	if [ "$major" != "$want" ]; then
		echo "format: clang-format $major is not $want, the version the tree is formatted with: not checked" >&2
		exit 0
	fi
	bad=
	for f in $files; do
		clang-format "$f" | cmp -s - "$f" || bad="$bad $f"
	done
	if [ -n "$bad" ]; then
		echo "format: not formatted (run 'make format'):$bad" >&2
		exit 1
	fi
	echo "format: $(echo "$files" | wc -l) files formatted"
	;;
*)
	echo "usage: sh tests/format.sh [check|apply]" >&2
	exit 2
	;;
esac

#!/bin/sh
# tools/store-handle.sh: rewrites callers of the store to its handle API
# (daemon/osirisd.h, store.c section): every store_* call that takes the
# handle gets it as its first argument, and the two calls that also handle
# artifact rows get their names (store_event_flush -> store_flush,
# store_event_pending -> store_pending). Idempotent: a call that already
# passes the handle is left alone, so it can be replayed after a merge.
#
#   sh tools/store-handle.sh            every tracked .c file that calls the store
#   sh tools/store-handle.sh FILE...    only these
#
# The handle: osirisd.store (the daemon's context) everywhere but in the
# store's own test and benchmark, which hold theirs in a static `store`.
# daemon/store.c and daemon/osirisd.h are the interface: never rewritten.
set -eu
cd "$(git rev-parse --show-toplevel)"

FUNCS='close|run_insert|run_update|step_update|run_get|run_resolve|run_list|run_ids_in_state|event_add|flush|pending|batch_begin|batch_end|event_read|event_last_seq|artifact_add|artifact_add_data|artifact_get|artifact_list|full|run_disk_bytes|final_count|prune_next|prune_delete|usage|db_live_bytes|checkpoint|wseq_last|sandbox_put|sandbox_delete|sandbox_get|sandbox_list'

if [ $# -eq 0 ]; then
	set -- $(git ls-files '*.c' | xargs grep -l -E '\bstore_[a-z_]+\(' | grep -v '^daemon/store\.c$')
fi
for f in "$@"; do
	case "$f" in
	daemon/store.c | daemon/osirisd.h) continue ;;
	tests/unit/check_store.c | bench/bench_store.c) h=store ;;
	*) h=osirisd.store ;;
	esac
	H="$h" FUNCS="$FUNCS" perl -pi -e '
		BEGIN { $h = quotemeta($ENV{H}); $hs = $ENV{H}; $f = $ENV{FUNCS}; }
		s/\bstore_event_flush\b/store_flush/g;
		s/\bstore_event_pending\b/store_pending/g;
		s/\b(store_(?:$f))\((?!\s*$h\s*[,)])(\s*\))?/defined($2) ? "$1($hs)" : "$1($hs, "/ge;
	' "$f"
done

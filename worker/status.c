/*
 * status.c: the `status` request. A daemon that restarted re-attaches to a
 * worker it did not start the session with: after `replay` it asks which
 * run is prepared here, which steps ran with what answer, and whether
 * `finish` was handled, then goes on from there (PROTOCOL.md §5).
 */
#include <string.h>

#include "worker.h"

static int status_step_done(enum step_state st)
{
	return st == STEP_SUCCEEDED || st == STEP_FAILED || st == STEP_CANCELLED;
}

static void status_pack_bool(msgpack_packer *pk, const char *key, int v)
{
	mp_pack_key(pk, key);
	if (v)
		msgpack_pack_true(pk);
	else
		msgpack_pack_false(pk);
}

void status_handle(struct worker *w, uint32_t msgid, const msgpack_object *params)
{
	msgpack_packer pk;
	struct buf b;
	size_t i, n = 0;

	(void)params;
	rpc_reply_begin(&b, &pk, msgid);
	msgpack_pack_map(&pk, 6);
	mp_pack_kstr(&pk, "run_id", w->prepared ? w->run_id : NULL);
	mp_pack_kstr(&pk, "workspace", w->prepared ? w->ws : NULL);
	status_pack_bool(&pk, "prepared", w->prepared);
	status_pack_bool(&pk, "finished", w->prepared && w->finished);
	mp_pack_kint(&pk, "last_seq", w->seq);
	/* the answers of the steps executed, by step id */
	for (i = 0; w->prepared && i < w->m.nsteps; i++)
		n += status_step_done(w->state[i]);
	mp_pack_key(&pk, "steps");
	msgpack_pack_map(&pk, n);
	for (i = 0; w->prepared && i < w->m.nsteps; i++) {
		if (!status_step_done(w->state[i]))
			continue;
		mp_pack_key(&pk, w->m.steps[i].id);
		step_result_pack(&pk, &w->results[i]);
	}
	rpc_reply_end(w, &b);
}

/*
 * pool.c: `osirisctl pool`: the daemon's warm pools per backend (target,
 * idle, warming, busy, max), their recent worker start latencies, and why
 * workers fail to start when they do.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/osirisctl.h"

#define POOL_SHOW_STARTS 8

/* "12 15 11ms", newest first; "-" when the pool has not started any. */
static void pool_starts(struct buf *b, const msgpack_object *pool)
{
	const msgpack_object *arr = mp_get(pool, "start_ms");

	buf_reset(b);
	if (arr == NULL || arr->type != MSGPACK_OBJECT_ARRAY || arr->via.array.size == 0) {
		buf_addc(b, '-');
		return;
	}
	for (uint32_t i = 0; i < arr->via.array.size && i < POOL_SHOW_STARTS; i++) {
		if (i > 0)
			buf_addc(b, ' ');
		out_value(b, &arr->via.array.ptr[i]);
	}
	buf_adds(b, "ms");
}

/* Under the table, a pool whose workers fail to start says why. */
static void pool_print_failure(const msgpack_object *pool)
{
	const msgpack_object *err = mp_get(pool, "last_error"), *failing = mp_get(pool, "failing");
	struct buf name, n;

	if (err == NULL || err->type != MSGPACK_OBJECT_STR)
		return;
	buf_init(&name);
	buf_init(&n);
	printf("%s: %s starts failed in a row%s: %.*s\n", out_str(&name, pool, "backend"),
	       out_str(&n, pool, "start_failures"),
	       failing != NULL && failing->type == MSGPACK_OBJECT_BOOLEAN && failing->via.boolean
	           ? " (runs for it fail)"
	           : "",
	       (int)err->via.str.size, err->via.str.ptr);
	buf_free(&name);
	buf_free(&n);
}

static void pool_print(const msgpack_object *pools)
{
	static const char *const header[] = {"BACKEND", "TARGET", "IDLE", "WARMING", "BUSY", "MAX", "RECENT STARTS"};
	static const char *const keys[] = {"backend", "target", "idle", "warming", "busy", "max"};
	struct buf cell[7];
	const char *cells[7];
	struct out_table t;

	for (size_t k = 0; k < 7; k++)
		buf_init(&cell[k]);
	out_table_init(&t, 7, header);
	for (uint32_t i = 0; i < pools->via.array.size; i++) {
		const msgpack_object *p = &pools->via.array.ptr[i];

		for (size_t k = 0; k < 6; k++)
			cells[k] = out_str(&cell[k], p, keys[k]);
		pool_starts(&cell[6], p);
		cells[6] = buf_cstr(&cell[6]);
		out_table_row(&t, cells);
	}
	out_table_print(&t);
	out_table_free(&t);
	for (size_t k = 0; k < 7; k++)
		buf_free(&cell[k]);
	for (uint32_t i = 0; i < pools->via.array.size; i++)
		pool_print_failure(&pools->via.array.ptr[i]);
}

int cmd_pool(struct ctl *ctl, int argc, char **argv)
{
	const struct ctl_cmd *cmd = ctl_cmd_find("pool");
	const msgpack_object *pools;
	struct rpc_msg resp;
	struct session c;
	int rc;

	if ((rc = ctl_parse_simple(cmd, ctl, argc, argv, 0)) != 0)
		return rc == -1 ? EXIT_OK : rc;
	if ((rc = session_simple(ctl, "pool", "pool.status", NULL, &c, &resp)) != 0)
		return rc;
	pools = mp_get(resp.result, "pools");
	if (pools == NULL || pools->type != MSGPACK_OBJECT_ARRAY) {
		out_error("pool", "bad answer from the daemon: no pools array");
		rc = EXIT_PROTOCOL;
	} else if (ctl->json)
		json_out_doc(json_from_mp(pools));
	else
		pool_print(pools);
	rpc_msg_free(&resp);
	session_close(&c);
	return rc;
}

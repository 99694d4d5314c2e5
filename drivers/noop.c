/*
 * noop.c: osiris.noop. Does nothing and passes its first input through,
 * so benchmarks measure orchestration overhead alone. `sleep_ms` makes it
 * take that long (in cancellable 10 ms slices) for scheduling tests;
 * `block_ms` blocks in one system call that only a signal interrupts, like
 * a driver waiting on a server, deaf to a `cancel` request (the daemon's
 * SIGTERM fallback is tested with it).
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "drivers.h"

static const char *const noop_keys[] = {"sleep_ms", "block_ms", NULL};

/* The output shares nothing with the input: the worker frees tables
 * independently, so pass-through is a cheap copy of the value slices. */
static struct table *noop_copy(const struct table *in)
{
	struct table *t = table_new(in->ncols);
	size_t c, r;

	for (c = 0; c < in->ncols; c++) {
		const struct column *src = &in->cols[c];
		table_set_name(t, c, src->name, strlen(src->name));
		for (r = 0; r < in->nrows; r++) {
			const struct tval *v = &src->v[r];
			table_push(t, c, v->s == NULL ? NULL : table_strdup(t, v->s, v->len), v->len);
		}
	}
	table_finish(t);
	return t;
}

static int noop_sleep(struct driver_ctx *ctx, int64_t ms)
{
	while (ms > 0) {
		int64_t slice = ms < 10 ? ms : 10;
		struct timespec ts = {0, (long)slice * 1000000L};
		if (ctx_cancelled(ctx))
			return ctx_fail(ctx, "Cancelled", "cancelled");
		nanosleep(&ts, NULL);
		ms -= slice;
	}
	return 0;
}

static int noop_block(struct driver_ctx *ctx, int64_t ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};

	if (ms > 0 && nanosleep(&ts, NULL) == -1 && errno == EINTR && ctx_cancelled(ctx))
		return ctx_fail(ctx, "Cancelled", "cancelled");
	return 0;
}

static int noop_run(struct driver_ctx *ctx, const json_t *cfg, struct table **inputs, const char **input_names,
                    size_t ninputs, struct table **output)
{
	int64_t ms = 0;

	(void)input_names;
	if (cfg_int(ctx, cfg, "sleep_ms", &ms) < 0 || noop_sleep(ctx, ms) < 0)
		return -1;
	ms = 0;
	if (cfg_int(ctx, cfg, "block_ms", &ms) < 0 || noop_block(ctx, ms) < 0)
		return -1;
	if (ninputs > 0 && inputs[0] != NULL)
		*output = noop_copy(inputs[0]);
	return 0;
}

const struct driver_ops driver_noop = {
    .name = "osiris.noop",
    .run = noop_run,
    .keys = noop_keys,
};
